//! Scores over result rows: pass@1, pass@k (the unbiased estimator of Chen
//! et al. 2021), mean steps, tokens and wall time, by tier and by language.

use std::collections::BTreeMap;

use serde::Serialize;

use super::results::ResultRow;
use super::suite::TIERS;

/// The unbiased pass@k estimate for one task with `n` samples, `c` passing:
/// `1 - C(n-c, k) / C(n, k)`, computed as a stable product.
pub fn pass_at_k(n: u64, c: u64, k: u64) -> f64 {
    if k == 0 || n == 0 || k > n {
        return 0.0;
    }
    if n - c < k {
        return 1.0;
    }
    // C(n-c,k)/C(n,k) = prod_{i=n-c+1}^{n} (1 - k/i)
    let mut ratio = 1.0;
    for i in (n - c + 1)..=n {
        ratio *= 1.0 - k as f64 / i as f64;
    }
    1.0 - ratio
}

/// Aggregates of one group of episodes (a model, or a model within a tier or language).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Score {
    /// Episodes counted.
    pub episodes: usize,
    /// Distinct tasks.
    pub tasks: usize,
    /// Tasks with at least one passing episode.
    pub solved: usize,
    /// Mean over tasks of c/n.
    pub pass1: f64,
    /// `(k, pass@k)` when some task has k > 1 samples.
    pub pass_k: Option<(u64, f64)>,
    /// Mean tool calls per episode.
    pub mean_steps: f64,
    /// Mean prompt + completion tokens per episode.
    pub mean_tokens: f64,
    /// Mean wall seconds per episode.
    pub mean_wall_s: f64,
    /// Total calls that repeated an earlier identical call.
    pub repeated_calls: u64,
}

impl Score {
    /// Scores a group of rows.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a ResultRow>) -> Self {
        let rows: Vec<&ResultRow> = rows.into_iter().collect();
        if rows.is_empty() {
            return Self::default();
        }
        let mut per_task: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for r in &rows {
            let e = per_task.entry(r.task.as_str()).or_default();
            e.0 += 1;
            e.1 += u64::from(r.passed);
        }
        let tasks = per_task.len();
        let pass1 = per_task
            .values()
            .map(|(n, c)| *c as f64 / *n as f64)
            .sum::<f64>()
            / tasks as f64;
        let k = per_task.values().map(|(n, _)| *n).min().unwrap_or(1);
        let pass_k = (k > 1).then(|| {
            let v = per_task
                .values()
                .map(|(n, c)| pass_at_k(*n, *c, k))
                .sum::<f64>()
                / tasks as f64;
            (k, v)
        });
        let n = rows.len() as f64;
        Self {
            episodes: rows.len(),
            tasks,
            solved: per_task.values().filter(|(_, c)| *c > 0).count(),
            pass1,
            pass_k,
            mean_steps: rows.iter().map(|r| f64::from(r.steps)).sum::<f64>() / n,
            mean_tokens: rows.iter().map(|r| r.tokens() as f64).sum::<f64>() / n,
            mean_wall_s: rows.iter().map(|r| r.wall_s).sum::<f64>() / n,
            repeated_calls: rows.iter().map(|r| u64::from(r.repeated_calls)).sum(),
        }
    }
}

/// One model's scores: overall, by tier, by language.
#[derive(Debug, Clone, Serialize)]
pub struct ModelScores {
    /// The model spec.
    pub model: String,
    /// Over every task.
    pub overall: Score,
    /// By tier, in easy/medium/hard order (absent tiers omitted).
    pub by_tier: Vec<(String, Score)>,
    /// By language, sorted.
    pub by_language: Vec<(String, Score)>,
}

/// Scores every model in `rows`, in order of first appearance.
pub fn score_models(rows: &[ResultRow]) -> Vec<ModelScores> {
    let mut models: Vec<&str> = Vec::new();
    for r in rows {
        if !models.contains(&r.model.as_str()) {
            models.push(&r.model);
        }
    }
    let mut languages: Vec<&str> = rows.iter().map(|r| r.language.as_str()).collect();
    languages.sort();
    languages.dedup();
    models
        .into_iter()
        .map(|m| {
            let mine: Vec<&ResultRow> = rows.iter().filter(|r| r.model == m).collect();
            ModelScores {
                model: m.to_string(),
                overall: Score::of(mine.iter().copied()),
                by_tier: TIERS
                    .iter()
                    .filter(|t| rows.iter().any(|r| r.tier == **t))
                    .map(|t| {
                        (
                            t.to_string(),
                            Score::of(mine.iter().copied().filter(|r| r.tier == *t)),
                        )
                    })
                    .collect(),
                by_language: languages
                    .iter()
                    .map(|l| {
                        (
                            l.to_string(),
                            Score::of(mine.iter().copied().filter(|r| r.language == *l)),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Formats a fraction as a percentage with one decimal.
pub fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The score table as labelled rows of cells, one cell per model (in the
/// order of `scores`): pass@1 (and pass@k) overall, by tier, by language,
/// then mean steps, tokens, wall time and repeated calls. The text table,
/// the Markdown and the HTML report all render these rows.
pub fn score_rows(scores: &[ModelScores]) -> Vec<(String, Vec<String>)> {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let cell = |s: &Score| {
        if s.episodes == 0 {
            "-".to_string()
        } else {
            format!("{} ({}/{})", pct(s.pass1), s.solved, s.tasks)
        }
    };
    rows.push((
        "pass@1 overall".into(),
        scores.iter().map(|m| cell(&m.overall)).collect(),
    ));
    if let Some(k) = scores.iter().find_map(|m| m.overall.pass_k.map(|p| p.0)) {
        rows.push((
            format!("pass@{k} overall"),
            scores
                .iter()
                .map(|m| m.overall.pass_k.map_or("-".into(), |p| pct(p.1)))
                .collect(),
        ));
    }
    if let Some(first) = scores.first() {
        for (i, (tier, _)) in first.by_tier.iter().enumerate() {
            rows.push((
                format!("  tier {tier}"),
                scores.iter().map(|m| cell(&m.by_tier[i].1)).collect(),
            ));
        }
        for (i, (lang, _)) in first.by_language.iter().enumerate() {
            rows.push((
                format!("  lang {lang}"),
                scores.iter().map(|m| cell(&m.by_language[i].1)).collect(),
            ));
        }
    }
    rows.push((
        "mean steps".into(),
        scores
            .iter()
            .map(|m| format!("{:.1}", m.overall.mean_steps))
            .collect(),
    ));
    rows.push((
        "mean tokens".into(),
        scores
            .iter()
            .map(|m| format!("{:.0}", m.overall.mean_tokens))
            .collect(),
    ));
    rows.push((
        "mean wall s".into(),
        scores
            .iter()
            .map(|m| format!("{:.2}", m.overall.mean_wall_s))
            .collect(),
    ));
    rows.push((
        "repeated calls".into(),
        scores
            .iter()
            .map(|m| m.overall.repeated_calls.to_string())
            .collect(),
    ));
    rows
}

/// The plain-text score table printed at the end of `tiers run`: models as
/// columns; overall, tiers and languages as rows.
pub fn render_table(scores: &[ModelScores]) -> String {
    let rows = score_rows(scores);
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let widths: Vec<usize> = scores
        .iter()
        .enumerate()
        .map(|(i, m)| {
            rows.iter()
                .map(|r| r.1[i].len())
                .chain([m.model.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!("{:<w0$}", "");
    for (m, w) in scores.iter().zip(&widths) {
        out.push_str(&format!("  {:>w$}", m.model));
    }
    out.push('\n');
    for (label, cells) in &rows {
        out.push_str(&format!("{label:<w0$}"));
        for (c, w) in cells.iter().zip(&widths) {
            out.push_str(&format!("  {c:>w$}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::results::tests::row;
    use super::*;

    fn binom(n: u64, k: u64) -> f64 {
        if k > n {
            return 0.0;
        }
        (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
    }

    #[test]
    fn pass_at_k_matches_the_closed_form() {
        for n in 1..=10u64 {
            for c in 0..=n {
                for k in 1..=n {
                    let want = 1.0 - binom(n - c, k) / binom(n, k);
                    let got = pass_at_k(n, c, k);
                    assert!(
                        (got - want).abs() < 1e-9,
                        "n={n} c={c} k={k}: {got} vs {want}"
                    );
                }
            }
        }
        assert_eq!(pass_at_k(5, 0, 1), 0.0);
        assert_eq!(pass_at_k(5, 5, 3), 1.0);
        assert!((pass_at_k(4, 1, 1) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn scores_by_model_tier_and_language() {
        let mut rows = vec![
            row("a", "t1", 0, true),
            row("a", "t1", 1, false),
            row("a", "t2", 0, false),
            row("a", "t2", 1, false),
            row("b", "t1", 0, true),
            row("b", "t1", 1, true),
            row("b", "t2", 0, true),
            row("b", "t2", 1, false),
        ];
        rows[2].tier = "hard".into();
        rows[3].tier = "hard".into();
        rows[6].tier = "hard".into();
        rows[7].tier = "hard".into();
        rows[3].repeated_calls = 4;
        let s = score_models(&rows);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].model, "a");
        assert!((s[0].overall.pass1 - 0.25).abs() < 1e-12);
        assert_eq!(s[0].overall.pass_k.unwrap().0, 2);
        assert!((s[0].overall.pass_k.unwrap().1 - 0.5).abs() < 1e-12);
        assert_eq!(s[0].overall.repeated_calls, 4);
        assert!((s[1].overall.pass1 - 0.75).abs() < 1e-12);
        let tiers: Vec<_> = s[1]
            .by_tier
            .iter()
            .map(|(t, sc)| (t.as_str(), sc.pass1))
            .collect();
        assert_eq!(tiers, [("easy", 1.0), ("hard", 0.5)]);
        let table = render_table(&s);
        assert!(table.contains("pass@2 overall"), "{table}");
        assert!(table.contains("25.0% (1/2)"), "{table}");
    }
}
