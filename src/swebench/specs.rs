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
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct SpecTable {
    /// `owner/name` → rows.
    pub repos: BTreeMap<String, RepoSpecs>,
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

    /// The table in use: `AIRGATE_SWEBENCH_SPECS` if set, else the embedded one.
    /// Parsed once per process.
    pub fn global() -> Result<&'static SpecTable, SpecError> {
        static TABLE: OnceLock<Result<SpecTable, String>> = OnceLock::new();
        let res = TABLE.get_or_init(|| {
            let parsed = match std::env::var("AIRGATE_SWEBENCH_SPECS") {
                Ok(p) => Self::from_file(Path::new(&p)),
                Err(_) => Self::parse(EMBEDDED, "embedded configs/swebench/specs.toml"),
            };
            parsed.map_err(|e| e.to_string())
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
    fn missing_rows_say_what_to_do() {
        let t = SpecTable::parse("[repos]\n", "x").unwrap();
        let msg = t.get("a/b", "1.0").unwrap_err().to_string();
        assert!(msg.contains("eval_script"), "{msg}");
    }
}
