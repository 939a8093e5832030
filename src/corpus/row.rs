//! One corpus row and its Arrow schema: the columns of DESIGN.md
//! ("Corpus (Parquet)") with their exact types, plus a few extra columns.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Float64Array, Float64Builder, Int32Array,
    Int32Builder, Int64Array, Int64Builder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
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

/// Required columns of DESIGN.md with their Arrow types, in order.
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

/// Rows → one record batch.
pub fn to_batch(rows: &[CorpusRow]) -> Result<RecordBatch, CorpusError> {
    let n = rows.len();
    let strings = |f: &dyn Fn(&CorpusRow) -> &str| -> ArrayRef {
        let bytes: usize = rows.iter().map(|r| f(r).len()).sum();
        let mut b = StringBuilder::with_capacity(n, bytes);
        for r in rows {
            b.append_value(f(r));
        }
        Arc::new(b.finish())
    };
    let i32s = |f: &dyn Fn(&CorpusRow) -> i32| -> ArrayRef {
        let mut b = Int32Builder::with_capacity(n);
        rows.iter().for_each(|r| b.append_value(f(r)));
        Arc::new(b.finish())
    };
    let i64s = |f: &dyn Fn(&CorpusRow) -> i64| -> ArrayRef {
        let mut b = Int64Builder::with_capacity(n);
        rows.iter().for_each(|r| b.append_value(f(r)));
        Arc::new(b.finish())
    };
    let f64s = |f: &dyn Fn(&CorpusRow) -> f64| -> ArrayRef {
        let mut b = Float64Builder::with_capacity(n);
        rows.iter().for_each(|r| b.append_value(f(r)));
        Arc::new(b.finish())
    };
    let mut resolved = BooleanBuilder::with_capacity(n);
    rows.iter().for_each(|r| resolved.append_value(r.resolved));
    let mut created = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    rows.iter()
        .for_each(|r| created.append_value(r.created_at.timestamp_micros()));
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| &r.trajectory_id),
        strings(&|r| &r.instance_id),
        strings(&|r| &r.dataset),
        strings(&|r| &r.repo),
        strings(&|r| &r.base_commit),
        strings(&|r| &r.model),
        Arc::new(resolved.finish()),
        i32s(&|r| r.attempts),
        i32s(&|r| r.steps),
        i64s(&|r| r.prompt_tokens),
        i64s(&|r| r.completion_tokens),
        f64s(&|r| r.wall_s),
        strings(&|r| &r.patch),
        strings(&|r| &r.patch_sha256),
        strings(&|r| &r.messages),
        strings(&|r| &r.tools),
        strings(&|r| &r.provenance),
        strings(&|r| &r.license),
        Arc::new(created.finish()),
        strings(&|r| &r.engine_version),
        i32s(&|r| r.sample),
        strings(&|r| &r.verified_by),
        f64s(&|r| r.cost_usd),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| CorpusError::Arrow(e.to_string()))
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
