//! `airgate factory run`.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::engine::EngineConfig;
use crate::error::CliError;
use crate::factory::bench_double::InstantBackend;
use crate::factory::docker::DockerBackend;
use crate::factory::local::LocalBackend;
use crate::factory::run::{RunProvenance, in_shard, parse_shard};
use crate::factory::{
    FactoryConfig, FactoryError, InstanceEnv, PatchVerifier, PublicSources, RunPlan,
};
use crate::model::ModelSpec;
use crate::model::spec::PolicyContext;
use crate::sandbox::SandboxChoice;
use crate::swebench::dataset::load_dataset;

/// Arguments of `airgate factory`.
#[derive(Debug, Args)]
pub struct FactoryArgs {
    /// Which action.
    #[command(subcommand)]
    pub action: FactoryAction,
}

/// `factory` subcommands.
#[derive(Debug, Subcommand)]
pub enum FactoryAction {
    /// Solve public instances with the teacher and keep only verified trajectories.
    Run(FactoryRunArgs),
}

/// `--sandbox` of `factory run`: the [`SandboxChoice`]s it has a backend
/// for (`none` is refused), with their meaning here.
fn factory_sandbox() -> impl clap::builder::TypedValueParser<Value = SandboxChoice> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new([
        PossibleValue::new("docker").help(
            "Instance images (`sweb.eval.x86_64.<id>`), one container per episode and a fresh one per verification",
        ),
        PossibleValue::new("local").help(
            "Git repos on this machine (`--repos DIR/<owner>__<name>`) whose eval script runs on the host: self-contained instances and tests",
        ),
        PossibleValue::new("instant")
            .help("Benchmark only: nothing runs, a non-empty patch counts as resolved")
            .hide(true),
    ])
    .try_map(|s| <SandboxChoice as clap::ValueEnum>::from_str(&s, false))
}

/// `factory run` options.
#[derive(Debug, Args)]
pub struct FactoryRunArgs {
    /// Dataset file (must be declared public in the allowlist).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Teacher model spec.
    #[arg(long)]
    pub teacher: String,
    /// Corpus output directory (rerun the same one to resume).
    #[arg(long)]
    pub out: PathBuf,
    /// Concurrent episodes.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Episodes per instance (the teacher's temperature comes from its model config).
    #[arg(long, default_value_t = 1)]
    pub samples: u32,
    /// Cap on kept rows per instance.
    #[arg(long)]
    pub max_per_instance: Option<u32>,
    /// Deterministic slice I/N of the instance ids.
    #[arg(long)]
    pub shard: Option<String>,
    /// Only these instances.
    #[arg(long, num_args = 1..)]
    pub instance_ids: Vec<String>,
    /// Refuse instances that `airgate images validate` did not find valid
    /// on the image present now (validation.json), naming them.
    #[arg(long)]
    pub require_validated: Option<PathBuf>,
    /// Allowlist of public sources.
    #[arg(long, default_value = "configs/public_sources.toml")]
    pub sources: PathBuf,
    /// Where episodes and verifications run.
    #[arg(long, value_parser = factory_sandbox(), default_value = "docker")]
    pub sandbox: SandboxChoice,
    /// With `--sandbox local`: folder of git repos named `<owner>__<name>`.
    #[arg(long)]
    pub repos: Option<PathBuf>,
    /// Factory settings (steps, attempts, flush policy, eval timeout).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override `flush_rows` from the config.
    #[arg(long)]
    pub flush_rows: Option<usize>,
    /// Override `max_steps` from the config.
    #[arg(long)]
    pub max_steps: Option<u32>,
    /// Wall-time budget of each episode in seconds, checked between steps
    /// and bounding a model call in flight (default: none). An episode it
    /// ends records `budget: wall` in its trajectory and in rejected.jsonl.
    #[arg(long, value_name = "SECONDS")]
    pub max_wall: Option<u64>,
    /// Token budget of each episode (prompt + completion), checked between
    /// steps (default: none); recorded as `budget: tokens`.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// Runs of the final verification, each in a fresh environment, that
    /// must all pass (default: `gate_runs` of the config, 2).
    #[arg(long)]
    pub gate_runs: Option<u32>,
    /// Keep trajectories a cheat detector flagged (`suspicious`) as rows
    /// carrying their flags; by default they go to `rejected/`.
    #[arg(long)]
    pub accept_flagged: bool,
    /// Also write unresolved, errored and flagged trajectories, with their
    /// `reason`, to the rejected Parquet split (`OUT/rejected/part-*.parquet`).
    #[arg(long)]
    pub keep_rejected: bool,
    /// No per-step progress on stderr (a line per step without a terminal;
    /// on one, a spinner line per episode in flight under the run's bar).
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs `airgate factory`.
pub async fn run(args: FactoryArgs) -> anyhow::Result<u8> {
    match args.action {
        FactoryAction::Run(a) => run_factory(a).await,
    }
}

fn usage(e: FactoryError) -> anyhow::Error {
    match e {
        FactoryError::Config(_) | FactoryError::NotPublic(_) => {
            CliError::usage(e.to_string()).into()
        }
        other => CliError::failure(other.to_string()).into(),
    }
}

async fn run_factory(a: FactoryRunArgs) -> anyhow::Result<u8> {
    if a.samples == 0 || a.workers == 0 {
        return Err(CliError::usage("--samples and --workers must be at least 1").into());
    }
    let (cfg_path, required) = match &a.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("configs/factory.toml"), false),
    };
    let cfg = FactoryConfig::load(&cfg_path, required).map_err(usage)?;
    let gate_runs = a.gate_runs.unwrap_or(cfg.gate_runs);
    if gate_runs == 0 {
        return Err(CliError::usage("--gate-runs (or gate_runs) must be at least 1").into());
    }
    let shard = a
        .shard
        .as_deref()
        .map(parse_shard)
        .transpose()
        .map_err(usage)?;
    let teacher =
        ModelSpec::parse(&a.teacher).map_err(|e| CliError::usage(format!("--teacher: {e}")))?;

    // The guard, before anything else touches the data or a model.
    let sources = PublicSources::load(&a.sources).map_err(usage)?;
    let public = sources.check_dataset(&a.dataset).map_err(usage)?;
    let dataset =
        load_dataset(&a.dataset).map_err(|e| CliError::usage(format!("--dataset: {e}")))?;
    for s in &dataset.skipped {
        eprintln!("warning: {}: skipped {s}", a.dataset.display());
    }
    for id in &a.instance_ids {
        if dataset.get(id).is_none() {
            return Err(CliError::usage(format!(
                "--instance-ids: `{id}` is not in {}",
                a.dataset.display()
            ))
            .into());
        }
    }
    let selected: Vec<_> = dataset
        .instances
        .into_iter()
        .filter(|i| a.instance_ids.is_empty() || a.instance_ids.contains(&i.instance_id))
        .filter(|i| shard.is_none_or(|s| in_shard(&i.instance_id, s)))
        .collect();
    if let Some(path) = &a.require_validated {
        let refs: Vec<_> = selected.iter().collect();
        let ns = (!cfg.image_namespace.is_empty()).then_some(cfg.image_namespace.as_str());
        crate::swebench::validate::check_required(path, &refs, ns)
            .await
            .map_err(|e| CliError::usage(e.to_string()))?;
    }
    let licenses = sources.check_instances(&selected).map_err(usage)?;
    let instances: Vec<_> = selected.into_iter().zip(licenses).collect();

    // The local backend confines the teacher and the eval in bubblewrap:
    // refuse to start without it.
    if matches!(a.sandbox, SandboxChoice::Local) {
        crate::sandbox::bwrap::preflight().map_err(|e| CliError::failure(e.to_string()))?;
    }
    let (env, verifier): (Arc<dyn InstanceEnv>, Arc<dyn PatchVerifier>) = match a.sandbox {
        SandboxChoice::Docker => {
            let config = crate::sandbox::docker::DockerConfig::load(None)
                .map_err(|e| CliError::usage(e.to_string()))?;
            let b = Arc::new(DockerBackend {
                config,
                namespace: (!cfg.image_namespace.is_empty()).then(|| cfg.image_namespace.clone()),
                eval_timeout: Duration::from_secs(cfg.eval_timeout_s),
            });
            (b.clone(), b)
        }
        SandboxChoice::Local => {
            let repos = a.repos.clone().ok_or_else(|| {
                CliError::usage(
                    "--sandbox local needs --repos DIR (git repos named <owner>__<name>)",
                )
            })?;
            let b = Arc::new(LocalBackend {
                repos,
                eval_timeout: Duration::from_secs(cfg.eval_timeout_s),
            });
            (b.clone(), b)
        }
        SandboxChoice::Instant => {
            let b = Arc::new(InstantBackend);
            (b.clone(), b)
        }
        // The flag's parser refuses it; kept as validation, not a type.
        SandboxChoice::None => {
            return Err(
                CliError::usage("factory run has no --sandbox none: use docker or local").into(),
            );
        }
    };
    let read_sha = |p: &Path, what: &str| -> anyhow::Result<String> {
        let bytes = std::fs::read(p)
            .map_err(|e| CliError::usage(format!("{what} {}: {e}", p.display())))?;
        Ok(crate::corpus::sha256_hex(&bytes))
    };
    let policy_ctx = PolicyContext {
        config_root: Some(Path::new(".").to_path_buf()),
        ..PolicyContext::default()
    };
    let sampling = crate::model::provider::sampling_params(&teacher, &policy_ctx)
        .map_err(|e| CliError::usage(format!("--teacher: {e}")))?;
    let provenance = RunProvenance {
        dataset_sha256: read_sha(&a.dataset, "--dataset")?,
        allowlist_sha256: read_sha(&a.sources, "--sources")?,
        teacher_spec: a.teacher.clone(),
        sampling: crate::corpus::canonical_json(&sampling),
    };
    let (observer, bars) = super::live::episodes_observer(a.quiet);
    let engine = EngineConfig {
        max_steps: a.max_steps.unwrap_or(cfg.max_steps),
        max_attempts: cfg.max_attempts,
        run_timeout: Duration::from_secs(cfg.run_timeout_s),
        max_wall: a.max_wall.map(Duration::from_secs),
        max_tokens: a.max_tokens,
        observer,
        ..EngineConfig::default()
    };
    let plan = RunPlan {
        out: a.out.clone(),
        dataset_name: public.name,
        instances,
        samples: a.samples,
        max_per_instance: a.max_per_instance,
        workers: a.workers,
        teacher,
        policy_ctx,
        engine,
        flush_rows: a.flush_rows.unwrap_or(cfg.flush_rows),
        flush_every: Duration::from_secs(cfg.flush_secs),
        progress: !a.json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        bars,
        accept_flagged: a.accept_flagged,
        gate_runs,
        keep_rejected: a.keep_rejected,
        provenance,
    };
    let summary = crate::factory::run::run(plan, env, verifier)
        .await
        .map_err(usage)?;
    if a.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "factory: {} episodes ({} resumed) · kept {} · unresolved {} · tampered {} · flagged {} · broken {} · flaky {} · duplicates {} · capped {} · errors {} · corpus rows {} · {:.1} s\ncorpus: {}  (rejected: {}{})",
            summary.episodes,
            summary.resumed,
            summary.kept,
            summary.unresolved,
            summary.tampered,
            summary.flagged,
            summary.broken,
            summary.flaky,
            summary.duplicates,
            summary.capped,
            summary.errors,
            summary.rows_total,
            summary.wall_s,
            a.out.display(),
            a.out.join("rejected/rejected.jsonl").display(),
            if a.keep_rejected {
                format!(", split {}", a.out.join("rejected").display())
            } else {
                String::new()
            }
        );
    }
    Ok(0)
}
