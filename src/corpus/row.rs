//! One corpus row and its Arrow schema: the columns of docs/design.md
//! ("Corpus (Parquet)") with their exact types, plus a few extra columns.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
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
    /// sha256 of the normalised patch.
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
        ("messages", s.clone()),
        ("tools", s.clone()),
        ("provenance", s.clone()),
        ("license", s.clone()),
        ("created_at", timestamp_type()),
        ("engine_version", s),
    ]
}

/// Extra columns written after the required ones.
pub fn extra_columns() -> Vec<(&'static str, DataType)> {
    vec![
        ("sample", DataType::Int32),
        ("verified_by", DataType::Utf8),
        ("cost_usd", DataType::Float64),
    ]
}

/// `timestamp[us, UTC]`.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The full schema of a segment (required then extra columns, none nullable).
pub fn schema() -> SchemaRef {
    let fields: Vec<Field> = required_columns()
        .into_iter()
        .chain(extra_columns())
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

/// Number of Utf8 columns in [`schema`].
const STRING_COLUMNS: usize = 14;

/// Column buffers that rows are appended to as they are inserted.
///
/// The writer keeps its unsealed rows here rather than as `CorpusRow`
/// structs: an insert copies each value once into a contiguous buffer, a
/// sealed batch is handed to Arrow without a copy, and after encoding its
/// buffers are reused, so a long write touches the same few MB of memory
/// over and over instead of faulting in fresh pages for every row.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    len: usize,
    /// In schema order: trajectory_id, instance_id, dataset, repo,
    /// base_commit, model, patch, patch_sha256, messages, tools, provenance,
    /// license, engine_version, verified_by.
    strings: [StrColumn; STRING_COLUMNS],
    resolved: Vec<bool>,
    attempts: Vec<i32>,
    steps: Vec<i32>,
    prompt_tokens: Vec<i64>,
    completion_tokens: Vec<i64>,
    wall_s: Vec<f64>,
    created_at: Vec<i64>,
    sample: Vec<i32>,
    cost_usd: Vec<f64>,
}

/// A batch of sealed rows and the typed string arrays behind it, kept so
/// that their buffers can be reclaimed once the batch has been encoded.
#[derive(Debug)]
pub struct Sealed {
    /// The rows as a record batch (in [`schema`] order).
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
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
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
        self.resolved.push(r.resolved);
        self.attempts.push(r.attempts);
        self.steps.push(r.steps);
        self.prompt_tokens.push(r.prompt_tokens);
        self.completion_tokens.push(r.completion_tokens);
        self.wall_s.push(r.wall_s);
        self.created_at.push(r.created_at.timestamp_micros());
        self.sample.push(r.sample);
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
        let i32s = |v: &mut Vec<i32>| -> ArrayRef {
            Arc::new(Int32Array::new(ScalarBuffer::from(std::mem::take(v)), None))
        };
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
        let columns: Vec<ArrayRef> = vec![
            st(0),
            st(1),
            st(2),
            st(3),
            st(4),
            st(5),
            resolved,
            i32s(&mut self.attempts),
            i32s(&mut self.steps),
            i64s(&mut self.prompt_tokens),
            i64s(&mut self.completion_tokens),
            f64s(&mut self.wall_s),
            st(6),
            st(7),
            st(8),
            st(9),
            st(10),
            st(11),
            created,
            st(12),
            i32s(&mut self.sample),
            st(13),
            f64s(&mut self.cost_usd),
        ];
        let batch = RecordBatch::try_new(schema(), columns)
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
        self.resolved.reserve(rows);
        self.attempts.reserve(rows);
        self.steps.reserve(rows);
        self.prompt_tokens.reserve(rows);
        self.completion_tokens.reserve(rows);
        self.wall_s.reserve(rows);
        self.created_at.reserve(rows);
        self.sample.reserve(rows);
        self.cost_usd.reserve(rows);
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
    problems
}

fn column<'b, T: 'static>(batch: &'b RecordBatch, name: &str) -> Result<&'b T, CorpusError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| CorpusError::Schema(format!("column `{name}` missing or of the wrong type")))
}

/// One record batch → rows. Fails on a schema mismatch or a null.
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<CorpusRow>, CorpusError> {
    let problems = schema_problems(batch.schema().as_ref());
    if !problems.is_empty() {
        return Err(CorpusError::Schema(problems.join("; ")));
    }
    let st = |n| column::<StringArray>(batch, n);
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
    let resolved = column::<BooleanArray>(batch, "resolved")?;
    let attempts = column::<Int32Array>(batch, "attempts")?;
    let steps = column::<Int32Array>(batch, "steps")?;
    let sample = column::<Int32Array>(batch, "sample")?;
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
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let created_at = DateTime::<Utc>::from_timestamp_micros(created.value(i))
            .ok_or_else(|| CorpusError::Schema(format!("row {i}: created_at out of range")))?;
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
        });
    }
    Ok(rows)
}
