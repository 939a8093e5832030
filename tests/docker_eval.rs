//! `airgate swebench eval` end to end, with the real Docker engine and the
//! airgate-mini instance images (tests/fixtures/docker_mini/build.sh, run by
//! .ci/setup.d/10-docker-images.sh; built here if missing).
//!
//! Without a Docker socket these tests print SKIP and return; with one, they
//! must pass.

use std::path::Path;
use std::process::Command;

use crate::common;
use crate::common::docker::*;

/// A patch that makes `clamp` spin forever when x > hi.
const HANG_PATCH: &str = "diff --git a/calc/ops.py b/calc/ops.py\n--- a/calc/ops.py\n+++ b/calc/ops.py\n@@ -6,7 +6,8 @@ def clamp(x, lo, hi):\n     if x < lo:\n         return lo\n     if x > hi:\n-        return x\n+        while True:\n+            pass\n     return x\n \n \n";

/// A wrong fix for mean(): returns 0 instead of raising.
const WRONG_MEAN_PATCH: &str = "diff --git a/calc/ops.py b/calc/ops.py\n--- a/calc/ops.py\n+++ b/calc/ops.py\n@@ -18,6 +18,8 @@ def clamp(x, lo, hi):\n def mean(values):\n     \"\"\"Arithmetic mean; raises ValueError on an empty sequence.\"\"\"\n     values = list(values)\n+    if not values:\n+        return 0\n     return sum(values) / len(values)\n \n \n";

/// A patch against a file that does not exist.
const BROKEN_PATCH: &str = "diff --git a/calc/missing.py b/calc/missing.py\n--- a/calc/missing.py\n+++ b/calc/missing.py\n@@ -1,3 +1,3 @@\n def f():\n-    return 1\n+    return 2\n \n";

/// Prints PASSED lines for mean's tests at import time, then dies non-zero.
const SPOOF_PATCH: &str = "diff --git a/calc/__init__.py b/calc/__init__.py\n--- a/calc/__init__.py\n+++ b/calc/__init__.py\n@@ -1 +1,7 @@\n \"\"\"Small numeric and text helpers.\"\"\"\n+import os\n+\n+print(\"PASSED tests/test_mean.py::test_mean_basic\")\n+print(\"PASSED tests/test_mean.py::test_mean_empty\", flush=True)\n+os._exit(1)\n+\n";

#[test]
fn gold_wrong_and_broken_patches() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let run_id = unique("e1");
    let preds = write_predictions(
        dir.path(),
        "model/x",
        &[
            ("airgate__mini-1", gold_patch("airgate__mini-1").as_str()),
            ("airgate__mini-2", WRONG_MEAN_PATCH),
            ("airgate__mini-3", BROKEN_PATCH),
        ],
    );
    let out = eval(dir.path(), &preds, &run_id, &["--max-workers", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let logs = dir
        .path()
        .join("logs/run_evaluation")
        .join(&run_id)
        .join("model__x");
    for f in [
        "patch.diff",
        "eval.sh",
        "test_output.txt",
        "report.json",
        "run_instance.log",
    ] {
        assert!(
            logs.join("airgate__mini-1").join(f).is_file(),
            "missing {f}"
        );
    }
    assert_eq!(resolved(&logs, "airgate__mini-1"), Some(true));
    assert_eq!(resolved(&logs, "airgate__mini-2"), Some(false));
    // Item 6: the image's content id, as the engine reports it, in each
    // instance's log and in run.json (the patch that failed to apply too).
    let id = image_id("sweb.eval.x86_64.airgate__mini-1:latest");
    assert!(id.starts_with("sha256:"), "{id}");
    let log1 = std::fs::read_to_string(logs.join("airgate__mini-1/run_instance.log")).unwrap();
    assert!(log1.contains(&format!("Image digest: {id} (")), "{log1}");
    let run: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir.path()
                .join("logs/run_evaluation")
                .join(&run_id)
                .join("run.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for inst in ["airgate__mini-1", "airgate__mini-2", "airgate__mini-3"] {
        assert_eq!(run["image_digests"][inst], id.as_str(), "{run}");
    }
    assert!(run["image_digests"].get("airgate__noop-1").is_none());
    // Non-applying patch: an error, no report, the official message.
    let broken = logs.join("airgate__mini-3");
    assert!(!broken.join("report.json").exists());
    let log = std::fs::read_to_string(broken.join("run_instance.log")).unwrap();
    assert!(log.contains(">>>>> Patch Apply Failed"), "{log}");
    assert!(
        log.contains("patch --batch --forward --fuzz=5 -p1 -i"),
        "{log}"
    );

    let agg = aggregate(dir.path(), "model__x", &run_id);
    assert_eq!(agg["resolved_ids"], serde_json::json!(["airgate__mini-1"]));
    assert_eq!(
        agg["unresolved_ids"],
        serde_json::json!(["airgate__mini-2"])
    );
    assert_eq!(agg["error_ids"], serde_json::json!(["airgate__mini-3"]));
    assert_eq!(agg["infra_failure_ids"], serde_json::json!([]));
    assert_eq!(
        agg["incomplete_ids"],
        serde_json::json!(["airgate__noop-1"])
    );
    assert_no_containers(&run_id);
}

/// A1/A2: gold narrowed by `--instance-ids` counts only the selected rows
/// (as the official harness loads them), and the report carries the
/// official engine keys. Attack: a kept container is named as unstopped.
#[test]
fn gold_with_instance_ids_counts_the_selection_and_names_leftovers() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let run_id = unique("a1");
    let out = eval_gold(dir.path(), &run_id, &["--instance-ids", "airgate__mini-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let agg = aggregate(dir.path(), "gold", &run_id);
    assert_eq!(agg["total_instances"], 1);
    assert_eq!(agg["submitted_instances"], 1);
    assert_eq!(agg["submitted_ids"], serde_json::json!(["airgate__mini-1"]));
    assert_eq!(agg["resolved_ids"], serde_json::json!(["airgate__mini-1"]));
    assert_eq!(agg["incomplete_ids"], serde_json::json!([]));
    assert_eq!(agg["unstopped_instances"], 0);
    assert_eq!(agg["unstopped_containers"], serde_json::json!([]));
    assert_eq!(agg["unremoved_images"], serde_json::json!([]));
    let raw = std::fs::read_to_string(
        dir.path()
            .join("reports")
            .join(format!("gold.{run_id}.json")),
    )
    .unwrap();
    assert!(
        raw.ends_with("    \"schema_version\": 2,\n    \"unstopped_instances\": 0,\n    \"unstopped_containers\": [],\n    \"unremoved_images\": []\n}\n"),
        "{raw}"
    );
    assert!(
        text(&out).contains("Unstopped containers: 0"),
        "{}",
        text(&out)
    );
    assert_no_containers(&run_id);

    let kept = unique("a2");
    let out = eval_gold(
        dir.path(),
        &kept,
        &["--instance-ids", "airgate__mini-1", "--keep"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let agg = aggregate(dir.path(), "gold", &kept);
    let name = format!("sweb.eval.airgate__mini-1.{kept}");
    let _ = Command::new(engine_cli())
        .args(["rm", "-f", &name])
        .output();
    assert_eq!(agg["unstopped_instances"], 1, "{agg}");
    assert_eq!(agg["unstopped_containers"], serde_json::json!([name]));
}

/// Item 5: a swebench 5.x task repository is a dataset source: its gold
/// patches and its own `eval.sh` resolve on the instance images; the
/// deprecated task is not run and the broken one is named.
#[test]
fn a_task_repository_evaluates_like_a_dataset_file() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let run_id = unique("tr");
    let out = common::airgate()
        .current_dir(dir.path())
        .args(["swebench", "eval", "--dataset"])
        .arg(root().join("tests/fixtures/swebench_task_repo"))
        .args(["--predictions", "gold", "--run-id", &run_id])
        .args(["--report-dir", "reports", "--max-workers", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("airgate__noeval-1") && text(&out).contains("eval.sh"),
        "{}",
        text(&out)
    );
    let agg = aggregate(dir.path(), "gold", &run_id);
    assert_eq!(
        agg["resolved_ids"],
        serde_json::json!(["airgate__mini-1", "airgate__mini-2"])
    );
    assert_eq!(agg["total_instances"], 2);
    assert_no_containers(&run_id);
}

#[test]
fn hanging_tests_time_out_and_spoofed_passes_do_not_resolve() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let run_id = unique("e2");
    let preds = write_predictions(
        dir.path(),
        "m",
        &[
            ("airgate__mini-1", HANG_PATCH),
            ("airgate__mini-2", SPOOF_PATCH),
        ],
    );
    let out = eval(
        dir.path(),
        &preds,
        &run_id,
        &["--timeout", "8", "--max-workers", "2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let logs = dir
        .path()
        .join("logs/run_evaluation")
        .join(&run_id)
        .join("m");

    let hang = logs.join("airgate__mini-1");
    assert!(!hang.join("report.json").exists());
    let output = std::fs::read_to_string(hang.join("test_output.txt")).unwrap();
    assert!(
        output.ends_with("\n\nTimeout error: 8 seconds exceeded."),
        "{output}"
    );
    let log = std::fs::read_to_string(hang.join("run_instance.log")).unwrap();
    assert!(log.contains("Test timed out after 8 seconds."), "{log}");

    let spoof = logs.join("airgate__mini-2");
    let output = std::fs::read_to_string(spoof.join("test_output.txt")).unwrap();
    assert!(output.contains("PASSED tests/test_mean.py::test_mean_empty"));
    assert!(output.contains(">>>>> Test Exit Code: 1"), "{output}");
    assert_eq!(resolved(&logs, "airgate__mini-2"), Some(false));

    let agg = aggregate(dir.path(), "m", &run_id);
    assert_eq!(agg["error_ids"], serde_json::json!(["airgate__mini-1"]));
    assert_eq!(agg["resolved_ids"], serde_json::json!([]));
    assert_eq!(agg["failure_reasons"]["airgate__mini-1"], "tests_timed_out");
    assert_no_containers(&run_id);
}

#[test]
fn missing_image_is_a_named_infrastructure_failure() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let run_id = unique("e3");
    // The mini-1 row under an id that has no image.
    let ds = std::fs::read_to_string(dataset()).unwrap();
    let row = ds
        .lines()
        .next()
        .unwrap()
        .replace("airgate__mini-1", "airgate__absent-1");
    let ds_path = dir.path().join("absent.jsonl");
    std::fs::write(&ds_path, format!("{row}\n")).unwrap();
    let out = common::airgate()
        .current_dir(dir.path())
        .args(["swebench", "eval", "--dataset"])
        .arg(&ds_path)
        .args(["--predictions", "gold", "--run-id", &run_id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("infrastructure failure (image_missing)"));
    let agg = aggregate(dir.path(), "gold", &run_id);
    assert_eq!(agg["error_ids"], serde_json::json!(["airgate__absent-1"]));
    assert_eq!(
        agg["infra_failure_ids"],
        serde_json::json!(["airgate__absent-1"])
    );
    assert_eq!(agg["failure_reasons"]["airgate__absent-1"], "image_missing");
    let log = std::fs::read_to_string(
        dir.path()
            .join("logs/run_evaluation")
            .join(&run_id)
            .join("gold/airgate__absent-1/run_instance.log"),
    )
    .unwrap();
    assert!(log.contains("Image sweb.eval.x86_64.airgate__absent-1:latest not found"));
}

#[test]
fn sigint_leaves_no_container_and_a_rerun_resumes() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let run_id = unique("e4");
    let preds = write_predictions(
        dir.path(),
        "m",
        &[
            ("airgate__mini-1", HANG_PATCH),
            ("airgate__mini-3", gold_patch("airgate__mini-3").as_str()),
        ],
    );
    let child = common::airgate()
        .current_dir(dir.path())
        .args(["swebench", "eval", "--dataset"])
        .arg(dataset())
        .arg("--predictions")
        .arg(&preds)
        .args([
            "--run-id",
            &run_id,
            "--max-workers",
            "2",
            "--timeout",
            "600",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let logs = dir
        .path()
        .join("logs/run_evaluation")
        .join(&run_id)
        .join("m");
    let done = logs.join("airgate__mini-3/report.json");
    // Wait until mini-3 is graded and mini-1 is hanging inside its container.
    wait_until("mini-3 graded and mini-1 running", || {
        done.is_file() && containers(&run_id).len() == 1
    });
    let report_before = std::fs::read(&done).unwrap();
    // SAFETY: plain kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(text(&out).contains("rerun with the same --run-id"));
    assert_no_containers(&run_id);
    assert!(!logs.join("airgate__mini-1/report.json").exists());

    // Rerun with a good patch for mini-1: mini-3 is skipped, mini-1 runs.
    let preds = write_predictions(
        dir.path(),
        "m",
        &[
            ("airgate__mini-1", gold_patch("airgate__mini-1").as_str()),
            ("airgate__mini-3", gold_patch("airgate__mini-3").as_str()),
        ],
    );
    let out = eval(dir.path(), &preds, &run_id, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 instances already run, skipping..."));
    assert_eq!(std::fs::read(&done).unwrap(), report_before);
    assert_eq!(resolved(&logs, "airgate__mini-1"), Some(true));
    let agg = aggregate(dir.path(), "m", &run_id);
    assert_eq!(
        agg["resolved_ids"],
        serde_json::json!(["airgate__mini-1", "airgate__mini-3"])
    );
    assert_no_containers(&run_id);
}

#[test]
fn an_unreachable_daemon_is_reported_not_hidden() {
    // No Docker needed: point the client at a socket that does not exist.
    let dir = tempfile::tempdir().unwrap();
    let out = common::airgate()
        .current_dir(dir.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["swebench", "eval", "--dataset"])
        .arg(dataset())
        .args(["--predictions", "gold", "--run-id", "nodaemon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("docker daemon unavailable"),
        "{}",
        text(&out)
    );
}

fn eval(dir: &Path, preds: &Path, run_id: &str, extra: &[&str]) -> std::process::Output {
    common::airgate()
        .current_dir(dir)
        .args(["swebench", "eval", "--dataset"])
        .arg(dataset())
        .arg("--predictions")
        .arg(preds)
        .args(["--run-id", run_id, "--report-dir", "reports"])
        .args(extra)
        .output()
        .unwrap()
}

fn eval_gold(dir: &Path, run_id: &str, extra: &[&str]) -> std::process::Output {
    common::airgate()
        .current_dir(dir)
        .args(["swebench", "eval", "--dataset"])
        .arg(dataset())
        .args(["--predictions", "gold"])
        .args(["--run-id", run_id, "--report-dir", "reports"])
        .args(extra)
        .output()
        .unwrap()
}

fn aggregate(dir: &Path, model: &str, run_id: &str) -> serde_json::Value {
    let candidates = [
        dir.join("reports").join(format!("{model}.{run_id}.json")),
        dir.join(format!("{model}.{run_id}.json")),
    ];
    let path = candidates
        .iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no aggregate report among {candidates:?}"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn resolved(logs: &Path, id: &str) -> Option<bool> {
    let text = std::fs::read_to_string(logs.join(id).join("report.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[id]["resolved"].as_bool()
}
