//! `anthropic:MODEL[@BASE_URL]`: the Messages API with tool use (the
//! factory's teacher). The system prompt is the top-level `system` field,
//! tool calls are `tool_use` blocks and their results `tool_result` blocks
//! in the next user turn. The key comes from `ANTHROPIC_API_KEY`. Requests
//! mark two prompt-cache breakpoints (after the system prompt, and on the
//! newest block), and cache reads and writes are counted apart for pricing.

use serde_json::{Value, json};

use super::remote::{Wire, WireReply, WireRequest};
use super::{Message, Role, ToolCall};

/// The `anthropic-version` header sent with every request.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The Anthropic Messages wire.
#[derive(Debug, Clone)]
pub struct AnthropicWire {
    model: String,
    base_url: String,
    api_key: Option<String>,
}

impl AnthropicWire {
    /// A wire for `model` at `base_url`, with the key from `ANTHROPIC_API_KEY`.
    pub fn new(model: impl Into<String>, base_url: impl Into<String>) -> Self {
        let key = std::env::var("ANTHROPIC_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty());
        Self::with_key(model, base_url, key)
    }

    /// A wire with an explicit key.
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

/// System text and alternating user/assistant messages with content blocks.
fn convert(msgs: &[Message]) -> (String, Vec<Value>) {
    let mut system = Vec::new();
    let mut out: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in msgs {
        let (role, blocks) = match m.role {
            Role::System => {
                system.push(m.content.clone());
                continue;
            }
            Role::User => (Role::User, text_block(&m.content)),
            Role::Assistant => {
                let mut b = text_block(&m.content);
                b.extend(m.tool_calls.iter().map(|c| {
                    let input = if c.arguments.is_object() {
                        c.arguments.clone()
                    } else {
                        json!({})
                    };
                    json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input})
                }));
                (Role::Assistant, b)
            }
            Role::Tool => (
                Role::User,
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                    "content": if m.content.is_empty() { "(no output)".to_string() } else { m.content.clone() },
                    "is_error": m.content.starts_with("ERROR"),
                })],
            ),
        };
        match out.last_mut() {
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    let messages = out
        .into_iter()
        .map(|(role, mut blocks)| {
            if blocks.is_empty() {
                blocks.push(json!({"type": "text", "text": "(empty reply)"}));
            }
            // Tool results must come first in a user turn.
            blocks.sort_by_key(|b| b["type"] != "tool_result");
            json!({"role": role, "content": blocks})
        })
        .collect();
    (system.join("\n\n"), messages)
}

fn text_block(s: &str) -> Vec<Value> {
    if s.trim().is_empty() {
        vec![]
    } else {
        vec![json!({"type": "text", "text": s})]
    }
}

impl Wire for AnthropicWire {
    fn label(&self) -> String {
        format!("anthropic:{}@{}", self.model, self.base_url)
    }

    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn request(&self, req: &WireRequest<'_>) -> (String, Vec<(String, String)>, Value) {
        let (system, messages) = convert(req.messages);
        let mut body = json!({
            "model": self.model,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "messages": messages,
        });
        if !system.is_empty() {
            // Prompt caching: an agent resends its whole growing conversation
            // every step. A breakpoint after the system prompt (tools come
            // before it) and one on the newest block let each call read the
            // previous call's prefix from the cache at a tenth of the price.
            body["system"] =
                json!([{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]);
        }
        if let Some(block) = body
            .pointer_mut("/messages")
            .and_then(Value::as_array_mut)
            .and_then(|m| m.last_mut())
            .and_then(|m| m.get_mut("content"))
            .and_then(Value::as_array_mut)
            .and_then(|b| b.last_mut())
        {
            block["cache_control"] = json!({"type": "ephemeral"});
        }
        if let Some(tools) = req.tools.filter(|t| !t.is_empty()) {
            body["tools"] = tools
                .iter()
                .map(|t| {
                    let f = t.get("function").unwrap_or(t);
                    json!({
                        "name": f["name"],
                        "description": f.get("description").cloned().unwrap_or(json!("")),
                        "input_schema": f.get("parameters").cloned().unwrap_or(json!({"type": "object"})),
                    })
                })
                .collect();
        }
        let mut headers = vec![(
            "anthropic-version".to_string(),
            ANTHROPIC_VERSION.to_string(),
        )];
        if let Some(k) = &self.api_key {
            headers.push(("x-api-key".to_string(), k.clone()));
        }
        (format!("{}/v1/messages", self.base_url), headers, body)
    }

    fn parse(
        &self,
        body: &Value,
        next_id: &mut dyn FnMut() -> String,
    ) -> Result<WireReply, String> {
        let blocks = body
            .get("content")
            .and_then(Value::as_array)
            .ok_or_else(|| "no `content` array in the Messages reply".to_string())?;
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for b in blocks {
            match b.get("type").and_then(Value::as_str) {
                Some("text") => {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(b.get("text").and_then(Value::as_str).unwrap_or_default());
                }
                Some("tool_use") => {
                    let Some(name) = b.get("name").and_then(Value::as_str) else {
                        continue;
                    };
                    tool_calls.push(ToolCall {
                        id: b
                            .get("id")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .unwrap_or_else(&mut *next_id),
                        name: name.to_string(),
                        arguments: b.get("input").cloned().unwrap_or(json!({})),
                    });
                }
                _ => {}
            }
        }
        let count = |k: &str| {
            body.pointer(&format!("/usage/{k}"))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        let (read, write) = (
            count("cache_read_input_tokens"),
            count("cache_creation_input_tokens"),
        );
        // `input_tokens` leaves the cached part out; the prompt count is the whole.
        let usage = body
            .get("usage")
            .map(|_| (count("input_tokens") + read + write, count("output_tokens")));
        Ok(WireReply {
            text,
            tool_calls,
            usage,
            cached: (read, write),
        })
    }

    fn not_found(&self, body: &str) -> String {
        format!(
            "model `{}` not found on server {} (HTTP 404: {body}): list models with `curl {}/v1/models -H \"x-api-key: $ANTHROPIC_API_KEY\" -H \"anthropic-version: {ANTHROPIC_VERSION}\"`",
            self.model, self.base_url, self.base_url
        )
    }

    fn unauthorized(&self, status: u16, body: &str) -> String {
        format!(
            "server {} refused the request (HTTP {status}: {body}): {}",
            self.base_url,
            if self.api_key.is_some() {
                "check ANTHROPIC_API_KEY"
            } else {
                "set ANTHROPIC_API_KEY"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_blocks_with_top_level_system() {
        let call = ToolCall {
            id: "toolu_1".into(),
            name: "ls".into(),
            arguments: json!({}),
        };
        let msgs = vec![
            Message::system("sys"),
            Message::user("task"),
            Message::assistant("looking", vec![call]),
            Message::tool("toolu_1", "ERROR: nope"),
            Message::user("nudge"),
        ];
        let req = WireRequest {
            messages: &msgs,
            tools: Some(&[
                json!({"type": "function", "function": {"name": "ls", "description": "d", "parameters": {"type": "object"}}}),
            ]),
            temperature: 0.0,
            max_tokens: 64,
            context_size: 1000,
            action_schema: None,
        };
        let w = AnthropicWire::with_key("c", "https://api/", Some("k".into()));
        let (url, headers, body) = w.request(&req);
        assert_eq!(url, "https://api/v1/messages");
        assert!(headers.contains(&("x-api-key".into(), "k".into())));
        assert!(headers.contains(&("anthropic-version".into(), ANTHROPIC_VERSION.into())));
        assert_eq!(body["system"][0]["text"], "sys");
        assert_eq!(body["system"][0]["cache_control"]["type"], "ephemeral");
        let m = body["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[1]["content"][1]["type"], "tool_use");
        assert_eq!(m[2]["content"][0]["type"], "tool_result");
        assert_eq!(m[2]["content"][0]["tool_use_id"], "toolu_1");
        assert_eq!(m[2]["content"][0]["is_error"], true);
        assert_eq!(m[2]["content"][1]["text"], "nudge");
        // One breakpoint on the newest block, none elsewhere in the messages.
        assert_eq!(m[2]["content"][1]["cache_control"]["type"], "ephemeral");
        assert_eq!(
            body["messages"]
                .to_string()
                .matches("cache_control")
                .count(),
            1
        );
        assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    }

    #[test]
    fn parses_blocks_and_usage() {
        let body = json!({"content": [
            {"type": "text", "text": "ok"},
            {"type": "tool_use", "id": "toolu_9", "name": "submit", "input": {}}],
            "usage": {"input_tokens": 5, "output_tokens": 2}});
        let r = AnthropicWire::with_key("c", "u", None)
            .parse(&body, &mut || "x".into())
            .unwrap();
        assert_eq!(r.text, "ok");
        assert_eq!(r.tool_calls[0].id, "toolu_9");
        assert_eq!(r.usage, Some((5, 2)));
        assert_eq!(r.cached, (0, 0));
        let body = json!({"content": [{"type": "text", "text": "ok"}],
            "usage": {"input_tokens": 5, "cache_read_input_tokens": 900,
                      "cache_creation_input_tokens": 95, "output_tokens": 2}});
        let r = AnthropicWire::with_key("c", "u", None)
            .parse(&body, &mut || "x".into())
            .unwrap();
        assert_eq!(r.usage, Some((1000, 2)));
        assert_eq!(r.cached, (900, 95));
    }
}
