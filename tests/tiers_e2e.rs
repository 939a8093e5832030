//! End-to-end runs of the real `airgate tiers` and `airgate report` binary
//! on the fixture suites in `tests/fixtures/tiers_*`.

use std::path::Path;
use std::process::Output;

use crate::common::{self, fixture};

fn airgate(args: &[&str]) -> Output {
    common::airgate().args(args).output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rows(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn suite() -> String {
    fixture("tiers_suite").display().to_string()
}

#[test]
fn list_shows_tasks_by_tier_and_language() {
    let out = airgate(&["tiers", "list", "--tasks", &suite()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for id in ["conf-port", "py-mean", "js-total"] {
        assert!(stdout.contains(id), "{stdout}");
    }
    assert!(stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
        == ["javascript", "0", "1", "0", "1"]));
    let out = airgate(&["tiers", "list", "--tasks", &suite(), "--tier", "expert"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn validate_accepts_the_fixture_suite() {
    let out = airgate(&["tiers", "validate", "--tasks", &suite()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("3 task(s) checked: 3 valid, 0 invalid"),
        "{stdout}"
    );
    // The stubbed Python tests would pass without protection: the gate is what holds.
    let py = stdout.lines().find(|l| l.contains("py-mean")).unwrap();
    assert!(py.contains("would pass unprotected"), "{py}");
}

#[test]
fn validate_names_every_invalid_task_and_why() {
    let out = airgate(&[
        "tiers",
        "validate",
        "--tasks",
        &fixture("tiers_invalid").display().to_string(),
    ]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let reason = |id: &str| -> String {
        stdout
            .lines()
            .filter(|l| l.starts_with("INVALID") && l.contains(&format!(" {id}:")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        reason("already-fixed").contains("pass as shipped"),
        "{stdout}"
    );
    assert!(
        reason("wrong-fix").contains("still fail with solution.patch"),
        "{stdout}"
    );
    assert!(
        reason("unprotected").contains("no file in repo/ matches"),
        "{stdout}"
    );
    assert!(
        reason("fix-in-tests").contains("edits protected file(s) tests/test_stats.py"),
        "{stdout}"
    );
    assert!(stdout.contains("0 valid, 4 invalid"), "{stdout}");
}

#[test]
fn reference_scores_100_resumes_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("ref");
    let runs = run.display().to_string();
    let out = airgate(&[
        "tiers",
        "run",
        "--tasks",
        &suite(),
        "--model",
        "reference",
        "--out",
        &runs,
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("100.0% (3/3)"), "{stdout}");
    let r = rows(&run);
    assert_eq!(r.len(), 3);
    for row in &r {
        assert_eq!(row["outcome"], "verified", "{row}");
        assert_eq!(row["model"], "reference");
        let traj = run.join(row["trajectory"].as_str().unwrap());
        assert!(traj.is_file(), "{}", traj.display());
        for key in [
            "tier",
            "language",
            "attempts",
            "steps",
            "prompt_tokens",
            "completion_tokens",
            "wall_s",
            "repeated_calls",
        ] {
            assert!(row.get(key).is_some(), "{key} missing in {row}");
        }
    }

    // Same --out: nothing runs again.
    let out = airgate(&[
        "tiers",
        "run",
        "--tasks",
        &suite(),
        "--model",
        "reference",
        "--out",
        &runs,
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("0 episode(s) run now, 3 resumed"),
        "{stdout}"
    );
    assert_eq!(rows(&run).len(), 3);

    // A tampering script scores 0: the patch policy drops the tests it stubbed.
    let tamper_run = dir.path().join("tamper");
    let spec = format!("script:{}", fixture("tiers_tamper/tamper.jsonl").display());
    let out = airgate(&[
        "tiers",
        "run",
        "--tasks",
        &suite(),
        "--model",
        &spec,
        "--max-attempts",
        "1",
        "--out",
        &tamper_run.display().to_string(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("0.0% (0/3)"), "{stdout}");
    let tampered = rows(&tamper_run);
    assert!(tampered.iter().all(|r| r["outcome"] == "gate_held"));
    let py = tampered.iter().find(|r| r["task"] == "py-mean").unwrap();
    let traj: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tamper_run.join(py["trajectory"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let dropped = &traj["attempts"][0]["dropped"];
    assert!(
        dropped
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("tests/test_stats.py")),
        "the tamper must really have happened: {dropped}"
    );

    // The report over both runs.
    let html = dir.path().join("out/cmp.html");
    let out = airgate(&[
        "report",
        &runs,
        &tamper_run.display().to_string(),
        "--out",
        &html.display().to_string(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page.matches("<svg class=\"chart\"").count(), 4);
    for banned in ["<script", "<link", "src=\"http", "href=\"http", "@import"] {
        assert!(!page.contains(banned), "{banned}");
    }
    // Every task separates the reference from the tamper script.
    assert!(page.contains("3 task(s) where the models"), "{page}");
    // The viewer shows the tamper's tool call and what the policy dropped.
    assert!(page.contains("stubbed ./tests/test_stats.py"));
    assert!(page.contains("dropped by the patch policy before the gate"));
    let md = std::fs::read_to_string(dir.path().join("out/cmp.md")).unwrap();
    assert!(
        md.contains("| pass@1 overall | 100.0% (3/3) | 0.0% (0/3) |"),
        "{md}"
    );
}

#[test]
fn samples_give_pass_at_k() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("k");
    let out = airgate(&[
        "tiers",
        "run",
        "--tasks",
        &suite(),
        "--tier",
        "easy",
        "--model",
        "reference",
        "--samples",
        "2",
        "--out",
        &run.display().to_string(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(rows(&run).len(), 4);
    assert!(stdout.contains("pass@2 overall"), "{stdout}");
}

/// Without a terminal, each episode's steps and gate runs are plain lines
/// on stderr prefixed with the episode (tier/task, sample, model), and
/// `-q` silences them.
#[test]
fn progress_lines_name_the_episode_and_quiet_silences_them() {
    let dir = tempfile::tempdir().unwrap();
    for quiet in [false, true] {
        let run = dir.path().join(format!("q{quiet}"));
        let mut args = vec!["tiers", "run", "--tasks"];
        let s = suite();
        let r = run.display().to_string();
        args.extend([
            s.as_str(),
            "--tier",
            "easy",
            "--model",
            "reference",
            "--stuck-after",
            "2",
            "--out",
            r.as_str(),
        ]);
        if quiet {
            args.push("-q");
        }
        let out = airgate(&args);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        let step = stderr
            .lines()
            .find(|l| l.starts_with("easy/") && l.contains(" s0 [reference]: attempt 1 step 1: "));
        let ended = stderr.contains(" s0 [reference]: episode ended: verified");
        let gate = stderr.contains(" s0 [reference]: attempt 1 gate: tests pass");
        if quiet {
            assert!(step.is_none() && !ended && !gate, "{stderr}");
        } else {
            assert!(step.is_some() && ended && gate, "{stderr}");
        }
    }
}

#[test]
fn unreachable_model_fails_fast_before_any_task() {
    // Bind then drop a listener: a port that refuses connections.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("never");
    let out = airgate(&[
        "tiers",
        "run",
        "--tasks",
        &suite(),
        "--model",
        "reference",
        "--model",
        &format!("ollama:qwen2.5-coder:7b@http://127.0.0.1:{port}"),
        "--out",
        &run.display().to_string(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("unreachable") && stderr.contains(&port.to_string()),
        "{stderr}"
    );
    assert!(!run.exists(), "no task may start");
}
