//! `airgate tiers list|validate|run`.
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};

use crate::engine::EngineConfig;
use crate::error::{CliError, exit};
use crate::sandbox::SandboxChoice;
use crate::tiers::TiersError;
use crate::tiers::run::{RunConfig, RunStop};
use crate::tiers::{scores, suite, validate};

/// Arguments of `airgate tiers`.
#[derive(Debug, Args)]
pub struct TiersArgs {
    /// Which tiers action.
    #[command(subcommand)]
    pub action: TiersAction,
}

/// `tiers` subcommands.
#[derive(Debug, Subcommand)]
pub enum TiersAction {
    /// Show the tasks by tier and language.
    List(TierCommon),
    /// Check every task: fails as shipped, passes with solution.patch, tamper-proof.
    Validate(TierValidate),
    /// Run models over the suite.
    Run(TierRun),
}

/// Options shared by every `tiers` action.
#[derive(Debug, Args)]
pub struct TierCommon {
    /// Task suite directory.
    #[arg(long, default_value = "tasks")]
    pub tasks: PathBuf,
    /// Only this tier.
    #[arg(long)]
    pub tier: Option<String>,
}

/// `tiers validate` options.
#[derive(Debug, Args)]
pub struct TierValidate {
    #[command(flatten)]
    /// Suite selection.
    pub common: TierCommon,
    /// Tasks checked at once (default: the number of CPUs).
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// `tiers run` options.
#[derive(Debug, Args)]
pub struct TierRun {
    #[command(flatten)]
    /// Suite selection.
    pub common: TierCommon,
    /// Model spec; repeat to compare models.
    #[arg(long = "model", required = true)]
    pub models: Vec<String>,
    /// Episodes per task (pass@k when > 1).
    #[arg(long, default_value_t = 1)]
    pub samples: u32,
    /// Run directory (default runs/<timestamp>); reusing one resumes it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Episodes in flight at once over all models (default: the number of
    /// CPUs); a model served on this machine still runs one at a time.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Where commands run.
    #[arg(long, value_enum, default_value_t = SandboxChoice::Local)]
    pub sandbox: SandboxChoice,
    /// Image for --sandbox docker.
    #[arg(long)]
    pub image: Option<String>,
    /// Tool calls per attempt.
    #[arg(long, default_value_t = 30)]
    pub max_steps: u32,
    /// Attempts per episode.
    #[arg(long, default_value_t = 5)]
    pub max_attempts: u32,
    /// Wall-time budget of each episode in seconds (checked between steps).
    #[arg(long, value_name = "SECONDS")]
    pub max_wall: Option<u64>,
    /// Token budget of each episode (checked between steps).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u64>,
    /// Ignored loop-breaker nudges after which an attempt ends as `stuck`.
    #[arg(long, value_name = "K", default_value_t = crate::engine::loop_breaker::DEFAULT_STUCK_AFTER, value_parser = clap::value_parser!(u32).range(1..))]
    pub stuck_after: u32,
    /// No per-step progress on stderr (a line per step without a terminal;
    /// on one, a spinner line per episode in flight under the run's bar).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `airgate tiers`.
pub async fn run(args: TiersArgs) -> anyhow::Result<u8> {
    match args.action {
        TiersAction::List(a) => list(a),
        TiersAction::Validate(a) => validate_cmd(a).await,
        TiersAction::Run(a) => run_cmd(a).await,
    }
}

fn to_cli(e: TiersError) -> CliError {
    match e {
        TiersError::Usage(_) | TiersError::Task { .. } => CliError::usage(e.to_string()),
        other => CliError::failure(other.to_string()),
    }
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn list(a: TierCommon) -> anyhow::Result<u8> {
    let tasks = suite::discover(&a.tasks, a.tier.as_deref()).map_err(to_cli)?;
    print!("{}", suite::list_table(&tasks));
    Ok(exit::OK)
}

async fn validate_cmd(a: TierValidate) -> anyhow::Result<u8> {
    let tasks = suite::discover(&a.common.tasks, a.common.tier.as_deref()).map_err(to_cli)?;
    let bar = indicatif::ProgressBar::new(tasks.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("validating [{bar:30}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let checks = validate::validate_all(&tasks, a.jobs.unwrap_or_else(default_jobs), |c| {
        bar.inc(1);
        bar.set_message(format!(
            "{} {}",
            c.id,
            if c.is_valid() { "ok" } else { "INVALID" }
        ));
    })
    .await;
    bar.finish_and_clear();
    print!("{}", validate::render(&checks));
    let test_ms: u64 = checks.iter().map(|c| c.test_ms).sum();
    println!(
        "wall {:.1} s; test runs {:.1} s summed over tasks",
        started.elapsed().as_secs_f64(),
        test_ms as f64 / 1000.0
    );
    Ok(if checks.iter().all(validate::TaskCheck::is_valid) {
        exit::OK
    } else {
        exit::FAILURE
    })
}

async fn run_cmd(a: TierRun) -> anyhow::Result<u8> {
    if a.samples == 0 {
        return Err(CliError::usage("--samples must be at least 1").into());
    }
    let tasks = suite::discover(&a.common.tasks, a.common.tier.as_deref()).map_err(to_cli)?;
    let choice = a.sandbox;
    super::agent_sandbox(choice, exit::FAILURE)?;
    let out = a.out.clone().unwrap_or_else(super::solve::default_run_dir);
    let (observer, bars) = super::live::episodes_observer(a.quiet);
    let cfg = RunConfig {
        tasks,
        models: a.models.clone(),
        samples: a.samples,
        out: out.clone(),
        jobs: a.jobs.unwrap_or_else(default_jobs).max(1),
        sandbox: choice,
        image: a.image.clone(),
        engine: EngineConfig {
            max_steps: a.max_steps,
            max_attempts: a.max_attempts,
            max_wall: a.max_wall.map(std::time::Duration::from_secs),
            max_tokens: a.max_tokens,
            stuck_after: a.stuck_after,
            observer,
            ..EngineConfig::default()
        },
        config_root: PathBuf::from("."),
        progress: true,
        bars,
    };
    let plans = crate::tiers::run::prepare(&cfg)
        .await
        .map_err(|e| match e {
            TiersError::Model(m) => CliError::usage(m.to_string()),
            other => to_cli(other),
        })?;
    let started = Instant::now();
    let summary = match crate::tiers::run::run_suite(&cfg, &plans).await {
        Ok(s) => s,
        Err(RunStop::Interrupted) => {
            return Err(CliError {
                code: exit::INTERRUPTED,
                message: format!(
                    "interrupted; finished episodes are in {}; rerun with --out {} to resume",
                    out.display(),
                    out.display()
                ),
            }
            .into());
        }
        Err(RunStop::Failed(e)) => return Err(to_cli(e).into()),
    };
    let wall = started.elapsed().as_secs_f64();
    let table = scores::render_table(&scores::score_models(&summary.rows));
    println!("{table}");
    let ep_wall: f64 = summary.rows.iter().map(|r| r.wall_s).sum();
    let ep_test: f64 = summary.rows.iter().map(|r| r.test_s).sum();
    println!(
        "{} episode(s) run now, {} resumed; run wall time {wall:.1} s with {} job(s)",
        summary.ran, summary.resumed, cfg.jobs
    );
    if ep_wall > 0.0 {
        println!(
            "episode time {ep_wall:.1} s: test runs {ep_test:.1} s ({:.0}%), model calls and harness {:.1} s ({:.0}%)",
            100.0 * ep_test / ep_wall,
            ep_wall - ep_test,
            100.0 * (ep_wall - ep_test) / ep_wall
        );
    }
    println!(
        "results: {}",
        out.join(crate::tiers::results::RESULTS_FILE).display()
    );
    if summary.errors.is_empty() {
        Ok(exit::OK)
    } else {
        eprintln!(
            "{} episode(s) not recorded (rerun with --out {} to retry):",
            summary.errors.len(),
            out.display()
        );
        for e in &summary.errors {
            eprintln!("  {e}");
        }
        Ok(exit::FAILURE)
    }
}
