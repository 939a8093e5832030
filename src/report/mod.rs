//! The comparison report: one self-contained HTML file (inline CSS and SVG,
//! no scripts, fonts or stylesheets from anywhere, so it opens on an
//! air-gapped laptop) and a Markdown summary beside it, built from the
//! `results.jsonl` and trajectories of one or more `tiers run` directories.

pub mod corpus;
pub mod html;
pub mod markdown;
pub mod svg;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Retryable;
use crate::tiers::results::{ResultRow, read_rows};
use crate::tiers::scores::{ModelScores, score_models};
use crate::tiers::suite::TIERS;

/// Report failures.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A run directory that cannot be read or holds no results.
    #[error("{0}")]
    Input(String),
    /// Writing the report failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being written.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
}

impl Retryable for ReportError {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// One episode row and the run directory it came from.
#[derive(Debug, Clone)]
pub struct EpisodeRecord {
    /// The row.
    pub row: ResultRow,
    /// Its run directory (trajectory paths are relative to it).
    pub run_dir: PathBuf,
}

impl EpisodeRecord {
    /// Absolute (or cwd-relative) path of the saved trajectory.
    pub fn trajectory_path(&self) -> PathBuf {
        self.run_dir.join(&self.row.trajectory)
    }
}

/// Per-task pass counts of one model: `(passed, episodes)`.
pub type Cell = (u32, u32);

/// One task's line across models.
#[derive(Debug, Clone)]
pub struct TaskLine {
    /// Task id.
    pub task: String,
    /// Tier.
    pub tier: String,
    /// Language.
    pub language: String,
    /// One cell per model, in model order; `None` when the model did not run it.
    pub cells: Vec<Option<Cell>>,
}

impl TaskLine {
    /// True when the models' pass rates on this task differ.
    pub fn separates(&self) -> bool {
        let rates: Vec<f64> = self
            .cells
            .iter()
            .flatten()
            .map(|(p, n)| f64::from(*p) / f64::from((*n).max(1)))
            .collect();
        rates.len() > 1 && rates.iter().any(|r| (r - rates[0]).abs() > 1e-9)
    }
}

/// Everything the renderers need.
#[derive(Debug, Clone)]
pub struct ReportData {
    /// The run directories, as given.
    pub runs: Vec<PathBuf>,
    /// Every episode (deduplicated: a later run dir wins for the same model, task and sample).
    pub episodes: Vec<EpisodeRecord>,
    /// Models in order of first appearance.
    pub models: Vec<String>,
    /// Scores per model, same order.
    pub scores: Vec<ModelScores>,
    /// Every task, by tier then id.
    pub tasks: Vec<TaskLine>,
}

impl ReportData {
    /// Reads the run directories.
    pub fn load(runs: &[PathBuf]) -> Result<Self, ReportError> {
        let mut by_key: BTreeMap<(String, String, u32), usize> = BTreeMap::new();
        let mut episodes: Vec<EpisodeRecord> = Vec::new();
        for dir in runs {
            if !dir.is_dir() {
                return Err(ReportError::Input(format!(
                    "run directory {} does not exist (give directories written by `airgate tiers run --out DIR`)",
                    dir.display()
                )));
            }
            let rows = read_rows(dir).map_err(|e| ReportError::Input(e.to_string()))?;
            if rows.is_empty() {
                return Err(ReportError::Input(format!(
                    "{} has no results.jsonl rows: is it a `tiers run` directory?",
                    dir.display()
                )));
            }
            for row in rows {
                let ep = EpisodeRecord {
                    row,
                    run_dir: dir.clone(),
                };
                match by_key.get(&ep.row.key()) {
                    Some(&i) => episodes[i] = ep,
                    None => {
                        by_key.insert(ep.row.key(), episodes.len());
                        episodes.push(ep);
                    }
                }
            }
        }
        Ok(Self::from_episodes(runs.to_vec(), episodes))
    }

    /// Builds the derived tables from episodes.
    pub fn from_episodes(runs: Vec<PathBuf>, episodes: Vec<EpisodeRecord>) -> Self {
        let rows: Vec<ResultRow> = episodes.iter().map(|e| e.row.clone()).collect();
        let scores = score_models(&rows);
        let models: Vec<String> = scores.iter().map(|s| s.model.clone()).collect();
        let mut tasks: BTreeMap<(usize, String), TaskLine> = BTreeMap::new();
        for r in &rows {
            let tier_no = TIERS
                .iter()
                .position(|t| *t == r.tier)
                .unwrap_or(TIERS.len());
            let line = tasks
                .entry((tier_no, r.task.clone()))
                .or_insert_with(|| TaskLine {
                    task: r.task.clone(),
                    tier: r.tier.clone(),
                    language: r.language.clone(),
                    cells: vec![None; models.len()],
                });
            if let Some(m) = models.iter().position(|m| *m == r.model) {
                let cell = line.cells[m].get_or_insert((0, 0));
                cell.0 += u32::from(r.passed);
                cell.1 += 1;
            }
        }
        Self {
            runs,
            episodes,
            models,
            scores,
            tasks: tasks.into_values().collect(),
        }
    }

    /// Tasks on which the models' pass rates differ.
    pub fn separating(&self) -> Vec<&TaskLine> {
        self.tasks.iter().filter(|t| t.separates()).collect()
    }
}

/// Writes `out` (HTML) and the Markdown beside it (`out` with `.md`).
/// Returns the Markdown path.
pub fn write_report(data: &ReportData, out: &Path) -> Result<PathBuf, ReportError> {
    let md_path = out.with_extension("md");
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| ReportError::Io {
            context: format!("creating {}", parent.display()),
            source: e,
        })?;
    }
    let html = html::render(data);
    let md = markdown::render(data, out);
    for (path, text) in [(out.to_path_buf(), html), (md_path.clone(), md)] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| ReportError::Io {
                context: format!("writing {}", path.display()),
                source: e,
            })?;
    }
    Ok(md_path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tiers::results::tests::row;

    pub(crate) fn sample() -> ReportData {
        let mut rows = vec![
            row("reference", "t1", 0, true),
            row("reference", "t2", 0, true),
            row("local", "t1", 0, true),
            row("local", "t2", 0, false),
        ];
        rows[1].tier = "hard".into();
        rows[3].tier = "hard".into();
        rows[3].language = "go <&>".into();
        rows[1].language = "go <&>".into();
        let episodes = rows
            .into_iter()
            .map(|row| EpisodeRecord {
                row,
                run_dir: PathBuf::from("/nonexistent"),
            })
            .collect();
        ReportData::from_episodes(vec![PathBuf::from("/nonexistent")], episodes)
    }

    #[test]
    fn separating_tasks_are_those_where_rates_differ() {
        let d = sample();
        assert_eq!(d.models, ["reference", "local"]);
        let sep: Vec<&str> = d.separating().iter().map(|t| t.task.as_str()).collect();
        assert_eq!(sep, ["t2"]);
        assert_eq!(d.tasks[0].cells, vec![Some((1, 1)), Some((1, 1))]);
    }

    #[test]
    fn later_runs_override_the_same_episode() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let write = |dir: &Path, rows: &[ResultRow]| {
            let text: String = rows
                .iter()
                .map(|r| serde_json::to_string(r).unwrap() + "\n")
                .collect();
            std::fs::write(dir.join("results.jsonl"), text).unwrap();
        };
        write(
            a.path(),
            &[row("m", "t1", 0, false), row("m", "t2", 0, false)],
        );
        write(b.path(), &[row("m", "t1", 0, true)]);
        let d = ReportData::load(&[a.path().into(), b.path().into()]).unwrap();
        assert_eq!(d.episodes.len(), 2);
        assert!(d.episodes[0].row.passed);
        assert_eq!(d.episodes[0].run_dir, b.path());
        let empty = tempfile::tempdir().unwrap();
        assert!(ReportData::load(&[empty.path().into()]).is_err());
    }
}
