//! `airgate images build` from local mirrors (issue 14), end to end with the
//! real Docker engine: a git mirror and a dataset made by
//! `tests/fixtures/images_build/make_mirror.sh`, the wheelhouse of
//! `.ci/setup.d/15-wheelhouse.sh`, then build → validate → eval.
//!
//! Without a Docker socket these tests print SKIP and return.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use crate::common;
use crate::common::docker::*;

/// The image builds share the daemon's image names: run them one by one.
static SERIAL: Mutex<()> = Mutex::new(());

fn fixture() -> PathBuf {
    root().join("tests/fixtures/images_build")
}

fn wheelhouse() -> PathBuf {
    let dir = root().join(".airgate/wheelhouse");
    assert!(
        dir.join(".complete-v1").exists(),
        "no wheelhouse at {}: run .ci/setup.d/15-wheelhouse.sh (scripts/test.sh does)",
        dir.display()
    );
    dir
}

fn airgate(dir: &Path) -> Command {
    let mut c = common::airgate();
    c.current_dir(dir)
        .env("AIRGATE_SWEBENCH_SPECS", fixture().join("specs.toml"));
    c
}

fn make_inputs(dir: &Path) {
    let ok = Command::new("bash")
        .arg(fixture().join("make_mirror.sh"))
        .arg(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "make_mirror.sh failed");
}

fn build(dir: &Path, extra: &[&str]) -> Output {
    airgate(dir)
        .args(["images", "build", "--dataset", "dataset.jsonl"])
        .args(["--git-mirror", "mirror", "--wheelhouse"])
        .arg(wheelhouse())
        .arg("--specs")
        .arg(fixture().join("specs.toml"))
        .args(["--log-dir", "logs", "--max-workers", "2"])
        .args(extra)
        .output()
        .unwrap()
}

fn record(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("logs/build.json")).unwrap()).unwrap()
}

fn in_image(image: &str, script: &str) -> Output {
    Command::new(engine_cli())
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            image,
            "bash",
            "-c",
            script,
        ])
        .output()
        .unwrap()
}

const IDS: [&str; 3] = [
    "airgate-test__calc-1",
    "airgate-test__calc-2",
    "airgate-test__calc-3",
];

fn remove_images() {
    for id in IDS {
        let _ = Command::new(engine_cli())
            .args(["rmi", "-f", &format!("sweb.eval.x86_64.{id}:latest")])
            .output();
    }
}

/// The whole path: three instances (two share a spec) build into three
/// instance images on two env images; the images have the official
/// layout, a conda-style full interpreter, an offline pip.conf and no
/// history after `base_commit`; a second build skips them; `images
/// validate` proves gold resolves and the empty patch does not; `swebench
/// eval` grades gold and a wrong patch.
#[test]
fn build_validate_eval_from_mirrors() {
    require_docker!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ensure_images();
    let dir = tempfile::tempdir().unwrap();
    make_inputs(dir.path());
    remove_images();

    let out = build(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rec = record(dir.path());
    let lines = rec["instances"].as_array().unwrap();
    assert_eq!(lines.len(), 3);
    for l in lines {
        assert_eq!(l["status"], "built", "{rec:#}");
        assert!(l["image_digest"].as_str().unwrap().starts_with("sha256:"));
    }
    assert_eq!(lines[0]["env_image"], lines[1]["env_image"], "{rec:#}");
    assert_ne!(lines[0]["env_image"], lines[2]["env_image"], "{rec:#}");
    assert_eq!(rec["envs"].as_object().unwrap().len(), 2, "{rec:#}");
    // The generated Dockerfiles stay next to the logs, for a plain docker build.
    let env_image = lines[0]["env_image"].as_str().unwrap();
    let env_dir = dir
        .path()
        .join("logs/env")
        .join(env_image.trim_end_matches(":latest"));
    // (An env image already built by an earlier run is skipped, not rebuilt.)
    if rec["envs"][env_image]["status"] == "built" {
        assert!(env_dir.join("context/Dockerfile").is_file(), "{rec:#}");
        assert!(env_dir.join("build_image.log").is_file());
    }
    let inst_dir = dir
        .path()
        .join("logs/instances/sweb.eval.x86_64.airgate-test__calc-1");
    assert!(inst_dir.join("context/Dockerfile").is_file(), "{rec:#}");
    assert!(inst_dir.join("context/setup_repo.sh").is_file());

    // Labels: the dataset row and the spec the image was built from.
    let inspect = Command::new(engine_cli())
        .args([
            "image",
            "inspect",
            "--format",
            "{{json .Config.Labels}}",
            "sweb.eval.x86_64.airgate-test__calc-1:latest",
        ])
        .output()
        .unwrap();
    let labels: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(labels["airgate.dataset_row_sha256"], lines[0]["row_sha256"]);
    assert_eq!(labels["airgate.spec_sha256"], lines[0]["spec_sha256"]);

    // Layout: /testbed at base_commit plus the SWE-bench commit; the fix
    // commits are not reachable; a full interpreter (not a venv) behind the
    // conda activation; pip offline against the image's own wheels.
    let ds: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("dataset.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let base1 = ds[0]["base_commit"].as_str().unwrap();
    let probe = in_image(
        "sweb.eval.x86_64.airgate-test__calc-1:latest",
        "set -e; cd /testbed; git rev-parse HEAD~1; git log -1 --format=%s; \
         echo LOG; git log --all --format=%s; git tag; echo END; \
         source /opt/miniconda3/bin/activate; conda activate testbed; \
         python -c 'import sys, six, calc; print(sys.prefix, sys.base_prefix == sys.prefix)'; \
         echo PYTEST=$(command -v pytest); \
         cat /etc/pip.conf; python -m pip download --no-deps -q -d /tmp/w six==1.16.0 && echo PIP_OK",
    );
    let said = text(&probe);
    assert!(probe.status.success(), "{said}");
    assert!(said.starts_with(&format!("{base1}\nSWE-bench\n")), "{said}");
    let log = said
        .split("LOG")
        .nth(1)
        .unwrap()
        .split("END")
        .next()
        .unwrap();
    assert!(!log.contains("FUTURE_FIX_MARKER"), "the fix leaked: {log}");
    assert!(log.contains("readme"), "{log}");
    assert!(
        log.contains("v1.0") && !log.contains("v1.1") && !log.contains("v2.0"),
        "{log}"
    );
    assert!(said.contains("/opt/miniconda3/envs/testbed True"), "{said}");
    assert!(said.contains("no-index = true"), "{said}");
    assert!(
        said.contains("PYTEST=/opt/miniconda3/envs/testbed/bin/pytest"),
        "{said}"
    );
    assert!(said.contains("PIP_OK"), "{said}");

    // Resumable: nothing matching is rebuilt.
    let again = build(dir.path(), &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    for l in record(dir.path())["instances"].as_array().unwrap() {
        assert_eq!(l["status"], "skipped", "{}", text(&again));
    }

    // Validate: gold resolves, empty does not, for every built image.
    let val = airgate(dir.path())
        .args(["images", "validate", "--dataset", "dataset.jsonl"])
        .args(["--out", "val", "--max-workers", "2"])
        .output()
        .unwrap();
    assert_eq!(val.status.code(), Some(0), "{}", text(&val));
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("val/validation.json")).unwrap(),
    )
    .unwrap();
    for id in IDS {
        assert_eq!(v["instances"][id]["valid"], true, "{v:#}");
    }

    // Eval: gold resolves; a wrong patch that applies (it edits the
    // README) does not.
    let wrong = "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1 +1,2 @@\n # calc\n+wrong fix\n";
    let preds = serde_json::json!([
        {"instance_id": IDS[0], "model_name_or_path": "m", "model_patch": ds[0]["patch"]},
        {"instance_id": IDS[1], "model_name_or_path": "m", "model_patch": wrong},
    ]);
    std::fs::write(dir.path().join("preds.json"), preds.to_string()).unwrap();
    let eval = airgate(dir.path())
        .args(["swebench", "eval", "--dataset", "dataset.jsonl"])
        .args(["--predictions", "preds.json", "--run-id", "mirrors"])
        .args(["--instance-ids", IDS[0], IDS[1]])
        .output()
        .unwrap();
    let said = text(&eval);
    assert!(eval.status.success(), "{said}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("m.mirrors.json")).unwrap())
            .unwrap();
    assert_eq!(
        report["resolved_ids"],
        serde_json::json!([IDS[0]]),
        "{report:#}"
    );
    assert_eq!(
        report["unresolved_ids"],
        serde_json::json!([IDS[1]]),
        "{report:#}"
    );
}

/// Attack: a spec step that tries to reach the host during the build finds
/// no network, so the build fails and says so. Control: the same probe from
/// a container on the default network connects, so the probe can succeed.
#[test]
fn builds_reach_no_network() {
    require_docker!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ensure_images();
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The bridge's gateway is the host: as recorded, else (older engines
    // leave it out) the first address of the bridge's subnet.
    let ipam = String::from_utf8(
        Command::new(engine_cli())
            .args([
                "network",
                "inspect",
                "bridge",
                "--format",
                "{{json .IPAM.Config}}",
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let ipam: serde_json::Value = serde_json::from_str(ipam.trim()).unwrap();
    let gateway = match ipam[0]["Gateway"].as_str().filter(|g| !g.is_empty()) {
        Some(g) => g.to_string(),
        None => {
            let subnet = ipam[0]["Subnet"].as_str().unwrap();
            let base = subnet.split('/').next().unwrap();
            let mut octets: Vec<u8> = base.split('.').map(|o| o.parse().unwrap()).collect();
            octets[3] += 1;
            octets
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(".")
        }
    };
    let probe = format!(
        "python3 -c \"import socket; socket.create_connection(('{gateway}', {port}), timeout=5); print('REACHED')\""
    );
    std::thread::spawn(move || {
        for s in listener.incoming() {
            drop(s);
        }
    });
    // Control: with a network, the probe reaches the host.
    let control = Command::new(engine_cli())
        .args(["run", "--rm", "airgate/base:latest", "bash", "-c", &probe])
        .output()
        .unwrap();
    assert!(
        text(&control).contains("REACHED"),
        "control probe failed, so the attack proves nothing: {}",
        text(&control)
    );

    let dir = tempfile::tempdir().unwrap();
    make_inputs(dir.path());
    let specs = std::fs::read_to_string(fixture().join("specs.toml"))
        .unwrap()
        .replace(
            "packages = \"six pytest\"",
            &format!(
                "packages = \"six pytest\"\npre_install = [{}]",
                toml_str(&probe)
            ),
        );
    std::fs::write(dir.path().join("specs.toml"), specs).unwrap();
    let out = airgate(dir.path())
        .args(["images", "build", "--dataset", "dataset.jsonl"])
        .args(["--git-mirror", "mirror", "--wheelhouse"])
        .arg(wheelhouse())
        .args(["--specs", "specs.toml", "--log-dir", "logs", "--force"])
        .args(["--instance-ids", IDS[2]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rec = record(dir.path());
    let line = &rec["instances"][0];
    assert_eq!(line["status"], "failed", "{rec:#}");
    let log = std::fs::read_to_string(line["log"].as_str().unwrap()).unwrap();
    // (`set -x` echoes the probe's source; only a printed line counts.)
    assert!(!log.lines().any(|l| l.trim() == "REACHED"), "{log}");
    assert!(
        log.contains("Network is unreachable") || log.contains("OSError"),
        "{log}"
    );
    let _ = Command::new(engine_cli())
        .args(["rmi", "-f", &format!("sweb.eval.x86_64.{}:latest", IDS[2])])
        .output();
}

fn toml_str(s: &str) -> String {
    format!("'''{s}'''")
}

/// A spec that needs an interpreter nobody provides is unbuildable, named
/// with what to do; nothing is substituted. A conda spec says it needs
/// conda. The buildable instance in the same run still builds.
#[test]
fn unbuildable_specs_are_named_with_what_to_do() {
    require_docker!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ensure_images();
    let dir = tempfile::tempdir().unwrap();
    make_inputs(dir.path());
    let specs = std::fs::read_to_string(fixture().join("specs.toml"))
        .unwrap()
        .replace(
            "[repos.\"airgate-test/calc\".versions.\"2.0\"]\npython = \"3.11\"",
            "[repos.\"airgate-test/calc\".versions.\"2.0\"]\npython = \"3.6\"",
        );
    std::fs::write(dir.path().join("specs.toml"), &specs).unwrap();
    let interp = dir.path().join("interp");
    std::fs::create_dir_all(&interp).unwrap();
    let out = airgate(dir.path())
        .args(["images", "build", "--dataset", "dataset.jsonl"])
        .args(["--git-mirror", "mirror", "--wheelhouse"])
        .arg(wheelhouse())
        .args(["--specs", "specs.toml", "--log-dir", "logs"])
        .args(["--interpreters", "interp"])
        .args(["--instance-ids", IDS[0], IDS[2]])
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let rec = record(dir.path());
    let lines = rec["instances"].as_array().unwrap();
    assert!(
        matches!(lines[0]["status"].as_str(), Some("built" | "skipped")),
        "{rec:#}"
    );
    assert_eq!(lines[1]["status"], "unbuildable", "{rec:#}");
    let reason = lines[1]["reason"].as_str().unwrap();
    assert!(
        reason.contains("Python 3.6") && reason.contains("--interpreters"),
        "{reason}"
    );
    assert!(said.contains("UNBUILDABLE"), "{said}");
    assert!(
        !dir.path()
            .join("logs/instances/sweb.eval.x86_64.airgate-test__calc-3")
            .exists()
    );
}
