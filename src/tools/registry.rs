//! The one tool registry: each tool is a type with typed arguments (serde +
//! schemars), a description and a handler. The schema list the model sees,
//! the text-protocol lines, argument validation and dispatch are all derived
//! from it, so a tool is written down once. Tools from elsewhere (MCP
//! servers) register at run time through [`ToolHandler`].

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::{ToolContext, ToolOutcome};
use crate::protocol::ToolCall;
use crate::truncate;

/// A built-in tool: typed arguments and a handler.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// The name the model calls it by.
    const NAME: &'static str;
    /// What the model is told it does (the first sentence is its one-line
    /// summary in the text protocol).
    const DESCRIPTION: &'static str;
    /// Its arguments. Unknown fields are refused before the handler runs.
    type Args: DeserializeOwned + JsonSchema + Send;
    /// Runs the call. Failures are error outcomes for the model, never `Err`.
    async fn call(&self, ctx: &ToolContext<'_>, args: Self::Args) -> ToolOutcome;
}

/// What the registry knows of any tool: built-in or registered at run time.
#[async_trait]
pub trait ToolHandler: Send + Sync {
    /// Name, description and the JSON schema of the arguments.
    fn spec(&self) -> &ToolSpec;
    /// Runs a call whose argument names were already checked against
    /// [`ToolSpec::args`].
    async fn handle(&self, ctx: &ToolContext<'_>, args: Map<String, Value>) -> ToolOutcome;
}

/// One tool as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// The name.
    pub name: String,
    /// The description.
    pub description: String,
    /// JSON schema of the argument object (`type: object`).
    pub parameters: Value,
}

impl ToolSpec {
    /// The OpenAI function-calling form.
    pub fn schema(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            }
        })
    }

    /// Argument names with whether each is required: required ones first.
    pub fn args(&self) -> Vec<(String, bool)> {
        let required: Vec<String> = self.parameters["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut out: Vec<(String, bool)> = required.iter().map(|r| (r.clone(), true)).collect();
        if let Some(props) = self.parameters["properties"].as_object() {
            for k in props.keys() {
                if !required.contains(k) {
                    out.push((k.clone(), false));
                }
            }
        }
        out
    }

    /// `- name {a, b?}: summary`, the line the text protocol shows.
    pub fn text_line(&self) -> String {
        let args: Vec<String> = self
            .args()
            .into_iter()
            .map(|(a, req)| if req { a } else { format!("{a}?") })
            .collect();
        format!(
            "- {} {{{}}}: {}",
            self.name,
            args.join(", "),
            summary(&self.description)
        )
    }
}

/// The first sentence of a description, lower-cased first letter.
fn summary(desc: &str) -> String {
    let first = desc
        .split(". ")
        .next()
        .unwrap_or(desc)
        .trim_end_matches('.');
    let mut c = first.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Adapts a typed [`Tool`] to the registry.
struct Typed<T: Tool> {
    tool: T,
    spec: ToolSpec,
}

#[async_trait]
impl<T: Tool> ToolHandler for Typed<T> {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn handle(&self, ctx: &ToolContext<'_>, args: Map<String, Value>) -> ToolOutcome {
        match serde_json::from_value::<T::Args>(Value::Object(args)) {
            Ok(a) => self.tool.call(ctx, a).await,
            Err(e) => ToolOutcome::err(argument_error(T::NAME, &e.to_string())),
        }
    }
}

/// A serde error as the model should read it.
fn argument_error(tool: &str, serde_msg: &str) -> String {
    if let Some(rest) = serde_msg.strip_prefix("missing field ") {
        return format!("missing required argument {rest} for `{tool}`");
    }
    let msg = serde_msg
        .replace("invalid type: ", "")
        .replace(", expected a string", ": must be a string")
        .replace(", expected u64", ": must be a non-negative integer")
        .replace(", expected an integer", ": must be an integer");
    format!("bad arguments for `{tool}`: {msg}")
}

/// The JSON schema of `A` in the plain shape function-calling APIs expect:
/// no `$schema`/`title`/`format`, optional fields typed without `null`, and
/// no other properties allowed.
pub fn parameters_of<A: JsonSchema>() -> Value {
    let mut v = schemars::schema_for!(A).to_value();
    if let Some(o) = v.as_object_mut() {
        o.remove("$schema");
        o.remove("title");
        o.remove("description");
        o.insert("type".into(), json!("object"));
        o.entry("properties").or_insert_with(|| json!({}));
        o.entry("required").or_insert_with(|| json!([]));
        o.insert("additionalProperties".into(), json!(false));
        if let Some(props) = o.get_mut("properties").and_then(Value::as_object_mut) {
            for p in props.values_mut() {
                plain_property(p);
            }
        }
    }
    v
}

fn plain_property(p: &mut Value) {
    let Some(o) = p.as_object_mut() else { return };
    o.remove("format");
    if let Some(Value::Array(types)) = o.get("type") {
        let non_null: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        if non_null.len() == 1 {
            o.insert("type".into(), non_null[0].clone());
        }
    }
    if o.get("minimum") == Some(&json!(0)) {
        o.remove("minimum");
    }
}

/// The tools of one episode: the built-ins, plus any registered at run time.
#[derive(Clone)]
pub struct Registry {
    tools: Vec<Arc<dyn ToolHandler>>,
}

/// Why a tool could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Two tools with one name.
    #[error("a tool named `{0}` is already registered; give the server another name prefix")]
    Duplicate(String),
    /// A name the function-calling APIs refuse.
    #[error("tool name `{0}` is not allowed: use 1-64 characters from a-z, A-Z, 0-9, `_` and `-`")]
    BadName(String),
}

impl crate::error::Retryable for RegistryError {
    fn is_retryable(&self) -> bool {
        false
    }
}

static BUILTIN: LazyLock<Registry> = LazyLock::new(|| {
    let mut r = Registry { tools: Vec::new() };
    r.push_typed(super::fs::Ls);
    r.push_typed(super::fs::ReadFile);
    r.push_typed(super::search::Search);
    r.push_typed(super::edit::StrReplace);
    r.push_typed(super::run::Run);
    r.push_typed(Submit);
    r
});

impl Registry {
    /// The six built-in tools, in the order they are offered.
    pub fn builtin() -> &'static Registry {
        &BUILTIN
    }

    fn push_typed<T: Tool>(&mut self, tool: T) {
        let spec = ToolSpec {
            name: T::NAME.to_string(),
            description: T::DESCRIPTION.to_string(),
            parameters: parameters_of::<T::Args>(),
        };
        self.tools.push(Arc::new(Typed { tool, spec }));
    }

    /// Adds a tool found at run time (an MCP server's). Names must be
    /// unique and valid for every backend's function-calling API.
    pub fn register(&mut self, tool: Arc<dyn ToolHandler>) -> Result<(), RegistryError> {
        let name = tool.spec().name.clone();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(RegistryError::BadName(name));
        }
        if self.get(&name).is_some() {
            return Err(RegistryError::Duplicate(name));
        }
        self.tools.push(tool);
        Ok(())
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn ToolHandler>> {
        self.tools.iter().find(|t| t.spec().name == name)
    }

    /// Tool names, in the order they are offered.
    pub fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.spec().name.as_str()).collect()
    }

    /// JSON schemas in OpenAI function-calling format.
    pub fn schemas(&self) -> Vec<Value> {
        self.tools.iter().map(|t| t.spec().schema()).collect()
    }

    /// Runs one call: checks the name and the argument names, runs the
    /// handler, cuts the output to head + tail. Never panics and never
    /// returns `Err`: every failure is an outcome the model can read.
    pub async fn dispatch(&self, ctx: &ToolContext<'_>, call: &ToolCall) -> ToolOutcome {
        let Some(tool) = self.get(&call.name) else {
            return ToolOutcome::err(format!(
                "unknown tool `{}`; the tools are: {}",
                call.name,
                self.names().join(", ")
            ));
        };
        let args = match &call.arguments {
            Value::Object(m) => m.clone(),
            Value::Null => Map::new(),
            other => {
                return ToolOutcome::err(format!("arguments must be a JSON object, got {other}"));
            }
        };
        let allowed: Vec<String> = tool.spec().args().into_iter().map(|(a, _)| a).collect();
        let closed = tool.spec().parameters["additionalProperties"] == json!(false);
        let unknown: Vec<&String> = args.keys().filter(|k| !allowed.contains(k)).collect();
        if closed && !unknown.is_empty() {
            return ToolOutcome::err(format!(
                "unknown argument(s) {:?} for `{}`; allowed: {:?}",
                unknown, call.name, allowed
            ));
        }
        let outcome = tool.handle(ctx, args).await;
        ToolOutcome {
            text: truncate::head_tail(&outcome.text, ctx.output_limit),
            ..outcome
        }
    }
}

/// Arguments of `submit`: none.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitArgs {}

/// `submit`: ends the attempt; the gate then runs the tests.
pub struct Submit;

#[async_trait]
impl Tool for Submit {
    const NAME: &'static str = "submit";
    const DESCRIPTION: &'static str =
        "Finish: the harness then runs the real tests. Submit only when the tests pass.";
    type Args = SubmitArgs;

    async fn call(&self, _ctx: &ToolContext<'_>, _args: SubmitArgs) -> ToolOutcome {
        ToolOutcome {
            text: "Submitted. The harness now runs the tests.".into(),
            is_error: false,
            submitted: true,
        }
    }
}

/// Accepts a non-negative integer, or an integral string (a common slip of
/// small models), for optional integer arguments.
pub fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("must be a non-negative integer, got {n}"))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("must be an integer, got \"{s}\""))),
        Some(other) => Err(D::Error::custom(format!("must be an integer, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_schemas_are_plain_function_schemas() {
        let r = Registry::builtin();
        assert_eq!(
            r.names(),
            ["ls", "read_file", "search", "str_replace", "run", "submit"]
        );
        for s in r.schemas() {
            let p = &s["function"]["parameters"];
            assert_eq!(p["type"], "object", "{s}");
            assert_eq!(p["additionalProperties"], false, "{s}");
            assert!(
                p.get("$schema").is_none() && p.get("title").is_none(),
                "{s}"
            );
            for (_, prop) in p["properties"].as_object().unwrap() {
                assert!(prop["type"].is_string(), "nullable type leaked: {s}");
                assert!(prop.get("format").is_none(), "{s}");
            }
        }
        let rf = &r.schemas()[1]["function"]["parameters"];
        assert_eq!(rf["required"], json!(["path"]));
        assert_eq!(rf["properties"]["start_line"]["minimum"], 1);
    }

    #[test]
    fn text_lines_come_from_the_schemas() {
        let r = Registry::builtin();
        let lines: Vec<String> = r.tools.iter().map(|t| t.spec().text_line()).collect();
        assert!(
            lines[0].starts_with("- ls {path?}: list a directory"),
            "{lines:?}"
        );
        assert!(
            lines[3].starts_with("- str_replace {path, old_str, new_str}:"),
            "{lines:?}"
        );
        assert!(
            lines[4].starts_with("- run {command, timeout_s?}:"),
            "{lines:?}"
        );
        assert_eq!(
            lines[5],
            "- submit {}: finish: the harness then runs the real tests"
        );
    }

    struct Echo(ToolSpec);

    #[async_trait]
    impl ToolHandler for Echo {
        fn spec(&self) -> &ToolSpec {
            &self.0
        }
        async fn handle(&self, _ctx: &ToolContext<'_>, args: Map<String, Value>) -> ToolOutcome {
            ToolOutcome::ok(Value::Object(args).to_string())
        }
    }

    fn echo(name: &str) -> Arc<dyn ToolHandler> {
        Arc::new(Echo(ToolSpec {
            name: name.into(),
            description: "Echo the arguments.".into(),
            parameters: json!({"type": "object", "properties": {"x": {"type": "string"}}, "required": [], "additionalProperties": false}),
        }))
    }

    #[test]
    fn run_time_tools_register_once_with_valid_names() {
        let mut r = Registry::builtin().clone();
        r.register(echo("docs__echo")).unwrap();
        assert!(r.names().contains(&"docs__echo"));
        assert!(matches!(
            r.register(echo("docs__echo")),
            Err(RegistryError::Duplicate(_))
        ));
        assert!(matches!(
            r.register(echo("ls")),
            Err(RegistryError::Duplicate(_))
        ));
        assert!(matches!(
            r.register(echo("bad name!")),
            Err(RegistryError::BadName(_))
        ));
        assert!(matches!(
            r.register(echo("")),
            Err(RegistryError::BadName(_))
        ));
        // The shared built-in registry is untouched.
        assert!(!Registry::builtin().names().contains(&"docs__echo"));
    }

    #[tokio::test]
    async fn run_time_tools_dispatch_with_argument_checks() {
        let dir = tempfile::tempdir().unwrap();
        let sb = crate::sandbox::local::LocalSandbox::new(dir.path());
        let ctx = ToolContext {
            sandbox: &sb,
            guards: Default::default(),
            output_limit: 100,
            run_timeout: std::time::Duration::from_secs(5),
            max_run_timeout: std::time::Duration::from_secs(5),
        };
        let mut r = Registry::builtin().clone();
        r.register(echo("docs__echo")).unwrap();
        let call = |args: Value| ToolCall {
            id: "c".into(),
            name: "docs__echo".into(),
            arguments: args,
        };
        let ok = r.dispatch(&ctx, &call(json!({"x": "hi"}))).await;
        assert!(!ok.is_error && ok.text.contains("hi"), "{}", ok.text);
        let bad = r.dispatch(&ctx, &call(json!({"y": 1}))).await;
        assert!(
            bad.is_error && bad.text.contains("unknown argument"),
            "{}",
            bad.text
        );
        // A schema that does not close its properties is the server's to check.
        let open = Arc::new(Echo(ToolSpec {
            name: "docs__open".into(),
            description: "Echo.".into(),
            parameters: json!({"type": "object", "properties": {}}),
        }));
        r.register(open).unwrap();
        let mut c = call(json!({"y": 1}));
        c.name = "docs__open".into();
        let passed = r.dispatch(&ctx, &c).await;
        assert!(
            !passed.is_error && passed.text.contains("\"y\":1"),
            "{}",
            passed.text
        );
        let huge = r
            .dispatch(&ctx, &call(json!({"x": "z".repeat(10_000)})))
            .await;
        assert!(huge.text.len() < 400 && huge.text.contains("cut from the middle"));
    }

    #[test]
    fn argument_errors_read_well() {
        assert_eq!(
            argument_error("ls", "missing field `path`"),
            "missing required argument `path` for `ls`"
        );
        assert_eq!(
            argument_error("ls", "invalid type: integer `3`, expected a string"),
            "bad arguments for `ls`: integer `3`: must be a string"
        );
    }
}
