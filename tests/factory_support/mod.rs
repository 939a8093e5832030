//! Helpers shared by the factory end-to-end tests (`factory_e2e`,
//! `corpus_splits`): the binary, the script teachers, the airgate-mini
//! dataset and its git repo.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: a panic is a failed test
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The crate root (fixtures and configs are found from it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The real binary, run from the crate root.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_airgate"));
    c.current_dir(root());
    c
}

/// The `script:` spec of a teacher in `tests/fixtures/factory_teachers`.
pub fn teacher(name: &str) -> String {
    format!(
        "script:{}",
        root()
            .join("tests/fixtures/factory_teachers")
            .join(name)
            .display()
    )
}

/// The airgate-mini dataset.
pub fn dataset() -> PathBuf {
    root().join("datasets/airgate-mini.jsonl")
}

/// The git repo of the airgate-mini instances under `dir/repos/airgate__mini`.
pub fn repos(dir: &Path) -> PathBuf {
    let repos = dir.join("repos");
    let out = Command::new("bash")
        .arg(root().join("tests/fixtures/docker_mini/build.sh"))
        .arg("--repo")
        .arg(repos.join("airgate__mini"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    repos
}
