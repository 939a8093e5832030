//! End-to-end `airgate solve` (the real binary) against in-process mocks of
//! the three wire APIs: each replays read_file, str_replace, run, submit on
//! a small Python repo with a wrong operator, and the run must end
//! `verified`. Also: the text protocol through a named config, and
//! escalation recording which model produced the verified patch.

use std::path::{Path, PathBuf};

use crate::common;
use crate::common::git;
use crate::common::model::{Api, Mock, Reply};
use serde_json::{Value, json};

/// A repo whose `add` subtracts; pytest fails until `-` becomes `+`.
fn calc_repo(root: &Path) -> PathBuf {
    let repo = root.join("repo");
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
    repo
}

const TEST_CMD: &str = "python3 -m pytest -q -p no:cacheprovider";

fn fix_calls() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("call_r1", "read_file", json!({"path": "calc.py"})),
        (
            "call_r2",
            "str_replace",
            json!({"path": "calc.py", "old_str": "    return a - b", "new_str": "    return a + b"}),
        ),
        ("call_r3", "run", json!({"command": TEST_CMD})),
        ("call_r4", "submit", json!({})),
    ]
}

/// A mock of `api` that replies with [`fix_calls`] as native tool calls.
async fn fixing_mock(api: Api) -> Mock {
    let replies = fix_calls()
        .into_iter()
        .map(|(id, name, args)| Reply::ok(api.tool_reply(id, name, args)))
        .collect();
    Mock::start(replies).await
}

struct Run {
    code: i32,
    json: Value,
    traj: Value,
    stderr: String,
}

async fn solve(cwd: &Path, repo: &Path, model: &str, extra: &[&str]) -> Run {
    solve_env(cwd, repo, model, extra, &[]).await
}

/// [`solve`] with extra environment variables (set after the API keys of
/// the caller's environment are removed).
async fn solve_env(
    cwd: &Path,
    repo: &Path,
    model: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let out = tokio::process::Command::new(common::AIRGATE_BIN)
        .args(["solve", "--repo"])
        .arg(repo)
        .args([
            "--task",
            "add(2, 3) returns -1 instead of 5",
            "--test-cmd",
            TEST_CMD,
            "--model",
            model,
            "--json",
            "--out",
        ])
        .arg(cwd.join("run"))
        .args(extra)
        .current_dir(cwd)
        .env("AIRGATE_HOME", cwd.join(".airgate"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("stdout is not one JSON object ({e}): {stdout}\nstderr: {stderr}")
    });
    let traj: Value = serde_json::from_str(
        &std::fs::read_to_string(json["trajectory"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        json,
        traj,
        stderr,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solve_against_each_mock_ends_verified() {
    for api in Api::ALL {
        let tmp = tempfile::tempdir().unwrap();
        let repo = calc_repo(tmp.path());
        let mock = fixing_mock(api).await;
        let spec = api.spec(&mock);
        let run = solve(tmp.path(), &repo, &spec, &["--max-attempts", "1"]).await;
        assert_eq!(run.code, 0, "{api:?}: {}\n{}", run.json, run.stderr);
        assert_eq!(run.json["outcome"], "verified", "{api:?}");
        assert_eq!(run.json["steps"], 4);
        let patch = run.json["patch"].as_str().unwrap();
        assert!(
            patch.contains("+    return a + b"),
            "{api:?} patch={patch:?} json={} traj={}",
            run.json,
            run.traj
        );
        // Dry run: the repo is untouched.
        assert_eq!(
            std::fs::read_to_string(repo.join("calc.py")).unwrap(),
            "def add(a, b):\n    return a - b\n"
        );
        let label = run.traj["verified_by"].as_str().unwrap();
        assert!(
            label.starts_with(&spec.split('@').next().unwrap().to_string()),
            "{label}"
        );
        assert_eq!(run.traj["usage"]["prompt_tokens"], 400);
        assert_eq!(run.traj["usage"]["completion_tokens"], 80);

        let reqs = mock.requests().await;
        assert_eq!(reqs.len(), 4, "{api:?}");
        assert_eq!(mock.replies_left().await, 0);
        // The last request carries three results, each tied to its call, and
        // the str_replace result is the tool's real answer.
        let msgs = api.messages(&reqs[3].body);
        let calls: Vec<String> = msgs.iter().flat_map(|m| m.2.clone()).collect();
        let results: Vec<(String, String)> = msgs
            .iter()
            .filter_map(|m| m.3.clone().map(|id| (id, m.1.clone())))
            .collect();
        assert_eq!(calls.len(), 3, "{api:?}");
        assert_eq!(
            calls,
            results.iter().map(|r| r.0.clone()).collect::<Vec<_>>()
        );
        assert!(
            results[0].1.contains("return a - b"),
            "read_file result: {}",
            results[0].1
        );
        assert!(
            results[2].1.contains("1 passed"),
            "run result: {}",
            results[2].1
        );
        assert_eq!(msgs[0].0, "system");
        assert!(msgs[1].1.contains("add(2, 3) returns -1"), "task first");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_protocol_through_a_named_config_ends_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = calc_repo(tmp.path());
    let api = Api::OpenAi;
    let mut replies = vec![Reply::ok(api.text_reply("I am not sure what to do."))];
    replies.extend(fix_calls().into_iter().map(|(_, name, args)| {
        Reply::ok(api.text_reply(&format!(
            "Next step.\n```json\n{}\n```",
            json!({"tool": name, "args": args})
        )))
    }));
    let mock = Mock::start(replies).await;
    let models = tmp.path().join("configs/models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::write(
        models.join("mock-small.toml"),
        format!(
            "spec = \"openai:tiny@{}/v1\"\ntool_calls = \"text\"\ncontext_size = 8192\nmax_tokens = 300\ntemperature = 0.0\n[price]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n",
            mock.url()
        ),
    )
    .unwrap();
    let run = solve(tmp.path(), &repo, "mock-small", &["--max-attempts", "1"]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.json, run.stderr);
    assert_eq!(run.json["outcome"], "verified");
    let attempt = &run.traj["attempts"][0];
    let events = attempt["events"].as_array().unwrap();
    let format_errors: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "format_error")
        .collect();
    assert_eq!(format_errors.len(), 1, "the malformed reply is recorded");
    assert!(
        run.traj["system_prompt"]
            .as_str()
            .unwrap()
            .contains("```json")
    );
    // Priced: 5 calls x (50 in, 10 out) at $1/$2 per Mtok.
    let cost = run.traj["usage"]["cost_usd"].as_f64().unwrap();
    assert!((cost - 5.0 * (50.0 + 20.0) / 1e6).abs() < 1e-12, "{cost}");
    let reqs = mock.requests().await;
    assert!(
        reqs.iter().all(|r| r.body.get("tools").is_none()),
        "text mode sends no tools"
    );
    assert_eq!(reqs[0].body["model"], "tiny");
    assert_eq!(reqs[0].body["max_tokens"], 300);
    // The format hint reached the model as a user message.
    let second = api.messages(&reqs[1].body);
    assert!(
        second
            .iter()
            .any(|m| m.0 == "user" && m.1.contains("Format error")),
        "{second:?}"
    );
}

/// A script model that looks around once and fixes nothing.
const LS_ONLY: &str = "{\"tool\": \"ls\", \"args\": {}}\n";

/// `solve` with a `script:` small model (its JSONL `lines`) escalating to
/// `big`; returns the small model's spec and the run.
async fn escalate(tmp: &Path, repo: &Path, lines: &str, big: &str) -> (String, Run) {
    let script = tmp.join("small.jsonl");
    std::fs::write(&script, lines).unwrap();
    let small = format!("script:{}", script.display());
    let run = solve(
        tmp,
        repo,
        &small,
        &["--escalate-to", big, "--max-attempts", "1"],
    )
    .await;
    (small, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_records_which_model_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = calc_repo(tmp.path());
    // The small "model" looks around and submits without fixing anything.
    let api = Api::OpenAi;
    let mock = fixing_mock(api).await;
    let (small, run) = escalate(tmp.path(), &repo, LS_ONLY, &api.spec(&mock)).await;
    assert_eq!(run.code, 0, "{}\n{}", run.json, run.stderr);
    assert_eq!(run.json["outcome"], "verified");
    let attempts = run.traj["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["model"], small.as_str());
    assert_eq!(attempts[0]["gate"]["passed"], false);
    let big_label = attempts[1]["model"].as_str().unwrap();
    assert!(big_label.starts_with("openai:mock-model@"), "{big_label}");
    assert_eq!(run.traj["verified_by"], big_label);
    // The big model was handed the small one's failure.
    let first = api.messages(&mock.requests().await[0].body);
    assert!(first[1].1.contains("previous attempt"), "{}", first[1].1);
}

/// The small model's server breaks mid-run (its reply no longer decodes):
/// the big model takes over and its patch is verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_takes_over_when_the_small_model_fails_mid_run() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = calc_repo(tmp.path());
    let api = Api::OpenAi;
    let small = Mock::start(vec![
        Reply::ok(api.tool_reply("s1", "ls", json!({}))),
        Reply::ok(json!({"error": "the model crashed"})),
    ])
    .await;
    let big = fixing_mock(api).await;
    let run = solve(
        tmp.path(),
        &repo,
        &api.spec(&small),
        &["--escalate-to", &api.spec(&big), "--max-attempts", "1"],
    )
    .await;
    assert_eq!(run.code, 0, "{}\n{}", run.json, run.stderr);
    assert_eq!(run.json["outcome"], "verified");
    assert!(run.traj["aborted"].is_null(), "{}", run.traj["aborted"]);
    let attempts = run.traj["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    let errors: Vec<&serde_json::Value> = attempts[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "model_error")
        .collect();
    assert_eq!(errors.len(), 1, "{}", attempts[0]);
    assert_eq!(run.traj["verified_by"], attempts[1]["model"]);
    assert_eq!(small.requests().await.len(), 2);
    assert!(!big.requests().await.is_empty());
}

/// A small model that refuses its very first call (wrong key, unknown
/// model) is a setup error: the run stops and the big model is never paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_does_not_hide_a_misconfigured_small_model() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = calc_repo(tmp.path());
    let api = Api::OpenAi;
    let small = Mock::start(vec![Reply::status(
        404,
        json!({"error": {"message": "model 'tiny' not found"}}),
    )])
    .await;
    let big = fixing_mock(api).await;
    let out = tokio::process::Command::new(common::AIRGATE_BIN)
        .args(["solve", "--repo"])
        .arg(&repo)
        .args(["--task", "t", "--test-cmd", TEST_CMD, "--model"])
        .arg(api.spec(&small))
        .arg("--escalate-to")
        .arg(api.spec(&big))
        .args(["--max-attempts", "1", "--json", "--out"])
        .arg(tmp.path().join("run"))
        .current_dir(tmp.path())
        .env("AIRGATE_HOME", tmp.path().join(".airgate"))
        .env_remove("OPENAI_API_KEY")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not found on server"), "{stderr}");
    assert!(out.stdout.is_empty(), "no outcome is claimed");
    assert!(big.requests().await.is_empty(), "the big model was called");
}

/// A model server that never answers is a broken environment (exit 3), not
/// a model whose gate held (1); the trajectory is still saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_never_answers_is_a_broken_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = calc_repo(tmp.path());
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = solve(
        tmp.path(),
        &repo,
        &format!("openai:m@http://127.0.0.1:{port}/v1"),
        &["--max-attempts", "1"],
    )
    .await;
    assert_eq!(run.code, 3, "{}\n{}", run.json, run.stderr);
    assert!(
        run.stderr.contains("never answered") && run.stderr.contains(&port.to_string()),
        "{}",
        run.stderr
    );
    assert_eq!(run.json["outcome"], "gate_held");
    assert!(
        run.traj["aborted"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
}

/// The API keys come from the environment: a Bearer token for OpenAI-compatible
/// servers, `x-api-key` for Anthropic; Ollama sends none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_taken_from_the_environment() {
    for api in Api::ALL {
        let tmp = tempfile::tempdir().unwrap();
        let repo = calc_repo(tmp.path());
        let mock = fixing_mock(api).await;
        let run = solve_env(
            tmp.path(),
            &repo,
            &api.spec(&mock),
            &["--max-attempts", "1"],
            &[
                ("OPENAI_API_KEY", "sk-env-openai"),
                ("ANTHROPIC_API_KEY", "sk-env-anthropic"),
            ],
        )
        .await;
        assert_eq!(run.code, 0, "{api:?}: {}\n{}", run.json, run.stderr);
        let reqs = mock.requests().await;
        assert!(!reqs.is_empty());
        for r in &reqs {
            let h = |k: &str| r.headers.get(k).and_then(|v| v.to_str().ok());
            match api {
                Api::OpenAi => {
                    assert_eq!(h("authorization"), Some("Bearer sk-env-openai"))
                }
                Api::Anthropic => {
                    assert_eq!(h("x-api-key"), Some("sk-env-anthropic"));
                    assert_eq!(h("authorization"), None);
                }
                Api::Ollama => {
                    assert_eq!(h("authorization"), None);
                    assert_eq!(h("x-api-key"), None);
                }
            }
        }
    }
}

/// A small model whose patch passes the gate: the big model is never called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_is_not_used_when_the_small_model_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = calc_repo(tmp.path());
    let lines: String = fix_calls()
        .into_iter()
        .map(|(_, name, args)| format!("{}\n", json!({"tool": name, "args": args})))
        .collect();
    let api = Api::OpenAi;
    let mock = Mock::start(vec![Reply::ok(api.tool_reply("c", "submit", json!({})))]).await;
    let (small, run) = escalate(tmp.path(), &repo, &lines, &api.spec(&mock)).await;
    assert_eq!(run.code, 0, "{}\n{}", run.json, run.stderr);
    assert_eq!(run.json["outcome"], "verified");
    assert_eq!(run.traj["verified_by"], small.as_str());
    assert_eq!(run.traj["attempts"].as_array().unwrap().len(), 1);
    assert!(
        mock.requests().await.is_empty(),
        "the big model was called: {:?}",
        mock.requests().await.len()
    );
}

/// Both models fail: the gate holds, and both attempts are recorded with
/// their models.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_where_both_models_fail_holds_the_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = calc_repo(tmp.path());
    let api = Api::OpenAi;
    let mock = Mock::start(vec![
        Reply::ok(api.tool_reply("c1", "read_file", json!({"path": "calc.py"}))),
        Reply::ok(api.tool_reply("c2", "submit", json!({}))),
    ])
    .await;
    let (small, run) = escalate(tmp.path(), &repo, LS_ONLY, &api.spec(&mock)).await;
    assert_eq!(run.code, 1, "{}\n{}", run.json, run.stderr);
    assert_eq!(run.json["outcome"], "gate_held");
    assert!(run.json["patch"].as_str().unwrap_or("").is_empty());
    assert!(run.traj["verified_by"].is_null());
    let attempts = run.traj["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["model"], small.as_str());
    assert!(
        attempts[1]["model"]
            .as_str()
            .unwrap()
            .starts_with("openai:mock-model@")
    );
    assert!(attempts.iter().all(|a| a["gate"]["passed"] == false));
    assert_eq!(mock.requests().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_model_name_is_a_usage_error_listing_names() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = calc_repo(tmp.path());
    let out = tokio::process::Command::new(common::AIRGATE_BIN)
        .args(["solve", "--repo"])
        .arg(&repo)
        .args([
            "--task",
            "t",
            "--test-cmd",
            TEST_CMD,
            "--model",
            "no-such-model",
        ])
        .current_dir(tmp.path())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no model config `no-such-model`"), "{err}");
}
