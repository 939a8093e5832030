//! The self-contained HTML report. Everything that came from a model, a
//! tool or a test run is escaped: a trajectory is untrusted text.

use std::fmt::Write as _;

use super::svg::{colour, grouped_bars};
use super::{Cell, EpisodeRecord, ReportData, TaskLine};
use crate::engine::{Event, Trajectory};
use crate::gate::GateRun;
use crate::tiers::scores::score_rows;

/// Characters of one tool result or test output shown in the viewer.
pub const VIEW_LIMIT: usize = 3000;

/// HTML-escapes text for element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Keeps the head and tail of long text, saying how much was cut.
pub fn clip(s: &str, limit: usize) -> String {
    let n = s.chars().count();
    if n <= limit {
        return s.to_string();
    }
    let half = limit / 2;
    let head: String = s.chars().take(half).collect();
    let tail: String = s.chars().skip(n - half).collect();
    format!(
        "{head}\n[... {} characters cut by the report ...]\n{tail}",
        n - 2 * half
    )
}

pub(crate) const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 10px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;font-size:13px}
table{border-collapse:collapse;font-size:14px;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f4f4f4}
td.pass{background:#e3f4e1}td.fail{background:#fbe3e3}td.part{background:#fdf3d8}td.na{color:#999}
.charts{display:flex;flex-wrap:wrap;gap:18px}
svg.chart{background:#fafafa;border:1px solid #e4e4e4}
svg .ctitle{font-size:13px;font-weight:600;fill:#222}svg .legend,svg .glabel{font-size:11px;fill:#333}
svg .tick,svg .val{font-size:10px;fill:#555}svg .grid{stroke:#e2e2e2}svg .axis{stroke:#888}
details{margin:4px 0}summary{cursor:pointer}
details.ep>summary{font-size:14px;padding:3px 0}
.traj{margin:4px 0 10px 18px;border-left:3px solid #eee;padding-left:10px}
ol.events{padding-left:22px;font-size:13px}ol.events li{margin:4px 0}
.ev-tool b{color:#1f4e79}.ev-err b{color:#b00}.ev-nudge{color:#8a5a00}.ev-format,.ev-error{color:#b00}
pre{background:#f6f8fa;border:1px solid #e4e4e4;padding:6px;font-size:12px;white-space:pre-wrap;word-break:break-all;max-height:360px;overflow:auto;margin:3px 0}
code{background:#f3f3f3;padding:0 3px;font-size:12px}
.badge{display:inline-block;padding:0 6px;border-radius:3px;font-size:12px;color:#fff}
.badge.pass{background:#2e7d32}.badge.fail{background:#c62828}.badge.other{background:#777}
.gate.pass{color:#2e7d32}.gate.fail{color:#c62828}
"#;

/// Renders the whole report.
pub fn render(data: &ReportData) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.push_str("<title>airgate tiers report</title><style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body>\n");
    h.push_str("<h1>airgate tiers report</h1>\n");
    let runs: Vec<String> = data
        .runs
        .iter()
        .map(|r| format!("<code>{}</code>", escape(&r.display().to_string())))
        .collect();
    let _ = writeln!(
        h,
        "<p class=\"meta\">{} task(s), {} episode(s), model(s): {}. Runs: {}. airgate {}.</p>",
        data.tasks.len(),
        data.episodes.len(),
        data.models
            .iter()
            .map(|m| format!("<code>{}</code>", escape(m)))
            .collect::<Vec<_>>()
            .join(", "),
        runs.join(", "),
        escape(crate::ENGINE_VERSION)
    );

    h.push_str("<h2 id=\"scores\">Scores</h2>\n");
    h.push_str(&score_table(data));

    h.push_str("<h2 id=\"charts\">Charts</h2>\n<div class=\"charts\">\n");
    h.push_str(&charts(data));
    h.push_str("</div>\n");

    h.push_str("<h2 id=\"separate\">Where the models separate</h2>\n");
    let sep = data.separating();
    if data.models.len() < 2 {
        h.push_str("<p>Only one model in these runs: nothing to separate.</p>\n");
    } else if sep.is_empty() {
        h.push_str("<p>The models pass and fail the same tasks.</p>\n");
    } else {
        let _ = writeln!(
            h,
            "<p>{} task(s) where the models' pass rates differ (cells: passed/episodes).</p>",
            sep.len()
        );
        h.push_str(&task_table(data, &sep));
    }
    let all: Vec<&TaskLine> = data.tasks.iter().collect();
    h.push_str("<details><summary>Every task</summary>\n");
    h.push_str(&task_table(data, &all));
    h.push_str("</details>\n");

    h.push_str("<h2 id=\"trajectories\">Trajectories</h2>\n");
    h.push_str("<p class=\"meta\">Each episode's attempts, model calls, tool calls and results, nudges, and gate runs. Click to expand.</p>\n");
    for line in &data.tasks {
        let _ = writeln!(
            h,
            "<h3>{} <span class=\"meta\">{} · {}</span></h3>",
            escape(&line.task),
            escape(&line.tier),
            escape(&line.language)
        );
        for m in &data.models {
            for ep in data
                .episodes
                .iter()
                .filter(|e| e.row.task == line.task && e.row.model == *m)
            {
                h.push_str(&episode(ep));
            }
        }
    }
    h.push_str("</body></html>\n");
    h
}

fn score_table(data: &ReportData) -> String {
    let mut h = String::from("<table class=\"scores\"><thead><tr><th></th>");
    for (i, m) in data.models.iter().enumerate() {
        let _ = write!(
            h,
            "<th><span style=\"color:{}\">&#9632;</span> {}</th>",
            colour(i),
            escape(m)
        );
    }
    h.push_str("</tr></thead><tbody>\n");
    for (label, cells) in score_rows(&data.scores) {
        let _ = write!(h, "<tr><td>{}</td>", escape(label.trim()));
        for c in cells {
            let _ = write!(h, "<td>{}</td>", escape(&c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n");
    h
}

fn charts(data: &ReportData) -> String {
    let mut h = String::new();
    let Some(first) = data.scores.first() else {
        return h;
    };
    let rate = |v: f64| format!("{:.0}%", v * 100.0);
    let mut groups: Vec<String> = vec!["overall".into()];
    groups.extend(first.by_tier.iter().map(|(t, _)| t.clone()));
    let series: Vec<(String, Vec<f64>)> = data
        .scores
        .iter()
        .map(|s| {
            let mut v = vec![s.overall.pass1];
            v.extend(s.by_tier.iter().map(|(_, sc)| sc.pass1));
            (s.model.clone(), v)
        })
        .collect();
    h.push_str(&grouped_bars(
        "chart-pass-tier",
        "pass@1 by tier",
        &groups,
        &series,
        Some(1.0),
        &rate,
    ));
    let groups: Vec<String> = first.by_language.iter().map(|(l, _)| l.clone()).collect();
    let series: Vec<(String, Vec<f64>)> = data
        .scores
        .iter()
        .map(|s| {
            (
                s.model.clone(),
                s.by_language.iter().map(|(_, sc)| sc.pass1).collect(),
            )
        })
        .collect();
    h.push_str(&grouped_bars(
        "chart-pass-language",
        "pass@1 by language",
        &groups,
        &series,
        Some(1.0),
        &rate,
    ));
    let per_model = |f: &dyn Fn(&crate::tiers::scores::Score) -> f64| -> Vec<(String, Vec<f64>)> {
        data.scores
            .iter()
            .map(|s| (s.model.clone(), vec![f(&s.overall)]))
            .collect()
    };
    h.push_str(&grouped_bars(
        "chart-steps",
        "mean steps per episode",
        &["steps".into()],
        &per_model(&|s| s.mean_steps),
        None,
        &|v| format!("{v:.1}"),
    ));
    h.push_str(&grouped_bars(
        "chart-tokens",
        "mean tokens per episode",
        &["tokens".into()],
        &per_model(&|s| s.mean_tokens),
        None,
        &|v| format!("{v:.0}"),
    ));
    h
}

fn cell_html(c: &Option<Cell>) -> String {
    match c {
        None => "<td class=\"na\">-</td>".into(),
        Some((p, n)) => {
            let class = if *p == 0 {
                "fail"
            } else if p == n {
                "pass"
            } else {
                "part"
            };
            format!("<td class=\"{class}\">{p}/{n}</td>")
        }
    }
}

fn task_table(data: &ReportData, lines: &[&TaskLine]) -> String {
    let mut h = String::from(
        "<table class=\"tasks\"><thead><tr><th>task</th><th>tier</th><th>language</th>",
    );
    for m in &data.models {
        let _ = write!(h, "<th>{}</th>", escape(m));
    }
    h.push_str("</tr></thead><tbody>\n");
    for l in lines {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            escape(&l.task),
            escape(&l.tier),
            escape(&l.language)
        );
        for c in &l.cells {
            h.push_str(&cell_html(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n");
    h
}

fn badge(outcome: &str) -> String {
    let class = match outcome {
        "verified" => "pass",
        "gate_held" | "suspicious" => "fail",
        _ => "other",
    };
    format!("<span class=\"badge {class}\">{}</span>", escape(outcome))
}

fn episode(ep: &EpisodeRecord) -> String {
    let r = &ep.row;
    let mut h = format!(
        "<details class=\"ep\"><summary>{} <b>{}</b> · sample {} — {} attempt(s), {} step(s), {} token(s), {:.1} s, {} repeated call(s)</summary>\n<div class=\"traj\">",
        badge(&r.outcome),
        escape(&r.model),
        r.sample,
        r.attempts,
        r.steps,
        r.tokens(),
        r.wall_s,
        r.repeated_calls
    );
    match Trajectory::load(&ep.trajectory_path()) {
        Err(e) => {
            let _ = write!(
                h,
                "<p class=\"ev-error\">trajectory {} unavailable: {}</p>",
                escape(&ep.trajectory_path().display().to_string()),
                escape(&e.to_string())
            );
        }
        Ok(t) => h.push_str(&trajectory(&t)),
    }
    h.push_str("</div></details>\n");
    h
}

fn gate_html(g: &GateRun, label: &str) -> String {
    let verdict = if g.passed { "pass" } else { "fail" };
    let mut h = format!(
        "<div class=\"gate {verdict}\">{} run: <b>{}</b> (exit {}{}, {} ms)",
        escape(label),
        if g.passed { "PASSED" } else { "FAILED" },
        g.exit_code.map_or("none".to_string(), |c| c.to_string()),
        if g.timed_out { ", timed out" } else { "" },
        g.duration_ms
    );
    if !g.restored.is_empty() {
        let _ = write!(
            h,
            "; protected files restored: <code>{}</code>",
            escape(&g.restored.join(", "))
        );
    }
    let _ = write!(
        h,
        "</div><details><summary>{} output</summary><pre>{}</pre></details>",
        escape(label),
        escape(&clip(&g.output, VIEW_LIMIT))
    );
    h
}

fn trajectory(t: &Trajectory) -> String {
    let mut h = format!(
        "<p>test command <code>{}</code> · sandbox {} · started {}</p>",
        escape(&t.test_cmd),
        escape(&t.sandbox),
        escape(&t.started_at.to_rfc3339())
    );
    if let Some(reason) = &t.aborted {
        let _ = write!(h, "<p class=\"ev-error\">cut short: {}</p>", escape(reason));
    }
    if let Some(b) = &t.baseline {
        h.push_str(&gate_html(b, "baseline test"));
    }
    for a in &t.attempts {
        let gate = match &a.gate {
            Some(g) if g.passed => "gate passed",
            Some(_) => "gate held",
            None => "no gate run",
        };
        let _ = write!(
            h,
            "<details open><summary>attempt {} by <code>{}</code> — {} step(s), {}, {}, {} repeated call(s), {} ms</summary><ol class=\"events\">",
            a.index,
            escape(&a.model),
            a.steps,
            if a.submitted {
                "submitted"
            } else {
                "did not submit"
            },
            gate,
            a.repeated_calls,
            a.wall_ms
        );
        for ev in &a.events {
            h.push_str(&event(ev));
        }
        h.push_str("</ol>");
        if !a.dropped.is_empty() {
            let _ = write!(
                h,
                "<div class=\"gate\">dropped by the patch policy before the gate: <code>{}</code></div>",
                escape(&a.dropped.join("; "))
            );
        }
        if !a.flags.is_empty() {
            let _ = write!(
                h,
                "<div class=\"gate\">flags: <code>{}</code></div>",
                escape(&a.flags.join("; "))
            );
        }
        if let Some(g) = &a.gate {
            h.push_str(&gate_html(g, "gate"));
        }
        if !a.patch.is_empty() {
            let _ = write!(
                h,
                "<details><summary>patch at gate time</summary><pre>{}</pre></details>",
                escape(&clip(&a.patch, VIEW_LIMIT * 2))
            );
        }
        h.push_str("</details>");
    }
    h
}

fn event(ev: &Event) -> String {
    match ev {
        Event::ModelCall {
            step,
            raw,
            latency_ms,
            usage,
            notes,
        } => {
            let mut h = format!(
                "<li class=\"ev-model\">step {step} · model call, {latency_ms} ms, {} prompt + {} completion tokens",
                usage.prompt_tokens, usage.completion_tokens
            );
            for n in notes {
                let _ = write!(h, " · <i>{}</i>", escape(n));
            }
            let _ = write!(
                h,
                "<details><summary>raw reply</summary><pre>{}</pre></details></li>",
                escape(&clip(raw, VIEW_LIMIT))
            );
            h
        }
        Event::ToolCall {
            step,
            call,
            result,
            is_error,
            duration_ms,
        } => format!(
            "<li class=\"{}\">step {step} · <b>{}</b> <code>{}</code> ({duration_ms} ms{})<pre>{}</pre></li>",
            if *is_error {
                "ev-tool ev-err"
            } else {
                "ev-tool"
            },
            escape(&call.name),
            escape(&clip(&call.arguments.to_string(), VIEW_LIMIT)),
            if *is_error { ", error" } else { "" },
            escape(&clip(result, VIEW_LIMIT))
        ),
        Event::Nudge { step, kind, text } => format!(
            "<li class=\"ev-nudge\">step {step} · nudge ({}): {}</li>",
            escape(
                &serde_json::to_string(kind)
                    .unwrap_or_default()
                    .replace('"', "")
            ),
            escape(text)
        ),
        Event::FormatError { step, error } => format!(
            "<li class=\"ev-format\">step {step} · format error: {}</li>",
            escape(error)
        ),
        Event::ModelError { step, error } => format!(
            "<li class=\"ev-error\">step {step} · model error: {}</li>",
            escape(error)
        ),
        Event::Note { step, text } => format!(
            "<li class=\"ev-note\">step {step} · note: {}</li>",
            escape(text)
        ),
        Event::Review {
            step,
            decision,
            instruction,
        } => format!(
            "<li class=\"ev-note\">step {step} · the user's review: {}{}</li>",
            escape(decision),
            instruction
                .as_deref()
                .map(|i| format!(" ({})", escape(i)))
                .unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn escapes_and_is_self_contained() {
        let html = render(&sample());
        assert!(html.contains("go &lt;&amp;&gt;"));
        assert!(!html.contains("go <&>"));
        for banned in [
            "<script",
            "<link",
            "src=\"http",
            "href=\"http",
            "@import",
            "url(",
        ] {
            assert!(!html.contains(banned), "{banned}");
        }
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 4);
        assert!(html.contains("id=\"chart-pass-tier\""));
        // Missing trajectories are reported, not fatal.
        assert!(html.contains("unavailable"));
    }

    #[test]
    fn clip_keeps_head_and_tail() {
        let s = "a".repeat(50) + &"b".repeat(50);
        let c = clip(&s, 20);
        assert!(c.starts_with("aaaaaaaaaa\n[... 80 characters"));
        assert!(c.ends_with("bbbbbbbbbb"));
        assert_eq!(clip("short", 20), "short");
    }
}
