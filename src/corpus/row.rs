//! One corpus row and its Arrow schema: the columns of docs/design.md
//! ("Corpus (Parquet)") with their exact types, plus a few extra columns.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::CorpusError;

/// One kept trajectory. Field order is the column order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpusRow {
    /// sha256 of the canonical trajectory JSON (see [`super::trajectory_id`]).
    pub trajectory_id: String,
    /// SWE-bench instance id.
    pub instance_id: String,
    /// Dataset the instance came from (file name or HF name).
    pub dataset: String,
    /// `owner/name`.
    pub repo: String,
    /// Commit the episode started from.
    pub base_commit: String,
    /// Teacher model (`Policy::name`).
    pub model: String,
    /// Whether the official eval resolved the instance (always true for kept rows).
    pub resolved: bool,
    /// Engine attempts used.
    pub attempts: i32,
    /// Tool calls over all attempts.
    pub steps: i32,
    /// Prompt tokens over the episode.
    pub prompt_tokens: i64,
    /// Completion tokens over the episode.
    pub completion_tokens: i64,
    /// Episode wall time in seconds.
    pub wall_s: f64,
    /// The verified patch (unified diff).
    pub patch: String,
    /// sha256 of `patch` exactly as stored (check it with `sha256(row.patch)`).
    pub patch_sha256: String,
    /// JSON list of OpenAI chat messages, tool calls and results with ids.
    pub messages: String,
    /// JSON list of the tool schemas offered.
    pub tools: String,
    /// Always `"public"`.
    pub provenance: String,
    /// SPDX license of the source repo, from the allowlist.
    pub license: String,
    /// When the row was produced.
    pub created_at: DateTime<Utc>,
    /// `airgate` version.
    pub engine_version: String,
    /// Extra: sample number (0-based) of the instance this row came from.
    pub sample: i32,
    /// Extra: what verified the patch (e.g. the eval backend).
    pub verified_by: String,
    /// Extra: model cost in USD (0 when unpriced).
    pub cost_usd: f64,
    /// sha256 of the normalised patch: the dedup key (see [`super::normalise_patch`]).
    pub patch_norm_sha256: String,
    /// Instance image id (`sha256:...`) the episode ran in; empty when the
    /// sandbox has no image (see `sandbox`).
    pub image_digest: String,
    /// sha256 of the dataset file's bytes.
    pub dataset_sha256: String,
    /// Git commit airgate was built from (`unknown` outside a checkout).
    pub engine_commit: String,
    /// The teacher spec as given (`--teacher`).
    pub teacher_spec: String,
    /// The model id the server reported in its replies (the spec's model
    /// when the server reported none).
    pub model_id: String,
    /// Sampling parameters as canonical JSON (temperature, max_tokens, ...).
    pub sampling: String,
    /// sha256 of the system prompt (the first `system` message's content).
    pub system_prompt_sha256: String,
    /// sha256 of the `tools` column.
    pub tools_sha256: String,
    /// Sandbox kind the episode ran in: `docker`, `local-bwrap`, `instant`.
    pub sandbox: String,
    /// How the patch was judged: `strict` or `official` (`--accept-flagged`).
    pub verifier_mode: String,
    /// FAIL_TO_PASS tests the final verification saw pass.
    pub verify_targets_passed: i32,
    /// FAIL_TO_PASS tests in the instance.
    pub verify_targets_total: i32,
    /// PASS_TO_PASS (baseline) tests that still passed.
    pub verify_baseline_kept: i32,
    /// PASS_TO_PASS tests in the instance.
    pub verify_baseline_total: i32,
    /// Final verification runs that passed (0 when none ran).
    pub verify_runs: i32,
    /// Cheat-detector and strict-grading flags (`code: detail`); empty for clean rows.
    pub flags: Vec<String>,
    /// sha256 of the canonical JSON of the provenance columns (see
    /// [`super::provenance_sha256`]): `corpus verify` recomputes it.
    pub provenance_sha256: String,
    /// Rejected split only: why the trajectory was not kept; empty in the
    /// verified split (which has no such column).
    pub reason: String,
}

/// Required columns of docs/design.md with their Arrow types, in order.
pub fn required_columns() -> Vec<(&'static str, DataType)> {
    let s = DataType::Utf8;
    vec![
        ("trajectory_id", s.clone()),
        ("instance_id", s.clone()),
        ("dataset", s.clone()),
        ("repo", s.clone()),
        ("base_commit", s.clone()),
        ("model", s.clone()),
        ("resolved", DataType::Boolean),
        ("attempts", DataType::Int32),
        ("steps", DataType::Int32),
        ("prompt_tokens", DataType::Int64),
        ("completion_tokens", DataType::Int64),
        ("wall_s", DataType::Float64),
        ("patch", s.clone()),
        ("patch_sha256", s.clone()),
        ("patch_norm_sha256", s.clone()),
        ("messages", s.clone()),
        ("tools", s.clone()),
        ("provenance", s.clone()),
        ("license", s.clone()),
        ("created_at", timestamp_type()),
        ("engine_version", s),
    ]
}

/// Extra columns written after the required ones (both splits).
pub fn extra_columns() -> Vec<(&'static str, DataType)> {
    let s = DataType::Utf8;
    let i = DataType::Int32;
    vec![
        ("sample", i.clone()),
        ("verified_by", s.clone()),
        ("cost_usd", DataType::Float64),
        ("image_digest", s.clone()),
        ("dataset_sha256", s.clone()),
        ("engine_commit", s.clone()),
        ("teacher_spec", s.clone()),
        ("model_id", s.clone()),
        ("sampling", s.clone()),
        ("system_prompt_sha256", s.clone()),
        ("tools_sha256", s.clone()),
        ("sandbox", s.clone()),
        ("verifier_mode", s.clone()),
        ("verify_targets_passed", i.clone()),
        ("verify_targets_total", i.clone()),
        ("verify_baseline_kept", i.clone()),
        ("verify_baseline_total", i.clone()),
        ("verify_runs", i),
        ("flags", flags_type()),
        ("provenance_sha256", s),
    ]
}

/// `list<item: string>`, as pyarrow writes `pa.list_(pa.string())`.
pub fn flags_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// Which split a segment belongs to: the verified corpus, or the rejected
/// trajectories (same columns plus `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Verified trajectories: the training corpus.
    #[default]
    Verified,
    /// Unresolved, errored and flagged trajectories (`--keep-rejected`).
    Rejected,
}

impl Split {
    /// `verified` or `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Verified => "verified",
            Split::Rejected => "rejected",
        }
    }
}

/// Columns that only the rejected split has.
pub fn split_columns(split: Split) -> Vec<(&'static str, DataType)> {
    match split {
        Split::Verified => vec![],
        Split::Rejected => vec![("reason", DataType::Utf8)],
    }
}

/// Every column of `split`, in order.
pub fn columns(split: Split) -> Vec<(&'static str, DataType)> {
    required_columns()
        .into_iter()
        .chain(extra_columns())
        .chain(split_columns(split))
        .collect()
}

/// `timestamp[us, UTC]`.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The full schema of a verified segment (none nullable).
pub fn schema() -> SchemaRef {
    schema_for(Split::Verified)
}

/// The full schema of a segment of `split` (none nullable).
pub fn schema_for(split: Split) -> SchemaRef {
    let fields: Vec<Field> = columns(split)
        .into_iter()
        .map(|(n, t)| Field::new(n, t, false))
        .collect();
    Arc::new(Schema::new(fields))
}

/// One Utf8 column being built: the values back to back and their offsets,
/// in plain `Vec`s so that a sealed batch hands them to Arrow without a copy
/// and gives them back (see [`BatchBuilder::reclaim`]) for the next batch.
#[derive(Debug, Default)]
struct StrColumn {
    offsets: Vec<i32>,
    values: Vec<u8>,
}

impl StrColumn {
    fn push(&mut self, s: &str) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.values.extend_from_slice(s.as_bytes());
        // The writer seals a batch long before a column reaches 2 GiB
        // (see `BatchBuilder::fits`), so the offset always fits.
        self.offsets
            .push(i32::try_from(self.values.len()).unwrap_or(i32::MAX));
    }

    fn take(&mut self) -> Result<StringArray, CorpusError> {
        let mut offsets = std::mem::take(&mut self.offsets);
        if offsets.is_empty() {
            offsets.push(0);
        }
        let values = std::mem::take(&mut self.values);
        StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(values),
            None,
        )
        .map_err(|e| CorpusError::Arrow(e.to_string()))
    }

    /// Takes back the buffers of an array made by [`Self::take`] once no
    /// one else holds them; otherwise the next batch allocates afresh.
    fn reclaim(&mut self, array: StringArray) {
        let (offsets, values, _) = array.into_parts();
        if let Ok(mut v) = offsets.into_inner().into_inner().into_vec::<i32>() {
            v.clear();
            self.offsets = v;
        }
        if let Ok(mut v) = values.into_vec::<u8>() {
            v.clear();
            self.values = v;
        }
    }
}

/// Number of Utf8 columns a builder keeps (the last, `reason`, is only
/// written to the rejected split).
const STRING_COLUMNS: usize = 27;

/// Number of Int32 columns a builder keeps.
const I32_COLUMNS: usize = 8;

/// Column buffers that rows are appended to as they are inserted.
///
/// The writer keeps its unsealed rows here rather than as `CorpusRow`
/// structs: an insert copies each value once into a contiguous buffer, a
/// sealed batch is handed to Arrow without a copy, and after encoding its
/// buffers are reused, so a long write touches the same few MB of memory
/// over and over instead of faulting in fresh pages for every row.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    split: Split,
    len: usize,
    /// In the order of [`BatchBuilder::str_values`].
    strings: [StrColumn; STRING_COLUMNS],
    /// attempts, steps, sample, verify_targets_passed, verify_targets_total,
    /// verify_baseline_kept, verify_baseline_total, verify_runs.
    ints: [Vec<i32>; I32_COLUMNS],
    resolved: Vec<bool>,
    prompt_tokens: Vec<i64>,
    completion_tokens: Vec<i64>,
    wall_s: Vec<f64>,
    created_at: Vec<i64>,
    cost_usd: Vec<f64>,
    /// `flags`: list offsets into `flag_items`.
    flag_offsets: Vec<i32>,
    flag_items: StrColumn,
}

/// A batch of sealed rows and the typed string arrays behind it, kept so
/// that their buffers can be reclaimed once the batch has been encoded.
#[derive(Debug)]
pub struct Sealed {
    /// The rows as a record batch (in [`schema_for`] order).
    pub batch: RecordBatch,
    strings: Vec<StringArray>,
}

/// Rows per batch: the writer seals and encodes a batch this size at a
/// time (a row group is several), and the first row of a batch sizes the
/// buffers for this many rows like it.
pub const EXPECTED_ROWS: usize = 2_048;

/// Largest value bytes one string column may hold before the batch must be
/// sealed: well under Arrow's 2 GiB i32 offsets, and a bound on memory.
const MAX_COLUMN_BYTES: usize = 256 << 20;

impl BatchBuilder {
    /// An empty builder for the verified split.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder for `split`.
    pub fn for_split(split: Split) -> Self {
        Self {
            split,
            ..Self::default()
        }
    }

    fn str_values(r: &CorpusRow) -> [&str; STRING_COLUMNS] {
        [
            &r.trajectory_id,
            &r.instance_id,
            &r.dataset,
            &r.repo,
            &r.base_commit,
            &r.model,
            &r.patch,
            &r.patch_sha256,
            &r.messages,
            &r.tools,
            &r.provenance,
            &r.license,
            &r.engine_version,
            &r.verified_by,
            &r.patch_norm_sha256,
            &r.image_digest,
            &r.dataset_sha256,
            &r.engine_commit,
            &r.teacher_spec,
            &r.model_id,
            &r.sampling,
            &r.system_prompt_sha256,
            &r.tools_sha256,
            &r.sandbox,
            &r.verifier_mode,
            &r.provenance_sha256,
            &r.reason,
        ]
    }

    /// Whether `r` can be appended without any string column growing past
    /// [`MAX_COLUMN_BYTES`]. An empty builder takes any row.
    pub fn fits(&self, r: &CorpusRow) -> bool {
        self.len == 0
            || Self::str_values(r)
                .iter()
                .zip(&self.strings)
                .all(|(v, c)| c.values.len() + v.len() <= MAX_COLUMN_BYTES)
    }

    /// Appends one row's values to every column.
    ///
    /// The first row of a batch sizes any empty buffer for a whole row
    /// group of rows like it: growing a buffer of tens of MB by doubling
    /// copies it several times and faults in about twice its size in fresh
    /// pages, which was most of the cost of an insert.
    pub fn append(&mut self, r: &CorpusRow) {
        let first = self.len == 0;
        for (v, c) in Self::str_values(r).iter().zip(self.strings.iter_mut()) {
            if first && c.values.capacity() == 0 {
                c.values
                    .reserve((v.len() * EXPECTED_ROWS).min(MAX_COLUMN_BYTES));
                c.offsets.reserve(EXPECTED_ROWS + 1);
            }
            c.push(v);
        }
        let ints = [
            r.attempts,
            r.steps,
            r.sample,
            r.verify_targets_passed,
            r.verify_targets_total,
            r.verify_baseline_kept,
            r.verify_baseline_total,
            r.verify_runs,
        ];
        for (v, c) in ints.into_iter().zip(self.ints.iter_mut()) {
            c.push(v);
        }
        if self.flag_offsets.is_empty() {
            self.flag_offsets.push(0);
        }
        for f in &r.flags {
            self.flag_items.push(f);
        }
        let items = self.flag_items.offsets.len().saturating_sub(1);
        self.flag_offsets
            .push(i32::try_from(items).unwrap_or(i32::MAX));
        self.resolved.push(r.resolved);
        self.prompt_tokens.push(r.prompt_tokens);
        self.completion_tokens.push(r.completion_tokens);
        self.wall_s.push(r.wall_s);
        self.created_at.push(r.created_at.timestamp_micros());
        self.cost_usd.push(r.cost_usd);
        self.len += 1;
    }

    /// Rows appended since the last [`Self::seal`].
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no row is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pending rows as one record batch, without copying them; the
    /// builder is empty afterwards.
    pub fn seal(&mut self) -> Result<Sealed, CorpusError> {
        let n = std::mem::take(&mut self.len);
        let mut strings = Vec::with_capacity(STRING_COLUMNS);
        for c in self.strings.iter_mut() {
            strings.push(c.take()?);
        }
        let st = |i: usize| -> ArrayRef { Arc::new(strings[i].clone()) };
        let mut ints: Vec<ArrayRef> = Vec::with_capacity(I32_COLUMNS);
        for v in self.ints.iter_mut() {
            ints.push(Arc::new(Int32Array::new(
                ScalarBuffer::from(std::mem::take(v)),
                None,
            )));
        }
        let i64s = |v: &mut Vec<i64>| -> ArrayRef {
            Arc::new(Int64Array::new(ScalarBuffer::from(std::mem::take(v)), None))
        };
        let f64s = |v: &mut Vec<f64>| -> ArrayRef {
            Arc::new(Float64Array::new(
                ScalarBuffer::from(std::mem::take(v)),
                None,
            ))
        };
        let resolved: ArrayRef = Arc::new(BooleanArray::from(std::mem::take(&mut self.resolved)));
        let created: ArrayRef = Arc::new(
            TimestampMicrosecondArray::new(
                ScalarBuffer::from(std::mem::take(&mut self.created_at)),
                None,
            )
            .with_timezone("UTC"),
        );
        let mut flag_offsets = std::mem::take(&mut self.flag_offsets);
        if flag_offsets.is_empty() {
            flag_offsets.push(0);
        }
        let items = self.flag_items.take()?;
        let flags: ArrayRef = Arc::new(
            ListArray::try_new(
                Arc::new(Field::new("item", DataType::Utf8, true)),
                OffsetBuffer::new(ScalarBuffer::from(flag_offsets)),
                Arc::new(items),
                None,
            )
            .map_err(|e| CorpusError::Arrow(e.to_string()))?,
        );
        let mut columns: Vec<ArrayRef> = vec![
            st(0),
            st(1),
            st(2),
            st(3),
            st(4),
            st(5),
            resolved,
            ints[0].clone(),
            ints[1].clone(),
            i64s(&mut self.prompt_tokens),
            i64s(&mut self.completion_tokens),
            f64s(&mut self.wall_s),
            st(6),
            st(7),
            st(14),
            st(8),
            st(9),
            st(10),
            st(11),
            created,
            st(12),
            ints[2].clone(),
            st(13),
            f64s(&mut self.cost_usd),
        ];
        columns.extend((15..=24).map(st));
        columns.extend(ints[3..].iter().cloned());
        columns.push(flags);
        columns.push(st(25));
        if self.split == Split::Rejected {
            columns.push(st(26));
        }
        let batch = RecordBatch::try_new(schema_for(self.split), columns)
            .map_err(|e| CorpusError::Arrow(e.to_string()))?;
        debug_assert_eq!(batch.num_rows(), n);
        Ok(Sealed { batch, strings })
    }

    /// Takes back the string buffers of a sealed batch after it was encoded
    /// (and dropped by everyone else), and sizes the other columns like it.
    pub fn reclaim(&mut self, sealed: Sealed) {
        let Sealed { batch, strings } = sealed;
        let rows = batch.num_rows();
        drop(batch);
        for (c, a) in self.strings.iter_mut().zip(strings) {
            c.reclaim(a);
        }
        for v in self.ints.iter_mut() {
            v.reserve(rows);
        }
        self.resolved.reserve(rows);
        self.prompt_tokens.reserve(rows);
        self.completion_tokens.reserve(rows);
        self.wall_s.reserve(rows);
        self.created_at.reserve(rows);
        self.cost_usd.reserve(rows);
        self.flag_offsets.reserve(rows + 1);
    }
}

/// Checks that `actual` has every required column with its exact type.
/// Returns one line per problem.
pub fn schema_problems(actual: &Schema) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, ty) in required_columns().into_iter().chain(extra_columns()) {
        match actual.field_with_name(name) {
            Ok(f) if f.data_type() == &ty => {}
            Ok(f) => problems.push(format!(
                "column `{name}` has type {} (expected {ty})",
                f.data_type()
            )),
            Err(_) => problems.push(format!("column `{name}` is missing")),
        }
    }
    if let Ok(f) = actual.field_with_name("reason")
        && f.data_type() != &DataType::Utf8
    {
        problems.push(format!(
            "column `reason` has type {} (expected Utf8)",
            f.data_type()
        ));
    }
    problems
}

fn column<'b, T: 'static>(batch: &'b RecordBatch, name: &str) -> Result<&'b T, CorpusError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| CorpusError::Schema(format!("column `{name}` missing or of the wrong type")))
}

/// One record batch → rows. Fails on a schema mismatch or a null. A batch
/// with a `reason` column is from the rejected split.
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<CorpusRow>, CorpusError> {
    let problems = schema_problems(batch.schema().as_ref());
    if !problems.is_empty() {
        return Err(CorpusError::Schema(problems.join("; ")));
    }
    let st = |n| column::<StringArray>(batch, n);
    let i32c = |n| column::<Int32Array>(batch, n);
    let (tid, iid, ds, repo, base, model) = (
        st("trajectory_id")?,
        st("instance_id")?,
        st("dataset")?,
        st("repo")?,
        st("base_commit")?,
        st("model")?,
    );
    let (patch, psha, msgs, tools, prov, lic, ev, vby) = (
        st("patch")?,
        st("patch_sha256")?,
        st("messages")?,
        st("tools")?,
        st("provenance")?,
        st("license")?,
        st("engine_version")?,
        st("verified_by")?,
    );
    let (pnorm, image, dsha, commit, tspec, mid, sampling, sys, tsha, sandbox, vmode, provsha) = (
        st("patch_norm_sha256")?,
        st("image_digest")?,
        st("dataset_sha256")?,
        st("engine_commit")?,
        st("teacher_spec")?,
        st("model_id")?,
        st("sampling")?,
        st("system_prompt_sha256")?,
        st("tools_sha256")?,
        st("sandbox")?,
        st("verifier_mode")?,
        st("provenance_sha256")?,
    );
    let reason = batch
        .column_by_name("reason")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>());
    let (vtp, vtt, vbk, vbt, vruns) = (
        i32c("verify_targets_passed")?,
        i32c("verify_targets_total")?,
        i32c("verify_baseline_kept")?,
        i32c("verify_baseline_total")?,
        i32c("verify_runs")?,
    );
    let flags = column::<ListArray>(batch, "flags")?;
    let resolved = column::<BooleanArray>(batch, "resolved")?;
    let attempts = i32c("attempts")?;
    let steps = i32c("steps")?;
    let sample = i32c("sample")?;
    let pt = column::<Int64Array>(batch, "prompt_tokens")?;
    let ct = column::<Int64Array>(batch, "completion_tokens")?;
    let wall = column::<Float64Array>(batch, "wall_s")?;
    let cost = column::<Float64Array>(batch, "cost_usd")?;
    let created = column::<TimestampMicrosecondArray>(batch, "created_at")?;
    for c in batch.columns() {
        if c.null_count() > 0 {
            return Err(CorpusError::Schema("a column holds nulls".into()));
        }
    }
    let flag_items = flags
        .values()
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| CorpusError::Schema("column `flags` is not a list of strings".into()))?;
    let flag_offsets = flags.value_offsets();
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let created_at = DateTime::<Utc>::from_timestamp_micros(created.value(i))
            .ok_or_else(|| CorpusError::Schema(format!("row {i}: created_at out of range")))?;
        let (a, b) = (flag_offsets[i] as usize, flag_offsets[i + 1] as usize);
        rows.push(CorpusRow {
            trajectory_id: tid.value(i).to_string(),
            instance_id: iid.value(i).to_string(),
            dataset: ds.value(i).to_string(),
            repo: repo.value(i).to_string(),
            base_commit: base.value(i).to_string(),
            model: model.value(i).to_string(),
            resolved: resolved.value(i),
            attempts: attempts.value(i),
            steps: steps.value(i),
            prompt_tokens: pt.value(i),
            completion_tokens: ct.value(i),
            wall_s: wall.value(i),
            patch: patch.value(i).to_string(),
            patch_sha256: psha.value(i).to_string(),
            messages: msgs.value(i).to_string(),
            tools: tools.value(i).to_string(),
            provenance: prov.value(i).to_string(),
            license: lic.value(i).to_string(),
            created_at,
            engine_version: ev.value(i).to_string(),
            sample: sample.value(i),
            verified_by: vby.value(i).to_string(),
            cost_usd: cost.value(i),
            patch_norm_sha256: pnorm.value(i).to_string(),
            image_digest: image.value(i).to_string(),
            dataset_sha256: dsha.value(i).to_string(),
            engine_commit: commit.value(i).to_string(),
            teacher_spec: tspec.value(i).to_string(),
            model_id: mid.value(i).to_string(),
            sampling: sampling.value(i).to_string(),
            system_prompt_sha256: sys.value(i).to_string(),
            tools_sha256: tsha.value(i).to_string(),
            sandbox: sandbox.value(i).to_string(),
            verifier_mode: vmode.value(i).to_string(),
            verify_targets_passed: vtp.value(i),
            verify_targets_total: vtt.value(i),
            verify_baseline_kept: vbk.value(i),
            verify_baseline_total: vbt.value(i),
            verify_runs: vruns.value(i),
            flags: (a..b).map(|j| flag_items.value(j).to_string()).collect(),
            provenance_sha256: provsha.value(i).to_string(),
            reason: reason.map(|r| r.value(i).to_string()).unwrap_or_default(),
        });
    }
    Ok(rows)
}
