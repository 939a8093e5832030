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

/// What strict grading adds to one instance's report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StrictFields {
    /// The strict verdict (becomes `resolved`).
    pub resolved: bool,
    /// Why it differs from the official one.
    pub flags: Vec<String>,
    /// The empty patch resolves the instance too.
    pub broken: bool,
}

/// The per-instance report of `swebench eval --strict`: the official
/// report with `resolved` set to the strict verdict, followed by
/// `resolved_official`, `broken` and `flags`.
pub fn strict_instance_report_json(
    instance_id: &str,
    model_patch: Option<&str>,
    grade: &InstanceGrade,
    strict: &StrictFields,
) -> String {
    let mut value = instance_report(instance_id, model_patch, grade);
    if let PyJson::Dict(outer) = &mut value
        && let Some((_, PyJson::Dict(fields))) = outer.first_mut()
        && let Some(pos) = fields.iter().position(|(k, _)| k == "resolved")
    {
        let official = fields[pos].1.clone();
        fields[pos].1 = PyJson::Bool(model_patch.is_some() && strict.resolved);
        let extra = [
            ("resolved_official".to_string(), official),
            ("broken".to_string(), PyJson::Bool(strict.broken)),
            ("flags".to_string(), str_list(&strict.flags)),
        ];
        for (i, kv) in extra.into_iter().enumerate() {
            fields.insert(pos + 1 + i, kv);
        }
    }
    value.dumps()
}

/// The strict fields of an existing `report.json` (`None` for an official one).
pub fn read_strict_fields(text: &str, instance_id: &str) -> Option<(bool, StrictFields)> {
    let v: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    let r = v.get(instance_id)?;
    let official = r.get("resolved_official")?.as_bool()?;
    Some((
        official,
        StrictFields {
            resolved: r.get("resolved")?.as_bool()?,
            flags: r
                .get("flags")?
                .as_array()?
                .iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect(),
            broken: r.get("broken").and_then(|b| b.as_bool()).unwrap_or(false),
        },
    ))
}

/// The strict view of one reported instance, for the aggregate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StrictEntry {
    /// What the official rules said.
    pub resolved_official: bool,
    /// Strict grading raised at least one flag.
    pub flagged: bool,
    /// The empty patch resolves the instance.
    pub broken: bool,
}

/// Strict counts of an aggregate report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StrictCounts {
    /// Resolved by the official rules.
    pub resolved_official: usize,
    /// Instances with at least one flag.
    pub flagged: usize,
    /// Instances whose empty patch resolves.
    pub broken: usize,
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
    /// Strict fields of its report (`swebench eval --strict`).
    pub strict: Option<StrictEntry>,
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
    /// Strict counts (`--strict` only).
    pub strict: Option<StrictCounts>,
    /// What the engine still held after the run (`None` without an engine).
    pub engine: Option<EngineLeftovers>,
}

/// What the container engine still holds after a run: the official report's
/// `unstopped_containers` (names containing the run id) and
/// `unremoved_images` (dataset `image` fields still present).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineLeftovers {
    /// Container names (any state) that contain the run id.
    pub unstopped_containers: BTreeSet<String>,
    /// Images named by the selected rows that are still present.
    pub unremoved_images: BTreeSet<String>,
}

impl AggregateReport {
    /// Adds the keys `make_run_report` adds when it has a Docker client:
    /// `unstopped_instances`, `unstopped_containers` and `unremoved_images`,
    /// after `schema_version` (Python's `dict.update` appends them).
    pub fn with_engine(mut self, leftovers: EngineLeftovers) -> Self {
        if let PyJson::Dict(fields) = &mut self.value {
            let list = |s: &BTreeSet<String>| {
                PyJson::List(s.iter().map(|x| PyJson::Str(x.clone())).collect())
            };
            fields.push((
                "unstopped_instances".into(),
                PyJson::Int(leftovers.unstopped_containers.len() as i64),
            ));
            fields.push((
                "unstopped_containers".into(),
                list(&leftovers.unstopped_containers),
            ));
            fields.push(("unremoved_images".into(), list(&leftovers.unremoved_images)));
        }
        self.engine = Some(leftovers);
        self
    }

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
    aggregate_report_with(dataset_ids, entries, false)
}

/// [`aggregate_report`], plus with `strict` the official and strict counts
/// side by side: `resolved_*` are strict, and `resolved_official_*`,
/// `flagged_*` and `broken_*` follow `error_ids`.
pub fn aggregate_report_with(
    dataset_ids: &[String],
    entries: &[AggregateEntry],
    strict: bool,
) -> AggregateReport {
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
    let (mut official, mut flagged, mut broken) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for id in &completed {
        if let Some(s) = by_id.get(id.as_str()).and_then(|e| e.strict) {
            if s.resolved_official {
                official.insert(id.clone());
            }
            if s.flagged {
                flagged.insert(id.clone());
            }
            if s.broken {
                broken.insert(id.clone());
            }
        }
    }
    let submitted: BTreeSet<String> = entries.iter().map(|e| e.instance_id.clone()).collect();
    let list =
        |s: &BTreeSet<String>| PyJson::List(s.iter().map(|x| PyJson::Str(x.clone())).collect());
    let n = |x: usize| PyJson::Int(x as i64);
    let mut fields = vec![
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
    ];
    if strict {
        fields.extend([
            ("strict".to_string(), PyJson::Bool(true)),
            ("resolved_official_instances".into(), n(official.len())),
            ("flagged_instances".into(), n(flagged.len())),
            ("broken_instances".into(), n(broken.len())),
            ("resolved_official_ids".into(), list(&official)),
            ("flagged_ids".into(), list(&flagged)),
            ("broken_ids".into(), list(&broken)),
        ]);
    }
    fields.push(("schema_version".into(), n(2)));
    let value = PyJson::Dict(fields);
    AggregateReport {
        value,
        resolved: resolved.len(),
        errors: errors.len(),
        empty_patches: empty.len(),
        completed: completed.len(),
        total: dataset_ids.len(),
        strict: strict.then_some(StrictCounts {
            resolved_official: official.len(),
            flagged: flagged.len(),
            broken: broken.len(),
        }),
        engine: None,
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
    fn strict_report_keeps_the_official_verdict_beside_the_strict_one() {
        let grade = InstanceGrade {
            instance_id: "a__b-1".into(),
            resolved: true,
            patch_applied: true,
            mode: super::super::grading::GradeMode::Markers,
            resolution: super::super::grading::ResolvedStatus::Full,
            tests_status: Default::default(),
            error: None,
            parser: None,
            eval_type: super::super::grading::EvalType::PassAndFail,
            infra_failure: None,
            parsed_tests: 1,
            exit_code: None,
        };
        let strict = StrictFields {
            resolved: false,
            flags: vec!["patch_policy:runner_config:conftest.py".into()],
            broken: false,
        };
        let text = strict_instance_report_json("a__b-1", Some("p"), &grade, &strict);
        let official = instance_report_json("a__b-1", Some("p"), &grade);
        assert!(text.starts_with("{\n    \"a__b-1\": {\n        \"patch_is_None\": false,"));
        assert!(text.contains("\"resolved\": false,\n        \"resolved_official\": true,\n        \"broken\": false,\n        \"flags\": [\n            \"patch_policy:runner_config:conftest.py\"\n        ],"), "{text}");
        assert!(official.contains("\"resolved\": true,") && !official.contains("flags"));
        let (off, back) = read_strict_fields(&text, "a__b-1").unwrap();
        assert!(off);
        assert_eq!(back, strict);
        assert!(read_strict_fields(&official, "a__b-1").is_none());
    }

    #[test]
    fn strict_aggregate_adds_counts_only_when_asked() {
        let e = |id: &str, resolved, official, flagged| AggregateEntry {
            instance_id: id.into(),
            empty_patch: false,
            outcome: InstanceOutcome::Reported { resolved },
            infra_failure: None,
            strict: Some(StrictEntry {
                resolved_official: official,
                flagged,
                broken: false,
            }),
        };
        let ids: Vec<String> = ["x-1", "x-2"].iter().map(|s| s.to_string()).collect();
        let entries = [e("x-1", true, true, false), e("x-2", false, true, true)];
        let plain = aggregate_report(&ids, &entries);
        assert!(plain.strict.is_none() && !plain.to_json().contains("flagged"));
        let s = aggregate_report_with(&ids, &entries, true);
        assert_eq!(s.resolved, 1);
        assert_eq!(
            s.strict,
            Some(StrictCounts {
                resolved_official: 2,
                flagged: 1,
                broken: 0
            })
        );
        let json = s.to_json();
        assert!(json.contains("\"flagged_ids\": [\n        \"x-2\"\n    ],\n    \"broken_ids\": [],\n    \"schema_version\": 2"), "{json}");
    }

    #[test]
    fn engine_keys_follow_schema_version_like_dict_update() {
        let ids = vec!["x-1".to_string()];
        let entries = [AggregateEntry {
            instance_id: "x-1".into(),
            empty_patch: false,
            outcome: InstanceOutcome::Reported { resolved: true },
            infra_failure: None,
            strict: None,
        }];
        let plain = aggregate_report(&ids, &entries);
        assert!(!plain.to_json().contains("unstopped"));
        let left = EngineLeftovers {
            unstopped_containers: ["sweb.eval.x-1.r1".to_string()].into(),
            unremoved_images: BTreeSet::new(),
        };
        let json = plain.with_engine(left).to_json();
        assert!(
            json.ends_with(
                "    \"schema_version\": 2,\n    \"unstopped_instances\": 1,\n    \"unstopped_containers\": [\n        \"sweb.eval.x-1.r1\"\n    ],\n    \"unremoved_images\": []\n}\n"
            ),
            "{json}"
        );
    }

    #[test]
    fn aggregate_name() {
        assert_eq!(aggregate_report_name("org/m", "r1"), "org__m.r1.json");
    }
}
