//! The one git runner. Every git process airgate starts on the host goes
//! through [`Git`], so none of them can be steered by files the agent (or
//! the repository being fixed) wrote.
//!
//! The rules, from the sandbox issue:
//! - the git directory is harness-owned and passed explicitly
//!   (`--git-dir`, `--work-tree`), never discovered from the work tree, so a
//!   `.git` the agent planted (hooks, `core.fsmonitor`, `core.worktree`,
//!   aliases, filters) is never read;
//! - no system or global config (`GIT_CONFIG_NOSYSTEM`,
//!   `GIT_CONFIG_GLOBAL=/dev/null`), a cleared environment (no inherited
//!   `GIT_*` variable), hooks pointed at `/dev/null`, fsmonitor, external
//!   diff, textconv and pagers off;
//! - attributes come from the empty tree (`GIT_ATTR_SOURCE`), so an in-tree
//!   `.gitattributes` cannot name a filter or change line endings.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::Retryable;

/// The id of git's empty tree: attributes are read from it, i.e. none.
pub const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// Config forced on every invocation (`-c` beats every config file).
const FORCED: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.untrackedCache=false",
    "core.splitIndex=false",
    "core.quotepath=false",
    "core.autocrlf=false",
    "core.safecrlf=false",
    "core.symlinks=true",
    "core.fileMode=true",
    "core.pager=cat",
    "core.attributesFile=/dev/null",
    "core.excludesFile=/dev/null",
    "core.sparseCheckout=false",
    "diff.noprefix=false",
    "diff.mnemonicPrefix=false",
    "diff.relative=false",
    "diff.renames=false",
    "diff.submodule=short",
    "status.showUntrackedFiles=all",
    "protocol.allow=never",
    "submodule.recurse=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "safe.directory=*",
    "user.name=airgate",
    "user.email=airgate@localhost",
    "init.defaultBranch=main",
    "advice.detachedHead=false",
];

/// A git failure, with what was run and what git said.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started at all.
    #[error("could not run git ({0}): install git (apt-get install git)")]
    Spawn(std::io::Error),
    /// git ran and exited non-zero.
    #[error("git {args}: {stderr}")]
    Failed {
        /// The arguments, joined.
        args: String,
        /// What git printed on stderr (trimmed).
        stderr: String,
        /// Exit code, if any.
        code: Option<i32>,
    },
}

impl Retryable for GitError {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// A git runner bound to a harness-owned git directory and an explicit work
/// tree.
#[derive(Debug, Clone)]
pub struct Git {
    git_dir: PathBuf,
    work_tree: Option<PathBuf>,
    index: Option<PathBuf>,
    protocols: Option<String>,
}

impl Git {
    /// A runner for `git_dir` with `work_tree` (the tree git reads files from).
    pub fn new(git_dir: impl Into<PathBuf>, work_tree: Option<&Path>) -> Self {
        Self {
            git_dir: git_dir.into(),
            work_tree: work_tree.map(Path::to_path_buf),
            index: None,
            protocols: None,
        }
    }

    /// The same runner with `GIT_INDEX_FILE` set to `index`.
    pub fn with_index(&self, index: &Path) -> Self {
        Self {
            index: Some(index.to_path_buf()),
            ..self.clone()
        }
    }

    /// The same runner on another work tree.
    pub fn with_work_tree(&self, work_tree: &Path) -> Self {
        Self {
            work_tree: Some(work_tree.to_path_buf()),
            ..self.clone()
        }
    }

    /// The same runner allowed to fetch over `protocols` (e.g. `file`,
    /// `https`): by default every transport is refused, so only a caller
    /// that names a mirror opens one.
    pub fn with_protocols(&self, protocols: &[&str]) -> Self {
        Self {
            protocols: Some(protocols.join(":")),
            ..self.clone()
        }
    }

    /// The git directory.
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    /// `git` with the cleared environment and the forced config, bound to
    /// no repository yet (`home` is its `HOME`).
    fn bare_command(home: &Path, attr_source: bool) -> Command {
        let mut cmd = Command::new("git");
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env("HOME", home)
            .env("LC_ALL", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env("GIT_NO_REPLACE_OBJECTS", "1")
            .env("GIT_ALLOW_PROTOCOL", "")
            .env("GIT_CEILING_DIRECTORIES", "/");
        if attr_source {
            cmd.env("GIT_ATTR_SOURCE", EMPTY_TREE);
        }
        for c in FORCED {
            cmd.arg("-c").arg(c);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Clones the local repository `src` into `dst` (a new folder) and
    /// returns the runner for the clone. Only the local file transport is
    /// allowed, objects are copied (no hardlinks into `src`), and the
    /// forced config holds: no hook or filter of `src` runs.
    pub fn clone_local(src: &Path, dst: &Path) -> Result<Git, GitError> {
        let home = dst.parent().unwrap_or(dst);
        let mut cmd = Self::bare_command(home, false);
        cmd.env("GIT_ALLOW_PROTOCOL", "file")
            .current_dir(home)
            .args(["clone", "-q", "--no-hardlinks", "--"])
            .arg(src)
            .arg(dst);
        let args = format!(
            "clone -q --no-hardlinks -- {} {}",
            src.display(),
            dst.display()
        );
        Self::output(cmd, None, args)?;
        Ok(Git::new(dst.join(".git"), Some(dst)))
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        // git 2.47 segfaults in `apply` with GIT_ATTR_SOURCE set; apply
        // writes exactly the patch text whatever the attributes say.
        let attr_source = args.first().is_none_or(|a| a.as_ref() != "apply");
        let mut cmd = Self::bare_command(&self.git_dir, attr_source);
        if let Some(index) = &self.index {
            cmd.env("GIT_INDEX_FILE", index);
        }
        if let Some(protocols) = &self.protocols {
            cmd.env("GIT_ALLOW_PROTOCOL", protocols);
        }
        cmd.arg("--git-dir").arg(&self.git_dir);
        match &self.work_tree {
            Some(w) => {
                cmd.arg("--work-tree").arg(w).current_dir(w);
            }
            None => {
                cmd.current_dir(&self.git_dir);
            }
        }
        cmd.args(args);
        cmd
    }

    /// Runs git with `args`, returning stdout.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String, GitError> {
        self.run_with_input(args, None)
    }

    /// Runs git with `args`, feeding `input` on stdin.
    pub fn run_with_input<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        input: Option<&[u8]>,
    ) -> Result<String, GitError> {
        let cmd = self.command(args);
        let joined = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        Self::output(cmd, input, joined)
    }

    /// Runs `cmd`, feeding `input`; stdout, or the failure with `args`.
    fn output(mut cmd: Command, input: Option<&[u8]>, args: String) -> Result<String, GitError> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().map_err(GitError::Spawn)?;
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            // A write error shows up as git's own failure below.
            let _ = stdin.write_all(data);
        }
        let out = child.wait_with_output().map_err(GitError::Spawn)?;
        if !out.status.success() {
            return Err(GitError::Failed {
                args,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                code: out.status.code(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates the git directory (`git init --bare`-style, with a work tree
    /// given per call) if it does not exist yet.
    pub fn init(&self) -> Result<(), GitError> {
        if self.git_dir.join("HEAD").is_file() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.git_dir).map_err(GitError::Spawn)?;
        Git {
            work_tree: None,
            ..self.clone()
        }
        .run(&["init", "-q", "--bare"])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Git) {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("tree");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(tree.join("a.txt"), "one\n").unwrap();
        let git = Git::new(d.path().join("git"), Some(&tree));
        git.init().unwrap();
        (d, git)
    }

    /// A `.git` the agent planted in the work tree (hooks, fsmonitor,
    /// core.worktree, a filter) is never read: nothing it names runs.
    /// Control: the harness-owned repo records the tree normally.
    #[test]
    fn planted_git_state_never_runs() {
        let (d, git) = setup();
        let tree = d.path().join("tree");
        let marker = d.path().join("pwned");
        let evil = tree.join(".git");
        std::fs::create_dir_all(evil.join("hooks")).unwrap();
        let script = format!("#!/bin/sh\ntouch {}\n", marker.display());
        for hook in [
            "pre-commit",
            "post-checkout",
            "post-index-change",
            "fsmonitor",
        ] {
            let p = evil.join("hooks").join(hook);
            std::fs::write(&p, &script).unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        std::fs::write(
            evil.join("config"),
            format!(
                "[core]\n\tfsmonitor = {m}\n\tworktree = /\n\thooksPath = {h}\n[filter \"x\"]\n\tclean = touch {p}\n\tsmudge = touch {p}\n",
                m = evil.join("hooks/fsmonitor").display(),
                h = evil.join("hooks").display(),
                p = marker.display()
            ),
        )
        .unwrap();
        std::fs::write(tree.join(".gitattributes"), "* filter=x\n").unwrap();
        git.run(&["add", "-A"]).unwrap();
        git.run(&["commit", "-q", "-m", "base"]).unwrap();
        std::fs::write(tree.join("a.txt"), "two\n").unwrap();
        git.run(&["add", "-A"]).unwrap();
        let diff = git.run(&["diff", "--cached", "HEAD"]).unwrap();
        git.run(&["checkout", "-q", "HEAD", "--", "a.txt"]).unwrap();
        assert!(!marker.exists(), "a planted hook, fsmonitor or filter ran");
        assert!(diff.contains("-one\n+two"), "{diff}");
        let files = git.run(&["ls-files"]).unwrap();
        assert!(!files.contains(".git/"), "{files}");
        assert_eq!(
            std::fs::read_to_string(tree.join("a.txt")).unwrap(),
            "one\n"
        );
    }

    /// Inherited git variables (GIT_DIR, GIT_WORK_TREE, config injection)
    /// never reach the runner.
    #[test]
    fn inherited_git_environment_is_ignored() {
        let (_d, git) = setup();
        let cmd = git.command(["status"]);
        let envs: Vec<_> = cmd.get_envs().collect();
        assert!(envs.iter().all(|(k, _)| {
            let k = k.to_string_lossy();
            !k.starts_with("GIT_CONFIG_COUNT") && k != "GIT_DIR" && k != "GIT_WORK_TREE"
        }));
        assert!(
            envs.iter()
                .any(|(k, v)| k == &OsStr::new("GIT_CONFIG_GLOBAL")
                    && *v == Some(OsStr::new("/dev/null")))
        );
    }

    /// A clone shares no object file with its source (the agent may write
    /// to the clone; the dataset's repository must not change through it).
    /// Control: the clone holds the source's commit and checks it out.
    #[test]
    fn clone_local_copies_objects() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let src_git = Git::new(src.join(".git"), Some(&src));
        src_git.run(&["init", "-q"]).unwrap();
        std::fs::write(src.join("b.txt"), "b\n").unwrap();
        src_git.run(&["add", "-A"]).unwrap();
        src_git.run(&["commit", "-q", "-m", "one"]).unwrap();
        let head = src_git.run(&["rev-parse", "HEAD"]).unwrap();
        let dst = d.path().join("dst");
        let clone = Git::clone_local(&src, &dst).unwrap();
        let mut objects = 0;
        for e in walkdir::WalkDir::new(dst.join(".git/objects")) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                objects += 1;
                assert_eq!(e.metadata().unwrap().nlink(), 1, "{}", e.path().display());
            }
        }
        assert!(objects > 0);
        std::fs::write(dst.join("b.txt"), "changed\n").unwrap();
        clone
            .run(&["checkout", "-q", "--detach", head.trim()])
            .unwrap();
        clone.run(&["checkout", "-q", "--", "b.txt"]).unwrap();
        assert_eq!(std::fs::read_to_string(dst.join("b.txt")).unwrap(), "b\n");
    }
}
