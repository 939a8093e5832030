//! `script:FILE`: replays a JSONL file of tool calls, then submits.
//!
//! Used by tests, CI and replays: it drives the real loop, tools and gate
//! with no model at all.

use std::path::Path;

use async_trait::async_trait;
use serde::Deserialize;

use super::{EpisodeInfo, Message, ModelError, Policy, Proposal, ToolCall};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptLine {
    tool: String,
    #[serde(default)]
    args: serde_json::Value,
}

/// Replays scripted tool calls in order; submits once they run out.
#[derive(Debug)]
pub struct ScriptPolicy {
    name: String,
    calls: Vec<(String, serde_json::Value)>,
    next: usize,
    counter: u64,
}

impl ScriptPolicy {
    /// Loads and validates the whole file up front, so a malformed line is
    /// reported (with its line number) before anything runs.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ModelError::Config(format!("cannot read script {}: {e}", path.display()))
        })?;
        Self::parse(&text, &format!("script:{}", path.display()), path)
    }

    fn parse(text: &str, name: &str, path: &Path) -> Result<Self, ModelError> {
        let mut calls = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with("//") {
                continue;
            }
            let parsed: ScriptLine = serde_json::from_str(trimmed).map_err(|e| {
                ModelError::Config(format!(
                    "{}:{}: malformed script line ({e}); expected {{\"tool\": NAME, \"args\": {{...}}}}",
                    path.display(),
                    i + 1
                ))
            })?;
            let args = if parsed.args.is_null() {
                serde_json::json!({})
            } else {
                parsed.args
            };
            if !args.is_object() {
                return Err(ModelError::Config(format!(
                    "{}:{}: `args` must be a JSON object",
                    path.display(),
                    i + 1
                )));
            }
            calls.push((parsed.tool, args));
        }
        Ok(Self {
            name: name.to_string(),
            calls,
            next: 0,
            counter: 0,
        })
    }

    /// A policy from an in-memory list of calls (used by `reference`).
    pub fn from_calls(name: impl Into<String>, calls: Vec<(String, serde_json::Value)>) -> Self {
        Self {
            name: name.into(),
            calls,
            next: 0,
            counter: 0,
        }
    }
}

#[async_trait]
impl Policy for ScriptPolicy {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn propose(
        &mut self,
        _conversation: &[Message],
        _info: &EpisodeInfo,
    ) -> Result<Proposal, ModelError> {
        let (tool, args) = match self.calls.get(self.next) {
            Some((t, a)) => {
                self.next += 1;
                (t.clone(), a.clone())
            }
            None => ("submit".to_string(), serde_json::json!({})),
        };
        self.counter += 1;
        let raw = serde_json::json!({ "tool": tool, "args": args }).to_string();
        let call = ToolCall {
            id: format!("call_{}", self.counter),
            name: tool,
            arguments: args,
        };
        Ok(Proposal {
            message: Some(Message::assistant("", vec![call])),
            raw,
            ..Proposal::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_line_names_its_number() {
        let err = ScriptPolicy::parse(
            "{\"tool\":\"ls\",\"args\":{}}\n\n{not json}\n",
            "t",
            Path::new("s.jsonl"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("s.jsonl:3"), "{err}");
    }

    #[tokio::test]
    async fn replays_then_submits() {
        let mut p = ScriptPolicy::parse(
            "{\"tool\":\"ls\",\"args\":{\"path\":\".\"}}\n",
            "t",
            Path::new("s"),
        )
        .unwrap();
        let info = EpisodeInfo::default();
        let first = p.propose(&[], &info).await.unwrap();
        assert_eq!(first.message.unwrap().tool_calls[0].name, "ls");
        let second = p.propose(&[], &info).await.unwrap();
        assert_eq!(second.message.unwrap().tool_calls[0].name, "submit");
    }
}
