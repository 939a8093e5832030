//! The text tool-call protocol for models that cannot emit native tool
//! calls: one fenced JSON action per reply, `{"tool": NAME, "args": {...}}`.
//!
//! The parser is tolerant of the usual slips of small models: prose around
//! the action, ```json fences, `<tool_call>` tags, a trailing comma, and the
//! `"name"`/`"arguments"` spelling of OpenAI-style calls.

use serde_json::{Map, Value};

/// The system-prompt addendum that asks for the protocol.
pub fn addendum(tools: &[Value]) -> String {
    format!(
        "## How to call a tool\n\
Reply with exactly one action per message: a JSON object in a ```json fenced block, like this:\n\
```json\n{{\"tool\": \"ls\", \"args\": {{\"path\": \".\"}}}}\n```\n\
The tools and their arguments (`?` = optional):\n{}\n\
Write at most a short sentence of reasoning before the block, and nothing after it. \
You will receive the tool's result in the next message.",
        tool_lines(tools)
    )
}

/// What the model is told after a reply with no valid action.
pub fn hint(tools: &[Value]) -> String {
    format!(
        "Reply with exactly one action as a JSON object in a ```json fenced block, e.g.\n\
```json\n{{\"tool\": \"ls\", \"args\": {{\"path\": \".\"}}}}\n```\n\
Tools: {}.",
        tool_lines(tools).replace('\n', "; ").trim_end_matches("; ")
    )
}

/// One line per offered tool, `- name {a, b?}: summary`, derived from the
/// schemas the registry built (so run-time tools are listed too).
fn tool_lines(tools: &[Value]) -> String {
    tools
        .iter()
        .filter_map(|t| {
            let f = &t["function"];
            Some(
                crate::tools::ToolSpec {
                    name: f["name"].as_str()?.to_string(),
                    description: f["description"].as_str().unwrap_or_default().to_string(),
                    parameters: f["parameters"].clone(),
                }
                .text_line(),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The action parsed out of a reply: tool name and argument object.
#[derive(Debug, Clone, PartialEq)]
pub struct TextAction {
    /// Tool name.
    pub tool: String,
    /// Argument object.
    pub args: Value,
}

/// Extracts the first valid action from `text`, or says why there is none.
pub fn parse(text: &str) -> Result<TextAction, String> {
    if text.trim().is_empty() {
        return Err("the reply was empty".into());
    }
    let mut saw_json = false;
    for cand in candidates(text) {
        let Some(value) = parse_lenient(&cand) else {
            continue;
        };
        saw_json = true;
        if let Some(a) = action_from(&value) {
            return Ok(a);
        }
    }
    Err(if saw_json {
        "the reply had JSON but no object of the form {\"tool\": NAME, \"args\": {...}}".into()
    } else {
        "the reply contained no JSON action".into()
    })
}

/// Candidate JSON texts, best first: fenced blocks, `<tool_call>` bodies,
/// then every balanced `{...}` in the text.
fn candidates(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map(|i| i + 1).unwrap_or(0);
        let lang = after[..body_start].trim();
        let (body, next) = match after[body_start..].find("```") {
            Some(end) => (
                &after[body_start..body_start + end],
                &after[body_start + end + 3..],
            ),
            None => (&after[body_start..], ""),
        };
        // ```{"tool": ...}``` on one line: the "language" is the JSON.
        if lang.starts_with('{') {
            out.push(after[..after.find("```").unwrap_or(after.len())].to_string());
        } else {
            out.push(body.to_string());
        }
        rest = next;
    }
    let mut rest = text;
    while let Some(start) = rest.find("<tool_call>") {
        let after = &rest[start + "<tool_call>".len()..];
        let end = after.find("</tool_call>").unwrap_or(after.len());
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out.extend(balanced_objects(text));
    out
}

/// Every top-level balanced `{...}` span, skipping braces inside strings.
fn balanced_objects(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        let mut depth = 0usize;
        let mut in_str = false;
        let mut esc = false;
        let mut end = None;
        for (j, &b) in bytes.iter().enumerate().skip(i) {
            if in_str {
                match (esc, b) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(j);
                        break;
                    }
                }
                _ => {}
            }
        }
        match end {
            Some(j) => {
                out.push(text[i..=j].to_string());
                i = j + 1;
            }
            None => break,
        }
    }
    out
}

/// JSON, or JSON with trailing commas removed.
fn parse_lenient(s: &str) -> Option<Value> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<Value>(s) {
        return Some(v);
    }
    let fixed = strip_trailing_commas(s);
    serde_json::from_str::<Value>(&fixed).ok().or_else(|| {
        // The object may be followed by prose inside the block.
        balanced_objects(&fixed)
            .into_iter()
            .next()
            .filter(|o| o.len() < fixed.len())
            .and_then(|o| serde_json::from_str(&o).ok())
    })
}

/// Removes a `,` that directly precedes `}` or `]` (outside strings).
fn strip_trailing_commas(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut in_str = false;
    let mut esc = false;
    for (i, &c) in chars.iter().enumerate() {
        if in_str {
            out.push(c);
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_str = true;
        }
        if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Reads `{"tool"|"name": S, "args"|"arguments"|"parameters": {...}}`, also
/// nested as `{"function": {...}}`; string-encoded arguments are decoded.
fn action_from(v: &Value) -> Option<TextAction> {
    let obj = v.as_object()?;
    if let Some(inner) = obj.get("function").filter(|f| f.is_object()) {
        return action_from(inner);
    }
    let tool = ["tool", "name", "tool_name", "action"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))?
        .trim()
        .to_string();
    if tool.is_empty() {
        return None;
    }
    let raw_args = ["args", "arguments", "parameters", "input"]
        .iter()
        .find_map(|k| obj.get(*k));
    let args = match raw_args {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(Value::String(s)) => match parse_lenient(s) {
            Some(Value::Object(m)) => Value::Object(m),
            _ if s.trim().is_empty() => Value::Object(Map::new()),
            _ => return None,
        },
        Some(_) => return None,
    };
    Some(TextAction { tool, args })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(text: &str) -> TextAction {
        parse(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn fenced_block_with_prose() {
        let a = ok(
            "I will read it.\n```json\n{\"tool\": \"read_file\", \"args\": {\"path\": \"a.py\"}}\n```\nThanks",
        );
        assert_eq!(a.tool, "read_file");
        assert_eq!(a.args, json!({"path": "a.py"}));
    }

    #[test]
    fn tool_call_tags_and_openai_spelling() {
        let a = ok(
            "<tool_call>\n{\"name\": \"run\", \"arguments\": {\"command\": \"pytest -q\"}}\n</tool_call>",
        );
        assert_eq!(a.tool, "run");
        assert_eq!(a.args, json!({"command": "pytest -q"}));
        let a =
            ok("{\"function\": {\"name\": \"ls\", \"arguments\": \"{\\\"path\\\": \\\".\\\"}\"}}");
        assert_eq!(a.tool, "ls");
        assert_eq!(a.args, json!({"path": "."}));
    }

    #[test]
    fn trailing_commas_and_bare_objects() {
        let a = ok("Let me look: {\"tool\": \"ls\", \"args\": {\"path\": \"src\",},} ok?");
        assert_eq!(a.tool, "ls");
        assert_eq!(a.args, json!({"path": "src"}));
        // A comma inside a string is kept.
        let a = ok(
            "```\n{\"tool\": \"str_replace\", \"args\": {\"path\": \"a\", \"old_str\": \"a,}\", \"new_str\": \"b\"},}\n```",
        );
        assert_eq!(a.args["old_str"], "a,}");
    }

    #[test]
    fn submit_without_args_and_braces_in_strings() {
        assert_eq!(ok("```json\n{\"tool\": \"submit\"}\n```").args, json!({}));
        let a = ok("{\"tool\": \"search\", \"args\": {\"pattern\": \"def f\\\\(\\\\{\"}}");
        assert_eq!(a.tool, "search");
    }

    #[test]
    fn picks_the_first_action_among_other_json() {
        let a = ok("data {\"x\": 1} then ```json\n{\"tool\": \"ls\", \"args\": {}}\n```");
        assert_eq!(a.tool, "ls");
    }

    #[test]
    fn no_action_is_an_explained_error() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(
            parse("I'm glad to help!")
                .unwrap_err()
                .contains("no JSON action")
        );
        assert!(parse("{\"x\": 1}").unwrap_err().contains("no object"));
        assert!(parse("```json\n{\"tool\": \"ls\", \"args\": [1]}\n```").is_err());
        assert!(parse("{\"tool\": \"ls\", \"args\": {\"path\": ").is_err());
    }

    #[test]
    fn addendum_and_hint_show_the_format() {
        let tools = crate::tools::schemas();
        assert!(addendum(&tools).contains("{\"tool\": \"ls\""));
        assert!(
            addendum(&tools).contains("- read_file {path, end_line?, start_line?}: read a file")
        );
        assert!(hint(&tools).contains("```json"));
        assert!(hint(&tools).contains("str_replace {path, old_str, new_str}"));
    }
}
