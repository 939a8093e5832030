//! No git history mining: before an agent runs, remove every trace of
//! commits after `base_commit` from the repository, so `git log --all`,
//! `git tag`, the reflog or a dangling object cannot reveal the fix.
//!
//! What is kept: one branch (the current name, else `main`) at
//! `base_commit`, or at `HEAD` when the only commits between the two are the
//! official image's setup commit (author `setup@swebench.config`). What
//! goes: every other ref (tags, remote branches, stash, notes, replace
//! refs), remotes, `FETCH_HEAD`/`ORIG_HEAD` and friends, object alternates,
//! the reflog, and all unreachable objects (`git gc --prune=now`).
//!
//! The work is one shell script, so the same code runs in a container or on
//! a host checkout through [`Shell`].

use std::time::Duration;

use crate::error::Retryable;
use crate::sandbox::SandboxError;
use crate::swebench::patch_apply::Shell;

/// Hygiene failures.
#[derive(Debug, thiserror::Error)]
pub enum HygieneError {
    /// The sandbox failed to run the script.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The script ran and failed (bad commit, not a repo, leftovers found).
    #[error("stripping git history after {base_commit} failed: {output}")]
    Failed {
        /// The commit that should have been kept.
        base_commit: String,
        /// Script output.
        output: String,
    },
    /// `base_commit` is not a plain hex commit id.
    #[error("base_commit {0:?} is not a commit id (expected 7-40 hex digits)")]
    BadCommit(String),
}

impl Retryable for HygieneError {
    fn is_retryable(&self) -> bool {
        matches!(self, HygieneError::Sandbox(e) if e.is_retryable())
    }
}

/// The shell script that strips history after `base_commit` in the current
/// directory. Fails (non-zero) if a commit outside the kept history remains.
pub fn hygiene_script(base_commit: &str) -> Result<String, HygieneError> {
    if !(7..=40).contains(&base_commit.len()) || !base_commit.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(HygieneError::BadCommit(base_commit.into()));
    }
    Ok(format!(
        r#"set -eu
export GIT_TERMINAL_PROMPT=0
base=$(git rev-parse --verify --quiet '{base_commit}^{{commit}}') || {{ echo "base commit {base_commit} not found"; exit 1; }}
target=$base
head=$(git rev-parse --verify --quiet 'HEAD^{{commit}}' || true)
if [ -n "$head" ] && [ "$head" != "$base" ] && git merge-base --is-ancestor "$base" "$head"; then
  others=$(git log --format=%ae "$base..$head" | grep -vcx 'setup@swebench.config' || true)
  if [ "$others" = "0" ]; then target=$head; fi
fi
branch=$(git symbolic-ref --short -q HEAD || echo main)
for r in $(git remote); do git remote remove "$r"; done
git for-each-ref --format='%(refname)' | while read -r ref; do git update-ref -d "$ref"; done
git update-ref "refs/heads/$branch" "$target"
git symbolic-ref HEAD "refs/heads/$branch"
gd=$(git rev-parse --git-dir)
rm -f "$gd/FETCH_HEAD" "$gd/ORIG_HEAD" "$gd/MERGE_HEAD" "$gd/CHERRY_PICK_HEAD" "$gd/REVERT_HEAD" "$gd/BISECT_LOG" "$gd/objects/info/alternates" "$gd/packed-refs.lock"
rm -rf "$gd/logs" "$gd/refs/original" "$gd/rebase-merge" "$gd/rebase-apply"
git worktree prune
git reflog expire --expire=now --all
git -c gc.cruftPacks=false gc --prune=now --quiet
kept=$(git rev-list "$target" | wc -l)
all=$(git rev-list --all --reflog | wc -l)
loose=$(git fsck --unreachable --no-reflogs 2>/dev/null | grep -c 'unreachable commit' || true)
if [ "$kept" != "$all" ] || [ "$loose" != "0" ]; then echo "history leak: kept=$kept all=$all unreachable=$loose"; exit 1; fi
echo "git history stripped after $target ($kept commits kept)"
"#
    ))
}

/// Strips every ref and object after `base_commit` in the repository the
/// shell runs in. Call it before an agent gets a shell in the container.
pub async fn strip_future_history(
    shell: &dyn Shell,
    base_commit: &str,
) -> Result<String, HygieneError> {
    let script = hygiene_script(base_commit)?;
    let out = shell.run(&script, Duration::from_secs(900)).await?;
    if out.success() {
        Ok(out.output)
    } else {
        Err(HygieneError::Failed {
            base_commit: base_commit.into(),
            output: out.output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::Git;
    use crate::sandbox::local::LocalSandbox;
    use std::path::Path;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Git::new(dir.join(".git"), Some(dir)).run(args);
        out.unwrap().trim().to_string()
    }

    #[tokio::test]
    async fn fix_commit_is_unreachable_and_gone() {
        let origin = tempfile::tempdir().unwrap();
        let o = origin.path();
        git(o, &["init", "-q", "-b", "main"]);
        std::fs::write(o.join("a.py"), "bug = True\n").unwrap();
        git(o, &["add", "."]);
        git(o, &["commit", "-qm", "base"]);
        let base = git(o, &["rev-parse", "HEAD"]);
        std::fs::write(o.join("a.py"), "bug = False\n").unwrap();
        git(o, &["commit", "-qam", "the fix"]);
        let fix = git(o, &["rev-parse", "HEAD"]);
        git(o, &["tag", "v2.0"]);
        git(o, &["tag", "-a", "v2.0-annotated", "-m", "release"]);
        git(o, &["branch", "future"]);

        let clone = tempfile::tempdir().unwrap();
        let c = clone.path().join("repo");
        Git::clone_local(o, &c).unwrap();
        git(&c, &["reset", "-q", "--hard", &base]);
        git(&c, &["stash", "list"]);
        assert!(git(&c, &["log", "--all", "--format=%H"]).contains(&fix));

        let sh = LocalSandbox::new(&c);
        strip_future_history(&sh, &base).await.unwrap();

        let all = git(&c, &["log", "--all", "--reflog", "--format=%H"]);
        assert_eq!(all, base, "only the base commit may remain");
        assert!(git(&c, &["tag"]).is_empty());
        assert!(git(&c, &["remote"]).is_empty());
        let exists = Git::new(c.join(".git"), Some(&c)).run(&["cat-file", "-e", &fix]);
        assert!(exists.is_err(), "the fix object survived");
        assert_eq!(
            std::fs::read_to_string(c.join("a.py")).unwrap(),
            "bug = True\n"
        );
    }

    #[test]
    fn refuses_non_commit_ids() {
        assert!(hygiene_script("HEAD; rm -rf /").is_err());
        assert!(hygiene_script("abc").is_err());
        assert!(hygiene_script("0123456789abcdef").is_ok());
    }
}
