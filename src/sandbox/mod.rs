//! Where commands run: a bubblewrap sandbox on this machine, a Docker
//! container, or (`--sandbox none`) the bare host.
//!
//! The agent's file tools always work on a host directory (the
//! [`Workspace`]); a sandbox decides where *commands* (`run`, the gate) run.
//! The bubblewrap sandbox shows the workspace at its own path and the Docker
//! sandbox bind-mounts it at `/testbed`, so file tools and commands see one
//! tree whichever sandbox is used.

pub mod bwrap;
pub mod capture;
pub mod config;
pub mod docker;
pub mod engine;
mod libpod;
pub mod local;
pub mod workspace;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Retryable;
pub use capture::BoundedCapture;

/// Runs short blocking work (git, file walks) from async code. On the
/// multi-thread runtime the worker hands its other tasks to a peer first,
/// so one episode's `git diff` does not stall every other episode's model
/// I/O; elsewhere (current-thread runtimes in tests) it just runs `f`.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
pub use workspace::Workspace;

/// The text appended to a log when a command is killed for running too long
/// (the official SWE-bench harness wording).
pub fn timeout_notice(timeout: Duration) -> String {
    format!("\n\nTimeout error: {} seconds exceeded.", timeout.as_secs())
}

/// One command to run inside a sandbox, from the repo root.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// Shell command line, run with `bash -c`.
    pub command: String,
    /// Wall-clock limit; the whole process group is killed past it.
    pub timeout: Duration,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Bytes of output kept from the head and from the tail each; the middle
    /// is dropped (and counted) so that a command printing gigabytes cannot
    /// exhaust memory.
    pub capture_limit: usize,
}

impl ExecRequest {
    /// A request with the default capture limit (1 MiB head + 1 MiB tail).
    pub fn new(command: impl Into<String>, timeout: Duration) -> Self {
        Self {
            command: command.into(),
            timeout,
            env: vec![],
            capture_limit: 1 << 20,
        }
    }
}

/// What a command did. Output is stdout and stderr combined, decoded lossily.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecOutput {
    /// Exit code; `None` when killed by a signal or timeout.
    pub exit_code: Option<i32>,
    /// Combined output (head + tail if it was longer than the capture limit).
    pub output: String,
    /// True when the command was killed for exceeding its timeout.
    pub timed_out: bool,
    /// Bytes dropped from the middle of the output.
    pub dropped_bytes: u64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

impl ExecOutput {
    /// True only for a clean exit 0 that did not time out.
    pub fn success(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
    }
}

/// Sandbox failures (not command failures: a failing command is an `ExecOutput`).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Filesystem or process-spawn failure on the host.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The Docker daemon could not be reached or failed transiently.
    #[error(
        "docker daemon unavailable: {0} (is dockerd, or `podman system service` with --engine podman, running and its socket readable?)"
    )]
    DaemonUnavailable(String),
    /// The requested image is not present locally (nothing can be pulled here).
    #[error("image {0} is not present locally: build it or `airgate images load` a bundle")]
    ImageMissing(String),
    /// The container was killed for exceeding its memory limit.
    #[error("container ran out of memory (OOM-killed)")]
    OutOfMemory,
    /// A git command in the workspace failed.
    #[error("git failed in workspace: {0}")]
    Git(String),
    /// The sandbox cannot work on this machine (bubblewrap missing, user
    /// namespaces forbidden); the message says how to fix it in one line.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else from the sandbox backend.
    #[error("{0}")]
    Other(String),
}

impl SandboxError {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

impl Retryable for SandboxError {
    fn is_retryable(&self) -> bool {
        matches!(self, SandboxError::DaemonUnavailable(_))
    }
}

/// Which sandbox an episode's commands run in (`--sandbox`): the one
/// choice `solve`, `tiers run` and `factory run` parse. A command that
/// takes only some of them refuses the others when it parses its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxChoice {
    /// On this machine, in a scratch copy of the repo, inside bubblewrap:
    /// read-only system, no network, private HOME and /tmp, no secrets.
    Local,
    /// On this machine with no confinement at all (prints a warning).
    None,
    /// In a Docker container with the scratch copy at /testbed.
    Docker,
    /// Benchmark only (`factory run`): nothing runs, a non-empty patch
    /// counts as resolved. It opens no sandbox.
    #[value(hide = true)]
    Instant,
}

impl SandboxChoice {
    /// The flag value, for messages.
    pub fn label(self) -> &'static str {
        match self {
            SandboxChoice::Local => "local",
            SandboxChoice::None => "none",
            SandboxChoice::Docker => "docker",
            SandboxChoice::Instant => "instant",
        }
    }

    /// Checks, before anything else starts, that this choice can work here
    /// (bubblewrap installed and usable for `Local`).
    pub fn preflight(&self) -> Result<(), SandboxError> {
        match self {
            SandboxChoice::Local => bwrap::preflight(),
            SandboxChoice::None | SandboxChoice::Docker | SandboxChoice::Instant => Ok(()),
        }
    }

    /// The warning printed when the user chose no confinement.
    pub fn warning(&self) -> Option<&'static str> {
        match self {
            SandboxChoice::None => Some(
                "warning: --sandbox none: the agent's commands run unconfined on this machine, as your user, with your environment and network; use it only for a repository and a model you trust",
            ),
            _ => None,
        }
    }

    /// Opens the sandbox for `ws`: the agent's commands run in its tree.
    /// `image` is the Docker image (the default image when `None`).
    pub async fn open(
        &self,
        ws: &Workspace,
        image: Option<&str>,
    ) -> Result<Box<dyn Sandbox>, SandboxError> {
        Ok(match self {
            SandboxChoice::Local => {
                let cfg = std::sync::Arc::new(config::SandboxConfig::load(None)?);
                let root = std::fs::canonicalize(ws.root())
                    .map_err(|e| SandboxError::io("resolving the workspace", e))?;
                // The agent's private HOME lives in the harness's state
                // (never mounted elsewhere): caches persist between its
                // steps, and gate runs get a fresh one.
                let home = ws.state_dir().join("agent-home");
                Box::new(bwrap::BwrapSandbox::new(&root, Some(home), cfg)?)
            }
            SandboxChoice::None => Box::new(local::LocalSandbox::new(ws.root())),
            SandboxChoice::Docker => {
                let config = docker::DockerConfig::load(None)?;
                docker::for_solve_workspace(ws, image, config).await?
            }
            SandboxChoice::Instant => {
                return Err(SandboxError::Other(
                    "--sandbox instant is a factory benchmark and opens no sandbox: use local, none or docker".into(),
                ));
            }
        })
    }
}

/// Where a gate sandbox's report directory is mounted inside confined
/// sandboxes (bubblewrap, Docker).
pub const REPORT_MOUNT: &str = "/airgate-report";

/// Where commands run. File tools use [`Sandbox::workspace`] directly.
#[async_trait]
pub trait Sandbox: Send + Sync {
    /// `"local"` (bubblewrap), `"docker"` or `"none"`, for trajectories and
    /// errors.
    fn kind(&self) -> &'static str;
    /// The host directory holding the repo the agent works on.
    fn workspace(&self) -> &Path;
    /// Runs a command from the repo root; killing it on timeout.
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError>;
    /// A new sandbox of the same kind and settings whose commands run in
    /// `root`, sharing no process and no writable state with this one. The
    /// gate judges a patch in one of these, on a fresh pristine copy, so
    /// nothing the agent left running or wrote outside its diff can reach
    /// the verdict. `report_dir` is a harness-owned host directory, outside
    /// `root`, made writable to the new sandbox's commands at
    /// [`Sandbox::report_dir`] (where test runners write structured results).
    async fn fresh(
        &self,
        root: &Path,
        report_dir: Option<&Path>,
    ) -> Result<Box<dyn Sandbox>, SandboxError>;
    /// Where commands see the `report_dir` this sandbox was made with
    /// ([`REPORT_MOUNT`] in confined sandboxes, the host path otherwise).
    fn report_dir(&self) -> Option<String> {
        None
    }
    /// A long-lived command (an MCP server) whose stdin and stdout the
    /// caller pipes: `command` runs with `bash -c`, from the workspace root,
    /// under the same confinement as [`Sandbox::exec`] except that the
    /// workspace is read-only and HOME is private to the process (bubblewrap).
    /// The command leads its own process group and dies with the thread that
    /// spawns it (`PR_SET_PDEATHSIG`). The default refuses
    /// ([`SandboxError::Unavailable`]): the Docker sandbox cannot host one.
    fn stdio_command(&self, command: &str) -> Result<std::process::Command, SandboxError> {
        let _ = command;
        Err(SandboxError::Unavailable(format!(
            "the {} sandbox cannot run MCP servers: use --sandbox local (bubblewrap) or --sandbox none",
            self.kind()
        )))
    }
    /// Releases the sandbox (removes the container). Idempotent.
    async fn close(&self) -> Result<(), SandboxError> {
        Ok(())
    }
}
