//! The confined tools the model acts through: `ls`, `read_file`, `search`,
//! `str_replace`, `run`, `submit` (names and arguments from docs/design.md).
//!
//! Every path is resolved inside the workspace root; every output is cut to
//! head + tail. Errors are returned to the model as text, never acted on.

pub mod approval;
pub mod edit;
pub mod fs;
pub mod paths;
pub mod registry;
pub mod run;
pub mod safety;
pub mod search;
pub use crate::truncate;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::protocol::ToolCall;
use crate::sandbox::Sandbox;
pub use registry::{Registry, Tool, ToolHandler, ToolSpec};

/// Default limit for tool output shown to the model (head + tail).
pub const DEFAULT_OUTPUT_LIMIT: usize = 10_000;

/// Knobs for one episode's tools.
#[derive(Clone)]
pub struct ToolContext<'a> {
    /// Where commands run; its workspace is the root every path is confined to.
    pub sandbox: &'a dyn Sandbox,
    /// Bytes of output shown to the model.
    pub output_limit: usize,
    /// Default timeout of the `run` tool.
    pub run_timeout: Duration,
    /// Upper bound the model may ask for with `timeout_s`.
    pub max_run_timeout: Duration,
    /// Early refusals (UX, not the boundary: the sandbox and the gate are).
    pub guards: Guards<'a>,
}

/// Friendly early refusals: a `str_replace` the patch policy would drop
/// anyway, and commands the approval policy holds back.
#[derive(Clone, Copy, Default)]
pub struct Guards<'a> {
    /// The patch policy; `str_replace` refuses paths it refuses.
    pub policy: Option<&'a crate::gate::policy::PatchPolicy>,
    /// The approval policy and mode for `run`.
    pub approval: Option<(&'a approval::ApprovalPolicy, approval::ApprovalMode)>,
}

impl Guards<'_> {
    /// The model-facing refusal of an edit of `path`, if the patch policy
    /// refuses it (the path is normalised lexically; the gate's filter on
    /// the real diff is the enforcement).
    pub fn refuse_edit(&self, root: &Path, path: &str) -> Option<String> {
        let policy = self.policy?;
        let rel = normalise(path)?;
        let kind = if root.join(&rel).symlink_metadata().is_ok() {
            crate::gate::policy::ChangeKind::Modify
        } else {
            crate::gate::policy::ChangeKind::Add
        };
        policy.check(&rel, kind).err().map(|d| d.to_string())
    }
}

/// `a/./b/../c` as `a/c`; `None` when it leaves the root or is absolute.
fn normalise(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = vec![];
    if path.starts_with('/') {
        return None;
    }
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

impl<'a> ToolContext<'a> {
    /// The root every path is confined to.
    pub fn root(&self) -> &Path {
        self.sandbox.workspace()
    }
}

/// The result of one tool call, as shown to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    /// Text returned to the model (already truncated).
    pub text: String,
    /// True when the call failed (bad args, escaped path, blocked command...).
    pub is_error: bool,
    /// True for `submit`: the attempt ends and the gate runs.
    pub submitted: bool,
}

impl ToolOutcome {
    /// A successful result.
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: false,
            submitted: false,
        }
    }
    /// An error returned to the model.
    pub fn err(text: impl Into<String>) -> Self {
        Self {
            text: format!("ERROR: {}", text.into()),
            is_error: true,
            submitted: false,
        }
    }
}

/// JSON schemas of the built-in tools, in OpenAI function-calling format.
pub fn schemas() -> Vec<Value> {
    Registry::builtin().schemas()
}

/// Runs one call of a built-in tool (see [`Registry::dispatch`]).
pub async fn dispatch(ctx: &ToolContext<'_>, call: &ToolCall) -> ToolOutcome {
    Registry::builtin().dispatch(ctx, call).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::local::LocalSandbox;
    use serde_json::json;

    fn call(name: &str, arguments: Value) -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: name.into(),
            arguments,
        }
    }

    fn ctx(sb: &LocalSandbox) -> ToolContext<'_> {
        ToolContext {
            sandbox: sb,
            guards: Default::default(),
            output_limit: DEFAULT_OUTPUT_LIMIT,
            run_timeout: Duration::from_secs(10),
            max_run_timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn unknown_tools_and_arguments_are_errors_not_actions() {
        let dir = tempfile::tempdir().unwrap();
        let sb = LocalSandbox::new(dir.path());
        let c = ctx(&sb);
        let out = dispatch(&c, &call("rm", json!({}))).await;
        assert!(
            out.is_error && out.text.contains("unknown tool") && out.text.contains("str_replace")
        );
        let out = dispatch(&c, &call("run", json!({"command": "touch x", "cwd": "/"}))).await;
        assert!(out.is_error && out.text.contains("cwd"), "{}", out.text);
        assert!(
            !dir.path().join("x").exists(),
            "a call with unknown arguments was executed"
        );
        let out = dispatch(&c, &call("ls", json!(["a"]))).await;
        assert!(out.is_error && out.text.contains("JSON object"));
    }

    #[tokio::test]
    async fn submit_ends_the_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let sb = LocalSandbox::new(dir.path());
        let out = dispatch(&ctx(&sb), &call("submit", Value::Null)).await;
        assert!(out.submitted && !out.is_error);
    }

    #[test]
    fn schemas_match_the_design_contract() {
        // docs/design.md, "Tools the model sees": names, order and arguments.
        let contract: [(&str, &[&str], &[&str]); 6] = [
            ("ls", &[], &["path"]),
            ("read_file", &["path"], &["start_line", "end_line"]),
            ("search", &["pattern"], &["path", "glob"]),
            ("str_replace", &["path", "old_str", "new_str"], &[]),
            ("run", &["command"], &["timeout_s"]),
            ("submit", &[], &[]),
        ];
        let specs: Vec<ToolSpec> = Registry::builtin()
            .names()
            .iter()
            .filter_map(|n| Registry::builtin().get(n).map(|t| t.spec().clone()))
            .collect();
        assert_eq!(specs.len(), contract.len());
        for (spec, (name, required, optional)) in specs.iter().zip(contract) {
            assert_eq!(spec.name, name);
            let mut req: Vec<String> = spec
                .args()
                .into_iter()
                .filter(|a| a.1)
                .map(|a| a.0)
                .collect();
            let mut opt: Vec<String> = spec
                .args()
                .into_iter()
                .filter(|a| !a.1)
                .map(|a| a.0)
                .collect();
            req.sort();
            opt.sort();
            let mut want_req: Vec<String> = required.iter().map(|s| s.to_string()).collect();
            let mut want_opt: Vec<String> = optional.iter().map(|s| s.to_string()).collect();
            want_req.sort();
            want_opt.sort();
            assert_eq!((req, opt), (want_req, want_opt), "{name}");
        }
    }
}
