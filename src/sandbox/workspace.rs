//! The scratch workspace: a private copy of the user's repo with a baseline
//! commit, so edits can be diffed, reset and (only with `--apply`) copied
//! back. The user's repo is only ever read, which is what makes dry runs
//! leave it byte-identical, mtimes included.

use std::path::{Path, PathBuf};
use std::process::Command;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::SandboxError;

/// Name of the baseline ref inside the workspace's git repo.
pub const BASELINE_REF: &str = "refs/airgate/baseline";

/// Untracked paths that test runs create and that never belong in a patch.
const BUILD_ARTEFACTS: &str = "__pycache__/\n*.pyc\n.pytest_cache/\n/target/\nnode_modules/\n.mypy_cache/\n*.egg-info/\n/Cargo.lock\n";

/// A git-tracked scratch copy of a repo.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    // Keeps the temporary directory alive; removed on drop, on every exit path
    // that unwinds (panics included).
    _temp: Option<tempfile::TempDir>,
}

impl Workspace {
    /// Copies `repo` (without its `.git`) into a fresh temporary directory and
    /// commits the copy as the baseline.
    pub fn copy_from(repo: &Path) -> Result<Self, SandboxError> {
        let temp = tempfile::Builder::new()
            .prefix("airgate-ws-")
            .tempdir()
            .map_err(|e| SandboxError::io("creating scratch workspace", e))?;
        let root = temp.path().join("repo");
        copy_tree(repo, &root)?;
        let ws = Self {
            root,
            _temp: Some(temp),
        };
        ws.init_baseline()?;
        Ok(ws)
    }

    /// Uses `dir` in place (e.g. a tree already copied out of a container)
    /// and commits its current state as the baseline.
    pub fn adopt(dir: &Path) -> Result<Self, SandboxError> {
        let ws = Self {
            root: dir.to_path_buf(),
            _temp: None,
        };
        ws.init_baseline()?;
        Ok(ws)
    }

    /// The workspace root on the host.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn init_baseline(&self) -> Result<(), SandboxError> {
        if !self.root.join(".git").exists() {
            self.git(&["init", "-q"])?;
        }
        // Build artefacts that tests create must never show up in a patch.
        let info = self.root.join(".git").join("info");
        std::fs::create_dir_all(&info).map_err(|e| SandboxError::io("creating .git/info", e))?;
        let exclude = info.join("exclude");
        let mut text = std::fs::read_to_string(&exclude).unwrap_or_default();
        if !text.contains("# airgate") {
            text.push_str("\n# airgate: build artefacts\n");
            text.push_str(BUILD_ARTEFACTS);
            std::fs::write(&exclude, text)
                .map_err(|e| SandboxError::io("writing .git/info/exclude", e))?;
        }
        self.git(&["add", "-A"])?;
        self.git(&[
            "-c",
            "user.name=airgate",
            "-c",
            "user.email=airgate@localhost",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "--allow-empty",
            "--no-verify",
            "-m",
            "airgate baseline",
        ])?;
        self.git(&["update-ref", BASELINE_REF, "HEAD"])?;
        Ok(())
    }

    /// Runs git in the workspace, returning stdout.
    pub fn git(&self, args: &[&str]) -> Result<String, SandboxError> {
        self.git_with_index(None, args)
    }

    /// Runs git with `GIT_INDEX_FILE` set when `index` is given.
    fn git_with_index(&self, index: Option<&Path>, args: &[&str]) -> Result<String, SandboxError> {
        let mut cmd = Command::new("git");
        cmd.args(["-c", "core.quotepath=false", "-c", "core.autocrlf=false"])
            .args(args)
            .current_dir(&self.root)
            .env("GIT_TERMINAL_PROMPT", "0");
        if let Some(index) = index {
            cmd.env("GIT_INDEX_FILE", index);
        }
        let out = cmd
            .output()
            .map_err(|e| SandboxError::io("running git (is git installed?)", e))?;
        if !out.status.success() {
            return Err(SandboxError::Git(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The unified diff of the working tree against the baseline, new files
    /// included; `""` when nothing changed.
    pub fn diff(&self) -> Result<String, SandboxError> {
        self.staged(&[
            "diff",
            "--cached",
            "--binary",
            "--no-color",
            "--no-ext-diff",
            BASELINE_REF,
        ])
    }

    /// Runs `git add -A`, then `args`, against a throwaway copy of the
    /// index: the real index is never touched, so no `git reset` is needed
    /// afterwards (two processes instead of three; every engine step that
    /// diffs pays this). Without an index file to copy, it falls back to
    /// add, run, reset on the real index.
    fn staged(&self, args: &[&str]) -> Result<String, SandboxError> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let git_dir = self.root.join(".git");
        let scratch = git_dir.join(format!(
            "airgate-index-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        if copy_index(&git_dir.join("index"), &scratch).is_err() {
            self.git(&["add", "-A"])?;
            let out = self.git(args);
            self.git(&["reset", "-q"])?;
            return out;
        }
        let out = self
            .git_with_index(Some(&scratch), &["add", "-A"])
            .and_then(|_| self.git_with_index(Some(&scratch), args));
        let _ = std::fs::remove_file(&scratch);
        out
    }

    /// Paths (relative) changed, added or deleted since the baseline.
    pub fn changed_paths(&self) -> Result<Vec<String>, SandboxError> {
        let names = self.staged(&[
            "diff",
            "--cached",
            "--name-only",
            "--no-renames",
            "-z",
            BASELINE_REF,
        ])?;
        Ok(names
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Puts the working tree back to the baseline (ignored files stay).
    pub fn reset(&self) -> Result<(), SandboxError> {
        self.git(&["reset", "-q", "--hard", BASELINE_REF])?;
        self.git(&["clean", "-q", "-fd"])?;
        Ok(())
    }

    /// Restores every changed path matching `globs` to its baseline content
    /// (deleting files the baseline did not have). Returns the restored paths.
    pub fn restore_matching(&self, globs: &[String]) -> Result<Vec<String>, SandboxError> {
        if globs.is_empty() {
            return Ok(vec![]);
        }
        let set = build_globset(globs)?;
        let mut restored = Vec::new();
        for path in self.changed_paths()? {
            if !set.is_match(&path) {
                continue;
            }
            let in_baseline = self
                .git(&["cat-file", "-e", &format!("{BASELINE_REF}:{path}")])
                .is_ok();
            if in_baseline {
                self.git(&["checkout", BASELINE_REF, "--", &path])?;
                self.git(&["reset", "-q", "--", &path])?;
            } else {
                let full = self.root.join(&path);
                if full.is_dir() {
                    std::fs::remove_dir_all(&full)
                } else {
                    std::fs::remove_file(&full)
                }
                .map_err(|e| SandboxError::io(format!("removing protected {path}"), e))?;
            }
            restored.push(path);
        }
        Ok(restored)
    }

    /// Deletes `__pycache__` directories and `*.pyc` files, so Python never
    /// runs stale bytecode after a same-second, same-size edit.
    pub fn purge_bytecode(&self) -> Result<usize, SandboxError> {
        let mut removed = 0;
        let mut it = walkdir::WalkDir::new(&self.root).into_iter();
        while let Some(entry) = it.next() {
            let Ok(entry) = entry else { continue };
            if entry.file_type().is_dir() {
                if entry.file_name() == ".git" {
                    it.skip_current_dir();
                } else if is_bytecode(&entry) {
                    std::fs::remove_dir_all(entry.path())
                        .map_err(|e| SandboxError::io("purging __pycache__", e))?;
                    removed += 1;
                    it.skip_current_dir();
                }
            } else if is_bytecode(&entry) {
                std::fs::remove_file(entry.path())
                    .map_err(|e| SandboxError::io("purging *.pyc", e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Copies the changes since the baseline into `target` (the user's repo):
    /// changed and new files are written, deleted files removed.
    pub fn apply_to(&self, target: &Path) -> Result<Vec<String>, SandboxError> {
        let paths = self.changed_paths()?;
        for path in &paths {
            let src = self.root.join(path);
            let dst = target.join(path);
            if src.exists() {
                if let Some(parent) = dst.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        SandboxError::io(format!("creating {}", parent.display()), e)
                    })?;
                }
                std::fs::copy(&src, &dst)
                    .map_err(|e| SandboxError::io(format!("writing {}", dst.display()), e))?;
            } else if dst.exists() {
                std::fs::remove_file(&dst)
                    .map_err(|e| SandboxError::io(format!("removing {}", dst.display()), e))?;
            }
        }
        Ok(paths)
    }
}

/// Builds a glob set; `dir/**` also matches `dir` contents at any depth and a
/// pattern without `/` matches at any depth (gitignore-like).
pub fn build_globset(globs: &[String]) -> Result<GlobSet, SandboxError> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        let pat = if g.contains('/') {
            g.clone()
        } else {
            format!("**/{g}")
        };
        b.add(Glob::new(&pat).map_err(|e| SandboxError::Other(format!("bad glob `{g}`: {e}")))?);
    }
    b.build()
        .map_err(|e| SandboxError::Other(format!("bad glob set: {e}")))
}

/// A `__pycache__` directory or a `*.pyc`/`*.pyo` file.
fn is_bytecode(entry: &walkdir::DirEntry) -> bool {
    if entry.file_type().is_dir() {
        entry.file_name() == "__pycache__"
    } else {
        entry
            .path()
            .extension()
            .is_some_and(|e| e == "pyc" || e == "pyo")
    }
}

/// Copies a directory tree (without the top-level `.git` and without Python
/// bytecode), preserving symlinks as symlinks and file permissions.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(dst)
        .map_err(|e| SandboxError::io(format!("creating {}", dst.display()), e))?;
    let mut it = walkdir::WalkDir::new(src)
        .follow_links(false)
        .min_depth(1)
        .into_iter();
    while let Some(entry) = it.next() {
        let entry =
            entry.map_err(|e| SandboxError::Other(format!("walking {}: {e}", src.display())))?;
        let rel = entry
            .path()
            .strip_prefix(src)
            .map_err(|e| SandboxError::Other(e.to_string()))?;
        // Not the history, and not bytecode: a stale `.pyc` could mask a
        // same-second edit in the model's own test runs (`run` sets
        // PYTHONDONTWRITEBYTECODE, so none is written afterwards).
        if (entry.depth() == 1 && rel == Path::new(".git")) || is_bytecode(&entry) {
            if entry.file_type().is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        let target = dst.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&target)
                .map_err(|e| SandboxError::io(format!("creating {}", target.display()), e))?;
        } else if ft.is_symlink() {
            let link = std::fs::read_link(entry.path()).map_err(|e| {
                SandboxError::io(format!("reading link {}", entry.path().display()), e)
            })?;
            std::os::unix::fs::symlink(&link, &target)
                .map_err(|e| SandboxError::io(format!("creating link {}", target.display()), e))?;
        } else if ft.is_file() {
            std::fs::copy(entry.path(), &target)
                .map_err(|e| SandboxError::io(format!("copying {}", entry.path().display()), e))?;
        }
    }
    Ok(())
}

/// Copies the index with its mtime. Git trusts an entry's stat data only
/// when the entry is older than the index file itself ("racy git"); a copy
/// stamped "now" would make a same-size edit made in the same second as the
/// baseline invisible to `git add`, so a verified fix would have an empty
/// patch.
fn copy_index(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::copy(from, to)?;
    let mtime = std::fs::metadata(from)?.modified()?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(to)?
        .set_modified(mtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("tests")).unwrap();
        std::fs::write(d.path().join("a.py"), "x = 1\n").unwrap();
        std::fs::write(d.path().join("tests/test_a.py"), "def test(): pass\n").unwrap();
        d
    }

    /// A same-length edit made in the same second as the baseline, diffed in
    /// a later second, must show in the diff (racy git: the scratch index
    /// must keep the real index's mtime).
    #[test]
    fn same_second_same_length_edit_shows_in_the_diff() {
        let src = repo();
        let mtime_s = |p: &Path| {
            std::fs::metadata(p)
                .unwrap()
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        for _ in 0..20 {
            let ws = Workspace::copy_from(src.path()).unwrap();
            std::fs::write(ws.root().join("a.py"), "x = 2\n").unwrap();
            let index = ws.root().join(".git/index");
            if mtime_s(&ws.root().join("a.py")) != mtime_s(&index) {
                continue; // crossed a second boundary: not the racy case
            }
            // Diff in the next second, as a slower step would.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            std::thread::sleep(std::time::Duration::from_nanos(
                1_000_000_000 - u64::from(now.subsec_nanos()) + 20_000_000,
            ));
            let diff = ws.diff().unwrap();
            assert!(
                diff.contains("+x = 2"),
                "edit missing from the diff: {diff:?}"
            );
            assert_eq!(ws.changed_paths().unwrap(), ["a.py"]);
            return;
        }
        panic!("never managed a same-second edit");
    }

    #[test]
    fn diff_reset_and_protected_restore() {
        let src = repo();
        let ws = Workspace::copy_from(src.path()).unwrap();
        assert_eq!(ws.diff().unwrap(), "");
        std::fs::write(ws.root().join("a.py"), "x = 2\n").unwrap();
        std::fs::write(ws.root().join("tests/test_a.py"), "def test(): assert 0\n").unwrap();
        std::fs::write(ws.root().join("tests/test_new.py"), "x\n").unwrap();
        let restored = ws.restore_matching(&["tests/**".into()]).unwrap();
        assert_eq!(restored.len(), 2);
        let diff = ws.diff().unwrap();
        assert!(
            diff.contains("+x = 2") && !diff.contains("tests/"),
            "{diff}"
        );
        ws.reset().unwrap();
        assert_eq!(ws.diff().unwrap(), "");
        // the source was never touched
        assert_eq!(
            std::fs::read_to_string(src.path().join("a.py")).unwrap(),
            "x = 1\n"
        );
    }

    #[test]
    fn purge_removes_bytecode_only() {
        let src = repo();
        let ws = Workspace::copy_from(src.path()).unwrap();
        std::fs::create_dir_all(ws.root().join("__pycache__")).unwrap();
        std::fs::write(ws.root().join("__pycache__/a.cpython-311.pyc"), "x").unwrap();
        std::fs::write(ws.root().join("b.pyc"), "x").unwrap();
        assert_eq!(ws.purge_bytecode().unwrap(), 2);
        assert!(ws.root().join("a.py").exists());
    }

    #[test]
    fn bytecode_in_the_users_tree_never_reaches_the_workspace() {
        let src = repo();
        std::fs::create_dir_all(src.path().join("__pycache__")).unwrap();
        std::fs::write(src.path().join("__pycache__/a.cpython-311.pyc"), "stale").unwrap();
        std::fs::write(src.path().join("c.pyc"), "stale").unwrap();
        let ws = Workspace::copy_from(src.path()).unwrap();
        assert!(!ws.root().join("__pycache__").exists());
        assert!(!ws.root().join("c.pyc").exists());
        assert!(ws.root().join("a.py").exists());
        // the user's tree keeps its files
        assert!(src.path().join("c.pyc").exists());
    }
}
