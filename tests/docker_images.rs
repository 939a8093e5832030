//! `airgate images save|load|bootstrap` against the real engine.
//!
//! Without a Docker socket these tests print SKIP and return.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: a panic is a failed test

mod docker_common;

use std::process::Command;

use docker_common::*;

fn airgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_airgate"))
        .args(args)
        .output()
        .unwrap()
}

fn image_present(image: &str) -> bool {
    Command::new(engine_cli())
        .args(["image", "inspect", image])
        .output()
        .unwrap()
        .status
        .success()
}

/// A one-file image made with `docker import` (no registry, no base).
fn tiny_image(tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), tag).unwrap();
    let tar = dir.path().join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .arg("-cf")
        .arg(&tar)
        .arg("hello.txt")
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new(engine_cli())
        .arg("import")
        .arg(&tar)
        .arg(tag)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", text(&st));
}

fn rmi(tag: &str) {
    let _ = Command::new(engine_cli()).args(["rmi", "-f", tag]).output();
}

#[test]
fn bundles_round_trip_and_tampering_is_refused() {
    require_docker!();
    let tag = format!("airgate-test/tiny:{}", unique("b"));
    tiny_image(&tag);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let out = airgate(&["images", "save", &tag, "--out", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("manifest.json")).unwrap())
            .unwrap();
    let entry = &manifest["images"][0];
    assert_eq!(entry["image"], tag.as_str());
    let file = bundle.join(entry["file"].as_str().unwrap());
    let bytes = std::fs::read(&file).unwrap();
    use sha2::Digest;
    assert_eq!(
        entry["sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(&bytes))
    );

    // Load into a daemon that lacks the image.
    rmi(&tag);
    assert!(!image_present(&tag));
    let out = airgate(&["images", "load", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(image_present(&tag));

    // One flipped byte: refused, nothing loaded.
    rmi(&tag);
    let mut evil = bytes.clone();
    let mid = evil.len() / 2;
    evil[mid] ^= 0x01;
    std::fs::write(&file, &evil).unwrap();
    let out = airgate(&["images", "load", bundle.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("failed verification"), "{}", text(&out));
    assert!(!image_present(&tag), "a tampered bundle was loaded");
}

#[test]
fn saving_a_missing_image_fails_clearly() {
    require_docker!();
    let dir = tempfile::tempdir().unwrap();
    let out = airgate(&[
        "images",
        "save",
        "airgate-test/none:never",
        "--out",
        dir.path().join("b").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("airgate-test/none:never is not present locally"));
    assert!(!dir.path().join("b/manifest.json").exists());
}

#[test]
fn bootstrap_is_idempotent() {
    require_docker!();
    // ensure_images() built airgate/base:latest; a second bootstrap is a no-op.
    let out = airgate(&["images", "bootstrap"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("airgate/base:latest already present"));
}
