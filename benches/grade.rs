//! Phase benchmark of the SWE-bench grader, in process (see also
//! `scripts/bench-grade.sh`, which compares against the official harness).
//!
//! ```text
//! cargo bench --bench grade -- [--logs DIR] [--dataset FILE] [--runs N]
//! ```
//!
//! Prints the best-of-N single-thread time of each phase over all logs:
//! dataset load, 5.x grading of marker-wrapped logs, grading of raw pre-3.0
//! logs in markers mode (the "no test output" path, with infra
//! classification) and in legacy mode, and report rendering.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: a panic is a failed test

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use airgate::swebench::dataset::load_dataset;
use airgate::swebench::grading::{self, GradeMode};
use airgate::swebench::instance::Instance;
use airgate::swebench::parsers::universal_newlines;
use airgate::swebench::report::instance_report_json;

fn best<F: FnMut()>(runs: usize, mut f: F) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let mut logs = PathBuf::from("../shared/swebench/official_logs_dev");
    let mut dataset = PathBuf::from("tests/fixtures/swebench_dev/dataset.jsonl");
    let mut runs = 20usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--logs" => logs = args.next().map(PathBuf::from).unwrap_or(logs),
            "--dataset" => dataset = args.next().map(PathBuf::from).unwrap_or(dataset),
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(runs),
            // cargo bench passes --bench; ignore it and anything unknown.
            _ => {}
        }
    }
    let ds = match load_dataset(&dataset) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot load {}: {e}", dataset.display());
            return ExitCode::FAILURE;
        }
    };
    let mut raw = Vec::new();
    for inst in &ds.instances {
        let path = logs.join(&inst.instance_id).join("test_output.txt");
        match std::fs::read(&path) {
            Ok(b) => raw.push((inst, String::from_utf8_lossy(&b).into_owned())),
            Err(e) => eprintln!("skipping {}: {e}", path.display()),
        }
    }
    if raw.is_empty() {
        eprintln!("no logs under {}", logs.display());
        return ExitCode::FAILURE;
    }
    let wrapped: Vec<_> = raw
        .iter()
        .map(|(i, t)| {
            (
                *i,
                format!(">>>>> Start Test Output\n{t}\n>>>>> End Test Output\n"),
            )
        })
        .collect();
    let bytes: usize = raw.iter().map(|(_, t)| t.len()).sum();
    println!(
        "{} logs, {:.1} MB, best of {runs} runs, one thread",
        raw.len(),
        bytes as f64 / 1e6
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;

    // Grades every log of `set` in each of `modes`, as the CLI does.
    let grade_all = |set: &[(&Instance, String)], modes: &[GradeMode]| {
        for (i, log) in set {
            let c = universal_newlines(log);
            for &mode in modes {
                std::hint::black_box(grading::grade_with_mode(i, &c, mode));
            }
        }
    };
    let both = [GradeMode::Markers, GradeMode::Legacy];
    // The first pass pays for every lazily compiled regex and automaton;
    // a CLI run pays it once per process.
    let t = best(1, || {
        grade_all(&wrapped, &both);
        grade_all(&raw, &both);
    });
    println!(
        "first pass, all modes:     {:8.3} ms (cold: includes pattern compilation)",
        ms(t)
    );
    let t = best(runs, || {
        grade_all(&wrapped, &both);
        grade_all(&raw, &both);
    });
    println!("same, warm:                {:8.3} ms", ms(t));
    let t = best(runs, || {
        let _ = std::hint::black_box(load_dataset(&dataset));
    });
    println!(
        "dataset load ({} rows):     {:8.3} ms",
        ds.instances.len(),
        ms(t)
    );
    let t = best(runs, || grade_all(&wrapped, &[GradeMode::Markers]));
    println!("grade wrapped (markers):   {:8.3} ms", ms(t));
    let t = best(runs, || grade_all(&raw, &[GradeMode::Markers]));
    println!("grade raw (markers mode):  {:8.3} ms", ms(t));
    let t = best(runs, || grade_all(&raw, &[GradeMode::Legacy]));
    println!("grade raw (legacy mode):   {:8.3} ms", ms(t));
    let t = best(runs, || {
        for (_, log) in &raw {
            std::hint::black_box(grading::classify_text(log));
        }
    });
    println!("infra classification:      {:8.3} ms", ms(t));
    let grades: Vec<_> = wrapped
        .iter()
        .map(|(i, log)| grading::grade_with_mode(i, log, GradeMode::Markers))
        .collect();
    let t = best(runs, || {
        for g in &grades {
            std::hint::black_box(instance_report_json(&g.instance_id, Some("x"), g));
        }
    });
    println!("report.json rendering:     {:8.3} ms", ms(t));
    ExitCode::SUCCESS
}
