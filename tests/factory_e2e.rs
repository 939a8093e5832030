//! End-to-end tests of `airgate factory run` and `airgate corpus` with the
//! real binary, on the airgate-mini SWE-bench-style instances
//! (`datasets/airgate-mini.jsonl`) and `script:` teachers.
//!
//! The local-sandbox tests build the instances' git repo with
//! `tests/fixtures/docker_mini/build.sh --repo`; the Docker test uses the
//! instance images built by `.ci/setup.d/10-docker-images.sh`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::common::factory::{bin, repos, teacher};
use crate::common::{dataset, root};

fn factory(args: &[&str], sandbox: &[&str]) -> Output {
    let out = bin()
        .args(["factory", "run", "--config"])
        .arg(root().join("configs/factory.toml"))
        .arg("--sources")
        .arg(root().join("configs/public_sources.toml"))
        .args(sandbox)
        .args(args)
        .output()
        .unwrap();
    eprintln!(
        "factory {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn local(repos: &Path) -> Vec<String> {
    vec![
        "--sandbox".into(),
        "local".into(),
        "--repos".into(),
        repos.display().to_string(),
    ]
}

fn summary(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "factory failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (instance_id, sample, trajectory_id) of every row, via `corpus export`-free
/// reading: the manifest's segments decoded by the library.
/// The corpus as (instance, trajectory id). The sample index is left out on
/// purpose: with two workers, both samples of an instance run at once and
/// whichever reaches the gate first is kept (the other is a duplicate), so
/// the surviving sample number depends on scheduling, not on correctness.
fn rows(dir: &Path) -> BTreeSet<(String, String)> {
    let (_, rows) = airgate::corpus::read_corpus(dir).unwrap();
    let set: BTreeSet<_> = rows
        .iter()
        .map(|r| (r.instance_id.clone(), r.trajectory_id.clone()))
        .collect();
    assert_eq!(set.len(), rows.len(), "duplicate rows");
    set
}

fn verify_ok(dir: &Path) {
    let out = bin().args(["corpus", "verify"]).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rejected_reasons(dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir.join("rejected/rejected.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["instance_id"].as_str().unwrap().to_string(),
                v["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Solver, wrong fix and test tamperer on one instance into one corpus:
/// only the solver's row lands; the others are in rejected/ with reasons.
fn three_teachers(sandbox: &[&str], out: &Path) {
    for (t, kept) in [("solve.jsonl", 1), ("wrong.jsonl", 0), ("tamper.jsonl", 0)] {
        let o = factory(
            &[
                "--dataset",
                dataset().to_str().unwrap(),
                "--teacher",
                &teacher(t),
                "--out",
                out.to_str().unwrap(),
                "--instance-ids",
                "airgate__mini-1",
                "--json",
            ],
            sandbox,
        );
        let s = summary(&o);
        assert_eq!(s["kept"], kept, "{t}: {s}");
    }
    let (_, rows) = airgate::corpus::read_corpus(out).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert!(r.model.ends_with("solve.jsonl"), "{}", r.model);
    assert_eq!(r.instance_id, "airgate__mini-1");
    assert_eq!(r.repo, "airgate/mini");
    assert_eq!(r.provenance, "public");
    assert_eq!(r.license, "LicenseRef-airgate-fixtures");
    assert_eq!(r.dataset, "airgate-mini");
    assert!(r.resolved);
    assert!(r.patch.contains("+        return hi"), "{}", r.patch);
    // messages: OpenAI chat with tool calls and results tied by id; the
    // hidden test patch never reaches the agent
    let msgs: serde_json::Value = serde_json::from_str(&r.messages).unwrap();
    let msgs = msgs.as_array().unwrap();
    assert_eq!(msgs[0]["role"], "system");
    let call = msgs
        .iter()
        .find(|m| m["tool_calls"].is_array())
        .expect("a tool call");
    let id = call["tool_calls"][0]["id"].as_str().unwrap();
    assert!(
        msgs.iter()
            .any(|m| m["role"] == "tool" && m["tool_call_id"] == id)
    );
    assert!(
        !r.messages.contains("test_clamp_upper"),
        "test patch leaked"
    );
    let tools: serde_json::Value = serde_json::from_str(&r.tools).unwrap();
    assert!(
        tools
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["name"] == "str_replace")
    );
    let reasons = rejected_reasons(out);
    assert!(
        reasons.contains(&("airgate__mini-1".into(), "unresolved".into())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("airgate__mini-1".into(), "tampered_tests".into())),
        "{reasons:?}"
    );
    // A5: the wrong teacher's first attempt (its real, wrong patch) is on
    // record, not only the empty resubmit that ended the episode.
    let text = std::fs::read_to_string(out.join("rejected/rejected.jsonl")).unwrap();
    let wrong: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["reason"] == "unresolved")
        .unwrap();
    let attempts = wrong["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{wrong}");
    assert_eq!(attempts[0]["index"], 1);
    assert!(
        attempts[0]["patch"]
            .as_str()
            .unwrap()
            .contains("+        return lo"),
        "{wrong}"
    );
    assert_eq!(attempts[0]["gate_passed"], false, "{wrong}");
    let last = attempts.last().unwrap();
    assert_eq!(wrong["patch"], last["patch"]);
    verify_ok(out);
}

#[test]
fn local_only_the_solvers_rows_land() {
    let tmp = tempfile::tempdir().unwrap();
    let repos = repos(tmp.path());
    let sb = local(&repos);
    let sb: Vec<&str> = sb.iter().map(String::as_str).collect();
    three_teachers(&sb, &tmp.path().join("corpus"));
}

#[test]
fn docker_only_the_solvers_rows_land() {
    let tmp = tempfile::tempdir().unwrap();
    three_teachers(&["--sandbox", "docker"], &tmp.path().join("corpus"));
}

#[test]
fn resume_after_kill_9_shards_and_merge_match_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let repos = repos(tmp.path());
    let sb = local(&repos);
    let sb: Vec<&str> = sb.iter().map(String::as_str).collect();
    let ds = dataset();
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "--dataset",
            ds.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--workers",
            "2",
            "--samples",
            "2",
            "--flush-rows",
            "1",
            "--json",
        ];
        args.extend_from_slice(extra);
        factory(&args, &sb)
    };
    let t = teacher("solve.jsonl");

    // The reference: one uninterrupted run. 4 instances × 2 samples; the
    // script is deterministic, so sample 1 repeats sample 0's patch and is
    // deduplicated. airgate__noop-1 resolves with the empty patch: both its
    // jobs are rejected as broken, before any teacher call.
    let full = tmp.path().join("full");
    let s = summary(&run(&full, &["--teacher", &t]));
    assert_eq!(
        (s["jobs"].as_u64(), s["kept"].as_u64()),
        (Some(8), Some(3)),
        "{s}"
    );
    assert_eq!(s["duplicates"], 3);
    assert_eq!(s["broken"], 2);
    assert!(
        rejected_reasons(&full).contains(&("airgate__noop-1".into(), "broken_instance".into()))
    );
    let want = rows(&full);
    assert_eq!(want.len(), 3);
    verify_ok(&full);

    // Rerunning a finished corpus does nothing.
    let s = summary(&run(&full, &["--teacher", &t]));
    assert_eq!(
        (s["episodes"].as_u64(), s["resumed"].as_u64()),
        (Some(0), Some(8)),
        "{s}"
    );

    // kill -9 once the first segment is published, then resume.
    let killed = tmp.path().join("killed");
    let mut child = bin()
        .args(["factory", "run", "--config"])
        .arg(root().join("configs/factory.toml"))
        .arg("--sources")
        .arg(root().join("configs/public_sources.toml"))
        .args(&sb)
        .args(["--dataset", ds.to_str().unwrap(), "--out"])
        .arg(&killed)
        .args([
            "--workers",
            "2",
            "--samples",
            "2",
            "--flush-rows",
            "1",
            "--teacher",
            &t,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let manifest = killed.join("manifest.json");
    loop {
        if manifest.is_file() || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let finished_early = child.try_wait().unwrap().is_some();
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    assert!(!finished_early, "the run ended before it could be killed");
    let before = airgate::corpus::CorpusManifest::load(&killed).unwrap().rows;
    assert!((1..3).contains(&before), "killed with {before} rows");
    let s = summary(&run(&killed, &["--teacher", &t]));
    assert!(s["resumed"].as_u64().unwrap() >= before, "{s}");
    assert!(s["episodes"].as_u64().unwrap() <= 8 - before, "{s}");
    assert_eq!(rows(&killed), want);
    verify_ok(&killed);

    // Shards 0/2 and 1/2 partition the instances; merged, they equal the full run.
    let (a, b, m) = (
        tmp.path().join("s0"),
        tmp.path().join("s1"),
        tmp.path().join("merged"),
    );
    summary(&run(&a, &["--teacher", &t, "--shard", "0/2"]));
    summary(&run(&b, &["--teacher", &t, "--shard", "1/2"]));
    let (ra, rb) = (rows(&a), rows(&b));
    assert!(ra.is_disjoint(&rb));
    let out = bin()
        .args(["corpus", "merge"])
        .args([&a, &b, &full])
        .arg("--out")
        .arg(&m)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 duplicates dropped"), "{text}");
    assert_eq!(rows(&m), want);
    verify_ok(&m);

    // --max-per-instance 0 keeps nothing new and records caps.
    let capped = tmp.path().join("capped");
    let s = summary(&run(&capped, &["--teacher", &t, "--max-per-instance", "0"]));
    assert_eq!(
        (s["kept"].as_u64(), s["capped"].as_u64()),
        (Some(0), Some(8)),
        "{s}"
    );
}

#[test]
fn non_public_sources_are_refused_before_any_model_call() {
    let tmp = tempfile::tempdir().unwrap();
    // The teacher points at a port nothing listens on: reaching it would be
    // a different error than the refusal.
    let teacher = "openai:m@http://127.0.0.1:9/v1";
    // 1. a dataset that is not declared public
    let private = tmp.path().join("customer.jsonl");
    std::fs::copy(dataset(), &private).unwrap();
    let out_dir = tmp.path().join("out");
    let o = factory(
        &[
            "--dataset",
            private.to_str().unwrap(),
            "--teacher",
            teacher,
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &["--sandbox", "instant"],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("customer.jsonl") && err.contains("public_sources.toml"),
        "{err}"
    );
    assert!(!out_dir.exists());

    // 2. a declared dataset whose repo is not on the allowlist
    let sources = tmp.path().join("sources.toml");
    std::fs::write(
        &sources,
        "[[source]]\nrepo = \"django/django\"\nlicense = \"BSD-3-Clause\"\n[[dataset]]\nname = \"x\"\npath = \"*.jsonl\"\n",
    )
    .unwrap();
    let o = bin()
        .args(["factory", "run", "--sandbox", "instant", "--sources"])
        .arg(&sources)
        .arg("--dataset")
        .arg(&private)
        .args(["--teacher", teacher, "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("airgate__mini-1")
            && err.contains("sources.toml")
            && err.contains("allowlist"),
        "{err}"
    );
    assert!(!out_dir.exists());
}

#[test]
fn corpus_commands_stats_export_and_verify_catches_a_flipped_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let repos = repos(tmp.path());
    let sb = local(&repos);
    let sb: Vec<&str> = sb.iter().map(String::as_str).collect();
    let out = tmp.path().join("c");
    let s = summary(&factory(
        &[
            "--dataset",
            dataset().to_str().unwrap(),
            "--teacher",
            &teacher("solve.jsonl"),
            "--out",
            out.to_str().unwrap(),
            "--workers",
            "2",
            "--flush-rows",
            "2",
            "--json",
        ],
        &sb,
    ));
    // airgate__noop-1's empty patch resolves it: a broken instance, never used.
    assert_eq!(
        (s["kept"].as_u64(), s["broken"].as_u64()),
        (Some(3), Some(1)),
        "{s}"
    );
    verify_ok(&out);

    let st = bin().args(["corpus", "stats"]).arg(&out).output().unwrap();
    let text = String::from_utf8_lossy(&st.stdout);
    assert!(st.status.success());
    assert!(text.contains("rows:              3"), "{text}");
    assert!(text.contains("airgate/mini"), "{text}");
    let st = bin()
        .args(["corpus", "stats", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(
        (v["instances"].as_u64(), v["repos"].as_u64()),
        (Some(3), Some(1))
    );

    for format in ["sft-openai", "sharegpt"] {
        let f = tmp.path().join(format!("{format}.jsonl"));
        let o = bin()
            .args(["corpus", "export", "--format", format, "--out"])
            .arg(&f)
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&f)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        if format == "sft-openai" {
            assert!(lines[0]["messages"].is_array() && lines[0]["tools"].is_array());
        } else {
            assert!(lines[0]["conversations"].is_array());
        }
    }
    let o = bin()
        .args([
            "corpus",
            "export",
            "--format",
            "alpaca",
            "--out",
            "/dev/null",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));

    // flip one byte in the middle of a segment
    let seg = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let o = bin().args(["corpus", "verify"]).arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("MISMATCH") && text.contains("sha256"),
        "{text}"
    );
}

/// `--max-wall 0`: the wall budget is spent before the first attempt, so
/// the episode is rejected and `rejected.jsonl` says which budget ended
/// it. The control, without a budget, keeps the solver's row and records
/// no budget. Both print per-step progress lines prefixed with the episode
/// (stderr is not a terminal here).
#[test]
fn a_spent_wall_budget_is_recorded_per_episode() {
    let tmp = tempfile::tempdir().unwrap();
    let repos = repos(tmp.path());
    let sb = local(&repos);
    let sb: Vec<&str> = sb.iter().map(String::as_str).collect();
    let data = dataset();
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "--dataset",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--instance-ids",
            "airgate__mini-1",
            "--json",
        ];
        let t = teacher("solve.jsonl");
        args.extend(["--teacher", t.as_str()]);
        args.extend(extra);
        let o = factory(&args, &sb);
        (summary(&o), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let spent = tmp.path().join("spent");
    let (s, err) = run(&spent, &["--max-wall", "0"]);
    assert_eq!(s["kept"], 0, "{s}");
    let text = std::fs::read_to_string(spent.join("rejected/rejected.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["budget"], "wall", "{line}");
    assert!(
        err.contains("airgate__mini-1 s0: episode ended: gate_held"),
        "{err}"
    );

    let control = tmp.path().join("control");
    let (s, err) = run(&control, &[]);
    assert_eq!(s["kept"], 1, "{s}");
    assert!(
        err.contains("airgate__mini-1 s0: attempt 1 step 1: "),
        "{err}"
    );
    assert!(
        err.contains("airgate__mini-1 s0: attempt 1 gate: tests pass"),
        "{err}"
    );
    assert!(
        err.contains("airgate__mini-1 s0: episode ended: verified"),
        "{err}"
    );
}
