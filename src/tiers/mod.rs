//! The graded task suite: task format, validation, runs and scores.
//!
//! `suite` finds tasks on disk, `validate` proves each one is worth scoring,
//! `run` drives models through the same engine and gate, `results` keeps one
//! JSONL row per episode (so runs resume), and `scores` turns rows into
//! pass@1, pass@k and means by tier and language.

pub mod probe;
pub mod results;
pub mod run;
pub mod scores;
pub mod suite;
pub mod task;
pub mod validate;

use crate::error::Retryable;
use crate::model::ModelError;
use crate::sandbox::SandboxError;

/// Failures of the tiers room.
#[derive(Debug, thiserror::Error)]
pub enum TiersError {
    /// Bad flags or a missing suite directory.
    #[error("{0}")]
    Usage(String),
    /// A task directory that does not follow the format of docs/design.md.
    #[error("task {task}: {reason}")]
    Task {
        /// Task directory or id.
        task: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Filesystem failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Workspace or sandbox failure.
    #[error("sandbox: {0}")]
    Sandbox(#[from] SandboxError),
    /// A model that cannot be built or reached.
    #[error("{0}")]
    Model(#[from] ModelError),
    /// A malformed results file.
    #[error("{0}")]
    Results(String),
}

impl Retryable for TiersError {
    fn is_retryable(&self) -> bool {
        match self {
            TiersError::Sandbox(e) => e.is_retryable(),
            TiersError::Model(e) => e.is_retryable(),
            _ => false,
        }
    }
}
