//! Loading model predictions the way `swebench==5.0.2`
//! (`get_predictions_from_file` + `main`) does: `.jsonl`, a `.json` list,
//! a `.json` dict keyed by instance id (SWE-agent style), or `gold`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::dataset::Dataset;
use crate::error::Retryable;

/// One prediction. `model_patch` is `None` when the file said `null`
/// (reported as `patch_is_None`); an empty string is an empty patch.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Instance id.
    pub instance_id: String,
    /// Model name; `None` when absent (the official harness then uses `"None"`).
    pub model_name_or_path: Option<String>,
    /// The patch, or `None` for JSON `null` / a missing key.
    pub model_patch: Option<String>,
}

impl Prediction {
    /// True for `""` or `null`: such predictions are counted as empty and not run.
    pub fn is_empty_patch(&self) -> bool {
        self.model_patch.as_deref().is_none_or(str::is_empty)
    }

    /// The model folder name used in log paths and the aggregate report name
    /// (`/` replaced by `__`, `"None"` when absent).
    pub fn model_dir_name(&self) -> String {
        self.model_name_or_path
            .as_deref()
            .unwrap_or("None")
            .replace('/', "__")
    }
}

/// Why predictions could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PredictionsError {
    /// The file could not be read.
    #[error("cannot read predictions {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Neither `gold`, `.json` nor `.jsonl`.
    #[error("predictions path must end in .json or .jsonl, or be `gold` (got {0})")]
    BadExtension(String),
    /// JSON that does not parse.
    #[error("predictions {path}: invalid JSON{}: {message}", line.map(|l| format!(" on line {l}")).unwrap_or_default())]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line for JSONL.
        line: Option<usize>,
        /// Parser message.
        message: String,
    },
    /// Shape errors the official harness also refuses.
    #[error("predictions {path}: {message}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// Prediction ids missing from the dataset (the official harness refuses the run).
    #[error("some prediction ids are not in the dataset: {}; remove them or use the matching dataset", .0.join(" "))]
    UnknownIds(Vec<String>),
}

impl Retryable for PredictionsError {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// [`load_predictions`] for a run narrowed to `instance_ids` (empty = all).
/// Gold predictions are then only the selected rows, as the official
/// harness loads them (`load_swebench_dataset(..., instance_ids)`), so the
/// aggregate's `submitted_instances` counts what was asked for; predictions
/// from a file are kept whole, as officially.
pub fn load_predictions_for(
    spec: &str,
    dataset: &Dataset,
    instance_ids: &[String],
) -> Result<Vec<Prediction>, PredictionsError> {
    let mut preds = load_predictions(spec, dataset)?;
    if spec == "gold" && !instance_ids.is_empty() {
        preds.retain(|p| instance_ids.contains(&p.instance_id));
    }
    Ok(preds)
}

/// Loads predictions. `spec` is `gold` (the dataset's own patches, model
/// `gold`) or a path ending in `.json`/`.jsonl`. Duplicate ids keep the last
/// prediction at the first one's position (Python dict semantics). Ids not
/// in `dataset` are refused, like the official harness.
pub fn load_predictions(
    spec: &str,
    dataset: &Dataset,
) -> Result<Vec<Prediction>, PredictionsError> {
    if spec == "gold" {
        return Ok(dataset
            .instances
            .iter()
            .map(|i| Prediction {
                instance_id: i.instance_id.clone(),
                model_name_or_path: Some("gold".into()),
                model_patch: Some(i.patch.clone()),
            })
            .collect());
    }
    let path = Path::new(spec);
    let raw: Vec<Value> = if spec.ends_with(".json") {
        let text = read(path)?;
        let v: Value = serde_json::from_str(&text).map_err(|e| PredictionsError::Json {
            path: path.into(),
            line: None,
            message: e.to_string(),
        })?;
        match v {
            Value::Array(a) => a,
            Value::Object(m) => m.into_iter().map(|(_, v)| v).collect(),
            _ => {
                return Err(PredictionsError::Shape {
                    path: path.into(),
                    message: "must be a list of predictions or a dict of instance_id to prediction"
                        .into(),
                });
            }
        }
    } else if spec.ends_with(".jsonl") {
        let text = read(path)?;
        let mut rows = Vec::new();
        for (i, line) in text.split('\n').enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            rows.push(
                serde_json::from_str(line).map_err(|e| PredictionsError::Json {
                    path: path.into(),
                    line: Some(i + 1),
                    message: e.to_string(),
                })?,
            );
        }
        rows
    } else {
        return Err(PredictionsError::BadExtension(spec.to_owned()));
    };
    let mut out: Vec<Prediction> = Vec::with_capacity(raw.len());
    let mut pos = std::collections::HashMap::new();
    for (n, v) in raw.into_iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(PredictionsError::Shape {
                path: path.into(),
                message: format!("prediction {} is not a JSON object", n + 1),
            });
        };
        let Some(id) = m.get("instance_id").map(py_str) else {
            return Err(PredictionsError::Shape {
                path: path.into(),
                message: format!("prediction {} has no `instance_id`", n + 1),
            });
        };
        let pred = Prediction {
            instance_id: id.clone(),
            model_name_or_path: m.get("model_name_or_path").map(py_str),
            model_patch: match m.get("model_patch") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            },
        };
        match pos.get(&id) {
            Some(&i) => out[i] = pred,
            None => {
                pos.insert(id, out.len());
                out.push(pred);
            }
        }
    }
    let known = dataset.index();
    let mut unknown: Vec<String> = out
        .iter()
        .filter(|p| !known.contains_key(p.instance_id.as_str()))
        .map(|p| p.instance_id.clone())
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(PredictionsError::UnknownIds(unknown));
    }
    Ok(out)
}

fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn read(path: &Path) -> Result<String, PredictionsError> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|source| PredictionsError::Io {
            path: path.into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swebench::instance::Instance;

    fn ds() -> Dataset {
        Dataset {
            instances: vec![
                Instance {
                    repo: "a/b".into(),
                    instance_id: "a__b-1".into(),
                    patch: "P1".into(),
                    ..Default::default()
                },
                Instance {
                    repo: "a/b".into(),
                    instance_id: "a__b-2".into(),
                    ..Default::default()
                },
            ],
            skipped: vec![],
        }
    }

    #[test]
    fn gold_uses_dataset_patches() {
        let p = load_predictions("gold", &ds()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].model_patch.as_deref(), Some("P1"));
        assert_eq!(p[0].model_name_or_path.as_deref(), Some("gold"));
        assert!(p[1].is_empty_patch());
    }

    #[test]
    fn gold_narrowed_to_selected_ids_but_files_kept_whole() {
        let ids = vec!["a__b-2".to_string()];
        let p = load_predictions_for("gold", &ds(), &ids).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].instance_id, "a__b-2");
        assert_eq!(load_predictions_for("gold", &ds(), &[]).unwrap().len(), 2);
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("p.jsonl");
        std::fs::write(
            &j,
            "{\"instance_id\":\"a__b-1\",\"model_patch\":\"x\"}\n{\"instance_id\":\"a__b-2\",\"model_patch\":\"y\"}\n",
        )
        .unwrap();
        let f = load_predictions_for(j.to_str().unwrap(), &ds(), &ids).unwrap();
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn dict_list_jsonl_null_and_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("p.json");
        std::fs::write(
            &j,
            r#"{"x": {"instance_id":"a__b-1","model_name_or_path":"org/m","model_patch":null}}"#,
        )
        .unwrap();
        let p = load_predictions(j.to_str().unwrap(), &ds()).unwrap();
        assert_eq!(p[0].model_patch, None);
        assert_eq!(p[0].model_dir_name(), "org__m");
        let l = dir.path().join("p.jsonl");
        std::fs::write(
            &l,
            "{\"instance_id\":\"a__b-1\",\"model_patch\":\"a\"}\n{\"instance_id\":\"a__b-1\",\"model_patch\":\"b\"}\n",
        )
        .unwrap();
        let p = load_predictions(l.to_str().unwrap(), &ds()).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].model_patch.as_deref(), Some("b"));
        assert_eq!(p[0].model_dir_name(), "None");
        std::fs::write(&l, "{\"instance_id\":\"zz\",\"model_patch\":\"a\"}\n").unwrap();
        assert!(matches!(
            load_predictions(l.to_str().unwrap(), &ds()),
            Err(PredictionsError::UnknownIds(ids)) if ids == vec!["zz".to_string()]
        ));
        assert!(matches!(
            load_predictions("p.txt", &ds()),
            Err(PredictionsError::BadExtension(_))
        ));
    }
}
