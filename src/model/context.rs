//! The context budget: when a conversation nears the model's context size,
//! old tool observations are elided (system prompt, task, the latest failure
//! and the last N turns are kept) and a note says what was cut. The loop
//! never dies on an overflow: a harder pass truncates what is left.

use std::collections::HashMap;

use super::{Message, Role};

/// Rough tokens of a text: ~3 characters per token for code and logs,
/// deliberately pessimistic so we elide before the server refuses.
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(3)
}

/// Estimated tokens of a conversation, with per-message template overhead.
pub fn conversation_tokens(msgs: &[Message]) -> usize {
    msgs.iter()
        .map(|m| {
            8 + estimate_tokens(&m.content)
                + m.tool_calls
                    .iter()
                    .map(|c| {
                        8 + estimate_tokens(&c.name) + estimate_tokens(&c.arguments.to_string())
                    })
                    .sum::<usize>()
        })
        .sum()
}

/// How hard to elide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pressure {
    /// Elide old observations only when over budget.
    Normal,
    /// After a context-length error from the server: keep only the last
    /// turn verbatim and aim at half the budget.
    Hard,
}

/// The conversation to send, and a note when something was cut.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The messages to send.
    pub messages: Vec<Message>,
    /// What was elided, for the trajectory.
    pub note: Option<String>,
}

/// Fits `conv` into `budget` tokens, keeping the last `keep_turns` turns.
pub fn fit(conv: &[Message], budget: usize, keep_turns: usize, pressure: Pressure) -> Fitted {
    let (budget, keep_turns) = match pressure {
        Pressure::Normal => (budget, keep_turns.max(1)),
        // The server refused what we estimated would fit: our estimate (or
        // the configured context size) is off, so halve what was sent.
        Pressure::Hard => (budget.min(conversation_tokens(conv)) / 2, 1),
    };
    let mut msgs = conv.to_vec();
    if pressure == Pressure::Normal && conversation_tokens(&msgs) <= budget {
        return Fitted {
            messages: msgs,
            note: None,
        };
    }
    let tail_start = tail_start(&msgs, keep_turns);
    let latest_failure = msgs
        .iter()
        .rposition(|m| m.role == Role::Tool && looks_like_failure(&m.content));
    let tool_names: HashMap<String, String> = msgs
        .iter()
        .flat_map(|m| m.tool_calls.iter())
        .map(|c| (c.id.clone(), c.name.clone()))
        .collect();

    let mut elided = 0usize;
    let mut elided_chars = 0usize;
    // Pass 1: old tool observations, oldest first.
    for i in 2..tail_start {
        if conversation_tokens(&msgs) <= budget {
            break;
        }
        if msgs[i].role != Role::Tool || Some(i) == latest_failure || is_elided(&msgs[i].content) {
            continue;
        }
        let tool = msgs[i]
            .tool_call_id
            .as_ref()
            .and_then(|id| tool_names.get(id))
            .map(String::as_str)
            .unwrap_or("tool");
        elided_chars += msgs[i].content.len();
        elided += 1;
        msgs[i].content = format!(
            "[elided by airgate: {} chars of `{tool}` output, to fit the context window]",
            msgs[i].content.len()
        );
    }
    // Pass 2: still over: old assistant prose and nudges, then cap whatever
    // is left (latest failure and tail included) to head + tail.
    let mut truncated = 0usize;
    if conversation_tokens(&msgs) > budget {
        for m in msgs.iter_mut().take(tail_start).skip(2) {
            if m.role != Role::Tool && m.content.len() > 400 {
                elided_chars += m.content.len() - 400;
                m.content = head_tail(&m.content, 400);
                truncated += 1;
            }
        }
    }
    let mut cap = 8000usize;
    while conversation_tokens(&msgs) > budget && cap >= 200 {
        for (i, m) in msgs.iter_mut().enumerate() {
            if i == 0 {
                continue;
            }
            if m.content.len() > cap {
                elided_chars += m.content.len() - cap;
                m.content = head_tail(&m.content, cap);
                truncated += 1;
            }
        }
        cap /= 2;
    }
    let note = (elided > 0 || truncated > 0).then(|| {
        format!(
            "context budget: elided {elided} old tool observation(s) and shortened {truncated} message(s) ({elided_chars} chars) to fit ~{budget} tokens; kept the system prompt, the task, the latest failure and the last {keep_turns} turn(s)"
        )
    });
    Fitted {
        messages: msgs,
        note,
    }
}

/// Index of the first message of the last `keep_turns` assistant turns.
fn tail_start(msgs: &[Message], keep_turns: usize) -> usize {
    let mut seen = 0;
    for (i, m) in msgs.iter().enumerate().rev() {
        if m.role == Role::Assistant {
            seen += 1;
            if seen == keep_turns {
                return i.max(2);
            }
        }
    }
    2.min(msgs.len())
}

fn is_elided(s: &str) -> bool {
    s.starts_with("[elided by airgate")
}

/// A failing command or tool error: what the model most needs to see.
fn looks_like_failure(s: &str) -> bool {
    s.starts_with("ERROR")
        || s.contains("Traceback")
        || s.contains("FAILED")
        || s.contains("AssertionError")
        || s.contains("exit code: 1")
        || s.contains("exit code 1")
}

/// Keeps the head and tail of `limit` bytes, with a label the elision
/// check above recognises.
fn head_tail(s: &str, limit: usize) -> String {
    crate::truncate::head_tail_with(s, limit, |bytes, _| {
        format!("[... {bytes} chars elided by airgate to fit the context window ...]")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ToolCall;

    fn convo(turns: usize, obs_len: usize) -> Vec<Message> {
        let mut v = vec![Message::system("sys"), Message::user("the task")];
        for i in 0..turns {
            let id = format!("call_{i}");
            v.push(Message::assistant(
                "",
                vec![ToolCall {
                    id: id.clone(),
                    name: "read_file".into(),
                    arguments: serde_json::json!({"path": format!("f{i}.py")}),
                }],
            ));
            v.push(Message::tool(id, "x".repeat(obs_len)));
        }
        v
    }

    #[test]
    fn under_budget_is_untouched() {
        let c = convo(3, 100);
        let f = fit(&c, 10_000, 4, Pressure::Normal);
        assert_eq!(f.messages, c);
        assert!(f.note.is_none());
    }

    #[test]
    fn elides_old_observations_keeping_head_failure_and_tail() {
        let mut c = convo(10, 3000);
        c[5].content = "ERROR: Traceback ... AssertionError".into();
        let f = fit(&c, 4000, 2, Pressure::Normal);
        assert!(conversation_tokens(&f.messages) <= 4000);
        assert_eq!(f.messages.len(), c.len());
        assert_eq!(f.messages[0], c[0]);
        assert_eq!(f.messages[1], c[1]);
        assert_eq!(f.messages[5], c[5], "latest failure kept");
        let n = c.len();
        assert_eq!(f.messages[n - 1], c[n - 1]);
        assert_eq!(f.messages[n - 3], c[n - 3]);
        assert!(
            f.messages[3]
                .content
                .contains("elided by airgate: 3000 chars of `read_file`")
        );
        // Tool results stay tied to their calls.
        assert_eq!(f.messages[3].tool_call_id.as_deref(), Some("call_0"));
        let note = f.note.unwrap();
        assert!(
            note.contains("elided") && note.contains("latest failure"),
            "{note}"
        );
    }

    #[test]
    fn hard_pressure_and_huge_messages_never_overflow() {
        let mut c = convo(2, 200_000);
        c[1].content = "t".repeat(100_000);
        let f = fit(&c, 4000, 4, Pressure::Hard);
        assert!(
            conversation_tokens(&f.messages) <= 2000,
            "{}",
            conversation_tokens(&f.messages)
        );
        assert!(f.note.is_some());
        assert_eq!(f.messages[0].content, "sys");
    }
}
