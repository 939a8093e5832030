//! `airgate report CORPUS_DIR`: the corpus as one self-contained HTML page
//! in the tiers report's style (inline CSS and SVG, no scripts): rows per
//! repo, histograms of steps, tokens and wall time, the solve-rate
//! distribution, flags and rejection reasons, and a trajectory viewer for a
//! sample of rows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::ReportError;
use super::html::{STYLE, clip, escape};
use super::svg::grouped_bars;
use crate::corpus::ops::flag_code;
use crate::corpus::{CorpusManifest, CorpusRow, Split, read_split};

/// Rows shown in the trajectory viewer (per split).
pub const VIEWER_ROWS: usize = 12;

/// Whether `dir` is a corpus directory (it holds a corpus manifest).
pub fn is_corpus(dir: &Path) -> bool {
    CorpusManifest::exists(dir) && CorpusManifest::load(dir).is_ok()
}

/// Bins `values` into `n` equal-width bins from 0 to the largest value;
/// returns (labels, counts).
fn histogram(values: &[f64], n: usize, fmt: &dyn Fn(f64) -> String) -> (Vec<String>, Vec<f64>) {
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let width = if max <= 0.0 { 1.0 } else { max / n as f64 };
    let mut counts = vec![0.0; n];
    for v in values {
        let i = ((v / width) as usize).min(n - 1);
        counts[i] += 1.0;
    }
    let labels = (0..n)
        .map(|i| format!("{}–{}", fmt(width * i as f64), fmt(width * (i + 1) as f64)))
        .collect();
    (labels, counts)
}

fn int(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else {
        format!("{v:.0}")
    }
}

/// A histogram chart of one measure over both splits (shared bins).
fn hist_chart(
    id: &str,
    title: &str,
    verified: &[CorpusRow],
    rejected: &[CorpusRow],
    f: &dyn Fn(&CorpusRow) -> f64,
) -> String {
    let all: Vec<f64> = verified.iter().chain(rejected).map(f).collect();
    let (labels, _) = histogram(&all, 8, &int);
    let (_, v) = histogram_with(&all, verified.iter().map(f).collect(), 8);
    let (_, r) = histogram_with(&all, rejected.iter().map(f).collect(), 8);
    grouped_bars(
        id,
        title,
        &labels,
        &[("verified".into(), v), ("rejected".into(), r)],
        None,
        &|x| format!("{x:.0}"),
    )
}

/// Counts of `values` in the bins [`histogram`] makes for `all`.
fn histogram_with(all: &[f64], values: Vec<f64>, n: usize) -> ((), Vec<f64>) {
    let max = all.iter().copied().fold(0.0_f64, f64::max);
    let width = if max <= 0.0 { 1.0 } else { max / n as f64 };
    let mut counts = vec![0.0; n];
    for v in values {
        counts[((v / width) as usize).min(n - 1)] += 1.0;
    }
    ((), counts)
}

fn counts<'a>(keys: impl Iterator<Item = &'a str>) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k.to_string()).or_insert(0.0) += 1.0;
    }
    m
}

fn bar_chart(id: &str, title: &str, series: &str, m: &BTreeMap<String, f64>) -> String {
    let labels: Vec<String> = m.keys().cloned().collect();
    let values: Vec<f64> = m.values().copied().collect();
    grouped_bars(
        id,
        title,
        &labels,
        &[(series.to_string(), values)],
        None,
        &|x| format!("{x:.0}"),
    )
}

fn viewer(h: &mut String, rows: &[CorpusRow], split: Split) {
    // A deterministic sample: every k-th row in trajectory-id order.
    let mut sorted: Vec<&CorpusRow> = rows.iter().collect();
    sorted.sort_by(|a, b| a.trajectory_id.cmp(&b.trajectory_id));
    let step = (sorted.len() / VIEWER_ROWS).max(1);
    for r in sorted.iter().step_by(step).take(VIEWER_ROWS) {
        let badge = match split {
            Split::Verified => "<span class=\"badge pass\">verified</span>".to_string(),
            Split::Rejected => format!("<span class=\"badge fail\">{}</span>", escape(&r.reason)),
        };
        let _ = writeln!(
            h,
            "<details class=\"ep\"><summary>{badge} <code>{}</code> sample {} · {} · {} steps · {} tokens · {:.1} s{}</summary><div class=\"traj\">",
            escape(&r.instance_id),
            r.sample,
            escape(&r.model),
            r.steps,
            r.prompt_tokens + r.completion_tokens,
            r.wall_s,
            if r.flags.is_empty() {
                String::new()
            } else {
                format!(" · flags: {}", escape(&r.flags.join("; ")))
            }
        );
        let _ = writeln!(
            h,
            "<p class=\"meta\">trajectory <code>{}</code> · image <code>{}</code> · sandbox {} · verifier {} (targets {}/{}, baseline {}/{}, runs {})</p>",
            escape(&r.trajectory_id),
            escape(if r.image_digest.is_empty() {
                "–"
            } else {
                &r.image_digest
            }),
            escape(&r.sandbox),
            escape(&r.verifier_mode),
            r.verify_targets_passed,
            r.verify_targets_total,
            r.verify_baseline_kept,
            r.verify_baseline_total,
            r.verify_runs
        );
        let msgs: serde_json::Value = serde_json::from_str(&r.messages).unwrap_or_default();
        h.push_str("<ol class=\"events\">");
        for m in msgs.as_array().into_iter().flatten() {
            let role = m["role"].as_str().unwrap_or("?");
            let content = m["content"].as_str().unwrap_or("");
            let calls: Vec<String> = m["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    format!(
                        "{}({})",
                        c["function"]["name"].as_str().unwrap_or("?"),
                        c["function"]["arguments"].as_str().unwrap_or("")
                    )
                })
                .collect();
            let class = if role == "tool" { "ev-tool" } else { "" };
            let _ = write!(h, "<li class=\"{class}\"><b>{}</b>", escape(role));
            if !content.is_empty() {
                let _ = write!(h, "<pre>{}</pre>", escape(&clip(content, 1500)));
            }
            if !calls.is_empty() {
                let _ = write!(h, "<pre>→ {}</pre>", escape(&clip(&calls.join("\n"), 1500)));
            }
            h.push_str("</li>");
        }
        h.push_str("</ol>");
        let _ = writeln!(
            h,
            "<p><b>patch</b></p><pre>{}</pre></div></details>",
            escape(&clip(&r.patch, 4000))
        );
    }
}

/// Renders the corpus report of `dir`.
pub fn render(dir: &Path) -> Result<String, ReportError> {
    let input =
        |e: crate::corpus::CorpusError| ReportError::Input(format!("{}: {e}", dir.display()));
    let (manifest, verified) = read_split(dir, Split::Verified).map_err(input)?;
    let (_, rejected) = read_split(dir, Split::Rejected).map_err(input)?;
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.push_str("<title>airgate corpus report</title><style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body>\n<h1>airgate corpus report</h1>\n");
    let _ = writeln!(
        h,
        "<p class=\"meta\">Corpus <code>{}</code>: {} verified row(s), {} rejected row(s), {} instance(s) with a solve rate. airgate {}.</p>",
        escape(&dir.display().to_string()),
        verified.len(),
        rejected.len(),
        manifest.instances.len(),
        escape(crate::ENGINE_VERSION)
    );
    h.push_str("<h2 id=\"repos\">Rows per repo</h2>\n<table><thead><tr><th>repo</th><th>verified</th><th>rejected</th><th>instances</th></tr></thead><tbody>\n");
    let vr = counts(verified.iter().map(|r| r.repo.as_str()));
    let rr = counts(rejected.iter().map(|r| r.repo.as_str()));
    let mut repos: Vec<&String> = vr.keys().chain(rr.keys()).collect();
    repos.sort();
    repos.dedup();
    for repo in &repos {
        let inst: std::collections::BTreeSet<&str> = verified
            .iter()
            .chain(&rejected)
            .filter(|r| &&r.repo == repo)
            .map(|r| r.instance_id.as_str())
            .collect();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(repo),
            vr.get(*repo).copied().unwrap_or(0.0),
            rr.get(*repo).copied().unwrap_or(0.0),
            inst.len()
        );
    }
    h.push_str("</tbody></table>\n");

    h.push_str("<h2 id=\"charts\">Charts</h2>\n<div class=\"charts\">\n");
    let labels: Vec<String> = repos.iter().map(|s| s.to_string()).collect();
    let vals = |m: &BTreeMap<String, f64>| -> Vec<f64> {
        labels
            .iter()
            .map(|l| m.get(l).copied().unwrap_or(0.0))
            .collect()
    };
    h.push_str(&grouped_bars(
        "chart-repos",
        "Rows per repo",
        &labels,
        &[
            ("verified".into(), vals(&vr)),
            ("rejected".into(), vals(&rr)),
        ],
        None,
        &|x| format!("{x:.0}"),
    ));
    h.push_str(&hist_chart(
        "chart-steps",
        "Steps (tool calls)",
        &verified,
        &rejected,
        &|r| f64::from(r.steps),
    ));
    h.push_str(&hist_chart(
        "chart-tokens",
        "Tokens (prompt + completion)",
        &verified,
        &rejected,
        &|r| (r.prompt_tokens + r.completion_tokens) as f64,
    ));
    h.push_str(&hist_chart(
        "chart-wall",
        "Wall time (s)",
        &verified,
        &rejected,
        &|r| r.wall_s,
    ));
    // Solve rates in fifths.
    let mut bins = vec![0.0; 5];
    for d in manifest.instances.values() {
        bins[((d.solve_rate * 5.0) as usize).min(4)] += 1.0;
    }
    let labels5: Vec<String> = ["0–0.2", "0.2–0.4", "0.4–0.6", "0.6–0.8", "0.8–1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    h.push_str(&grouped_bars(
        "chart-solve-rate",
        "Instances by solve rate",
        &labels5,
        &[("instances".into(), bins)],
        None,
        &|x| format!("{x:.0}"),
    ));
    let flags = counts(
        verified
            .iter()
            .chain(&rejected)
            .flat_map(|r| r.flags.iter().map(|f| flag_code(f))),
    );
    h.push_str(&bar_chart(
        "chart-flags",
        "Flags (both splits)",
        "rows",
        &flags,
    ));
    let reasons = counts(rejected.iter().map(|r| r.reason.as_str()));
    h.push_str(&bar_chart(
        "chart-reasons",
        "Rejection reasons",
        "rows",
        &reasons,
    ));
    h.push_str("</div>\n");

    h.push_str("<h2 id=\"flags\">Flags and rejection reasons</h2>\n<table><thead><tr><th>flag / reason</th><th>rows</th></tr></thead><tbody>\n");
    for (k, v) in flags
        .iter()
        .map(|(k, v)| (format!("flag {k}"), v))
        .chain(reasons.iter().map(|(k, v)| (format!("rejected: {k}"), v)))
    {
        let _ = writeln!(h, "<tr><td>{}</td><td>{v}</td></tr>", escape(&k));
    }
    if flags.is_empty() && reasons.is_empty() {
        h.push_str("<tr><td>none</td><td>0</td></tr>\n");
    }
    h.push_str("</tbody></table>\n");

    h.push_str("<h2 id=\"trajectories\">Trajectories</h2>\n");
    let _ = writeln!(
        h,
        "<p class=\"meta\">A sample of up to {VIEWER_ROWS} rows per split (every k-th in trajectory-id order). Click to expand.</p>"
    );
    h.push_str("<h3>verified</h3>\n");
    viewer(&mut h, &verified, Split::Verified);
    h.push_str("<h3>rejected</h3>\n");
    if rejected.is_empty() {
        h.push_str("<p class=\"meta\">No rejected split (run the factory with <code>--keep-rejected</code>).</p>\n");
    }
    viewer(&mut h, &rejected, Split::Rejected);
    h.push_str("</body></html>\n");
    Ok(h)
}

/// Writes the corpus report to `out` (atomically).
pub fn write(dir: &Path, out: &Path) -> Result<(), ReportError> {
    let html = render(dir)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| ReportError::Io {
            context: format!("creating {}", parent.display()),
            source: e,
        })?;
    }
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, html)
        .and_then(|_| std::fs::rename(&tmp, out))
        .map_err(|e| ReportError::Io {
            context: format!("writing {}", out.display()),
            source: e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::CorpusWriter;
    use crate::corpus::tests::sample_row;

    #[test]
    fn corpus_report_has_every_chart_and_escapes_rows() {
        let d = tempfile::tempdir().unwrap();
        let mut w = CorpusWriter::open(d.path()).unwrap();
        let mut r = sample_row("<script>x</script>", "p\n", 0);
        r.flags = vec!["exits_process: calc/__init__.py".into()];
        w.insert(r.seal().unwrap()).unwrap();
        w.set_difficulty("a", crate::corpus::store::Difficulty::new(4, 1));
        w.finish().unwrap();
        assert!(is_corpus(d.path()));
        let html = render(d.path()).unwrap();
        for id in [
            "chart-repos",
            "chart-steps",
            "chart-tokens",
            "chart-wall",
            "chart-solve-rate",
            "chart-flags",
            "chart-reasons",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;x"));
        assert!(html.contains("exits_process"));
        // self-contained: nothing is loaded from anywhere
        assert!(!html.contains("src=") && !html.contains("<link"));
    }
}
