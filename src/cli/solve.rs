//! `airgate solve`: the verification-first loop on one repository.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::engine::{self, EngineConfig, Episode, Outcome};
use crate::error::{CliError, exit};
use crate::gate::{self, TestCommandGate};
use crate::model::spec::{PolicyContext, build_policy, find_solution_patch};
use crate::model::{ModelError, ModelSpec, Policy};
use crate::sandbox::{Sandbox, SandboxChoice, Workspace};

/// Arguments of `airgate solve`.
#[derive(Debug, Args)]
pub struct SolveArgs {
    /// The repository to fix (never modified without --apply).
    #[arg(long)]
    pub repo: PathBuf,
    /// The bug report / task, as text.
    #[arg(
        long,
        conflicts_with = "task_file",
        required_unless_present = "task_file"
    )]
    pub task: Option<String>,
    /// Read the task from a file (a tier `task.toml` also sets test_cmd and protected files).
    #[arg(long)]
    pub task_file: Option<PathBuf>,
    /// Test command (default: detected from the repo).
    #[arg(long)]
    pub test_cmd: Option<String>,
    /// Model spec (see docs/design.md); `local` is the embedded model.
    #[arg(long, default_value = "local")]
    pub model: String,
    /// Hand the task to this model when the first one's gate holds.
    #[arg(long)]
    pub escalate_to: Option<String>,
    /// Tool calls per attempt (default: the model preset's `[run]`, else 30).
    #[arg(long)]
    pub max_steps: Option<u32>,
    /// Attempts per model (default: the model preset's `[run]`, else 5).
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Wall-time budget of the run in seconds, checked between steps and
    /// bounding a model call in flight (default: the model preset's, else
    /// none). The outcome records `budget: wall` when it ended the run.
    #[arg(long, value_name = "SECONDS")]
    pub max_wall: Option<u64>,
    /// Token budget of the run (prompt + completion), checked between
    /// steps (default: the model preset's, else none).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// Bytes of the repo's AIRGATE.md (else AGENTS.md) put in the system
    /// prompt as project context; 0 reads none.
    #[arg(long, value_name = "BYTES", default_value_t = crate::engine::prompt::DEFAULT_CONTEXT_BYTES)]
    pub context_bytes: usize,
    /// Ignored loop-breaker nudges after which an attempt ends as `stuck`
    /// (default: the model preset's `[run] stuck_after`, else 3).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    pub stuck_after: Option<u32>,
    /// Show each tool call the model proposes before it runs and ask on
    /// the terminal: accept, skip, give the model an instruction, accept
    /// all remaining, or quit. Needs a terminal on stdin and stderr;
    /// `--approve` then defaults to asking. The gate still decides.
    #[arg(long)]
    pub interactive: bool,
    /// No live progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Seconds before a test run is killed (counts as a failure).
    #[arg(long, default_value_t = 300)]
    pub test_timeout: u64,
    /// Glob of files a patch may not change, added to the patch policy's
    /// defaults (repeatable).
    #[arg(long = "protect")]
    pub protect: Vec<String>,
    /// Glob of files a patch may change although the patch policy refuses
    /// them by default, for tasks whose real fix is a config change
    /// (repeatable; never VCS metadata, secrets or --protect).
    #[arg(long = "allow-path", value_name = "GLOB")]
    pub allow_path: Vec<String>,
    /// Passing gate runs, each on a fresh copy, a patch needs before it is
    /// verified (a flaky pass is not kept).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub gate_runs: u32,
    /// Write the verified patch into the repo.
    #[arg(long)]
    pub apply: bool,
    /// Where the trajectory and the audit record go (default:
    /// $AIRGATE_HOME/runs/<timestamp>, else $XDG_STATE_HOME/airgate/runs/...).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where commands run.
    #[arg(long, value_enum, default_value_t = SandboxChoice::Local)]
    pub sandbox: SandboxChoice,
    /// Image for --sandbox docker.
    #[arg(long)]
    pub image: Option<String>,
    /// Commands the approval rules hold back (git push, installs, deletes
    /// outside build dirs): ask on the terminal, deny, or allow. Default:
    /// ask on a terminal, deny in batch runs.
    #[arg(long, value_name = "ask|deny|allow")]
    pub approve: Option<crate::tools::approval::ApprovalMode>,
    /// Start a local MCP server beside the agent (repeatable): COMMAND runs
    /// in the same sandbox as `run` (no network, the repo read-only) and its
    /// tools are offered as NAME__tool. See docs/tools.md.
    #[arg(long = "mcp", value_name = "NAME=COMMAND")]
    pub mcp: Vec<String>,
    /// MCP settings file with `[[mcp]]` tables (default:
    /// $AIRGATE_CONFIG_DIR/mcp.toml, else none); never read from the repo.
    #[arg(long, value_name = "FILE")]
    pub mcp_config: Option<PathBuf>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What the task file or flags say the task is.
struct TaskSpec {
    statement: String,
    test_cmd: Option<String>,
    protected: Option<Vec<String>>,
    timeout_s: Option<u64>,
    allow_paths: Vec<String>,
    targets: Vec<String>,
}

fn read_task(args: &SolveArgs) -> Result<TaskSpec, CliError> {
    if let Some(t) = &args.task {
        return Ok(TaskSpec {
            statement: t.clone(),
            test_cmd: None,
            protected: None,
            timeout_s: None,
            allow_paths: vec![],
            targets: vec![],
        });
    }
    let Some(path) = &args.task_file else {
        return Err(CliError::usage(
            "give the task with --task TEXT or --task-file FILE",
        ));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("cannot read task file {}: {e}", path.display())))?;
    if path.extension().is_some_and(|e| e == "toml") {
        let task = crate::tiers::task::TaskToml::parse(&text)
            .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
        return Ok(task_from_toml(task));
    }
    Ok(TaskSpec {
        statement: text,
        test_cmd: None,
        protected: None,
        timeout_s: None,
        allow_paths: vec![],
        targets: vec![],
    })
}

fn task_from_toml(t: crate::tiers::task::TaskToml) -> TaskSpec {
    TaskSpec {
        statement: t.statement,
        test_cmd: t.test_cmd,
        protected: t.protected,
        timeout_s: t.timeout_s,
        allow_paths: t.allow_paths,
        targets: t.targets,
    }
}

/// Runs `airgate solve`; returns the exit code of docs/design.md.
pub async fn run(args: SolveArgs) -> anyhow::Result<u8> {
    // Listen for Ctrl-C before anything starts, so no window loses it.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| {
        CliError::environment(format!("cannot install the Ctrl-C handler: {e}"))
    })?;
    if args.interactive {
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Err(CliError::usage(
                "--interactive needs a terminal on stdin to read your answers; run it from a terminal, or drop --interactive (use --approve deny|allow for unattended runs)",
            )
            .into());
        }
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Err(CliError::usage(
                "--interactive shows each proposed action on stderr, which is not a terminal here; do not redirect stderr, or drop --interactive",
            )
            .into());
        }
    }
    let repo = validate_repo(&args.repo)?;
    let task = read_task(&args)?;
    // The sandbox must work before any model starts or anything is copied.
    let choice = args.sandbox;
    super::agent_sandbox(choice, exit::ENVIRONMENT)?;
    let test_cmd = args
        .test_cmd
        .clone()
        .or(task.test_cmd.clone())
        .or_else(|| gate::detect_test_command(&repo))
        .ok_or_else(|| {
            CliError::environment(format!(
                "no test command detected in {}: pass one with --test-cmd (e.g. --test-cmd 'python -m pytest -q')",
                repo.display()
            ))
        })?;
    let spec = ModelSpec::parse(&args.model).map_err(|e| CliError::usage(e.to_string()))?;
    let mcp_specs = crate::mcp::config::servers(args.mcp_config.as_deref(), &args.mcp)
        .map_err(|e| CliError::usage(e.to_string()))?;
    if !mcp_specs.is_empty() && args.sandbox == SandboxChoice::Docker {
        return Err(CliError::usage(
            "MCP servers cannot run with --sandbox docker yet: use --sandbox local (bubblewrap, the default) or drop --mcp / [[mcp]]",
        )
        .into());
    }
    let ctx = PolicyContext {
        solution_patch: find_solution_patch(&repo),
        config_root: None,
    };
    // Starting a model can take minutes (the local server loads its
    // weights): Ctrl-C must still stop it, and dropping the start stops
    // any server it spawned.
    let interrupted_start = || CliError {
        code: exit::INTERRUPTED,
        message: "interrupted while starting the model; nothing was run".into(),
    };
    let first = tokio::select! {
        p = build_policy(&spec, &ctx) => p.map_err(policy_error)?,
        _ = interrupt.recv() => return Err(interrupted_start().into()),
    };
    let mut stages: Vec<Box<dyn Policy>> = vec![first];
    if let Some(big) = &args.escalate_to {
        let spec = ModelSpec::parse(big).map_err(|e| CliError::usage(e.to_string()))?;
        let big = tokio::select! {
            p = build_policy(&spec, &ctx) => p.map_err(policy_error),
            _ = interrupt.recv() => Err(interrupted_start()),
        };
        match big {
            Ok(p) => stages.push(p),
            Err(e) => {
                for p in stages.iter_mut() {
                    p.shutdown().await;
                }
                return Err(e.into());
            }
        }
    }
    // The patch policy: the installation's defaults, plus the task's and
    // the flags' protected globs; --allow-path and the task's allow_paths
    // lift default denials for tasks whose fix is a config change.
    let mut protected = args.protect.clone();
    protected.extend(task.protected.clone().unwrap_or_default());
    let mut allowed = args.allow_path.clone();
    allowed.extend(task.allow_paths.clone());
    let patch_policy = gate::policy::PatchPolicy::load(None)
        .and_then(|p| p.with_protected(&protected))
        .and_then(|p| p.with_allowed(&allowed))
        .map_err(|e| CliError::usage(e.to_string()))?;
    let verifier = TestCommandGate {
        test_cmd: test_cmd.clone(),
        timeout: Duration::from_secs(task.timeout_s.unwrap_or(args.test_timeout).max(1)),
        protected,
        runs: args.gate_runs,
        targets: task.targets.clone(),
    };
    // Flags win over the model preset's `[run]` defaults.
    let preset = crate::model::provider::resolve(&spec, Path::new("."))
        .ok()
        .and_then(|r| r.config)
        .and_then(|c| c.run)
        .unwrap_or_default();
    let defaults = EngineConfig::default();
    // With --interactive the person answers on the terminal; the progress
    // heartbeat waits while they are asked.
    let asking = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (observer, review) = if args.interactive {
        let review = super::interactive::TerminalReview::new(asking.clone());
        (
            super::live::interactive_observer(args.quiet, asking),
            Some(engine::review::Reviewer(std::sync::Arc::new(review))),
        )
    } else {
        (super::live::observer(args.quiet), None)
    };
    let cfg = EngineConfig {
        max_steps: args
            .max_steps
            .or(preset.max_steps)
            .unwrap_or(defaults.max_steps),
        max_attempts: args
            .max_attempts
            .or(preset.max_attempts)
            .unwrap_or(defaults.max_attempts),
        max_wall: args.max_wall.or(preset.max_wall_s).map(Duration::from_secs),
        max_tokens: args.max_tokens.or(preset.max_tokens),
        stuck_after: args
            .stuck_after
            .or(preset.stuck_after)
            .unwrap_or(defaults.stuck_after),
        context_bytes: args.context_bytes,
        observer,
        review,
        ..defaults
    };

    let workspace = Workspace::copy_from(&repo)
        .map_err(|e| CliError::environment(format!("cannot create the scratch workspace: {e}")))?;
    let sandbox: Box<dyn Sandbox> = choice
        .open(&workspace, args.image.as_deref())
        .await
        .map_err(|e| CliError::environment(format!("{} sandbox: {e}", args.sandbox.label())))?;
    // MCP servers start in the agent's sandbox, before any model call; one
    // that cannot start stops the run with its name.
    let hub = if mcp_specs.is_empty() {
        None
    } else {
        let started = tokio::select! {
            h = crate::mcp::McpHub::start(&mcp_specs, sandbox.as_ref()) => {
                h.map_err(|e| CliError::environment(e.to_string()))
            }
            _ = interrupt.recv() => Err(CliError {
                code: exit::INTERRUPTED,
                message: "interrupted while starting the MCP servers; nothing was run".into(),
            }),
        };
        match started {
            Ok(h) => Some(std::sync::Arc::new(h)),
            Err(e) => {
                for p in stages.iter_mut() {
                    p.shutdown().await;
                }
                let _ = sandbox.close().await;
                return Err(e.into());
            }
        }
    };
    // The tools of this run: the built-ins plus every MCP server's.
    let mut registry = crate::tools::Registry::builtin().clone();
    if let Some(h) = &hub
        && let Err(e) = h.register_into(&mut registry)
    {
        h.shutdown().await;
        for p in stages.iter_mut() {
            p.shutdown().await;
        }
        let _ = sandbox.close().await;
        return Err(CliError::usage(format!("MCP tools: {e}")).into());
    }
    let approval_mode = crate::tools::approval::ApprovalMode::resolve(
        args.approve,
        std::io::IsTerminal::is_terminal(&std::io::stdin()),
    );
    // Secrets: this process's secret-looking variables and the values in
    // the masked files never reach the model or any file airgate writes.
    let job = engine::Job::new(
        task.statement.clone(),
        repo.display().to_string(),
        patch_policy,
        Some(approval_mode),
        Some((&repo, &workspace)),
    )
    .map_err(|e| CliError::usage(e.to_string()))?;
    let redactor = job.redactor().clone();
    // The audit record: appended as events happen, outside the sandbox and
    // outside the repo (the default --out is under the state directory).
    let out_dir = args.out.clone().unwrap_or_else(default_run_dir);
    // A reused --out keeps earlier records: the next free name is taken.
    let audit_path = (1..)
        .map(|n| match n {
            1 => out_dir.join("events.jsonl"),
            n => out_dir.join(format!("events.{n}.jsonl")),
        })
        .find(|p| p.symlink_metadata().is_err())
        .unwrap_or_else(|| out_dir.join("events.jsonl"));
    let hook: engine::audit::RedactHook = {
        let r = redactor.clone();
        std::sync::Arc::new(move |v: &mut serde_json::Value| r.redact_json(v))
    };
    let progress = match engine::audit::AuditLog::create_with(&audit_path, Some(hook)) {
        Ok(log) => engine::Progress::with_audit(log),
        Err(e) => {
            return Err(CliError::usage(format!(
                "cannot create the audit record {}: {e} (choose another --out)",
                audit_path.display()
            ))
            .into());
        }
    };
    let episode = Episode {
        progress: Some(&progress),
        tools: &registry,
        mcp: hub.as_deref(),
        ..job.episode(sandbox.as_ref(), &workspace, &verifier)
    };

    let result = tokio::select! {
        r = engine::run_episode(&episode, &cfg, &mut stages) => Some(r),
        _ = interrupt.recv() => None,
    };
    for p in stages.iter_mut() {
        p.shutdown().await;
    }
    if let Some(h) = &hub {
        h.shutdown().await;
    }
    let _ = sandbox.close().await;
    let Some(result) = result else {
        // The workspace (a temp dir) is dropped on return; the repo was never touched.
        let saved = save_partial(
            &progress,
            &redactor,
            "interrupted by the user (Ctrl-C)",
            &out_dir,
        );
        return Err(CliError {
            code: exit::INTERRUPTED,
            message: format!("interrupted; the repository was left untouched{saved}"),
        }
        .into());
    };
    let traj = result.map_err(|e| {
        let saved = save_partial(
            &progress,
            &redactor,
            &format!("engine failure: {e}"),
            &out_dir,
        );
        CliError {
            code: e.exit_code(),
            message: format!("{e}{saved}"),
        }
    })?;

    // The verified patch as judged: what --apply writes and --json prints
    // (to the user who owns the repo). The saved trajectory and the audit
    // record are redacted; they differ from it only where the user's own
    // files (diff context) hold something that looks like a secret.
    let shipped_patch = traj.patch.clone();
    let mut traj = traj;
    if let Some(h) = &hub {
        // The pins as recorded at start, plus why any server was stopped.
        traj.mcp = h.records();
    }
    let traj = traj.redacted(&redactor);
    let traj_path = traj.save(&out_dir).map_err(|e| {
        CliError::failure(format!(
            "cannot save the trajectory in {}: {e}",
            out_dir.display()
        ))
    })?;
    let traj_sha = std::fs::read(&traj_path)
        .map(|b| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&b)))
        .unwrap_or_default();
    let audit_head = progress.finish_audit(&traj, &traj_sha).unwrap_or_default();

    if args.apply && traj.outcome == Outcome::Verified {
        workspace.apply_to(&repo, &shipped_patch).map_err(|e| {
            CliError::failure(format!(
                "applying the verified patch to {}: {e}",
                repo.display()
            ))
        })?;
    }

    if args.json {
        let obj = serde_json::json!({
            "outcome": traj.outcome.as_str(),
            "budget": traj.budget.map(|b| b.as_str()),
            "ended": traj.attempts.iter().filter_map(|a| a.ended.map(|e| e.as_str())).collect::<Vec<_>>(),
            "attempts": traj.attempts.len(),
            "steps": traj.steps(),
            "patch": shipped_patch,
            "trajectory": traj_path.display().to_string(),
            "test_cmd": test_cmd,
            "flags": traj.flags,
            "dropped": traj.attempts.last().map(|a| a.dropped.clone()).unwrap_or_default(),
            "audit": audit_path.display().to_string(),
            "audit_head": audit_head,
            "trajectory_sha256": traj_sha,
        });
        println!("{obj}");
    } else {
        print_human(&traj, &shipped_patch, &traj_path, args.apply);
    }
    // The model never answered (its server is down or unreachable): the
    // gate held only because nothing was tried, which is a broken
    // environment (3), not a model that failed (1).
    let never_answered = traj.attempts.iter().all(|a| {
        !a.events
            .iter()
            .any(|e| matches!(e, engine::Event::ModelCall { .. }))
    });
    let user_quit = traj
        .attempts
        .last()
        .is_some_and(|a| a.ended == Some(engine::EndReason::UserQuit));
    if let Some(reason) = &traj.aborted {
        if never_answered && traj.outcome == Outcome::GateHeld {
            eprintln!("error: the model never answered, so nothing was tried: {reason}");
            return Ok(exit::ENVIRONMENT);
        }
        eprintln!("warning: the episode was cut short: {reason}");
    }
    // Quit in --interactive: like an interrupt, unless the gate passed the
    // patch made so far.
    if user_quit && traj.outcome == Outcome::GateHeld {
        eprintln!("stopped by the user; the repository was left untouched");
        return Ok(exit::INTERRUPTED);
    }
    Ok(match traj.outcome {
        Outcome::AlreadyPassing | Outcome::Verified => exit::OK,
        Outcome::GateHeld => exit::FAILURE,
        Outcome::Suspicious => exit::SUSPICIOUS,
    })
}

fn print_human(traj: &engine::Trajectory, patch: &str, path: &Path, applied: bool) {
    match traj.outcome {
        Outcome::AlreadyPassing if !traj.attempts.is_empty() => println!(
            "already passing: `{}` failed at first, then passed with no change to the repository: the tests look flaky. There is nothing to patch.",
            traj.test_cmd
        ),
        Outcome::AlreadyPassing => println!(
            "already passing: `{}` passes as is; nothing to fix.",
            traj.test_cmd
        ),
        Outcome::Verified => {
            println!("{patch}");
            println!(
                "verified: `{}` passes with this patch (attempt {}, {} steps, by {}).",
                traj.test_cmd,
                traj.attempts.len(),
                traj.steps(),
                traj.verified_by.as_deref().unwrap_or("?")
            );
            if applied {
                println!("The patch was applied to the repository.");
            } else {
                println!(
                    "Dry run: the repository is unchanged. Re-run with --apply to write the patch."
                );
            }
        }
        Outcome::GateHeld => {
            let ended: Vec<&str> = traj
                .attempts
                .iter()
                .filter_map(|a| a.ended.map(|e| e.as_str()))
                .collect();
            println!(
                "gate held: no attempt made `{}` pass ({} attempts, {} steps; attempts ended: {}). The repository is unchanged.",
                traj.test_cmd,
                traj.attempts.len(),
                traj.steps(),
                if ended.is_empty() {
                    "-".into()
                } else {
                    ended.join(", ")
                }
            );
            if let Some(b) = traj.budget {
                println!(
                    "The run's {} budget ended it (raise it with --max-{}).",
                    b.as_str(),
                    b.as_str()
                );
            }
        }
        Outcome::Suspicious => println!(
            "suspicious: `{}` passed, but the run looks like it cheated, so nothing is verified and the repository is unchanged. Flags: {}",
            traj.test_cmd,
            traj.flags.join("; ")
        ),
    }
    println!("trajectory: {}", path.display());
}

/// A model that cannot be built: its own [`ModelError::exit_code`].
fn policy_error(e: ModelError) -> CliError {
    CliError {
        code: e.exit_code(),
        message: e.to_string(),
    }
}

fn validate_repo(repo: &Path) -> Result<PathBuf, CliError> {
    let meta = std::fs::metadata(repo).map_err(|e| {
        CliError::usage(format!(
            "repository {} does not exist or cannot be read: {e}",
            repo.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(CliError::usage(format!(
            "repository {} is not a directory",
            repo.display()
        )));
    }
    repo.canonicalize()
        .map_err(|e| CliError::usage(format!("cannot resolve {}: {e}", repo.display())))
}

/// `<runs dir>/<UTC timestamp>-<pid>`, where the runs dir is outside the
/// current directory (`$AIRGATE_HOME/runs`, else
/// `$XDG_STATE_HOME/airgate/runs`, else `~/.local/state/airgate/runs`), so
/// a dry run from the repo root writes nothing into the repo.
pub fn default_run_dir() -> PathBuf {
    crate::engine::audit::default_runs_dir().join(format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    ))
}

/// Saves the trajectory of a run that did not finish, so that no turn is
/// lost; returns the text to append to the error message.
fn save_partial(
    progress: &engine::Progress,
    redactor: &crate::redact::Redactor,
    why: &str,
    out_dir: &Path,
) -> String {
    match progress
        .snapshot(why)
        .map(|t| t.redacted(redactor).save(out_dir))
    {
        Some(Ok(path)) => format!("; the partial trajectory is in {}", path.display()),
        Some(Err(e)) => {
            tracing::warn!(error = %e, dir = %out_dir.display(), "cannot save the partial trajectory");
            String::new()
        }
        None => String::new(),
    }
}
