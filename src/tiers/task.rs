//! `task.toml`, the tier task format of docs/design.md.

use serde::{Deserialize, Serialize};

/// One tier task's `task.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskToml {
    /// Unique id, e.g. `py-off-by-one`.
    pub id: String,
    /// `easy`, `medium` or `hard`.
    pub tier: String,
    /// `python`, `rust`, `go`, `javascript`, `shell`...
    pub language: String,
    /// The bug report shown to the model.
    pub statement: String,
    /// Test command; detected from the repo when absent.
    #[serde(default)]
    pub test_cmd: Option<String>,
    /// Per-run timeout in seconds.
    #[serde(default)]
    pub timeout_s: Option<u64>,
    /// Globs a patch may not touch, added to the patch policy's defaults.
    #[serde(default)]
    pub protected: Option<Vec<String>>,
    /// Globs the patch policy lets a patch change although its defaults
    /// refuse them (a task whose real fix is a config change); the same as
    /// `--allow-path`. Never lifts VCS metadata, secrets or `protected`.
    #[serde(default)]
    pub allow_paths: Vec<String>,
    /// Test ids that must pass after the fix (in the runner's report), in
    /// addition to every test that failed at baseline.
    #[serde(default)]
    pub targets: Vec<String>,
}

impl TaskToml {
    /// Parses and checks a `task.toml`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t: TaskToml = toml::from_str(text).map_err(|e| format!("invalid task.toml: {e}"))?;
        if !matches!(t.tier.as_str(), "easy" | "medium" | "hard") {
            return Err(format!(
                "tier must be easy, medium or hard, not `{}`",
                t.tier
            ));
        }
        if t.statement.trim().is_empty() {
            return Err("statement is empty".into());
        }
        Ok(t)
    }
}
