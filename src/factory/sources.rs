//! The public-only guard: `configs/public_sources.toml`.
//!
//! Two checks, both before any model call:
//! - the dataset file must be declared public (`[[dataset]]`, by a path glob
//!   resolved against the allowlist's directory, or by the sha256 of its
//!   bytes);
//! - every instance's `repo` must match a `[[source]]` entry, which also
//!   gives the license recorded in each row.

use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::Deserialize;

use super::FactoryError;
use crate::swebench::instance::Instance;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    source: Vec<SourceEntry>,
    #[serde(default)]
    dataset: Vec<DatasetEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceEntry {
    repo: String,
    license: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetEntry {
    name: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    /// Match `path` ignoring case: published file names vary in case
    /// (`SWE-bench_Verified`, `swe-bench_verified`).
    #[serde(default)]
    ignore_case: bool,
}

/// A loaded allowlist.
#[derive(Debug)]
pub struct PublicSources {
    file: PathBuf,
    sources: Vec<(String, GlobMatcher, String)>,
    datasets: Vec<(String, Option<GlobMatcher>, Option<String>)>,
}

/// A dataset accepted by the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicDataset {
    /// The `name` of the matching `[[dataset]]` entry (the corpus `dataset` column).
    pub name: String,
}

impl PublicSources {
    /// Loads and validates an allowlist file.
    pub fn load(path: &Path) -> Result<Self, FactoryError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            FactoryError::Config(format!(
                "cannot read the public-sources allowlist {}: {e} (pass --sources FILE)",
                path.display()
            ))
        })?;
        let parsed: File = toml::from_str(&text).map_err(|e| {
            FactoryError::Config(format!("{}: invalid allowlist: {e}", path.display()))
        })?;
        let base = path
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        let mut sources = Vec::new();
        for s in parsed.source {
            if s.license.trim().is_empty() {
                return Err(FactoryError::Config(format!(
                    "{}: source `{}` has no license",
                    path.display(),
                    s.repo
                )));
            }
            let m = Glob::new(&s.repo)
                .map_err(|e| {
                    FactoryError::Config(format!(
                        "{}: bad repo glob `{}`: {e}",
                        path.display(),
                        s.repo
                    ))
                })?
                .compile_matcher();
            sources.push((s.repo, m, s.license));
        }
        let mut datasets = Vec::new();
        for d in parsed.dataset {
            if d.path.is_none() && d.sha256.is_none() {
                return Err(FactoryError::Config(format!(
                    "{}: dataset `{}` needs `path` or `sha256`",
                    path.display(),
                    d.name
                )));
            }
            let m = match &d.path {
                Some(p) => {
                    let abs = normalise(&base.join(p));
                    Some(
                        GlobBuilder::new(&abs.to_string_lossy())
                            .case_insensitive(d.ignore_case)
                            .build()
                            .map_err(|e| {
                                FactoryError::Config(format!(
                                    "{}: bad dataset glob `{p}`: {e}",
                                    path.display()
                                ))
                            })?
                            .compile_matcher(),
                    )
                }
                None => None,
            };
            datasets.push((d.name, m, d.sha256.map(|s| s.to_ascii_lowercase())));
        }
        Ok(Self {
            file: path.to_path_buf(),
            sources,
            datasets,
        })
    }

    /// The allowlist file, for error messages.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The license of the first `[[source]]` whose glob matches `repo`.
    pub fn license_for(&self, repo: &str) -> Option<&str> {
        self.sources
            .iter()
            .find(|(_, m, _)| m.is_match(repo))
            .map(|(_, _, l)| l.as_str())
    }

    /// Accepts a dataset file declared public, or refuses it.
    pub fn check_dataset(&self, dataset: &Path) -> Result<PublicDataset, FactoryError> {
        let abs = dataset
            .canonicalize()
            .map_err(|e| FactoryError::Config(format!("dataset {}: {e}", dataset.display())))?;
        let mut digest: Option<String> = None;
        for (name, glob, sha) in &self.datasets {
            if glob.as_ref().is_some_and(|g| g.is_match(&abs)) {
                return Ok(PublicDataset { name: name.clone() });
            }
            if let Some(want) = sha
                && abs.is_file()
            {
                if digest.is_none() {
                    let bytes = std::fs::read(&abs).map_err(|e| {
                        FactoryError::Config(format!("reading {}: {e}", abs.display()))
                    })?;
                    digest = Some(crate::corpus::sha256_hex(&bytes));
                }
                if digest.as_deref() == Some(want.as_str()) {
                    return Ok(PublicDataset { name: name.clone() });
                }
            }
        }
        Err(FactoryError::NotPublic(format!(
            "dataset {} is not declared public in {}: add a [[dataset]] entry (path glob or sha256) if, and only if, it holds public data",
            dataset.display(),
            self.file.display()
        )))
    }

    /// Checks every instance's repo; returns each instance's license in
    /// order, or refuses naming the instances and the allowlist file.
    pub fn check_instances(&self, instances: &[Instance]) -> Result<Vec<String>, FactoryError> {
        let mut licenses = Vec::with_capacity(instances.len());
        let mut refused = Vec::new();
        for inst in instances {
            match self.license_for(&inst.repo) {
                Some(l) => licenses.push(l.to_string()),
                None => refused.push(format!("{} (repo `{}`)", inst.instance_id, inst.repo)),
            }
        }
        if refused.is_empty() {
            return Ok(licenses);
        }
        let shown: Vec<&str> = refused.iter().take(5).map(String::as_str).collect();
        let more = if refused.len() > 5 {
            format!(" and {} more", refused.len() - 5)
        } else {
            String::new()
        };
        Err(FactoryError::NotPublic(format!(
            "refusing instance {}{more}: repo not on the public-sources allowlist {}. Only public repos may enter the corpus; add a [[source]] entry only for public code",
            shown.join(", "),
            self.file.display()
        )))
    }
}

/// Resolves `.` and `..` lexically (the glob may name files that do not exist yet).
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, repo: &str) -> Instance {
        Instance {
            instance_id: id.into(),
            repo: repo.into(),
            ..Instance::default()
        }
    }

    #[test]
    fn repo_globs_licenses_and_refusals() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("configs/sources.toml");
        std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        std::fs::create_dir_all(d.path().join("datasets")).unwrap();
        std::fs::write(
            &cfg,
            "[[source]]\nrepo = \"django/django\"\nlicense = \"BSD-3-Clause\"\n[[source]]\nrepo = \"pallets/*\"\nlicense = \"BSD-3-Clause\"\n[[dataset]]\nname = \"mini\"\npath = \"../datasets/*.jsonl\"\n[[dataset]]\nname = \"pinned\"\nsha256 = \"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\"\n",
        )
        .unwrap();
        let s = PublicSources::load(&cfg).unwrap();
        assert_eq!(s.license_for("pallets/flask"), Some("BSD-3-Clause"));
        assert_eq!(s.license_for("acme/secret"), None);
        let ok = s.check_instances(&[inst("a", "django/django"), inst("b", "pallets/click")]);
        assert_eq!(ok.unwrap().len(), 2);
        let err = s
            .check_instances(&[inst("a", "django/django"), inst("acme__x-1", "acme/x")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("acme__x-1") && err.contains("sources.toml"),
            "{err}"
        );

        let public = d.path().join("datasets/mini.jsonl");
        std::fs::write(&public, "{}").unwrap();
        assert_eq!(s.check_dataset(&public).unwrap().name, "mini");
        let private = d.path().join("customer.jsonl");
        std::fs::write(&private, "{}").unwrap();
        let err = s.check_dataset(&private).unwrap_err().to_string();
        assert!(
            err.contains("not declared public") && err.contains("sources.toml"),
            "{err}"
        );
        // the same bytes as the pinned sha256 ("foo") are public wherever they live
        std::fs::write(&private, "foo").unwrap();
        assert_eq!(s.check_dataset(&private).unwrap().name, "pinned");
    }

    #[test]
    fn shipped_allowlist_loads_and_covers_swebench_lite() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let s = PublicSources::load(&root.join("configs/public_sources.toml")).unwrap();
        for repo in [
            "astropy/astropy",
            "django/django",
            "matplotlib/matplotlib",
            "mwaskom/seaborn",
            "pallets/flask",
            "psf/requests",
            "pydata/xarray",
            "pylint-dev/pylint",
            "pytest-dev/pytest",
            "scikit-learn/scikit-learn",
            "sphinx-doc/sphinx",
            "sympy/sympy",
        ] {
            assert!(s.license_for(repo).is_some(), "{repo}");
        }
        let lite = root.join("../shared/swebench/swebench_lite_test.jsonl");
        assert_eq!(
            s.check_dataset(&lite).unwrap().name,
            "princeton-nlp/SWE-bench_Lite:test"
        );
        let mini = root.join("datasets/airgate-mini.jsonl");
        assert_eq!(s.check_dataset(&mini).unwrap().name, "airgate-mini");

        // The SWE-bench family by its published names, wherever it lives.
        let d = tempfile::tempdir().unwrap();
        let named = |rel: &str| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "{}").unwrap();
            s.check_dataset(&p).map(|ds| ds.name)
        };
        let verified = "princeton-nlp/SWE-bench_Verified";
        for rel in [
            "hub/datasets--princeton-nlp--SWE-bench_Verified/snapshots/c104f840/data/test-00000-of-00001.parquet",
            "hub/datasets--SWE-bench--SWE-bench_Verified/snapshots/1/data/test-00000-of-00001.parquet",
            "cache/princeton-nlp___swe-bench_verified/default/0.0.0/ab/swe-bench_verified-test.arrow",
            "exports/swe-bench_verified.jsonl",
            "exports/SWEBENCH_VERIFIED_test.parquet",
        ] {
            assert_eq!(named(rel).unwrap(), verified, "{rel}");
        }
        assert_eq!(
            named("x/datasets--princeton-nlp--SWE-bench_Lite/snapshots/1/data/dev-00000-of-00001.parquet").unwrap(),
            "princeton-nlp/SWE-bench_Lite"
        );
        assert_eq!(
            named(
                "x/datasets--princeton-nlp--SWE-bench/snapshots/1/data/test-00000-of-00001.parquet"
            )
            .unwrap(),
            "princeton-nlp/SWE-bench"
        );
        assert_eq!(
            named("y/swebench_test.jsonl").unwrap(),
            "princeton-nlp/SWE-bench"
        );
        // Names that merely mention the benchmark are not declarations.
        for rel in [
            "bank/customer-tasks.jsonl",
            "bank/swe-bench/customer.jsonl",
            "bank/my-swe-bench-verified-copy.jsonl",
            "bank/not_swebench.jsonl",
        ] {
            assert!(named(rel).is_err(), "{rel}");
        }
    }
}
