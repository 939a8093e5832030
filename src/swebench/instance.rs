//! One SWE-bench row: the shared currency of the grader, the Docker eval and
//! the factory.

use serde::{Deserialize, Serialize};

/// A SWE-bench instance (a dataset row), with the optional 5.x fields.
/// `FAIL_TO_PASS`/`PASS_TO_PASS` are always real lists here; the loader
/// decodes JSON-encoded strings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Instance {
    /// `owner/name`.
    pub repo: String,
    /// e.g. `django__django-11099`.
    pub instance_id: String,
    /// Commit the instance starts from.
    pub base_commit: String,
    /// The gold patch.
    #[serde(default)]
    pub patch: String,
    /// The test patch applied at evaluation time.
    #[serde(default)]
    pub test_patch: String,
    /// The issue text.
    #[serde(default)]
    pub problem_statement: String,
    /// Hints from the issue thread.
    #[serde(default)]
    pub hints_text: String,
    /// Creation time as in the dataset.
    #[serde(default)]
    pub created_at: String,
    /// Spec-table version, e.g. `3.0`.
    #[serde(default)]
    pub version: String,
    /// Tests that must go from failing to passing.
    #[serde(rename = "FAIL_TO_PASS", default)]
    pub fail_to_pass: Vec<String>,
    /// Tests that must keep passing.
    #[serde(rename = "PASS_TO_PASS", default)]
    pub pass_to_pass: Vec<String>,
    /// Environment setup commit.
    #[serde(default)]
    pub environment_setup_commit: String,
    /// 5.x: the eval script to run as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_script: Option<String>,
    /// 5.x: the image to evaluate in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// 5.x: the log parser name; wins over the repo map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_parser: Option<String>,
    /// 5.x: e.g. `pass_and_fail` or `fail_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_type: Option<String>,
}
