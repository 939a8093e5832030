//! Verifier hygiene: stale Python bytecode must never decide a verdict.
//!
//! CPython's pyc check compares the source's mtime (whole seconds) and size.
//! A same-length edit (`>=` → `> `) made within the same second as the
//! previous run therefore looks unchanged to a cached `.pyc`. The gate runs
//! on a fresh pristine copy with only the diff applied (no bytecode is ever
//! copied) and sets PYTHONDONTWRITEBYTECODE=1, so the edit still counts.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use airgate::gate::{TestCommandGate, Verifier};
use airgate::sandbox::Workspace;
use airgate::sandbox::local::LocalSandbox;

fn write_project(dir: &Path) {
    std::fs::write(
        dir.join("mod_under_test.py"),
        "def ok(x):\n    return x >= 0\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("check.py"),
        "import sys\nfrom mod_under_test import ok\nsys.exit(0 if ok(0) else 1)\n",
    )
    .unwrap();
}

fn set_mtime(path: &Path, t: SystemTime) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_modified(t).unwrap();
}

#[tokio::test]
async fn same_second_same_length_edit_changes_the_verdict() {
    let src = tempfile::tempdir().unwrap();
    write_project(src.path());
    let ws = Workspace::copy_from(src.path()).unwrap();
    let sandbox = LocalSandbox::new(ws.root());
    let gate = TestCommandGate {
        test_cmd: "python3 check.py".into(),
        timeout: Duration::from_secs(60),
        protected: vec![],
        runs: 1,
        targets: vec![],
    };
    let module = ws.root().join("mod_under_test.py");
    let pinned = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    set_mtime(&module, pinned);

    // Plant a valid cached .pyc for the original source, as a user's earlier
    // plain `python` run would (this is what a naive verifier trips over).
    let status = Command::new("python3")
        .args(["-c", "import mod_under_test"])
        .current_dir(ws.root())
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        ws.root().join("__pycache__").is_dir(),
        "python did not write bytecode"
    );

    let first = gate.check(&sandbox, &ws, "", None).await.unwrap();
    assert!(first.passed, "ok(0) with >= must pass: {}", first.output);

    // Same length, same mtime second: `>=` becomes `> `.
    std::fs::write(&module, "def ok(x):\n    return x >  0\n").unwrap();
    set_mtime(&module, pinned);
    // Re-plant stale bytecode compiled from the OLD source, with the pinned mtime.
    std::fs::write(ws.root().join("old.py"), "def ok(x):\n    return x >= 0\n").unwrap();
    let plant = "import py_compile, importlib.util, os\n\
                 dst = importlib.util.cache_from_source('mod_under_test.py')\n\
                 os.utime('old.py', (1700000000, 1700000000))\n\
                 py_compile.compile('old.py', cfile=dst)\n";
    let status = Command::new("python3")
        .args(["-c", plant])
        .current_dir(ws.root())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_file(ws.root().join("old.py")).unwrap();

    // Without the purge, Python would run the stale bytecode and pass again.
    let naive = Command::new("python3")
        .arg("check.py")
        .current_dir(ws.root())
        .status()
        .unwrap();
    assert!(
        naive.success(),
        "precondition: the stale pyc fools a naive run"
    );

    // The gate judges the diff on a fresh pristine copy: the agent's
    // bytecode never reaches it.
    let patch = ws.diff().unwrap();
    assert!(!patch.contains("__pycache__"), "{patch}");
    let second = gate
        .check(&sandbox, &ws, &patch, Some(&first))
        .await
        .unwrap();
    assert!(
        !second.passed,
        "the gate ran stale bytecode: {}",
        second.output
    );
}
