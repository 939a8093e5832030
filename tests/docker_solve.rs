//! `airgate solve --sandbox docker`: the whole loop (run tool, gate) in a
//! container with the scratch workspace bind-mounted at /testbed.
//!
//! Without a Docker socket this test prints SKIP and returns.

use std::process::Command;

use crate::common;
use crate::common::copy_tree;
use crate::common::docker::*;

#[test]
fn solve_in_docker_reaches_verified_and_touches_only_the_workspace() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let fixtures = root().join("tests/fixtures/docker_mini");
    copy_tree(&fixtures.join("base"), &repo);
    // The failing test of instance 1.
    std::fs::copy(
        fixtures.join("fix1/tests/test_clamp.py"),
        repo.join("tests/test_clamp.py"),
    )
    .unwrap();
    let original_ops = std::fs::read_to_string(repo.join("calc/ops.py")).unwrap();

    let script = dir.path().join("script.jsonl");
    let lines = [
        serde_json::json!({"tool": "run", "args": {"command": "{ test -f /.dockerenv || test -f /run/.containerenv; } && echo IN_CONTAINER_$(pwd)"}}),
        serde_json::json!({"tool": "str_replace", "args": {
            "path": "calc/ops.py",
            "old_str": "    if x > hi:\n        return x\n",
            "new_str": "    if x > hi:\n        return hi\n"}}),
    ];
    std::fs::write(
        &script,
        lines
            .iter()
            .map(|l| l.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();

    let child = common::airgate()
        .current_dir(dir.path())
        .env("AIRGATE_KEEP_CONTAINERS", "1")
        .args(["solve", "--repo"])
        .arg(&repo)
        .args([
            "--task",
            "clamp() ignores the upper bound",
            "--test-cmd",
            "python3 -m pytest -q -p no:cacheprovider tests",
            "--sandbox",
            "docker",
            "--image",
            "airgate/mini:latest",
            "--json",
            "--out",
            "run",
            "--model",
        ])
        .arg(format!("script:{}", script.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let kept = containers(&format!("airgate.solve.{pid}."));
    // Always clean up the kept container, even if an assertion fails below.
    let _cleanup = Cleanup(kept.clone());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["outcome"], "verified", "{result}");
    assert!(
        result["patch"]
            .as_str()
            .unwrap()
            .contains("+        return hi")
    );

    // The run tool executed inside the container, in /testbed.
    let traj =
        std::fs::read_to_string(dir.path().join(result["trajectory"].as_str().unwrap())).unwrap();
    assert!(
        traj.contains("IN_CONTAINER_/testbed"),
        "run did not execute in the container"
    );

    // Dry run: the host repo is untouched.
    assert_eq!(
        std::fs::read_to_string(repo.join("calc/ops.py")).unwrap(),
        original_ops
    );
    // Three containers: the agent's, and a fresh one for each gate run
    // (the baseline and the submitted patch). Inside each, nothing outside
    // the bind-mounted workspace changed.
    assert_eq!(
        kept.len(),
        3,
        "expected the agent's and two gate containers: {kept:?}"
    );
    for name in &kept {
        // The gate containers' report mount point is airgate's own.
        let changed: Vec<String> = changes(name, "airgate/mini:latest")
            .into_iter()
            .filter(|l| l != "A /airgate-report")
            .collect();
        assert!(
            changed.is_empty(),
            "the filesystem of {name} changed outside /testbed: {changed:?}"
        );
    }
}

#[test]
fn solve_without_the_image_is_an_environment_error() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_tree(&root().join("tests/fixtures/docker_mini/base"), &repo);
    let script = dir.path().join("empty.jsonl");
    std::fs::write(&script, "").unwrap();
    let out = common::airgate()
        .current_dir(dir.path())
        .args(["solve", "--repo"])
        .arg(&repo)
        .args([
            "--task",
            "x",
            "--test-cmd",
            "true",
            "--sandbox",
            "docker",
            "--image",
            "airgate/does-not-exist:never",
            "--model",
        ])
        .arg(format!("script:{}", script.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("airgate/does-not-exist:never is not present locally"));
}

/// A4: the image's build generated `calc/_version.py` in `/testbed`
/// (as setuptools-scm writes `_pytest/_version.py`); the user's repo lacks
/// it and a test imports it. Solve starts from the image's `/testbed`, so
/// the file is there for every run and the gate, and it never enters the
/// patch; the user's own `calc/ops.py` still wins over the image's copy.
#[test]
fn solve_in_docker_keeps_files_the_image_generated_in_testbed() {
    require_docker!();
    let image = "airgate/mini-generated:latest";
    let dockerfile = "FROM airgate/mini:latest\n\
        RUN printf 'version = \"9.9\"\\n' > /testbed/calc/_version.py \
         && printf '# image copy, must lose\\n' >> /testbed/calc/ops.py\n";
    let mut build = Command::new(engine_cli())
        .args(["build", "-q", "-t", image, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(build.stdin.as_mut().unwrap(), dockerfile.as_bytes()).unwrap();
    drop(build.stdin.take());
    let built = build.wait_with_output().unwrap();
    assert!(built.status.success(), "{}", text(&built));

    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let fixtures = root().join("tests/fixtures/docker_mini");
    copy_tree(&fixtures.join("base"), &repo);
    std::fs::copy(
        fixtures.join("fix1/tests/test_clamp.py"),
        repo.join("tests/test_clamp.py"),
    )
    .unwrap();
    std::fs::write(
        repo.join("tests/test_version.py"),
        "from calc._version import version\n\n\ndef test_version():\n    assert version == \"9.9\"\n",
    )
    .unwrap();
    let script = dir.path().join("script.jsonl");
    let lines = [
        serde_json::json!({"tool": "run", "args": {"command": "cat calc/_version.py; tail -n1 calc/ops.py"}}),
        serde_json::json!({"tool": "str_replace", "args": {
            "path": "calc/ops.py",
            "old_str": "    if x > hi:\n        return x\n",
            "new_str": "    if x > hi:\n        return hi\n"}}),
    ];
    std::fs::write(
        &script,
        lines
            .iter()
            .map(|l| l.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let out = common::airgate()
        .current_dir(dir.path())
        .args(["solve", "--repo"])
        .arg(&repo)
        .args([
            "--task",
            "clamp() ignores the upper bound",
            "--test-cmd",
            "python3 -m pytest -q -p no:cacheprovider tests",
            "--sandbox",
            "docker",
            "--image",
            image,
            "--max-attempts",
            "1",
            "--json",
            "--out",
            "run",
            "--model",
        ])
        .arg(format!("script:{}", script.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["outcome"], "verified", "{result}");
    let patch = result["patch"].as_str().unwrap();
    assert!(!patch.contains("_version.py"), "{patch}");
    assert!(!patch.contains("image copy"), "{patch}");
    let traj = std::fs::read_to_string(dir.path().join("run/trajectory.json")).unwrap();
    assert!(traj.contains("version = \\\"9.9\\\""), "{traj}");
    assert!(!traj.contains("image copy, must lose"), "{traj}");
    // The user's repo is untouched (a dry run).
    assert!(!repo.join("calc/_version.py").exists());
}

/// What [`changes`] sees (the check above): a file written, changed or
/// deleted outside the workspace, or a directory's mode changed, is listed on
/// either engine. Control: a file made and removed again in /tmp (what the
/// test runs of the gate containers do) is not.
#[test]
fn changes_outside_the_workspace_are_listed_on_either_engine() {
    require_docker!();
    let image = "airgate/mini:latest";
    let name = unique("airgate-diffcheck");
    let _cleanup = Cleanup(vec![name.clone()]);
    let run = Command::new(engine_cli())
        .args(["run", "-d", "--network", "none", "--name", &name])
        .args(podman_ulimit_args())
        // PID 1 exits on SIGTERM, so the removal does not wait out a timeout.
        .args([image, "bash", "-c", "trap 'exit 0' TERM; sleep 600 & wait"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let sh = |script: &str| {
        let out = Command::new(engine_cli())
            .args(["exec", "--user", "0", &name, "bash", "-c", script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {}", text(&out));
    };

    // Control: made and removed again, as pytest does in the gate.
    sh("touch /tmp/gone && rm /tmp/gone && python3 -c 'import tempfile; tempfile.TemporaryFile()'");
    assert_eq!(changes(&name, image), Vec::<String>::new());

    // Attacks: a file left in /tmp, a system file changed, one deleted, and
    // a directory's mode changed.
    sh("echo evil > /tmp/evil && echo x >> /etc/issue.net && rm /etc/issue && chmod 700 /srv");
    let changed = changes(&name, image);
    for want in ["A /tmp/evil", "C /etc/issue.net", "D /etc/issue", "C /srv"] {
        assert!(
            changed.iter().any(|l| l == want),
            "{want} missing from {changed:?}"
        );
    }
}

struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new(engine_cli()).args(["rm", "-f", name]).output();
        }
    }
}

/// Attack: from inside the container the agent plants git hooks, config
/// (fsmonitor, hooksPath, a filter) and attributes in the workspace, for
/// the host-side git to run. Control: the honest fix in the same run is
/// verified, and no host-side marker appears.
#[test]
fn git_laundering_from_docker_never_runs_on_the_host() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let fixtures = root().join("tests/fixtures/docker_mini");
    copy_tree(&fixtures.join("base"), &repo);
    std::fs::copy(
        fixtures.join("fix1/tests/test_clamp.py"),
        repo.join("tests/test_clamp.py"),
    )
    .unwrap();
    let marker = dir.path().join("host-side-code-ran");
    let m = marker.display();
    let plant = format!(
        "test -d .git && echo HAS_GIT; git init -q . 2>/dev/null || mkdir -p .git; mkdir -p .git/hooks; \
         for hk in post-checkout pre-commit post-index-change reference-transaction; do \
         printf '#!/bin/sh\\ntouch {m}\\n' > .git/hooks/$hk; chmod +x .git/hooks/$hk; done; \
         printf '[core]\\n\\tfsmonitor = touch {m}\\n\\thooksPath = .git/hooks\\n\\tworktree = /\\n[filter \"x\"]\\n\\tclean = touch {m}\\n' >> .git/config; \
         echo '* filter=x' > .gitattributes; echo planted"
    );
    let script = dir.path().join("script.jsonl");
    let lines = [
        serde_json::json!({"tool": "run", "args": {"command": plant}}),
        serde_json::json!({"tool": "str_replace", "args": {
            "path": "calc/ops.py",
            "old_str": "    if x > hi:\n        return x\n",
            "new_str": "    if x > hi:\n        return hi\n"}}),
    ];
    std::fs::write(
        &script,
        lines
            .iter()
            .map(|l| l.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let out = common::airgate()
        .current_dir(dir.path())
        .args(["solve", "--repo"])
        .arg(&repo)
        .args([
            "--task",
            "clamp() ignores the upper bound",
            "--test-cmd",
            "python3 -m pytest -q -p no:cacheprovider tests",
            "--sandbox",
            "docker",
            "--image",
            "airgate/mini:latest",
            "--max-attempts",
            "1",
            "--json",
            "--out",
            "run",
            "--model",
        ])
        .arg(format!("script:{}", script.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["outcome"], "verified", "{result}");
    let patch = result["patch"].as_str().unwrap();
    assert!(
        !patch.contains(".gitattributes") && !patch.contains(".git/"),
        "{patch}"
    );
    assert!(
        !marker.exists(),
        "the container's git state ran on the host"
    );
    // The workspace mounted in the container had no .git of airgate's.
    let traj: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run/trajectory.json")).unwrap(),
    )
    .unwrap();
    let first = traj["attempts"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "tool_call")
        .unwrap()["result"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !first.contains("HAS_GIT"),
        "a .git was in the bind mount: {first}"
    );
    assert!(first.contains("planted"), "{first}");
}
