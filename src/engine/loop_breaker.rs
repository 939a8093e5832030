//! The loop-breaker: small models repeat themselves. It watches the calls of
//! one attempt and says when to nudge the model to change approach.

use serde::{Deserialize, Serialize};

use crate::model::ToolCall;

/// Why a nudge was injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NudgeKind {
    /// The same call (name and arguments) for the third time or more.
    RepeatedCall,
    /// A-B-A-B alternation between two calls.
    Alternation,
    /// Three tool errors in a row.
    ErrorStreak,
    /// The reply had no valid tool call.
    FormatError,
    /// The step budget is nearly spent.
    StepsRunningOut,
}

/// Tracks calls and errors within one attempt.
#[derive(Debug, Default)]
pub struct LoopBreaker {
    calls: Vec<String>,
    error_streak: u32,
    repeated: u32,
}

impl LoopBreaker {
    /// A fresh breaker for a new attempt.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls that exactly repeated an earlier call of this attempt.
    pub fn repeated_calls(&self) -> u32 {
        self.repeated
    }

    /// Records a call and its outcome; returns the nudge to inject, if any.
    pub fn observe(&mut self, call: &ToolCall, is_error: bool) -> Option<(NudgeKind, String)> {
        let key = format!("{}\u{0}{}", call.name, canonical(&call.arguments));
        let seen = self.calls.iter().filter(|k| **k == key).count();
        if seen > 0 {
            self.repeated += 1;
        }
        self.calls.push(key);
        self.error_streak = if is_error { self.error_streak + 1 } else { 0 };

        if seen + 1 >= 3 {
            return Some((
                NudgeKind::RepeatedCall,
                format!(
                    "You have now made the same `{}` call {} times; its result will not change. Change approach: read a different file, search for something else, or make an edit. If the tests already pass, call submit.",
                    call.name,
                    seen + 1
                ),
            ));
        }
        let n = self.calls.len();
        if n >= 4 {
            let (a, b, c, d) = (
                &self.calls[n - 4],
                &self.calls[n - 3],
                &self.calls[n - 2],
                &self.calls[n - 1],
            );
            if a == c && b == d && a != b {
                return Some((
                    NudgeKind::Alternation,
                    "You are alternating between the same two calls. Stop and change approach: look at a different part of the code or make a concrete edit.".into(),
                ));
            }
        }
        if self.error_streak >= 3 {
            self.error_streak = 0;
            return Some((
                NudgeKind::ErrorStreak,
                "Your last three tool calls failed. Read the error messages: check paths with `ls`, copy `old_str` exactly from `read_file` output, and use only the documented arguments.".into(),
            ));
        }
        None
    }
}

/// JSON with object keys sorted, so `{"a":1,"b":2}` equals `{"b":2,"a":1}`.
pub fn canonical(v: &serde_json::Value) -> String {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sort(&m[k]));
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(name: &str, args: serde_json::Value) -> ToolCall {
        ToolCall {
            id: "x".into(),
            name: name.into(),
            arguments: args,
        }
    }

    #[test]
    fn third_identical_call_nudges() {
        let mut lb = LoopBreaker::new();
        let c = call("read_file", json!({"path": "a.py"}));
        assert!(lb.observe(&c, false).is_none());
        assert!(lb.observe(&call("ls", json!({})), false).is_none());
        // key order does not matter
        let c2 = call("read_file", json!({"path": "a.py"}));
        assert!(lb.observe(&c2, false).is_none());
        assert_eq!(lb.observe(&c, false).unwrap().0, NudgeKind::RepeatedCall);
        assert_eq!(lb.repeated_calls(), 2);
    }

    #[test]
    fn alternation_nudges() {
        let mut lb = LoopBreaker::new();
        let a = call("ls", json!({"path": "a"}));
        let b = call("ls", json!({"path": "b"}));
        assert!(lb.observe(&a, false).is_none());
        assert!(lb.observe(&b, false).is_none());
        assert!(lb.observe(&a, false).is_none());
        assert_eq!(lb.observe(&b, false).unwrap().0, NudgeKind::Alternation);
    }

    #[test]
    fn error_streak_nudges() {
        let mut lb = LoopBreaker::new();
        assert!(
            lb.observe(&call("ls", json!({"path": "1"})), true)
                .is_none()
        );
        assert!(
            lb.observe(&call("ls", json!({"path": "2"})), true)
                .is_none()
        );
        assert_eq!(
            lb.observe(&call("ls", json!({"path": "3"})), true)
                .unwrap()
                .0,
            NudgeKind::ErrorStreak
        );
        // a success resets the streak
        let mut lb = LoopBreaker::new();
        lb.observe(&call("ls", json!({"path": "1"})), true);
        lb.observe(&call("ls", json!({"path": "2"})), false);
        assert!(
            lb.observe(&call("ls", json!({"path": "3"})), true)
                .is_none()
        );
    }

    #[test]
    fn canonical_sorts_keys() {
        assert_eq!(
            canonical(&json!({"b": 1, "a": {"d": 2, "c": 3}})),
            r#"{"a":{"c":3,"d":2},"b":1}"#
        );
    }
}
