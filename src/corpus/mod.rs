//! The corpus: verified teacher trajectories as Parquet, ready for SFT.
//!
//! A corpus directory holds immutable `part-*.parquet` segments and a
//! `manifest.json` listing each segment with its row count and sha256. A
//! segment is written to a temporary name, fsynced, then renamed; the
//! manifest is replaced the same way, so a crash never leaves a half-written
//! segment in the manifest (see [`store`]). Every id is a sha256 that can be
//! recomputed from the stored columns, which is what `corpus verify` does.

pub mod card;
pub mod ops;
pub mod row;
pub mod select;
pub mod store;

use sha2::{Digest, Sha256};

use crate::error::Retryable;
pub use row::{CorpusRow, Split};
pub use store::{CorpusManifest, CorpusWriter, Insert, SegmentInfo, read_corpus, read_split};

/// The git commit airgate was built from (`unknown` when built outside a
/// git checkout), set by `build.rs`.
pub const ENGINE_COMMIT: &str = match option_env!("AIRGATE_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// Errors of the corpus room.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// Filesystem failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Arrow/Parquet encoding or decoding failure.
    #[error("parquet/arrow error: {0}")]
    Arrow(String),
    /// A segment's columns are not those of docs/design.md.
    #[error("schema mismatch: {0}")]
    Schema(String),
    /// `manifest.json` is unreadable or inconsistent.
    #[error("bad manifest: {0}")]
    Manifest(String),
    /// Another process holds the corpus lock.
    #[error(
        "corpus {0} is locked by another airgate process; wait for it to finish or use another --out"
    )]
    Locked(String),
    /// A row that must not enter the corpus.
    #[error("invalid row: {0}")]
    InvalidRow(String),
    /// A write failed earlier; the rows in flight are gone and the writer
    /// refuses more work. Reopening the corpus (rerunning the command)
    /// resumes from the manifest.
    #[error("{0}; rerun the command: it resumes from the last published segment")]
    Poisoned(String),
}

impl CorpusError {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

impl Retryable for CorpusError {
    fn is_retryable(&self) -> bool {
        matches!(self, CorpusError::Locked(_))
    }
}

/// Lower-case hex sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The normal form of a patch used for dedup: LF line endings, no
/// `index <blob>..<blob>` lines (they depend on abbreviation settings),
/// trailing whitespace of each line kept (it is content), no trailing blank
/// lines, exactly one final newline. `""` stays `""`.
pub fn normalise_patch(patch: &str) -> String {
    let text = patch.replace("\r\n", "\n");
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.starts_with("index ") && line.contains("..") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    if out.trim().is_empty() {
        return String::new();
    }
    out
}

/// `patch_sha256`: sha256 of the patch exactly as stored, so that
/// `sha256(row.patch)` in any tool matches it.
pub fn patch_sha256(patch: &str) -> String {
    sha256_hex(patch.as_bytes())
}

/// `patch_norm_sha256`: sha256 of the normalised patch, the dedup key.
pub fn patch_norm_sha256(patch: &str) -> String {
    if is_normalised(patch) {
        // Most patches (every one git writes without `index` lines) are
        // already normal: hash them without building a copy.
        return sha256_hex(patch.as_bytes());
    }
    sha256_hex(normalise_patch(patch).as_bytes())
}

/// Whether `normalise_patch(patch) == patch`, checked without building it
/// (conservatively: `false` may still be normal).
fn is_normalised(patch: &str) -> bool {
    patch.ends_with('\n')
        && !patch.ends_with("\n\n")
        && !patch.contains('\r')
        && !patch.starts_with("index ")
        && !patch.contains("\nindex ")
        && !patch.trim().is_empty()
}

/// Serialises a JSON value with object keys sorted at every level and no
/// whitespace: the canonical form that ids are computed over.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn write(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&map[k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// `trajectory_id`: sha256 of the canonical trajectory JSON, i.e. the
/// object `{instance_id, model, messages, tools, patch}` in canonical form.
/// Timings are left out on purpose: the same trajectory always gets the same
/// id, and `corpus verify` can recompute it from the stored columns.
pub fn trajectory_id(
    instance_id: &str,
    model: &str,
    messages: &serde_json::Value,
    tools: &serde_json::Value,
    patch: &str,
) -> String {
    let doc = serde_json::json!({
        "instance_id": instance_id,
        "model": model,
        "messages": messages,
        "tools": tools,
        "patch": patch,
    });
    sha256_hex(canonical_json(&doc).as_bytes())
}

/// sha256 of the system prompt of a `messages` column: the content of its
/// first `system` message (`""` when there is none).
pub fn system_prompt_sha256(messages: &serde_json::Value) -> String {
    let prompt = messages
        .as_array()
        .and_then(|m| m.iter().find(|x| x["role"] == "system"))
        .and_then(|x| x["content"].as_str())
        .unwrap_or("");
    sha256_hex(prompt.as_bytes())
}

/// `provenance_sha256`: sha256 of the canonical JSON of the columns that say
/// where a row came from and how it was judged, tied to its trajectory id
/// and patch. `corpus verify` recomputes it, so an edited provenance value
/// (image digest, teacher, flags, ...) is caught even when the segment's
/// sha256 in the manifest was updated to match.
pub fn provenance_sha256(r: &CorpusRow) -> String {
    let doc = serde_json::json!({
        "trajectory_id": r.trajectory_id,
        "instance_id": r.instance_id,
        "sample": r.sample,
        "dataset": r.dataset,
        "dataset_sha256": r.dataset_sha256,
        "repo": r.repo,
        "base_commit": r.base_commit,
        "license": r.license,
        "provenance": r.provenance,
        "engine_version": r.engine_version,
        "engine_commit": r.engine_commit,
        "teacher_spec": r.teacher_spec,
        "model": r.model,
        "model_id": r.model_id,
        "sampling": r.sampling,
        "system_prompt_sha256": r.system_prompt_sha256,
        "tools_sha256": r.tools_sha256,
        "image_digest": r.image_digest,
        "sandbox": r.sandbox,
        "verified_by": r.verified_by,
        "verifier_mode": r.verifier_mode,
        "verify": [r.verify_targets_passed, r.verify_targets_total, r.verify_baseline_kept, r.verify_baseline_total, r.verify_runs],
        "resolved": r.resolved,
        "flags": r.flags,
        "reason": r.reason,
        "patch_sha256": r.patch_sha256,
    });
    sha256_hex(canonical_json(&doc).as_bytes())
}

impl CorpusRow {
    /// Fills every derived column from the others: trajectory id, patch
    /// hashes, system prompt and tool list hashes, and last the provenance
    /// hash. Producers call this once a row's values are set.
    pub fn seal(mut self) -> Result<Self, CorpusError> {
        let messages: serde_json::Value = serde_json::from_str(&self.messages)
            .map_err(|e| CorpusError::InvalidRow(format!("messages is not JSON: {e}")))?;
        let tools: serde_json::Value = serde_json::from_str(&self.tools)
            .map_err(|e| CorpusError::InvalidRow(format!("tools is not JSON: {e}")))?;
        self.trajectory_id = trajectory_id(
            &self.instance_id,
            &self.model,
            &messages,
            &tools,
            &self.patch,
        );
        self.patch_sha256 = patch_sha256(&self.patch);
        self.patch_norm_sha256 = patch_norm_sha256(&self.patch);
        self.system_prompt_sha256 = system_prompt_sha256(&messages);
        self.tools_sha256 = sha256_hex(self.tools.as_bytes());
        self.provenance_sha256 = provenance_sha256(&self);
        Ok(self)
    }
}

/// Recomputes a row's trajectory id from its stored columns.
pub fn recompute_trajectory_id(row: &CorpusRow) -> Result<String, CorpusError> {
    let messages: serde_json::Value = serde_json::from_str(&row.messages)
        .map_err(|e| CorpusError::InvalidRow(format!("messages is not JSON: {e}")))?;
    let tools: serde_json::Value = serde_json::from_str(&row.tools)
        .map_err(|e| CorpusError::InvalidRow(format!("tools is not JSON: {e}")))?;
    Ok(trajectory_id(
        &row.instance_id,
        &row.model,
        &messages,
        &tools,
        &row.patch,
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    proptest::proptest! {
        /// The fast path of `patch_sha256` never disagrees with normalising.
        #[test]
        fn is_normalised_implies_normal_form(
            lines in proptest::collection::vec("(index [0-9a-f]{3}\\.\\.[0-9a-f]{3}|[-+ @]?[a-z \t]{0,6}|\r|)", 0..8),
            end in "(\n|\n\n|\r\n|)",
        ) {
            let patch = lines.join("\n") + &end;
            if super::is_normalised(&patch) {
                proptest::prop_assert_eq!(super::normalise_patch(&patch), patch.clone());
            }
            proptest::prop_assert_eq!(
                super::patch_norm_sha256(&patch),
                super::sha256_hex(super::normalise_patch(&patch).as_bytes())
            );
        }
    }

    use super::*;

    /// A valid synthetic row for tests and benchmarks.
    pub fn sample_row(instance: &str, patch: &str, sample: i32) -> CorpusRow {
        let messages = serde_json::json!([
            {"role": "system", "content": "sys"},
            {"role": "user", "content": format!("fix {instance}")},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "submit", "arguments": "{}"}}]},
            {"role": "tool", "content": "submitted", "tool_call_id": "call_1"},
        ]);
        let tools = serde_json::json!([{"type": "function", "function": {"name": "submit", "parameters": {"type": "object", "properties": {}}}}]);
        CorpusRow {
            trajectory_id: String::new(),
            instance_id: instance.into(),
            dataset: "d.jsonl".into(),
            repo: "o/r".into(),
            base_commit: "abc".into(),
            model: "m".into(),
            resolved: true,
            attempts: 1,
            steps: 1,
            prompt_tokens: 10,
            completion_tokens: 5,
            wall_s: 1.5,
            patch: patch.into(),
            patch_sha256: String::new(),
            messages: messages.to_string(),
            tools: tools.to_string(),
            provenance: "public".into(),
            license: "MIT".into(),
            created_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            engine_version: "0.1.0".into(),
            sample,
            verified_by: "test".into(),
            cost_usd: 0.0,
            patch_norm_sha256: String::new(),
            image_digest: "sha256:0123".into(),
            dataset_sha256: "d".repeat(64),
            engine_commit: "c0ffee".into(),
            teacher_spec: "script:t.jsonl".into(),
            model_id: "m".into(),
            sampling: "{}".into(),
            system_prompt_sha256: String::new(),
            tools_sha256: String::new(),
            sandbox: "local-bwrap".into(),
            verifier_mode: "strict".into(),
            verify_targets_passed: 1,
            verify_targets_total: 1,
            verify_baseline_kept: 2,
            verify_baseline_total: 2,
            verify_runs: 2,
            flags: vec![],
            provenance_sha256: String::new(),
            reason: String::new(),
        }
        .seal()
        .unwrap()
    }

    #[test]
    fn normalisation_ignores_crlf_index_lines_and_trailing_blank_lines() {
        let a = "diff --git a/x b/x\nindex 1234567..89abcde 100644\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";
        let b = "diff --git a/x b/x\r\nindex 1234567890..89abcdef01 100644\r\n--- a/x\r\n+++ b/x\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n\r\n";
        assert_eq!(patch_norm_sha256(a), patch_norm_sha256(b));
        assert_ne!(
            patch_norm_sha256(a),
            patch_norm_sha256(&a.replace("+b", "+c"))
        );
        // patch_sha256 is the plain hash of the stored bytes
        assert_ne!(patch_sha256(a), patch_sha256(b));
        assert_eq!(patch_sha256(b), sha256_hex(b.as_bytes()));
        assert_eq!(normalise_patch("\n\n"), "");
    }

    #[test]
    fn canonical_json_sorts_keys_and_id_is_stable() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"d":[1,{"z":0,"y":"\n"}],"c":null}}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":null,"d":[1,{"y":"\n","z":0}]},"b":1}"#
        );
        let row = sample_row("i1", "p\n", 0);
        assert_eq!(recompute_trajectory_id(&row).unwrap(), row.trajectory_id);
        let mut other = row.clone();
        other.messages = other.messages.replace("fix", "fox");
        assert_ne!(recompute_trajectory_id(&other).unwrap(), row.trajectory_id);
    }
}
