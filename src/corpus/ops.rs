//! What `airgate corpus` does: stats, verify, export and merge.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};

use super::row::{Split, schema_problems};
use super::store::{
    CorpusManifest, CorpusWriter, Insert, MANIFEST, read_segment, read_split, split_dir,
};
use super::{
    CorpusError, patch_norm_sha256, patch_sha256, provenance_sha256, read_corpus,
    recompute_trajectory_id, sha256_hex, system_prompt_sha256,
};

/// Per-repo line of `corpus stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepoStats {
    /// Rows from this repo.
    pub rows: u64,
    /// Distinct instances.
    pub instances: u64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
}

/// The summary `corpus stats` prints.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Rows.
    pub rows: u64,
    /// Segments.
    pub segments: u64,
    /// Distinct instances.
    pub instances: u64,
    /// Distinct repos.
    pub repos: u64,
    /// Rows per teacher model.
    pub models: BTreeMap<String, u64>,
    /// Rows per license.
    pub licenses: BTreeMap<String, u64>,
    /// Total prompt tokens.
    pub prompt_tokens: i64,
    /// Total completion tokens.
    pub completion_tokens: i64,
    /// Total tool calls.
    pub steps: i64,
    /// Total teacher cost in USD.
    pub cost_usd: f64,
    /// Per-repo table.
    pub per_repo: BTreeMap<String, RepoStats>,
    /// Verified rows carrying at least one flag (`--accept-flagged`).
    pub flagged_rows: u64,
    /// Instances with a measured solve rate, and their mean solve rate.
    pub solve_rates: (u64, f64),
    /// Rows in the rejected split (0 when there is none).
    pub rejected_rows: u64,
    /// Rejected rows per reason.
    pub rejected_reasons: BTreeMap<String, u64>,
    /// Flag codes (the part before `:`) over both splits.
    pub flag_codes: BTreeMap<String, u64>,
}

/// The code of a flag: `code: detail` → `code`, and strict grading's
/// `cheat:code:path` → `code`.
pub fn flag_code(flag: &str) -> &str {
    let f = flag.trim();
    let f = f.strip_prefix("cheat:").unwrap_or(f);
    f.split(':').next().unwrap_or(f).trim()
}

/// Computes [`Stats`] over a corpus.
pub fn stats(dir: &Path) -> Result<Stats, CorpusError> {
    let (manifest, rows) = read_corpus(dir)?;
    let mut s = Stats {
        segments: manifest.segments.len() as u64,
        ..Stats::default()
    };
    let mut instances = BTreeSet::new();
    let mut repo_instances: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        s.rows += 1;
        instances.insert(r.instance_id.clone());
        *s.models.entry(r.model.clone()).or_default() += 1;
        *s.licenses.entry(r.license.clone()).or_default() += 1;
        s.prompt_tokens += r.prompt_tokens;
        s.completion_tokens += r.completion_tokens;
        s.steps += i64::from(r.steps);
        s.cost_usd += r.cost_usd;
        let e = s.per_repo.entry(r.repo.clone()).or_default();
        e.rows += 1;
        e.prompt_tokens += r.prompt_tokens;
        e.completion_tokens += r.completion_tokens;
        repo_instances
            .entry(r.repo.clone())
            .or_default()
            .insert(r.instance_id.clone());
        if !r.flags.is_empty() {
            s.flagged_rows += 1;
        }
        for f in &r.flags {
            *s.flag_codes.entry(flag_code(f).to_string()).or_default() += 1;
        }
    }
    let (_, rejected) = read_split(dir, Split::Rejected)?;
    for r in &rejected {
        s.rejected_rows += 1;
        *s.rejected_reasons.entry(r.reason.clone()).or_default() += 1;
        for f in &r.flags {
            *s.flag_codes.entry(flag_code(f).to_string()).or_default() += 1;
        }
    }
    if !manifest.instances.is_empty() {
        let n = manifest.instances.len();
        let mean = manifest
            .instances
            .values()
            .map(|d| d.solve_rate)
            .sum::<f64>()
            / n as f64;
        s.solve_rates = (n as u64, mean);
    }
    for (repo, set) in repo_instances {
        if let Some(e) = s.per_repo.get_mut(&repo) {
            e.instances = set.len() as u64;
        }
    }
    s.instances = instances.len() as u64;
    s.repos = s.per_repo.len() as u64;
    Ok(s)
}

impl Stats {
    /// Human-readable rendering with a per-repo table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let models: Vec<String> = self
            .models
            .iter()
            .map(|(m, n)| format!("{m} ({n})"))
            .collect();
        let licenses: Vec<String> = self
            .licenses
            .iter()
            .map(|(m, n)| format!("{m} ({n})"))
            .collect();
        out.push_str(&format!(
            "rows:              {}\nsegments:          {}\ninstances:         {}\nrepos:             {}\nmodels:            {}\nlicenses:          {}\nprompt tokens:     {}\ncompletion tokens: {}\nsteps:             {}\ncost (USD):        {:.4}\n",
            self.rows,
            self.segments,
            self.instances,
            self.repos,
            if models.is_empty() { "-".into() } else { models.join(", ") },
            if licenses.is_empty() { "-".into() } else { licenses.join(", ") },
            self.prompt_tokens,
            self.completion_tokens,
            self.steps,
            self.cost_usd,
        ));
        out.push_str(&format!(
            "flagged rows:      {}\nsolve rates:       {}\nrejected rows:     {}{}\n",
            self.flagged_rows,
            if self.solve_rates.0 == 0 {
                "-".to_string()
            } else {
                format!(
                    "{} instances, mean {:.2}",
                    self.solve_rates.0, self.solve_rates.1
                )
            },
            self.rejected_rows,
            if self.rejected_reasons.is_empty() {
                String::new()
            } else {
                let r: Vec<String> = self
                    .rejected_reasons
                    .iter()
                    .map(|(k, v)| format!("{k} ({v})"))
                    .collect();
                format!("  [{}]", r.join(", "))
            }
        ));
        if !self.flag_codes.is_empty() {
            let f: Vec<String> = self
                .flag_codes
                .iter()
                .map(|(k, v)| format!("{k} ({v})"))
                .collect();
            out.push_str(&format!("flags:             {}\n", f.join(", ")));
        }
        if !self.per_repo.is_empty() {
            let w = self
                .per_repo
                .keys()
                .map(String::len)
                .max()
                .unwrap_or(4)
                .max(4);
            out.push_str(&format!(
                "\n{:<w$}  {:>6}  {:>9}  {:>13}  {:>17}\n",
                "repo", "rows", "instances", "prompt_tokens", "completion_tokens"
            ));
            for (repo, r) in &self.per_repo {
                out.push_str(&format!(
                    "{:<w$}  {:>6}  {:>9}  {:>13}  {:>17}\n",
                    repo, r.rows, r.instances, r.prompt_tokens, r.completion_tokens
                ));
            }
        }
        out
    }
}

/// The findings of `corpus verify`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: u64,
    /// Rows checked.
    pub rows: u64,
    /// Every mismatch found; empty means the corpus is intact.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Recomputes every sha256 (segment files, trajectory ids, patch hashes,
/// system prompt, tool list and provenance hashes), checks the schema of
/// every segment, the manifest's counts, provenance and duplicates, and
/// lists segment files the manifest does not know; the rejected split too
/// when there is one.
pub fn verify(dir: &Path) -> Result<VerifyReport, CorpusError> {
    if !CorpusManifest::exists(dir) {
        return Err(CorpusError::Manifest(format!(
            "{} has no {MANIFEST}: is it a corpus directory?",
            dir.display()
        )));
    }
    let mut rep = VerifyReport::default();
    verify_split(dir, Split::Verified, "", &mut rep)?;
    let rejected = split_dir(dir, Split::Rejected);
    if CorpusManifest::exists(&rejected) {
        verify_split(&rejected, Split::Rejected, "rejected/", &mut rep)?;
    }
    Ok(rep)
}

fn verify_split(
    dir: &Path,
    split: Split,
    prefix: &str,
    rep: &mut VerifyReport,
) -> Result<(), CorpusError> {
    let manifest = CorpusManifest::load(dir)?;
    if manifest.split != split {
        rep.problems.push(format!(
            "{prefix}{MANIFEST}: split is `{}`, expected `{}`",
            manifest.split.as_str(),
            split.as_str()
        ));
    }
    let mut ids = HashSet::new();
    let mut patches = HashSet::new();
    let mut listed = HashSet::new();
    let mut split_rows = 0u64;
    for seg in &manifest.segments {
        rep.segments += 1;
        listed.insert(seg.file.clone());
        let file = format!("{prefix}{}", seg.file);
        let path = dir.join(&seg.file);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                rep.problems.push(format!("{file}: cannot read: {e}"));
                continue;
            }
        };
        let sha = sha256_hex(&bytes);
        if sha != seg.sha256 {
            rep.problems.push(format!(
                "{file}: sha256 is {sha}, manifest says {}",
                seg.sha256
            ));
        }
        if bytes.len() as u64 != seg.bytes {
            rep.problems.push(format!(
                "{file}: {} bytes, manifest says {}",
                bytes.len(),
                seg.bytes
            ));
        }
        match segment_schema(&path) {
            Ok((problems, has_reason)) => {
                rep.problems
                    .extend(problems.into_iter().map(|p| format!("{file}: {p}")));
                if has_reason != (split == Split::Rejected) {
                    rep.problems.push(format!(
                        "{file}: a {} segment {} a `reason` column",
                        split.as_str(),
                        if has_reason { "has" } else { "lacks" }
                    ));
                }
            }
            Err(e) => {
                rep.problems.push(format!("{file}: unreadable: {e}"));
                continue;
            }
        }
        let rows = match read_segment(&path) {
            Ok(r) => r,
            Err(e) => {
                rep.problems.push(format!("{file}: unreadable: {e}"));
                continue;
            }
        };
        if rows.len() as u64 != seg.rows {
            rep.problems.push(format!(
                "{file}: {} rows, manifest says {}",
                rows.len(),
                seg.rows
            ));
        }
        for (i, r) in rows.iter().enumerate() {
            rep.rows += 1;
            split_rows += 1;
            let at = format!("{file} row {i} ({})", r.instance_id);
            check_row(r, split, &at, &mut rep.problems);
            if !ids.insert(r.trajectory_id.clone()) {
                rep.problems
                    .push(format!("{at}: duplicate trajectory_id {}", r.trajectory_id));
            }
            if split == Split::Verified
                && !patches.insert((r.instance_id.clone(), r.patch_norm_sha256.clone()))
            {
                rep.problems
                    .push(format!("{at}: duplicate patch for this instance"));
            }
        }
    }
    if split_rows != manifest.rows {
        rep.problems.push(format!(
            "{prefix}{MANIFEST} says {} rows, segments hold {split_rows}",
            manifest.rows
        ));
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CorpusError::io(format!("listing {}", dir.display()), e))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("part-") && name.ends_with(".parquet") && !listed.contains(&name) {
            rep.problems.push(format!(
                "{prefix}{name}: segment file not listed in the manifest"
            ));
        }
    }
    Ok(())
}

/// The per-row checks of `corpus verify`: every derived hash recomputed,
/// provenance and split rules.
fn check_row(r: &super::CorpusRow, split: Split, at: &str, problems: &mut Vec<String>) {
    if patch_sha256(&r.patch) != r.patch_sha256 {
        problems.push(format!("{at}: patch_sha256 does not match the patch"));
    }
    if patch_norm_sha256(&r.patch) != r.patch_norm_sha256 {
        problems.push(format!(
            "{at}: patch_norm_sha256 does not match the normalised patch"
        ));
    }
    match recompute_trajectory_id(r) {
        Ok(id) if id == r.trajectory_id => {}
        Ok(id) => problems.push(format!(
            "{at}: trajectory_id {} does not match the recomputed {id}",
            r.trajectory_id
        )),
        Err(e) => problems.push(format!("{at}: {e}")),
    }
    if sha256_hex(r.tools.as_bytes()) != r.tools_sha256 {
        problems.push(format!("{at}: tools_sha256 does not match the tools"));
    }
    match serde_json::from_str::<Value>(&r.messages) {
        Ok(m) if system_prompt_sha256(&m) == r.system_prompt_sha256 => {}
        Ok(_) => problems.push(format!(
            "{at}: system_prompt_sha256 does not match the system message"
        )),
        Err(_) => {}
    }
    let prov = provenance_sha256(r);
    if prov != r.provenance_sha256 {
        problems.push(format!(
            "{at}: provenance_sha256 {} does not match the recomputed {prov}: a provenance column was changed",
            r.provenance_sha256
        ));
    }
    if r.provenance != "public" {
        problems.push(format!(
            "{at}: provenance is `{}`, not `public`",
            r.provenance
        ));
    }
    if r.license.trim().is_empty() {
        problems.push(format!("{at}: no license"));
    }
    for (name, v) in [
        ("dataset_sha256", &r.dataset_sha256),
        ("engine_commit", &r.engine_commit),
        ("sandbox", &r.sandbox),
        ("verifier_mode", &r.verifier_mode),
        ("sampling", &r.sampling),
    ] {
        if v.trim().is_empty() {
            problems.push(format!("{at}: `{name}` is empty"));
        }
    }
    if serde_json::from_str::<Value>(&r.sampling).is_err() {
        problems.push(format!("{at}: sampling is not JSON"));
    }
    if !r.image_digest.is_empty() && !r.image_digest.starts_with("sha256:") {
        problems.push(format!(
            "{at}: image_digest `{}` is not a sha256:... id",
            r.image_digest
        ));
    }
    match split {
        Split::Verified => {
            if !r.resolved {
                problems.push(format!("{at}: resolved is false"));
            }
        }
        Split::Rejected => {
            if r.resolved {
                problems.push(format!("{at}: a rejected row is marked resolved"));
            }
            if r.reason.trim().is_empty() {
                problems.push(format!("{at}: a rejected row has no reason"));
            }
        }
    }
}

fn segment_schema(path: &Path) -> Result<(Vec<String>, bool), CorpusError> {
    let file = std::fs::File::open(path)
        .map_err(|e| CorpusError::io(format!("opening {}", path.display()), e))?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| CorpusError::Arrow(e.to_string()))?;
    let schema = builder.schema();
    Ok((
        schema_problems(schema.as_ref()),
        schema.field_with_name("reason").is_ok(),
    ))
}

/// Export formats of `corpus export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `{"messages": [...], "tools": [...]}` per line (TRL, axolotl).
    SftOpenAi,
    /// `{"conversations": [{"from", "value"}], "system", "tools"}` per line
    /// (LLaMA-Factory's ShareGPT with function_call/observation turns).
    ShareGpt,
    /// A Hugging Face dataset folder: `verified/` and `rejected/` Parquet
    /// segments and a `README.md` dataset card whose `configs` name them.
    Parquet,
}

impl ExportFormat {
    /// Parses `sft-openai` or `sharegpt`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sft-openai" | "openai" => Some(Self::SftOpenAi),
            "sharegpt" => Some(Self::ShareGpt),
            "parquet" | "hf" => Some(Self::Parquet),
            _ => None,
        }
    }
}

/// Writes the export to `out` (atomically); returns the number of lines
/// (rows, for [`ExportFormat::Parquet`], which exports both splits into
/// the folder `out` whatever `split` says).
pub fn export(
    dir: &Path,
    format: ExportFormat,
    split: Split,
    out: &Path,
) -> Result<u64, CorpusError> {
    if format == ExportFormat::Parquet {
        return super::card::export_folder(dir, out);
    }
    if !CorpusManifest::exists(dir) {
        return Err(CorpusError::Manifest(format!(
            "{} has no {MANIFEST}: is it a corpus directory?",
            dir.display()
        )));
    }
    let (_, rows) = read_split(dir, split)?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| CorpusError::io(format!("creating {}", parent.display()), e))?;
    let tmp = tempfile::NamedTempFile::new_in(parent)
        .map_err(|e| CorpusError::io(format!("creating a temp file in {}", parent.display()), e))?;
    let mut w = BufWriter::new(tmp);
    let mut n = 0;
    for r in &rows {
        let messages: Value = serde_json::from_str(&r.messages)
            .map_err(|e| CorpusError::InvalidRow(format!("{}: messages: {e}", r.instance_id)))?;
        let tools: Value = serde_json::from_str(&r.tools)
            .map_err(|e| CorpusError::InvalidRow(format!("{}: tools: {e}", r.instance_id)))?;
        let line = match format {
            ExportFormat::SftOpenAi => json!({ "messages": messages, "tools": tools }),
            ExportFormat::ShareGpt => sharegpt(&messages, &tools),
            ExportFormat::Parquet => unreachable_format(),
        };
        serde_json::to_writer(&mut w, &line)
            .map_err(|e| CorpusError::io("writing export", std::io::Error::other(e)))?;
        w.write_all(b"\n")
            .map_err(|e| CorpusError::io("writing export", e))?;
        n += 1;
    }
    let tmp = w
        .into_inner()
        .map_err(|e| CorpusError::io("flushing export", e.into_error()))?;
    tmp.persist(out)
        .map_err(|e| CorpusError::io(format!("writing {}", out.display()), e.error))?;
    Ok(n)
}

fn unreachable_format() -> Value {
    // `export` returns early for the folder format.
    Value::Null
}

/// OpenAI messages → ShareGPT turns. Prompt-side turns (human, observation)
/// and response-side turns (gpt, function_call) must alternate, so
/// consecutive turns of one side are joined.
pub fn sharegpt(messages: &Value, tools: &Value) -> Value {
    let mut system = String::new();
    let mut turns: Vec<(String, String)> = Vec::new();
    let prompt_side = |from: &str| from == "human" || from == "observation";
    let empty = vec![];
    for m in messages.as_array().unwrap_or(&empty) {
        let role = m["role"].as_str().unwrap_or("");
        let content = m["content"].as_str().unwrap_or("").to_string();
        let (from, value) = match role {
            "system" => {
                system = content;
                continue;
            }
            "user" => ("human", content),
            "tool" => ("observation", content),
            _ => match m["tool_calls"].as_array().and_then(|c| c.first()) {
                Some(call) => {
                    let args: Value = call["function"]["arguments"]
                        .as_str()
                        .and_then(|a| serde_json::from_str(a).ok())
                        .unwrap_or(Value::Object(Default::default()));
                    let v = json!({"name": call["function"]["name"], "arguments": args});
                    ("function_call", v.to_string())
                }
                None => ("gpt", content),
            },
        };
        match turns.last_mut() {
            Some((last, text)) if prompt_side(last) == prompt_side(from) => {
                if !value.is_empty() {
                    if !text.is_empty() {
                        text.push_str("\n\n");
                    }
                    text.push_str(&value);
                }
            }
            _ => turns.push((from.to_string(), value)),
        }
    }
    let conversations: Vec<Value> = turns
        .into_iter()
        .map(|(from, value)| json!({"from": from, "value": value}))
        .collect();
    json!({ "conversations": conversations, "system": system, "tools": tools.to_string() })
}

/// `n` valid synthetic rows of realistic shape (≈1.5 KB of messages each),
/// for benchmarks. `scripts/bench-factory.sh` builds the same rows in pyarrow.
pub fn synthetic_rows(n: usize) -> Vec<super::CorpusRow> {
    let tools = json!([{"type": "function", "function": {"name": "submit", "parameters": {"type": "object", "properties": {}}}}]);
    let tools_s = tools.to_string();
    let created =
        chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap_or_default();
    let filler = "x".repeat(1200);
    (0..n)
        .map(|i| {
            let instance_id = format!("bench__repo-{}", i % 1000);
            let patch = format!("diff --git a/f.py b/f.py\n--- a/f.py\n+++ b/f.py\n@@ -1 +1 @@\n-a\n+b{i}\n");
            let messages = json!([
                {"role": "system", "content": "You are a careful engineer."},
                {"role": "user", "content": format!("Fix issue {i}. {filler}")},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "submit", "arguments": "{}"}}]},
                {"role": "tool", "content": "submitted", "tool_call_id": "call_1"},
            ]);
            let model = "bench-model".to_string();
            let trajectory_id =
                super::trajectory_id(&instance_id, &model, &messages, &tools, &patch);
            let mut row = super::CorpusRow {
                trajectory_id,
                instance_id,
                dataset: "bench".into(),
                repo: "bench/repo".into(),
                base_commit: "0123456789abcdef0123456789abcdef01234567".into(),
                model,
                resolved: true,
                attempts: 1,
                prompt_tokens: 12_345,
                completion_tokens: 678,
                wall_s: 42.5,
                patch_sha256: super::patch_sha256(&patch),
                patch_norm_sha256: super::patch_norm_sha256(&patch),
                patch,
                system_prompt_sha256: system_prompt_sha256(&messages),
                messages: messages.to_string(),
                tools_sha256: sha256_hex(tools_s.as_bytes()),
                tools: tools_s.clone(),
                provenance: "public".into(),
                license: "MIT".into(),
                created_at: created,
                engine_version: crate::ENGINE_VERSION.into(),
                sample: 0,
                verified_by: "bench".into(),
                cost_usd: 0.0,
                image_digest: format!("sha256:{}", sha256_hex(format!("img{}", i % 1000).as_bytes())),
                dataset_sha256: "ab".repeat(32),
                engine_commit: super::ENGINE_COMMIT.into(),
                teacher_spec: "openai:bench-model@http://127.0.0.1:8000/v1".into(),
                model_id: "bench-model-2025-01".into(),
                sampling: r#"{"max_tokens":2048,"temperature":0.2}"#.into(),
                sandbox: "docker".into(),
                verifier_mode: "strict".into(),
                verify_targets_passed: 2,
                verify_targets_total: 2,
                verify_baseline_kept: 40,
                verify_baseline_total: 40,
                verify_runs: 2,
                flags: if i % 50 == 0 { vec!["weak_tests: x".into()] } else { vec![] },
                steps: 3 + (i % 40) as i32,
                provenance_sha256: String::new(),
                reason: String::new(),
            };
            row.provenance_sha256 = provenance_sha256(&row);
            row
        })
        .collect()
}

/// Counts of a merge.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MergeReport {
    /// Rows read from the inputs.
    pub read: u64,
    /// Rows added to the output.
    pub added: u64,
    /// Rows dropped as duplicates.
    pub duplicates: u64,
    /// Rows in the output afterwards.
    pub total: u64,
}

/// Merges corpora into `out` (created or appended to), dropping duplicates.
pub fn merge(inputs: &[&Path], out: &Path) -> Result<MergeReport, CorpusError> {
    let mut w = CorpusWriter::open(out)?;
    let mut rep = MergeReport::default();
    for input in inputs {
        let (_, rows) = read_corpus(input)?;
        for r in rows {
            rep.read += 1;
            match w.insert(r)? {
                Insert::Added => rep.added += 1,
                Insert::Duplicate => rep.duplicates += 1,
            }
            if w.buffered() >= 50_000 {
                w.flush()?;
            }
        }
    }
    let m = w.finish()?;
    rep.total = m.rows;
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::tests::sample_row;

    fn corpus(dir: &Path, rows: &[(&str, &str)]) {
        let mut w = CorpusWriter::open(dir).unwrap();
        for (i, (inst, patch)) in rows.iter().enumerate() {
            w.insert(sample_row(inst, patch, i as i32)).unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn verify_passes_then_catches_a_flipped_byte_and_orphans() {
        let d = tempfile::tempdir().unwrap();
        corpus(d.path(), &[("a", "p1\n"), ("b", "p2\n")]);
        let rep = verify(d.path()).unwrap();
        assert!(rep.ok(), "{:?}", rep.problems);
        assert_eq!(rep.rows, 2);
        let seg = d.path().join("part-000001.parquet");
        let mut bytes = std::fs::read(&seg).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(&seg, &bytes).unwrap();
        let rep = verify(d.path()).unwrap();
        assert!(!rep.ok());
        assert!(
            rep.problems.iter().any(|p| p.contains("sha256")),
            "{:?}",
            rep.problems
        );
        std::fs::write(d.path().join("part-000077.parquet"), b"x").unwrap();
        let rep = verify(d.path()).unwrap();
        assert!(rep.problems.iter().any(|p| p.contains("not listed")));
    }

    #[test]
    fn verify_catches_a_forged_row_with_a_consistent_manifest() {
        let d = tempfile::tempdir().unwrap();
        let mut w = CorpusWriter::open(d.path()).unwrap();
        let mut r = sample_row("a", "p1\n", 0);
        // a row whose messages were edited after the id was computed
        r.messages = r.messages.replace("fix a", "fix b");
        w.insert(r).unwrap();
        w.finish().unwrap();
        let rep = verify(d.path()).unwrap();
        assert!(
            rep.problems.iter().any(|p| p.contains("trajectory_id")),
            "{:?}",
            rep.problems
        );
    }

    /// A provenance value edited after the row was sealed (here the image
    /// digest and the flags), in a segment whose manifest sha256 is
    /// consistent: verify recomputes provenance_sha256 and says so. The
    /// untouched control row passes.
    #[test]
    fn verify_catches_a_changed_provenance_value() {
        let d = tempfile::tempdir().unwrap();
        let mut w = CorpusWriter::open(d.path()).unwrap();
        w.insert(sample_row("honest", "p0\n", 0)).unwrap();
        let mut r = sample_row("a", "p1\n", 0);
        r.image_digest = "sha256:feedface".into();
        w.insert(r).unwrap();
        let mut r = sample_row("b", "p2\n", 0);
        r.flags = vec![];
        r.teacher_spec = "openai:other@http://x/v1".into();
        w.insert(r).unwrap();
        w.finish().unwrap();
        let rep = verify(d.path()).unwrap();
        let prov: Vec<&String> = rep
            .problems
            .iter()
            .filter(|p| p.contains("provenance_sha256"))
            .collect();
        assert_eq!(prov.len(), 2, "{:?}", rep.problems);
        assert!(prov.iter().all(|p| !p.contains("(honest)")));
        assert!(prov[0].contains("(a)"), "{prov:?}");
    }

    /// The rejected split lives beside the verified one, verify checks it
    /// with its own rules, and export/stats read it.
    #[test]
    fn rejected_split_is_verified_exported_and_counted() {
        let d = tempfile::tempdir().unwrap();
        corpus(d.path(), &[("a", "p1\n")]);
        let mut w =
            CorpusWriter::open_split(&split_dir(d.path(), Split::Rejected), Split::Rejected)
                .unwrap();
        let mut r = sample_row("b", "", 0);
        r.resolved = false;
        r.reason = "unresolved".into();
        let r = r.seal().unwrap();
        // a rejected row never enters the verified split
        let mut v = CorpusWriter::open(&d.path().join("v2")).unwrap();
        assert!(v.insert(r.clone()).is_err());
        assert_eq!(w.insert(r).unwrap(), Insert::Added);
        // nor a row without a reason the rejected one
        assert!(w.insert(sample_row("c", "", 1)).is_err());
        w.finish().unwrap();
        let rep = verify(d.path()).unwrap();
        assert!(rep.ok(), "{:?}", rep.problems);
        assert_eq!(rep.rows, 2);
        let s = stats(d.path()).unwrap();
        assert_eq!((s.rows, s.rejected_rows), (1, 1));
        assert_eq!(s.rejected_reasons["unresolved"], 1);
        let out = d.path().join("rej.jsonl");
        assert_eq!(
            export(d.path(), ExportFormat::SftOpenAi, Split::Rejected, &out).unwrap(),
            1
        );
        let folder = d.path().join("hf");
        assert_eq!(
            export(d.path(), ExportFormat::Parquet, Split::Verified, &folder).unwrap(),
            2
        );
        assert!(folder.join("verified/part-000001.parquet").is_file());
        assert!(folder.join("rejected/part-000001.parquet").is_file());
        let card = std::fs::read_to_string(folder.join("README.md")).unwrap();
        assert!(card.contains("| `unresolved` | 1 |"), "{card}");
    }

    #[test]
    fn merge_dedups_and_stats_count() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        corpus(a.path(), &[("a", "p1\n"), ("b", "p2\n")]);
        corpus(b.path(), &[("a", "p1\n"), ("c", "p3\n")]);
        let rep = merge(&[a.path(), b.path()], c.path()).unwrap();
        assert_eq!(
            (rep.read, rep.added, rep.duplicates, rep.total),
            (4, 3, 1, 3)
        );
        assert!(verify(c.path()).unwrap().ok());
        let s = stats(c.path()).unwrap();
        assert_eq!((s.rows, s.instances, s.repos), (3, 3, 1));
        assert_eq!(s.prompt_tokens, 30);
        assert!(s.render().contains("o/r"));
    }

    #[test]
    fn exports_are_one_json_object_per_row() {
        let d = tempfile::tempdir().unwrap();
        corpus(d.path(), &[("a", "p1\n")]);
        let out = d.path().join("x/sft.jsonl");
        assert_eq!(
            export(d.path(), ExportFormat::SftOpenAi, Split::Verified, &out).unwrap(),
            1
        );
        let line: Value =
            serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim()).unwrap();
        assert_eq!(line["messages"][2]["tool_calls"][0]["id"], "call_1");
        assert_eq!(line["tools"][0]["function"]["name"], "submit");
        let out = d.path().join("sg.jsonl");
        export(d.path(), ExportFormat::ShareGpt, Split::Verified, &out).unwrap();
        let line: Value =
            serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim()).unwrap();
        let froms: Vec<&str> = line["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["from"].as_str().unwrap())
            .collect();
        assert_eq!(froms, ["human", "function_call", "observation"]);
        assert_eq!(line["system"], "sys");
    }
}
