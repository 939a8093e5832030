//! The Markdown summary written beside the HTML report: the score table
//! and the separating tasks, for commit messages, wikis and READMEs.

use std::fmt::Write as _;
use std::path::Path;

use super::{ReportData, TaskLine};
use crate::tiers::scores::score_rows;

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn task_rows(data: &ReportData, lines: &[&TaskLine], out: &mut String) {
    let _ = write!(out, "| task | tier | language |");
    for m in &data.models {
        let _ = write!(out, " {} |", md(m));
    }
    out.push_str("\n|---|---|---|");
    out.push_str(&"---:|".repeat(data.models.len()));
    out.push('\n');
    for l in lines {
        let _ = write!(
            out,
            "| {} | {} | {} |",
            md(&l.task),
            md(&l.tier),
            md(&l.language)
        );
        for c in &l.cells {
            match c {
                Some((p, n)) => {
                    let _ = write!(out, " {p}/{n} |");
                }
                None => out.push_str(" - |"),
            }
        }
        out.push('\n');
    }
}

/// Renders the summary; `html` is the report it sits beside.
pub fn render(data: &ReportData, html: &Path) -> String {
    let mut out = String::from("# airgate tiers report\n\n");
    let _ = writeln!(
        out,
        "{} task(s), {} episode(s). Runs: {}. Full report with charts and trajectories: `{}`.\n",
        data.tasks.len(),
        data.episodes.len(),
        data.runs
            .iter()
            .map(|r| format!("`{}`", r.display()))
            .collect::<Vec<_>>()
            .join(", "),
        html.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    out.push_str("## Scores\n\n|  |");
    for m in &data.models {
        let _ = write!(out, " {} |", md(m));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(data.models.len()));
    out.push('\n');
    for (label, cells) in score_rows(&data.scores) {
        let _ = write!(out, "| {} |", md(label.trim()));
        for c in cells {
            let _ = write!(out, " {} |", md(&c));
        }
        out.push('\n');
    }
    out.push_str("\n## Where the models separate\n\n");
    let sep = data.separating();
    if data.models.len() < 2 {
        out.push_str("Only one model in these runs.\n");
    } else if sep.is_empty() {
        out.push_str("The models pass and fail the same tasks.\n");
    } else {
        out.push_str("Cells: passed/episodes.\n\n");
        task_rows(data, &sep, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn summary_has_scores_and_separating_tasks() {
        let text = render(&sample(), Path::new("reports/x.html"));
        assert!(
            text.contains("| pass@1 overall | 100.0% (2/2) | 50.0% (1/2) |"),
            "{text}"
        );
        assert!(
            text.contains("| t2 | hard | go <&> | 1/1 | 0/1 |"),
            "{text}"
        );
        assert!(text.contains("`x.html`"));
    }
}
