//! The Docker sandbox against the real engine: isolation, timeouts, tar
//! transfers, OOM detection, history hygiene and image bundles.
//!
//! Without a Docker socket these tests print SKIP and return.

use std::time::Duration;

use crate::common::docker::*;
use airgate::sandbox::docker::{Container, ContainerSpec, DockerConfig, connect};
use airgate::sandbox::{ExecRequest, SandboxError};
use airgate::swebench::git_hygiene::strip_future_history;

async fn start(name: &str, config: DockerConfig) -> Container {
    let docker = connect().await.unwrap();
    let spec = ContainerSpec::new("airgate/mini:latest", unique(name), config);
    Container::start(&docker, &spec).await.unwrap()
}

async fn sh(c: &Container, cmd: &str) -> airgate::sandbox::ExecOutput {
    c.exec(&ExecRequest::new(cmd, Duration::from_secs(60)))
        .await
        .unwrap()
}

#[tokio::test]
async fn network_none_blocks_connections() {
    require_docker!();
    let c = start("net", DockerConfig::default()).await;
    let out = sh(
        &c,
        "python3 -c \"import socket; socket.create_connection(('1.1.1.1', 53), timeout=5)\"",
    )
    .await;
    assert_ne!(out.exit_code, Some(0), "{}", out.output);
    assert!(
        out.output.contains("Network is unreachable"),
        "{}",
        out.output
    );
    assert_eq!(sh(&c, "ls /sys/class/net").await.output.trim(), "lo");
    c.remove().await.unwrap();

    // Control: the same image on the default bridge has an interface.
    let bridged = start(
        "net-bridge",
        DockerConfig {
            network: "bridge".into(),
            ..DockerConfig::default()
        },
    )
    .await;
    let ifaces = sh(&bridged, "ls /sys/class/net").await.output;
    assert!(ifaces.contains("eth0"), "{ifaces}");
    bridged.remove().await.unwrap();
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group_in_the_container() {
    require_docker!();
    let c = start("timeout", DockerConfig::default()).await;
    let out = c
        .exec(&ExecRequest::new(
            "echo started; (sleep 300; echo late) & sleep 400",
            Duration::from_secs(2),
        ))
        .await
        .unwrap();
    assert!(out.timed_out);
    assert_eq!(out.exit_code, None);
    assert!(out.output.starts_with("started\n"), "{}", out.output);
    assert!(
        out.output
            .ends_with("\n\nTimeout error: 2 seconds exceeded.")
    );
    // PID 1's own idle `sleep 3600` aside, no sleeper is left, and PID 1
    // (a reaping bash loop) leaves no zombie behind either.
    let left = sh(
        &c,
        "ps -eo stat=,args= | awk '$2 == \"sleep\" && $3 != \"3600\"' | wc -l",
    )
    .await;
    assert_eq!(left.output.trim(), "0", "sleepers survived the timeout");
    let zombies = sh(&c, "ps -eo stat= | grep -c '^Z'").await;
    assert_eq!(
        zombies.output.trim(),
        "0",
        "killed processes were not reaped"
    );
    c.remove().await.unwrap();
}

#[tokio::test]
async fn output_is_combined_lossy_and_bounded() {
    require_docker!();
    let c = start("output", DockerConfig::default()).await;
    let out = sh(&c, "echo out; echo err >&2; printf '\\377\\n'; exit 7").await;
    assert_eq!(out.exit_code, Some(7));
    assert!(out.output.contains("out\n") && out.output.contains("err\n"));
    assert!(out.output.contains('\u{FFFD}'));
    // stdout and stderr interleave exactly as written (one pipe).
    let out = sh(&c, "for i in $(seq 1 300); do echo o$i; echo e$i >&2; done").await;
    let want: String = (1..=300).map(|i| format!("o{i}\ne{i}\n")).collect();
    assert_eq!(out.output, want);
    let mut big = ExecRequest::new(
        "head -c 5000000 /dev/zero | tr '\\0' x",
        Duration::from_secs(60),
    );
    big.capture_limit = 1000;
    let out = c.exec(&big).await.unwrap();
    assert!(out.success());
    assert_eq!(out.dropped_bytes, 5_000_000 - 2000);
    c.remove().await.unwrap();
}

#[tokio::test]
async fn files_move_as_tar_streams() {
    require_docker!();
    let c = start("tar", DockerConfig::default()).await;
    c.upload_file("/tmp/in.txt", b"hello\n", 0o600)
        .await
        .unwrap();
    assert_eq!(
        sh(&c, "stat -c %a /tmp/in.txt; cat /tmp/in.txt")
            .await
            .output,
        "600\nhello\n"
    );
    assert_eq!(
        c.download_file("/testbed/calc/__init__.py").await.unwrap(),
        b"\"\"\"Small numeric and text helpers.\"\"\"\n"
    );
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir(src.path().join("d")).unwrap();
    std::fs::write(src.path().join("d/x.py"), "x = 1\n").unwrap();
    sh(&c, "mkdir -p /work").await;
    c.upload_dir(src.path(), "/work").await.unwrap();
    assert_eq!(sh(&c, "cat /work/d/x.py").await.output, "x = 1\n");
    c.remove().await.unwrap();
}

#[tokio::test]
async fn out_of_memory_is_reported_as_such() {
    require_docker!();
    let c = start(
        "oom",
        DockerConfig {
            memory_mb: 64,
            ..DockerConfig::default()
        },
    )
    .await;
    let res = c
        .exec(&ExecRequest::new(
            "python3 -c \"x = bytearray(512 * 1024 * 1024); print(len(x))\"",
            Duration::from_secs(120),
        ))
        .await;
    assert!(
        matches!(res, Err(SandboxError::OutOfMemory)),
        "expected OutOfMemory, got {res:?}"
    );
    c.remove().await.unwrap();
}

#[tokio::test]
async fn dropping_a_container_removes_it() {
    require_docker!();
    let docker = connect().await.unwrap();
    let name = unique("drop");
    let spec = ContainerSpec::new("airgate/mini:latest", name.clone(), DockerConfig::default());
    let c = Container::start(&docker, &spec).await.unwrap();
    assert_eq!(containers(&name).len(), 1);
    drop(c);
    assert!(containers(&name).is_empty());
}

#[tokio::test]
async fn history_after_base_commit_is_gone_inside_the_container() {
    require_docker!();
    let c = start("hygiene", DockerConfig::default()).await;
    let base = base_commit();
    let before = sh(&c, "git log --all --format=%H").await.output;
    let fix = sh(&c, "git rev-parse fix-1")
        .await
        .output
        .trim()
        .to_string();
    assert!(
        before.contains(&fix),
        "the fixture should carry future commits"
    );
    assert!(!sh(&c, "git tag").await.output.trim().is_empty());

    let msg = strip_future_history(&c, &base).await.unwrap();
    assert!(msg.contains("git history stripped"), "{msg}");
    let after = sh(&c, "git log --all --reflog --format=%H").await.output;
    assert!(!after.contains(&fix), "{after}");
    assert_eq!(after.lines().next(), Some(base.as_str()));
    assert_eq!(after.lines().count(), 2, "only base and its parent remain");
    assert_ne!(
        sh(&c, &format!("git cat-file -e {fix}")).await.exit_code,
        Some(0)
    );
    assert!(
        sh(&c, "git tag; git remote; git branch -a")
            .await
            .output
            .trim()
            == "* main"
    );
    assert_eq!(sh(&c, "git status --porcelain").await.output, "");
    c.remove().await.unwrap();
}
