//! End-to-end `airgate solve --model local` against the real SmolLM2-135M
//! served by llama.cpp (installed by scripts/setup-local-model.sh).
//!
//! Ignored by default (it needs the install and minutes of CPU); run by
//! `.ci/check.d/local-model.sh` with `AIRGATE_LOCAL_MODEL=1`:
//!     AIRGATE_LOCAL_MODEL=1 cargo test --test all model_local:: -- --ignored
//! The outcome must be honest, not good: a 135M model almost always leaves
//! the gate holding, and that is a pass as long as the loop ran, the
//! trajectory was saved, the exit code matches, and the server was stopped.

use std::path::PathBuf;

use serde_json::Value;

use crate::common;
use crate::common::git;

/// The install made by the setup script (AIRGATE_HOME or the repo's .airgate).
fn installed_home() -> PathBuf {
    std::env::var_os("AIRGATE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::root().join(".airgate"))
}

#[test]
#[ignore = "needs scripts/setup-local-model.sh; run with AIRGATE_LOCAL_MODEL=1 and --ignored"]
fn solve_with_the_real_local_model_is_honest() {
    if std::env::var("AIRGATE_LOCAL_MODEL").as_deref() != Ok("1") {
        eprintln!("skipped: set AIRGATE_LOCAL_MODEL=1 to run against the real local model");
        return;
    }
    let install = installed_home().join("local-model/install.json");
    assert!(
        install.is_file(),
        "{} missing: run scripts/setup-local-model.sh first",
        install.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    // A private AIRGATE_HOME with the same install: this run starts (and
    // must stop) its own server instead of reusing one.
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("local-model")).unwrap();
    std::fs::copy(&install, home.join("local-model/install.json")).unwrap();

    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("calc.py"), "def add(a, b):\n    return a - b\n").unwrap();
    std::fs::write(
        repo.join("test_calc.py"),
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
    )
    .unwrap();
    git(&repo, &["init", "-q", "."]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "init"]);

    let out_dir = std::env::var_os("AIRGATE_LOCAL_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("run"));
    let out = common::airgate()
        .args(["solve", "--repo"])
        .arg(&repo)
        .args([
            "--task",
            "add(2, 3) returns -1 instead of 5. Fix calc.py.",
            "--test-cmd",
            "python3 -m pytest -q -p no:cacheprovider",
            "--model",
            "local",
            "--max-steps",
            "3",
            "--max-attempts",
            "1",
            "--json",
            "--out",
        ])
        .arg(&out_dir)
        .current_dir(common::root())
        .env("AIRGATE_HOME", &home)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {stdout}\n{stderr}"));
    let outcome = json["outcome"].as_str().unwrap();
    let code = out.status.code();
    match outcome {
        "verified" => assert_eq!(code, Some(0)),
        "gate_held" => assert_eq!(code, Some(1)),
        other => panic!("unexpected outcome {other}: {stderr}"),
    }
    let traj: Value = serde_json::from_str(
        &std::fs::read_to_string(json["trajectory"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let attempt = &traj["attempts"][0];
    assert_eq!(attempt["model"], "local:smollm2-135m");
    let calls: Vec<&Value> = attempt["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "model_call")
        .collect();
    assert!(!calls.is_empty(), "the loop ran: {stderr}");
    assert!(
        calls
            .iter()
            .all(|c| c["usage"]["prompt_tokens"].as_u64().unwrap() > 0),
        "usage recorded from the server"
    );
    assert!(attempt["gate"]["exit_code"].is_number() || attempt["gate"]["timed_out"] == true);
    // Dry run: the repo is untouched whatever the outcome.
    assert_eq!(
        std::fs::read_to_string(repo.join("calc.py")).unwrap(),
        "def add(a, b):\n    return a - b\n"
    );
    // The server this run started was stopped and its record removed.
    assert!(
        !home.join("local-model/server.json").exists(),
        "server.json left behind"
    );
    let log = std::fs::read_to_string(home.join("local-model/server.log")).unwrap_or_default();
    assert!(log.contains("listening on http://127.0.0.1:"), "{log}");
    let pid = log
        .split("server (pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse::<u32>().ok())
        .expect("server pid in the log");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "the local server {pid} is still running after the run"
    );
    eprintln!(
        "local model: outcome {outcome}, {} model call(s), trajectory {}",
        calls.len(),
        json["trajectory"]
    );
}
