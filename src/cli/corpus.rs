//! `airgate corpus stats|verify|export|select|merge`.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::corpus::ops::{self, ExportFormat};
use crate::corpus::select::{SelectRule, select};
use crate::corpus::{CorpusError, Split};
use crate::error::CliError;

/// Arguments of `airgate corpus`.
#[derive(Debug, Args)]
pub struct CorpusArgs {
    /// Which action.
    #[command(subcommand)]
    pub action: CorpusAction,
}

/// `corpus` subcommands.
#[derive(Debug, Subcommand)]
pub enum CorpusAction {
    /// Rows, instances, repos, models, tokens, and a per-repo table.
    Stats {
        /// Corpus directory.
        dir: PathBuf,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Recompute every sha256 and check schema and manifest (exit 1 on any mismatch).
    Verify {
        /// Corpus directory.
        dir: PathBuf,
    },
    /// Export for training: JSONL, one conversation per row, or a Hugging
    /// Face dataset folder with a dataset card (`--format parquet`).
    Export {
        /// Corpus directory.
        dir: PathBuf,
        /// `sft-openai` ({"messages", "tools"}: TRL, axolotl), `sharegpt`,
        /// or `parquet` (a folder: verified/, rejected/ and README.md).
        #[arg(long, default_value = "sft-openai")]
        format: String,
        /// Which split a JSONL export holds: `verified` or `rejected`.
        #[arg(long, default_value = "verified")]
        split: String,
        /// Output file (JSONL), or folder for `--format parquet`.
        #[arg(long)]
        out: PathBuf,
    },
    /// A smaller, better corpus: filter by flags, steps, tokens and solve
    /// rate, drop near-duplicates, keep one row per instance, cap rows per
    /// repo. The rule is recorded in the output manifest.
    Select {
        /// Input corpus (its verified split).
        input: PathBuf,
        /// Output corpus directory (new).
        #[arg(long)]
        out: PathBuf,
        /// Drop rows carrying any flag.
        #[arg(long)]
        no_flags: bool,
        /// Keep rows with at least this many steps.
        #[arg(long)]
        min_steps: Option<i32>,
        /// Keep rows with at most this many steps.
        #[arg(long)]
        max_steps: Option<i32>,
        /// Keep rows with at most this many prompt + completion tokens.
        #[arg(long)]
        max_tokens: Option<i64>,
        /// Keep instances with a solve rate of at least this (0..1).
        #[arg(long)]
        min_solve_rate: Option<f64>,
        /// Keep instances with a solve rate of at most this (0..1).
        #[arg(long)]
        max_solve_rate: Option<f64>,
        /// Keep near-duplicates (same normalised patch and problem statement).
        #[arg(long)]
        keep_duplicates: bool,
        /// One row per instance: the shortest, or a seeded random one with --seed.
        #[arg(long)]
        one_per_instance: bool,
        /// At most this many rows per repo.
        #[arg(long)]
        per_repo_cap: Option<u32>,
        /// Seed for a random (but reproducible) pick and cap order.
        #[arg(long)]
        seed: Option<u64>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark: write then read N synthetic rows (used by scripts/bench-factory.sh).
    #[command(hide = true)]
    BenchIo {
        /// Rows to write.
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// Corpus directory to create (must not exist).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Merge corpora into one, dropping duplicates.
    Merge {
        /// Input corpora.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output corpus (created, or appended to).
        #[arg(long)]
        out: PathBuf,
    },
}

fn failure(e: CorpusError) -> anyhow::Error {
    match e {
        CorpusError::Manifest(_) => CliError::usage(e.to_string()).into(),
        other => CliError::failure(other.to_string()).into(),
    }
}

/// Runs `airgate corpus`.
pub async fn run(args: CorpusArgs) -> anyhow::Result<u8> {
    // Parquet encoding and hashing are CPU-bound: keep them off the async workers.
    tokio::task::spawn_blocking(move || run_blocking(args)).await?
}

fn run_blocking(args: CorpusArgs) -> anyhow::Result<u8> {
    match args.action {
        CorpusAction::Stats { dir, json } => {
            let s = ops::stats(&dir).map_err(failure)?;
            if json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                print!("{}", s.render());
            }
            Ok(0)
        }
        CorpusAction::Verify { dir } => {
            let rep = ops::verify(&dir).map_err(failure)?;
            for p in &rep.problems {
                println!("MISMATCH {p}");
            }
            if rep.ok() {
                println!(
                    "ok: {} segments, {} rows; every sha256, trajectory id, patch hash and the schema check out",
                    rep.segments, rep.rows
                );
                Ok(0)
            } else {
                eprintln!(
                    "error: corpus {} failed verification: {} problem(s) in {} segments / {} rows",
                    dir.display(),
                    rep.problems.len(),
                    rep.segments,
                    rep.rows
                );
                Ok(1)
            }
        }
        CorpusAction::Export {
            dir,
            format,
            split,
            out,
        } => {
            let f = ExportFormat::parse(&format).ok_or_else(|| {
                CliError::usage(format!(
                    "unknown --format `{format}`: use sft-openai, sharegpt or parquet"
                ))
            })?;
            let split = match split.as_str() {
                "verified" => Split::Verified,
                "rejected" => Split::Rejected,
                other => {
                    return Err(CliError::usage(format!(
                        "unknown --split `{other}`: use verified or rejected"
                    ))
                    .into());
                }
            };
            let n = ops::export(&dir, f, split, &out).map_err(failure)?;
            if f == ExportFormat::Parquet {
                println!(
                    "exported {n} rows (verified/ and rejected/) with a dataset card to {}",
                    out.display()
                );
            } else {
                println!(
                    "exported {n} {} conversations to {}",
                    split.as_str(),
                    out.display()
                );
            }
            Ok(0)
        }
        CorpusAction::Select {
            input,
            out,
            no_flags,
            min_steps,
            max_steps,
            max_tokens,
            min_solve_rate,
            max_solve_rate,
            keep_duplicates,
            one_per_instance,
            per_repo_cap,
            seed,
            json,
        } => {
            if out.join("manifest.json").exists() {
                return Err(CliError::usage(format!(
                    "--out {} already holds a corpus: select into a new directory",
                    out.display()
                ))
                .into());
            }
            let rule = SelectRule {
                no_flags,
                min_steps,
                max_steps,
                max_tokens,
                min_solve_rate,
                max_solve_rate,
                dedup: !keep_duplicates,
                one_per_instance,
                per_repo_cap,
                seed,
            };
            let t0 = std::time::Instant::now();
            let rep = select(&input, &out, &rule).map_err(failure)?;
            let secs = t0.elapsed().as_secs_f64();
            if json {
                let mut v = serde_json::to_value(&rep)?;
                v["wall_s"] = serde_json::json!(secs);
                println!("{v}");
            } else {
                let steps: Vec<String> = rep
                    .steps
                    .iter()
                    .map(|(k, n)| format!("{k} → {n}"))
                    .collect();
                println!(
                    "selected {} of {} rows into {} ({}) in {secs:.2} s; the rule is in its manifest.json",
                    rep.output_rows,
                    rep.input_rows,
                    out.display(),
                    steps.join(", ")
                );
            }
            Ok(0)
        }
        CorpusAction::BenchIo { rows, dir } => {
            if dir.exists() {
                return Err(CliError::usage(format!("{} already exists", dir.display())).into());
            }
            let synth = ops::synthetic_rows(rows);
            let t0 = std::time::Instant::now();
            let mut w = crate::corpus::CorpusWriter::open(&dir).map_err(failure)?;
            for r in synth {
                w.insert(r).map_err(failure)?;
            }
            let insert_s = t0.elapsed().as_secs_f64();
            w.finish().map_err(failure)?;
            let write_s = t0.elapsed().as_secs_f64();
            let t1 = std::time::Instant::now();
            let (_, back) = crate::corpus::read_corpus(&dir).map_err(failure)?;
            let read_s = t1.elapsed().as_secs_f64();
            if back.len() != rows {
                return Err(
                    CliError::failure(format!("read {} rows, wrote {rows}", back.len())).into(),
                );
            }
            println!(
                "{}",
                serde_json::json!({
                    "rows": rows,
                    "write_s": write_s,
                    "insert_s": insert_s,
                    "encode_fsync_s": write_s - insert_s,
                    "read_s": read_s
                })
            );
            Ok(0)
        }
        CorpusAction::Merge { inputs, out } => {
            let refs: Vec<&std::path::Path> = inputs.iter().map(PathBuf::as_path).collect();
            let rep = ops::merge(&refs, &out).map_err(failure)?;
            println!(
                "merged {} rows from {} corpora into {}: {} added, {} duplicates dropped, {} rows in total",
                rep.read,
                inputs.len(),
                out.display(),
                rep.added,
                rep.duplicates,
                rep.total
            );
            Ok(0)
        }
    }
}
