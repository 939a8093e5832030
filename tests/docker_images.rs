//! `airgate images save|load|bootstrap` against the real engine.
//!
//! Without a Docker socket these tests print SKIP and return.

use std::process::Command;

use crate::common;
use crate::common::docker::*;

fn airgate(args: &[&str]) -> std::process::Output {
    common::airgate().args(args).output().unwrap()
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

/// Bytes of `docker save IMAGE`, streamed (nothing written to disk).
fn separate_save_bytes(image: &str) -> u64 {
    use std::io::Read;
    let mut child = Command::new(engine_cli())
        .args(["save", image])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert!(child.wait().unwrap().success());
    total
}

const MINI_IDS: [&str; 4] = [
    "airgate__mini-1",
    "airgate__mini-2",
    "airgate__mini-3",
    "airgate__noop-1",
];

/// The mini image tagged under a fresh namespace for each id, so the test
/// can remove and reload its own tags without touching the shared ones.
fn namespaced_images(ns: &str, ids: &[&str]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            let img = format!(
                "{ns}/sweb.eval.x86_64.{}:latest",
                id.replace("__", "_1776_")
            );
            let out = Command::new(engine_cli())
                .args(["tag", "airgate/mini:latest", &img])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out));
            img
        })
        .collect()
}

fn airgate_ns(ns: &str, args: &[&str]) -> std::process::Output {
    common::airgate()
        .env("AIRGATE_IMAGE_NAMESPACE", ns)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn dataset_bundle_stores_shared_layers_once_verifies_and_loads_usable_images() {
    require_docker!();
    let ns = unique("airgate-bundle");
    let images = namespaced_images(&ns, &MINI_IDS);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    // A validation record to carry along (content is checked for shape only).
    let validation = dir.path().join("validation.json");
    std::fs::write(
        &validation,
        r#"{"schema_version":1,"dataset":"airgate-mini","updated_at":"2026-01-01T00:00:00Z","instances":{}}"#,
    )
    .unwrap();
    let dataset = dataset();
    let out = airgate_ns(
        &ns,
        &[
            "images",
            "save",
            "--dataset",
            dataset.to_str().unwrap(),
            "--validation",
            validation.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    // The record carried validates none of them: said, not hidden.
    assert!(
        text(&out).contains("does not record these instances as valid (4 of 4)"),
        "{}",
        text(&out)
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["format"], "airgate-image-bundle/2");
    let entries = manifest["images"].as_array().unwrap();
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e["instance_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, MINI_IDS);
    let named: Vec<&str> = entries
        .iter()
        .map(|e| e["image"].as_str().unwrap())
        .collect();
    assert_eq!(named, images.iter().map(String::as_str).collect::<Vec<_>>());
    // Every file listed with its true sha256.
    use sha2::Digest;
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{manifest}");
    for f in files {
        let bytes = std::fs::read(bundle.join(f["file"].as_str().unwrap())).unwrap();
        assert_eq!(
            f["sha256"].as_str().unwrap(),
            hex::encode(sha2::Sha256::digest(&bytes))
        );
    }
    // Shared layers once: the one archive is smaller than the separate saves.
    let archive = std::fs::metadata(bundle.join("images.tar")).unwrap().len();
    let separate: u64 = images.iter().map(|i| separate_save_bytes(i)).sum();
    eprintln!("dataset bundle archive {archive} bytes; separate saves {separate} bytes");
    assert!(
        archive * 2 < separate,
        "archive {archive} is not much smaller than separate saves {separate}"
    );

    // Honest load into a daemon without the tags: they come back and run.
    for i in &images {
        rmi(i);
        assert!(!image_present(i));
    }
    let out = airgate(&["images", "load", bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("validation.json"), "{}", text(&out));
    for i in &images {
        assert!(image_present(i), "{i} was not loaded");
    }
    let run = Command::new(engine_cli())
        .args(["run", "--rm", "--network", "none"])
        .args(podman_ulimit_args())
        .args([&images[0], "test", "-d", "/testbed/.git"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "loaded image not usable: {}",
        text(&run)
    );

    // A flipped byte in the validation record: refused, naming the file.
    let vpath = bundle.join("validation.json");
    let honest_v = std::fs::read(&vpath).unwrap();
    let mut evil = honest_v.clone();
    evil[5] ^= 0x01;
    std::fs::write(&vpath, &evil).unwrap();
    for i in &images {
        rmi(i);
    }
    let out = airgate(&["images", "load", bundle.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("failed verification") && text(&out).contains("validation.json"),
        "{}",
        text(&out)
    );
    assert!(!image_present(&images[0]), "a tampered bundle was loaded");
    std::fs::write(&vpath, &honest_v).unwrap();

    // A flipped byte in the archive: refused, naming the file, nothing loaded.
    let apath = bundle.join("images.tar");
    let mut a = std::fs::read(&apath).unwrap();
    let mid = a.len() / 2;
    a[mid] ^= 0x01;
    std::fs::write(&apath, &a).unwrap();
    drop(a);
    let out = airgate(&["images", "load", bundle.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("failed verification") && text(&out).contains("images.tar has sha256"),
        "{}",
        text(&out)
    );
    for i in &images {
        assert!(!image_present(i), "a tampered bundle was loaded");
    }
}

#[test]
fn dataset_bundle_with_a_missing_instance_image_names_it_and_writes_nothing() {
    require_docker!();
    let ns = unique("airgate-bundle-miss");
    // Every instance but the last has an image under this namespace.
    let images = namespaced_images(&ns, &MINI_IDS[..3]);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let dataset = dataset();
    let out = airgate_ns(
        &ns,
        &[
            "images",
            "save",
            "--dataset",
            dataset.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    for i in &images {
        rmi(i);
    }
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("airgate__noop-1 (needs")
            && t.contains("not present locally")
            && t.contains("--instance-ids")
            && !t.contains("airgate__mini-1 (needs"),
        "{t}"
    );
    assert!(!bundle.join("manifest.json").exists());

    // Control: the same namespace with the instance left out saves.
    let images = namespaced_images(&ns, &MINI_IDS[..1]);
    let out = airgate_ns(
        &ns,
        &[
            "images",
            "save",
            "--dataset",
            dataset.to_str().unwrap(),
            "--instance-ids",
            "airgate__mini-1",
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    for i in &images {
        rmi(i);
    }
    assert!(out.status.success(), "{}", text(&out));
    assert!(bundle.join("manifest.json").exists());
}
