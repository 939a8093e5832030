//! Helpers shared by the Docker tests (`docker_*`, `images_build`,
//! `swebench_strict`): the engine under test, the fixture images, the
//! airgate-mini dataset, containers left behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

pub use super::{dataset, root, text};

/// Skips (with a visible message) only when there is no Docker socket;
/// otherwise makes sure the fixture images exist.
macro_rules! require_docker {
    () => {
        if !$crate::common::docker::docker_socket_present() {
            eprintln!(
                "SKIP: no Docker socket (/var/run/docker.sock or DOCKER_HOST); docker test not run"
            );
            return;
        }
        $crate::common::docker::ensure_images();
    };
}

/// True when the tests run against Podman (`AIRGATE_ENGINE=podman`, which the
/// airgate binary and library read too).
pub fn on_podman() -> bool {
    std::env::var("AIRGATE_ENGINE").is_ok_and(|e| e.eq_ignore_ascii_case("podman"))
}

/// The engine's CLI (`docker` or `podman`) for baselines and inspection.
pub fn engine_cli() -> &'static str {
    if on_podman() { "podman" } else { "docker" }
}

/// `--ulimit` flags for a plain `podman run` (its defaults exceed what these
/// hosts allow); none on Docker.
pub fn podman_ulimit_args() -> Vec<String> {
    if !on_podman() {
        return Vec::new();
    }
    airgate::sandbox::engine::host_ulimits()
        .into_iter()
        .flat_map(|u| {
            let (name, soft, hard) = (u.name.unwrap(), u.soft.unwrap(), u.hard.unwrap());
            ["--ulimit".to_string(), format!("{name}={soft}:{hard}")]
        })
        .collect()
}

/// True when an endpoint of the engine under test is configured.
pub fn docker_socket_present() -> bool {
    if std::env::var_os("DOCKER_HOST").is_some() {
        return true;
    }
    if on_podman() {
        return airgate::sandbox::engine::podman_default_socket().exists();
    }
    Path::new("/var/run/docker.sock").exists()
}

/// Builds the base and airgate-mini images if they are missing (idempotent).
pub fn ensure_images() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if on_podman() {
            // Podman has its own storage: .ci/setup.d/60-podman.sh loads the
            // docker-built fixture images into it.
            return;
        }
        let out = Command::new(root().join("tests/fixtures/docker_mini/build.sh"))
            .output()
            .expect("running tests/fixtures/docker_mini/build.sh");
        assert!(
            out.status.success(),
            "building the fixture images failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// The id of a local image; panics if it is missing.
pub fn image_id(image: &str) -> String {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A dataset row as JSON.
pub fn row(id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dataset()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["instance_id"] == id)
        .unwrap_or_else(|| panic!("{id} not in the dataset"))
}

/// The gold patch of a row.
pub fn gold_patch(id: &str) -> String {
    row(id)["patch"].as_str().unwrap().to_string()
}

/// The base commit of the mini rows.
pub fn base_commit() -> String {
    row("airgate__mini-1")["base_commit"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A run id unique to this test process.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Writes `preds.jsonl` in `dir` and returns its path.
pub fn write_predictions(dir: &Path, model: &str, preds: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("preds.jsonl");
    let text: String = preds
        .iter()
        .map(|(id, patch)| {
            serde_json::json!({"instance_id": id, "model_name_or_path": model, "model_patch": patch})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// Names of containers (any state) whose name contains `needle`.
pub fn containers(needle: &str) -> Vec<String> {
    let out = Command::new(engine_cli())
        .args(["ps", "-a", "--format", "{{.Names}}", "--filter"])
        .arg(format!("name={needle}"))
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Fails if any container of the run is left.
pub fn assert_no_containers(run_id: &str) {
    let left = containers(run_id);
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

/// Polls `cond` until it holds; panics after three minutes.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "gave up waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
