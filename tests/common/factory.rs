//! Helpers shared by the factory end-to-end tests (`factory_e2e`,
//! `corpus_splits`): the binary, the script teachers, the airgate-mini
//! dataset and its git repo.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::root;

/// The real binary, run from the crate root.
pub fn bin() -> Command {
    let mut c = super::airgate();
    c.current_dir(root());
    c
}

/// The `script:` spec of a teacher in `tests/fixtures/factory_teachers`.
pub fn teacher(name: &str) -> String {
    format!(
        "script:{}",
        super::fixture("factory_teachers").join(name).display()
    )
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
