//! The factory: a teacher model solves public SWE-bench instances inside the
//! harness, and only trajectories whose final diff passes the official eval
//! in a fresh environment enter the Parquet corpus.
//!
//! - [`sources`]: the public-only guard (`configs/public_sources.toml`).
//! - [`env`]: the injectable seams, [`InstanceEnv`] (where the agent works)
//!   and [`PatchVerifier`] (the fresh-environment official eval), and the
//!   engine gate built on them.
//! - [`docker`], [`local`], [`instant`]: the three backends.
//! - [`run`]: workers, samples, caps, shards, the done-log and resume.

#[doc(hidden)]
pub mod bench_double;
pub mod docker;
pub mod local;
pub mod run;
pub mod seams;
pub mod sources;

use std::path::Path;

use serde::Deserialize;

use crate::corpus::CorpusError;
use crate::engine::EngineError;
use crate::error::Retryable;
use crate::model::ModelError;
use crate::sandbox::SandboxError;
pub use run::{RunPlan, Summary};
pub use seams::{InstanceEnv, PatchVerifier, Prepared, Verdict};
pub use sources::PublicSources;

/// Errors of the factory room.
#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    /// Bad arguments or configuration (exit code 2).
    #[error("{0}")]
    Config(String),
    /// A dataset or repo that is not on the public allowlist (exit code 2).
    #[error("{0}")]
    NotPublic(String),
    /// The sandbox failed.
    #[error("sandbox failure: {0}")]
    Sandbox(#[from] SandboxError),
    /// The engine failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The teacher could not be built or used.
    #[error("teacher: {0}")]
    Model(#[from] ModelError),
    /// The corpus could not be written.
    #[error("corpus: {0}")]
    Corpus(#[from] CorpusError),
    /// Filesystem failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The run was interrupted (Ctrl-C); rerun with the same `--out` to resume.
    #[error("interrupted: kept rows are saved; rerun with the same --out to resume")]
    Interrupted,
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl FactoryError {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

impl Retryable for FactoryError {
    fn is_retryable(&self) -> bool {
        match self {
            FactoryError::Sandbox(e) => e.is_retryable(),
            FactoryError::Engine(e) => e.is_retryable(),
            FactoryError::Model(e) => e.is_retryable(),
            FactoryError::Corpus(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// `configs/factory.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FactoryConfig {
    /// Tool calls per attempt.
    pub max_steps: u32,
    /// Engine attempts per episode (each ends in a hidden eval).
    pub max_attempts: u32,
    /// Timeout of the official eval of one patch, in seconds.
    pub eval_timeout_s: u64,
    /// Default timeout of the agent's `run` tool, in seconds.
    pub run_timeout_s: u64,
    /// Runs of the final verification, each in a fresh environment; every
    /// one must pass (a flaky pass is never kept).
    pub gate_runs: u32,
    /// Kept rows buffered before a segment is written.
    pub flush_rows: usize,
    /// Longest time kept rows stay buffered, in seconds.
    pub flush_secs: u64,
    /// Image namespace for instance images (`swebench` for the published
    /// names); empty for local names `sweb.eval.x86_64.<id>`.
    pub image_namespace: String,
}

impl Default for FactoryConfig {
    fn default() -> Self {
        Self {
            max_steps: 40,
            max_attempts: 2,
            eval_timeout_s: 1800,
            run_timeout_s: 120,
            gate_runs: 2,
            flush_rows: 16,
            flush_secs: 120,
            image_namespace: String::new(),
        }
    }
}

impl FactoryConfig {
    /// Loads a config file; `required = false` turns a missing file into the defaults.
    pub fn load(path: &Path, required: bool) -> Result<Self, FactoryError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                FactoryError::Config(format!("{}: invalid factory config: {e}", path.display()))
            }),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(FactoryError::Config(format!(
                "cannot read factory config {}: {e}",
                path.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/factory.toml");
        let c = FactoryConfig::load(&p, true).unwrap();
        assert!(c.max_steps > 0 && c.flush_rows > 0);
        assert!(FactoryConfig::load(Path::new("/nonexistent.toml"), true).is_err());
        assert!(FactoryConfig::load(Path::new("/nonexistent.toml"), false).is_ok());
    }
}
