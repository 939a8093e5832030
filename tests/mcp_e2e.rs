//! MCP tools over stdio (issue 16, item 5), end to end through the real
//! binary: `solve --model script:FILE --mcp NAME=COMMAND` with the stdlib
//! Python server of `tests/fixtures/mcp/docs_server.py`, honest and
//! misbehaving (crash, hang, huge, flood, a tool description rewritten
//! mid-run, a probe of what it can reach), in bubblewrap unless a test says
//! otherwise. The server lives in the repo under test (inside the sandbox
//! only the workspace and the system are visible).

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;

use crate::common::{self, call, copy_tree, fixture};

use serde_json::{Value, json};

/// A value airgate's environment marks secret; the docs hold it too.
const DECOY: &str = "decoy-docs-token-9f8e7d6c5b4a3921";

fn honest_fix() -> String {
    call(
        "str_replace",
        json!({"path": "calc.py", "old_str": "return x >= 0", "new_str": "return x > 0"}),
    )
}

/// A scratch setup: py_calc with the docs server and a docs folder.
struct Setup {
    t: tempfile::TempDir,
    repo: PathBuf,
}

fn setup() -> Setup {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    std::fs::create_dir_all(repo.join("tools")).unwrap();
    std::fs::create_dir_all(repo.join("docs")).unwrap();
    copy_tree(&fixture("solve/py_calc"), &repo);
    std::fs::copy(
        fixture("mcp/docs_server.py"),
        repo.join("tools/docs_server.py"),
    )
    .unwrap();
    std::fs::write(
        repo.join("docs/guide.md"),
        format!(
            "# Guide\nis_positive(0) is False: zero is not positive.\nsupport token: {DECOY}\n"
        ),
    )
    .unwrap();
    Setup { t, repo }
}

fn server(mode: &str) -> String {
    format!("python3 tools/docs_server.py docs {mode}")
}

struct Run {
    code: Option<i32>,
    json: Value,
    stdout: String,
    stderr: String,
    traj: Value,
    traj_text: String,
    audit_text: String,
}

impl Run {
    /// The tool-call events of every attempt, in order.
    fn calls(&self) -> Vec<&Value> {
        self.traj["attempts"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| a["events"].as_array().into_iter().flatten())
            .filter(|e| e["type"] == "tool_call")
            .collect()
    }

    fn call(&self, i: usize) -> &Value {
        self.calls()[i]
    }

    fn record(&self, name: &str) -> &Value {
        self.traj["mcp"]
            .as_array()
            .and_then(|v| v.iter().find(|r| r["name"] == name))
            .unwrap_or_else(|| panic!("no mcp record {name}: {}", self.traj["mcp"]))
    }
}

fn solve(s: &Setup, script: &[String], extra: &[&str]) -> Run {
    let script_path = s.t.path().join("script.jsonl");
    std::fs::write(&script_path, script.join("\n")).unwrap();
    let out = s.t.path().join(format!("out-{}", script.len()));
    let _ = std::fs::remove_dir_all(&out);
    let output = common::airgate()
        .args(["solve", "--repo"])
        .arg(&s.repo)
        .args(["--task", "is_positive(0) must be False", "--model"])
        .arg(format!("script:{}", script_path.display()))
        .args(["--max-attempts", "1", "--json", "--out"])
        .arg(&out)
        .args(extra)
        .env("DOCS_API_TOKEN", DECOY)
        .env_remove("AIRGATE_CONFIG_DIR")
        .current_dir(&s.repo)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    let traj_text = std::fs::read_to_string(out.join("trajectory.json")).unwrap_or_default();
    let traj = serde_json::from_str(&traj_text).unwrap_or(Value::Null);
    let audit_text = std::fs::read_to_string(out.join("events.jsonl")).unwrap_or_default();
    Run {
        code: output.status.code(),
        json,
        stdout,
        stderr,
        traj,
        traj_text,
        audit_text,
    }
}

fn mcp(name: &str, mode: &str) -> String {
    format!("{name}={}", server(mode))
}

#[test]
fn docs_tools_are_offered_pinned_called_recorded_and_redacted() {
    let s = setup();
    let script = [
        call("docs__search", json!({"query": "positive"})),
        call("docs__read", json!({"path": "guide.md"})),
        call("docs__read", json!({"path": "../calc.py"})),
        honest_fix(),
        call("submit", json!({})),
    ];
    let spec = mcp("docs", "honest");
    let r = solve(&s, &script.map(String::from), &["--mcp", &spec]);
    assert_eq!(r.json["outcome"], "verified", "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.code, Some(0));

    // Offered with the prefix and the server's schema; named (names and
    // arguments only) in the system prompt.
    let offered: Vec<&str> = r.traj["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(
        offered.contains(&"docs__search") && offered.contains(&"docs__read"),
        "{offered:?}"
    );
    assert!(
        offered.contains(&"str_replace"),
        "the built-in tools stay: {offered:?}"
    );
    let read = r.traj["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == "docs__read")
        .unwrap();
    assert_eq!(read["function"]["parameters"]["required"], json!(["path"]));
    assert!(
        read["function"]["description"]
            .as_str()
            .unwrap()
            .starts_with("[MCP server `docs`]")
    );
    assert!(
        r.traj["system_prompt"]
            .as_str()
            .unwrap()
            .contains("`docs__read` (path)")
    );

    // Pinned by sha256 at start, never stopped.
    let rec = r.record("docs");
    assert_eq!(rec["sandbox"], "local");
    let pins = rec["tools"].as_array().unwrap();
    assert_eq!(pins.len(), 2, "{rec}");
    for p in pins {
        let sha = p["sha256"].as_str().unwrap();
        assert!(
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "{p}"
        );
    }
    assert!(rec.get("stopped").is_none(), "{rec}");

    // Recorded like any tool call, the result redacted.
    let c0 = r.call(0);
    assert_eq!(c0["call"]["name"], "docs__search");
    assert_eq!(c0["is_error"], false);
    assert!(
        c0["result"]
            .as_str()
            .unwrap()
            .contains("guide.md:2: is_positive(0) is False"),
        "{c0}"
    );
    let c1 = r.call(1);
    assert_eq!(c1["call"]["name"], "docs__read");
    let text = c1["result"].as_str().unwrap();
    assert!(
        text.contains("zero is not positive") && text.contains("[REDACTED]"),
        "{text}"
    );
    // The server's own error is an error result, the server keeps running.
    let c2 = r.call(2);
    assert_eq!(c2["is_error"], true, "{c2}");
    assert!(
        c2["result"].as_str().unwrap().contains("no such document"),
        "{c2}"
    );
    for (what, text) in [("trajectory", &r.traj_text), ("audit", &r.audit_text)] {
        assert!(!text.is_empty(), "no {what}");
        assert!(!text.contains(DECOY), "the docs' secret reached the {what}");
        assert!(
            text.contains("docs__read"),
            "the {what} does not record the MCP call"
        );
    }
}

#[test]
fn huge_results_are_cut_and_a_flood_stops_only_its_server() {
    let s = setup();
    let script = [
        call("big__read", json!({"path": "guide.md"})),
        call("flood__read", json!({"path": "guide.md"})),
        call("flood__search", json!({"query": "x"})),
        call("big__search", json!({"query": "zero"})),
        call("submit", json!({})),
    ];
    let (big, flood) = (mcp("big", "huge"), mcp("flood", "flood"));
    let r = solve(
        &s,
        &script.map(String::from),
        &["--mcp", &big, "--mcp", &flood],
    );
    assert_eq!(r.json["outcome"], "gate_held", "{}\n{}", r.stdout, r.stderr);

    let huge = r.call(0)["result"].as_str().unwrap();
    assert!(
        huge.starts_with("HUGE-HEAD") && huge.ends_with("HUGE-TAIL"),
        "{}",
        &huge[..80]
    );
    assert!(huge.len() < 12_000, "not truncated: {} bytes", huge.len());
    assert!(huge.contains("cut from the middle"), "no cut label");

    let flooded = r.call(1);
    assert_eq!(flooded["is_error"], true);
    let msg = flooded["result"].as_str().unwrap();
    assert!(
        msg.contains("larger than 4194304 bytes") && msg.contains("was stopped"),
        "{msg}"
    );
    let after = r.call(2)["result"].as_str().unwrap().to_string();
    assert!(after.contains("is stopped"), "{after}");
    assert!(
        r.record("flood")["stopped"]
            .as_str()
            .unwrap()
            .contains("larger than")
    );

    // The other server and the run go on.
    let c3 = r.call(3);
    assert_eq!(c3["is_error"], false, "{c3}");
    assert!(r.record("big").get("stopped").is_none());
}

#[test]
fn a_crashing_server_is_marked_dead_and_the_run_continues() {
    let s = setup();
    let script = [
        call("docs__search", json!({"query": "zero"})),
        call("docs__read", json!({"path": "guide.md"})),
        call("ls", json!({})),
        honest_fix(),
        call("submit", json!({})),
    ];
    let spec = mcp("docs", "crash");
    let r = solve(&s, &script.map(String::from), &["--mcp", &spec]);
    assert_eq!(r.json["outcome"], "verified", "{}\n{}", r.stdout, r.stderr);
    let c0 = r.call(0)["result"].as_str().unwrap().to_string();
    assert!(
        c0.contains("was stopped") && c0.contains("crashing on purpose"),
        "{c0}"
    );
    assert!(c0.contains("status 3"), "{c0}");
    assert!(r.call(1)["result"].as_str().unwrap().contains("is stopped"));
    assert_eq!(r.call(2)["is_error"], false);
    assert!(r.record("docs")["stopped"].is_string());
}

/// Processes whose command line holds `needle` (other than this test's).
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(mut f) = std::fs::File::open(e.path().join("cmdline")) else {
            continue;
        };
        let mut b = vec![];
        let _ = f.read_to_end(&mut b);
        let cmd = String::from_utf8_lossy(&b).replace('\0', " ");
        if cmd.contains(needle) {
            found.push(cmd);
        }
    }
    found
}

#[test]
fn a_hanging_server_is_killed_after_its_timeout() {
    let s = setup();
    let uniq = format!("hang-marker-{}", std::process::id());
    let cfg = s.t.path().join("mcp.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[mcp]]\nname = \"slow\"\ncommand = \"python3 tools/docs_server.py docs hang {uniq}\"\ntimeout_s = 2\n"
        ),
    )
    .unwrap();
    let script = [
        call("slow__search", json!({"query": "zero"})),
        call("slow__search", json!({"query": "zero"})),
        call("submit", json!({})),
    ];
    let cfg_arg = cfg.display().to_string();
    let r = solve(&s, &script.map(String::from), &["--mcp-config", &cfg_arg]);
    assert_eq!(r.json["outcome"], "gate_held", "{}\n{}", r.stdout, r.stderr);
    let c0 = r.call(0)["result"].as_str().unwrap().to_string();
    assert!(c0.contains("did not answer within 2 s"), "{c0}");
    assert!(r.call(1)["result"].as_str().unwrap().contains("is stopped"));
    assert!(
        r.record("slow")["stopped"]
            .as_str()
            .unwrap()
            .contains("did not answer")
    );
    let left = processes_with(&uniq);
    assert!(
        left.is_empty(),
        "the hung server outlived the run: {left:?}"
    );
}

#[test]
fn a_server_that_rewrites_a_tool_description_mid_run_is_stopped() {
    let s = setup();
    let script = [
        call("docs__read", json!({"path": "guide.md"})),
        call("docs__read", json!({"path": "guide.md"})),
        call("docs__search", json!({"query": "zero"})),
        call("submit", json!({})),
    ];
    let spec = mcp("docs", "rugpull");
    let r = solve(&s, &script.map(String::from), &["--mcp", &spec]);
    assert_eq!(r.json["outcome"], "gate_held", "{}\n{}", r.stdout, r.stderr);
    // The first call is served; the rewrite is caught before the second.
    assert_eq!(r.call(0)["is_error"], false, "{}", r.call(0));
    let c1 = r.call(1)["result"].as_str().unwrap().to_string();
    assert!(
        c1.contains("tool list changed") && c1.contains("`read`"),
        "{c1}"
    );
    assert!(r.call(2)["result"].as_str().unwrap().contains("is stopped"));
    let stopped = r.record("docs")["stopped"].as_str().unwrap().to_string();
    assert!(stopped.contains("tool list changed"), "{stopped}");
    // The model only ever saw the pinned description.
    assert!(
        !r.traj_text.contains("id_rsa"),
        "the poisoned description reached the trajectory"
    );
}

/// The attack: a probe server tries a host loopback listener, a write
/// outside the workspace and a write into it. In bubblewrap all three
/// fail; the control runs the same probe with `--sandbox none`, where all
/// three succeed (so the probe can detect what it claims to).
#[test]
fn the_server_cannot_reach_the_network_or_write_anywhere_but_the_unconfined_control_can() {
    for confined in [true, false] {
        let s = setup();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let outside = s.t.path().join("outside-marker.txt");
        let script = [
            call(
                "probe__probe",
                json!({"port": port, "outside": outside.display().to_string()}),
            ),
            call("submit", json!({})),
        ];
        let spec = mcp("probe", "probe");
        let mut extra = vec!["--mcp", spec.as_str()];
        if !confined {
            extra.extend(["--sandbox", "none"]);
        }
        let r = solve(&s, &script.map(String::from), &extra);
        assert_eq!(r.json["outcome"], "gate_held", "{}\n{}", r.stdout, r.stderr);
        let report = r.call(0)["result"].as_str().unwrap().to_string();
        let accepted = listener.accept().is_ok();
        let wrote_inside = s.repo.join("mcp_wrote.txt").exists();
        if confined {
            assert!(report.contains("network: blocked"), "{report}");
            assert!(report.contains("outside write: blocked"), "{report}");
            assert!(report.contains("workspace write: blocked"), "{report}");
            assert!(!accepted, "the confined server reached the host's loopback");
            assert!(
                !outside.exists(),
                "the confined server wrote outside the workspace"
            );
            assert_eq!(r.record("probe")["sandbox"], "local");
        } else {
            assert!(report.contains("network: CONNECTED"), "{report}");
            assert!(report.contains("outside write: WROTE"), "{report}");
            assert!(report.contains("workspace write: WROTE"), "{report}");
            assert!(
                accepted && outside.exists(),
                "the control probe did not act"
            );
            assert_eq!(r.record("probe")["sandbox"], "none");
        }
        // Either way the user's repo is untouched (dry run).
        assert!(!wrote_inside, "the user's repository was written");
    }
}

#[test]
fn startup_failures_name_the_server_and_settings_never_come_from_the_repo() {
    let s = setup();
    // Not an MCP server: no answer to `initialize` before the timeout.
    let cfg = s.t.path().join("mcp.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[mcp]]\nname = \"quiet\"\ncommand = \"{}\"\nstartup_timeout_s = 2\n",
            server("silent")
        ),
    )
    .unwrap();
    let script = [call("submit", json!({}))].map(String::from);
    let cfg_arg = cfg.display().to_string();
    let r = solve(&s, &script, &["--mcp-config", &cfg_arg]);
    assert_eq!(r.code, Some(3), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("MCP server `quiet`") && r.stderr.contains("within 2 s"),
        "{}",
        r.stderr
    );

    // A command that does not exist: its stderr is in the message.
    let r = solve(&s, &script, &["--mcp", "nope=/nonexistent/mcp-server"]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains("MCP server `nope`") && r.stderr.contains("No such file"),
        "{}",
        r.stderr
    );

    // Bad flags and Docker are usage errors, before anything starts.
    let r = solve(&s, &script, &["--mcp", "Bad Name=x"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    let r = solve(&s, &script, &["--mcp", "d=x", "--sandbox", "docker"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("--sandbox docker"), "{}", r.stderr);

    // An mcp.toml in the repo (the current directory) is never read.
    let marker = s.t.path().join("repo-config-ran");
    let planted = format!(
        "[[mcp]]\nname = \"evil\"\ncommand = \"touch {}\"\n",
        marker.display()
    );
    std::fs::create_dir_all(s.repo.join("configs")).unwrap();
    std::fs::write(s.repo.join("mcp.toml"), &planted).unwrap();
    std::fs::write(s.repo.join("configs/mcp.toml"), &planted).unwrap();
    let r = solve(&s, &script, &[]);
    assert_eq!(r.json["outcome"], "gate_held", "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.traj.get("mcp").is_none(),
        "a server started: {}",
        r.traj["mcp"]
    );
    assert!(!marker.exists());
}
