//! In-process mock model servers shared by the model tests: a `wiremock`
//! server that replays scripted replies to POSTs in order and records
//! every request.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{MockServer, ResponseTemplate};

/// One scripted reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body,
            headers: vec![],
            delay: Duration::ZERO,
        }
    }
    pub fn status(status: u16, body: Value) -> Self {
        Self {
            status,
            ..Self::ok(body)
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    fn template(&self) -> ResponseTemplate {
        let mut t = ResponseTemplate::new(self.status).set_body_json(&self.body);
        for (k, v) in &self.headers {
            t = t.insert_header(k.as_str(), v.as_str());
        }
        if !self.delay.is_zero() {
            t = t.set_delay(self.delay);
        }
        t
    }
}

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: wiremock::http::HeaderMap,
    pub body: Value,
}

/// A running mock server.
pub struct Mock {
    server: MockServer,
    replies: usize,
}

impl Mock {
    pub async fn start(replies: Vec<Reply>) -> Self {
        let server = MockServer::start().await;
        // Each scripted reply answers one POST, in order: a used-up mock
        // stops matching and the next one (registered later) answers.
        for r in &replies {
            wiremock::Mock::given(method("POST"))
                .respond_with(r.template())
                .up_to_n_times(1)
                .with_priority(1)
                .mount(&server)
                .await;
        }
        wiremock::Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(500).set_body_string("mock: no more scripted replies"),
            )
            .with_priority(255)
            .mount(&server)
            .await;
        // Health probes and model listings.
        wiremock::Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"status": "ok", "data": []})),
            )
            .mount(&server)
            .await;
        Self {
            server,
            replies: replies.len(),
        }
    }

    pub fn url(&self) -> String {
        self.server.uri()
    }

    async fn seen(&self) -> Vec<Recorded> {
        let reqs = self.server.received_requests().await.unwrap_or_default();
        reqs.into_iter()
            .map(|r| Recorded {
                method: r.method.to_string(),
                path: r.url.path().to_string(),
                body: serde_json::from_slice(&r.body).unwrap_or(Value::Null),
                headers: r.headers,
            })
            .collect()
    }

    /// POST requests received (GETs such as health probes are not counted).
    pub async fn requests(&self) -> Vec<Recorded> {
        self.seen()
            .await
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    pub async fn replies_left(&self) -> usize {
        self.replies.saturating_sub(self.requests().await.len())
    }
}

/// Which wire API a mock plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    OpenAi,
    Ollama,
    Anthropic,
}

impl Api {
    pub const ALL: [Api; 3] = [Api::OpenAi, Api::Ollama, Api::Anthropic];

    /// The `--model` spec pointing at a mock.
    pub fn spec(self, mock: &Mock) -> String {
        match self {
            Api::OpenAi => format!("openai:mock-model@{}/v1", mock.url()),
            Api::Ollama => format!("ollama:mock-model@{}", mock.url()),
            Api::Anthropic => format!("anthropic:mock-model@{}", mock.url()),
        }
    }

    /// The path the API posts to.
    pub fn path(self) -> &'static str {
        match self {
            Api::OpenAi => "/v1/chat/completions",
            Api::Ollama => "/api/chat",
            Api::Anthropic => "/v1/messages",
        }
    }

    /// A reply making one native tool call.
    pub fn tool_reply(self, id: &str, name: &str, args: Value) -> Value {
        match self {
            Api::OpenAi => json!({
                "id": "chatcmpl-1", "object": "chat.completion",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": null,
                    "tool_calls": [{"id": id, "type": "function",
                        "function": {"name": name, "arguments": args.to_string()}}]}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
            }),
            Api::Ollama => json!({
                "model": "mock-model", "done": true,
                "message": {"role": "assistant", "content": "",
                    "tool_calls": [{"function": {"name": name, "arguments": args}}]},
                "prompt_eval_count": 100, "eval_count": 20
            }),
            Api::Anthropic => json!({
                "id": "msg_1", "type": "message", "role": "assistant", "stop_reason": "tool_use",
                "content": [{"type": "tool_use", "id": id, "name": name, "input": args}],
                "usage": {"input_tokens": 100, "output_tokens": 20}
            }),
        }
    }

    /// A reply with text only.
    pub fn text_reply(self, text: &str) -> Value {
        match self {
            Api::OpenAi => json!({
                "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 10}
            }),
            Api::Ollama => json!({
                "message": {"role": "assistant", "content": text}, "done": true,
                "prompt_eval_count": 50, "eval_count": 10
            }),
            Api::Anthropic => json!({
                "content": [{"type": "text", "text": text}],
                "usage": {"input_tokens": 50, "output_tokens": 10}
            }),
        }
    }

    /// The conversation messages of a recorded request, in a neutral form:
    /// (role, text, tool call ids made, tool result id answered).
    pub fn messages(self, body: &Value) -> Vec<(String, String, Vec<String>, Option<String>)> {
        let mut out = vec![];
        if self == Api::Anthropic {
            match body.get("system") {
                Some(Value::String(s)) => out.push(("system".into(), s.clone(), vec![], None)),
                Some(Value::Array(blocks)) => {
                    let text: Vec<&str> =
                        blocks.iter().filter_map(|b| b["text"].as_str()).collect();
                    out.push(("system".into(), text.join("\n\n"), vec![], None));
                }
                _ => {}
            }
            for m in body["messages"].as_array().unwrap() {
                let role = m["role"].as_str().unwrap().to_string();
                for b in m["content"].as_array().unwrap() {
                    match b["type"].as_str().unwrap() {
                        "text" => out.push((
                            role.clone(),
                            b["text"].as_str().unwrap().into(),
                            vec![],
                            None,
                        )),
                        "tool_use" => out.push((
                            role.clone(),
                            String::new(),
                            vec![b["id"].as_str().unwrap().into()],
                            None,
                        )),
                        "tool_result" => out.push((
                            "tool".into(),
                            b["content"].as_str().unwrap().into(),
                            vec![],
                            Some(b["tool_use_id"].as_str().unwrap().into()),
                        )),
                        t => panic!("unexpected block {t}"),
                    }
                }
            }
            return out;
        }
        for m in body["messages"].as_array().unwrap() {
            let ids = m
                .get("tool_calls")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|c| c["id"].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            out.push((
                m["role"].as_str().unwrap().into(),
                m["content"].as_str().unwrap_or("").into(),
                ids,
                m.get("tool_call_id")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            ));
        }
        out
    }

    /// Tool names offered in a recorded request, after checking that every
    /// tool has this API's exact wire shape: OpenAI and Ollama want
    /// `{"type": "function", "function": {name, description, parameters}}`,
    /// Anthropic `{name, description, input_schema}`; the schema is an
    /// object schema with `properties`.
    pub fn tool_names(self, body: &Value) -> Vec<String> {
        let Some(tools) = body.get("tools").and_then(Value::as_array) else {
            return vec![];
        };
        tools
            .iter()
            .map(|t| {
                let (def, schema) = match self {
                    Api::OpenAi | Api::Ollama => {
                        assert_eq!(t["type"], "function", "{self:?}: {t}");
                        (&t["function"], &t["function"]["parameters"])
                    }
                    Api::Anthropic => {
                        assert!(t.get("type").is_none(), "{self:?}: {t}");
                        (t, &t["input_schema"])
                    }
                };
                assert_eq!(schema["type"], "object", "{self:?}: {t}");
                assert!(schema["properties"].is_object(), "{self:?}: {t}");
                assert!(
                    def["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{self:?}: {t}"
                );
                def["name"].as_str().unwrap().to_string()
            })
            .collect()
    }
}
