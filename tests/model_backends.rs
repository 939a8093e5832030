//! The three wire backends against in-process mock servers playing recorded
//! multi-turn transcripts: native tool calls, text-protocol replies, a
//! malformed reply, a 500 then a success, a 429 with Retry-After, a hang
//! past the timeout, a hanging connect, a reset connection, 401/404, a
//! context overflow, refused tools and refused optional parameters.

use std::time::{Duration, Instant};

use crate::common::model::{Api, Mock, Reply};
use airgate::error::Retryable;
use airgate::model::anthropic::AnthropicWire;
use airgate::model::config::{BackendOptions, Prices, ToolCallMode};
use airgate::model::ollama::OllamaWire;
use airgate::model::openai::OpenAiWire;
use airgate::model::remote::{RemotePolicy, Wire};
use airgate::model::{EpisodeInfo, Message, ModelError, Policy, Proposal};
use serde_json::json;

fn opts(mode: ToolCallMode) -> BackendOptions {
    let mut o = BackendOptions::defaults(mode);
    o.http.backoff_base = Duration::from_millis(5);
    o.http.max_retries = 3;
    o.http.request_timeout = Duration::from_secs(20);
    o
}

fn wire(api: Api, mock: &Mock) -> Box<dyn Wire> {
    match api {
        Api::OpenAi => Box::new(OpenAiWire::with_key(
            "mock-model",
            format!("{}/v1", mock.url()),
            None,
        )),
        Api::Ollama => Box::new(OllamaWire::new("mock-model", mock.url())),
        Api::Anthropic => Box::new(AnthropicWire::with_key(
            "mock-model",
            mock.url(),
            Some("sk-test".into()),
        )),
    }
}

fn policy(api: Api, mock: &Mock, o: BackendOptions) -> RemotePolicy {
    RemotePolicy::new("mock", wire(api, mock), o).unwrap()
}

fn info() -> EpisodeInfo {
    EpisodeInfo {
        tools: airgate::tools::schemas(),
    }
}

fn start_convo(p: &RemotePolicy) -> Vec<Message> {
    let mut sys = "You fix bugs.".to_string();
    if let Some(a) = p.system_prompt_addendum(&airgate::tools::schemas()) {
        sys.push_str("\n\n");
        sys.push_str(&a);
    }
    vec![
        Message::system(sys),
        Message::user("Fix calc.py; tests fail."),
    ]
}

/// Appends the proposal's message and a tool result for its first call.
fn act(conv: &mut Vec<Message>, p: &Proposal, result: &str) {
    let m = p.message.clone().expect("a tool call");
    let id = m.tool_calls[0].id.clone();
    conv.push(m);
    conv.push(Message::tool(id, result));
}

#[tokio::test]
async fn native_multi_turn_ties_results_to_call_ids() {
    for api in Api::ALL {
        let mock = Mock::start(vec![
            Reply::ok(api.tool_reply("call_a1", "read_file", json!({"path": "calc.py"}))),
            Reply::ok(api.tool_reply("call_a2", "run", json!({"command": "pytest -q"}))),
            Reply::ok(api.tool_reply("call_a3", "submit", json!({}))),
        ])
        .await;
        let mut p = policy(api, &mock, opts(ToolCallMode::Native));
        assert!(
            p.system_prompt_addendum(&airgate::tools::schemas())
                .is_none()
        );
        let mut conv = start_convo(&p);
        let p1 = p.propose(&conv, &info()).await.unwrap();
        let c1 = &p1.message.as_ref().unwrap().tool_calls[0];
        assert_eq!(c1.name, "read_file");
        assert_eq!(c1.arguments, json!({"path": "calc.py"}));
        assert_eq!(
            (p1.usage.prompt_tokens, p1.usage.completion_tokens),
            (100, 20),
            "{api:?}"
        );
        act(&mut conv, &p1, "def add(a, b):\n    return a - b\n");
        let p2 = p.propose(&conv, &info()).await.unwrap();
        act(&mut conv, &p2, "1 failed");
        let p3 = p.propose(&conv, &info()).await.unwrap();
        assert_eq!(p3.message.unwrap().tool_calls[0].name, "submit");

        let reqs = mock.requests().await;
        assert_eq!(reqs.len(), 3, "{api:?}");
        for r in &reqs {
            assert_eq!(r.path, api.path());
            assert_eq!(
                api.tool_names(&r.body),
                ["ls", "read_file", "search", "str_replace", "run", "submit"],
                "{api:?}: tools schema"
            );
        }
        // Message order and ids in the last request.
        let msgs = api.messages(&reqs[2].body);
        let roles: Vec<&str> = msgs.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(
            roles,
            ["system", "user", "assistant", "tool", "assistant", "tool"],
            "{api:?}"
        );
        let call_ids: Vec<String> = msgs.iter().flat_map(|m| m.2.clone()).collect();
        let result_ids: Vec<String> = msgs.iter().filter_map(|m| m.3.clone()).collect();
        assert_eq!(call_ids, result_ids, "{api:?}: results tied to their calls");
        assert_eq!(call_ids.len(), 2);
        if api != Api::Ollama {
            assert_eq!(call_ids, ["call_a1", "call_a2"], "{api:?}: server ids kept");
        }
        assert!(msgs[3].1.contains("return a - b"));
        match api {
            Api::Ollama => {
                let b = &reqs[0].body;
                assert_eq!(b["options"]["num_ctx"], 16384);
                assert_eq!(b["stream"], false);
                assert_eq!(reqs[2].body["messages"][3]["tool_name"], "read_file");
            }
            Api::Anthropic => {
                let h = &reqs[0].headers;
                assert_eq!(h["x-api-key"], "sk-test");
                assert_eq!(h["anthropic-version"], "2023-06-01");
                assert!(reqs[0].body["max_tokens"].as_u64().unwrap() > 0);
                assert!(reqs[0].body["tools"][1]["input_schema"]["properties"]["path"].is_object());
            }
            Api::OpenAi => {
                assert!(
                    reqs[0].headers.get("authorization").is_none(),
                    "no key, no header"
                );
                assert_eq!(reqs[0].body["model"], "mock-model");
            }
        }
    }
}

#[tokio::test]
async fn openai_sends_bearer_only_with_a_key() {
    let mock = Mock::start(vec![Reply::ok(Api::OpenAi.tool_reply(
        "c",
        "ls",
        json!({}),
    ))])
    .await;
    let w = OpenAiWire::with_key("m", format!("{}/v1", mock.url()), Some("sk-1".into()));
    let mut p = RemotePolicy::new("m", Box::new(w), opts(ToolCallMode::Native)).unwrap();
    p.propose(&[Message::user("x")], &info()).await.unwrap();
    assert_eq!(
        mock.requests().await[0].headers["authorization"],
        "Bearer sk-1"
    );
}

#[tokio::test]
async fn text_protocol_replies_are_parsed_and_results_sent_as_text() {
    for api in Api::ALL {
        let mock = Mock::start(vec![
            Reply::ok(api.text_reply("Let me look.\n```json\n{\"tool\": \"read_file\", \"args\": {\"path\": \"calc.py\",},}\n```")),
            Reply::ok(api.text_reply("<tool_call>{\"name\": \"submit\", \"arguments\": {}}</tool_call>")),
        ])
        .await;
        let mut p = policy(api, &mock, opts(ToolCallMode::Text));
        let addendum = p
            .system_prompt_addendum(&airgate::tools::schemas())
            .expect("text mode adds the protocol");
        assert!(addendum.contains("```json"));
        let mut conv = start_convo(&p);
        let p1 = p.propose(&conv, &info()).await.unwrap();
        let m = p1.message.clone().unwrap();
        assert_eq!(m.tool_calls[0].name, "read_file");
        assert_eq!(m.tool_calls[0].arguments, json!({"path": "calc.py"}));
        assert!(
            m.content.contains("Let me look."),
            "raw text kept in the message"
        );
        act(&mut conv, &p1, "FILE BODY");
        let p2 = p.propose(&conv, &info()).await.unwrap();
        assert_eq!(p2.message.unwrap().tool_calls[0].name, "submit");

        let reqs = mock.requests().await;
        assert!(
            api.tool_names(&reqs[0].body).is_empty(),
            "{api:?}: no native tools in text mode"
        );
        let msgs = api.messages(&reqs[1].body);
        let roles: Vec<&str> = msgs.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user"], "{api:?}");
        assert!(
            msgs[0].1.contains("```json"),
            "addendum in the system prompt"
        );
        assert!(
            msgs[3].1.starts_with("Result of `read_file`:\nFILE BODY"),
            "{api:?}: {}",
            msgs[3].1
        );
        assert!(msgs.iter().all(|m| m.2.is_empty() && m.3.is_none()));
    }
}

#[tokio::test]
async fn auto_mode_falls_back_to_text_when_no_native_call() {
    for api in Api::ALL {
        let mock = Mock::start(vec![
            Reply::ok(api.text_reply(
                "<tool_call>\n{\"name\": \"ls\", \"arguments\": {\"path\": \"src\"}}\n</tool_call>",
            )),
            Reply::ok(api.tool_reply("call_n", "submit", json!({}))),
        ])
        .await;
        let mut p = policy(api, &mock, opts(ToolCallMode::Auto));
        assert!(
            p.system_prompt_addendum(&airgate::tools::schemas())
                .is_none()
        );
        let mut conv = start_convo(&p);
        let p1 = p.propose(&conv, &info()).await.unwrap();
        let call = &p1.message.as_ref().unwrap().tool_calls[0];
        assert_eq!(
            (call.name.as_str(), &call.arguments),
            ("ls", &json!({"path": "src"}))
        );
        act(&mut conv, &p1, "a.py");
        let p2 = p.propose(&conv, &info()).await.unwrap();
        assert_eq!(p2.message.unwrap().tool_calls[0].name, "submit");
        // Native tools are offered in auto mode and the parsed call is sent back natively.
        let reqs = mock.requests().await;
        assert_eq!(api.tool_names(&reqs[0].body).len(), 6);
        let msgs = api.messages(&reqs[1].body);
        let call_ids: Vec<String> = msgs.iter().flat_map(|m| m.2.clone()).collect();
        let result_ids: Vec<String> = msgs.iter().filter_map(|m| m.3.clone()).collect();
        assert_eq!(call_ids, result_ids, "{api:?}");
        assert_eq!(call_ids.len(), 1);
    }
}

#[tokio::test]
async fn malformed_reply_is_a_format_error_with_the_expected_format() {
    for api in Api::ALL {
        let mock = Mock::start(vec![
            Reply::ok(api.text_reply("I'm glad you're finding the fix helpful!")),
            Reply::ok(api.text_reply("{\"tool\": \"ls\", \"args\": [1, 2]}")),
            Reply::ok(api.text_reply("Sure.")),
        ])
        .await;
        let mut p = policy(api, &mock, opts(ToolCallMode::Text));
        let conv = start_convo(&p);
        for want in ["no JSON action", "no object", "no JSON action"] {
            let pr = p.propose(&conv, &info()).await.unwrap();
            assert!(pr.message.is_none(), "{api:?}");
            let err = pr.format_error.unwrap();
            assert!(err.contains(want), "{api:?}: {err}");
            assert!(pr.format_hint.unwrap().contains("{\"tool\": \"ls\""));
            assert!(!pr.raw.is_empty());
        }
        // Native mode: a text-only reply is a format error too (no fallback).
        let mock = Mock::start(vec![Reply::ok(api.text_reply("{\"tool\": \"ls\"}"))]).await;
        let mut p = policy(api, &mock, opts(ToolCallMode::Native));
        let pr = p.propose(&start_convo(&p), &info()).await.unwrap();
        assert!(pr.message.is_none() && pr.format_error.is_some(), "{api:?}");
    }
}

#[tokio::test]
async fn a_500_then_success_is_retried() {
    for api in Api::ALL {
        let mock = Mock::start(vec![
            Reply::status(500, json!({"error": "boom"})),
            Reply::status(503, json!({"error": "loading"})),
            Reply::ok(api.tool_reply("call_1", "ls", json!({}))),
        ])
        .await;
        let mut p = policy(api, &mock, opts(ToolCallMode::Native));
        let pr = p.propose(&start_convo(&p), &info()).await.unwrap();
        assert_eq!(pr.message.unwrap().tool_calls[0].name, "ls");
        assert_eq!(mock.requests().await.len(), 3, "{api:?}");
    }
}

#[tokio::test]
async fn persistent_5xx_exhausts_retries_as_a_transient_error() {
    let api = Api::OpenAi;
    let mock = Mock::start(vec![
        Reply::status(502, json!({"error": "bad gateway"}));
        10
    ])
    .await;
    let mut o = opts(ToolCallMode::Native);
    o.http.max_retries = 2;
    let mut p = policy(api, &mock, o);
    let err = p.propose(&start_convo(&p), &info()).await.unwrap_err();
    assert!(matches!(err, ModelError::Transient(_)), "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("HTTP 502"), "{err}");
    assert_eq!(mock.requests().await.len(), 3);
}

#[tokio::test]
async fn a_429_honours_retry_after() {
    for api in Api::ALL {
        let mock = Mock::start(vec![
            Reply::status(429, json!({"error": "slow down"})).header("retry-after", "1"),
            Reply::ok(api.tool_reply("call_1", "ls", json!({}))),
        ])
        .await;
        let mut p = policy(api, &mock, opts(ToolCallMode::Native));
        let t0 = Instant::now();
        let pr = p.propose(&start_convo(&p), &info()).await.unwrap();
        assert!(pr.message.is_some());
        assert_eq!(mock.requests().await.len(), 2);
        // The backoff base is 5 ms: only Retry-After explains a 1 s wait.
        assert!(
            t0.elapsed() >= Duration::from_secs(1),
            "{api:?}: Retry-After ignored"
        );
    }
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_a_timeout_not_retried() {
    for api in Api::ALL {
        let mock = Mock::start(vec![
            Reply::ok(api.tool_reply("call_1", "ls", json!({}))).delay(Duration::from_secs(30)),
            Reply::ok(api.tool_reply("call_2", "ls", json!({}))),
        ])
        .await;
        let mut o = opts(ToolCallMode::Native);
        o.http.request_timeout = Duration::from_millis(300);
        let mut p = policy(api, &mock, o);
        let err = p.propose(&start_convo(&p), &info()).await.unwrap_err();
        assert!(matches!(err, ModelError::Timeout(_)), "{api:?}: {err}");
        assert!(err.is_retryable());
        assert_eq!(mock.requests().await.len(), 1, "timeouts are not retried");
    }
}

#[tokio::test]
async fn not_found_and_unauthorized_say_what_to_do() {
    for api in Api::ALL {
        let mock = Mock::start(vec![
            Reply::status(404, json!({"error": "model 'mock-model' not found"})),
            Reply::status(401, json!({"error": "invalid key"})),
        ])
        .await;
        let mut p = policy(api, &mock, opts(ToolCallMode::Native));
        let conv = start_convo(&p);
        let e404 = p.propose(&conv, &info()).await.unwrap_err();
        assert!(matches!(e404, ModelError::Rejected(_)) && !e404.is_retryable());
        let s = e404.to_string();
        assert!(
            s.contains("model `mock-model` not found on") && s.contains(&mock.url()),
            "{s}"
        );
        let how = match api {
            Api::OpenAi => "/v1/models`",
            Api::Ollama => "ollama list",
            Api::Anthropic => "/v1/models",
        };
        assert!(s.contains(how), "{s}");
        let e401 = p.propose(&conv, &info()).await.unwrap_err().to_string();
        let key = match api {
            Api::OpenAi => "OPENAI_API_KEY",
            Api::Ollama => "proxy",
            Api::Anthropic => "ANTHROPIC_API_KEY",
        };
        assert!(e401.contains("HTTP 401") && e401.contains(key), "{e401}");
        assert_eq!(mock.requests().await.len(), 2, "4xx are not retried");
    }
}

#[tokio::test]
async fn unreachable_server_fails_fast() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let w = OpenAiWire::with_key("m", format!("http://127.0.0.1:{port}/v1"), None);
    let mut p = RemotePolicy::new("m", Box::new(w), opts(ToolCallMode::Native)).unwrap();
    let err = p.propose(&[Message::user("x")], &info()).await.unwrap_err();
    assert!(matches!(err, ModelError::Unreachable { .. }), "{err}");
}

#[tokio::test]
async fn a_reset_connection_is_retried() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for api in Api::ALL {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let body = api.tool_reply("call_1", "ls", json!({})).to_string();
        let server = tokio::spawn(async move {
            // First connection: read the request, then close without answering.
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 65536];
            let _ = s.read(&mut buf).await;
            drop(s);
            // Second: a proper answer.
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).await.unwrap();
            2
        });
        let w: Box<dyn Wire> = match api {
            Api::OpenAi => Box::new(OpenAiWire::with_key("m", format!("http://{addr}/v1"), None)),
            Api::Ollama => Box::new(OllamaWire::new("m", format!("http://{addr}"))),
            Api::Anthropic => Box::new(AnthropicWire::with_key(
                "m",
                format!("http://{addr}"),
                Some("k".into()),
            )),
        };
        let mut p = RemotePolicy::new("m", w, opts(ToolCallMode::Native)).unwrap();
        let pr = p.propose(&[Message::user("x")], &info()).await.unwrap();
        assert_eq!(pr.message.unwrap().tool_calls[0].name, "ls", "{api:?}");
        assert_eq!(server.await.unwrap(), 2, "{api:?}");
    }
}

#[tokio::test]
async fn context_overflow_elides_harder_and_retries_once() {
    for api in Api::ALL {
        let mock = Mock::start(vec![
            Reply::status(
                400,
                json!({"error": {"message": "This model's maximum context length is 8192 tokens"}}),
            ),
            Reply::ok(api.tool_reply("call_9", "submit", json!({}))),
        ])
        .await;
        let mut p = policy(api, &mock, opts(ToolCallMode::Native));
        let mut conv = start_convo(&p);
        for i in 0..6 {
            let id = format!("call_{i}");
            conv.push(Message::assistant(
                "",
                vec![airgate::model::ToolCall {
                    id: id.clone(),
                    name: "read_file".into(),
                    arguments: json!({"path": format!("f{i}.py")}),
                }],
            ));
            conv.push(Message::tool(id, "y".repeat(2000)));
        }
        let pr = p.propose(&conv, &info()).await.unwrap();
        assert!(pr.message.is_some());
        assert!(
            pr.notes.iter().any(|n| n.contains("too long")),
            "{:?}",
            pr.notes
        );
        let reqs = mock.requests().await;
        assert_eq!(reqs.len(), 2);
        assert!(reqs[1].body.to_string().len() < reqs[0].body.to_string().len());
        assert!(reqs[1].body.to_string().contains("elided by airgate"));
        // Still tied: every result answers a call that is present.
        let msgs = api.messages(&reqs[1].body);
        let calls: Vec<String> = msgs.iter().flat_map(|m| m.2.clone()).collect();
        let results: Vec<String> = msgs.iter().filter_map(|m| m.3.clone()).collect();
        assert_eq!(calls.len(), results.len(), "{api:?}");
    }
}

#[tokio::test]
async fn repeated_overflow_is_transient_not_fatal() {
    let api = Api::OpenAi;
    let body = json!({"error": "request exceeds the available context size"});
    let mock = Mock::start(vec![
        Reply::status(400, body.clone()),
        Reply::status(400, body),
    ])
    .await;
    let mut p = policy(api, &mock, opts(ToolCallMode::Native));
    let err = p.propose(&start_convo(&p), &info()).await.unwrap_err();
    assert!(matches!(err, ModelError::Transient(_)), "{err}");
    assert!(err.to_string().contains("context_size"));
}

#[tokio::test]
async fn context_budget_elides_before_the_server_refuses() {
    let api = Api::Ollama;
    let mock = Mock::start(vec![Reply::ok(api.tool_reply("x", "submit", json!({})))]).await;
    let mut o = opts(ToolCallMode::Native);
    o.context_size = 6000;
    o.max_tokens = 500;
    o.keep_turns = 2;
    let mut p = policy(api, &mock, o);
    let mut conv = start_convo(&p);
    for i in 0..8 {
        let id = format!("call_{i}");
        conv.push(Message::assistant(
            "",
            vec![airgate::model::ToolCall {
                id: id.clone(),
                name: "read_file".into(),
                arguments: json!({"path": format!("f{i}.py")}),
            }],
        ));
        conv.push(Message::tool(id, format!("{i}").repeat(3000)));
    }
    let pr = p.propose(&conv, &info()).await.unwrap();
    assert!(
        pr.notes.iter().any(|n| n.contains("elided")),
        "{:?}",
        pr.notes
    );
    let sent = &mock.requests().await[0].body;
    assert_eq!(sent["options"]["num_ctx"], 6000);
    let msgs = sent["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), conv.len(), "structure kept");
    assert!(
        msgs[3]["content"]
            .as_str()
            .unwrap()
            .starts_with("[elided by airgate")
    );
    assert_eq!(
        msgs[msgs.len() - 1]["content"].as_str().unwrap(),
        "7".repeat(3000),
        "last turn verbatim"
    );
    assert_eq!(msgs[1]["content"], "Fix calc.py; tests fail.", "task kept");
}

#[tokio::test]
async fn usage_is_priced_from_the_table_and_unpriced_is_zero() {
    let api = Api::Anthropic;
    let mock = Mock::start(vec![
        Reply::ok(api.tool_reply("t1", "ls", json!({}))),
        Reply::ok(api.tool_reply("t2", "ls", json!({}))),
    ])
    .await;
    let mut o = opts(ToolCallMode::Native);
    o.prices = Prices {
        input_per_mtok: 3.0,
        output_per_mtok: 15.0,
        ..Prices::default()
    };
    let mut p = policy(api, &mock, o);
    let pr = p.propose(&start_convo(&p), &info()).await.unwrap();
    assert_eq!(pr.usage.prompt_tokens, 100);
    assert!((pr.usage.cost_usd - (100.0 * 3.0 + 20.0 * 15.0) / 1e6).abs() < 1e-12);
    let mut p = policy(api, &mock, opts(ToolCallMode::Native));
    let pr = p.propose(&start_convo(&p), &info()).await.unwrap();
    assert_eq!(pr.usage.cost_usd, 0.0);
    assert_eq!(pr.usage.completion_tokens, 20);
}

#[tokio::test]
async fn constrained_text_mode_sends_the_action_schema() {
    for api in [Api::OpenAi, Api::Ollama] {
        let mock = Mock::start(vec![Reply::ok(
            api.text_reply("{\"tool\": \"read_file\", \"args\": {\"path\": \"calc.py\"}}"),
        )])
        .await;
        let mut o = opts(ToolCallMode::Text);
        o.constrain_actions = true;
        let mut p = policy(api, &mock, o);
        let pr = p.propose(&start_convo(&p), &info()).await.unwrap();
        assert_eq!(pr.message.unwrap().tool_calls[0].name, "read_file");
        let body = &mock.requests().await[0].body;
        let schema = match api {
            Api::OpenAi => &body["response_format"]["json_schema"]["schema"],
            _ => &body["format"],
        };
        let variants = schema["anyOf"].as_array().expect("anyOf of actions");
        let names: Vec<&str> = variants
            .iter()
            .map(|v| v["properties"]["tool"]["const"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["ls", "read_file", "search", "str_replace", "run", "submit"]
        );
        assert_eq!(
            variants[3]["properties"]["args"]["required"],
            json!(["path", "old_str", "new_str"])
        );
        assert!(body.get("tools").is_none());
    }
}

/// Servers that cannot do native tool calls say so in their own words; in
/// `auto` mode the backend switches to the text protocol for the rest of the
/// run (teaching the format in the system prompt), without retrying a
/// refusal that will not change.
#[tokio::test]
async fn auto_mode_switches_to_text_when_the_server_refuses_tools() {
    let cases = [
        // vLLM started without --enable-auto-tool-choice
        (
            Api::OpenAi,
            400,
            json!({"object": "error", "message": "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set", "type": "BadRequestError", "code": 400}),
        ),
        // llama.cpp's server without --jinja (a 500: must not be retried)
        (
            Api::OpenAi,
            500,
            json!({"error": {"code": 500, "message": "tools param requires --jinja flag", "type": "server_error"}}),
        ),
        // Ollama with a model whose template has no tools
        (
            Api::Ollama,
            400,
            json!({"error": "registry.ollama.ai/library/gemma:2b does not support tools"}),
        ),
    ];
    for (api, status, body) in cases {
        let mock = Mock::start(vec![
            Reply::status(status, body.clone()),
            Reply::ok(
                api.text_reply("Let me look.\n```json\n{\"tool\": \"ls\", \"args\": {}}\n```"),
            ),
            Reply::ok(api.text_reply("```json\n{\"tool\": \"submit\", \"args\": {}}\n```")),
        ])
        .await;
        let mut p = policy(api, &mock, opts(ToolCallMode::Auto));
        let mut conv = start_convo(&p);
        let p1 = p.propose(&conv, &info()).await.unwrap();
        assert_eq!(p1.message.as_ref().unwrap().tool_calls[0].name, "ls");
        assert!(
            p1.notes
                .iter()
                .any(|n| n.contains("text tool-call protocol")),
            "{body}: {:?}",
            p1.notes
        );
        act(&mut conv, &p1, "a.py");
        let p2 = p.propose(&conv, &info()).await.unwrap();
        assert_eq!(p2.message.unwrap().tool_calls[0].name, "submit");
        let reqs = mock.requests().await;
        assert_eq!(reqs.len(), 3, "{body}: a refusal is not retried");
        assert_eq!(api.tool_names(&reqs[0].body).len(), 6);
        for r in &reqs[1..] {
            assert!(r.body.get("tools").is_none(), "{body}: tools sent again");
            let msgs = api.messages(&r.body);
            assert!(
                msgs[0].0 == "system" && msgs[0].1.contains("```json"),
                "{body}: the format is taught: {:?}",
                msgs[0]
            );
            assert!(msgs.iter().all(|m| m.2.is_empty() && m.3.is_none()));
        }
        // The tool result went back as text.
        let last = api.messages(&reqs[2].body);
        assert!(last.iter().any(|m| m.0 == "user" && m.1.contains("a.py")));
    }
}

/// In `native` mode the same refusal is a configuration error that says
/// how to fix it, not a transient failure.
#[tokio::test]
async fn native_mode_refused_tools_says_how_to_fix_it() {
    let api = Api::Ollama;
    let mock = Mock::start(vec![Reply::status(
        400,
        json!({"error": "registry.ollama.ai/library/gemma:2b does not support tools"}),
    )])
    .await;
    let mut p = policy(api, &mock, opts(ToolCallMode::Native));
    let conv = start_convo(&p);
    let e = p.propose(&conv, &info()).await.unwrap_err();
    assert!(
        matches!(e, ModelError::Rejected(_)) && !e.is_retryable(),
        "{e}"
    );
    let s = e.to_string();
    assert!(s.contains("tool_calls = \"auto\""), "{s}");
    assert_eq!(mock.requests().await.len(), 1);
}

/// Optional parameters a server refuses are dropped (or renamed) once, for
/// the rest of the run, and the call goes through.
#[tokio::test]
async fn refused_optional_parameters_are_adapted_once() {
    let api = Api::OpenAi;
    let ok = || Reply::ok(api.tool_reply("c", "ls", json!({})));
    let mock = Mock::start(vec![
        Reply::status(
            400,
            json!({"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.", "type": "invalid_request_error", "param": "max_tokens"}}),
        ),
        Reply::status(
            400,
            json!({"error": {"message": "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value is supported.", "param": "temperature"}}),
        ),
        ok(),
        ok(),
    ])
    .await;
    let mut p = policy(api, &mock, opts(ToolCallMode::Native));
    let conv = start_convo(&p);
    let p1 = p.propose(&conv, &info()).await.unwrap();
    assert_eq!(p1.message.unwrap().tool_calls[0].name, "ls");
    assert_eq!(p1.notes.len(), 2, "{:?}", p1.notes);
    let p2 = p.propose(&conv, &info()).await.unwrap();
    assert!(p2.notes.is_empty(), "{:?}", p2.notes);
    let reqs = mock.requests().await;
    assert_eq!(reqs.len(), 4);
    assert!(reqs[0].body.get("max_tokens").is_some());
    for r in &reqs[2..] {
        assert!(r.body.get("max_tokens").is_none());
        assert!(r.body["max_completion_tokens"].as_u64().unwrap() > 0);
        assert!(r.body.get("temperature").is_none());
        assert_eq!(api.tool_names(&r.body).len(), 6);
    }
    // An error that names no optional parameter is returned as it is.
    let mock = Mock::start(vec![Reply::status(
        400,
        json!({"error": {"message": "messages: invalid role 'robot'"}}),
    )])
    .await;
    let mut p = policy(api, &mock, opts(ToolCallMode::Native));
    let e = p.propose(&conv, &info()).await.unwrap_err();
    assert!(matches!(e, ModelError::Rejected(_)), "{e}");
    assert_eq!(mock.requests().await.len(), 1);
}

/// A server whose accept queue is full drops new connections' SYNs: the
/// connect hangs and must end at the connect timeout, not the (much longer)
/// request timeout, as a typed, non-retried timeout.
#[tokio::test]
async fn a_hanging_connect_ends_at_the_connect_timeout() {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(0).unwrap(); // never accepts
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(s)) => held.push(s),
            _ => break,
        }
    }
    let mut o = opts(ToolCallMode::Native);
    o.http.connect_timeout = Duration::from_secs(1);
    o.http.request_timeout = Duration::from_secs(30);
    let w = OpenAiWire::with_key("m", format!("http://{addr}/v1"), None);
    let mut p = RemotePolicy::new("m", Box::new(w), o).unwrap();
    let e = p.propose(&[Message::user("x")], &info()).await.unwrap_err();
    // 1 s is the connect timeout; the request timeout would say 30.
    assert!(matches!(e, ModelError::Timeout(1)), "{e}");
    drop(held);
}

/// Anthropic requests mark prompt-cache breakpoints; a compatible server
/// that refuses them gets requests without any, for the rest of the run.
/// Cache reads and writes are reported apart.
#[tokio::test]
async fn anthropic_cache_breakpoints_and_a_server_without_them() {
    let api = Api::Anthropic;
    let mut cached_reply = api.tool_reply("t2", "ls", json!({}));
    cached_reply["usage"] = json!({"input_tokens": 10, "cache_read_input_tokens": 800,
        "cache_creation_input_tokens": 190, "output_tokens": 20});
    let mock = Mock::start(vec![
        Reply::status(
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "system.0.cache_control: Extra inputs are not permitted"}}),
        ),
        Reply::ok(api.tool_reply("t1", "ls", json!({}))),
        Reply::ok(cached_reply),
    ])
    .await;
    let mut p = policy(api, &mock, opts(ToolCallMode::Native));
    let conv = start_convo(&p);
    let p1 = p.propose(&conv, &info()).await.unwrap();
    assert!(
        p1.notes.iter().any(|n| n.contains("cache_control")),
        "{:?}",
        p1.notes
    );
    let p2 = p.propose(&conv, &info()).await.unwrap();
    assert_eq!(
        (
            p2.usage.prompt_tokens,
            p2.usage.cache_read_tokens,
            p2.usage.cache_write_tokens
        ),
        (1000, 800, 190)
    );
    let reqs = mock.requests().await;
    assert_eq!(reqs.len(), 3);
    assert!(reqs[0].body.to_string().contains("cache_control"));
    for r in &reqs[1..] {
        assert!(!r.body.to_string().contains("cache_control"), "{}", r.body);
    }
}
