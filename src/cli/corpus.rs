//! `airgate corpus stats|verify|export|merge`.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::corpus::CorpusError;
use crate::corpus::ops::{self, ExportFormat};
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
    /// Export for training: JSONL, one conversation per row.
    Export {
        /// Corpus directory.
        dir: PathBuf,
        /// `sft-openai` ({"messages", "tools"}: TRL, axolotl) or `sharegpt`.
        #[arg(long, default_value = "sft-openai")]
        format: String,
        /// Output file (JSONL).
        #[arg(long)]
        out: PathBuf,
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
        CorpusAction::Export { dir, format, out } => {
            let f = ExportFormat::parse(&format).ok_or_else(|| {
                CliError::usage(format!(
                    "unknown --format `{format}`: use sft-openai or sharegpt"
                ))
            })?;
            let n = ops::export(&dir, f, &out).map_err(failure)?;
            println!("exported {n} conversations to {}", out.display());
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
