//! The official per-repo/per-version spec table, carried as data in
//! `configs/swebench/specs.toml` (generated from swebench 4.1.0's
//! `MAP_REPO_VERSION_TO_SPECS` and `MAP_REPO_TO_EXT`; 5.x rows bring their
//! own `eval_script` instead). The table is compiled into the binary so an
//! air-gapped site needs no extra file; `AIRGATE_SWEBENCH_SPECS` names
//! another table to use instead.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::error::Retryable;

const EMBEDDED: &str = include_str!("../../configs/swebench/specs.toml");

/// Spec-table failures.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The table file could not be read or parsed.
    #[error("spec table {origin}: {message}")]
    Invalid {
        /// File name or `embedded`.
        origin: String,
        /// Parser message.
        message: String,
    },
    /// No row for this repo/version.
    #[error(
        "no spec for {repo} version {version:?} in the spec table; give the row an `eval_script` \
         or add the version to configs/swebench/specs.toml"
    )]
    Missing {
        /// `owner/name`.
        repo: String,
        /// Dataset `version`.
        version: String,
    },
}

impl Retryable for SpecError {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// A string or a list of strings (the table uses both for some keys).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One command.
    One(String),
    /// Several commands.
    Many(Vec<String>),
}

impl OneOrMany {
    /// As a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

/// One repo/version row of the table. Only the keys the eval script uses
/// are typed; the rest (environment build) stays available as raw TOML.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Spec {
    /// Test command (Python repos: one string; others: one or several).
    /// A few rows of the official table have none.
    #[serde(default)]
    pub test_cmd: Option<OneOrMany>,
    /// Install command(s), re-run before the tests in Python scripts.
    #[serde(default)]
    pub install: Option<OneOrMany>,
    /// Commands run first in the eval script (Python repos).
    #[serde(default)]
    pub eval_commands: Vec<String>,
    /// Build commands run after applying the test patch (non-Python repos).
    #[serde(default)]
    pub build: Vec<String>,
    /// Every other key, verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, toml::Value>,
}

/// All rows of one repository.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RepoSpecs {
    /// Language family as in `MAP_REPO_TO_EXT`: `py`, `js`, `go`, `java`, ...
    pub ext: String,
    /// Version → spec.
    pub versions: BTreeMap<String, Spec>,
}

/// The whole table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct SpecTable {
    /// `owner/name` → rows.
    #[serde(default)]
    pub repos: BTreeMap<String, RepoSpecs>,
    /// `owner/name` → where a `packages = "requirements.txt"` row's
    /// requirements file lives, first match wins (`MAP_REPO_TO_REQS_PATHS`).
    #[serde(default)]
    pub reqs_paths: BTreeMap<String, Vec<String>>,
    /// `owner/name` → where a `packages = "environment.yml"` row's conda
    /// environment file lives (`MAP_REPO_TO_ENV_YML_PATHS`).
    #[serde(default)]
    pub env_yml_paths: BTreeMap<String, Vec<String>>,
}

impl SpecTable {
    /// Parses a table.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SpecError> {
        toml::from_str(text).map_err(|e| SpecError::Invalid {
            origin: origin.into(),
            message: e.to_string(),
        })
    }

    /// Reads a table file.
    pub fn from_file(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError::Invalid {
            origin: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The embedded official table.
    pub fn embedded() -> Result<Self, SpecError> {
        Self::parse(EMBEDDED, "embedded configs/swebench/specs.toml")
    }

    /// Adds `other`'s rows over this table's: a version row, a repo's
    /// language family and a repo's dependency-file paths in `other` replace
    /// the same ones here; everything else is kept. This is how a site adds
    /// its own mirrored projects without copying the official table.
    pub fn overlay(&mut self, other: SpecTable) {
        for (repo, specs) in other.repos {
            match self.repos.get_mut(&repo) {
                Some(mine) => {
                    mine.ext = specs.ext;
                    mine.versions.extend(specs.versions);
                }
                None => {
                    self.repos.insert(repo, specs);
                }
            }
        }
        self.reqs_paths.extend(other.reqs_paths);
        self.env_yml_paths.extend(other.env_yml_paths);
    }

    /// The embedded table with `extra` (a `--specs FILE` or
    /// `AIRGATE_SWEBENCH_SPECS`, same TOML format) laid over it.
    pub fn with_overlay(extra: Option<&Path>) -> Result<Self, SpecError> {
        let mut table = Self::embedded()?;
        if let Some(path) = extra {
            table.overlay(Self::from_file(path)?);
        }
        Ok(table)
    }

    /// The table in use: the embedded one with `AIRGATE_SWEBENCH_SPECS` (if
    /// set) laid over it. Parsed once per process.
    pub fn global() -> Result<&'static SpecTable, SpecError> {
        static TABLE: OnceLock<Result<SpecTable, String>> = OnceLock::new();
        let res = TABLE.get_or_init(|| {
            let extra = std::env::var_os("AIRGATE_SWEBENCH_SPECS").map(std::path::PathBuf::from);
            Self::with_overlay(extra.as_deref()).map_err(|e| e.to_string())
        });
        res.as_ref().map_err(|m| SpecError::Invalid {
            origin: "spec table".into(),
            message: m.clone(),
        })
    }

    /// The row for `repo` at `version`, with the repo's language family.
    pub fn get(&self, repo: &str, version: &str) -> Result<(&str, &Spec), SpecError> {
        self.repos
            .get(repo)
            .and_then(|r| r.versions.get(version).map(|s| (r.ext.as_str(), s)))
            .ok_or_else(|| SpecError::Missing {
                repo: repo.into(),
                version: version.into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_has_the_lite_repos() {
        let t = SpecTable::global().unwrap();
        let (ext, dj) = t.get("django/django", "3.0").unwrap();
        assert_eq!(ext, "py");
        assert_eq!(
            dj.test_cmd,
            Some(OneOrMany::One(
                "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1".into()
            ))
        );
        assert!(t.get("django/django", "0.0").is_err());
        assert_eq!(t.get("sympy/sympy", "1.1").unwrap().0, "py");
        assert!(t.repos.len() > 50);
    }

    #[test]
    fn overlay_adds_and_replaces_rows_and_keeps_the_rest() {
        let mut t = SpecTable::embedded().unwrap();
        assert_eq!(t.reqs_paths["pallets/flask"], vec!["requirements/dev.txt"]);
        assert!(t.env_yml_paths.contains_key("pydata/xarray"));
        let extra = SpecTable::parse(
            r#"
[reqs_paths]
"bank/ledger" = ["reqs/test.txt"]
[repos."bank/ledger"]
ext = "py"
[repos."bank/ledger".versions."1.0"]
python = "3.11"
test_cmd = "pytest -rA"
[repos."sympy/sympy"]
ext = "py"
[repos."sympy/sympy".versions."1.1"]
python = "3.11"
test_cmd = "bin/test -C"
"#,
            "x",
        )
        .unwrap();
        t.overlay(extra);
        assert_eq!(t.get("bank/ledger", "1.0").unwrap().0, "py");
        assert_eq!(t.reqs_paths["bank/ledger"], vec!["reqs/test.txt"]);
        let (_, sympy) = t.get("sympy/sympy", "1.1").unwrap();
        assert_eq!(sympy.test_cmd, Some(OneOrMany::One("bin/test -C".into())));
        // Other sympy versions and other repos are untouched.
        assert!(t.get("sympy/sympy", "1.2").is_ok());
        assert!(t.get("django/django", "3.0").is_ok());
    }

    #[test]
    fn missing_rows_say_what_to_do() {
        let t = SpecTable::parse("[repos]\n", "x").unwrap();
        let msg = t.get("a/b", "1.0").unwrap_err().to_string();
        assert!(msg.contains("eval_script"), "{msg}");
    }
}
