//! Helpers shared by the integration tests (`tests/all.rs`): the airgate
//! binary, fixture paths, fixture git repos and `script:` models. Submodules
//! hold the Docker helpers ([`docker`]), the factory helpers ([`factory`])
//! and the in-process mock model servers ([`model`]).

#[macro_use]
pub mod docker;
pub mod factory;
pub mod model;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The crate root (fixtures, datasets and configs are found from it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/REL`.
pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

/// datasets/airgate-mini.jsonl.
pub fn dataset() -> PathBuf {
    root().join("datasets/airgate-mini.jsonl")
}

/// The path of the real airgate binary Cargo built for this test run.
pub const AIRGATE_BIN: &str = env!("CARGO_BIN_EXE_airgate");

/// The real airgate binary, as a command to add arguments to.
pub fn airgate() -> Command {
    Command::new(AIRGATE_BIN)
}

/// stdout + stderr of a finished command.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `git ARGS` in `dir` as a throwaway identity; panics if it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "git {args:?}");
}

/// Copies the tree under `src` into `dst` (created if missing).
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in walkdir::WalkDir::new(src).min_depth(1) {
        let e = e.unwrap();
        let to = dst.join(e.path().strip_prefix(src).unwrap());
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// A fresh git repo in a temp dir: the tree under `src`, plus `extra`
/// (name, text) files, committed once.
pub fn git_repo(src: &Path, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(src, dir.path());
    for (name, text) in extra {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-qm", "init"]);
    dir
}

/// The task of the accounts fixture (`tests/fixtures/solve/accounts`).
pub const ACCOUNTS_TASK: &str =
    "Transfers that exceed an account's balance are applied instead of rejected.";

/// The accounts fixture in a fresh git repo, with `extra` files added.
pub fn accounts(extra: &[(&str, &str)]) -> tempfile::TempDir {
    git_repo(&fixture("solve/accounts"), extra)
}

/// One line of a `script:` model: a JSON tool call.
pub fn call(tool: &str, args: serde_json::Value) -> String {
    serde_json::json!({"tool": tool, "args": args}).to_string()
}

/// Writes a `script:` model of `lines` to `dir/name`; returns its spec.
pub fn script(dir: &Path, name: &str, lines: &[String]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    format!("script:{}", path.display())
}

/// The trajectory a `solve --json` result names.
pub fn trajectory(j: &serde_json::Value) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(j["trajectory"].as_str().unwrap()).unwrap()).unwrap()
}
