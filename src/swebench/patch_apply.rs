//! The patch-apply chain of the official 5.0.2 harness: `git apply
//! --verbose`, then `--3way`, then `--reject`, then `patch --fuzz=5`,
//! resetting the tree between tries; if all fail, a reverse check catches a
//! patch that ended up applied anyway. Runs in any [`Shell`] (a container
//! or, for tests, a local directory).

use std::time::Duration;

use async_trait::async_trait;

use crate::sandbox::docker::{Container, DockerSandbox};
use crate::sandbox::local::LocalSandbox;
use crate::sandbox::{ExecOutput, ExecRequest, Sandbox, SandboxError};

/// The commands tried in order, each followed by the patch path.
pub const GIT_APPLY_CMDS: [&str; 4] = [
    "git apply --verbose",
    "git apply --verbose --3way",
    "git apply --verbose --reject",
    "patch --batch --forward --fuzz=5 -p1 -i",
];
/// Log line prefix when a patch applied.
pub const APPLY_PATCH_PASS: &str = ">>>>> Applied Patch";
/// Log line prefix (and error message) when no command applied the patch.
pub const APPLY_PATCH_FAIL: &str = ">>>>> Patch Apply Failed";
/// Where the harness puts the patch inside the container.
pub const CONTAINER_PATCH_FILE: &str = "/tmp/patch.diff";

const RESET: &str = "git checkout -- . ; git clean -fd";
const STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// Something that runs a shell command in the repository root.
#[async_trait]
pub trait Shell: Send + Sync {
    /// Runs `command` with `bash -c` from the repo root.
    async fn run(&self, command: &str, timeout: Duration) -> Result<ExecOutput, SandboxError>;
}

#[async_trait]
impl Shell for Container {
    async fn run(&self, command: &str, timeout: Duration) -> Result<ExecOutput, SandboxError> {
        self.exec(&ExecRequest::new(command, timeout)).await
    }
}

#[async_trait]
impl Shell for DockerSandbox {
    async fn run(&self, command: &str, timeout: Duration) -> Result<ExecOutput, SandboxError> {
        self.exec(&ExecRequest::new(command, timeout)).await
    }
}

#[async_trait]
impl Shell for LocalSandbox {
    async fn run(&self, command: &str, timeout: Duration) -> Result<ExecOutput, SandboxError> {
        self.exec(&ExecRequest::new(command, timeout)).await
    }
}

#[async_trait]
impl Shell for Box<dyn crate::sandbox::Sandbox> {
    async fn run(&self, command: &str, timeout: Duration) -> Result<ExecOutput, SandboxError> {
        self.exec(&ExecRequest::new(command, timeout)).await
    }
}

/// How the chain went.
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    /// True when the patch is in the tree.
    pub applied: bool,
    /// The command that applied it (`None` if none did, or only the reverse
    /// check found it applied).
    pub command: Option<String>,
    /// Output of the last command tried.
    pub output: String,
    /// Lines for `run_instance.log`, in the official wording.
    pub log: Vec<String>,
}

impl ApplyOutcome {
    /// The official error text when the patch did not apply.
    pub fn failure_message(&self) -> String {
        format!("{APPLY_PATCH_FAIL}:\n{}", self.output)
    }
}

/// Applies the patch at `patch_path` (a path the shell can read).
pub async fn apply_chain(
    shell: &dyn Shell,
    patch_path: &str,
) -> Result<ApplyOutcome, SandboxError> {
    let mut log = Vec::new();
    let mut last = String::new();
    for (attempt, cmd) in GIT_APPLY_CMDS.iter().enumerate() {
        if attempt > 0 {
            // A failed try (notably --reject) leaves partial state behind.
            shell.run(RESET, STEP_TIMEOUT).await?;
        }
        let full = format!("{cmd} {patch_path}");
        let out = shell.run(&full, STEP_TIMEOUT).await?;
        last = out.output.clone();
        if out.success() {
            log.push(format!("{APPLY_PATCH_PASS}:\n{}", out.output));
            return Ok(ApplyOutcome {
                applied: true,
                command: Some(cmd.to_string()),
                output: out.output,
                log,
            });
        }
        log.push(format!("Failed to apply patch to container: {cmd}"));
    }
    // The chain can leave the patch applied while every command exited non-zero.
    let reverse = shell
        .run(
            &format!("git apply --check --reverse {patch_path}"),
            STEP_TIMEOUT,
        )
        .await?;
    if reverse.success() {
        log.push(format!("{APPLY_PATCH_PASS}: verified already applied"));
        return Ok(ApplyOutcome {
            applied: true,
            command: None,
            output: last,
            log,
        });
    }
    log.push(format!("{APPLY_PATCH_FAIL}:\n{last}"));
    Ok(ApplyOutcome {
        applied: false,
        command: None,
        output: last,
        log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::Git;

    fn git(dir: &std::path::Path, args: &[&str]) -> String {
        Git::new(dir.join(".git"), Some(dir)).run(args).unwrap()
    }

    fn repo() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let body: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(d.path().join("f.txt"), body).unwrap();
        git(d.path(), &["init", "-q"]);
        git(d.path(), &["add", "."]);
        git(d.path(), &["commit", "-qm", "base"]);
        d
    }

    #[tokio::test]
    async fn clean_patch_applies_with_the_first_command() {
        let d = repo();
        let patch = "diff --git a/f.txt b/f.txt\n--- a/f.txt\n+++ b/f.txt\n@@ -1,3 +1,3 @@\n line 1\n-line 2\n+LINE 2\n line 3\n";
        let p = d.path().join("../p1.diff");
        std::fs::write(&p, patch).unwrap();
        let sh = LocalSandbox::new(d.path());
        let out = apply_chain(&sh, p.to_str().unwrap()).await.unwrap();
        assert!(out.applied);
        assert_eq!(out.command.as_deref(), Some("git apply --verbose"));
        let f = std::fs::read_to_string(d.path().join("f.txt")).unwrap();
        assert!(f.contains("LINE 2"));
    }

    #[tokio::test]
    async fn offset_context_falls_through_to_patch_fuzz() {
        let d = repo();
        // Context lines that do not match exactly (git apply refuses; patch
        // with fuzz accepts).
        let patch = "--- a/f.txt\n+++ b/f.txt\n@@ -9,7 +9,7 @@\n line 9\n line X10\n line 11\n-line 12\n+LINE 12\n line 13\n line 14\n line Y15\n";
        let p = d.path().join("../p2.diff");
        std::fs::write(&p, patch).unwrap();
        let sh = LocalSandbox::new(d.path());
        let out = apply_chain(&sh, p.to_str().unwrap()).await.unwrap();
        assert!(out.applied, "{:?}", out.log);
        assert_eq!(
            out.command.as_deref(),
            Some("patch --batch --forward --fuzz=5 -p1 -i")
        );
        assert_eq!(out.log.len(), 4);
    }

    #[tokio::test]
    async fn garbage_fails_with_the_official_message_and_a_clean_tree() {
        let d = repo();
        let patch = "diff --git a/nope.txt b/nope.txt\n--- a/nope.txt\n+++ b/nope.txt\n@@ -1,1 +1,1 @@\n-a\n+b\n";
        let p = d.path().join("../p3.diff");
        std::fs::write(&p, patch).unwrap();
        let sh = LocalSandbox::new(d.path());
        let out = apply_chain(&sh, p.to_str().unwrap()).await.unwrap();
        assert!(!out.applied);
        assert!(
            out.failure_message()
                .starts_with(">>>>> Patch Apply Failed:\n")
        );
        assert!(out.log.last().unwrap().starts_with(APPLY_PATCH_FAIL));
        let status = git(d.path(), &["status", "--porcelain"]);
        assert!(status.is_empty(), "{status}");
    }
}
