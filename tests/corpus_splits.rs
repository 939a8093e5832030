//! End-to-end tests of the corpus's two splits with the real binary on the
//! local airgate-mini instances: a solver, a failer, a cheater (spoofs the
//! test runner's output and exits) and a test tamperer. Only the solver's
//! row is verified; with `--keep-rejected` the others land in the rejected
//! Parquet split with their reasons and flags; provenance columns are
//! filled and checked; resume after `kill -9` is exact for both splits.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use airgate::corpus::{Split, read_split, sha256_hex};

use crate::common::factory::{bin, repos, teacher};
use crate::common::{dataset, root};

fn factory_cmd(repos: &Path, args: &[&str]) -> Command {
    let mut c = bin();
    c.args(["factory", "run", "--config"])
        .arg(root().join("configs/factory.toml"))
        .arg("--sources")
        .arg(root().join("configs/public_sources.toml"))
        .args(["--sandbox", "local", "--repos"])
        .arg(repos)
        .arg("--dataset")
        .arg(dataset())
        .args(args);
    c
}

fn factory(repos: &Path, args: &[&str]) -> serde_json::Value {
    let out: Output = factory_cmd(repos, args).output().unwrap();
    eprintln!(
        "factory {args:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "factory failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn keep_rejected_splits_solver_failer_cheater_and_tamperer() {
    let tmp = tempfile::tempdir().unwrap();
    let repos = repos(tmp.path());
    let out = tmp.path().join("corpus");
    let o = out.to_str().unwrap();
    for (t, kept) in [
        ("solve.jsonl", 1),
        ("wrong.jsonl", 0),
        ("cheat.jsonl", 0),
        ("tamper.jsonl", 0),
    ] {
        let s = factory(
            &repos,
            &[
                "--teacher",
                &teacher(t),
                "--out",
                o,
                "--instance-ids",
                "airgate__mini-1",
                "--keep-rejected",
                "--json",
            ],
        );
        assert_eq!(s["kept"], kept, "{t}: {s}");
    }
    let (m, verified) = read_split(&out, Split::Verified).unwrap();
    assert_eq!(verified.len(), 1);
    let r = &verified[0];
    assert!(r.model.ends_with("solve.jsonl"), "{}", r.model);
    assert!(r.flags.is_empty(), "{:?}", r.flags);
    // provenance
    let ds_sha = sha256_hex(&std::fs::read(dataset()).unwrap());
    assert_eq!(r.dataset_sha256, ds_sha);
    assert_eq!(r.teacher_spec, teacher("solve.jsonl"));
    assert_eq!(r.sampling, r#"{"kind":"deterministic"}"#);
    assert_eq!(r.sandbox, "local");
    assert_eq!(r.image_digest, "", "the local sandbox has no image");
    assert_eq!(r.verifier_mode, "strict");
    assert!(!r.engine_commit.is_empty());
    assert_eq!(r.engine_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        (r.verify_targets_passed, r.verify_targets_total),
        (1, 1),
        "{r:?}"
    );
    assert!(r.verify_baseline_total > 0 && r.verify_baseline_kept == r.verify_baseline_total);
    assert!(r.verify_runs >= 1);
    assert_eq!(r.patch_sha256, sha256_hex(r.patch.as_bytes()));
    assert_eq!(
        m.allowlist_sha256,
        sha256_hex(&std::fs::read(root().join("configs/public_sources.toml")).unwrap())
    );
    // Each run's teacher measured the instance: the last (the tamperer) never solved it.
    let d = m.instances["airgate__mini-1"];
    assert_eq!((d.samples_run, d.verified), (1, 0), "{d:?}");

    let (_, rejected) = read_split(&out, Split::Rejected).unwrap();
    let by_teacher = |name: &str| {
        rejected
            .iter()
            .find(|r| r.model.ends_with(name))
            .unwrap_or_else(|| panic!("no rejected row of {name}: {rejected:?}"))
    };
    assert_eq!(rejected.len(), 3, "{rejected:?}");
    assert_eq!(by_teacher("wrong.jsonl").reason, "unresolved");
    let cheat = by_teacher("cheat.jsonl");
    assert_eq!(cheat.reason, "flagged");
    assert!(
        cheat.flags.iter().any(|f| f.contains("exits_process")),
        "{:?}",
        cheat.flags
    );
    assert!(cheat.patch.contains("os._exit"), "{}", cheat.patch);
    assert_eq!(by_teacher("tamper.jsonl").reason, "tampered_tests");
    for x in &rejected {
        assert!(!x.resolved);
        assert_ne!(x.trajectory_id, r.trajectory_id);
    }
    ok(bin().args(["corpus", "verify"]).arg(&out));

    let st: serde_json::Value =
        serde_json::from_str(&ok(bin().args(["corpus", "stats", "--json"]).arg(&out))).unwrap();
    assert_eq!(st["rows"], 1);
    assert_eq!(st["rejected_rows"], 3);
    assert_eq!(st["rejected_reasons"]["flagged"], 1);

    let jl = tmp.path().join("rejected.jsonl");
    ok(bin()
        .args(["corpus", "export", "--split", "rejected", "--out"])
        .arg(&jl)
        .arg(&out));
    assert_eq!(std::fs::read_to_string(&jl).unwrap().lines().count(), 3);

    let hf = tmp.path().join("hf");
    ok(bin()
        .args(["corpus", "export", "--format", "parquet", "--out"])
        .arg(&hf)
        .arg(&out));
    let card = std::fs::read_to_string(hf.join("README.md")).unwrap();
    assert!(card.starts_with("---\nlicense:\n- other\n"), "{card}");
    assert!(card.contains("config_name: rejected"));
    assert!(card.contains("| `flagged` | 1 |"), "{card}");
    assert!(card.contains(&m.allowlist_sha256));

    // A changed provenance value is caught even with a consistent manifest.
    let forged = tmp.path().join("forged");
    let mut w = airgate::corpus::CorpusWriter::open(&forged).unwrap();
    let mut f = r.clone();
    f.sandbox = "docker".into();
    w.insert(f).unwrap();
    w.finish().unwrap();
    let v = bin()
        .args(["corpus", "verify"])
        .arg(&forged)
        .output()
        .unwrap();
    assert_eq!(v.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("provenance_sha256"),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
}

/// (instance, trajectory id) of every row of a split; no duplicates.
fn ids(dir: &Path, split: Split) -> BTreeSet<(String, String)> {
    let (_, rows) = read_split(dir, split).unwrap();
    let set: BTreeSet<_> = rows
        .iter()
        .map(|r| (r.instance_id.clone(), r.trajectory_id.clone()))
        .collect();
    assert_eq!(set.len(), rows.len(), "duplicate rows");
    set
}

#[test]
fn resume_after_kill_9_is_exact_for_both_splits() {
    let tmp = tempfile::tempdir().unwrap();
    let repos = repos(tmp.path());
    let t = teacher("wrong.jsonl");
    let args = |out: &Path| -> Vec<String> {
        [
            "--teacher",
            &t,
            "--out",
            out.to_str().unwrap(),
            "--workers",
            "2",
            "--samples",
            "2",
            "--flush-rows",
            "1",
            "--keep-rejected",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let full = tmp.path().join("full");
    let a = args(&full);
    let mut a: Vec<&str> = a.iter().map(String::as_str).collect();
    a.push("--json");
    let s = factory(&repos, &a);
    assert_eq!(s["kept"], 0, "{s}");
    let want = ids(&full, Split::Rejected);
    assert_eq!(want.len(), 3, "{want:?}");
    // every instance ran both samples and solved none (noop-1 never ran)
    let m = airgate::corpus::CorpusManifest::load(&full).unwrap();
    assert_eq!(m.instances.len(), 4, "{:?}", m.instances);
    assert_eq!(m.instances["airgate__mini-1"].samples_run, 2);
    assert_eq!(m.instances["airgate__mini-1"].solve_rate, 0.0);
    assert_eq!(m.instances["airgate__noop-1"].samples_run, 0);

    let killed = tmp.path().join("killed");
    let a = args(&killed);
    let mut child = factory_cmd(&repos, &a.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let manifest = killed.join("rejected/manifest.json");
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
    let before = airgate::corpus::CorpusManifest::load(&killed.join("rejected"))
        .unwrap()
        .rows;
    assert!(
        (1..3).contains(&before),
        "killed with {before} rejected rows"
    );
    let mut a: Vec<&str> = a.iter().map(String::as_str).collect();
    a.push("--json");
    let s = factory(&repos, &a);
    assert!(s["resumed"].as_u64().unwrap() >= before, "{s}");
    assert_eq!(ids(&killed, Split::Rejected), want);
    assert!(ids(&killed, Split::Verified).is_empty());
    ok(bin().args(["corpus", "verify"]).arg(&killed));
    // a rerun of the finished corpus runs nothing
    let s = factory(&repos, &a);
    assert_eq!(s["episodes"], 0, "{s}");
}
