//! End-to-end runs of the real `airgate solve` binary against real temporary
//! git repos (Python, Rust, plain shell), with `script:` policies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{self, fixture, trajectory};

fn script(name: &str) -> String {
    format!("script:{}", fixture("solve/scripts").join(name).display())
}

/// Copies a fixture project into a fresh git repo in a temp dir.
fn repo(name: &str) -> tempfile::TempDir {
    common::git_repo(&fixture("solve").join(name), &[])
}

/// Every file's bytes and mtime, `.git` included: "byte-identical".
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let m = e.metadata().unwrap();
            (
                e.path().strip_prefix(dir).unwrap().to_path_buf(),
                (std::fs::read(e.path()).unwrap(), m.modified().unwrap()),
            )
        })
        .collect()
}

fn solve(repo: &Path, out: &Path, extra: &[&str]) -> Output {
    common::airgate()
        .arg("solve")
        .arg("--repo")
        .arg(repo)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

/// `airgate solve` on `repo` with a task, a test command and a fixture script.
fn solve_command(repo: &Path, out: &Path, test_cmd: &str, script_name: &str) -> Command {
    let mut cmd = common::airgate();
    cmd.args(["solve", "--task", "t", "--test-cmd", test_cmd, "--model"])
        .arg(script(script_name))
        .arg("--repo")
        .arg(repo)
        .arg("--out")
        .arg(out);
    cmd
}

/// Asserts the exit code, showing stderr when it differs.
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json_of(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Flaky tests: the baseline fails, then the tests pass with nothing
/// changed. There is no fix to claim: the outcome is `already_passing` with a
/// note saying why, never `verified` with an empty patch.
#[test]
fn a_pass_without_any_change_is_not_a_verified_fix() {
    let r = repo("grep_config");
    let before = snapshot(r.path());
    let out_dir = tempfile::tempdir().unwrap();
    // Fails the first time it runs, passes afterwards (state kept outside the repo).
    let mark = out_dir.path().join("ran-once");
    let flaky = format!(
        "test -f {m} || {{ touch {m}; exit 1; }}",
        m = mark.display()
    );
    let out = solve(
        r.path(),
        out_dir.path(),
        &[
            "--task",
            "t",
            "--test-cmd",
            &flaky,
            "--model",
            &script("noop.jsonl"),
            "--max-attempts",
            "2",
            "--json",
            // The flaky command keeps state outside the repo, which the
            // sandbox (rightly) forbids.
            "--sandbox",
            "none",
        ],
    );
    assert_exit(&out, 0);
    let j = json_of(&out);
    assert_eq!(j["outcome"], "already_passing");
    assert_eq!(j["patch"], "");
    let traj = trajectory(&j);
    assert_eq!(traj["baseline"]["passed"], false);
    assert!(traj["verified_by"].is_null());
    let attempts = traj["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "no second attempt after the pass");
    assert_eq!(attempts[0]["gate"]["passed"], true);
    assert!(
        attempts[0]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "note"
                && e["text"].as_str().unwrap().contains("did not reproduce")),
        "{}",
        attempts[0]
    );
    assert_eq!(snapshot(r.path()), before);
}

#[test]
fn already_passing_runs_nothing_else() {
    let r = repo("py_calc");
    std::fs::write(
        r.path().join("tests/test_calc.py"),
        "def test_ok():\n    assert True\n",
    )
    .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = solve(
        r.path(),
        out_dir.path(),
        &[
            "--task",
            "x",
            "--model",
            &script("py_calc_fix.jsonl"),
            "--json",
        ],
    );
    assert_exit(&out, 0);
    let j = json_of(&out);
    assert_eq!(j["outcome"], "already_passing");
    assert_eq!(j["attempts"], 0);
    assert_eq!(j["steps"], 0);
    assert_eq!(j["patch"], "");
    assert_eq!(j["test_cmd"], "python -m pytest -q");
    assert!(Path::new(j["trajectory"].as_str().unwrap()).is_file());
}

#[test]
fn python_fix_is_verified_and_repo_untouched() {
    let r = repo("py_calc");
    let before = snapshot(r.path());
    let out_dir = tempfile::tempdir().unwrap();
    let out = solve(
        r.path(),
        out_dir.path(),
        &[
            "--task",
            "is_positive(0) returns True",
            "--model",
            &script("py_calc_fix.jsonl"),
            "--json",
        ],
    );
    assert_exit(&out, 0);
    let j = json_of(&out);
    assert_eq!(j["outcome"], "verified");
    assert_eq!(j["attempts"], 1);
    assert_eq!(j["steps"], 6);
    let patch = j["patch"].as_str().unwrap();
    assert!(
        patch.contains("-    return x >= 0") && patch.contains("+    return x > 0"),
        "{patch}"
    );
    assert_eq!(snapshot(r.path()), before, "a dry run changed the repo");

    // The trajectory records every tool call and both gate runs.
    let traj = trajectory(&j);
    assert_eq!(traj["outcome"], "verified");
    assert_eq!(traj["baseline"]["passed"], false);
    assert_eq!(traj["attempts"][0]["gate"]["passed"], true);
    let tools: Vec<&str> = traj["attempts"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "tool_call")
        .map(|e| e["call"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        ["ls", "search", "read_file", "str_replace", "run", "submit"]
    );
}

#[test]
fn apply_writes_the_verified_patch() {
    let r = repo("py_calc");
    let out_dir = tempfile::tempdir().unwrap();
    let out = solve(
        r.path(),
        out_dir.path(),
        &[
            "--task",
            "t",
            "--model",
            &script("py_calc_fix.jsonl"),
            "--apply",
        ],
    );
    assert_exit(&out, 0);
    let text = std::fs::read_to_string(r.path().join("calc.py")).unwrap();
    assert!(text.contains("return x > 0"));
    // Only the fixed file changed: no test caches or bytecode were copied back.
    let status = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(r.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), " M calc.py\n");
}

#[test]
fn gate_holds_when_nothing_is_fixed() {
    let r = repo("py_calc");
    let before = snapshot(r.path());
    let out_dir = tempfile::tempdir().unwrap();
    let out = solve(
        r.path(),
        out_dir.path(),
        &[
            "--task",
            "t",
            "--model",
            &script("noop.jsonl"),
            "--max-attempts",
            "2",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let j = json_of(&out);
    assert_eq!(j["outcome"], "gate_held");
    assert_eq!(j["attempts"], 2);
    assert_eq!(j["patch"], "");
    assert_eq!(snapshot(r.path()), before);
    // The second attempt was told how the first failed.
    let traj = trajectory(&j);
    let first_msg = traj["attempts"][1]["messages"][1]["content"]
        .as_str()
        .unwrap();
    assert!(first_msg.contains("previous attempt"), "{first_msg}");
}

#[test]
fn editing_a_protected_test_cannot_pass_the_gate() {
    let r = repo("py_calc");
    let out_dir = tempfile::tempdir().unwrap();
    let out = solve(
        r.path(),
        out_dir.path(),
        &[
            "--task",
            "t",
            "--model",
            &script("py_calc_tamper.jsonl"),
            "--max-attempts",
            "1",
            "--json",
        ],
    );
    assert_exit(&out, 1);
    let j = json_of(&out);
    assert_eq!(j["outcome"], "gate_held");
    let traj = trajectory(&j);
    let events = traj["attempts"][0]["events"].as_array().unwrap().clone();
    // str_replace refuses the edit when it is made, naming the path.
    let edit = events
        .iter()
        .find(|e| e["type"] == "tool_call" && e["call"]["name"] == "str_replace")
        .unwrap();
    assert_eq!(edit["is_error"], true);
    let why = edit["result"].as_str().unwrap();
    assert!(
        why.contains("tests/test_calc.py") && why.contains("refused"),
        "{why}"
    );
    // The same edit through `run` works in the agent's sandbox...
    let run_result = events
        .iter()
        .find(|e| e["type"] == "tool_call" && e["call"]["name"] == "run")
        .unwrap()["result"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(run_result.contains("3 passed"), "{run_result}");
    // ...but the patch policy dropped it before the gate: it was never
    // judged, and it is not in the attempt's patch.
    let dropped = traj["attempts"][0]["dropped"][0].as_str().unwrap();
    assert!(dropped.contains("tests/test_calc.py"), "{dropped}");
    let patch = traj["attempts"][0]["patch"].as_str().unwrap();
    assert!(!patch.contains("tests/test_calc.py"), "{patch}");
}

#[test]
fn multi_file_transfer_bug_is_fixed_in_accounts() {
    let r = repo("accounts");
    let out_dir = tempfile::tempdir().unwrap();
    let out = solve(
        r.path(),
        out_dir.path(),
        &[
            "--task",
            "Transfers that exceed an account's balance are applied instead of rejected.",
            "--model",
            &script("accounts_fix.jsonl"),
            "--json",
        ],
    );
    assert_exit(&out, 0);
    let j = json_of(&out);
    assert_eq!(j["outcome"], "verified");
    let patch = j["patch"].as_str().unwrap();
    assert!(
        patch.contains("a/accounts.py") && patch.contains("raise InsufficientFunds"),
        "{patch}"
    );
}

#[test]
fn grep_verifier_works_for_a_plain_config_repo() {
    let r = repo("grep_config");
    let out_dir = tempfile::tempdir().unwrap();
    let out = solve(
        r.path(),
        out_dir.path(),
        &[
            "--task",
            "the service runs in the wrong mode",
            "--test-cmd",
            "grep -q GOOD config.toml",
            "--model",
            &script("grep_config_fix.jsonl"),
            "--json",
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(json_of(&out)["outcome"], "verified");
}

#[test]
fn rust_project_is_detected_and_verified() {
    let r = repo("rust_bug");
    let out_dir = tempfile::tempdir().unwrap();
    let out = solve(
        r.path(),
        out_dir.path(),
        &[
            "--task",
            "triangle(4) is 6, not 10",
            "--model",
            &script("rust_bug_fix.jsonl"),
            "--json",
        ],
    );
    assert_exit(&out, 0);
    let j = json_of(&out);
    assert_eq!(j["test_cmd"], "cargo test");
    assert_eq!(j["outcome"], "verified");
    let patch = j["patch"].as_str().unwrap();
    assert!(
        !patch.contains("target/") && !patch.contains("Cargo.lock"),
        "{patch}"
    );
}

#[test]
fn bad_input_gets_clear_errors_and_changes_nothing() {
    let out_dir = tempfile::tempdir().unwrap();
    // A repo that does not exist.
    let out = solve(
        Path::new("/nonexistent/airgate"),
        out_dir.path(),
        &["--task", "t", "--model", &script("noop.jsonl")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    // A file, not a directory.
    let f = tempfile::NamedTempFile::new().unwrap();
    let out = solve(
        f.path(),
        out_dir.path(),
        &["--task", "t", "--model", &script("noop.jsonl")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
    // No detectable test command.
    let r = repo("grep_config");
    let before = snapshot(r.path());
    let out = solve(
        r.path(),
        out_dir.path(),
        &["--task", "t", "--model", &script("noop.jsonl")],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains("--test-cmd"), "{said}");
    // A malformed script names its line.
    let out = solve(
        r.path(),
        out_dir.path(),
        &[
            "--task",
            "t",
            "--test-cmd",
            "false",
            "--model",
            &script("malformed.jsonl"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("malformed.jsonl:2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(snapshot(r.path()), before);
}

#[test]
fn test_commands_that_hang_or_flood_are_failures() {
    let r = repo("grep_config");
    let before = snapshot(r.path());
    let out_dir = tempfile::tempdir().unwrap();
    let out = solve(
        r.path(),
        out_dir.path(),
        &[
            "--task",
            "t",
            "--test-cmd",
            "sleep 600",
            "--test-timeout",
            "1",
            "--model",
            &script("noop.jsonl"),
            "--max-attempts",
            "1",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let j = json_of(&out);
    assert_eq!(j["outcome"], "gate_held");
    let traj = trajectory(&j);
    assert_eq!(traj["baseline"]["timed_out"], true);

    // Megabytes of output: the gate keeps a bounded head + tail.
    let out = solve(
        r.path(),
        out_dir.path(),
        &[
            "--task",
            "t",
            "--test-cmd",
            "seq 1 2000000; exit 1",
            "--model",
            &script("noop.jsonl"),
            "--max-attempts",
            "1",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let j = json_of(&out);
    let traj = trajectory(&j);
    let shown = traj["baseline"]["output"].as_str().unwrap();
    assert!(shown.len() < 20_000, "{}", shown.len());
    assert!(shown.starts_with("1\n2\n") && shown.trim_end().ends_with("2000000"));
    assert_eq!(snapshot(r.path()), before);
}

#[test]
fn ctrl_c_stops_the_run_kills_the_tests_and_leaves_the_repo_alone() {
    let r = repo("grep_config");
    let before = snapshot(r.path());
    let out_dir = tempfile::tempdir().unwrap();
    // Ctrl-C lands while the baseline test run is under way.
    let (out, _) = interrupt_when_running(
        &mut solve_command(r.path(), out_dir.path(), "sleep 317.25", "noop.jsonl"),
        "sleep 317.25",
    );
    assert_exit(&out, 130);
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    assert_eq!(snapshot(r.path()), before);
}

/// `--max-steps` ends an attempt: the gate then judges whatever the model
/// did, submitted or not.
#[test]
fn max_steps_ends_the_attempt_and_the_gate_still_judges_it() {
    let traj_of = |out: &Output| trajectory(&json_of(out));
    // One step: the script only gets to read the file; the gate holds.
    let r = repo("grep_config");
    let out_dir = tempfile::tempdir().unwrap();
    let args = |steps: &'static str| {
        [
            "--task",
            "t",
            "--test-cmd",
            "grep -q GOOD config.toml",
            "--max-attempts",
            "1",
            "--max-steps",
            steps,
            "--json",
        ]
    };
    let model = script("grep_config_fix.jsonl");
    let mut a = args("1").to_vec();
    a.extend(["--model", model.as_str()]);
    let out = solve(r.path(), out_dir.path(), &a);
    assert_exit(&out, 1);
    let t = traj_of(&out);
    assert_eq!(t["outcome"], "gate_held");
    let at = &t["attempts"][0];
    assert_eq!(at["steps"], 1);
    assert_eq!(at["submitted"], false);
    assert_eq!(at["gate"]["passed"], false);
    // Two steps: the edit lands before the limit; the gate passes it even
    // though the script never reached `submit`.
    let out_dir = tempfile::tempdir().unwrap();
    let mut a = args("2").to_vec();
    a.extend(["--model", model.as_str()]);
    let out = solve(r.path(), out_dir.path(), &a);
    assert_exit(&out, 0);
    let t = traj_of(&out);
    assert_eq!(t["outcome"], "verified");
    let at = &t["attempts"][0];
    assert_eq!(at["steps"], 2);
    assert_eq!(at["submitted"], false);
}

/// Ctrl-C while `--model local` is still waiting for its server to become
/// healthy (it can take minutes) stops airgate at once, and the server
/// process it spawned goes with it.
#[test]
fn ctrl_c_while_the_local_model_starts_stops_it_and_the_server() {
    use std::os::unix::fs::PermissionsExt;
    let r = repo("grep_config");
    let before = snapshot(r.path());
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("local-model");
    std::fs::create_dir_all(&dir).unwrap();
    // A "server" that never answers /health.
    let python = dir.join("fake-python");
    std::fs::write(&python, "#!/bin/sh\nexec sleep 319.75\n").unwrap();
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("serve.py"), "").unwrap();
    std::fs::write(dir.join("model.gguf"), "").unwrap();
    let pins: toml::Value = toml::from_str(
        &std::fs::read_to_string(common::root().join("configs/local-model.toml")).unwrap(),
    )
    .unwrap();
    let install = serde_json::json!({
        "python": python,
        "gguf": dir.join("model.gguf"),
        "sha256": pins["gguf_sha256"].as_str().unwrap(),
        "serve_py": dir.join("serve.py"),
    });
    std::fs::write(dir.join("install.json"), install.to_string()).unwrap();
    let (out, took) = interrupt_when_running(
        common::airgate()
            .args([
                "solve",
                "--task",
                "t",
                "--test-cmd",
                "grep -q GOOD config.toml",
                "--model",
                "local",
            ])
            .arg("--repo")
            .arg(r.path())
            .env("AIRGATE_HOME", home.path())
            .current_dir(home.path()),
        "sleep 319.75",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted while starting the model"),
        "{stderr}"
    );
    // The start would otherwise go on until its 180 s health deadline.
    assert!(
        took < std::time::Duration::from_secs(60),
        "Ctrl-C waited for the server start"
    );
    assert_eq!(snapshot(r.path()), before);
}

/// Ctrl-C in the middle of an attempt: every turn made so far is saved.
#[test]
fn ctrl_c_mid_attempt_saves_the_partial_trajectory() {
    let r = repo("grep_config");
    let before = snapshot(r.path());
    let out_dir = tempfile::tempdir().unwrap();
    let (out, _) = interrupt_when_running(
        &mut solve_command(
            r.path(),
            out_dir.path(),
            "grep -q GOOD config.toml",
            "slow_run.jsonl",
        ),
        "sleep 318.25",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("partial trajectory"), "{stderr}");
    let traj: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("trajectory.json")).unwrap())
            .unwrap();
    assert_eq!(traj["outcome"], "gate_held");
    assert!(
        traj["aborted"].as_str().unwrap().contains("Ctrl-C"),
        "{}",
        traj["aborted"]
    );
    assert_eq!(traj["baseline"]["passed"], false);
    let attempt = &traj["attempts"][0];
    let tools: Vec<&str> = attempt["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "tool_call")
        .map(|e| e["call"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["ls", "read_file"], "{attempt}");
    assert_eq!(snapshot(r.path()), before);
}

/// Whether a process other than `except` runs a command line matching
/// `pattern`. airgate's own command line may hold the pattern (`--test-cmd
/// "sleep 317.25"`), so it must not count as the command having started.
fn running(pattern: &str, except: u32) -> bool {
    Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .any(|pid| pid.parse::<u32>().is_ok_and(|pid| pid != except))
        })
        .unwrap_or(false)
}

/// Spawns `cmd`, waits until a process matching `pattern` (the command it
/// must start) runs, sends Ctrl-C, and checks that process is gone soon
/// after. Returns the output and the time from Ctrl-C to exit.
fn interrupt_when_running(cmd: &mut Command, pattern: &str) -> (Output, std::time::Duration) {
    use std::time::{Duration, Instant};
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = child.id();
    while !running(pattern, pid) {
        assert!(Instant::now() < deadline, "`{pattern}` never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let t0 = Instant::now();
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let took = t0.elapsed();
    // SIGKILL is asynchronous: give a loaded machine a moment to reap it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(pattern, pid) {
        assert!(Instant::now() < deadline, "`{pattern}` outlived Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    }
    (out, took)
}

#[test]
fn repeated_calls_are_nudged_and_recorded() {
    let r = repo("py_calc");
    let out_dir = tempfile::tempdir().unwrap();
    let out = solve(
        r.path(),
        out_dir.path(),
        &[
            "--task",
            "t",
            "--model",
            &script("repeat.jsonl"),
            "--max-attempts",
            "1",
            "--json",
        ],
    );
    assert_exit(&out, 1);
    let j = json_of(&out);
    let traj = trajectory(&j);
    let attempt = &traj["attempts"][0];
    let kinds: Vec<&str> = attempt["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "nudge")
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["repeated_call", "alternation", "error_streak"],
        "{attempt:#}"
    );
    assert!(attempt["repeated_calls"].as_u64().unwrap() >= 2);
    // Every nudge also reached the model as a user message.
    let nudges_in_conversation = attempt["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .count();
    assert_eq!(nudges_in_conversation, 1 + 3);
}

/// `--gate-runs N`: a pass must repeat on N fresh copies. A test command
/// that fails on its 4th run (baseline, then gate runs 1-3) is verified
/// with `--gate-runs 2` and held with `--gate-runs 3`. (Unconfined: the
/// counter lives outside the repo, which the sandbox forbids.)
#[test]
fn gate_runs_repeat_a_pass_on_fresh_copies() {
    for (runs, outcome, code) in [("2", "verified", 0), ("3", "gate_held", 1)] {
        let r = repo("grep_config");
        let out_dir = tempfile::tempdir().unwrap();
        let counter = out_dir.path().join("count");
        let cmd = format!(
            "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; [ $n -ne 1 ] && [ $n -ne 4 ]",
            c = counter.display()
        );
        let out = solve(
            r.path(),
            out_dir.path(),
            &[
                "--task",
                "t",
                "--test-cmd",
                &cmd,
                "--model",
                &script("grep_config_fix.jsonl"),
                "--max-attempts",
                "1",
                "--gate-runs",
                runs,
                "--sandbox",
                "none",
                "--json",
            ],
        );
        assert_exit(&out, code);
        let j = json_of(&out);
        assert_eq!(j["outcome"], outcome, "--gate-runs {runs}");
    }
}
