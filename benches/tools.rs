//! Benchmark of the agent's tools on a large tree (see `scripts/bench-search.sh`).
//!
//! ```text
//! cargo bench --bench tools -- --tree DIR --pattern PAT [--runs N] [--file REL]
//! <bench binary> --tree DIR --pattern PAT --search-once   # one search, for process-level timing
//! ```
//!
//! Prints the median wall time of `search` (in process), and the per-step
//! harness overhead (median ms of `read_file`, `search`, `str_replace`
//! through `tools::dispatch`, truncation included).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: a panic is a failed test

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use airgate::model::ToolCall;
use airgate::sandbox::local::LocalSandbox;
use airgate::tools::{self, ToolContext};
use serde_json::{Value, json};

struct Opts {
    tree: PathBuf,
    pattern: String,
    runs: usize,
    file: Option<String>,
    search_once: bool,
}

fn parse() -> Result<Option<Opts>, String> {
    let mut tree = None;
    let mut pattern = None;
    let mut runs = 15;
    let mut file = None;
    let mut search_once = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--tree" => tree = it.next().map(PathBuf::from),
            "--pattern" => pattern = it.next(),
            "--file" => file = it.next(),
            "--runs" => {
                runs = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--runs needs a number")?
            }
            "--search-once" => search_once = true,
            // Passed by `cargo bench`; `--list` etc. by test runners.
            "--bench" => {}
            "--list" | "--exact" | "--format" | "terse" | "--ignored" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    match (tree, pattern) {
        (Some(tree), Some(pattern)) => Ok(Some(Opts {
            tree,
            pattern,
            runs: runs.max(1),
            file,
            search_once,
        })),
        _ => Ok(None),
    }
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn call(name: &str, args: Value) -> ToolCall {
    ToolCall {
        id: "bench".into(),
        name: name.into(),
        arguments: args,
    }
}

fn main() -> ExitCode {
    let opts = match parse() {
        Ok(Some(o)) => o,
        Ok(None) => {
            // Run without arguments (e.g. by `cargo test --all-targets`): nothing to measure.
            eprintln!(
                "usage: tools --tree DIR --pattern PAT [--runs N] [--file REL] [--search-once]"
            );
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match bench(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(o: &Opts) -> Result<(), String> {
    if o.search_once {
        let res = tools::search::run_search(&o.tree, &o.pattern, None, None)?;
        println!("{}", res.total());
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    let sandbox = LocalSandbox::new(&o.tree);
    let ctx = ToolContext {
        mcp: None,
        sandbox: &sandbox,
        guards: Default::default(),
        output_limit: tools::DEFAULT_OUTPUT_LIMIT,
        run_timeout: Duration::from_secs(60),
        max_run_timeout: Duration::from_secs(60),
    };

    // Raw search (no rendering), in process.
    let first = tools::search::run_search(&o.tree, &o.pattern, None, None)?;
    let mut raw = Vec::new();
    for _ in 0..o.runs {
        let t = Instant::now();
        let r = tools::search::run_search(&o.tree, &o.pattern, None, None)?;
        raw.push(t.elapsed());
        if r.total() != first.total() {
            return Err("search results differ between runs".into());
        }
    }
    println!(
        "search_inprocess_ms {:.1} matches {} files {}",
        median(raw),
        first.total(),
        first.file_count()
    );

    // Per-step harness overhead through the dispatcher.
    let step = |c: &ToolCall| -> Result<Duration, String> {
        let t = Instant::now();
        let out = rt.block_on(tools::dispatch(&ctx, c));
        let d = t.elapsed();
        if out.is_error {
            return Err(format!("{} failed: {}", c.name, out.text));
        }
        Ok(d)
    };
    let file = match &o.file {
        Some(f) => f.clone(),
        None => return Err("--file REL is needed for the per-step figures".into()),
    };
    let mut reads = Vec::new();
    let mut searches = Vec::new();
    let mut edits = Vec::new();
    let read = call(
        "read_file",
        json!({"path": file, "start_line": 100, "end_line": 160}),
    );
    let search = call("search", json!({"pattern": o.pattern}));
    let marker_a = "# airgate-bench-marker: A";
    let marker_b = "# airgate-bench-marker: B";
    // Put a unique marker line in the file once; the timed edits then flip it.
    let abs = o.tree.join(&file);
    let body = std::fs::read_to_string(&abs).map_err(|e| format!("{}: {e}", abs.display()))?;
    std::fs::write(&abs, format!("{body}{marker_a}\n")).map_err(|e| e.to_string())?;
    for i in 0..o.runs {
        reads.push(step(&read)?);
        searches.push(step(&search)?);
        let (from, to) = if i % 2 == 0 {
            (marker_a, marker_b)
        } else {
            (marker_b, marker_a)
        };
        edits.push(step(&call(
            "str_replace",
            json!({"path": file, "old_str": from, "new_str": to}),
        ))?);
    }
    std::fs::write(&abs, body).map_err(|e| e.to_string())?;
    println!(
        "step_median_ms read_file {:.2} search {:.1} str_replace {:.2}",
        median(reads),
        median(searches),
        median(edits)
    );
    Ok(())
}
