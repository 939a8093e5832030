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
            // Podman has its own storage: scripts/podman-setup.sh loads the
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

/// What changed in the filesystem of the running container `name` (made
/// from `image`), as `ENGINE diff` lines (`A /x`, `C /x`, `D /x`), with
/// Docker's own rule for directories applied on every engine: a directory is
/// changed when its mode or owner changed, or something under it did.
///
/// Why: `docker diff` on a layer-comparing storage driver (this machine's
/// fuse-overlayfs) ignores a directory's mtime, so a file made and removed
/// again in /tmp (pytest's capture files, `tempfile`'s probe) leaves nothing.
/// Podman's overlay driver lists every directory copied up to the container
/// layer, so the same create-and-delete shows as a bare `C /tmp`, and the
/// files it bind-mounts at /etc/hosts, /etc/resolv.conf and /etc/hostname
/// leave a bare `C /etc`. A bare `C DIR` line is dropped only when `DIR` is a
/// directory in both the container and the image with the same mode, uid and
/// gid; an added, changed or deleted file is always listed on its own line
/// and kept. Anything that cannot be checked is kept (fails closed).
pub fn changes(name: &str, image: &str) -> Vec<String> {
    let diff = Command::new(engine_cli())
        .args(["diff", name])
        .output()
        .expect("engine diff");
    assert!(diff.status.success(), "diff {name}: {}", text(&diff));
    let lines: Vec<String> = String::from_utf8_lossy(&diff.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let path_of = |l: &str| l.get(2..).unwrap_or_default().to_string();
    let bare_dirs: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("C /"))
        .map(|l| path_of(l))
        .filter(|p| {
            let under = format!("{}/", p.trim_end_matches('/'));
            !lines.iter().any(|l| path_of(l).starts_with(&under))
        })
        .collect();
    if bare_dirs.is_empty() {
        return lines;
    }
    let stat = |args: Vec<String>| -> Option<Vec<String>> {
        let out = Command::new(engine_cli()).args(args).output().ok()?;
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
    };
    let format = ["-c".to_string(), "%F %f %u %g".to_string()];
    // From `/`: the workdir may be a bind mount whose host side is gone.
    let mut in_container: Vec<String> = ["exec", "--user", "0", "--workdir", "/", name]
        .map(String::from)
        .to_vec();
    in_container.push("stat".into());
    in_container.extend(format.iter().cloned());
    in_container.extend(bare_dirs.iter().cloned());
    let mut in_image: Vec<String> = vec!["run".into(), "--rm".into(), "--network".into()];
    in_image.push("none".into());
    in_image.extend(podman_ulimit_args());
    in_image.extend(["--entrypoint".into(), "stat".into(), image.into()]);
    in_image.extend(format.iter().cloned());
    in_image.extend(bare_dirs.iter().cloned());
    let (Some(now), Some(before)) = (stat(in_container), stat(in_image)) else {
        return lines;
    };
    if now.len() != bare_dirs.len() || before.len() != bare_dirs.len() {
        return lines;
    }
    let unchanged: Vec<&String> = bare_dirs
        .iter()
        .zip(now.iter().zip(&before))
        .filter(|(_, (n, b))| n == b && n.starts_with("directory "))
        .map(|(p, _)| p)
        .collect();
    lines
        .into_iter()
        .filter(|l| !(l.starts_with("C /") && unchanged.contains(&&path_of(l))))
        .collect()
}
