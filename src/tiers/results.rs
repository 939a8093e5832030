//! `runs/<run>/results.jsonl`: one row per episode, appended as episodes
//! finish, so an interrupted run keeps what it did and a rerun resumes.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TiersError;

/// File name of the results inside a run directory.
pub const RESULTS_FILE: &str = "results.jsonl";

/// One episode's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// The model spec as given on the command line.
    pub model: String,
    /// Task id.
    pub task: String,
    /// `easy`, `medium` or `hard`.
    pub tier: String,
    /// Task language.
    pub language: String,
    /// 0-based sample index (pass@k draws `--samples` per task).
    #[serde(default)]
    pub sample: u32,
    /// `already_passing`, `verified` or `gate_held`.
    pub outcome: String,
    /// True only for `verified`: the gate passed on the model's patch.
    pub passed: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Tool calls over all attempts.
    pub steps: u32,
    /// Prompt tokens over the episode.
    pub prompt_tokens: u64,
    /// Completion tokens over the episode.
    pub completion_tokens: u64,
    /// Wall time of the episode in seconds (workspace setup included).
    pub wall_s: f64,
    /// Time spent in gate test runs (baseline included), in seconds.
    #[serde(default)]
    pub test_s: f64,
    /// Calls that repeated an earlier identical call.
    pub repeated_calls: u32,
    /// Why the episode was cut short, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// The saved trajectory, relative to the run directory.
    pub trajectory: String,
}

impl ResultRow {
    /// The resume key: one episode per (model, task, sample).
    pub fn key(&self) -> (String, String, u32) {
        (self.model.clone(), self.task.clone(), self.sample)
    }

    /// Total tokens.
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// Reads a run's rows. A missing file is an empty run. A torn last line (a
/// crash mid-write) is skipped with a warning; any other bad line is an error.
pub fn read_rows(run_dir: &Path) -> Result<Vec<ResultRow>, TiersError> {
    let path = run_dir.join(RESULTS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => {
            return Err(TiersError::Io {
                context: format!("reading {}", path.display()),
                source: e,
            });
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut rows = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<ResultRow>(line) {
            Ok(r) => rows.push(r),
            Err(e) if i + 1 == lines.len() && !text.ends_with('\n') => {
                tracing::warn!("{}: skipping torn last line: {e}", path.display());
            }
            Err(e) => {
                return Err(TiersError::Results(format!(
                    "{}:{}: not a result row: {e}",
                    path.display(),
                    i + 1
                )));
            }
        }
    }
    Ok(rows)
}

/// Appends rows to a run's results file, one flushed line each.
#[derive(Debug)]
pub struct ResultsWriter {
    path: PathBuf,
    file: std::fs::File,
    done: HashSet<(String, String, u32)>,
}

impl ResultsWriter {
    /// Opens (creating) `run_dir/results.jsonl`, remembering the rows already there.
    pub fn open(run_dir: &Path) -> Result<Self, TiersError> {
        std::fs::create_dir_all(run_dir).map_err(|e| TiersError::Io {
            context: format!("creating run directory {}", run_dir.display()),
            source: e,
        })?;
        let existing = read_rows(run_dir)?;
        let path = run_dir.join(RESULTS_FILE);
        // A torn last line (a crash mid-write) would glue onto the next row:
        // cut it off; its episode has no row, so it runs again.
        if let Ok(bytes) = std::fs::read(&path)
            && !bytes.is_empty()
            && !bytes.ends_with(b"\n")
        {
            let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            std::fs::write(&path, &bytes[..keep]).map_err(|e| TiersError::Io {
                context: format!("repairing {}", path.display()),
                source: e,
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| TiersError::Io {
                context: format!("opening {}", path.display()),
                source: e,
            })?;
        Ok(Self {
            path,
            file,
            done: existing.iter().map(ResultRow::key).collect(),
        })
    }

    /// True when this episode already has a row (resume skips it).
    pub fn is_done(&self, model: &str, task: &str, sample: u32) -> bool {
        self.done
            .contains(&(model.to_string(), task.to_string(), sample))
    }

    /// Appends one row.
    pub fn append(&mut self, row: &ResultRow) -> Result<(), TiersError> {
        let mut line = serde_json::to_string(row)
            .map_err(|e| TiersError::Results(format!("encoding a result row: {e}")))?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|e| TiersError::Io {
                context: format!("appending to {}", self.path.display()),
                source: e,
            })?;
        self.done.insert(row.key());
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn row(model: &str, task: &str, sample: u32, passed: bool) -> ResultRow {
        ResultRow {
            model: model.into(),
            task: task.into(),
            tier: "easy".into(),
            language: "python".into(),
            sample,
            outcome: if passed { "verified" } else { "gate_held" }.into(),
            passed,
            attempts: 1,
            steps: 2,
            prompt_tokens: 10,
            completion_tokens: 5,
            wall_s: 1.5,
            test_s: 1.0,
            repeated_calls: 0,
            aborted: None,
            trajectory: format!("trajectories/{model}/{task}/{sample}/trajectory.json"),
        }
    }

    #[test]
    fn append_then_resume_sees_rows() {
        let d = tempfile::tempdir().unwrap();
        let mut w = ResultsWriter::open(d.path()).unwrap();
        assert!(!w.is_done("m", "t", 0));
        w.append(&row("m", "t", 0, true)).unwrap();
        drop(w);
        let w = ResultsWriter::open(d.path()).unwrap();
        assert!(w.is_done("m", "t", 0));
        assert!(!w.is_done("m", "t", 1));
        assert_eq!(read_rows(d.path()).unwrap(), vec![row("m", "t", 0, true)]);
    }

    #[test]
    fn torn_last_line_is_skipped_and_repaired() {
        let d = tempfile::tempdir().unwrap();
        let good = serde_json::to_string(&row("m", "a", 0, true)).unwrap();
        std::fs::write(
            d.path().join(RESULTS_FILE),
            format!("{good}\n{{\"model\":\"m"),
        )
        .unwrap();
        assert_eq!(read_rows(d.path()).unwrap().len(), 1);
        let mut w = ResultsWriter::open(d.path()).unwrap();
        w.append(&row("m", "b", 0, false)).unwrap();
        let rows = read_rows(d.path()).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.task.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        // A bad line in the middle is a hard error, never silent loss.
        let text = std::fs::read_to_string(d.path().join(RESULTS_FILE)).unwrap();
        std::fs::write(d.path().join(RESULTS_FILE), format!("garbage\n{text}")).unwrap();
        let err = read_rows(d.path()).unwrap_err().to_string();
        assert!(err.contains(":1:"), "{err}");
    }
}
