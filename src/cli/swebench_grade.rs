//! `airgate swebench grade`: the arguments and the printout of
//! [`crate::swebench::regrade`], which re-grades a folder of
//! `<instance>/test_output.txt` logs.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::swebench::GradeArgs;
use crate::error::CliError;
use crate::swebench::dataset::load_dataset;
use crate::swebench::grading::GradeMode;
use crate::swebench::logs;
use crate::swebench::predictions::{Prediction, load_predictions};
use crate::swebench::regrade::{Graded, RegradeError, RegradeRequest, grade_folder};

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
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("grading [{bar:30}] {pos}/{len} {elapsed} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let req = RegradeRequest {
        logs: &args.logs,
        dataset: &dataset,
        predictions: preds.as_ref(),
        force,
        model: &model,
        run_id: &run_id,
        out: &out,
    };
    let summary = grade_folder(&req, &|total| {
        bar.set_length(total as u64);
        bar.inc(1);
    })
    .map_err(|e| match e {
        RegradeError::NoLogs(_) => anyhow::Error::from(CliError::usage(e.to_string())),
        e => anyhow::Error::from(e),
    });
    bar.finish_and_clear();
    let summary = summary?;
    let graded = &summary.graded;
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
