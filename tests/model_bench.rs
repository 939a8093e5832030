//! Measurements for docs/models.md (ignored: they print figures, assert
//! nothing about time). Driven by scripts/bench-model.sh:
//! - `client_tokens_per_second`: our OpenAI client and `curl` of the exact
//!   same request bytes, alternating, against a running llama.cpp server
//!   (`AIRGATE_BENCH_URL`);
//! - `harness_overhead_per_step`: `airgate solve` (the real binary) against a
//!   0 ms mock server, per-step time outside the model and the tests.

use std::time::{Duration, Instant};

use crate::common;
use crate::common::model::{Api, Mock, Reply};
use airgate::model::config::{BackendOptions, ToolCallMode};
use airgate::model::openai::OpenAiWire;
use airgate::model::remote::{RemotePolicy, Wire, WireRequest, render_text_mode};
use airgate::model::{EpisodeInfo, Message, Policy};
use serde_json::{Value, json};

const BENCH_SYSTEM: &str = "You are a careful software engineer. Answer in plain prose.";
const BENCH_USER: &str = "Explain, step by step, how you would find and fix a bug where add(2, 3) returns -1 in a small Python module, and how you would check the fix with pytest.";

/// One `curl` of `body` to `url/chat/completions`: (completion tokens, seconds
/// of transfer as curl measures it, so process start-up is not counted).
fn curl_once(url: &str, body: &std::path::Path) -> (u64, f64) {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-H",
            "content-type: application/json",
            "--data-binary",
        ])
        .arg(format!("@{}", body.display()))
        .args(["-w", "\n%{time_total}"])
        .arg(format!("{url}/chat/completions"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8(out.stdout).expect("utf-8 reply");
    let (json, secs) = text.rsplit_once('\n').expect("curl printed its timing");
    let reply: Value = serde_json::from_str(json).expect("a JSON reply");
    let tokens = reply["usage"]["completion_tokens"]
        .as_u64()
        .expect("usage.completion_tokens");
    (tokens, secs.trim().parse().expect("a time"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Our client and `curl` alternate on the same server, with the same request
/// bytes (temperature 0, so both generate the same tokens, which is checked),
/// after one warm-up each; machine load hits both sides alike.
#[tokio::test]
#[ignore = "benchmark: run by scripts/bench-model.sh"]
async fn client_tokens_per_second() {
    let Ok(url) = std::env::var("AIRGATE_BENCH_URL") else {
        eprintln!("skipped: AIRGATE_BENCH_URL not set");
        return;
    };
    let runs: usize = std::env::var("AIRGATE_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let max_tokens: u32 = std::env::var("AIRGATE_BENCH_MAX_TOKENS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(128);
    let conv = vec![Message::system(BENCH_SYSTEM), Message::user(BENCH_USER)];
    let mut opts = BackendOptions::defaults(ToolCallMode::Text);
    opts.temperature = 0.0;
    opts.max_tokens = max_tokens;
    opts.context_size = 8192;
    opts.http.request_timeout = Duration::from_secs(600);
    let wire = OpenAiWire::with_key("smollm2-135m", &url, None);
    // The exact body our client sends, for the curl side of the comparison.
    let rendered = render_text_mode(&conv);
    let (_, _, body) = wire.request(&WireRequest {
        messages: &rendered,
        tools: None,
        temperature: opts.temperature,
        max_tokens,
        context_size: opts.context_size,
        action_schema: None,
    });
    let dir = tempfile::tempdir().unwrap();
    let body_path = dir.path().join("body.json");
    std::fs::write(&body_path, body.to_string()).unwrap();
    let mut p = RemotePolicy::new("bench", Box::new(wire), opts).unwrap();
    let info = EpisodeInfo::default();
    // Warm-up: loads the model pages and the prompt cache for both sides.
    let _ = p.propose(&conv, &info).await.unwrap();
    let _ = curl_once(&url, &body_path);
    let (mut ours, mut theirs) = (vec![], vec![]);
    let (mut our_tokens, mut their_tokens) = (vec![], vec![]);
    for _ in 0..runs {
        let t0 = Instant::now();
        let pr = p.propose(&conv, &info).await.unwrap();
        let secs = t0.elapsed().as_secs_f64();
        assert!(
            pr.usage.completion_tokens > 0,
            "the server reported no usage"
        );
        ours.push(pr.usage.completion_tokens as f64 / secs);
        our_tokens.push(pr.usage.completion_tokens);
        let (tokens, secs) = curl_once(&url, &body_path);
        theirs.push(tokens as f64 / secs);
        their_tokens.push(tokens);
    }
    let same_tokens = our_tokens == their_tokens;
    let (mc, mk) = (median(ours.clone()), median(theirs.clone()));
    println!("BENCH client_tokens_per_s {mc:.2} all {ours:.2?} tokens {our_tokens:?}");
    println!("BENCH curl_tokens_per_s {mk:.2} all {theirs:.2?} tokens {their_tokens:?}");
    println!(
        "BENCH ratio_client_over_curl {:.3} (overhead {:+.1}%) runs {runs} same_tokens {same_tokens}",
        mc / mk,
        100.0 * (1.0 - mc / mk)
    );
    assert!(
        same_tokens,
        "client and curl generated different token counts, so their rates are not comparable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by scripts/bench-model.sh"]
async fn harness_overhead_per_step() {
    let steps = 40usize;
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("calc.py"), "def add(a, b):\n    return a - b\n").unwrap();
    std::fs::write(
        repo.join("test_calc.py"),
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
    )
    .unwrap();
    for args in [
        &["init", "-q", "."][..],
        &["add", "."],
        &["commit", "-qm", "init"],
    ] {
        std::process::Command::new("git")
            .args(["-c", "user.email=t@t", "-c", "user.name=t"])
            .args(args)
            .current_dir(&repo)
            .status()
            .unwrap();
    }
    // 0 ms mock: alternating reads (distinct ranges, so no loop-breaker nudge), then submit.
    let api = Api::OpenAi;
    let mut replies: Vec<Reply> = (0..steps - 1)
        .map(|i| {
            Reply::ok(api.tool_reply(
                &format!("call_{i}"),
                "read_file",
                json!({"path": "calc.py", "start_line": 1 + (i % 2), "end_line": 2 + i}),
            ))
        })
        .collect();
    replies.push(Reply::ok(api.tool_reply("call_s", "submit", json!({}))));
    let mock = Mock::start(replies).await;
    let t0 = Instant::now();
    let out = tokio::process::Command::new(common::AIRGATE_BIN)
        .args(["solve", "--repo"])
        .arg(&repo)
        .args([
            "--task",
            "fix add",
            "--test-cmd",
            "python3 -m pytest -q -p no:cacheprovider",
        ])
        .args([
            "--model",
            &api.spec(&mock),
            "--max-steps",
            &steps.to_string(),
        ])
        .args(["--max-attempts", "1", "--json", "--out"])
        .arg(tmp.path().join("run"))
        .current_dir(tmp.path())
        .output()
        .await
        .unwrap();
    let total = t0.elapsed().as_secs_f64();
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let traj: Value =
        serde_json::from_str(&std::fs::read_to_string(j["trajectory"].as_str().unwrap()).unwrap())
            .unwrap();
    let a = &traj["attempts"][0];
    let n = a["steps"].as_u64().unwrap() as f64;
    let gate_ms = a["gate"]["duration_ms"].as_f64().unwrap();
    let attempt_ms = a["wall_ms"].as_f64().unwrap();
    let (model_ms, tool_ms) = a["events"]
        .as_array()
        .unwrap()
        .iter()
        .fold((0.0, 0.0), |acc, e| match e["type"].as_str() {
            Some("model_call") => (acc.0 + e["latency_ms"].as_f64().unwrap(), acc.1),
            Some("tool_call") => (acc.0, acc.1 + e["duration_ms"].as_f64().unwrap()),
            _ => acc,
        });
    println!(
        "BENCH harness_ms_per_step {:.2} (model client {:.2}, tool {:.2}) steps {n} attempt_ms {attempt_ms} gate_ms {gate_ms} process_s {total:.2}",
        (attempt_ms - gate_ms) / n,
        model_ms / n,
        tool_ms / n
    );
}
