//! `ollama:MODEL[@BASE_URL]`: Ollama's native `/api/chat` with tools.
//! `options.num_ctx` is always sent: Ollama's default (4096 on many
//! versions) silently truncates agent prompts.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::remote::{Wire, WireReply, WireRequest};
use super::{Message, Role, ToolCall};

/// The Ollama `/api/chat` wire.
#[derive(Debug, Clone)]
pub struct OllamaWire {
    model: String,
    base_url: String,
}

impl OllamaWire {
    /// A wire for `model` at `base_url` (e.g. `http://127.0.0.1:11434`).
    pub fn new(model: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            base_url: base_url.into().trim_end_matches('/').to_string(),
        }
    }
}

fn messages_json(msgs: &[Message]) -> Vec<Value> {
    let names: HashMap<&str, &str> = msgs
        .iter()
        .flat_map(|m| m.tool_calls.iter())
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .collect();
    msgs.iter()
        .map(|m| {
            let mut v = json!({ "role": m.role, "content": m.content });
            if !m.tool_calls.is_empty() {
                v["tool_calls"] = m
                    .tool_calls
                    .iter()
                    .map(|c| json!({"id": c.id, "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
            }
            if m.role == Role::Tool
                && let Some(id) = &m.tool_call_id
            {
                v["tool_call_id"] = json!(id);
                if let Some(name) = names.get(id.as_str()) {
                    v["tool_name"] = json!(name);
                }
            }
            v
        })
        .collect()
}

impl Wire for OllamaWire {
    fn label(&self) -> String {
        format!("ollama:{}@{}", self.model, self.base_url)
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
            "messages": messages_json(req.messages),
            "stream": false,
            "options": {
                "num_ctx": req.context_size,
                "temperature": req.temperature,
                "num_predict": req.max_tokens,
            },
        });
        if let Some(tools) = req.tools.filter(|t| !t.is_empty()) {
            body["tools"] = Value::Array(tools.to_vec());
        }
        if let Some(schema) = req.action_schema {
            body["format"] = schema.clone();
        }
        (format!("{}/api/chat", self.base_url), vec![], body)
    }

    fn parse(
        &self,
        body: &Value,
        next_id: &mut dyn FnMut() -> String,
    ) -> Result<WireReply, String> {
        let msg = body
            .get("message")
            .ok_or_else(|| "no `message` in the /api/chat reply".to_string())?;
        let text = msg
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
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
                Some(Value::String(s)) => {
                    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
                }
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
        let prompt = body.get("prompt_eval_count").and_then(Value::as_u64);
        let completion = body.get("eval_count").and_then(Value::as_u64);
        let usage = (prompt.is_some() || completion.is_some())
            .then(|| (prompt.unwrap_or(0), completion.unwrap_or(0)));
        Ok(WireReply {
            text,
            tool_calls,
            usage,
            cached: (0, 0),
        })
    }

    fn not_found(&self, body: &str) -> String {
        format!(
            "model `{}` not found on Ollama server {} (HTTP 404: {body}): list models with `ollama list`, fetch it with `ollama pull {}`",
            self.model, self.base_url, self.model
        )
    }

    fn unauthorized(&self, status: u16, body: &str) -> String {
        format!(
            "Ollama server {} refused the request (HTTP {status}: {body}): check the proxy in front of it",
            self.base_url
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_sends_num_ctx_and_names_tool_results() {
        let call = ToolCall {
            id: "call_1".into(),
            name: "ls".into(),
            arguments: json!({"path": "."}),
        };
        let msgs = vec![
            Message::user("u"),
            Message::assistant("", vec![call]),
            Message::tool("call_1", "a.py"),
        ];
        let req = WireRequest {
            messages: &msgs,
            tools: None,
            temperature: 0.0,
            max_tokens: 50,
            context_size: 16384,
            action_schema: None,
        };
        let (url, _, body) = OllamaWire::new("q", "http://h:11434/").request(&req);
        assert_eq!(url, "http://h:11434/api/chat");
        assert_eq!(body["options"]["num_ctx"], 16384);
        assert_eq!(
            body["messages"][1]["tool_calls"][0]["function"]["arguments"]["path"],
            "."
        );
        assert_eq!(body["messages"][2]["tool_name"], "ls");
        assert!(body.get("tools").is_none());
    }

    #[test]
    fn parses_object_arguments_and_counts() {
        let body = json!({"message": {"role": "assistant", "content": "",
            "tool_calls": [{"function": {"name": "run", "arguments": {"command": "pytest"}}}]},
            "prompt_eval_count": 120, "eval_count": 9});
        let r = OllamaWire::new("q", "http://h")
            .parse(&body, &mut || "call_7".into())
            .unwrap();
        assert_eq!(r.tool_calls[0].id, "call_7");
        assert_eq!(r.tool_calls[0].arguments["command"], "pytest");
        assert_eq!(r.usage, Some((120, 9)));
    }
}
