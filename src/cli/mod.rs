//! The command line: one `clap` derive tree, one tokio runtime, and the
//! mapping from errors to the exit codes of docs/design.md. `anyhow` lives here
//! and nowhere below.

mod corpus;
mod factory;
mod images;
mod interactive;
mod live;
mod report;
pub mod solve;
mod swebench;
mod swebench_eval;
mod swebench_grade;
mod tiers;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{CliError, exit};

/// airgate: a verification-first coding agent that never claims a fix
/// works until the repository's own tests pass.
#[derive(Debug, Parser)]
#[command(name = "airgate", version, about, propagate_version = true)]
pub struct Cli {
    /// More logging (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Container engine for `--sandbox docker`, `swebench eval` and `images`:
    /// docker, or podman through its Docker-compatible API. Default: podman
    /// when DOCKER_HOST names a podman socket, else docker.
    #[arg(long, global = true, value_enum, env = "AIRGATE_ENGINE")]
    pub engine: Option<crate::sandbox::engine::Engine>,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every top-level command of docs/design.md.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the verification-first loop on one repository.
    Solve(solve::SolveArgs),
    /// Work on the graded task suite (list, validate, run).
    Tiers(tiers::TiersArgs),
    /// SWE-bench grading and evaluation.
    Swebench(swebench::SwebenchArgs),
    /// Run the teacher and write the verified corpus.
    Factory(factory::FactoryArgs),
    /// Inspect, verify, export or merge a corpus.
    Corpus(corpus::CorpusArgs),
    /// Build the model comparison report (HTML + Markdown).
    Report(report::ReportArgs),
    /// Local base images and air-gapped image bundles.
    Images(images::ImagesArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing(cli.verbose);
    if let Some(engine) = cli.engine {
        crate::sandbox::engine::select(engine);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ENVIRONMENT);
        }
    };
    let result = runtime.block_on(dispatch(cli.command));
    // Do not wait on blocking work left behind by an interrupted run.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e
                .downcast_ref::<CliError>()
                .map(|c| c.code)
                .unwrap_or(exit::FAILURE);
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Solve(a) => solve::run(a).await,
        Command::Tiers(a) => tiers::run(a).await,
        Command::Swebench(a) => swebench::run(a).await,
        Command::Factory(a) => factory::run(a).await,
        Command::Corpus(a) => corpus::run(a).await,
        Command::Report(a) => report::run(a).await,
        Command::Images(a) => images::run(a).await,
    }
}

/// Checks the sandbox of an agent run (`solve`, `tiers run`) before
/// anything starts: `instant` (a `factory run` benchmark) is refused,
/// bubblewrap must work (else the error exits with `preflight_code`), and
/// `none` prints its warning.
fn agent_sandbox(
    choice: crate::sandbox::SandboxChoice,
    preflight_code: u8,
) -> Result<(), CliError> {
    if choice == crate::sandbox::SandboxChoice::Instant {
        return Err(CliError::usage(
            "--sandbox instant is for `factory run` benchmarks only: use local, none or docker",
        ));
    }
    choice.preflight().map_err(|e| CliError {
        code: preflight_code,
        message: e.to_string(),
    })?;
    if let Some(w) = choice.warning() {
        eprintln!("{w}");
    }
    Ok(())
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
