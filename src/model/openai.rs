//! `openai:MODEL@BASE_URL`: OpenAI-compatible chat completions (vLLM,
//! llama.cpp's server, LM Studio, hosted endpoints) with native
//! `tools`/`tool_calls`. `OPENAI_API_KEY` is sent as a Bearer token only
//! when it is set.

use serde_json::{Value, json};

use super::remote::{Wire, WireReply, WireRequest};
use super::{Message, ToolCall};

/// The OpenAI chat-completions wire.
#[derive(Debug, Clone)]
pub struct OpenAiWire {
    model: String,
    base_url: String,
    api_key: Option<String>,
}

impl OpenAiWire {
    /// A wire for `model` at `base_url` (e.g. `http://127.0.0.1:8000/v1`),
    /// with the key from `OPENAI_API_KEY` when set.
    pub fn new(model: impl Into<String>, base_url: impl Into<String>) -> Self {
        let key = std::env::var("OPENAI_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty());
        Self::with_key(model, base_url, key)
    }

    /// A wire with an explicit key (`None`: no Authorization header).
    pub fn with_key(
        model: impl Into<String>,
        base_url: impl Into<String>,
        api_key: Option<String>,
    ) -> Self {
        Self {
            model: model.into(),
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key,
        }
    }
}

/// One message in OpenAI JSON (tool results as role `tool` with `tool_call_id`).
pub fn message_json(m: &Message) -> Value {
    let mut v = m.to_openai_json();
    if !m.tool_calls.is_empty() && m.content.is_empty() {
        v["content"] = Value::Null;
    }
    v
}

/// A message's text: a string, or (some servers) a list of content parts
/// whose text parts are joined.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                p => p.get("text").and_then(Value::as_str),
            })
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

impl Wire for OpenAiWire {
    fn label(&self) -> String {
        format!("openai:{}@{}", self.model, self.base_url)
    }

    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn request(&self, req: &WireRequest<'_>) -> (String, Vec<(String, String)>, Value) {
        let mut body = json!({
            "model": self.model,
            "messages": req.messages.iter().map(message_json).collect::<Vec<_>>(),
            "temperature": req.temperature,
            "max_tokens": req.max_tokens,
            "stream": false,
        });
        if let Some(tools) = req.tools.filter(|t| !t.is_empty()) {
            body["tools"] = Value::Array(tools.to_vec());
            body["tool_choice"] = json!("auto");
            body["parallel_tool_calls"] = json!(false);
        }
        if let Some(schema) = req.action_schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": "action", "strict": true, "schema": schema},
            });
        }
        let mut headers = vec![];
        if let Some(k) = &self.api_key {
            headers.push(("Authorization".to_string(), format!("Bearer {k}")));
        }
        (format!("{}/chat/completions", self.base_url), headers, body)
    }

    fn parse(
        &self,
        body: &Value,
        next_id: &mut dyn FnMut() -> String,
    ) -> Result<WireReply, String> {
        let msg = body
            .pointer("/choices/0/message")
            .ok_or_else(|| "no choices[0].message in the reply".to_string())?;
        let text = content_text(msg.get("content"));
        let mut tool_calls = Vec::new();
        for c in msg
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(name) = c.pointer("/function/name").and_then(Value::as_str) else {
                continue;
            };
            let arguments = match c.pointer("/function/arguments") {
                Some(Value::String(s)) if s.trim().is_empty() => json!({}),
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| {
                    // Unparseable arguments reach the tool, which reports the error to the model.
                    Value::String(s.clone())
                }),
                Some(Value::Null) | None => json!({}),
                Some(v) => v.clone(),
            };
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .unwrap_or_else(&mut *next_id);
            tool_calls.push(ToolCall {
                id,
                name: name.to_string(),
                arguments,
            });
        }
        let usage = body.get("usage").map(|u| {
            (
                u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
                u.get("completion_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            )
        });
        // OpenAI and vLLM report cache hits inside the prompt count.
        let cache_read = body
            .pointer("/usage/prompt_tokens_details/cached_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok(WireReply {
            text,
            tool_calls,
            usage,
            cached: (cache_read, 0),
        })
    }

    fn not_found(&self, body: &str) -> String {
        format!(
            "model `{}` not found on server {} (HTTP 404: {body}): list models with `curl {}/models` (the base URL usually ends in /v1)",
            self.model, self.base_url, self.base_url
        )
    }

    fn unauthorized(&self, status: u16, body: &str) -> String {
        format!(
            "server {} refused the request (HTTP {status}: {body}): {}",
            self.base_url,
            if self.api_key.is_some() {
                "check OPENAI_API_KEY"
            } else {
                "it needs an API key: set OPENAI_API_KEY"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::remote::WireRequest;

    #[test]
    fn request_has_tools_and_bearer_only_with_a_key() {
        let msgs = vec![Message::system("s"), Message::user("u")];
        let tools = vec![json!({"type": "function", "function": {"name": "ls"}})];
        let req = WireRequest {
            messages: &msgs,
            tools: Some(&tools),
            temperature: 0.1,
            max_tokens: 100,
            context_size: 1000,
            action_schema: None,
        };
        let w = OpenAiWire::with_key("m", "http://h/v1/", None);
        let (url, headers, body) = w.request(&req);
        assert_eq!(url, "http://h/v1/chat/completions");
        assert!(headers.is_empty());
        assert_eq!(body["tools"][0]["function"]["name"], "ls");
        let w = OpenAiWire::with_key("m", "http://h/v1", Some("k".into()));
        assert_eq!(
            w.request(&req).1,
            vec![("Authorization".into(), "Bearer k".into())]
        );
    }

    #[test]
    fn content_parts_are_joined() {
        let w = OpenAiWire::with_key("m", "http://h/v1", None);
        let body = json!({"choices": [{"message": {"role": "assistant", "content": [
            {"type": "text", "text": "```json\n{\"tool\": \"ls\","},
            {"type": "text", "text": " \"args\": {}}\n```"}
        ]}}]});
        let r = w.parse(&body, &mut || "id".into()).unwrap();
        assert_eq!(r.text, "```json\n{\"tool\": \"ls\", \"args\": {}}\n```");
        let body = json!({"choices": [{"message": {"role": "assistant", "content": null}}]});
        assert_eq!(w.parse(&body, &mut || "id".into()).unwrap().text, "");
    }

    #[test]
    fn parses_tool_calls_text_and_usage() {
        let w = OpenAiWire::with_key("m", "http://h/v1", None);
        let body = json!({
            "choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "abc", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"a\"}"}},
                {"type": "function", "function": {"name": "submit", "arguments": ""}}
            ]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3}
        });
        let mut n = 0;
        let r = w
            .parse(&body, &mut || {
                n += 1;
                format!("gen{n}")
            })
            .unwrap();
        assert_eq!(r.tool_calls[0].id, "abc");
        assert_eq!(r.tool_calls[0].arguments, json!({"path": "a"}));
        assert_eq!(r.tool_calls[1].id, "gen1");
        assert_eq!(r.tool_calls[1].arguments, json!({}));
        assert_eq!(r.usage, Some((10, 3)));
        assert!(w.parse(&json!({"x": 1}), &mut || "i".into()).is_err());
    }
}
