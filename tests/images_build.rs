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
        .arg("run")
        .args(podman_ulimit_args())
        .args(["--rm", "--network", "none", image, "bash", "-c", script])
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

    // Factory: a script teacher fixes calc-1 in its built image; the
    // verified row carries that image's digest.
    std::fs::write(
        dir.path().join("sources.toml"),
        "[[source]]\nrepo = \"airgate-test/calc\"\nlicense = \"MIT\"\n\
         [[dataset]]\nname = \"airgate-test\"\npath = \"dataset.jsonl\"\n",
    )
    .unwrap();
    let fix = serde_json::json!({"tool": "str_replace", "args": {
        "path": "calc/__init__.py",
        "old_str": "def add(a, b):\n    return a - b",
        "new_str": "def add(a, b):\n    return a + b"}});
    std::fs::write(dir.path().join("teacher.jsonl"), format!("{fix}\n")).unwrap();
    let teacher = format!("script:{}", dir.path().join("teacher.jsonl").display());
    let fac = airgate(dir.path())
        .args(["factory", "run", "--config"])
        .arg(root().join("configs/factory.toml"))
        .args(["--sources", "sources.toml", "--sandbox", "docker"])
        .args(["--dataset", "dataset.jsonl", "--instance-ids", IDS[0]])
        .args(["--teacher", &teacher, "--out", "corpus", "--json"])
        .output()
        .unwrap();
    assert!(fac.status.success(), "{}", text(&fac));
    let summary: serde_json::Value = serde_json::from_slice(&fac.stdout).unwrap();
    assert_eq!(summary["kept"], 1, "{summary}\n{}", text(&fac));
    let (_, rows) = airgate::corpus::read_corpus(&dir.path().join("corpus")).unwrap();
    assert_eq!(rows.len(), 1);
    let digest = lines.iter().find(|l| l["instance_id"] == IDS[0]).unwrap()["image_digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rows[0].instance_id, IDS[0]);
    assert_eq!(rows[0].image_digest, digest);
    assert!(
        rows[0].patch.contains("+    return a + b"),
        "{}",
        rows[0].patch
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
    let gateway = bridge_gateway();
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
        .arg("run")
        .args(podman_ulimit_args())
        .args(["--rm", "airgate/base:latest", "bash", "-c", &probe])
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

/// The host as containers on the default bridge see it: the recorded
/// gateway, else (older engines leave it out) the subnet's first address.
fn bridge_gateway() -> String {
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
    match ipam[0]["Gateway"].as_str().filter(|g| !g.is_empty()) {
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
    }
}

/// Writes `dir/file`: the fixture row `from` renamed `to` (a row of its
/// own, so a test's build leaves the other tests' images alone), and
/// `dir/specs.toml`: the fixture specs with `spec_from` replaced.
fn renamed_row(dir: &Path, from: &str, to: &str, file: &str, spec_from: &str, spec_to: &str) {
    let row = std::fs::read_to_string(dir.join("dataset.jsonl"))
        .unwrap()
        .lines()
        .find(|l| l.contains(from))
        .unwrap()
        .replace(from, to);
    std::fs::write(dir.join(file), format!("{row}\n")).unwrap();
    let specs = std::fs::read_to_string(fixture().join("specs.toml")).unwrap();
    assert!(specs.contains(spec_from), "{spec_from}");
    std::fs::write(dir.join("specs.toml"), specs.replace(spec_from, spec_to)).unwrap();
}

/// A PEP 503 index of the wheelhouse plus the probe sdist, served by
/// `python3 -m http.server` on loopback; killed on drop.
struct Index {
    child: std::process::Child,
    url: String,
    log: PathBuf,
}

impl Index {
    fn start(dir: &Path, probe_host: &str, probe_port: u16) -> Index {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/simple/");
        let root = dir.join("index");
        let ok = Command::new("python3")
            .arg(fixture().join("make_index.py"))
            .arg(&root)
            .arg(wheelhouse())
            .arg(probe_host)
            .arg(probe_port.to_string())
            .arg(&url)
            .status()
            .unwrap()
            .success();
        assert!(ok, "make_index.py failed");
        let log = dir.join("index.log");
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(&root)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Index { child, url, log }
    }

    fn requests(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--pip-index` with no wheelhouse: the fetch steps read the index (the
/// control: the index logs the downloads, the probe sdist's setup.py ran
/// and reported back through the index, and the image installs offline),
/// while the same setup.py's connection to another host port never
/// arrives (the attack: the listener counts no connection, and the probe
/// itself reports `reached=0`).
#[test]
fn builds_from_a_pip_index_reach_only_the_index() {
    require_docker!();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ensure_images();
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(s);
        }
    });
    let gateway = bridge_gateway();
    // Control for the attack: with a network, the listener is reachable.
    let control = Command::new(engine_cli())
        .arg("run")
        .args(podman_ulimit_args())
        .args(["--rm", "airgate/base:latest", "python3", "-c"])
        .arg(format!(
            "import socket; socket.create_connection(('{gateway}', {port}), timeout=5)"
        ))
        .output()
        .unwrap();
    assert!(control.status.success(), "{}", text(&control));
    let reached_before = hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(reached_before >= 1);

    let dir = tempfile::tempdir().unwrap();
    make_inputs(dir.path());
    let index = Index::start(dir.path(), &gateway, port);
    // A dataset row of its own, so this build leaves the other tests'
    // images alone.
    let id = "airgate-test__calc-index-1";
    renamed_row(
        dir.path(),
        IDS[0],
        id,
        "index.jsonl",
        "pip_packages = [\"pytest==8.3.3\"]",
        "pip_packages = [\"pytest==8.3.3\", \"airgate-probe==0.1\"]",
    );
    let out = airgate(dir.path())
        .env("AIRGATE_SWEBENCH_SPECS", dir.path().join("specs.toml"))
        .args(["images", "build", "--dataset", "index.jsonl"])
        .args(["--git-mirror", "mirror", "--pip-index", &index.url])
        .args(["--specs", "specs.toml", "--log-dir", "logs", "--force"])
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}\n{:#}",
        record(dir.path())
    );
    let rec = record(dir.path());
    assert_eq!(rec["instances"][0]["status"], "built", "{rec:#}");

    let requests = index.requests();
    assert!(requests.contains("GET /simple/six/"), "{requests}");
    assert!(requests.contains("GET /files/pip-"), "{requests}");
    assert!(
        !requests.contains("reached=1"),
        "the probe reached a host port that is not the index:\n{requests}"
    );
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        reached_before,
        "a fetch step reached a host port that is not the index"
    );
    assert!(
        requests.contains("GET /simple/probe-ran?reached=0"),
        "the probe did not run in the fetch, so the attack proves nothing:\n{requests}"
    );

    // The image installs offline from its own wheel folder.
    let image = format!("sweb.eval.x86_64.{id}:latest");
    let check = in_image(
        &image,
        "source /opt/miniconda3/bin/activate && conda activate testbed && \
         python -c 'import six, airgate_probe, calc' && \
         python -m pip install --force-reinstall -q six==1.16.0 && \
         ls /opt/airgate/wheels | grep -c . && echo OFFLINE-OK",
    );
    assert!(text(&check).contains("OFFLINE-OK"), "{}", text(&check));

    // And it grades: gold resolves, the empty patch does not.
    let val = airgate(dir.path())
        .env("AIRGATE_SWEBENCH_SPECS", dir.path().join("specs.toml"))
        .args([
            "images",
            "validate",
            "--dataset",
            "index.jsonl",
            "--out",
            "val",
        ])
        .output()
        .unwrap();
    assert_eq!(val.status.code(), Some(0), "{}", text(&val));
    let _ = Command::new(engine_cli())
        .args(["rmi", "-f", &image])
        .output();
}

/// `--apt-mirror`: a spec's `apt-pkgs` come from the Debian mirror through
/// the bridge (this test uses the public Debian mirror, which these
/// machines reach as their package source; it prints SKIP when the host
/// cannot reach it) and are installed offline; without the flag the same
/// spec is unbuildable with what to do.
#[test]
fn apt_packages_come_from_the_apt_mirror() {
    require_docker!();
    let mirror = "http://deb.debian.org/debian";
    if std::net::TcpStream::connect("deb.debian.org:80").is_err() {
        eprintln!("SKIP: {mirror} is not reachable from this host");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    ensure_images();
    let dir = tempfile::tempdir().unwrap();
    make_inputs(dir.path());
    let id = "airgate-test__calc-apt-3";
    renamed_row(
        dir.path(),
        IDS[2],
        id,
        "apt.jsonl",
        "packages = \"six pytest\"",
        "packages = \"six pytest\"\napt-pkgs = [\"tree\"]",
    );
    let build = |extra: &[&str]| {
        airgate(dir.path())
            .env("AIRGATE_SWEBENCH_SPECS", dir.path().join("specs.toml"))
            .args(["images", "build", "--dataset", "apt.jsonl"])
            .args(["--git-mirror", "mirror", "--wheelhouse"])
            .arg(wheelhouse())
            .args(["--specs", "specs.toml", "--log-dir", "logs"])
            .args(extra)
            .output()
            .unwrap()
    };
    // Without a mirror: unbuildable, saying which packages and what to do.
    let out = build(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let reason = record(dir.path())["instances"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("tree") && reason.contains("--apt-mirror"),
        "{reason}"
    );

    let out = build(&["--apt-mirror", mirror, "--force"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{:#}",
        text(&out),
        record(dir.path())
    );
    // The debs crossed the bridge (the layer build itself has no network).
    let env = record(dir.path())["instances"][0]["env_image"]
        .as_str()
        .unwrap()
        .trim_end_matches(":latest")
        .to_string();
    let log =
        std::fs::read_to_string(dir.path().join(format!("logs/env/{env}/fetch-apt.log"))).unwrap();
    assert!(
        log.contains("connections through the bridge), exit Some(0)"),
        "{log}"
    );
    assert!(!log.contains("(0 connections"), "{log}");
    let image = format!("sweb.eval.x86_64.{id}:latest");
    let check = in_image(
        &image,
        "tree --version && test ! -e /root/debs && echo APT-OK",
    );
    assert!(text(&check).contains("APT-OK"), "{}", text(&check));
    let _ = Command::new(engine_cli())
        .args(["rmi", "-f", &image])
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
