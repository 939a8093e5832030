//! The policy shared by every HTTP backend. A [`Wire`] knows one API's JSON
//! (OpenAI chat completions, Ollama `/api/chat`, Anthropic Messages);
//! [`RemotePolicy`] adds what they have in common: the text tool-call
//! protocol and auto fallback, the context budget (and the retry after a
//! context-length error), error mapping, token and cost accounting.

use std::collections::HashMap;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use super::config::{BackendOptions, ToolCallMode};
use super::context::{self, Pressure};
use super::http::{HttpClient, HttpError, is_refusal_body};
use super::text_protocol;
use super::{EpisodeInfo, Message, ModelError, Policy, Proposal, Role, ToolCall, Usage};

/// What a wire needs to build one request.
#[derive(Debug)]
pub struct WireRequest<'a> {
    /// The conversation, already budgeted (and rendered as plain text in text mode).
    pub messages: &'a [Message],
    /// Tool schemas (OpenAI function format); `None` in text mode.
    pub tools: Option<&'a [Value]>,
    /// Sampling temperature.
    pub temperature: f32,
    /// Completion token limit.
    pub max_tokens: u32,
    /// The model's context size (Ollama's `num_ctx`).
    pub context_size: u32,
    /// Text mode with constrained decoding: the JSON schema of one action.
    pub action_schema: Option<&'a Value>,
}

/// One reply in neutral form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WireReply {
    /// The reply's text.
    pub text: String,
    /// Native tool calls (ids generated when the API has none).
    pub tool_calls: Vec<ToolCall>,
    /// Prompt and completion tokens, when the server reported them. The
    /// prompt count includes cached tokens.
    pub usage: Option<(u64, u64)>,
    /// Prompt tokens read from the server's prompt cache, and written to it
    /// (Anthropic bills the two differently from plain input).
    pub cached: (u64, u64),
}

/// One wire API.
pub trait Wire: Send + Sync {
    /// The spec-like label recorded in trajectories, e.g. `openai:qwen@http://...`.
    fn label(&self) -> String;
    /// Base URL (for messages).
    fn base_url(&self) -> &str;
    /// Model name.
    fn model(&self) -> &str;
    /// URL, headers and JSON body of a request.
    fn request(&self, req: &WireRequest<'_>) -> (String, Vec<(String, String)>, Value);
    /// Reads a reply; `next_id` makes call ids when the API has none.
    fn parse(&self, body: &Value, next_id: &mut dyn FnMut() -> String)
    -> Result<WireReply, String>;
    /// The message for HTTP 404 (model or endpoint not found), with what to do.
    fn not_found(&self, body: &str) -> String;
    /// The message for HTTP 401/403.
    fn unauthorized(&self, status: u16, body: &str) -> String;
}

/// A policy talking to a model server through a [`Wire`].
pub struct RemotePolicy {
    name: String,
    wire: Box<dyn Wire>,
    http: HttpClient,
    opts: BackendOptions,
    counter: u64,
    adapt: Adaptations,
    /// Notes from adaptations made during the current call.
    pending_notes: Vec<String>,
    /// The model id the server last reported in a reply (`"model"`).
    served_model: Option<String>,
}

/// Prefix of the harness note recorded when the server reports (or changes)
/// the model id it served: the corpus's `model_id` comes from it.
pub const SERVED_MODEL_NOTE: &str = "server reported model: ";

/// Request changes learnt from a server's refusals, kept for the whole run:
/// OpenAI-compatible servers differ in what they accept, and a refused
/// optional parameter should cost one round trip, not the episode.
#[derive(Debug, Default, Clone, PartialEq)]
struct Adaptations {
    /// The server cannot do native tool calls: use the text protocol.
    text_protocol: bool,
    /// Top-level request keys the server refused.
    dropped: Vec<&'static str>,
    /// Send `max_completion_tokens` instead of `max_tokens`.
    max_completion_tokens: bool,
}

impl Adaptations {
    fn apply(&self, body: &mut Value) {
        for key in &self.dropped {
            if *key == "cache_control" {
                // Set on content blocks, not at the top level.
                strip_key(body, key);
            } else if let Some(obj) = body.as_object_mut() {
                obj.remove(*key);
            }
        }
        if self.max_completion_tokens
            && let Some(obj) = body.as_object_mut()
            && let Some(v) = obj.remove("max_tokens")
        {
            obj.insert("max_completion_tokens".into(), v);
        }
    }
}

/// Removes `key` from every object inside `v`.
fn strip_key(v: &mut Value, key: &str) {
    match v {
        Value::Object(o) => {
            o.remove(key);
            o.values_mut().for_each(|x| strip_key(x, key));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip_key(x, key)),
        _ => {}
    }
}

/// What a server refused in a request, read from its error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Native tools: Ollama's "does not support tools", vLLM without
    /// `--enable-auto-tool-choice`, llama.cpp without `--jinja`.
    Tools,
    /// An optional top-level parameter.
    Param(&'static str),
    /// `max_tokens` must be sent as `max_completion_tokens`.
    MaxCompletionTokens,
}

/// Reads a refusal out of an HTTP 400/422/500 error body.
fn refusal(e: &HttpError) -> Option<Refusal> {
    let HttpError::Status { status, body, .. } = e else {
        return None;
    };
    if !matches!(status, 400 | 422 | 500 | 501) {
        return None;
    }
    // A prompt that is too long is handled by eliding, never by dropping
    // parameters (vLLM's overflow message names `max_completion_tokens`).
    if is_context_overflow(e) {
        return None;
    }
    let b = body.to_ascii_lowercase();
    const TOOLS: [&str; 8] = [
        "does not support tools",
        "enable-auto-tool-choice",
        "tools param requires --jinja",
        "tools are not supported",
        "tool calling is not supported",
        "function calling is not supported",
        "does not support function calling",
        "does not support tool",
    ];
    if TOOLS.iter().any(|p| b.contains(p)) {
        return Some(Refusal::Tools);
    }
    // Only an error that says the parameter is refused drops it: the 5xx
    // refusal wording, plus what validators say of a field they reject.
    const REJECTED_FIELD: [&str; 7] = [
        "not permitted",
        "not allowed",
        "extra inputs",
        "unknown",
        "unrecognized",
        "input should be",
        "instead",
    ];
    if !is_refusal_body(body) && !REJECTED_FIELD.iter().any(|w| b.contains(w)) {
        return None;
    }
    if b.contains("max_completion_tokens") && b.contains("max_tokens") {
        return Some(Refusal::MaxCompletionTokens);
    }
    for key in [
        "cache_control",
        "response_format",
        "parallel_tool_calls",
        "tool_choice",
        "temperature",
    ] {
        if b.contains(key) {
            return Some(Refusal::Param(key));
        }
    }
    None
}

impl RemotePolicy {
    /// A policy over `wire` with `opts`; `name` is recorded in trajectories.
    pub fn new(
        name: impl Into<String>,
        wire: Box<dyn Wire>,
        opts: BackendOptions,
    ) -> Result<Self, ModelError> {
        let http =
            HttpClient::new(opts.http.clone()).map_err(|e| ModelError::Config(e.to_string()))?;
        Ok(Self {
            name: name.into(),
            wire,
            http,
            opts,
            counter: 0,
            adapt: Adaptations::default(),
            pending_notes: Vec::new(),
            served_model: None,
        })
    }

    /// The tool-call mode in force: the configured one, or the text
    /// protocol once the server refused native tools in `auto` mode.
    fn mode(&self) -> ToolCallMode {
        if self.adapt.text_protocol {
            ToolCallMode::Text
        } else {
            self.opts.mode
        }
    }

    /// The options in force.
    pub fn options(&self) -> &BackendOptions {
        &self.opts
    }

    /// Token budget for the conversation itself.
    fn budget(&self, info: &EpisodeInfo) -> usize {
        let tools = if self.mode() == ToolCallMode::Text {
            0
        } else {
            info.tools
                .iter()
                .map(|t| context::estimate_tokens(&t.to_string()))
                .sum()
        };
        let ctx = self.opts.context_size as usize;
        let reserve = self.opts.max_tokens as usize + tools + ctx / 20;
        ctx.saturating_sub(reserve).max(1024)
    }

    /// One model call; adapts the request and retries when the server
    /// refuses an optional part of it (see [`Adaptations`]).
    async fn call(&mut self, msgs: &[Message], info: &EpisodeInfo) -> Result<WireReply, HttpError> {
        loop {
            let err = match self.call_once(msgs, info).await {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            let before = self.adapt.clone();
            match refusal(&err) {
                Some(Refusal::Tools) if self.mode() == ToolCallMode::Auto => {
                    self.adapt.text_protocol = true;
                    self.pending_notes.push(format!(
                        "the server does not support native tool calls ({}); switched to the text tool-call protocol",
                        excerpt(&err)
                    ));
                }
                Some(Refusal::Param(key)) if !self.adapt.dropped.contains(&key) => {
                    self.adapt.dropped.push(key);
                    self.pending_notes.push(format!(
                        "the server refused `{key}` ({}); sending requests without it",
                        excerpt(&err)
                    ));
                }
                Some(Refusal::MaxCompletionTokens) if !self.adapt.max_completion_tokens => {
                    self.adapt.max_completion_tokens = true;
                    self.pending_notes.push(
                        "the server wants `max_completion_tokens` instead of `max_tokens`; sending that".into(),
                    );
                }
                _ => {}
            }
            if self.adapt == before {
                return Err(err);
            }
            tracing::warn!(model = %self.name, error = %err, "server refused part of the request; adapting and retrying");
        }
    }

    async fn call_once(
        &mut self,
        msgs: &[Message],
        info: &EpisodeInfo,
    ) -> Result<WireReply, HttpError> {
        let rendered;
        let mode = self.mode();
        let schema = (mode == ToolCallMode::Text && self.opts.constrain_actions)
            .then(|| action_schema(&info.tools));
        let (messages, tools) = if mode == ToolCallMode::Text {
            let mut r = render_text_mode(msgs);
            if self.opts.mode != ToolCallMode::Text {
                // Switched mid-run: the system prompt has not taught the format yet.
                add_text_protocol_to_system(&mut r, &info.tools);
            }
            rendered = r;
            (rendered.as_slice(), None)
        } else {
            (msgs, Some(info.tools.as_slice()))
        };
        // Never ask for more than what is left of the context.
        let used = context::conversation_tokens(messages) as u32;
        let room = self.opts.context_size.saturating_sub(used).max(64);
        let req = WireRequest {
            messages,
            tools,
            temperature: self.opts.temperature,
            max_tokens: self.opts.max_tokens.min(room),
            context_size: self.opts.context_size,
            action_schema: schema.as_ref(),
        };
        let (url, headers, mut body) = self.wire.request(&req);
        self.adapt.apply(&mut body);
        let value = self.http.post_json(&url, &headers, &body).await?;
        if let Some(m) = value.get("model").and_then(Value::as_str)
            && self.served_model.as_deref() != Some(m)
        {
            self.pending_notes.push(format!("{SERVED_MODEL_NOTE}{m}"));
            self.served_model = Some(m.to_string());
        }
        let counter = &mut self.counter;
        let mut next_id = || {
            *counter += 1;
            format!("call_{counter}")
        };
        self.wire
            .parse(&value, &mut next_id)
            .map_err(|detail| HttpError::Decode { url, detail })
    }

    fn map_error(&self, e: HttpError) -> ModelError {
        match &e {
            HttpError::Status { body, .. } if refusal(&e) == Some(Refusal::Tools) => {
                ModelError::Rejected(format!(
                    "{} does not support native tool calls ({body}): set tool_calls = \"auto\" or \"text\" in the model config to use the text protocol, or enable tool calls on the server (vLLM: --enable-auto-tool-choice --tool-call-parser hermes; llama.cpp: --jinja)",
                    self.wire.label()
                ))
            }
            HttpError::Status { status, body, .. } if *status >= 500 && is_refusal_body(body) => {
                ModelError::Rejected(format!(
                    "{} refused the request (HTTP {status}): {body}",
                    self.wire.label()
                ))
            }
            HttpError::Status { status, body, .. } => match *status {
                401 | 403 => ModelError::Rejected(self.wire.unauthorized(*status, body)),
                404 => ModelError::Rejected(self.wire.not_found(body)),
                429 => ModelError::Transient(format!(
                    "{}: rate limited (HTTP 429) after {} retries: {body}",
                    self.wire.label(),
                    self.http.options().max_retries
                )),
                s if s >= 500 => ModelError::Transient(format!(
                    "{}: server error (HTTP {s}) after {} retries: {body}",
                    self.wire.label(),
                    self.http.options().max_retries
                )),
                s => ModelError::Rejected(format!(
                    "{} rejected the request (HTTP {s}): {body}",
                    self.wire.label()
                )),
            },
            HttpError::Timeout { secs, .. } => ModelError::Timeout(*secs),
            HttpError::Connect { detail, .. } => ModelError::Unreachable {
                endpoint: self.wire.base_url().to_string(),
                detail: format!(
                    "{detail} (is the server running and is the URL right? check with curl {})",
                    self.wire.base_url()
                ),
            },
            HttpError::Reset { .. } => ModelError::Transient(e.to_string()),
            HttpError::Decode { .. } => ModelError::Other(e.to_string()),
            HttpError::Setup(s) => ModelError::Config(s.clone()),
        }
    }

    fn next_id(&mut self) -> String {
        self.counter += 1;
        format!("call_{}", self.counter)
    }
}

/// The JSON schema of one text-protocol action, `{"tool": NAME, "args": {...}}`,
/// with each tool's own argument schema: servers that support constrained
/// decoding then cannot emit anything else.
pub fn action_schema(tools: &[Value]) -> Value {
    let variants: Vec<Value> = tools
        .iter()
        .filter_map(|t| {
            let f = t.get("function").unwrap_or(t);
            let name = f.get("name")?.as_str()?;
            let params = f
                .get("parameters")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({"type": "object"}));
            Some(serde_json::json!({
                "type": "object",
                "properties": {"tool": {"const": name}, "args": params},
                "required": ["tool", "args"],
                "additionalProperties": false,
            }))
        })
        .collect();
    serde_json::json!({ "anyOf": variants })
}

/// True for a server's "prompt longer than the context" refusal.
pub fn is_context_overflow(e: &HttpError) -> bool {
    let HttpError::Status { status, body, .. } = e else {
        return false;
    };
    if !matches!(status, 400 | 413 | 422 | 500) {
        return false;
    }
    let b = body.to_ascii_lowercase();
    [
        "context length",
        "context_length",
        "maximum context",
        "context window",
        "prompt is too long",
        "too many tokens",
        "exceeds the available context",
        "exceed_context_size",
        "n_ctx",
    ]
    .iter()
    .any(|p| b.contains(p))
}

/// A short excerpt of an error for notes.
fn excerpt(e: &HttpError) -> String {
    let s = match e {
        HttpError::Status { status, body, .. } => format!("HTTP {status}: {body}"),
        other => other.to_string(),
    };
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

/// Appends the text protocol's instructions to the system message (or adds
/// one), for a run that switched to the protocol after it started.
fn add_text_protocol_to_system(msgs: &mut Vec<Message>, tools: &[Value]) {
    let add = text_protocol::addendum(tools);
    match msgs.first_mut() {
        Some(m) if m.role == Role::System => {
            if !m.content.contains(&add) {
                m.content.push_str("\n\n");
                m.content.push_str(&add);
            }
        }
        _ => msgs.insert(0, Message::system(add)),
    }
}

/// Renders a conversation for the text protocol: tool calls become their
/// fenced JSON, tool results become user messages, and consecutive messages
/// of one role are merged (some chat templates require alternation).
pub fn render_text_mode(msgs: &[Message]) -> Vec<Message> {
    let names: HashMap<&str, &str> = msgs
        .iter()
        .flat_map(|m| m.tool_calls.iter())
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .collect();
    let mut out: Vec<Message> = Vec::with_capacity(msgs.len());
    for m in msgs {
        let (role, content) = match m.role {
            Role::Assistant => {
                let text = if m.content.trim().is_empty() {
                    m.tool_calls
                        .first()
                        .map(|c| {
                            format!(
                                "```json\n{}\n```",
                                serde_json::json!({"tool": c.name, "args": c.arguments})
                            )
                        })
                        .unwrap_or_default()
                } else {
                    m.content.clone()
                };
                (Role::Assistant, text)
            }
            Role::Tool => {
                let name = m
                    .tool_call_id
                    .as_deref()
                    .and_then(|id| names.get(id))
                    .copied()
                    .unwrap_or("tool");
                (Role::User, format!("Result of `{name}`:\n{}", m.content))
            }
            r => (r, m.content.clone()),
        };
        match out.last_mut() {
            Some(prev) if prev.role == role && role != Role::System => {
                prev.content.push_str("\n\n");
                prev.content.push_str(&content);
            }
            _ => out.push(Message {
                role,
                content,
                tool_calls: vec![],
                tool_call_id: None,
            }),
        }
    }
    out
}

/// The hottest the harness samples a model after stuck attempts.
const RETRY_TEMPERATURE_CAP: f32 = 1.0;

#[async_trait]
impl Policy for RemotePolicy {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn system_prompt_addendum(&self, tools: &[Value]) -> Option<String> {
        (self.opts.mode == ToolCallMode::Text).then(|| text_protocol::addendum(tools))
    }

    /// +0.4 per call, up to 1.0 (hotter replies from a small model are
    /// mostly noise).
    fn raise_temperature(&mut self) -> Option<f32> {
        if self.opts.temperature >= RETRY_TEMPERATURE_CAP {
            return None;
        }
        self.opts.temperature = (self.opts.temperature + 0.4).min(RETRY_TEMPERATURE_CAP);
        Some(self.opts.temperature)
    }

    async fn propose(
        &mut self,
        conversation: &[Message],
        info: &EpisodeInfo,
    ) -> Result<Proposal, ModelError> {
        let started = Instant::now();
        self.pending_notes.clear();
        let budget = self.budget(info);
        let mut notes = Vec::new();
        let fitted = context::fit(conversation, budget, self.opts.keep_turns, Pressure::Normal);
        notes.extend(fitted.note);
        let reply = match self.call(&fitted.messages, info).await {
            Ok(r) => r,
            Err(e) if is_context_overflow(&e) => {
                tracing::warn!(model = %self.name, "context overflow; eliding harder and retrying once");
                let hard = context::fit(conversation, budget, 1, Pressure::Hard);
                notes.push(format!(
                    "the server refused the prompt as too long ({e}); retried once with a harder elision"
                ));
                notes.extend(hard.note);
                match self.call(&hard.messages, info).await {
                    Ok(r) => r,
                    Err(e2) if is_context_overflow(&e2) => {
                        return Err(ModelError::Transient(format!(
                            "{}: the prompt does not fit the model's context even after eliding old observations ({e2}); raise context_size on the server and in the model config",
                            self.wire.label()
                        )));
                    }
                    Err(e2) => return Err(self.map_error(e2)),
                }
            }
            Err(e) => return Err(self.map_error(e)),
        };
        notes.append(&mut self.pending_notes);
        let (prompt_tokens, completion_tokens) = reply.usage.unwrap_or((0, 0));
        let (cache_read_tokens, cache_write_tokens) = reply.cached;
        let usage = Usage {
            prompt_tokens,
            completion_tokens,
            cache_read_tokens,
            cache_write_tokens,
            cost_usd: self.opts.prices.cost_cached(
                prompt_tokens,
                completion_tokens,
                cache_read_tokens,
                cache_write_tokens,
            ),
        };
        let raw = if reply.tool_calls.is_empty() {
            reply.text.clone()
        } else {
            let calls: Vec<Value> = reply
                .tool_calls
                .iter()
                .map(|c| serde_json::json!({"tool": c.name, "args": c.arguments}))
                .collect();
            if reply.text.trim().is_empty() {
                Value::Array(calls).to_string()
            } else {
                format!("{}\n{}", reply.text, Value::Array(calls))
            }
        };
        let mut proposal = Proposal {
            raw,
            usage,
            notes,
            latency_ms: started.elapsed().as_millis() as u64,
            ..Proposal::default()
        };
        if !reply.tool_calls.is_empty() && self.mode() != ToolCallMode::Text {
            proposal.message = Some(Message::assistant(reply.text, reply.tool_calls));
            return Ok(proposal);
        }
        if self.mode() == ToolCallMode::Native {
            proposal.format_error = Some(if reply.text.trim().is_empty() {
                "the reply was empty and contained no tool call".into()
            } else {
                "the reply contained no tool call".into()
            });
            return Ok(proposal);
        }
        match text_protocol::parse(&reply.text) {
            Ok(action) => {
                let call = ToolCall {
                    id: self.next_id(),
                    name: action.tool,
                    arguments: action.args,
                };
                proposal.message = Some(Message::assistant(reply.text, vec![call]));
            }
            Err(why) => {
                proposal.format_error = Some(why);
                proposal.format_hint = Some(text_protocol::hint(&info.tools));
            }
        }
        Ok(proposal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_mode_rendering_merges_and_labels_results() {
        let call = ToolCall {
            id: "call_1".into(),
            name: "ls".into(),
            arguments: serde_json::json!({}),
        };
        let msgs = vec![
            Message::system("s"),
            Message::user("task"),
            Message::assistant("", vec![call]),
            Message::tool("call_1", "a.py"),
            Message::user("nudge"),
        ];
        let r = render_text_mode(&msgs);
        assert_eq!(r.len(), 4);
        assert!(
            r[2].content.contains("{\"args\":{},\"tool\":\"ls\"}"),
            "{}",
            r[2].content
        );
        assert_eq!(r[3].role, Role::User);
        assert_eq!(r[3].content, "Result of `ls`:\na.py\n\nnudge");
        assert!(
            r.iter()
                .all(|m| m.tool_calls.is_empty() && m.tool_call_id.is_none())
        );
    }

    #[test]
    fn refusals_are_read_only_from_refusing_errors() {
        let s = |status, body: &str| HttpError::Status {
            status,
            url: "u".into(),
            body: body.into(),
        };
        assert_eq!(
            refusal(&s(
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
            )),
            Some(Refusal::MaxCompletionTokens)
        );
        assert_eq!(
            refusal(&s(
                400,
                "system.0.cache_control: Extra inputs are not permitted"
            )),
            Some(Refusal::Param("cache_control"))
        );
        assert_eq!(
            refusal(&s(
                422,
                "response_format.type: Input should be 'text' or 'json_object'"
            )),
            Some(Refusal::Param("response_format"))
        );
        assert_eq!(
            refusal(&s(500, "tools param requires --jinja flag")),
            Some(Refusal::Tools)
        );
        // vLLM's overflow names both token parameters: it is an overflow.
        assert_eq!(
            refusal(&s(
                400,
                "'max_tokens' or 'max_completion_tokens' is too large: 4096. This model's maximum context length is 8192 tokens and your request has 5000 input tokens"
            )),
            None
        );
        // A value error about a parameter is not a refusal of the parameter.
        assert_eq!(
            refusal(&s(400, "temperature must be between 0 and 2")),
            None
        );
        assert_eq!(refusal(&s(404, "model does not support tools")), None);
    }

    #[test]
    fn recognises_context_overflow_bodies() {
        let s = |status, body: &str| HttpError::Status {
            status,
            url: "u".into(),
            body: body.into(),
        };
        assert!(is_context_overflow(&s(
            400,
            "This model's maximum context length is 8192 tokens"
        )));
        assert!(is_context_overflow(&s(
            400,
            "{\"error\":{\"type\":\"exceed_context_size_error\"}}"
        )));
        assert!(is_context_overflow(&s(
            400,
            "prompt is too long: 250000 tokens"
        )));
        assert!(!is_context_overflow(&s(400, "invalid tools schema")));
        assert!(!is_context_overflow(&s(404, "context length")));
    }
}
