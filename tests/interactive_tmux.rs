//! `airgate solve --interactive` on a real terminal: the binary runs in a
//! tmux session (its own server socket), the test reads the screen with
//! `tmux capture-pane -p` and answers with `tmux send-keys`. A scripted
//! model proposes the actions; the accounts fixture is the repository.
//! Also `tiers run`'s per-episode display on a terminal.
//!
//! Skipped, saying so, only when tmux is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{self, ACCOUNTS_TASK as TASK, accounts, call, fixture, script, trajectory};

/// How long a prompt may take to appear before the test gives up (a
/// deadline for a wait, not a timing that is asserted).
const PATIENCE: Duration = Duration::from_secs(180);

fn tmux_bin() -> Option<PathBuf> {
    ["/usr/bin/tmux", "/usr/local/bin/tmux", "/bin/tmux"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// One `airgate solve --interactive` in its own tmux server.
struct Session {
    tmux: PathBuf,
    sock: PathBuf,
    dir: PathBuf,
}

impl Session {
    /// Starts `solve --interactive --json` (stdout to `out.json`; stdin and
    /// stderr on the tmux terminal).
    fn start(dir: &Path, repo: &Path, model: &str, extra: &[&str]) -> Option<Session> {
        let mut cmd = vec![
            "solve".to_string(),
            "--interactive".into(),
            "--json".into(),
            "--task".into(),
            TASK.into(),
            "--model".into(),
            model.into(),
            "--repo".into(),
            repo.display().to_string(),
            "--out".into(),
            dir.join("run").display().to_string(),
        ];
        cmd.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(dir, &cmd)
    }

    /// Starts `airgate ARGS` (stdout to `out.json`); the pane stays after
    /// it ends, until the session is dropped.
    fn spawn(dir: &Path, args: &[String]) -> Option<Session> {
        let Some(tmux) = tmux_bin() else {
            eprintln!("SKIPPED: tmux is not installed (apt-get install tmux)");
            return None;
        };
        let mut line = vec![quote(common::AIRGATE_BIN)];
        line.extend(args.iter().map(|a| quote(a)));
        let sh = format!(
            "{} > {} ; echo $? > {} ; sleep 600\n",
            line.join(" "),
            quote(&dir.join("out.json").display().to_string()),
            quote(&dir.join("code.txt").display().to_string())
        );
        std::fs::write(dir.join("run.sh"), sh).unwrap();
        let s = Session {
            tmux,
            sock: dir.join("tmux.sock"),
            dir: dir.to_path_buf(),
        };
        let ok = s
            .tmux(&["new-session", "-d", "-s", "t", "-x", "200", "-y", "50"])
            .arg(format!(
                "sh {}",
                quote(&dir.join("run.sh").display().to_string())
            ))
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        Some(s)
    }

    fn tmux(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.tmux);
        c.arg("-S").arg(&self.sock).args(args);
        c
    }

    /// The whole pane, history included.
    fn screen(&self) -> String {
        let out = self
            .tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the pane shows `want`; returns the screen.
    fn wait_for(&self, want: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(want) {
                return s;
            }
            if let Some(code) = self.exit_code() {
                panic!("airgate exited ({code}) before showing `{want}`:\n{s}");
            }
            assert!(start.elapsed() < PATIENCE, "`{want}` never appeared:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        assert!(self.tmux(&args).status().unwrap().success());
    }

    fn text(&self, text: &str) {
        assert!(
            self.tmux(&["send-keys", "-t", "t", "-l", text])
                .status()
                .unwrap()
                .success()
        );
    }

    fn exit_code(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("code.txt"))
            .ok()
            .and_then(|c| c.trim().parse().ok())
    }

    /// Waits for the run to end; its exit code and its one JSON object.
    fn finish(&self) -> (i32, serde_json::Value) {
        let start = Instant::now();
        let code = loop {
            if let Some(c) = self.exit_code() {
                break c;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "airgate did not end:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let stdout = std::fs::read_to_string(self.dir.join("out.json")).unwrap();
        let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "stdout must be one JSON object:\n{stdout}");
        (code, serde_json::from_str(lines[0]).unwrap())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]).output();
    }
}

fn events<'a>(a: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    a["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

/// Accept one action, skip a command the approval policy holds back (the
/// prompt names the rule; the model is told it was declined), give the
/// model an instruction, then quit: the run stops like an interrupt (exit
/// 130, `ended: user_quit`, nothing applied) and the trajectory is saved.
#[test]
fn accept_skip_instruct_and_quit_on_a_real_terminal() {
    let repo = accounts(&[]);
    let dir = tempfile::tempdir().unwrap();
    let fix = std::fs::read_to_string(fixture("solve/scripts/accounts_fix.jsonl")).unwrap();
    let edit = fix.lines().nth(2).unwrap().to_string();
    let model = script(
        dir.path(),
        "model.jsonl",
        &[
            call("read_file", serde_json::json!({"path": "accounts.py"})),
            // Held back by the `git-push` rule; if it ran, `pushed.py`
            // would be in the patch.
            call(
                "run",
                serde_json::json!({"command": "git push origin main; echo pushed > pushed.py"}),
            ),
            call("search", serde_json::json!({"pattern": "def debit"})),
            edit,
        ],
    );
    let Some(s) = Session::start(dir.path(), repo.path(), &model, &["--max-attempts", "2"]) else {
        return;
    };
    s.wait_for("step 1 · the model proposes: read_file");
    s.keys(&["a"]);
    s.wait_for("step 2 · the model proposes: run");
    let screen = s.wait_for("rule `git-push`");
    let screen = screen[screen.find("step 2 ·").unwrap()..].to_string();
    assert!(
        screen.contains("$ git push origin main; echo pushed > pushed.py"),
        "{screen}"
    );
    assert!(
        screen.contains("held back by the approval policy: rule `git-push`"),
        "{screen}"
    );
    s.keys(&["s"]);
    s.wait_for("step 3 · the model proposes: search");
    s.keys(&["e"]);
    s.wait_for("instruction for the model");
    s.text("Raise InsufficientFunds in debit");
    s.keys(&["Enter"]);
    let screen = s.wait_for("step 4 · the model proposes: str_replace");
    assert!(screen.contains("edit accounts.py:"), "{screen}");
    assert!(
        screen.contains("+            raise InsufficientFunds("),
        "the edit is shown as a diff:\n{screen}"
    );
    s.keys(&["q"]);
    let (code, j) = s.finish();
    assert_eq!(code, 130, "quit exits like an interrupt\n{}", s.screen());
    assert_eq!(j["outcome"], "gate_held");
    assert_eq!(j["ended"], serde_json::json!(["user_quit"]));
    assert_eq!(j["patch"], "");
    let t = trajectory(&j);
    assert_eq!(t["aborted"], "stopped by the user (quit in --interactive)");
    let a = &t["attempts"][0];
    assert_eq!(
        t["attempts"].as_array().unwrap().len(),
        1,
        "no further attempt"
    );
    let decisions: Vec<&str> = events(a, "review")
        .iter()
        .map(|e| e["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["accept", "skip", "instruct", "quit"]);
    let calls = events(a, "tool_call");
    // Accepted: it ran.
    assert_eq!(calls[0]["is_error"], false);
    assert!(
        calls[0]["result"]
            .as_str()
            .unwrap()
            .contains("class Account")
    );
    // Skipped: the model got the decline, naming the rule.
    let declined = calls[1]["result"].as_str().unwrap();
    assert!(
        declined
            .starts_with("ERROR: not run: the user declined this action (approval rule `git-push`"),
        "{declined}"
    );
    // The instruction reached the model as a user message.
    let messages = a["messages"].as_array().unwrap();
    assert!(
        messages.iter().any(|m| m["role"] == "user"
            && m["content"] == "Instruction from the user: Raise InsufficientFunds in debit"),
        "{messages:#?}"
    );
    // Nothing skipped, instructed or quit ran: no `pushed.py`, no edit;
    // the repository is untouched.
    assert_eq!(
        a["gate"],
        serde_json::Value::Null,
        "an empty patch is not judged"
    );
    assert!(
        calls[3]["result"]
            .as_str()
            .unwrap()
            .contains("the user stopped the run")
    );
    assert_eq!(a["patch"], "");
    assert_eq!(
        std::fs::read(repo.path().join("accounts.py")).unwrap(),
        std::fs::read(fixture("solve/accounts/accounts.py")).unwrap()
    );
}

/// The honest control: accepting everything (`A` at the first prompt)
/// reaches exactly what the same model reaches without --interactive.
#[test]
fn accepting_everything_matches_the_non_interactive_run() {
    let fix: Vec<String> = std::fs::read_to_string(fixture("solve/scripts/accounts_fix.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let repo = accounts(&[]);
    let dir = tempfile::tempdir().unwrap();
    let model = script(dir.path(), "model.jsonl", &fix);
    let Some(s) = Session::start(dir.path(), repo.path(), &model, &[]) else {
        return;
    };
    s.wait_for("step 1 · the model proposes: search");
    s.keys(&["A"]);
    let (code, j) = s.finish();
    assert_eq!(code, 0, "{}", s.screen());
    assert_eq!(j["outcome"], "verified");
    let t = trajectory(&j);
    let decisions: Vec<&str> = events(&t["attempts"][0], "review")
        .iter()
        .map(|e| e["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["accept"; 5]);

    let plain_repo = accounts(&[]);
    let plain_dir = tempfile::tempdir().unwrap();
    let out = common::airgate()
        .args(["solve", "--json", "-q", "--task", TASK, "--model", &model])
        .arg("--repo")
        .arg(plain_repo.path())
        .arg("--out")
        .arg(plain_dir.path().join("run"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let plain: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    for k in ["outcome", "ended", "attempts", "steps", "patch"] {
        assert_eq!(j[k], plain[k], "`{k}` differs");
    }
}

/// Without a terminal on stdin, --interactive is refused with what to do.
#[test]
fn interactive_needs_a_terminal() {
    let repo = accounts(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = common::airgate()
        .args([
            "solve",
            "--interactive",
            "--task",
            TASK,
            "--model",
            "script:/nonexistent",
        ])
        .arg("--repo")
        .arg(repo.path())
        .arg("--out")
        .arg(dir.path().join("run"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--interactive needs a terminal on stdin"),
        "{err}"
    );
}

/// Quit after an accepted fix: the gate still judges the patch made so
/// far, and it decides. Here it passes, so the outcome is `verified` with
/// the patch (exit 0), though the attempt ended as `user_quit`.
#[test]
fn quit_after_a_fix_leaves_the_verdict_to_the_gate() {
    let fix: Vec<String> = std::fs::read_to_string(fixture("solve/scripts/accounts_fix.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let repo = accounts(&[]);
    let dir = tempfile::tempdir().unwrap();
    let model = script(dir.path(), "model.jsonl", &fix);
    let Some(s) = Session::start(dir.path(), repo.path(), &model, &[]) else {
        return;
    };
    for (step, tool) in [(1, "search"), (2, "read_file"), (3, "str_replace")] {
        s.wait_for(&format!("step {step} · the model proposes: {tool}"));
        s.keys(&["a"]);
    }
    s.wait_for("step 4 · the model proposes: run");
    s.keys(&["q"]);
    let (code, j) = s.finish();
    assert_eq!(code, 0, "{}", s.screen());
    assert_eq!(j["outcome"], "verified");
    assert_eq!(j["ended"], serde_json::json!(["user_quit"]));
    assert!(
        j["patch"]
            .as_str()
            .unwrap()
            .contains("raise InsufficientFunds"),
        "{j}"
    );
    let t = trajectory(&j);
    assert_eq!(t["attempts"][0]["gate"]["passed"], true);
    assert!(t["aborted"].is_null());
}

/// `tiers run` on a terminal: the run's bar with one line per episode in
/// flight, and a kept line per gate run naming the episode; nothing goes
/// to stdout but the results.
#[test]
fn tiers_run_on_a_terminal_shows_each_episode() {
    let dir = tempfile::tempdir().unwrap();
    let suite = fixture("tiers_suite");
    let args: Vec<String> = [
        "tiers",
        "run",
        "--tier",
        "easy",
        "--model",
        "reference",
        "--tasks",
        suite.to_str().unwrap(),
        "--out",
        dir.path().join("run").to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let Some(s) = Session::spawn(dir.path(), &args) else {
        return;
    };
    let start = Instant::now();
    while s.exit_code().is_none() {
        assert!(
            start.elapsed() < PATIENCE,
            "tiers run did not end:\n{}",
            s.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.exit_code(), Some(0), "{}", s.screen());
    let screen = s.screen();
    let gates = screen
        .lines()
        .filter(|l| {
            l.starts_with("easy/") && l.contains(" s0 [reference]: attempt 1 gate: tests pass")
        })
        .count();
    assert_eq!(gates, 2, "one gate line per easy task:\n{screen}");
    // Steps were spinner lines, retired with their episode (the plain
    // display, for pipes, keeps a line per step instead).
    assert!(
        !screen
            .lines()
            .any(|l| l.starts_with("easy/") && l.contains(": attempt 1 step ")),
        "{screen}"
    );
    let stdout = std::fs::read_to_string(dir.path().join("out.json")).unwrap();
    assert!(!stdout.contains("attempt 1"), "{stdout}");
}
