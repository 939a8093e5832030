//! The scratch workspace: a private copy of the user's repo that the agent
//! may change, next to harness-owned state it can never reach.
//!
//! Layout of one workspace (a 0700 temporary directory):
//! - `repo/`: the agent's tree. The only thing a sandbox mounts writable.
//!   It has no `.git`: nothing in it can steer the host-side git.
//! - `state/git`: the harness's git directory (baseline commit, index,
//!   excludes). Every git process runs through [`crate::git::Git`] with
//!   this directory and an explicit work tree.
//! - `state/pristine/`: a byte copy of the original tree, never mounted.
//!   Each gate run starts from a fresh copy of it ([`Workspace::fresh_tree`])
//!   with only the candidate patch applied, so nothing the agent wrote
//!   outside its diff (ignored files, caches, planted plugins) reaches the
//!   verdict.
//!
//! The user's repo is only ever read, which is what makes dry runs leave it
//! byte-identical, mtimes included. Files that look like secrets are masked:
//! they are copied neither into `repo/` nor into `state/pristine/`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use super::SandboxError;
use crate::git::{Git, GitError};

/// Name of the baseline ref inside the harness's git directory.
pub const BASELINE_REF: &str = "refs/airgate/baseline";

/// Untracked paths that test runs create and that never belong in a patch.
const BUILD_ARTEFACTS: &str = "__pycache__/\n*.pyc\n.pytest_cache/\n/target/\nnode_modules/\n.mypy_cache/\n*.egg-info/\n/Cargo.lock\n";

/// The built-in secret-file globs (`configs/secrets.toml`).
const SECRETS_TOML: &str = include_str!("../../configs/secrets.toml");

impl From<GitError> for SandboxError {
    fn from(e: GitError) -> Self {
        SandboxError::Git(e.to_string())
    }
}

/// Which files of the user's tree are masked from the agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Gitignore-style globs (a pattern without `/` matches at any depth).
    pub mask: Vec<String>,
}

impl SecretsConfig {
    /// The installation's list (`$AIRGATE_CONFIG_DIR/secrets.toml`, else the
    /// built-in one); never the current directory.
    pub fn load(explicit: Option<&Path>) -> Result<Self, SandboxError> {
        let loaded = crate::config::load("secrets.toml", explicit, SECRETS_TOML)
            .map_err(|e| SandboxError::Other(e.to_string()))?;
        toml::from_str(&loaded.text)
            .map_err(|e| SandboxError::Other(format!("invalid {}: {e}", loaded.origin)))
    }
}

/// A fresh pristine copy with a candidate patch applied, for one gate run.
/// Removed when dropped.
#[derive(Debug)]
pub struct FreshTree {
    dir: PathBuf,
    root: PathBuf,
    report: PathBuf,
    home: PathBuf,
}

impl FreshTree {
    /// The tree the tests run in.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// A harness-owned empty directory for structured test reports.
    pub fn report_dir(&self) -> &Path {
        &self.report
    }
    /// A harness-owned empty directory for the run's private `$HOME`.
    pub fn home_dir(&self) -> &Path {
        &self.home
    }
}

impl Drop for FreshTree {
    fn drop(&mut self) {
        let _ = make_writable_and_remove(&self.dir);
    }
}

/// A git-tracked scratch copy of a repo, with harness-owned state beside it.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    state: PathBuf,
    git: Git,
    masked: Vec<String>,
    // Keeps the temporary directories alive; removed on drop, on every exit
    // path that unwinds (panics included).
    _temp: Option<tempfile::TempDir>,
    _state_temp: Option<tempfile::TempDir>,
}

impl Workspace {
    /// Copies `repo` (without its `.git`, bytecode and secret-looking files)
    /// into a fresh temporary directory and commits the copy as the baseline.
    pub fn copy_from(repo: &Path) -> Result<Self, SandboxError> {
        Self::copy_from_with(repo, &SecretsConfig::load(None)?)
    }

    /// [`Workspace::copy_from`] with an explicit secrets list.
    pub fn copy_from_with(repo: &Path, secrets: &SecretsConfig) -> Result<Self, SandboxError> {
        let temp = tempfile::Builder::new()
            .prefix("airgate-ws-")
            .tempdir()
            .map_err(|e| SandboxError::io("creating scratch workspace", e))?;
        let root = temp.path().join("repo");
        let state = temp.path().join("state");
        let mask = build_globset(&secrets.mask)?;
        let masked = copy_tree_masked(repo, &root, Some(&mask))?;
        copy_tree_masked(repo, &state.join("pristine"), Some(&mask))?;
        let ws = Self {
            git: Git::new(state.join("git"), Some(&root)),
            root,
            state,
            masked,
            _temp: Some(temp),
            _state_temp: None,
        };
        ws.init_baseline()?;
        Ok(ws)
    }

    /// Uses `dir` in place (e.g. a tree already copied out of a container)
    /// and commits its current state as the baseline. A `.git` in `dir` is
    /// moved out into the harness's state, so a sandbox that mounts `dir`
    /// never sees git metadata the host will later act on.
    pub fn adopt(dir: &Path) -> Result<Self, SandboxError> {
        let state_temp = tempfile::Builder::new()
            .prefix("airgate-state-")
            .tempdir()
            .map_err(|e| SandboxError::io("creating workspace state", e))?;
        let state = state_temp.path().to_path_buf();
        let dotgit = dir.join(".git");
        if dotgit.symlink_metadata().is_ok() {
            std::fs::rename(&dotgit, state.join("original.git"))
                .or_else(|_| {
                    if dotgit.is_dir() {
                        std::fs::remove_dir_all(&dotgit)
                    } else {
                        std::fs::remove_file(&dotgit)
                    }
                })
                .map_err(|e| SandboxError::io("moving .git out of the workspace", e))?;
        }
        copy_tree_masked(dir, &state.join("pristine"), None)?;
        let ws = Self {
            root: dir.to_path_buf(),
            git: Git::new(state.join("git"), Some(dir)),
            state,
            masked: vec![],
            _temp: None,
            _state_temp: Some(state_temp),
        };
        ws.init_baseline()?;
        Ok(ws)
    }

    /// Lays the files of `src` that the tree lacks into it and into the
    /// pristine copy, then re-commits the baseline: the agent starts from
    /// `src` (e.g. an instance image's `/testbed`, with the files its build
    /// generated, such as `_pytest/_version.py` or built extensions), with
    /// the user's own files winning wherever both have a path. `src`'s
    /// top-level `.git` and bytecode are left out. Returns the paths added.
    pub fn add_missing_from(&self, src: &Path) -> Result<Vec<String>, SandboxError> {
        let pristine = self.state.join("pristine");
        let mut added = Vec::new();
        let mut it = walkdir::WalkDir::new(src)
            .follow_links(false)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter();
        while let Some(entry) = it.next() {
            let entry = entry
                .map_err(|e| SandboxError::Other(format!("walking {}: {e}", src.display())))?;
            let rel = entry
                .path()
                .strip_prefix(src)
                .map_err(|e| SandboxError::Other(e.to_string()))?
                .to_path_buf();
            if (entry.depth() == 1 && rel == Path::new(".git")) || is_bytecode(&entry) {
                if entry.file_type().is_dir() {
                    it.skip_current_dir();
                }
                continue;
            }
            let dst = self.root.join(&rel);
            match dst.symlink_metadata() {
                // A directory both have: look inside it.
                Ok(m) if m.is_dir() && entry.file_type().is_dir() => continue,
                // The user's path wins (a file over an image directory too).
                Ok(_) => {
                    if entry.file_type().is_dir() {
                        it.skip_current_dir();
                    }
                    continue;
                }
                Err(_) => {}
            }
            if entry.file_type().is_dir() {
                for d in [&dst, &pristine.join(&rel)] {
                    std::fs::create_dir_all(d)
                        .map_err(|e| SandboxError::io(format!("creating {}", d.display()), e))?;
                }
                continue;
            }
            if !entry.file_type().is_file() && !entry.file_type().is_symlink() {
                continue;
            }
            copy_one(entry.path(), &dst)?;
            copy_one(entry.path(), &pristine.join(&rel))?;
            added.push(rel.to_string_lossy().into_owned());
        }
        if !added.is_empty() {
            self.git.run(&["add", "-A"])?;
            self.git.run(&[
                "commit",
                "-q",
                "--allow-empty",
                "--no-verify",
                "-m",
                "airgate baseline: files of the sandbox image",
            ])?;
            self.git.run(&["update-ref", BASELINE_REF, "HEAD"])?;
        }
        Ok(added)
    }

    /// The workspace root on the host (the agent's tree).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The harness-owned directory beside the tree (never mounted).
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// Paths (relative) of secret-looking files that were not copied.
    pub fn masked(&self) -> &[String] {
        &self.masked
    }

    fn init_baseline(&self) -> Result<(), SandboxError> {
        self.git.init()?;
        // Build artefacts that tests create must never show up in a patch.
        let info = self.git.git_dir().join("info");
        std::fs::create_dir_all(&info).map_err(|e| SandboxError::io("creating git info", e))?;
        std::fs::write(
            info.join("exclude"),
            format!("# airgate: build artefacts\n{BUILD_ARTEFACTS}"),
        )
        .map_err(|e| SandboxError::io("writing git excludes", e))?;
        self.git.run(&["add", "-A"])?;
        self.git.run(&[
            "commit",
            "-q",
            "--allow-empty",
            "--no-verify",
            "-m",
            "airgate baseline",
        ])?;
        self.git.run(&["update-ref", BASELINE_REF, "HEAD"])?;
        Ok(())
    }

    /// Runs the harness's git on the agent's tree, returning stdout.
    pub fn git(&self, args: &[&str]) -> Result<String, SandboxError> {
        Ok(self.git.run(args)?)
    }

    /// The unified diff of the agent's tree against the baseline, new files
    /// included; `""` when nothing changed. Computed with harness-owned
    /// state only.
    pub fn diff(&self) -> Result<String, SandboxError> {
        self.staged(&[
            "diff",
            "--cached",
            "--binary",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--ignore-submodules=all",
            BASELINE_REF,
        ])
    }

    /// Runs `git add -A`, then `args`, against a throwaway copy of the
    /// index in the harness's state.
    fn staged(&self, args: &[&str]) -> Result<String, SandboxError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let git_dir = self.git.git_dir();
        let scratch = git_dir.join(format!(
            "airgate-index-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        copy_index(&git_dir.join("index"), &scratch)
            .map_err(|e| SandboxError::io("copying the harness index", e))?;
        let git = self.git.with_index(&scratch);
        let out = git.run(&["add", "-A"]).and_then(|_| git.run(args));
        let _ = std::fs::remove_file(&scratch);
        Ok(out?)
    }

    /// Paths (relative) changed, added or deleted since the baseline.
    pub fn changed_paths(&self) -> Result<Vec<String>, SandboxError> {
        let names = self.staged(&[
            "diff",
            "--cached",
            "--name-only",
            "--no-renames",
            "--ignore-submodules=all",
            "-z",
            BASELINE_REF,
        ])?;
        Ok(names
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Puts the agent's tree back to the original: everything in it is
    /// removed (ignored files and planted state included) and the pristine
    /// copy is copied back. The directory itself stays (a container may
    /// have it mounted).
    pub fn reset(&self) -> Result<(), SandboxError> {
        clear_dir(&self.root)?;
        copy_tree_masked(&self.state.join("pristine"), &self.root, None)?;
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
            let pristine = self.state.join("pristine").join(&path);
            let full = self.root.join(&path);
            if full.symlink_metadata().is_ok() {
                if full.is_dir() && !full.is_symlink() {
                    std::fs::remove_dir_all(&full)
                } else {
                    std::fs::remove_file(&full)
                }
                .map_err(|e| SandboxError::io(format!("removing protected {path}"), e))?;
            }
            if pristine.symlink_metadata().is_ok() {
                copy_one(&pristine, &full)?;
            }
            restored.push(path);
        }
        Ok(restored)
    }

    /// Deletes `__pycache__` directories and `*.pyc` files, so Python never
    /// runs stale bytecode after a same-second, same-size edit.
    pub fn purge_bytecode(&self) -> Result<usize, SandboxError> {
        purge_bytecode_in(&self.root)
    }

    /// A fresh copy of the pristine tree with `patch` applied by the
    /// harness's git, in the harness-owned state directory. The gate runs
    /// the tests there, in a fresh sandbox.
    pub fn fresh_tree(&self, patch: &str) -> Result<FreshTree, SandboxError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = self
            .state
            .join(format!("gate-{}", SEQ.fetch_add(1, Ordering::Relaxed)));
        let fresh = FreshTree {
            root: dir.join("repo"),
            report: dir.join("report"),
            home: dir.join("home"),
            dir,
        };
        copy_tree_masked(&self.state.join("pristine"), &fresh.root, None)?;
        for d in [&fresh.report, &fresh.home] {
            std::fs::create_dir_all(d)
                .map_err(|e| SandboxError::io(format!("creating {}", d.display()), e))?;
        }
        if !patch.trim().is_empty() {
            apply_patch(&self.git.with_work_tree(&fresh.root), patch).map_err(|e| {
                SandboxError::Other(format!(
                    "the candidate patch does not apply to a pristine copy: {e}"
                ))
            })?;
        }
        Ok(fresh)
    }

    /// Applies exactly `patch` (the verified one) to `target`, the user's
    /// repo, with the harness's git (the target's own git config and hooks
    /// are never read). Returns the paths the patch touches.
    pub fn apply_to(&self, target: &Path, patch: &str) -> Result<Vec<String>, SandboxError> {
        if patch.trim().is_empty() {
            return Ok(vec![]);
        }
        let git = self.git.with_work_tree(target);
        let names =
            git.run_with_input(&["apply", "--numstat", "-z", "-"], Some(patch.as_bytes()))?;
        apply_patch(&git, patch)?;
        Ok(names
            .split('\0')
            .filter_map(|rec| rec.rsplit('\t').next())
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect())
    }
}

/// `git apply` of `patch` onto the runner's work tree (never through a
/// symlink, never outside the tree: git's own rules).
fn apply_patch(git: &Git, patch: &str) -> Result<(), GitError> {
    git.run_with_input(
        &["apply", "--whitespace=nowarn", "--binary", "-"],
        Some(patch.as_bytes()),
    )
    .map(|_| ())
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

fn purge_bytecode_in(root: &Path) -> Result<usize, SandboxError> {
    let mut removed = 0;
    let mut it = walkdir::WalkDir::new(root).into_iter();
    while let Some(entry) = it.next() {
        let Ok(entry) = entry else { continue };
        if entry.file_type().is_dir() {
            if is_bytecode(&entry) {
                std::fs::remove_dir_all(entry.path())
                    .map_err(|e| SandboxError::io("purging __pycache__", e))?;
                removed += 1;
                it.skip_current_dir();
            }
        } else if is_bytecode(&entry) {
            std::fs::remove_file(entry.path()).map_err(|e| SandboxError::io("purging *.pyc", e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Copies a directory tree (without the top-level `.git` and without Python
/// bytecode), preserving symlinks as symlinks and file permissions.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<(), SandboxError> {
    copy_tree_masked(src, dst, None).map(|_| ())
}

/// [`copy_tree`], leaving out files whose relative path matches `mask`;
/// returns the paths left out. Only directories, regular files and
/// symlinks are copied (no FIFOs, sockets or devices); hard links become
/// independent files.
fn copy_tree_masked(
    src: &Path,
    dst: &Path,
    mask: Option<&GlobSet>,
) -> Result<Vec<String>, SandboxError> {
    std::fs::create_dir_all(dst)
        .map_err(|e| SandboxError::io(format!("creating {}", dst.display()), e))?;
    let mut masked = Vec::new();
    let mut it = walkdir::WalkDir::new(src)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
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
        let ft = entry.file_type();
        if !ft.is_dir()
            && let Some(mask) = mask
            && mask.is_match(rel)
        {
            masked.push(rel.to_string_lossy().into_owned());
            continue;
        }
        let target = dst.join(rel);
        if ft.is_dir() {
            std::fs::create_dir_all(&target)
                .map_err(|e| SandboxError::io(format!("creating {}", target.display()), e))?;
        } else {
            copy_one(entry.path(), &target)?;
        }
    }
    Ok(masked)
}

/// Copies one file or symlink (special files are skipped).
fn copy_one(src: &Path, dst: &Path) -> Result<(), SandboxError> {
    let meta = src
        .symlink_metadata()
        .map_err(|e| SandboxError::io(format!("reading {}", src.display()), e))?;
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| SandboxError::io(format!("creating {}", parent.display()), e))?;
    }
    if meta.file_type().is_symlink() {
        let link = std::fs::read_link(src)
            .map_err(|e| SandboxError::io(format!("reading link {}", src.display()), e))?;
        std::os::unix::fs::symlink(&link, dst)
            .map_err(|e| SandboxError::io(format!("creating link {}", dst.display()), e))?;
    } else if meta.is_file() {
        // copy_file_range: a reflink where the filesystem can.
        std::fs::copy(src, dst)
            .map_err(|e| SandboxError::io(format!("copying {}", src.display()), e))?;
    }
    Ok(())
}

/// Removes everything inside `dir`, keeping `dir` itself. Read-only
/// directories the agent left behind are made writable first.
fn clear_dir(dir: &Path) -> Result<(), SandboxError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| SandboxError::io(format!("listing {}", dir.display()), e))?;
    for entry in entries.flatten() {
        let p = entry.path();
        make_writable_and_remove(&p)
            .map_err(|e| SandboxError::io(format!("removing {}", p.display()), e))?;
    }
    Ok(())
}

fn make_writable_and_remove(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match p.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(p);
    }
    if std::fs::remove_dir_all(p).is_ok() {
        return Ok(());
    }
    for entry in walkdir::WalkDir::new(p)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_dir() {
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o700));
        }
    }
    std::fs::remove_dir_all(p)
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
    fn image_files_fill_gaps_without_overwriting_or_entering_the_diff() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("pkg")).unwrap();
        std::fs::write(src.path().join("pkg/mod.py"), "user\n").unwrap();
        let ws = Workspace::copy_from(src.path()).unwrap();
        let image = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(image.path().join("pkg")).unwrap();
        std::fs::create_dir_all(image.path().join(".git")).unwrap();
        std::fs::write(image.path().join(".git/HEAD"), "x").unwrap();
        std::fs::write(image.path().join("pkg/mod.py"), "image\n").unwrap();
        std::fs::write(image.path().join("pkg/_version.py"), "v = 1\n").unwrap();
        let added = ws.add_missing_from(image.path()).unwrap();
        assert_eq!(added, vec!["pkg/_version.py".to_string()]);
        let root = ws.root();
        assert_eq!(
            std::fs::read_to_string(root.join("pkg/mod.py")).unwrap(),
            "user\n"
        );
        assert!(root.join("pkg/_version.py").is_file());
        assert!(!root.join(".git/HEAD").exists());
        assert_eq!(ws.diff().unwrap(), "");
        // The gate's pristine copy has it too.
        let fresh = ws.fresh_tree("").unwrap();
        assert!(fresh.root().join("pkg/_version.py").is_file());
        // Control: a real edit still shows.
        std::fs::write(root.join("pkg/mod.py"), "edited\n").unwrap();
        assert!(ws.diff().unwrap().contains("+edited"));
    }

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
            let index = ws.state_dir().join("git/index");
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
    /// Attack: files the agent wrote outside its diff (an ignored plugin,
    /// a planted `.git`) never reach the gate's tree; control: the patch
    /// does.
    #[test]
    fn fresh_tree_holds_the_patch_and_nothing_else() {
        let src = repo();
        let ws = Workspace::copy_from(src.path()).unwrap();
        std::fs::write(ws.root().join("a.py"), "x = 2\n").unwrap();
        std::fs::create_dir_all(ws.root().join("evil.egg-info")).unwrap();
        std::fs::write(ws.root().join("evil.egg-info/plugin.py"), "boom").unwrap();
        std::fs::create_dir_all(ws.root().join(".git/hooks")).unwrap();
        std::fs::write(ws.root().join(".git/hooks/post-checkout"), "boom").unwrap();
        let patch = ws.diff().unwrap();
        assert!(patch.contains("+x = 2"), "{patch}");
        assert!(
            !patch.contains("egg-info") && !patch.contains(".git/"),
            "{patch}"
        );
        let fresh = ws.fresh_tree(&patch).unwrap();
        assert_eq!(
            std::fs::read_to_string(fresh.root().join("a.py")).unwrap(),
            "x = 2\n"
        );
        assert!(!fresh.root().join("evil.egg-info").exists());
        assert!(!fresh.root().join(".git").exists());
        assert!(fresh.report_dir().is_dir() && fresh.home_dir().is_dir());
        let gone = fresh.root().to_path_buf();
        drop(fresh);
        assert!(!gone.exists(), "a fresh tree outlived its gate run");
        // Reset wipes the planted state too.
        ws.reset().unwrap();
        assert!(!ws.root().join("evil.egg-info").exists());
        assert!(!ws.root().join(".git").exists());
        assert_eq!(ws.diff().unwrap(), "");
    }

    /// A patch that does not apply to the pristine tree is an error, never
    /// a silent pass on the unpatched tree.
    #[test]
    fn a_patch_that_does_not_apply_is_an_error() {
        let src = repo();
        let ws = Workspace::copy_from(src.path()).unwrap();
        let bogus =
            "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-y = 9\n+y = 10\n";
        assert!(ws.fresh_tree(bogus).is_err());
    }

    /// Secret-looking files are copied neither to the agent nor to the
    /// pristine tree; ordinary files are.
    #[test]
    fn secrets_are_masked() {
        let src = repo();
        std::fs::write(src.path().join(".env"), "API_KEY=decoy-123456789\n").unwrap();
        std::fs::create_dir_all(src.path().join("deploy")).unwrap();
        std::fs::write(src.path().join("deploy/server.pem"), "-----BEGIN").unwrap();
        std::fs::write(src.path().join("deploy/app.yaml"), "port: 80\n").unwrap();
        let ws = Workspace::copy_from(src.path()).unwrap();
        let mut masked = ws.masked().to_vec();
        masked.sort();
        assert_eq!(masked, [".env", "deploy/server.pem"]);
        assert!(!ws.root().join(".env").exists());
        assert!(!ws.state_dir().join("pristine/.env").exists());
        assert!(ws.root().join("deploy/app.yaml").exists());
    }

    /// `adopt` moves the tree's `.git` out of the tree (a container that
    /// mounts it must never see git state the host acts on).
    #[test]
    fn adopt_moves_git_out_of_the_tree() {
        let src = repo();
        std::fs::create_dir_all(src.path().join(".git/hooks")).unwrap();
        std::fs::write(src.path().join(".git/config"), "[core]\n").unwrap();
        let ws = Workspace::adopt(src.path()).unwrap();
        assert!(!src.path().join(".git").exists());
        std::fs::write(ws.root().join("a.py"), "x = 3\n").unwrap();
        assert!(ws.diff().unwrap().contains("+x = 3"));
    }

    /// `apply_to` writes exactly the patch: other files keep their bytes
    /// and mtimes, and an ignored file the agent made is not copied.
    #[test]
    fn apply_writes_exactly_the_patch() {
        let src = repo();
        let before = std::fs::metadata(src.path().join("tests/test_a.py"))
            .unwrap()
            .modified()
            .unwrap();
        let ws = Workspace::copy_from(src.path()).unwrap();
        std::fs::write(ws.root().join("a.py"), "x = 2\n").unwrap();
        std::fs::write(ws.root().join("new.py"), "y = 1\n").unwrap();
        std::fs::create_dir_all(ws.root().join("__pycache__")).unwrap();
        std::fs::write(ws.root().join("__pycache__/junk.pyc"), "x").unwrap();
        let patch = ws.diff().unwrap();
        let mut touched = ws.apply_to(src.path(), &patch).unwrap();
        touched.sort();
        assert_eq!(touched, ["a.py", "new.py"]);
        assert_eq!(
            std::fs::read_to_string(src.path().join("a.py")).unwrap(),
            "x = 2\n"
        );
        assert!(!src.path().join("__pycache__").exists());
        let after = std::fs::metadata(src.path().join("tests/test_a.py"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
    }
}
