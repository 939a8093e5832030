//! Error conventions shared by every room.
//!
//! Library code returns typed errors (one `thiserror` enum per room). Each of
//! them implements [`Retryable`], so that callers (the factory's worker pool,
//! the HTTP client, the eval runner) can decide whether trying again may help
//! without string-matching messages. `anyhow` is used only at the CLI edge.

/// Whether an error is transient: the same call may succeed if repeated.
pub trait Retryable {
    /// True when repeating the operation may succeed (timeouts, 429/5xx,
    /// connection resets, a busy Docker daemon). False for user or data errors.
    fn is_retryable(&self) -> bool;
}

/// Exit codes from docs/design.md, shared by every command.
pub mod exit {
    /// Success; for `solve`, a verified patch or tests already passing.
    pub const OK: u8 = 0;
    /// Failure; for `solve`, the gate held.
    pub const FAILURE: u8 = 1;
    /// Usage or configuration error.
    pub const USAGE: u8 = 2;
    /// Broken environment (no test command, sandbox failure). `solve` only.
    pub const ENVIRONMENT: u8 = 3;
    /// The tests passed but a cheat detector fired: `suspicious`, never
    /// verified. `solve` only.
    pub const SUSPICIOUS: u8 = 4;
    /// Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
}

/// An error that the CLI edge maps to a specific exit code.
///
/// Wrap a library error in this (via `anyhow`) when the exit code matters.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// The exit code the process should end with.
    pub code: u8,
    /// What went wrong and what to do about it.
    pub message: String,
}

impl CliError {
    /// A usage or configuration error (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: exit::USAGE,
            message: message.into(),
        }
    }
    /// A broken-environment error (exit code 3).
    pub fn environment(message: impl Into<String>) -> Self {
        Self {
            code: exit::ENVIRONMENT,
            message: message.into(),
        }
    }
    /// A generic failure (exit code 1).
    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            code: exit::FAILURE,
            message: message.into(),
        }
    }
    /// Used by commands whose issue has not landed yet: a clear refusal, never a fake result.
    pub fn not_yet(command: &str) -> Self {
        Self {
            code: exit::FAILURE,
            message: format!("`airgate {command}` is not yet available in this build"),
        }
    }
}
