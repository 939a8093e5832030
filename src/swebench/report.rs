//! Official-format reports, byte for byte: the per-instance `report.json`
//! (`json.dumps(report, indent=4)`, no trailing newline) and the aggregate
//! `<model>.<run_id>.json` of `make_run_report` (printed, so it ends in a
//! newline), both with Python's `ensure_ascii` escaping and key order.

use std::collections::{BTreeMap, BTreeSet};

use super::grading::{InstanceGrade, TestResults};

/// A JSON value with ordered keys, serialized exactly like Python's
/// `json.dumps(value, indent=4)`.
#[derive(Debug, Clone, PartialEq)]
pub enum PyJson {
    /// `true`/`false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string (escaped with `ensure_ascii=True`).
    Str(String),
    /// A list.
    List(Vec<PyJson>),
    /// A dict, in insertion order.
    Dict(Vec<(String, PyJson)>),
}

impl PyJson {
    /// `json.dumps(self, indent=4)`.
    pub fn dumps(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, level: usize) {
        match self {
            PyJson::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            PyJson::Int(i) => out.push_str(&i.to_string()),
            PyJson::Str(s) => write_py_str(out, s),
            PyJson::List(items) => {
                if items.is_empty() {
                    out.push_str("[]");
                    return;
                }
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline_indent(out, level + 1);
                    item.write(out, level + 1);
                }
                newline_indent(out, level);
                out.push(']');
            }
            PyJson::Dict(items) => {
                if items.is_empty() {
                    out.push_str("{}");
                    return;
                }
                out.push('{');
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline_indent(out, level + 1);
                    write_py_str(out, k);
                    out.push_str(": ");
                    v.write(out, level + 1);
                }
                newline_indent(out, level);
                out.push('}');
            }
        }
    }
}

fn newline_indent(out: &mut String, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push_str("    ");
    }
}

/// A string literal as Python's `json` writes it with `ensure_ascii=True`.
pub fn write_py_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

fn str_list(v: &[String]) -> PyJson {
    PyJson::List(v.iter().map(|s| PyJson::Str(s.clone())).collect())
}

fn results(r: &TestResults) -> PyJson {
    PyJson::Dict(vec![
        ("success".into(), str_list(&r.success)),
        ("failure".into(), str_list(&r.failure)),
    ])
}

/// The per-instance report as a value (`get_eval_report` of 5.0.2).
/// `model_patch` is the prediction's patch (`None` for JSON null: then only
/// `patch_is_None` is set, as the official harness returns early).
pub fn instance_report(
    instance_id: &str,
    model_patch: Option<&str>,
    grade: &InstanceGrade,
) -> PyJson {
    let mut fields = vec![
        (
            "patch_is_None".to_string(),
            PyJson::Bool(model_patch.is_none()),
        ),
        (
            "patch_exists".to_string(),
            PyJson::Bool(model_patch.is_some()),
        ),
        (
            "patch_successfully_applied".to_string(),
            PyJson::Bool(model_patch.is_some() && grade.patch_applied),
        ),
        (
            "resolved".to_string(),
            PyJson::Bool(model_patch.is_some() && grade.resolved),
        ),
    ];
    let infra_env = model_patch.is_some()
        && !grade.patch_applied
        && grade.infra_failure.as_ref().is_some_and(|f| f.environment);
    fields.push(("infra_failure".to_string(), PyJson::Bool(infra_env)));
    if model_patch.is_some() {
        if !grade.patch_applied {
            if let Some(f) = &grade.infra_failure {
                fields.push((
                    "infra_failure_reason".to_string(),
                    PyJson::Str(f.reason.to_string()),
                ));
            }
        } else {
            let ts = &grade.tests_status;
            fields.push((
                "tests_status".to_string(),
                PyJson::Dict(vec![
                    ("FAIL_TO_PASS".into(), results(&ts.fail_to_pass)),
                    ("PASS_TO_PASS".into(), results(&ts.pass_to_pass)),
                    ("FAIL_TO_FAIL".into(), results(&ts.fail_to_fail)),
                    ("PASS_TO_FAIL".into(), results(&ts.pass_to_fail)),
                ]),
            ));
        }
    }
    PyJson::Dict(vec![(instance_id.to_string(), PyJson::Dict(fields))])
}

/// The per-instance `report.json` text, exactly as the official harness
/// writes it (`json.dumps(report, indent=4)`, no trailing newline).
pub fn instance_report_json(
    instance_id: &str,
    model_patch: Option<&str>,
    grade: &InstanceGrade,
) -> String {
    instance_report(instance_id, model_patch, grade).dumps()
}

/// What the aggregate step found for one submitted, non-empty prediction.
#[derive(Debug, Clone, PartialEq)]
pub enum InstanceOutcome {
    /// A report exists; its `resolved` value.
    Reported {
        /// Whether the report says resolved.
        resolved: bool,
    },
    /// No report, or an unreadable one (an error instance).
    Error,
}

/// One prediction as the aggregate sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateEntry {
    /// The instance id.
    pub instance_id: String,
    /// True when `model_patch` is `""` or `null`.
    pub empty_patch: bool,
    /// The outcome, for non-empty patches.
    pub outcome: InstanceOutcome,
    /// Infra classification of the instance's logs, if any.
    pub infra_failure: Option<(String, bool)>,
}

/// The aggregate run report of `make_run_report` (without a Docker client,
/// so no container/image fields).
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateReport {
    /// The report as an ordered value.
    pub value: PyJson,
    /// Resolved count.
    pub resolved: usize,
    /// Error count.
    pub errors: usize,
    /// Empty-patch count.
    pub empty_patches: usize,
    /// Completed (reported) count.
    pub completed: usize,
    /// Dataset size.
    pub total: usize,
}

impl AggregateReport {
    /// The file text: `json.dumps(report, indent=4)` plus the newline `print` adds.
    pub fn to_json(&self) -> String {
        let mut s = self.value.dumps();
        s.push('\n');
        s
    }
}

/// The aggregate file name: `<model with / as __>.<run_id>.json`.
pub fn aggregate_report_name(model_name_or_path: &str, run_id: &str) -> String {
    format!("{}.{run_id}.json", model_name_or_path.replace('/', "__"))
}

/// Builds the aggregate report. `dataset_ids` is the full dataset in order;
/// `entries` are the submitted predictions (unique ids).
pub fn aggregate_report(dataset_ids: &[String], entries: &[AggregateEntry]) -> AggregateReport {
    let by_id: BTreeMap<&str, &AggregateEntry> = entries
        .iter()
        .map(|e| (e.instance_id.as_str(), e))
        .collect();
    let mut completed = BTreeSet::new();
    let mut resolved = BTreeSet::new();
    let mut unresolved = BTreeSet::new();
    let mut errors = BTreeSet::new();
    let mut incomplete = BTreeSet::new();
    let mut empty = BTreeSet::new();
    for id in dataset_ids {
        let Some(e) = by_id.get(id.as_str()) else {
            incomplete.insert(id.clone());
            continue;
        };
        if e.empty_patch {
            empty.insert(id.clone());
            continue;
        }
        match e.outcome {
            InstanceOutcome::Reported { resolved: r } => {
                completed.insert(id.clone());
                if r {
                    resolved.insert(id.clone());
                } else {
                    unresolved.insert(id.clone());
                }
            }
            InstanceOutcome::Error => {
                errors.insert(id.clone());
            }
        }
    }
    let mut infra = BTreeSet::new();
    let mut ambiguous = BTreeSet::new();
    let mut reasons = BTreeMap::new();
    for id in unresolved.iter().chain(errors.iter()) {
        if let Some(e) = by_id.get(id.as_str())
            && let Some((reason, environment)) = &e.infra_failure
        {
            reasons.insert(id.clone(), reason.clone());
            if *environment {
                infra.insert(id.clone());
            } else {
                ambiguous.insert(id.clone());
            }
        }
    }
    let submitted: BTreeSet<String> = entries.iter().map(|e| e.instance_id.clone()).collect();
    let list =
        |s: &BTreeSet<String>| PyJson::List(s.iter().map(|x| PyJson::Str(x.clone())).collect());
    let n = |x: usize| PyJson::Int(x as i64);
    let value = PyJson::Dict(vec![
        ("total_instances".into(), n(dataset_ids.len())),
        ("submitted_instances".into(), n(entries.len())),
        ("completed_instances".into(), n(completed.len())),
        ("resolved_instances".into(), n(resolved.len())),
        ("unresolved_instances".into(), n(unresolved.len())),
        ("infra_failure_instances".into(), n(infra.len())),
        ("ambiguous_failure_instances".into(), n(ambiguous.len())),
        ("empty_patch_instances".into(), n(empty.len())),
        ("error_instances".into(), n(errors.len())),
        ("completed_ids".into(), list(&completed)),
        ("incomplete_ids".into(), list(&incomplete)),
        ("empty_patch_ids".into(), list(&empty)),
        ("submitted_ids".into(), list(&submitted)),
        ("resolved_ids".into(), list(&resolved)),
        ("unresolved_ids".into(), list(&unresolved)),
        ("infra_failure_ids".into(), list(&infra)),
        ("ambiguous_failure_ids".into(), list(&ambiguous)),
        (
            "failure_reasons".into(),
            PyJson::Dict(
                reasons
                    .into_iter()
                    .map(|(k, v)| (k, PyJson::Str(v)))
                    .collect(),
            ),
        ),
        ("error_ids".into(), list(&errors)),
        ("schema_version".into(), n(2)),
    ]);
    AggregateReport {
        value,
        resolved: resolved.len(),
        errors: errors.len(),
        empty_patches: empty.len(),
        completed: completed.len(),
        total: dataset_ids.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_formatting() {
        let v = PyJson::Dict(vec![
            ("a".into(), PyJson::List(vec![])),
            ("b".into(), PyJson::Dict(vec![])),
            (
                "c".into(),
                PyJson::List(vec![
                    PyJson::Str("é\"\\\n\u{1}\u{7f}😀".into()),
                    PyJson::Bool(true),
                ]),
            ),
        ]);
        assert_eq!(
            v.dumps(),
            "{\n    \"a\": [],\n    \"b\": {},\n    \"c\": [\n        \"\\u00e9\\\"\\\\\\n\\u0001\\u007f\\ud83d\\ude00\",\n        true\n    ]\n}"
        );
    }

    #[test]
    fn aggregate_name() {
        assert_eq!(aggregate_report_name("org/m", "r1"), "org__m.r1.json");
    }
}
