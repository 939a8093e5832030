//! The Hugging Face dataset folder `corpus export --format parquet` writes:
//! `verified/part-*.parquet`, `rejected/part-*.parquet` and a `README.md`
//! dataset card whose YAML `configs` name both splits, so that
//! `datasets.load_dataset(folder)` loads the verified rows and
//! `load_dataset(folder, "rejected")` the rejected ones.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use super::row::Split;
use super::store::{CorpusManifest, read_split, split_dir, write_atomic};
use super::{CorpusError, CorpusRow};

/// Exports both splits of the corpus at `dir` into the folder `out` with a
/// dataset card; returns the rows exported. The segments are copied as
/// they are (their sha256 still matches the manifest).
pub fn export_folder(dir: &Path, out: &Path) -> Result<u64, CorpusError> {
    let (manifest, verified) = read_split(dir, Split::Verified)?;
    let (rmanifest, rejected) = read_split(dir, Split::Rejected)?;
    let mut total = 0;
    for (split, m) in [(Split::Verified, &manifest), (Split::Rejected, &rmanifest)] {
        let dst = out.join(split.as_str());
        if dst.exists() {
            std::fs::remove_dir_all(&dst)
                .map_err(|e| CorpusError::io(format!("clearing {}", dst.display()), e))?;
        }
        std::fs::create_dir_all(&dst)
            .map_err(|e| CorpusError::io(format!("creating {}", dst.display()), e))?;
        let src = split_dir(dir, split);
        for seg in &m.segments {
            std::fs::copy(src.join(&seg.file), dst.join(&seg.file))
                .map_err(|e| CorpusError::io(format!("copying {}", seg.file), e))?;
            total += seg.rows;
        }
    }
    let card = dataset_card(&manifest, &verified, &rmanifest, &rejected);
    write_atomic(out, "README.md", card.as_bytes())?;
    Ok(total)
}

/// The Hugging Face size category of `n` rows.
pub fn size_category(n: usize) -> &'static str {
    match n {
        0..1_000 => "n<1K",
        1_000..10_000 => "1K<n<10K",
        10_000..100_000 => "10K<n<100K",
        100_000..1_000_000 => "100K<n<1M",
        _ => "1M<n<10M",
    }
}

/// A Hub license id for an SPDX id (`MIT` → `mit`); `other` for
/// `LicenseRef-...` and expressions the Hub has no id for.
pub fn hub_license(spdx: &str) -> String {
    let l = spdx.trim().to_lowercase();
    const KNOWN: &[&str] = &[
        "mit",
        "apache-2.0",
        "bsd-2-clause",
        "bsd-3-clause",
        "isc",
        "mpl-2.0",
        "lgpl-2.1",
        "lgpl-3.0",
        "gpl-2.0",
        "gpl-3.0",
        "agpl-3.0",
        "unlicense",
        "cc0-1.0",
        "bsl-1.0",
        "psf-2.0",
        "zlib",
    ];
    if KNOWN.contains(&l.as_str()) {
        l
    } else {
        "other".into()
    }
}

fn counts<'a>(rows: impl Iterator<Item = &'a str>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for k in rows {
        *m.entry(k.to_string()).or_default() += 1;
    }
    m
}

fn table(out: &mut String, head: &str, m: &BTreeMap<String, u64>) {
    let _ = writeln!(out, "| {head} | rows |\n|---|---:|");
    if m.is_empty() {
        let _ = writeln!(out, "| – | 0 |");
    }
    for (k, v) in m {
        let _ = writeln!(out, "| `{}` | {v} |", k.replace('|', "\\|"));
    }
    out.push('\n');
}

fn distinct<'a>(rows: impl Iterator<Item = &'a str>) -> Vec<String> {
    rows.filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The dataset card: YAML header (licenses, task categories, size
/// category, one config per split) and the counts, filtering rules,
/// provenance summary and public-only statement.
pub fn dataset_card(
    manifest: &CorpusManifest,
    verified: &[CorpusRow],
    rmanifest: &CorpusManifest,
    rejected: &[CorpusRow],
) -> String {
    let all = || verified.iter().chain(rejected);
    let licenses = distinct(all().map(|r| r.license.as_str()));
    let mut hub: Vec<String> = licenses.iter().map(|l| hub_license(l)).collect();
    hub.sort();
    hub.dedup();
    if hub.is_empty() {
        hub.push("other".into());
    }
    let mut y = String::from("---\nlicense:\n");
    for l in &hub {
        let _ = writeln!(y, "- {l}");
    }
    y.push_str("task_categories:\n- text-generation\ntags:\n- code\n- agents\n- swe-bench\n- trajectories\n- tool-use\n");
    let _ = writeln!(
        y,
        "size_categories:\n- {}",
        size_category(verified.len() + rejected.len())
    );
    y.push_str(
        "configs:\n- config_name: verified\n  default: true\n  data_files:\n  - split: train\n    path: \"verified/*.parquet\"\n- config_name: rejected\n  data_files:\n  - split: train\n    path: \"rejected/*.parquet\"\n---\n\n",
    );
    let mut b = y;
    b.push_str("# airgate teacher trajectories\n\n");
    let _ = writeln!(
        b,
        "Agentic software-engineering trajectories produced by `airgate factory run` {} (commit {}). \
Each row is one episode: OpenAI-format `messages` with tool calls and results, the `tools` schemas offered, \
the final `patch`, and per-row provenance.\n",
        crate::ENGINE_VERSION,
        super::ENGINE_COMMIT
    );
    b.push_str("| config | rows | what |\n|---|---:|---|\n");
    let _ = writeln!(
        b,
        "| `verified` | {} | patch resolved the instance in a fresh environment, graded strictly, every verification run passing |",
        verified.len()
    );
    let _ = writeln!(
        b,
        "| `rejected` | {} | unresolved, errored and flagged trajectories with their `reason` (for error masking and reward models); never mixed with `verified` |\n",
        rejected.len()
    );
    b.push_str("```python\nfrom datasets import load_dataset\nverified = load_dataset(\"path/to/this/folder\")            # config `verified`\nrejected = load_dataset(\"path/to/this/folder\", \"rejected\")\n```\n\n");
    b.push_str("## Rows per repo\n\n");
    table(
        &mut b,
        "repo (verified)",
        &counts(verified.iter().map(|r| r.repo.as_str())),
    );
    table(
        &mut b,
        "repo (rejected)",
        &counts(rejected.iter().map(|r| r.repo.as_str())),
    );
    b.push_str("## Rows per model\n\n");
    table(
        &mut b,
        "model (verified)",
        &counts(verified.iter().map(|r| r.model.as_str())),
    );
    table(
        &mut b,
        "model (rejected)",
        &counts(rejected.iter().map(|r| r.model.as_str())),
    );
    b.push_str("## Rejection reasons\n\n");
    table(
        &mut b,
        "reason",
        &counts(rejected.iter().map(|r| r.reason.as_str())),
    );
    b.push_str("## Filtering rules\n\n");
    b.push_str("- Only instances from datasets and repos on the public-sources allowlist were run (see below).\n");
    b.push_str("- A row enters `verified` only when its exact `patch` resolved the instance in a fresh environment (official FAIL_TO_PASS/PASS_TO_PASS), graded strictly (`verifier_mode`), every one of `verify_runs` runs passing; instances whose empty patch resolves are never used.\n");
    b.push_str("- Patches that change test files or runner configuration, and trajectories a cheat detector flagged, are rejected (`flagged` rows are kept in `verified` only under `--accept-flagged`, and then carry their `flags`).\n");
    b.push_str(
        "- Duplicates are dropped per instance on the normalised patch (`patch_norm_sha256`).\n",
    );
    let flagged = verified.iter().filter(|r| !r.flags.is_empty()).count();
    let _ = writeln!(b, "- Verified rows carrying flags: {flagged}.");
    match &manifest.selection {
        Some(rule) => {
            let _ = writeln!(
                b,
                "- This corpus is a selection (`airgate corpus select`); its rule:\n\n```json\n{}\n```",
                serde_json::to_string_pretty(rule).unwrap_or_default()
            );
        }
        None => b.push_str("- No selection was applied after the factory run.\n"),
    }
    b.push('\n');
    b.push_str("## Provenance\n\n");
    let list = |v: Vec<String>| -> String {
        if v.is_empty() {
            "–".into()
        } else {
            v.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let datasets = distinct(all().map(|r| r.dataset.as_str()));
    let ds_sha: Vec<String> = all()
        .map(|r| format!("{} sha256:{}", r.dataset, r.dataset_sha256))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let _ = writeln!(b, "- Datasets: {}", list(datasets));
    let _ = writeln!(b, "- Dataset files: {}", list(ds_sha));
    let _ = writeln!(b, "- Licenses (SPDX): {}", list(licenses));
    let versions: Vec<String> = all()
        .map(|r| format!("{} ({})", r.engine_version, r.engine_commit))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let _ = writeln!(b, "- airgate builds: {}", list(versions));
    let _ = writeln!(
        b,
        "- Teachers: {}",
        list(distinct(all().map(|r| r.teacher_spec.as_str())))
    );
    let _ = writeln!(
        b,
        "- Model ids reported by the servers: {}",
        list(distinct(all().map(|r| r.model_id.as_str())))
    );
    let _ = writeln!(
        b,
        "- Sampling: {}",
        list(distinct(all().map(|r| r.sampling.as_str())))
    );
    let _ = writeln!(
        b,
        "- Sandboxes: {}",
        list(distinct(all().map(|r| r.sandbox.as_str())))
    );
    let images = distinct(all().map(|r| r.image_digest.as_str()));
    let _ = writeln!(
        b,
        "- Instance images: {} distinct digests (`image_digest`; empty for sandboxes without an image)",
        images.len()
    );
    let _ = writeln!(
        b,
        "- Verifier modes: {}",
        list(distinct(all().map(|r| r.verifier_mode.as_str())))
    );
    let _ = writeln!(
        b,
        "- System prompts: {} distinct (`system_prompt_sha256`); tool lists: {} distinct (`tools_sha256`)",
        distinct(all().map(|r| r.system_prompt_sha256.as_str())).len(),
        distinct(all().map(|r| r.tools_sha256.as_str())).len()
    );
    let _ = writeln!(
        b,
        "- Solve rates measured for {} instances (`manifest.json` → `instances`).\n",
        manifest.instances.len()
    );
    b.push_str("Every row carries `provenance_sha256`, a hash over its provenance columns; `airgate corpus verify` recomputes it and every other hash.\n\n");
    b.push_str("## Public data only\n\n");
    let allow = if manifest.allowlist_sha256.is_empty() {
        &rmanifest.allowlist_sha256
    } else {
        &manifest.allowlist_sha256
    };
    let _ = writeln!(
        b,
        "Every row comes from a public dataset and a public repository named in the airgate public-sources allowlist \
(sha256 `{}`); `provenance` is `public` on every row and airgate refuses any other. No customer or private code \
was used to make this dataset.",
        if allow.is_empty() {
            "not recorded"
        } else {
            allow.as_str()
        }
    );
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_header_lists_both_configs_and_categories() {
        let row = crate::corpus::tests::sample_row("a", "p\n", 0);
        let m = CorpusManifest {
            allowlist_sha256: "f".repeat(64),
            ..CorpusManifest::default()
        };
        let card = dataset_card(&m, &[row], &CorpusManifest::for_split(Split::Rejected), &[]);
        let header = card.split("---").nth(1).unwrap();
        assert!(header.contains("license:\n- mit\n"), "{header}");
        assert!(header.contains("config_name: verified"));
        assert!(header.contains("path: \"rejected/*.parquet\""));
        assert!(header.contains("- n<1K"));
        assert!(card.contains(&"f".repeat(64)));
        assert_eq!(hub_license("LicenseRef-x"), "other");
        assert_eq!(size_category(12_000), "10K<n<100K");
    }
}
