//! `airgate swebench grade`: re-grades a folder of `<instance>/test_output.txt`
//! logs with the one library grader, in parallel, and writes each
//! `report.json` plus the aggregate `<model>.<run_id>.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::swebench::GradeArgs;
use crate::error::CliError;
use crate::swebench::dataset::{Dataset, load_dataset};
use crate::swebench::grading::{self, GradeMode, InstanceGrade};
use crate::swebench::instance::Instance;
use crate::swebench::logs::{self, LOG_INSTANCE, LOG_PATCH, LOG_REPORT, LOG_TEST_OUTPUT};
use crate::swebench::parsers::universal_newlines;
use crate::swebench::predictions::{Prediction, load_predictions};
use crate::swebench::report::{
    AggregateEntry, InstanceOutcome, aggregate_report, aggregate_report_name, instance_report_json,
};

/// Result of grading one instance folder.
struct Graded {
    instance_id: String,
    grade: Option<InstanceGrade>,
    error: Option<String>,
    empty_patch: bool,
    infra: Option<(String, bool)>,
}

/// Re-grades a folder of logs.
pub async fn run(args: GradeArgs) -> anyhow::Result<u8> {
    tokio::task::spawn_blocking(move || run_blocking(args))
        .await
        .context("grading task panicked")?
}

fn run_blocking(args: GradeArgs) -> anyhow::Result<u8> {
    if !args.logs.is_dir() {
        return Err(CliError::usage(format!(
            "--logs {} is not a folder; point it at a folder of <instance>/test_output.txt logs",
            args.logs.display()
        ))
        .into());
    }
    let dataset = load_dataset(&args.dataset).map_err(|e| CliError::usage(e.to_string()))?;
    for bad in &dataset.skipped {
        eprintln!("warning: dataset {}: skipped {bad}", args.dataset.display());
    }
    let force = match args.mode.as_str() {
        "markers" => Some(GradeMode::Markers),
        "legacy" => Some(GradeMode::Legacy),
        _ => None,
    };
    let preds: Option<HashMap<String, Prediction>> = match &args.predictions {
        Some(spec) => Some(
            load_predictions(spec, &dataset)
                .map_err(|e| CliError::usage(e.to_string()))?
                .into_iter()
                .map(|p| (p.instance_id.clone(), p))
                .collect(),
        ),
        None => None,
    };
    let (inferred_run, inferred_model) = logs::infer_run_and_model(&args.logs);
    let model = args
        .model
        .clone()
        .or_else(|| {
            preds
                .as_ref()
                .and_then(|p| p.values().next().and_then(|p| p.model_name_or_path.clone()))
        })
        .or(inferred_model)
        .unwrap_or_else(|| "None".into());
    let run_id = args
        .run_id
        .clone()
        .or(inferred_run)
        .unwrap_or_else(|| "run".into());
    let out = args.out.clone().unwrap_or_else(|| args.logs.clone());

    // The grading clock starts once the inputs are loaded (the official
    // loop is timed the same way: its dataset and specs are built first).
    let started = Instant::now();
    let dirs = instance_dirs(&args.logs)
        .with_context(|| format!("cannot list {}", args.logs.display()))?;
    if dirs.is_empty() {
        return Err(CliError::usage(format!(
            "no <instance>/{LOG_TEST_OUTPUT} under {}",
            args.logs.display()
        ))
        .into());
    }
    let index = dataset.index();
    let bar = ProgressBar::new(dirs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("grading [{bar:30}] {pos}/{len} {elapsed} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let graded: Vec<Graded> = dirs
        .par_iter()
        .map(|(id, dir)| {
            let g = grade_one(id, dir, &index, preds.as_ref(), force, &out);
            bar.inc(1);
            g
        })
        .collect();
    bar.finish_and_clear();
    let summary = summarize(&dataset, &graded, &model, &run_id, &out)?;
    // Listing, reading, grading, every report.json and the aggregate.
    let elapsed = started.elapsed();
    let errors: Vec<&Graded> = graded.iter().filter(|g| g.error.is_some()).collect();
    for g in &errors {
        eprintln!(
            "error: {}: {}",
            g.instance_id,
            g.error.as_deref().unwrap_or("")
        );
    }
    let legacy = graded
        .iter()
        .filter(|g| {
            g.grade
                .as_ref()
                .is_some_and(|x| x.mode == GradeMode::Legacy)
        })
        .count();
    let graded_n = graded.len();
    if args.json {
        let v = serde_json::json!({
            "graded": graded_n,
            "resolved": summary.resolved,
            "errors": errors.len(),
            "empty_patches": summary.empty_patches,
            "legacy_mode": legacy,
            "total_instances": summary.total,
            "aggregate_report": summary.path,
            "elapsed_ms": elapsed.as_secs_f64() * 1000.0,
        });
        println!("{v}");
    } else {
        println!(
            "resolved {}/{} graded ({} in dataset); errors {}; empty patches {}; legacy-mode logs {}",
            summary.resolved,
            graded_n,
            summary.total,
            errors.len(),
            summary.empty_patches,
            legacy
        );
        println!(
            "graded in {:.1} ms; aggregate report: {}",
            elapsed.as_secs_f64() * 1000.0,
            summary.path.display()
        );
    }
    Ok(crate::error::exit::OK)
}

struct Summary {
    resolved: usize,
    empty_patches: usize,
    total: usize,
    path: PathBuf,
}

fn summarize(
    dataset: &Dataset,
    graded: &[Graded],
    model: &str,
    run_id: &str,
    out: &Path,
) -> anyhow::Result<Summary> {
    let known = dataset.index();
    let entries: Vec<AggregateEntry> = graded
        .iter()
        .filter(|g| known.contains_key(g.instance_id.as_str()))
        .map(|g| AggregateEntry {
            instance_id: g.instance_id.clone(),
            empty_patch: g.empty_patch,
            outcome: match (&g.grade, &g.error) {
                (Some(x), None) => InstanceOutcome::Reported {
                    resolved: x.resolved,
                },
                _ => InstanceOutcome::Error,
            },
            infra_failure: g.infra.clone(),
            strict: None,
        })
        .collect();
    let ids: Vec<String> = dataset
        .instances
        .iter()
        .map(|i| i.instance_id.clone())
        .collect();
    let agg = aggregate_report(&ids, &entries);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let path = out.join(aggregate_report_name(model, run_id));
    std::fs::write(&path, agg.to_json())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Summary {
        resolved: agg.resolved,
        empty_patches: agg.empty_patches,
        total: agg.total,
        path,
    })
}

fn grade_one(
    id: &str,
    dir: &Path,
    index: &HashMap<&str, &Instance>,
    preds: Option<&HashMap<String, Prediction>>,
    force: Option<GradeMode>,
    out: &Path,
) -> Graded {
    let mut result = Graded {
        instance_id: id.to_owned(),
        grade: None,
        error: None,
        empty_patch: false,
        infra: None,
    };
    let Some(instance) = index.get(id) else {
        result.error = Some("not in the dataset; pass the dataset this run used".into());
        return result;
    };
    // One read buffer per worker thread, reused: fresh multi-megabyte
    // buffers per log cost more in page faults than the grading itself.
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        let graded = grade_log(id, dir, instance, preds, force, out, buf, result);
        // Keep a typical log's worth, not the largest log ever seen.
        if buf.capacity() > KEEP_BUFFER_BYTES {
            *buf = Vec::new();
        }
        graded
    })
}

/// Read buffers above this are released after use.
const KEEP_BUFFER_BYTES: usize = 64 << 20;

#[allow(clippy::too_many_arguments)]
fn grade_log(
    id: &str,
    dir: &Path,
    instance: &Instance,
    preds: Option<&HashMap<String, Prediction>>,
    force: Option<GradeMode>,
    out: &Path,
    bytes: &mut Vec<u8>,
    mut result: Graded,
) -> Graded {
    bytes.clear();
    let read = std::fs::File::open(dir.join(LOG_TEST_OUTPUT))
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, bytes));
    if let Err(e) = read {
        result.error = Some(format!("cannot read {LOG_TEST_OUTPUT}: {e}"));
        return result;
    }
    let bytes: &[u8] = bytes;
    // The model patch: from --predictions, else patch.diff, else "unknown but present".
    let patch: Option<String> = match preds {
        Some(p) => match p.get(id) {
            Some(pred) => pred.model_patch.clone(),
            None => {
                result.error = Some("no prediction for this instance in --predictions".into());
                return result;
            }
        },
        None => match std::fs::read(dir.join(LOG_PATCH)) {
            Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            Err(_) => Some(String::from("<patch not recorded>")),
        },
    };
    result.empty_patch = patch.as_deref().is_none_or(str::is_empty);
    // Valid UTF-8 (the common case) is checked by the fast validator; only
    // invalid logs take the lossy path.
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    };
    let content = universal_newlines(&text);
    let grade = match force {
        Some(mode) => grading::grade_with_mode(instance, &content, mode),
        None => grading::grade(instance, &content),
    };
    if let Some(e) = &grade.error {
        result.error = Some(e.clone());
    } else {
        let report = instance_report_json(id, patch.as_deref(), &grade);
        let target = out.join(id);
        let write = std::fs::create_dir_all(&target)
            .and_then(|_| std::fs::write(target.join(LOG_REPORT), report));
        if let Err(e) = write {
            result.error = Some(format!(
                "cannot write {}: {e}",
                target.join(LOG_REPORT).display()
            ));
        }
    }
    if !grade.resolved {
        // classify_logs(test_output, run_instance.log), as make_run_report does;
        // without run_instance.log the grader's own classification is that result.
        let infra = match std::fs::read(dir.join(LOG_INSTANCE)) {
            Ok(extra) => {
                let mut text = content.into_owned();
                text.push('\n');
                text.push_str(&universal_newlines(&String::from_utf8_lossy(&extra)));
                grading::classify_text(&text)
            }
            Err(_) if !grade.patch_applied => grade.infra_failure.clone(),
            Err(_) => grading::classify_text(&content),
        };
        result.infra = infra.map(|f| (f.reason.to_owned(), f.environment));
    }
    result.grade = Some(grade);
    result
}

/// `(instance_id, folder)` for every subfolder holding a `test_output.txt`, sorted.
fn instance_dirs(root: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        if path.join(LOG_TEST_OUTPUT).is_file()
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            out.push((name.to_owned(), path.clone()));
        }
    }
    out.sort();
    Ok(out)
}
