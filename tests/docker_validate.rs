//! `airgate images validate` and `--require-validated`, with the real
//! Docker engine and the airgate-mini images.
//!
//! Without a Docker socket these tests print SKIP and return.

use std::path::Path;
use std::process::Command;

use crate::common;
use crate::common::docker::*;

fn airgate(dir: &Path) -> Command {
    let mut c = common::airgate();
    c.current_dir(dir);
    c
}

fn validate(dir: &Path, dataset: &Path, ids: &[&str]) -> std::process::Output {
    airgate(dir)
        .args(["images", "validate", "--dataset"])
        .arg(dataset)
        .args(["--out", "val", "--max-workers", "2", "--instance-ids"])
        .args(ids)
        .output()
        .unwrap()
}

fn record(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("val/validation.json")).unwrap())
        .unwrap()
}

/// Honest: mini-1's gold resolves and its empty patch does not. Broken:
/// noop-1's empty patch resolves; a row whose "gold" is another
/// instance's fix does not resolve, and its failing tests are named.
#[test]
fn validate_names_broken_instances_and_their_failing_tests() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    // A row whose gold patch is wrong: mini-2 with mini-1's fix.
    let mut bad = row("airgate__mini-2");
    bad["patch"] = serde_json::Value::String(gold_patch("airgate__mini-1"));
    let honest = row("airgate__mini-1");
    let noop = row("airgate__noop-1");
    let ds = dir.path().join("ds.jsonl");
    std::fs::write(&ds, format!("{honest}\n{bad}\n{noop}\n")).unwrap();

    let out = validate(
        dir.path(),
        &ds,
        &["airgate__mini-1", "airgate__mini-2", "airgate__noop-1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v = record(dir.path());
    let ok = &v["instances"]["airgate__mini-1"];
    assert_eq!(ok["valid"], true, "{v}");
    assert_eq!(ok["gold"]["resolved"], true);
    assert_eq!(ok["empty"]["resolved"], false);
    assert!(ok["gold"]["duration_s"].as_f64().unwrap() > 0.0);
    let digest = image_id("sweb.eval.x86_64.airgate__mini-1:latest");
    assert_eq!(ok["image_digest"], digest.as_str());

    let wrong = &v["instances"]["airgate__mini-2"];
    assert_eq!(wrong["valid"], false, "{v}");
    assert_eq!(wrong["gold"]["resolved"], false);
    let failing: Vec<&str> = wrong["failing_tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        failing.iter().any(|t| t.contains("test_mean")),
        "{failing:?}"
    );

    let broken = &v["instances"]["airgate__noop-1"];
    assert_eq!(broken["valid"], false, "{v}");
    assert_eq!(broken["empty"]["resolved"], true);
    assert!(
        broken["reason"]
            .as_str()
            .unwrap()
            .contains("the empty patch resolves it")
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("airgate__noop-1  NOT VALID"), "{stdout}");
    assert!(stdout.contains("1 of 3 valid"), "{stdout}");
    assert!(containers("validate-").is_empty());
}

/// `swebench eval --require-validated` and `factory run
/// --require-validated`: a valid instance on the same image runs; a failed,
/// a never-validated and a re-tagged (stale) one are refused by name
/// before any container or model call.
#[test]
fn require_validated_refuses_failed_unknown_and_stale_instances() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let out = validate(
        dir.path(),
        &dataset(),
        &["airgate__mini-1", "airgate__noop-1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let val = dir.path().join("val/validation.json");

    let eval = |ids: &[&str], run: &str, file: &Path| {
        airgate(dir.path())
            .args(["swebench", "eval", "--dataset"])
            .arg(dataset())
            .args([
                "--predictions",
                "gold",
                "--run-id",
                run,
                "--require-validated",
            ])
            .arg(file)
            .arg("--instance-ids")
            .args(ids)
            .output()
            .unwrap()
    };
    // Control: the validated instance runs.
    let ok = eval(&["airgate__mini-1"], &unique("rv-ok"), &val);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));

    let run = unique("rv-bad");
    let refused = eval(
        &["airgate__mini-1", "airgate__noop-1", "airgate__mini-2"],
        &run,
        &val,
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let msg = text(&refused);
    assert!(
        msg.contains("failed validation: airgate__noop-1 (the empty patch resolves it)"),
        "{msg}"
    );
    assert!(msg.contains("never validated: airgate__mini-2"), "{msg}");
    assert!(!dir.path().join("logs/run_evaluation").join(&run).exists());

    // Stale: the record names another image id than the one present now.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&val).unwrap()).unwrap();
    v["instances"]["airgate__mini-1"]["image_digest"] = "sha256:0000".into();
    let stale_file = dir.path().join("stale.json");
    std::fs::write(&stale_file, v.to_string()).unwrap();
    let stale = eval(&["airgate__mini-1"], &unique("rv-stale"), &stale_file);
    assert_eq!(stale.status.code(), Some(2), "{}", text(&stale));
    assert!(
        text(&stale)
            .contains("validated on another image: airgate__mini-1 (validated on sha256:0000"),
        "{}",
        text(&stale)
    );

    // The factory refuses the same way, before any model call.
    let corpus = dir.path().join("corpus");
    let f = airgate(&root())
        .args(["factory", "run", "--config"])
        .arg(root().join("configs/factory.toml"))
        .arg("--sources")
        .arg(root().join("configs/public_sources.toml"))
        .arg("--dataset")
        .arg(dataset())
        .args(["--teacher", "script:/nonexistent/teacher.jsonl", "--out"])
        .arg(&corpus)
        .args(["--instance-ids", "airgate__noop-1", "--require-validated"])
        .arg(&val)
        .output()
        .unwrap();
    assert_eq!(f.status.code(), Some(2), "{}", text(&f));
    assert!(
        text(&f).contains("failed validation: airgate__noop-1"),
        "{}",
        text(&f)
    );
}
