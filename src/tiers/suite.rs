//! Suite discovery: `tasks/<tier>/<id>/{task.toml, repo/, solution.patch}`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::TiersError;
use super::task::TaskToml;
use crate::gate::{self, DEFAULT_PROTECTED, TestCommandGate};

/// The three tiers, in display order.
pub const TIERS: &[&str] = &["easy", "medium", "hard"];

/// Test timeout when `task.toml` gives none.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(120);

/// One task of the suite, resolved on disk.
#[derive(Debug, Clone)]
pub struct Task {
    /// `tasks/<tier>/<id>`.
    pub dir: PathBuf,
    /// The parsed `task.toml`.
    pub toml: TaskToml,
}

impl Task {
    /// Loads `dir/task.toml` and checks that the directory layout agrees with it.
    pub fn load(dir: &Path) -> Result<Self, TiersError> {
        let file = dir.join("task.toml");
        let text = std::fs::read_to_string(&file).map_err(|e| TiersError::Io {
            context: format!("reading {}", file.display()),
            source: e,
        })?;
        let toml = TaskToml::parse(&text).map_err(|e| TiersError::Task {
            task: dir.display().to_string(),
            reason: e,
        })?;
        let task = Self {
            dir: dir.to_path_buf(),
            toml,
        };
        let bad = |reason: String| TiersError::Task {
            task: dir.display().to_string(),
            reason,
        };
        if dir.file_name().and_then(|n| n.to_str()) != Some(task.toml.id.as_str()) {
            return Err(bad(format!(
                "id `{}` does not match the directory name",
                task.toml.id
            )));
        }
        let tier_dir = dir
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str());
        if tier_dir != Some(task.toml.tier.as_str()) {
            return Err(bad(format!(
                "tier `{}` does not match the parent directory {:?}",
                task.toml.tier,
                tier_dir.unwrap_or("?")
            )));
        }
        if !task.repo().is_dir() {
            return Err(bad("has no repo/ directory".into()));
        }
        Ok(task)
    }

    /// The task id.
    pub fn id(&self) -> &str {
        &self.toml.id
    }

    /// `easy`, `medium` or `hard`.
    pub fn tier(&self) -> &str {
        &self.toml.tier
    }

    /// The language label.
    pub fn language(&self) -> &str {
        &self.toml.language
    }

    /// The buggy project.
    pub fn repo(&self) -> PathBuf {
        self.dir.join("repo")
    }

    /// The reference fix.
    pub fn solution_patch(&self) -> PathBuf {
        self.dir.join("solution.patch")
    }

    /// `test_cmd` from `task.toml`, else detected from the repo.
    pub fn test_cmd(&self) -> Option<String> {
        self.toml
            .test_cmd
            .clone()
            .or_else(|| gate::detect_test_command(&self.repo()))
    }

    /// Protected globs: `task.toml`'s list, else the default test-file conventions.
    pub fn protected(&self) -> Vec<String> {
        self.toml
            .protected
            .clone()
            .unwrap_or_else(|| DEFAULT_PROTECTED.iter().map(|s| s.to_string()).collect())
    }

    /// Timeout of one test run.
    pub fn timeout(&self) -> Duration {
        self.toml
            .timeout_s
            .map(|s| Duration::from_secs(s.max(1)))
            .unwrap_or(DEFAULT_TASK_TIMEOUT)
    }

    /// The patch policy for this task: the installation's defaults, plus
    /// the task's `protected` globs, minus what `allow_paths` lifts.
    pub fn patch_policy(&self) -> Result<crate::gate::policy::PatchPolicy, TiersError> {
        let bad = |e: crate::gate::policy::PolicyError| TiersError::Task {
            task: self.id().to_string(),
            reason: e.to_string(),
        };
        crate::gate::policy::PatchPolicy::load(None)
            .map_err(bad)?
            .with_protected(self.toml.protected.as_deref().unwrap_or_default())
            .map_err(bad)?
            .with_allowed(&self.toml.allow_paths)
            .map_err(bad)
    }

    /// The gate the engine uses for this task.
    pub fn gate(&self) -> Result<TestCommandGate, TiersError> {
        let test_cmd = self.test_cmd().ok_or_else(|| TiersError::Task {
            task: self.id().to_string(),
            reason: "no test_cmd in task.toml and none detected in repo/".into(),
        })?;
        Ok(TestCommandGate {
            test_cmd,
            timeout: self.timeout(),
            protected: self.protected(),
            runs: 1,
            targets: self.toml.targets.clone(),
        })
    }
}

/// Finds every task under `root` (`<tier>/<id>/task.toml`), sorted by tier
/// then id; `tier` keeps only that tier. Any unreadable task is an error:
/// a suite that silently drops a task would inflate its own scores.
pub fn discover(root: &Path, tier: Option<&str>) -> Result<Vec<Task>, TiersError> {
    if let Some(t) = tier
        && !TIERS.contains(&t)
    {
        return Err(TiersError::Usage(format!(
            "unknown tier `{t}`: use easy, medium or hard"
        )));
    }
    if !root.is_dir() {
        return Err(TiersError::Usage(format!(
            "task directory {} does not exist: pass --tasks DIR",
            root.display()
        )));
    }
    let mut tasks = Vec::new();
    for t in TIERS {
        if tier.is_some_and(|want| want != *t) {
            continue;
        }
        let tier_dir = root.join(t);
        let Ok(rd) = std::fs::read_dir(&tier_dir) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("task.toml").is_file())
            .collect();
        dirs.sort();
        for d in dirs {
            tasks.push(Task::load(&d)?);
        }
    }
    let mut seen = std::collections::HashSet::new();
    for t in &tasks {
        if !seen.insert(t.id().to_string()) {
            return Err(TiersError::Task {
                task: t.dir.display().to_string(),
                reason: format!("duplicate task id `{}`", t.id()),
            });
        }
    }
    if tasks.is_empty() {
        return Err(TiersError::Usage(format!(
            "no tasks found under {} (expected {}/<tier>/<id>/task.toml)",
            root.display(),
            root.display()
        )));
    }
    Ok(tasks)
}

/// The `tiers list` table: one row per task, then counts by tier and language.
pub fn list_table(tasks: &[Task]) -> String {
    let mut out = String::new();
    let w_id = tasks.iter().map(|t| t.id().len()).max().unwrap_or(2).max(2);
    let w_lang = tasks
        .iter()
        .map(|t| t.language().len())
        .max()
        .unwrap_or(8)
        .max(8);
    out.push_str(&format!(
        "{:<6}  {:<w_id$}  {:<w_lang$}  test command\n",
        "tier", "id", "language"
    ));
    for t in tasks {
        out.push_str(&format!(
            "{:<6}  {:<w_id$}  {:<w_lang$}  {}\n",
            t.tier(),
            t.id(),
            t.language(),
            t.test_cmd().unwrap_or_else(|| "(none detected)".into())
        ));
    }
    let mut langs: Vec<&str> = tasks.iter().map(|t| t.language()).collect();
    langs.sort();
    langs.dedup();
    out.push('\n');
    out.push_str(&format!("{:<w_lang$}", "language"));
    for tier in TIERS {
        out.push_str(&format!("  {tier:>6}"));
    }
    out.push_str("   total\n");
    for lang in &langs {
        out.push_str(&format!("{lang:<w_lang$}"));
        for tier in TIERS {
            let n = tasks
                .iter()
                .filter(|t| t.language() == *lang && t.tier() == *tier)
                .count();
            out.push_str(&format!("  {n:>6}"));
        }
        let n = tasks.iter().filter(|t| t.language() == *lang).count();
        out.push_str(&format!("  {n:>6}\n"));
    }
    out.push_str(&format!("{:<w_lang$}", "total"));
    for tier in TIERS {
        let n = tasks.iter().filter(|t| t.tier() == *tier).count();
        out.push_str(&format!("  {n:>6}"));
    }
    out.push_str(&format!("  {:>6}\n", tasks.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiers_suite")
    }

    #[test]
    fn discovers_fixture_suite_in_tier_order() {
        let tasks = discover(&fixture(), None).unwrap();
        let ids: Vec<_> = tasks.iter().map(|t| (t.tier(), t.id())).collect();
        assert_eq!(
            ids,
            vec![
                ("easy", "conf-port"),
                ("easy", "py-mean"),
                ("medium", "js-total")
            ]
        );
        let medium = discover(&fixture(), Some("medium")).unwrap();
        assert_eq!(medium.len(), 1);
        assert!(discover(&fixture(), Some("expert")).is_err());
        assert!(discover(&fixture(), Some("hard")).is_err(), "no hard tasks");
    }

    #[test]
    fn defaults_and_overrides() {
        let tasks = discover(&fixture(), None).unwrap();
        let conf = &tasks[0];
        assert!(conf.protected().is_empty());
        assert_eq!(conf.timeout(), Duration::from_secs(10));
        let py = &tasks[1];
        assert!(py.protected().iter().any(|g| g == "tests/**"));
        assert_eq!(py.test_cmd().as_deref(), Some("python -m pytest -q"));
    }

    #[test]
    fn mismatched_directory_is_rejected() {
        let d = tempfile::tempdir().unwrap();
        let task = d.path().join("easy/other-name");
        std::fs::create_dir_all(task.join("repo")).unwrap();
        std::fs::write(
            task.join("task.toml"),
            "id = \"x\"\ntier = \"easy\"\nlanguage = \"python\"\nstatement = \"s\"\n",
        )
        .unwrap();
        let err = discover(d.path(), None).unwrap_err().to_string();
        assert!(err.contains("does not match the directory name"), "{err}");
    }

    #[test]
    fn list_counts_by_tier_and_language() {
        let tasks = discover(&fixture(), None).unwrap();
        let table = list_table(&tasks);
        assert!(table.contains("py-mean"));
        let total = table.lines().last().unwrap();
        assert_eq!(
            total.split_whitespace().collect::<Vec<_>>(),
            ["total", "2", "1", "0", "3"]
        );
    }
}
