//! The loop-breaker: small models repeat themselves. It watches the calls of
//! one attempt and says when to nudge the model to change approach; when a
//! nudge is ignored it refuses the repeated call, and after
//! [`DEFAULT_STUCK_AFTER`] ignored nudges it says the attempt is stuck (the
//! engine then ends it). It also spots degenerate replies: tool calls with
//! absurd arguments.

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
    /// A nudge was ignored: the repeated call was refused, not run.
    Refused,
}

/// Ignored nudges after which an attempt is stuck and ends.
pub const DEFAULT_STUCK_AFTER: u32 = 3;

/// What to do with a call before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallVerdict {
    /// Run it.
    Run,
    /// Do not run it: it repeats what the last nudge said to stop. `text`
    /// is the error the model gets; `stuck` says the attempt must end.
    Refuse {
        /// The error returned to the model in place of the tool result.
        text: String,
        /// Nudges ignored so far in this attempt.
        ignored: u32,
        /// The attempt has ignored enough nudges to be ended.
        stuck: bool,
    },
}

/// Tracks calls and errors within one attempt.
#[derive(Debug, Default)]
pub struct LoopBreaker {
    calls: Vec<String>,
    /// Readable form of each call, for refusal messages.
    shown: Vec<String>,
    error_streak: u32,
    repeated: u32,
    /// Calls the outstanding repetition nudge told the model to stop making.
    nudged: Vec<String>,
    ignored: u32,
    stuck_after: u32,
}

impl LoopBreaker {
    /// A fresh breaker for a new attempt (stuck after [`DEFAULT_STUCK_AFTER`]
    /// ignored nudges).
    pub fn new() -> Self {
        Self::with_stuck_after(DEFAULT_STUCK_AFTER)
    }

    /// A fresh breaker that calls the attempt stuck after `k` ignored
    /// nudges (at least 1).
    pub fn with_stuck_after(k: u32) -> Self {
        Self {
            stuck_after: k.max(1),
            ..Self::default()
        }
    }

    /// Nudges ignored so far in this attempt.
    pub fn ignored_nudges(&self) -> u32 {
        self.ignored
    }

    /// Decides, before a call runs, whether it ignores the outstanding
    /// nudge. A refused call is recorded (it counts as a repeat) but not
    /// observed again by [`LoopBreaker::observe`].
    pub fn check(&mut self, call: &ToolCall) -> CallVerdict {
        let key = key(call);
        if !self.nudged.contains(&key) {
            // Anything else heeds the nudge.
            self.nudged.clear();
            return CallVerdict::Run;
        }
        self.ignored += 1;
        self.repeated += 1;
        self.calls.push(key);
        self.shown.push(show(call));
        let last: Vec<String> = self
            .shown
            .iter()
            .rev()
            .take(3)
            .rev()
            .enumerate()
            .map(|(i, c)| format!("  {}. {c}", i + 1))
            .collect();
        let stuck = self.ignored >= self.stuck_after;
        let tail = if stuck {
            "This attempt is over: it ignored too many nudges.".to_string()
        } else {
            format!(
                "Ignored nudges: {} of {}; at {} this attempt ends. Make a different call: read another file, search, edit, or submit.",
                self.ignored, self.stuck_after, self.stuck_after
            )
        };
        CallVerdict::Refuse {
            text: format!(
                "ERROR: refused, not run: this `{}` call repeats what you were told to stop doing, and its result would not change. Your last three calls were:\n{}\n{tail}",
                call.name,
                last.join("\n")
            ),
            ignored: self.ignored,
            stuck,
        }
    }

    /// Calls that exactly repeated an earlier call of this attempt.
    pub fn repeated_calls(&self) -> u32 {
        self.repeated
    }

    /// Records a call and its outcome; returns the nudge to inject, if any.
    pub fn observe(&mut self, call: &ToolCall, is_error: bool) -> Option<(NudgeKind, String)> {
        let key = key(call);
        let seen = self.calls.iter().filter(|k| **k == key).count();
        if seen > 0 {
            self.repeated += 1;
        }
        self.calls.push(key.clone());
        self.shown.push(show(call));
        self.error_streak = if is_error { self.error_streak + 1 } else { 0 };

        if seen + 1 >= 3 {
            self.nudged = vec![key];
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
                self.nudged = vec![a.clone(), b.clone()];
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

fn key(call: &ToolCall) -> String {
    format!("{}\u{0}{}", call.name, canonical(&call.arguments))
}

/// A call as the model would recognise it, cut to a readable length.
fn show(call: &ToolCall) -> String {
    let args = canonical(&call.arguments);
    let args: String = if args.chars().count() > 120 {
        args.chars().take(117).chain("...".chars()).collect()
    } else {
        args
    };
    format!("{} {args}", call.name)
}

/// Largest number a tool argument may hold before it is absurd (a
/// `timeout_s` of 31 years, a line number past any file).
pub const ABSURD_NUMBER: f64 = 1e9;

/// Largest string argument (bytes) before it is absurd.
pub const ABSURD_STRING: usize = 1 << 20;

/// Says why a call's arguments are absurd (a number over
/// [`ABSURD_NUMBER`], a string over [`ABSURD_STRING`], nesting deeper than
/// 16): a degenerate reply that ends the attempt.
pub fn absurd_arguments(call: &ToolCall) -> Option<String> {
    fn walk(k: &str, v: &serde_json::Value, depth: u32) -> Option<String> {
        if depth > 16 {
            return Some("arguments nested more than 16 deep".into());
        }
        match v {
            serde_json::Value::Number(n) => {
                let f = n.as_f64().unwrap_or(f64::INFINITY);
                (!f.is_finite() || f.abs() > ABSURD_NUMBER).then(|| format!("`{k}` is {n}"))
            }
            serde_json::Value::String(s) if s.len() > ABSURD_STRING => {
                Some(format!("`{k}` is a {} byte string", s.len()))
            }
            serde_json::Value::Array(a) => a.iter().find_map(|x| walk(k, x, depth + 1)),
            serde_json::Value::Object(m) => m.iter().find_map(|(k, x)| walk(k, x, depth + 1)),
            _ => None,
        }
    }
    walk("arguments", &call.arguments, 0)
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
    fn ignored_nudges_are_refused_then_stuck() {
        let mut lb = LoopBreaker::with_stuck_after(3);
        let c = call("run", json!({"command": "test_command"}));
        for _ in 0..2 {
            assert_eq!(lb.check(&c), CallVerdict::Run);
            assert!(lb.observe(&c, false).is_none());
        }
        assert_eq!(lb.check(&c), CallVerdict::Run);
        assert_eq!(lb.observe(&c, false).unwrap().0, NudgeKind::RepeatedCall);
        for n in 1..=3 {
            match lb.check(&c) {
                CallVerdict::Refuse {
                    text,
                    ignored,
                    stuck,
                } => {
                    assert_eq!(ignored, n);
                    assert_eq!(stuck, n == 3);
                    assert!(
                        text.contains("1. run {\"command\":\"test_command\"}"),
                        "{text}"
                    );
                    assert!(text.contains("3. run"), "{text}");
                }
                CallVerdict::Run => panic!("repeat {n} after a nudge was run"),
            }
        }
        assert_eq!(lb.ignored_nudges(), 3);
    }

    #[test]
    fn heeded_nudge_is_not_counted() {
        let mut lb = LoopBreaker::new();
        let c = call("ls", json!({}));
        for _ in 0..3 {
            lb.check(&c);
            lb.observe(&c, false);
        }
        // a different call heeds the nudge: it runs and clears it
        let d = call("read_file", json!({"path": "a.py"}));
        assert_eq!(lb.check(&d), CallVerdict::Run);
        lb.observe(&d, false);
        // ...so the old call is no longer refused outright (it is nudged again)
        assert_eq!(lb.check(&c), CallVerdict::Run);
        assert_eq!(lb.ignored_nudges(), 0);
    }

    #[test]
    fn alternation_ignored_is_refused() {
        let mut lb = LoopBreaker::new();
        let a = call("ls", json!({"path": "a"}));
        let b = call("ls", json!({"path": "b"}));
        for c in [&a, &b, &a] {
            lb.check(c);
            lb.observe(c, false);
        }
        assert_eq!(lb.check(&b), CallVerdict::Run);
        assert_eq!(lb.observe(&b, false).unwrap().0, NudgeKind::Alternation);
        assert!(matches!(lb.check(&a), CallVerdict::Refuse { .. }));
    }

    #[test]
    fn absurd_arguments_are_spotted() {
        let bad = call(
            "run",
            json!({"command": "pytest", "timeout_s": 1_000_000_000_000_000u64}),
        );
        assert!(absurd_arguments(&bad).unwrap().contains("timeout_s"));
        let ok = call("run", json!({"command": "pytest", "timeout_s": 600}));
        assert!(absurd_arguments(&ok).is_none());
        let huge = call(
            "str_replace",
            json!({"new_str": "x".repeat(ABSURD_STRING + 1)}),
        );
        assert!(absurd_arguments(&huge).is_some());
    }

    #[test]
    fn canonical_sorts_keys() {
        assert_eq!(
            canonical(&json!({"b": 1, "a": {"d": 2, "c": 3}})),
            r#"{"a":{"c":3,"d":2},"b":1}"#
        );
    }
}
