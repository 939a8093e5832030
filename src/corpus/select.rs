//! `airgate corpus select`: a smaller, better corpus from a verified one.
//!
//! Steps, in order (each recorded with its counts in the output manifest's
//! `selection`, so the subset can be rebuilt from the input):
//! 1. filters: flags, steps, tokens, solve rate;
//! 2. near-duplicate removal on the normalised patch together with the
//!    normalised problem statement (case and whitespace folded);
//! 3. one row per instance: the shortest (fewest steps, then fewest
//!    tokens, then trajectory id), or a seeded random one with `--seed`;
//! 4. a per-repo cap, filled in a stable (or seeded) order.
//!
//! Every order is a total order on stored values (ties end on the
//! trajectory id), and "random" is a sha256 of the seed and the trajectory
//! id, so a selection is the same on every machine for the same seed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Serialize;
use serde_json::json;

use super::row::Split;
use super::store::{CorpusWriter, Insert, read_split};
use super::{CorpusError, CorpusRow, sha256_hex};

/// The selection rule.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SelectRule {
    /// Drop rows carrying any flag.
    pub no_flags: bool,
    /// Keep rows with at least this many steps.
    pub min_steps: Option<i32>,
    /// Keep rows with at most this many steps.
    pub max_steps: Option<i32>,
    /// Keep rows with at most this many prompt + completion tokens.
    pub max_tokens: Option<i64>,
    /// Keep instances whose solve rate is at least this (instances without
    /// a measured solve rate are dropped when either bound is set).
    pub min_solve_rate: Option<f64>,
    /// Keep instances whose solve rate is at most this.
    pub max_solve_rate: Option<f64>,
    /// Near-duplicate removal on (normalised patch, normalised problem statement).
    pub dedup: bool,
    /// One row per instance.
    pub one_per_instance: bool,
    /// Rows per repo at most.
    pub per_repo_cap: Option<u32>,
    /// Seed: a seeded random pick instead of the shortest trajectory, and a
    /// seeded order for the per-repo cap.
    pub seed: Option<u64>,
}

/// What a selection did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SelectReport {
    /// Rows read.
    pub input_rows: u64,
    /// Rows left after each step, in order.
    pub steps: Vec<(String, u64)>,
    /// Rows written.
    pub output_rows: u64,
}

/// The problem statement of a row (its first `user` message), case and
/// whitespace folded: the near-duplicate key's second half.
fn statement_key(messages: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(messages).unwrap_or_default();
    let text = v
        .as_array()
        .and_then(|m| m.iter().find(|x| x["role"] == "user"))
        .and_then(|x| x["content"].as_str())
        .unwrap_or("");
    let folded: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
    sha256_hex(folded.join(" ").as_bytes())
}

fn seeded(seed: u64, r: &CorpusRow) -> String {
    sha256_hex(format!("{seed}:{}", r.trajectory_id).as_bytes())
}

/// Runs the selection from the verified split of `input` into a new corpus
/// `out` (which must not hold rows yet).
pub fn select(input: &Path, out: &Path, rule: &SelectRule) -> Result<SelectReport, CorpusError> {
    let (manifest, rows) = read_split(input, Split::Verified)?;
    let mut rep = SelectReport {
        input_rows: rows.len() as u64,
        ..SelectReport::default()
    };
    let mut rows: Vec<CorpusRow> = rows
        .into_iter()
        .filter(|r| !rule.no_flags || r.flags.is_empty())
        .filter(|r| rule.min_steps.is_none_or(|m| r.steps >= m))
        .filter(|r| rule.max_steps.is_none_or(|m| r.steps <= m))
        .filter(|r| {
            rule.max_tokens
                .is_none_or(|m| r.prompt_tokens + r.completion_tokens <= m)
        })
        .filter(|r| {
            if rule.min_solve_rate.is_none() && rule.max_solve_rate.is_none() {
                return true;
            }
            let Some(d) = manifest.instances.get(&r.instance_id) else {
                return false;
            };
            rule.min_solve_rate.is_none_or(|m| d.solve_rate >= m)
                && rule.max_solve_rate.is_none_or(|m| d.solve_rate <= m)
        })
        .collect();
    rep.steps.push(("filters".into(), rows.len() as u64));
    // A total, stable order: shortest first (or seeded), ties on the id.
    let key = |r: &CorpusRow| -> (String, i32, i64, String) {
        match rule.seed {
            Some(s) => (seeded(s, r), 0, 0, r.trajectory_id.clone()),
            None => (
                String::new(),
                r.steps,
                r.prompt_tokens + r.completion_tokens,
                r.trajectory_id.clone(),
            ),
        }
    };
    let mut keyed: Vec<((String, i32, i64, String), CorpusRow)> =
        rows.drain(..).map(|r| (key(&r), r)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    if rule.dedup {
        let mut seen = HashSet::new();
        keyed.retain(|(_, r)| {
            seen.insert((r.patch_norm_sha256.clone(), statement_key(&r.messages)))
        });
        rep.steps
            .push(("near-duplicates".into(), keyed.len() as u64));
    }
    if rule.one_per_instance {
        let mut seen = HashSet::new();
        keyed.retain(|(_, r)| seen.insert(r.instance_id.clone()));
        rep.steps
            .push(("one per instance".into(), keyed.len() as u64));
    }
    if let Some(cap) = rule.per_repo_cap {
        let mut per: HashMap<String, u32> = HashMap::new();
        keyed.retain(|(_, r)| {
            let n = per.entry(r.repo.clone()).or_default();
            *n += 1;
            *n <= cap
        });
        rep.steps.push(("per-repo cap".into(), keyed.len() as u64));
    }
    // Written in input order of instance then id, so the output does not
    // depend on how the selection sorted.
    keyed.sort_by(|a, b| {
        (&a.1.instance_id, &a.1.trajectory_id).cmp(&(&b.1.instance_id, &b.1.trajectory_id))
    });
    let mut w = CorpusWriter::open(out)?;
    if w.total_rows() > 0 {
        return Err(CorpusError::InvalidRow(format!(
            "{} already holds a corpus: select into a new directory",
            out.display()
        )));
    }
    let mut instances = BTreeMap::new();
    for (_, r) in keyed {
        if let Some(d) = manifest.instances.get(&r.instance_id) {
            instances.insert(r.instance_id.clone(), *d);
        }
        if w.insert(r)? == Insert::Added {
            rep.output_rows += 1;
        }
        if w.buffered() >= 50_000 {
            w.flush()?;
        }
    }
    for (id, d) in instances {
        w.set_difficulty(&id, d);
    }
    if !manifest.allowlist_sha256.is_empty() {
        w.set_allowlist_sha256(&manifest.allowlist_sha256);
    }
    let input_digest = sha256_hex(
        manifest
            .segments
            .iter()
            .map(|s| s.sha256.as_str())
            .collect::<Vec<_>>()
            .join(",")
            .as_bytes(),
    );
    w.set_selection(json!({
        "tool": format!("airgate corpus select {}", crate::ENGINE_VERSION),
        "input": input.display().to_string(),
        "input_segments_sha256": input_digest,
        "input_rows": rep.input_rows,
        "rule": rule,
        "steps": rep.steps,
        "output_rows": rep.output_rows,
        "order": if rule.seed.is_some() {
            "sha256(seed:trajectory_id)"
        } else {
            "steps, then prompt+completion tokens, then trajectory_id"
        },
    }));
    w.finish()?;
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::tests::sample_row;

    fn input(dir: &Path) {
        let mut w = CorpusWriter::open(dir).unwrap();
        for i in 0..30 {
            let mut r = sample_row(&format!("inst{}", i % 6), &format!("p{i}\n"), i);
            r.steps = 1 + (i * 7) % 11;
            r.repo = format!("o/r{}", i % 2);
            if i % 5 == 0 {
                r.flags = vec!["weak_tests: x".into()];
            }
            w.insert(r.seal().unwrap()).unwrap();
        }
        w.set_difficulty("inst0", crate::corpus::store::Difficulty::new(4, 1));
        w.finish().unwrap();
    }

    #[test]
    fn select_is_deterministic_for_a_seed_and_records_its_rule() {
        let d = tempfile::tempdir().unwrap();
        input(&d.path().join("in"));
        let rule = SelectRule {
            no_flags: true,
            dedup: true,
            one_per_instance: true,
            per_repo_cap: Some(2),
            seed: Some(7),
            ..SelectRule::default()
        };
        let run = |name: &str, rule: &SelectRule| {
            let out = d.path().join(name);
            select(&d.path().join("in"), &out, rule).unwrap();
            let (m, rows) = crate::corpus::read_corpus(&out).unwrap();
            (
                m,
                rows.into_iter()
                    .map(|r| r.trajectory_id)
                    .collect::<Vec<_>>(),
            )
        };
        let (m1, a) = run("a", &rule);
        let (_, b) = run("b", &rule);
        assert_eq!(a, b);
        assert_eq!(a.len(), 4, "two repos, capped at two each");
        let sel = m1.selection.unwrap();
        assert_eq!(sel["rule"]["seed"], 7);
        assert_eq!(sel["rule"]["per_repo_cap"], 2);
        assert_eq!(sel["output_rows"], 4);
        let other = SelectRule {
            seed: Some(8),
            ..rule.clone()
        };
        let (_, c) = run("c", &other);
        assert_eq!(c.len(), 4);
        // shortest pick: the fewest steps per instance, no flags
        let shortest = SelectRule {
            no_flags: true,
            one_per_instance: true,
            ..SelectRule::default()
        };
        let (_, s) = run("s", &shortest);
        let (_, all) = crate::corpus::read_corpus(&d.path().join("in")).unwrap();
        for id in &s {
            let r = all.iter().find(|r| &r.trajectory_id == id).unwrap();
            let best = all
                .iter()
                .filter(|x| x.instance_id == r.instance_id && x.flags.is_empty())
                .map(|x| x.steps)
                .min()
                .unwrap();
            assert_eq!(r.steps, best);
        }
        // solve rate: only inst0 has one, and it is 0.25
        let hard = SelectRule {
            max_solve_rate: Some(0.5),
            ..SelectRule::default()
        };
        let (m, h) = run("h", &hard);
        assert_eq!(h.len(), 5);
        assert_eq!(m.instances.len(), 1);
    }

    #[test]
    fn near_duplicates_across_instances_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let mut w = CorpusWriter::open(&d.path().join("in")).unwrap();
        let a = sample_row("x", "p\n", 0);
        // same statement (modulo case and spaces) and same normalised patch
        let mut b = sample_row("y", "p\r\n", 0);
        b.messages = a.messages.replace("fix x", "FIX   x");
        w.insert(a).unwrap();
        w.insert(b.seal().unwrap()).unwrap();
        w.finish().unwrap();
        let rule = SelectRule {
            dedup: true,
            ..SelectRule::default()
        };
        let rep = select(&d.path().join("in"), &d.path().join("o"), &rule).unwrap();
        assert_eq!((rep.input_rows, rep.output_rows), (2, 1));
    }
}
