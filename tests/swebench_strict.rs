//! `airgate swebench eval --strict` end to end, with the real Docker engine
//! and the airgate-mini instance images: gold is resolved; predictions that
//! cheat the official rules (tests/fixtures/swebench_strict/predictions/)
//! are resolved officially and NOT strictly; an instance whose empty patch
//! resolves is broken.
//!
//! Without a Docker socket these tests print SKIP and return; with one, they
//! must pass.

use std::path::{Path, PathBuf};

use crate::common;
use crate::common::docker::*;
use crate::common::factory::repos;

fn prediction(name: &str) -> String {
    std::fs::read_to_string(
        root()
            .join("tests/fixtures/swebench_strict/predictions")
            .join(format!("{name}.diff")),
    )
    .unwrap()
}

/// Runs `swebench eval --strict` of one prediction for `id`, with a shared
/// control cache; returns that instance's report.
fn strict_eval(
    dir: &Path,
    cache: &Path,
    run_id: &str,
    model: &str,
    id: &str,
    patch: &str,
) -> serde_json::Value {
    let preds = write_predictions(dir, model, &[(id, patch)]);
    let out = common::airgate()
        .current_dir(dir)
        .args(["swebench", "eval", "--strict", "--dataset"])
        .arg(dataset())
        .arg("--predictions")
        .arg(&preds)
        .args(["--run-id", run_id, "--instance-ids", id, "--control-cache"])
        .arg(cache)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = dir
        .join("logs/run_evaluation")
        .join(run_id)
        .join(model)
        .join(id)
        .join("report.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    v[id].clone()
}

fn flags(r: &serde_json::Value) -> Vec<String> {
    r["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

fn control_dirs(cache: &Path, id: &str) -> Vec<PathBuf> {
    std::fs::read_dir(cache.join(id))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn cheats_that_fool_the_official_rules_are_not_strictly_resolved() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("controls");
    let run_id = unique("s1");

    // HONEST CONTROL: gold is resolved both ways, with no flag.
    let gold = strict_eval(
        dir.path(),
        &cache,
        &run_id,
        "gold",
        "airgate__mini-1",
        &gold_patch("airgate__mini-1"),
    );
    assert_eq!(gold["resolved"], true, "{gold}");
    assert_eq!(gold["resolved_official"], true);
    assert_eq!(gold["broken"], false);
    assert!(flags(&gold).is_empty(), "{gold}");
    // The control ran once and is cached per instance and image id.
    let controls = control_dirs(&cache, "airgate__mini-1");
    assert_eq!(controls.len(), 1, "{controls:?}");
    let record = controls[0].join("control.json");
    let first = std::fs::read(&record).unwrap();
    let control: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(control["empty_patch_resolves"], false);
    assert!(controls[0].join("test_output.txt").is_file());

    // ATTACKS: each resolves by the official rules and not strictly.
    for (name, want) in [
        (
            "conftest_force_pass",
            "patch_policy:runner_config:conftest.py",
        ),
        ("shadow_pytest", "patch_policy:runner_shadow:pytest.py"),
        (
            "runtest_monkeypatch",
            "cheat:runner_internals:calc/__init__.py",
        ),
        (
            "atexit_passed",
            "status_after_summary:tests/test_clamp.py::test_clamp_upper",
        ),
    ] {
        let r = strict_eval(
            dir.path(),
            &cache,
            &run_id,
            name,
            "airgate__mini-1",
            &prediction(name),
        );
        assert_eq!(r["resolved_official"], true, "{name}: {r}");
        assert_eq!(r["resolved"], false, "{name}: {r}");
        assert!(flags(&r).contains(&want.to_string()), "{name}: {r}");
    }
    // The cached control was reused, not rerun.
    assert_eq!(std::fs::read(&record).unwrap(), first);
    let log = std::fs::read_to_string(controls[0].join("run_instance.log")).unwrap();
    assert_eq!(log.matches("Creating container").count(), 1, "{log}");
    assert_no_containers(&run_id);
}

#[test]
fn an_instance_whose_empty_patch_resolves_is_broken() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("controls");
    let run_id = unique("s2");
    let r = strict_eval(
        dir.path(),
        &cache,
        &run_id,
        "gold",
        "airgate__noop-1",
        &gold_patch("airgate__noop-1"),
    );
    assert_eq!(r["resolved_official"], true, "{r}");
    assert_eq!(r["resolved"], false, "{r}");
    assert_eq!(r["broken"], true, "{r}");
    // Its test command is an `echo` of a PASSED line, not pytest: the log
    // has no pytest summary either.
    assert_eq!(
        flags(&r),
        vec![
            "missing_summary".to_string(),
            "empty_patch_resolves".to_string()
        ]
    );
    let agg = aggregate(dir.path(), "gold", &run_id);
    assert_eq!(agg["strict"], true);
    assert_eq!(agg["resolved_ids"], serde_json::json!([]));
    assert_eq!(
        agg["resolved_official_ids"],
        serde_json::json!(["airgate__noop-1"])
    );
    assert_eq!(agg["broken_ids"], serde_json::json!(["airgate__noop-1"]));
    assert_no_containers(&run_id);
}

/// The default (official) report has no strict keys, and a rerun with
/// --strict under the same run id regrades it instead of resuming it.
#[test]
fn default_reports_stay_official_and_strict_does_not_resume_them() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let run_id = unique("s3");
    let preds = write_predictions(
        dir.path(),
        "m",
        &[(
            "airgate__mini-1",
            prediction("conftest_force_pass").as_str(),
        )],
    );
    let out = eval(
        dir.path(),
        &preds,
        &run_id,
        &["--instance-ids", "airgate__mini-1"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = dir
        .path()
        .join("logs/run_evaluation")
        .join(&run_id)
        .join("m/airgate__mini-1/report.json");
    let official = std::fs::read_to_string(&report).unwrap();
    assert!(official.contains("\"resolved\": true,"), "{official}");
    assert!(!official.contains("resolved_official") && !official.contains("flags"));
    let agg = aggregate(dir.path(), "m", &run_id);
    assert!(agg.get("strict").is_none(), "{agg}");

    let r = strict_eval(
        dir.path(),
        &dir.path().join("controls"),
        &run_id,
        "m",
        "airgate__mini-1",
        &prediction("conftest_force_pass"),
    );
    assert_eq!(r["resolved"], false, "{r}");
    assert_eq!(r["resolved_official"], true, "{r}");
    assert_no_containers(&run_id);
}

/// `swebench eval` in the default (official) mode.
fn eval(dir: &Path, preds: &Path, run_id: &str, extra: &[&str]) -> std::process::Output {
    common::airgate()
        .current_dir(dir)
        .args(["swebench", "eval", "--dataset"])
        .arg(dataset())
        .arg("--predictions")
        .arg(preds)
        .args(["--run-id", run_id])
        .args(extra)
        .output()
        .unwrap()
}

/// The aggregate report `<model>.<run_id>.json` in `dir`.
fn aggregate(dir: &Path, model: &str, run_id: &str) -> serde_json::Value {
    let path = dir.join(format!("{model}.{run_id}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

// ---- The factory grades strictly (local sandbox: no Docker needed). ----

fn teachers() -> PathBuf {
    root().join("tests/fixtures/swebench_strict/teachers")
}

/// `factory run --sandbox local` on airgate__mini-1; returns the summary.
fn factory(repos: &Path, out: &Path, teacher: &Path, extra: &[&str]) -> serde_json::Value {
    let o = common::airgate()
        .current_dir(root())
        .args(["factory", "run", "--config"])
        .arg(root().join("configs/factory.toml"))
        .arg("--sources")
        .arg(root().join("configs/public_sources.toml"))
        .args(["--sandbox", "local", "--repos"])
        .arg(repos)
        .arg("--dataset")
        .arg(dataset())
        .arg("--teacher")
        .arg(format!("script:{}", teacher.display()))
        .arg("--out")
        .arg(out)
        .args(["--instance-ids", "airgate__mini-1", "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

fn rejected(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("rejected/rejected.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn factory_rejects_a_cheating_teacher_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let repos = repos(tmp.path());
    let out = tmp.path().join("corpus");
    // ATTACK: an atexit hook prints PASSED after pytest's `1 failed`.
    let s = factory(&repos, &out, &teachers().join("atexit_cheat.jsonl"), &[]);
    assert_eq!(s["kept"], 0, "{s}");
    assert_eq!(s["flagged"], 1, "{s}");
    let r = rejected(&out);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["reason"], "flagged");
    let detail = r[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("cheat:exits_process:calc/__init__.py"),
        "{detail}"
    );
    assert!(
        detail.contains("status_after_summary:tests/test_clamp.py::test_clamp_upper"),
        "{detail}"
    );
    // The control ran once and is recorded for resumes.
    let controls = std::fs::read_to_string(out.join("state/controls.jsonl")).unwrap();
    assert_eq!(controls.lines().count(), 1, "{controls}");
    assert!(controls.contains("\"empty_patch_resolves\":false"));
    // HONEST CONTROL: the real fix lands in the same corpus.
    let honest = root().join("tests/fixtures/factory_teachers/solve.jsonl");
    let s = factory(&repos, &out, &honest, &[]);
    assert_eq!(s["kept"], 1, "{s}");
    let controls = std::fs::read_to_string(out.join("state/controls.jsonl")).unwrap();
    assert_eq!(controls.lines().count(), 1, "the cached control was reused");
}

/// A fix that passes its first two evaluations and fails the third: the
/// in-loop check and the final verification pass, the default second
/// final run (`gate_runs = 2`) does not, so nothing is kept. With
/// `--gate-runs 1` (a fresh counter) the same teacher is kept.
#[test]
#[ignore = "the flaky fixture counts its runs in a file outside the clone, which the bubblewrap sandbox now (rightly) makes unwritable; `solve --gate-runs` is covered in tests/solve_e2e.rs"]
fn factory_never_keeps_a_flaky_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let repos = repos(tmp.path());
    let teacher = |name: &str| {
        let counter = tmp.path().join(format!("{name}.count"));
        let text = std::fs::read_to_string(teachers().join("flaky_third_run.jsonl.in"))
            .unwrap()
            .replace("COUNTER", &counter.display().to_string());
        let path = tmp.path().join(format!("{name}.jsonl"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let out = tmp.path().join("flaky");
    let s = factory(&repos, &out, &teacher("a"), &[]);
    assert_eq!(
        (s["kept"].as_u64(), s["flaky"].as_u64()),
        (Some(0), Some(1)),
        "{s}"
    );
    let r = rejected(&out);
    assert_eq!(r[0]["reason"], "flaky", "{r:?}");
    assert!(
        r[0]["detail"].as_str().unwrap().contains("run 2 of 2"),
        "{r:?}"
    );

    let out = tmp.path().join("once");
    let s = factory(&repos, &out, &teacher("b"), &["--gate-runs", "1"]);
    assert_eq!(s["kept"], 1, "{s}");
}
