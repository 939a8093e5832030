//! Loading SWE-bench datasets from JSONL, a JSON array or Parquet (including
//! the Hugging Face export layout `data/test-00000-of-00001.parquet`).
//!
//! A bad row never aborts the load: it is reported with its 1-based line or
//! row number in [`Dataset::skipped`] and the rest load.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::instance::Instance;
use crate::error::Retryable;

/// The rows that loaded, and the rows that did not (with the reason).
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Rows in file order.
    pub instances: Vec<Instance>,
    /// Rows that could not be read; reported, never silently dropped.
    pub skipped: Vec<RowError>,
}

impl Dataset {
    /// Looks an instance up by id (linear; build [`Dataset::index`] for many lookups).
    pub fn get(&self, instance_id: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.instance_id == instance_id)
    }

    /// Map from instance id to row, for repeated lookups.
    pub fn index(&self) -> HashMap<&str, &Instance> {
        self.instances
            .iter()
            .map(|i| (i.instance_id.as_str(), i))
            .collect()
    }
}

/// One row that was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    /// 1-based line (JSONL) or row/element number (JSON, Parquet).
    pub row: usize,
    /// The row's `instance_id`, when it could be read.
    pub instance_id: Option<String>,
    /// What was wrong with it.
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.instance_id {
            Some(id) => write!(f, "row {} ({id}): {}", self.row, self.message),
            None => write!(f, "row {}: {}", self.row, self.message),
        }
    }
}

/// Why a whole dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file or folder could not be opened or read.
    #[error("cannot read dataset {path}: {source}")]
    Io {
        /// The path tried.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A `.json` file that is not a JSON array of rows.
    #[error("dataset {path} is not a JSON array of rows: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A Parquet file that could not be decoded.
    #[error("cannot decode Parquet dataset {path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// A task repository with nothing to load in the split.
    #[error("task repository {path}: {message}")]
    TaskRepo {
        /// The repository.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A folder with no Parquet file in it (or its `data/` subfolder).
    #[error(
        "no dataset file in {0}: expected *.parquet or data/*.parquet (Hugging Face layout), or pass a .jsonl/.json/.parquet file"
    )]
    NoParquetInDir(PathBuf),
}

impl Retryable for DatasetError {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// Loads a dataset, choosing the format from the extension (`.jsonl`,
/// `.json`, `.parquet`) or, for a folder, the `swebench` 5.x task
/// repository (a `tasks/` folder, split `test`: see [`load_task_repo`]) or
/// the Hugging Face Parquet layout.
/// Files with another extension are sniffed: `[` means a JSON array,
/// anything else JSONL.
pub fn load_dataset(path: &Path) -> Result<Dataset, DatasetError> {
    let io = |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() && path.join(TASKS_SUBDIR).is_dir() {
        return load_task_repo(path, DEFAULT_SPLIT);
    }
    if path.is_dir() {
        let files = parquet_files_in(path).map_err(io)?;
        if files.is_empty() {
            return Err(DatasetError::NoParquetInDir(path.to_path_buf()));
        }
        let mut out = Dataset::default();
        let mut offset = 0;
        for file in files {
            let part = load_parquet(&file)?;
            let n = part.instances.len() + part.skipped.len();
            out.instances.extend(part.instances);
            out.skipped.extend(part.skipped.into_iter().map(|mut e| {
                e.row += offset;
                e
            }));
            offset += n;
        }
        return Ok(out);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "parquet" {
        return load_parquet(path);
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let text = String::from_utf8_lossy(&bytes);
    let is_array = match ext.as_str() {
        "json" => true,
        "jsonl" | "ndjson" => false,
        _ => text.trim_start().starts_with('['),
    };
    if is_array {
        parse_json_array(&text).map_err(|message| DatasetError::Json {
            path: path.to_path_buf(),
            message,
        })
    } else {
        Ok(parse_jsonl(&text))
    }
}

/// The task folder of a 5.x task repository.
pub const TASKS_SUBDIR: &str = "tasks";
/// The split a task repository is read at (the official default).
pub const DEFAULT_SPLIT: &str = "test";
/// Columns a task keeps as their own file (required), as 5.0.2's `AS_FILE`.
const TASK_AS_FILE: [(&str, &str); 4] = [
    ("patch", "gold.patch"),
    ("test_patch", "test.patch"),
    ("eval_script", "eval.sh"),
    ("problem_statement", "problem_statement.md"),
];

/// Loads a `swebench` 5.x task repository as 5.0.2's `load_task_repo` and
/// `load_instances` do: every `tasks/<id>/` with a `task.yaml` (sorted by
/// folder name); the row is `task.yaml`, plus `gold.patch`, `test.patch`,
/// `eval.sh` and `problem_statement.md` as `patch`, `test_patch`,
/// `eval_script` and `problem_statement` (read verbatim, CRLF kept),
/// `hints.md` as `hints_text` (empty when absent), then `tests.json`'s
/// keys on top. Only tasks whose `split` is `split` are kept; none is an
/// error naming the splits there are. A task missing a file is skipped
/// with the reason (the official loader stops at it).
pub fn load_task_repo(repo: &Path, split: &str) -> Result<Dataset, DatasetError> {
    let root = repo.join(TASKS_SUBDIR);
    let io = |source| DatasetError::Io {
        path: root.clone(),
        source,
    };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|d| d.join("task.yaml").is_file())
        .collect();
    dirs.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let mut out = Dataset::default();
    let mut splits = std::collections::BTreeSet::new();
    for (i, dir) in dirs.iter().enumerate() {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let row = match load_task(dir) {
            Ok(v) => v,
            Err(message) => {
                out.skipped.push(RowError {
                    row: i + 1,
                    instance_id: Some(name),
                    message,
                });
                continue;
            }
        };
        let task_split = row.get("split").and_then(Value::as_str).map(str::to_string);
        if let Some(s) = &task_split {
            splits.insert(s.clone());
        }
        if task_split.as_deref() != Some(split) {
            continue;
        }
        push_row(&mut out, i + 1, row);
    }
    if out.instances.is_empty() {
        let unreadable = if out.skipped.is_empty() {
            String::new()
        } else {
            format!(
                " ({} task(s) could not be read: {})",
                out.skipped.len(),
                out.skipped
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        return Err(DatasetError::TaskRepo {
            path: repo.to_path_buf(),
            message: format!(
                "the task repository has no tasks in split {split:?}. It has: {}{unreadable}",
                if splits.is_empty() {
                    "none".to_string()
                } else {
                    splits.into_iter().collect::<Vec<_>>().join(" ")
                }
            ),
        });
    }
    Ok(out)
}

/// One task folder as a JSON row (see [`load_task_repo`]).
fn load_task(dir: &Path) -> Result<Value, String> {
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|b| String::from_utf8(b).map_err(|e| format!("{name}: {e}")))
    };
    let yaml = read("task.yaml")?;
    let row: Value =
        serde_norway::from_str(&yaml).map_err(|e| format!("task.yaml is not YAML: {e}"))?;
    let Value::Object(mut map) = row else {
        return Err("task.yaml is not a mapping".into());
    };
    for (column, file) in TASK_AS_FILE {
        map.insert(column.into(), Value::String(read(file)?));
    }
    let hints = if dir.join("hints.md").is_file() {
        read("hints.md")?
    } else {
        String::new()
    };
    map.insert("hints_text".into(), Value::String(hints));
    let tests: Value = serde_json::from_str(&read("tests.json")?)
        .map_err(|e| format!("tests.json is not JSON: {e}"))?;
    let Value::Object(tests) = tests else {
        return Err("tests.json is not a JSON object".into());
    };
    map.extend(tests);
    Ok(Value::Object(map))
}

/// Parses JSONL text; blank lines are ignored, bad lines are skipped.
pub fn parse_jsonl(text: &str) -> Dataset {
    let mut out = Dataset::default();
    for (i, line) in text.split('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) => push_row(&mut out, i + 1, v),
            Err(e) => out.skipped.push(RowError {
                row: i + 1,
                instance_id: None,
                message: format!("invalid JSON: {e}"),
            }),
        }
    }
    out
}

/// Parses a JSON array of rows; a non-array is an error, bad elements are skipped.
pub fn parse_json_array(text: &str) -> Result<Dataset, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Value::Array(rows) = v else {
        return Err("top-level value is not an array".into());
    };
    let mut out = Dataset::default();
    for (i, row) in rows.into_iter().enumerate() {
        push_row(&mut out, i + 1, row);
    }
    Ok(out)
}

fn push_row(out: &mut Dataset, row: usize, value: Value) {
    match row_to_instance(value) {
        Ok(inst) => out.instances.push(inst),
        Err((instance_id, message)) => out.skipped.push(RowError {
            row,
            instance_id,
            message,
        }),
    }
}

/// Converts one JSON row to an [`Instance`]: decodes JSON-encoded test
/// lists, and maps JSON `null` in optional text fields to their default.
pub fn row_to_instance(value: Value) -> Result<Instance, (Option<String>, String)> {
    let Value::Object(mut map) = value else {
        return Err((None, "row is not a JSON object".into()));
    };
    let id = map
        .get("instance_id")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    if id.as_deref().is_none_or(str::is_empty) {
        return Err((None, "missing or empty `instance_id`".into()));
    }
    for required in ["repo"] {
        if !map.get(required).is_some_and(Value::is_string) {
            return Err((id, format!("missing or non-string `{required}`")));
        }
    }
    for key in ["FAIL_TO_PASS", "PASS_TO_PASS"] {
        if let Some(v) = map.get_mut(key) {
            normalize_test_list(v).map_err(|m| (id.clone(), format!("`{key}`: {m}")))?;
        }
    }
    drop_nulls(&mut map);
    // Numeric versions (e.g. 3.0 read as a float by some exporters) become strings.
    if let Some(v) = map.get_mut("version")
        && let Value::Number(n) = v
    {
        *v = Value::String(n.to_string());
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| (id, e.to_string()))
}

fn normalize_test_list(v: &mut Value) -> Result<(), String> {
    match v {
        Value::Null => {
            *v = Value::Array(vec![]);
            Ok(())
        }
        Value::String(s) => {
            let decoded: Value = if s.trim().is_empty() {
                Value::Array(vec![])
            } else {
                serde_json::from_str(s).map_err(|e| format!("not a JSON-encoded list: {e}"))?
            };
            *v = decoded;
            check_string_list(v)
        }
        Value::Array(_) => check_string_list(v),
        _ => Err("expected a list of test ids or a JSON-encoded list".into()),
    }
}

fn check_string_list(v: &Value) -> Result<(), String> {
    match v {
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(()),
        _ => Err("expected a list of strings".into()),
    }
}

fn drop_nulls(map: &mut Map<String, Value>) {
    map.retain(|_, v| !v.is_null());
}

fn parquet_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("data")] {
        if !sub.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&sub)? {
            let p = entry?.path();
            if p.extension().is_some_and(|e| e == "parquet") {
                files.push(p);
            }
        }
        if !files.is_empty() {
            break;
        }
    }
    files.sort();
    Ok(files)
}

fn load_parquet(path: &Path) -> Result<Dataset, DatasetError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let perr = |message: String| DatasetError::Parquet {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| perr(e.to_string()))?
        .build()
        .map_err(|e| perr(e.to_string()))?;
    let mut out = Dataset::default();
    let mut row_no = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| perr(e.to_string()))?;
        let schema = batch.schema();
        for r in 0..batch.num_rows() {
            row_no += 1;
            let mut map = Map::new();
            let mut bad = None;
            for (c, field) in schema.fields().iter().enumerate() {
                match arrow_value(batch.column(c).as_ref(), r) {
                    Ok(v) => {
                        map.insert(field.name().clone(), v);
                    }
                    Err(m) => {
                        bad = Some(format!("column `{}`: {m}", field.name()));
                        break;
                    }
                }
            }
            match bad {
                Some(message) => out.skipped.push(RowError {
                    row: row_no,
                    instance_id: map
                        .get("instance_id")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                    message,
                }),
                None => push_row(&mut out, row_no, Value::Object(map)),
            }
        }
    }
    Ok(out)
}

/// One Arrow cell as JSON, for the column types SWE-bench exports use.
fn arrow_value(col: &dyn arrow::array::Array, row: usize) -> Result<Value, String> {
    use arrow::array::{
        Array, AsArray, BooleanArray, Float64Array, Int32Array, Int64Array, LargeStringArray,
        StringArray, StringViewArray,
    };
    use arrow::datatypes::DataType;
    if col.is_null(row) {
        return Ok(Value::Null);
    }
    let any = col.as_any();
    Ok(match col.data_type() {
        DataType::Utf8 => match any.downcast_ref::<StringArray>() {
            Some(a) => Value::String(a.value(row).to_owned()),
            None => return Err("bad Utf8 column".into()),
        },
        DataType::LargeUtf8 => match any.downcast_ref::<LargeStringArray>() {
            Some(a) => Value::String(a.value(row).to_owned()),
            None => return Err("bad LargeUtf8 column".into()),
        },
        DataType::Utf8View => match any.downcast_ref::<StringViewArray>() {
            Some(a) => Value::String(a.value(row).to_owned()),
            None => return Err("bad Utf8View column".into()),
        },
        DataType::Boolean => match any.downcast_ref::<BooleanArray>() {
            Some(a) => Value::Bool(a.value(row)),
            None => return Err("bad Boolean column".into()),
        },
        DataType::Int64 => match any.downcast_ref::<Int64Array>() {
            Some(a) => Value::from(a.value(row)),
            None => return Err("bad Int64 column".into()),
        },
        DataType::Int32 => match any.downcast_ref::<Int32Array>() {
            Some(a) => Value::from(a.value(row)),
            None => return Err("bad Int32 column".into()),
        },
        DataType::Float64 => match any.downcast_ref::<Float64Array>() {
            Some(a) => serde_json::Number::from_f64(a.value(row))
                .map(Value::Number)
                .unwrap_or(Value::Null),
            None => return Err("bad Float64 column".into()),
        },
        DataType::List(_) => {
            let list = col.as_list::<i32>();
            let inner = list.value(row);
            let mut items = Vec::with_capacity(inner.len());
            for i in 0..inner.len() {
                items.push(arrow_value(inner.as_ref(), i)?);
            }
            Value::Array(items)
        }
        DataType::LargeList(_) => {
            let list = col.as_list::<i64>();
            let inner = list.value(row);
            let mut items = Vec::with_capacity(inner.len());
            for i in 0..inner.len() {
                items.push(arrow_value(inner.as_ref(), i)?);
            }
            Value::Array(items)
        }
        DataType::Null => Value::Null,
        // Columns we never read (timestamps, structs, ...) are ignored rather than fatal.
        _ => Value::Null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_decodes_string_lists_and_skips_bad_rows() {
        let text = concat!(
            r#"{"repo":"a/b","instance_id":"a__b-1","base_commit":"x","FAIL_TO_PASS":"[\"t1\"]","PASS_TO_PASS":["t2"]}"#,
            "\n\nnot json\n",
            r#"{"repo":"a/b","base_commit":"x"}"#,
            "\n",
            r#"{"repo":"a/b","instance_id":"a__b-2","base_commit":"x","FAIL_TO_PASS":"[oops"}"#,
            "\n"
        );
        let ds = parse_jsonl(text);
        assert_eq!(ds.instances.len(), 1);
        assert_eq!(ds.instances[0].fail_to_pass, vec!["t1"]);
        assert_eq!(ds.instances[0].pass_to_pass, vec!["t2"]);
        let rows: Vec<usize> = ds.skipped.iter().map(|e| e.row).collect();
        assert_eq!(rows, vec![3, 4, 5]);
        assert_eq!(ds.skipped[2].instance_id.as_deref(), Some("a__b-2"));
    }

    /// The fixture task repo (tests/fixtures/swebench_task_repo, written by
    /// its generate.py) reads as swebench 5.0.2's `load_task_repo` reads it:
    /// `swebench_task_repo.official.json` is that loader's output for the
    /// split-`test` tasks with every file present.
    #[test]
    fn task_repo_matches_the_official_loader() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let ds = load_dataset(&root.join("swebench_task_repo")).unwrap();
        let official = parse_json_array(
            &std::fs::read_to_string(root.join("swebench_task_repo.official.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(official.instances.len(), 2);
        assert_eq!(ds.instances, official.instances);
        let two = &ds.instances[1];
        assert_eq!(two.hints_text, "Look at mean() on an empty list.\n");
        assert_eq!(
            two.fail_to_pass,
            vec!["tests/test_mean.py::test_mean_empty"]
        );
        assert!(two.eval_script.as_deref().unwrap().contains("/testbed"));
        assert_eq!(two.version, "1.0");
        // The deprecated task is left out; the broken one is named.
        assert!(ds.get("airgate__old-3").is_none());
        assert_eq!(ds.skipped.len(), 1);
        assert_eq!(
            ds.skipped[0].instance_id.as_deref(),
            Some("airgate__noeval-1")
        );
        assert!(
            ds.skipped[0].message.contains("eval.sh"),
            "{}",
            ds.skipped[0]
        );
    }

    #[test]
    fn task_repo_with_no_task_in_the_split_names_the_splits() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/swebench_task_repo");
        let err = load_task_repo(&root, "dev").unwrap_err().to_string();
        assert!(
            err.contains("no tasks in split \"dev\". It has: deprecated test"),
            "{err}"
        );
        let dep = load_task_repo(&root, "deprecated").unwrap();
        assert_eq!(dep.instances[0].instance_id, "airgate__old-3");
    }

    #[test]
    fn json_array_and_nulls() {
        let text = r#"[{"repo":"a/b","instance_id":"i","base_commit":"c","hints_text":null,"version":3.0,"log_parser":"parse_log_pytest"}, 5]"#;
        let ds = parse_json_array(text).unwrap();
        assert_eq!(ds.instances.len(), 1);
        assert_eq!(ds.instances[0].version, "3.0");
        assert_eq!(
            ds.instances[0].log_parser.as_deref(),
            Some("parse_log_pytest")
        );
        assert_eq!(ds.skipped.len(), 1);
        assert_eq!(ds.skipped[0].row, 2);
        assert!(parse_json_array("{}").is_err());
    }
}
