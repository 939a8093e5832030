//! The confined tools the model acts through: `ls`, `read_file`, `search`,
//! `str_replace`, `run`, `submit` (names and arguments from docs/design.md).
//!
//! Every path is resolved inside the workspace root; every output is cut to
//! head + tail. Errors are returned to the model as text, never acted on.

pub mod approval;
pub mod edit;
pub mod fs;
pub mod paths;
pub mod run;
pub mod safety;
pub mod search;
pub use crate::truncate;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::model::ToolCall;
use crate::sandbox::Sandbox;

/// Names of the tools, in the order they are offered.
pub const TOOL_NAMES: [&str; 6] = ["ls", "read_file", "search", "str_replace", "run", "submit"];

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
    /// MCP servers whose tools are offered as `SERVER__tool` (`None`: none).
    pub mcp: Option<&'a crate::mcp::McpHub>,
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

/// JSON schemas of the tools, in OpenAI function-calling format.
pub fn schemas() -> Vec<Value> {
    let f = |name: &str, desc: &str, props: Value, required: &[&str]| {
        json!({
            "type": "function",
            "function": {
                "name": name,
                "description": desc,
                "parameters": {
                    "type": "object",
                    "properties": props,
                    "required": required,
                    "additionalProperties": false,
                }
            }
        })
    };
    vec![
        f(
            "ls",
            "List a directory of the repository (default: the root).",
            json!({"path": {"type": "string", "description": "Directory, relative to the repo root."}}),
            &[],
        ),
        f(
            "read_file",
            "Read a file, or lines start_line..=end_line of it (1-based). Large files are paged.",
            json!({
                "path": {"type": "string"},
                "start_line": {"type": "integer", "minimum": 1},
                "end_line": {"type": "integer", "minimum": 1}
            }),
            &["path"],
        ),
        f(
            "search",
            "Regex search across the repository (honours .gitignore). Returns file:line: text.",
            json!({
                "pattern": {"type": "string", "description": "Rust regex syntax."},
                "path": {"type": "string", "description": "File or directory to search in."},
                "glob": {"type": "string", "description": "Only files matching this glob, e.g. *.py"}
            }),
            &["pattern"],
        ),
        f(
            "str_replace",
            "Replace the unique occurrence of old_str in a file with new_str. Copy old_str exactly from read_file output; leading/trailing whitespace per line is tolerated. With an empty old_str on a missing file, creates it.",
            json!({
                "path": {"type": "string"},
                "old_str": {"type": "string"},
                "new_str": {"type": "string"}
            }),
            &["path", "old_str", "new_str"],
        ),
        f(
            "run",
            "Run a shell command from the repo root (e.g. the tests). Dangerous commands are refused.",
            json!({
                "command": {"type": "string"},
                "timeout_s": {"type": "integer", "minimum": 1}
            }),
            &["command"],
        ),
        f(
            "submit",
            "Finish: the harness then runs the real tests. Submit only when the tests pass.",
            json!({}),
            &[],
        ),
    ]
}

/// Allowed argument names per tool; anything else is an error to the model.
fn allowed_args(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "ls" => &["path"],
        "read_file" => &["path", "start_line", "end_line"],
        "search" => &["pattern", "path", "glob"],
        "str_replace" => &["path", "old_str", "new_str"],
        "run" => &["command", "timeout_s"],
        "submit" => &[],
        _ => return None,
    })
}

/// Runs one tool call. Never panics and never returns `Err`: every failure
/// becomes an error outcome the model can read and act on.
pub async fn dispatch(ctx: &ToolContext<'_>, call: &ToolCall) -> ToolOutcome {
    if let Some(hub) = ctx.mcp
        && hub.owns(&call.name)
    {
        // Same truncation as every tool; the engine redacts and records it.
        let outcome = hub.call(&call.name, &call.arguments).await;
        return ToolOutcome {
            text: truncate::head_tail(&outcome.text, ctx.output_limit),
            ..outcome
        };
    }
    let Some(allowed) = allowed_args(&call.name) else {
        return ToolOutcome::err(format!(
            "unknown tool `{}`; the tools are: {}",
            call.name,
            TOOL_NAMES.join(", ")
        ));
    };
    let args = match &call.arguments {
        Value::Object(m) => m.clone(),
        Value::Null => serde_json::Map::new(),
        other => {
            return ToolOutcome::err(format!("arguments must be a JSON object, got {other}"));
        }
    };
    let unknown: Vec<&String> = args
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    if !unknown.is_empty() {
        return ToolOutcome::err(format!(
            "unknown argument(s) {:?} for `{}`; allowed: {:?}",
            unknown, call.name, allowed
        ));
    }
    let outcome = match call.name.as_str() {
        "ls" => fs::ls(ctx, &args),
        "read_file" => fs::read_file(ctx, &args),
        "search" => search::search(ctx, &args),
        "str_replace" => {
            let refused = args
                .get("path")
                .and_then(Value::as_str)
                .and_then(|p| ctx.guards.refuse_edit(ctx.root(), p));
            match refused {
                Some(why) => ToolOutcome::err(why),
                None => edit::str_replace(ctx, &args),
            }
        }
        "run" => run::run(ctx, &args).await,
        "submit" => ToolOutcome {
            text: "Submitted. The harness now runs the tests.".into(),
            is_error: false,
            submitted: true,
        },
        _ => unreachable_tool(&call.name),
    };
    ToolOutcome {
        text: truncate::head_tail(&outcome.text, ctx.output_limit),
        ..outcome
    }
}

fn unreachable_tool(name: &str) -> ToolOutcome {
    ToolOutcome::err(format!("unknown tool `{name}`"))
}

/// Reads an optional string argument; a wrong type is an error message.
pub fn opt_str<'m>(
    args: &'m serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<&'m str>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(format!("`{key}` must be a string, got {other}")),
    }
}

/// Reads a required string argument.
pub fn req_str<'m>(args: &'m serde_json::Map<String, Value>, key: &str) -> Result<&'m str, String> {
    opt_str(args, key)?.ok_or_else(|| format!("missing required argument `{key}`"))
}

/// Reads an optional non-negative integer argument (accepts integral strings, a common slip).
pub fn opt_u64(args: &serde_json::Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("`{key}` must be a non-negative integer, got {n}")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("`{key}` must be an integer, got \"{s}\"")),
        Some(other) => Err(format!("`{key}` must be an integer, got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::local::LocalSandbox;

    fn call(name: &str, arguments: Value) -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: name.into(),
            arguments,
        }
    }

    fn ctx(sb: &LocalSandbox) -> ToolContext<'_> {
        ToolContext {
            mcp: None,
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
    fn schemas_match_the_tool_names() {
        let names: Vec<String> = schemas()
            .iter()
            .map(|s| {
                s["function"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        assert_eq!(names, TOOL_NAMES);
        for s in schemas() {
            let name = s["function"]["name"].as_str().unwrap_or_default();
            let props: Vec<String> = s["function"]["parameters"]["properties"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let mut allowed: Vec<String> = allowed_args(name)
                .unwrap_or_default()
                .iter()
                .map(|s| s.to_string())
                .collect();
            let mut props = props;
            props.sort();
            allowed.sort();
            assert_eq!(props, allowed, "{name}");
        }
    }
}
