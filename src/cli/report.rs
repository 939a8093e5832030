//! `airgate report RUN_DIR... --out FILE.html`, or `airgate report
//! CORPUS_DIR --out FILE.html` for a factory corpus.
use std::path::PathBuf;

use clap::Args;

use crate::error::{CliError, exit};
use crate::report::{ReportData, ReportError, write_report};

/// Arguments of `airgate report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run directories from `tiers run`, or one corpus directory from
    /// `factory run` (a directory with a corpus `manifest.json`).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// HTML output; the Markdown summary goes beside it.
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `airgate report`.
pub async fn run(args: ReportArgs) -> anyhow::Result<u8> {
    if args.out.extension().is_none_or(|e| e != "html") {
        return Err(CliError::usage(format!(
            "--out {} must name an .html file (the Markdown summary goes beside it)",
            args.out.display()
        ))
        .into());
    }
    if let [dir] = args.runs.as_slice()
        && crate::report::corpus::is_corpus(dir)
    {
        let dir = dir.clone();
        let out = args.out.clone();
        tokio::task::spawn_blocking(move || crate::report::corpus::write(&dir, &out))
            .await?
            .map_err(|e| match e {
                ReportError::Input(m) => CliError::usage(m),
                other => CliError::failure(other.to_string()),
            })?;
        println!("corpus report: {}", args.out.display());
        return Ok(exit::OK);
    }
    let data = ReportData::load(&args.runs).map_err(|e| match e {
        ReportError::Input(m) => CliError::usage(m),
        other => CliError::failure(other.to_string()),
    })?;
    let md = write_report(&data, &args.out).map_err(|e| CliError::failure(e.to_string()))?;
    println!(
        "{}",
        crate::tiers::scores::render_table(&data.scores).trim_end()
    );
    println!("report: {}", args.out.display());
    println!("summary: {}", md.display());
    Ok(exit::OK)
}
