//! `airgate swebench eval` and `eval-script`.
use std::sync::Arc;
use std::time::Duration;

use super::swebench::{EvalArgs, EvalScriptArgs};
use crate::error::{CliError, exit};
use crate::sandbox::SandboxError;
use crate::sandbox::docker::DockerConfig;
use crate::swebench::dataset::load_dataset;
use crate::swebench::eval::{self, EvalError, EvalOptions, RunStatus, StrictEval};
use crate::swebench::eval_script::eval_script;
use crate::swebench::predictions::load_predictions_for;
use crate::swebench::strict::StrictGrader;

/// Runs the Docker evaluation.
async fn run_eval_cmd(args: EvalArgs) -> anyhow::Result<u8> {
    if args.run_id.trim().is_empty() {
        return Err(CliError::usage("--run-id must not be empty").into());
    }
    let dataset = load_dataset(&args.dataset).map_err(|e| CliError::usage(e.to_string()))?;
    for skipped in &dataset.skipped {
        eprintln!("warning: dataset {skipped} was skipped");
    }
    let predictions = load_predictions_for(&args.predictions, &dataset, &args.instance_ids)
        .map_err(|e| CliError::usage(e.to_string()))?;
    let missing: Vec<&String> = args
        .instance_ids
        .iter()
        .filter(|id| dataset.get(id).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(CliError::usage(format!(
            "some instance ids are not in the dataset: {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ))
        .into());
    }
    if let Some(path) = &args.require_validated {
        // The instances that would be scored: selected, with a non-empty
        // prediction.
        let scored: Vec<_> = dataset
            .instances
            .iter()
            .filter(|i| args.instance_ids.is_empty() || args.instance_ids.contains(&i.instance_id))
            .filter(|i| {
                predictions
                    .iter()
                    .any(|p| p.instance_id == i.instance_id && !p.is_empty_patch())
            })
            .collect();
        let ns = std::env::var("AIRGATE_IMAGE_NAMESPACE").ok();
        crate::swebench::validate::check_required(path, &scored, ns.as_deref())
            .await
            .map_err(|e| CliError::usage(e.to_string()))?;
    }
    let docker = DockerConfig::load(None).map_err(|e| CliError::usage(e.to_string()))?;
    let root = std::env::current_dir()
        .map_err(|e| CliError::failure(format!("cannot read the current directory: {e}")))?;
    let strict = if args.strict {
        let grader = StrictGrader::load(args.patch_policy.as_deref())
            .map_err(|e| CliError::usage(e.to_string()))?;
        Some(Arc::new(StrictEval {
            grader,
            control_dir: args
                .control_cache
                .clone()
                .unwrap_or_else(|| root.join("logs").join("empty_patch_control")),
        }))
    } else {
        None
    };
    let opts = EvalOptions {
        run_id: args.run_id.clone(),
        max_workers: args.max_workers.max(1),
        timeout: Duration::from_secs(args.timeout.max(1)),
        keep: args.keep,
        root,
        report_dir: args.report_dir.clone(),
        namespace: std::env::var("AIRGATE_IMAGE_NAMESPACE").ok(),
        docker,
        dataset_label: args.dataset.display().to_string(),
        progress: true,
        strict,
    };
    let summary = match eval::run_eval(&dataset, &predictions, &args.instance_ids, opts).await {
        Ok(s) => s,
        Err(e @ EvalError::Interrupted { .. }) => {
            return Err(CliError {
                code: exit::INTERRUPTED,
                message: e.to_string(),
            }
            .into());
        }
        Err(EvalError::Sandbox(e @ SandboxError::DaemonUnavailable(_))) => {
            return Err(CliError::failure(e.to_string()).into());
        }
        Err(e) => return Err(CliError::failure(e.to_string()).into()),
    };
    for run in &summary.runs {
        if let RunStatus::Infra(kind) = run.status {
            eprintln!(
                "infrastructure failure ({}): {}",
                kind.reason(),
                run.instance_id
            );
        }
    }
    let a = &summary.aggregate;
    println!("Total instances: {}", a.total);
    println!("Instances completed: {}", a.completed);
    println!("Instances resolved: {}", a.resolved);
    if let Some(s) = &a.strict {
        println!(
            "Instances resolved (official rules): {}",
            s.resolved_official
        );
        println!("Instances flagged by strict grading: {}", s.flagged);
        println!("Broken instances (the empty patch resolves): {}", s.broken);
    }
    println!("Instances with empty patches: {}", a.empty_patches);
    println!("Instances with errors: {}", a.errors);
    if let Some(left) = &a.engine {
        println!("Unstopped containers: {}", left.unstopped_containers.len());
        println!("Unremoved images: {}", left.unremoved_images.len());
    }
    println!("Report written to {}", summary.report_path.display());
    Ok(exit::OK)
}

/// Runs the Docker evaluation (the name `swebench.rs` dispatches to).
pub async fn run_eval(args: EvalArgs) -> anyhow::Result<u8> {
    run_eval_cmd(args).await
}

/// Prints an instance's eval script.
pub async fn run_eval_script(args: EvalScriptArgs) -> anyhow::Result<u8> {
    let dataset = load_dataset(&args.dataset).map_err(|e| CliError::usage(e.to_string()))?;
    let Some(inst) = dataset.get(&args.instance) else {
        return Err(CliError::usage(format!(
            "instance {} is not in {}",
            args.instance,
            args.dataset.display()
        ))
        .into());
    };
    let script = eval_script(inst).map_err(|e| CliError::failure(e.to_string()))?;
    print!("{script}");
    Ok(exit::OK)
}
