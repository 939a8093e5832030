//! Segments and the manifest: the on-disk layout of a corpus and its
//! crash-safe writer.
//!
//! Rows are encoded into row groups as they are inserted (see
//! `GroupEncoder`). Write protocol, per flush: write the encoded row
//! groups to `.part-NNNNNN.parquet.tmp` (hashing the bytes as they go),
//! fsync, rename to `part-NNNNNN.parquet`, then write the new manifest to
//! `.manifest.json.tmp`, fsync and rename it over `manifest.json`. The
//! manifest is the truth: a segment it does not list (a crash between the
//! two renames) is removed when the corpus is next opened for writing, so a
//! crash loses at most the rows that were in flight.

use std::collections::{BTreeMap, HashSet};

use rustc_hash::{FxHashMap, FxHashSet};
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use arrow::array::RecordBatch;

use super::row::{self, BatchBuilder, CorpusRow, Sealed, Split};
use super::{CorpusError, patch_norm_sha256, patch_sha256};

/// Name of the manifest file.
pub const MANIFEST: &str = "manifest.json";
/// Value of [`Manifest::format`].
pub const FORMAT: &str = "airgate-corpus";
const LOCK: &str = ".lock";

/// One immutable segment as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// File name inside the corpus directory (`part-NNNNNN.parquet`).
    pub file: String,
    /// Rows in the segment.
    pub rows: u64,
    /// sha256 of the file's bytes.
    pub sha256: String,
    /// File size.
    pub bytes: u64,
    /// When the segment was written.
    pub created_at: DateTime<Utc>,
}

/// `manifest.json`: the list of segments that make up the corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpusManifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Layout version.
    pub version: u32,
    /// Total rows over all segments.
    pub rows: u64,
    /// Sequence number of the next segment.
    pub next_seq: u64,
    /// Segments in write order.
    pub segments: Vec<SegmentInfo>,
    /// Column names and Arrow types, for readers without airgate.
    pub columns: Vec<(String, String)>,
    /// Last update.
    pub updated_at: DateTime<Utc>,
    /// Which split this directory holds (`verified` when absent).
    #[serde(default)]
    pub split: Split,
    /// Per instance whose samples are all done: how many ran and how many
    /// verified (`solve_rate`). Written by `factory run` on the verified
    /// split; `corpus select` filters on it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instances: BTreeMap<String, Difficulty>,
    /// sha256 of the public-sources allowlist the rows were admitted under.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub allowlist_sha256: String,
    /// The rule `corpus select` used to make this corpus (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<serde_json::Value>,
}

/// An instance's difficulty as the factory measured it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Difficulty {
    /// Episodes that ran to a verdict (not skipped by a cap, not a broken instance).
    pub samples_run: u32,
    /// Of those, episodes whose patch verified (kept, duplicate or capped after the run).
    pub verified: u32,
    /// `verified / samples_run` (0 when none ran).
    pub solve_rate: f64,
}

impl Difficulty {
    /// From the two counts.
    pub fn new(samples_run: u32, verified: u32) -> Self {
        let solve_rate = if samples_run == 0 {
            0.0
        } else {
            f64::from(verified) / f64::from(samples_run)
        };
        Self {
            samples_run,
            verified,
            solve_rate,
        }
    }
}

/// The directory of `split` inside a corpus directory: the corpus itself
/// for `verified`, `rejected/` for the rejected split.
pub fn split_dir(dir: &Path, split: Split) -> PathBuf {
    match split {
        Split::Verified => dir.to_path_buf(),
        Split::Rejected => dir.join("rejected"),
    }
}

/// Reads every row of `split` of the corpus at `dir` (an absent rejected
/// split reads as empty).
pub fn read_split(
    dir: &Path,
    split: Split,
) -> Result<(CorpusManifest, Vec<CorpusRow>), CorpusError> {
    let d = split_dir(dir, split);
    if split == Split::Rejected && !CorpusManifest::exists(&d) {
        if !CorpusManifest::exists(dir) {
            return read_corpus(dir);
        }
        return Ok((CorpusManifest::for_split(Split::Rejected), vec![]));
    }
    read_corpus(&d)
}

impl Default for CorpusManifest {
    fn default() -> Self {
        Self::for_split(Split::Verified)
    }
}

impl CorpusManifest {
    /// An empty manifest of `split`.
    pub fn for_split(split: Split) -> Self {
        Self {
            format: FORMAT.into(),
            version: 2,
            rows: 0,
            next_seq: 1,
            segments: vec![],
            columns: row::schema_for(split)
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string()))
                .collect(),
            updated_at: Utc::now(),
            split,
            instances: BTreeMap::new(),
            allowlist_sha256: String::new(),
            selection: None,
        }
    }

    /// Reads `dir/manifest.json`; an absent manifest is an empty corpus.
    pub fn load(dir: &Path) -> Result<Self, CorpusError> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(CorpusError::io(format!("reading {}", path.display()), e)),
        };
        let m: CorpusManifest = serde_json::from_slice(&text)
            .map_err(|e| CorpusError::Manifest(format!("{}: {e}", path.display())))?;
        if m.format != FORMAT {
            return Err(CorpusError::Manifest(format!(
                "{}: format is `{}`, expected `{FORMAT}`",
                path.display(),
                m.format
            )));
        }
        Ok(m)
    }

    /// Whether `dir` holds a manifest at all.
    pub fn exists(dir: &Path) -> bool {
        dir.join(MANIFEST).is_file()
    }

    /// Atomically replaces `dir/manifest.json` (temp file, fsync, rename).
    pub fn save(&self, dir: &Path) -> Result<(), CorpusError> {
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| CorpusError::Manifest(e.to_string()))?;
        write_atomic(dir, MANIFEST, &json)
    }
}

/// Writes `bytes` to `dir/name` through a temporary file, fsync and rename.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), CorpusError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let dst = dir.join(name);
    let mut f = File::create(&tmp)
        .map_err(|e| CorpusError::io(format!("creating {}", tmp.display()), e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| CorpusError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, &dst)
        .map_err(|e| CorpusError::io(format!("renaming to {}", dst.display()), e))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), CorpusError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CorpusError::io(format!("fsync {}", dir.display()), e))
}

/// A `Write` that hashes and counts what passes through.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Rows per row group (a multiple of [`row::EXPECTED_ROWS`]).
const ROW_GROUP_ROWS: usize = 16_384;

/// Columns whose values are (nearly) all distinct: dictionary encoding would
/// hash every value only to give up, and page-level min/max of long strings
/// is useless to readers, so they get plain encoding and chunk statistics.
const UNIQUE_COLUMNS: [&str; 4] = ["trajectory_id", "patch", "patch_sha256", "messages"];

/// The writer settings of every segment: zstd level 3, 16384-row groups.
fn writer_properties() -> Result<WriterProperties, CorpusError> {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).map_err(|e| CorpusError::Arrow(e.to_string()))?,
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("airgate {}", crate::ENGINE_VERSION));
    for c in UNIQUE_COLUMNS {
        let path = ColumnPath::from(c);
        b = b
            .set_column_dictionary_enabled(path.clone(), false)
            .set_column_statistics_enabled(path, EnabledStatistics::Chunk);
    }
    Ok(b.build())
}

/// Encodes rows as they arrive, then splices the row groups into a file.
///
/// Encoding a row group does not depend on where it lands in the file, so
/// the writer keeps one set of open column writers for the current row
/// group and feeds them a small batch at a time ([`row::EXPECTED_ROWS`]
/// rows), each batch's columns in parallel on the rayon pool, while the
/// next batch fills. A batch's buffers are reused as soon as it is encoded,
/// so the raw rows touch a few MB of memory instead of the whole segment's
/// worth. A full group ([`ROW_GROUP_ROWS`] rows) is closed into compressed
/// column chunks; a flush only writes those after the header. The file
/// carries the Arrow schema, as `ArrowWriter` would write it.
struct GroupEncoder {
    schema: arrow::datatypes::SchemaRef,
    parquet_schema: parquet::schema::types::SchemaDescriptor,
    props: Arc<WriterProperties>,
    factory: parquet::arrow::arrow_writer::ArrowRowGroupWriterFactory,
}

/// The row group being encoded: its column writers and rows so far.
struct OpenGroup {
    writers: Vec<parquet::arrow::arrow_writer::ArrowColumnWriter>,
    rows: usize,
}

/// What encoding a batch left: the group still open, or closed.
enum GroupState {
    Open(OpenGroup),
    Closed(EncodedGroup),
}

/// What an encoding job sends back: the group's state and the batch, whose
/// buffers the writer takes back.
type JobResult = (Result<GroupState, CorpusError>, Sealed);

/// One encoded row group: its compressed column chunks, ready to splice.
struct EncodedGroup {
    rows: usize,
    chunks: Vec<parquet::arrow::arrow_writer::ArrowColumnChunk>,
}

fn parquet_err(e: parquet::errors::ParquetError) -> CorpusError {
    CorpusError::Arrow(e.to_string())
}

impl GroupEncoder {
    fn new(split: Split) -> Result<Self, CorpusError> {
        use parquet::arrow::ArrowSchemaConverter;
        use parquet::arrow::arrow_writer::ArrowRowGroupWriterFactory;
        use parquet::file::writer::SerializedFileWriter;
        let schema = row::schema_for(split);
        let mut props = writer_properties()?;
        let parquet_schema = ArrowSchemaConverter::new()
            .with_coerce_types(props.coerce_types())
            .convert(&schema)
            .map_err(parquet_err)?;
        parquet::arrow::add_encoded_arrow_schema_to_metadata(&schema, &mut props);
        let props = Arc::new(props);
        // The factory only borrows the schema and settings of a file writer;
        // the real file is opened at flush time with the same ones.
        let probe = SerializedFileWriter::new(
            std::io::sink(),
            parquet_schema.root_schema_ptr(),
            props.clone(),
        )
        .map_err(parquet_err)?;
        let factory = ArrowRowGroupWriterFactory::new(&probe, schema.clone());
        Ok(Self {
            schema,
            parquet_schema,
            props,
            factory,
        })
    }

    /// Column writers for a new row group.
    fn open_group(&self) -> Result<OpenGroup, CorpusError> {
        Ok(OpenGroup {
            writers: self.factory.create_column_writers(0).map_err(parquet_err)?,
            rows: 0,
        })
    }

    /// Encodes `batch` into the open group, its columns in parallel; closes
    /// the group into chunks when `close` is set.
    fn write(
        &self,
        mut group: OpenGroup,
        batch: &RecordBatch,
        close: bool,
    ) -> Result<GroupState, CorpusError> {
        use parquet::arrow::arrow_writer::compute_leaves;
        use rayon::prelude::*;
        let mut leaves = Vec::with_capacity(self.schema.fields().len());
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, column).map_err(parquet_err)?);
        }
        if group.writers.len() != leaves.len() {
            return Err(CorpusError::Arrow(format!(
                "{} column writers for {} leaves",
                group.writers.len(),
                leaves.len()
            )));
        }
        group
            .writers
            .par_iter_mut()
            .zip(leaves.into_par_iter())
            .try_for_each(|(w, leaf)| w.write(&leaf))
            .map_err(parquet_err)?;
        group.rows += batch.num_rows();
        if close {
            Self::close(group).map(GroupState::Closed)
        } else {
            Ok(GroupState::Open(group))
        }
    }

    /// Ends a row group: its compressed column chunks, ready to splice.
    fn close(group: OpenGroup) -> Result<EncodedGroup, CorpusError> {
        use rayon::prelude::*;
        let chunks = group
            .writers
            .into_par_iter()
            .map(|w| w.close().map_err(parquet_err))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EncodedGroup {
            rows: group.rows,
            chunks,
        })
    }

    /// Writes the groups as one Parquet file into `out`; returns (sha256,
    /// bytes, out).
    fn write_file<W: Write + Send>(
        &self,
        groups: Vec<EncodedGroup>,
        out: W,
    ) -> Result<(String, u64, W), CorpusError> {
        use parquet::file::writer::SerializedFileWriter;
        let hw = HashingWriter {
            inner: out,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let mut writer = SerializedFileWriter::new(
            hw,
            self.parquet_schema.root_schema_ptr(),
            self.props.clone(),
        )
        .map_err(parquet_err)?;
        for group in groups {
            let mut rg = writer.next_row_group().map_err(parquet_err)?;
            for chunk in group.chunks {
                chunk.append_to_row_group(&mut rg).map_err(parquet_err)?;
            }
            rg.close().map_err(parquet_err)?;
        }
        let hw = writer.into_inner().map_err(parquet_err)?;
        Ok((hex::encode(hw.hasher.finalize()), hw.bytes, hw.inner))
    }
}

/// Reads every row of one segment file.
pub fn read_segment(path: &Path) -> Result<Vec<CorpusRow>, CorpusError> {
    let file =
        File::open(path).map_err(|e| CorpusError::io(format!("opening {}", path.display()), e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(8192).build())
        .map_err(|e| CorpusError::Arrow(format!("{}: {e}", path.display())))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| CorpusError::Arrow(format!("{}: {e}", path.display())))?;
        rows.extend(row::from_batch(&batch)?);
    }
    Ok(rows)
}

/// The dedup-relevant columns of one segment: (trajectory_id, instance_id,
/// patch_norm_sha256, model, sample).
type Keys = (String, String, String, String, i32);

fn read_keys(path: &Path) -> Result<Vec<Keys>, CorpusError> {
    use arrow::array::{Array, Int32Array, StringArray};
    let file =
        File::open(path).map_err(|e| CorpusError::io(format!("opening {}", path.display()), e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| CorpusError::Arrow(format!("{}: {e}", path.display())))?;
    let mask = ProjectionMask::columns(
        builder.parquet_schema(),
        [
            "trajectory_id",
            "instance_id",
            "patch_norm_sha256",
            "model",
            "sample",
        ],
    );
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| CorpusError::Arrow(format!("{}: {e}", path.display())))?;
    let mut keys = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| CorpusError::Arrow(format!("{}: {e}", path.display())))?;
        let s = |n: &str| {
            batch
                .column_by_name(n)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| CorpusError::Schema(format!("{}: column `{n}`", path.display())))
        };
        let (tid, iid, psha, model) = (
            s("trajectory_id")?,
            s("instance_id")?,
            s("patch_norm_sha256")?,
            s("model")?,
        );
        let sample = batch
            .column_by_name("sample")
            .and_then(|c| c.as_any().downcast_ref::<Int32Array>())
            .ok_or_else(|| CorpusError::Schema(format!("{}: column `sample`", path.display())))?;
        for i in 0..batch.num_rows() {
            if tid.is_null(i) || iid.is_null(i) || psha.is_null(i) || model.is_null(i) {
                return Err(CorpusError::Schema(format!("{}: null key", path.display())));
            }
            keys.push((
                tid.value(i).to_string(),
                iid.value(i).to_string(),
                psha.value(i).to_string(),
                model.value(i).to_string(),
                sample.value(i),
            ));
        }
    }
    Ok(keys)
}

/// Reads the manifest and every row it lists, in order.
pub fn read_corpus(dir: &Path) -> Result<(CorpusManifest, Vec<CorpusRow>), CorpusError> {
    if !CorpusManifest::exists(dir) {
        return Err(CorpusError::Manifest(format!(
            "{} has no {MANIFEST}: is it a corpus directory?",
            dir.display()
        )));
    }
    let manifest = CorpusManifest::load(dir)?;
    let mut rows = Vec::with_capacity(manifest.rows as usize);
    for seg in &manifest.segments {
        rows.extend(read_segment(&dir.join(&seg.file))?);
    }
    Ok((manifest, rows))
}

/// Maps each distinct string to a small dense index, so the dedup sets
/// hold integers instead of a clone of the string per row.
#[derive(Debug, Default)]
struct Interner(FxHashMap<String, u32>);

impl Interner {
    fn get(&self, s: &str) -> Option<u32> {
        self.0.get(s).copied()
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(i) = self.get(s) {
            return i;
        }
        let i = self.0.len() as u32;
        self.0.insert(s.to_string(), i);
        i
    }
}

/// What [`CorpusWriter::insert`] did with a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    /// Buffered; durable after the next flush.
    Added,
    /// Dropped: the same normalised patch for this instance (or the same
    /// trajectory id) is already in the corpus.
    Duplicate,
}

/// The single writer of a corpus directory (an exclusive `flock` guards it).
pub struct CorpusWriter {
    dir: PathBuf,
    split: Split,
    /// The manifest has changes (instance difficulties) not yet saved.
    dirty: bool,
    manifest: CorpusManifest,
    buffer: BatchBuilder,
    // FxHash: the keys are our own ids and hashes, not attacker input, and
    // SipHash was a visible share of inserting 100k rows. Instance ids and
    // models are interned once; the other sets hold small integers.
    ids: FxHashSet<String>,
    instances: Interner,
    models: Interner,
    /// Per interned instance: its kept rows and their patch hashes.
    per_instance: Vec<(u32, FxHashSet<String>)>,
    encoder: Arc<GroupEncoder>,
    /// Encoded row groups of rows not yet flushed.
    encoded: Vec<EncodedGroup>,
    /// The open row group, when no batch of it is being encoded.
    group: Option<OpenGroup>,
    /// Rows sealed into the current row group (encoded or in flight).
    group_rows: usize,
    /// The batch being encoded on the rayon pool while the next one fills
    /// (at most one).
    in_flight: Option<std::sync::mpsc::Receiver<JobResult>>,
    /// Empty column buffers taken back from an encoded batch, for the next.
    spare: Option<BatchBuilder>,
    /// Set when an encode or a flush failed: the rows in flight are gone,
    /// so the writer refuses further work until the corpus is reopened.
    poisoned: Option<String>,
    samples: FxHashSet<(u32, u32, i32)>,
    _lock: File,
}

impl std::fmt::Debug for CorpusWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorpusWriter")
            .field("dir", &self.dir)
            .field("rows", &self.manifest.rows)
            .field("buffered", &self.buffered())
            .finish()
    }
}

impl CorpusWriter {
    /// Opens (or creates) a corpus for appending: takes the lock, removes
    /// temporary files and segments the manifest does not list (left by a
    /// crash), and loads the dedup keys of every listed segment.
    pub fn open(dir: &Path) -> Result<Self, CorpusError> {
        Self::open_split(dir, Split::Verified)
    }

    /// Opens (or creates) the `split` of the corpus whose own directory is
    /// `dir` (for the rejected split, `CORPUS/rejected`; see [`split_dir`]).
    pub fn open_split(dir: &Path, split: Split) -> Result<Self, CorpusError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| CorpusError::io(format!("creating {}", dir.display()), e))?;
        let lock_path = dir.join(LOCK);
        let lock = File::create(&lock_path)
            .map_err(|e| CorpusError::io(format!("creating {}", lock_path.display()), e))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(CorpusError::Locked(dir.display().to_string()));
        }
        let manifest = if CorpusManifest::exists(dir) {
            CorpusManifest::load(dir)?
        } else {
            CorpusManifest::for_split(split)
        };
        if manifest.split != split {
            return Err(CorpusError::Manifest(format!(
                "{} holds the {} split, not the {} split",
                dir.display(),
                manifest.split.as_str(),
                split.as_str()
            )));
        }
        let listed: HashSet<&str> = manifest.segments.iter().map(|s| s.file.as_str()).collect();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| CorpusError::io(format!("listing {}", dir.display()), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale_tmp = name.starts_with(".part-") && name.ends_with(".tmp");
            let orphan = name.starts_with("part-")
                && name.ends_with(".parquet")
                && !listed.contains(name.as_str());
            if stale_tmp || orphan {
                tracing::warn!(file = %name, "removing a segment the manifest does not list (left by an interrupted write)");
                std::fs::remove_file(entry.path())
                    .map_err(|e| CorpusError::io(format!("removing {name}"), e))?;
            }
        }
        let mut w = Self {
            dir: dir.to_path_buf(),
            split,
            dirty: false,
            manifest,
            buffer: BatchBuilder::for_split(split),
            ids: FxHashSet::default(),
            instances: Interner::default(),
            models: Interner::default(),
            per_instance: Vec::new(),
            encoder: Arc::new(GroupEncoder::new(split)?),
            encoded: Vec::new(),
            group: None,
            group_rows: 0,
            in_flight: None,
            spare: None,
            poisoned: None,
            samples: FxHashSet::default(),
            _lock: lock,
        };
        for seg in w.manifest.segments.clone() {
            for (tid, iid, psha, model, sample) in read_keys(&dir.join(&seg.file))? {
                let i = w.instance_slot(&iid);
                w.remember(tid, i, psha, &model, sample);
            }
        }
        Ok(w)
    }

    /// The dense index of `iid`, with its per-instance slot in place.
    fn instance_slot(&mut self, iid: &str) -> u32 {
        let i = self.instances.intern(iid);
        if self.per_instance.len() <= i as usize {
            self.per_instance
                .resize_with(i as usize + 1, Default::default);
        }
        i
    }

    fn remember(&mut self, tid: String, i: u32, psha: String, model: &str, sample: i32) {
        self.ids.insert(tid);
        let slot = &mut self.per_instance[i as usize];
        slot.0 += 1;
        slot.1.insert(psha);
        let m = self.models.intern(model);
        self.samples.insert((i, m, sample));
    }

    /// The corpus directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest as of the last flush.
    pub fn manifest(&self) -> &CorpusManifest {
        &self.manifest
    }

    /// The split this writer appends to.
    pub fn split(&self) -> Split {
        self.split
    }

    /// Records the allowlist's sha256 (saved with the next flush).
    pub fn set_allowlist_sha256(&mut self, sha: &str) {
        if self.manifest.allowlist_sha256 != sha {
            self.manifest.allowlist_sha256 = sha.to_string();
            self.dirty = true;
        }
    }

    /// Records the selection rule of `corpus select` (saved with the next flush).
    pub fn set_selection(&mut self, rule: serde_json::Value) {
        self.manifest.selection = Some(rule);
        self.dirty = true;
    }

    /// Records an instance's difficulty; saved with the next flush (or
    /// [`Self::finish`]).
    pub fn set_difficulty(&mut self, instance_id: &str, d: Difficulty) {
        if self.manifest.instances.get(instance_id) != Some(&d) {
            self.manifest.instances.insert(instance_id.to_string(), d);
            self.dirty = true;
        }
    }

    /// Rows kept (durable and buffered) for `instance_id`.
    pub fn kept_for(&self, instance_id: &str) -> u32 {
        self.instances
            .get(instance_id)
            .and_then(|i| self.per_instance.get(i as usize))
            .map_or(0, |slot| slot.0)
    }

    /// Whether a row for (`instance_id`, `model`, `sample`) is in the corpus or buffer.
    pub fn has_sample(&self, instance_id: &str, model: &str, sample: i32) -> bool {
        match (self.instances.get(instance_id), self.models.get(model)) {
            (Some(i), Some(m)) => self.samples.contains(&(i, m, sample)),
            _ => false,
        }
    }

    /// Rows not yet flushed.
    pub fn buffered(&self) -> usize {
        self.buffer.len() + self.group_rows + self.encoded.iter().map(|g| g.rows).sum::<usize>()
    }

    /// Total rows (durable and buffered).
    pub fn total_rows(&self) -> u64 {
        self.manifest.rows + self.buffered() as u64
    }

    /// Validates a row and buffers it unless it duplicates one already kept.
    pub fn insert(&mut self, row: CorpusRow) -> Result<Insert, CorpusError> {
        self.check_poisoned()?;
        if row.provenance != "public" {
            return Err(CorpusError::InvalidRow(format!(
                "{}: provenance is `{}`; only public data may enter the corpus",
                row.instance_id, row.provenance
            )));
        }
        if row.license.trim().is_empty() {
            return Err(CorpusError::InvalidRow(format!(
                "{}: no license recorded",
                row.instance_id
            )));
        }
        if row.patch_sha256 != patch_sha256(&row.patch) {
            return Err(CorpusError::InvalidRow(format!(
                "{}: patch_sha256 does not match the patch",
                row.instance_id
            )));
        }
        if row.patch_norm_sha256 != patch_norm_sha256(&row.patch) {
            return Err(CorpusError::InvalidRow(format!(
                "{}: patch_norm_sha256 does not match the normalised patch",
                row.instance_id
            )));
        }
        match self.split {
            Split::Verified if !row.resolved || !row.reason.is_empty() => {
                return Err(CorpusError::InvalidRow(format!(
                    "{}: an unresolved or rejected row (reason `{}`) cannot enter the verified split",
                    row.instance_id, row.reason
                )));
            }
            Split::Rejected if row.reason.trim().is_empty() => {
                return Err(CorpusError::InvalidRow(format!(
                    "{}: a rejected row needs a reason",
                    row.instance_id
                )));
            }
            _ => {}
        }
        if self.ids.contains(&row.trajectory_id) {
            return Ok(Insert::Duplicate);
        }
        let i = self.instance_slot(&row.instance_id);
        if self.split == Split::Verified
            && self.per_instance[i as usize]
                .1
                .contains(&row.patch_norm_sha256)
        {
            return Ok(Insert::Duplicate);
        }
        if !self.buffer.fits(&row) {
            self.seal(false)?;
        }
        self.buffer.append(&row);
        let CorpusRow {
            trajectory_id,
            patch_norm_sha256,
            model,
            sample,
            ..
        } = row;
        self.remember(trajectory_id, i, patch_norm_sha256, &model, sample);
        if self.buffer.len() >= self.batch_limit() {
            self.seal(false)?;
        }
        Ok(Insert::Added)
    }

    fn check_poisoned(&self) -> Result<(), CorpusError> {
        match &self.poisoned {
            None => Ok(()),
            Some(why) => Err(CorpusError::Poisoned(format!(
                "{}: an earlier write failed ({why})",
                self.dir.display()
            ))),
        }
    }

    fn poison<T>(&mut self, r: Result<T, CorpusError>) -> Result<T, CorpusError> {
        if let Err(e) = &r {
            self.poisoned = Some(e.to_string());
        }
        r
    }

    /// Rows the builder may take before it must be sealed: a batch never
    /// straddles two row groups.
    fn batch_limit(&self) -> usize {
        // A full group is being closed in flight: the next batch starts a new one.
        let used = if self.group_rows >= ROW_GROUP_ROWS {
            0
        } else {
            self.group_rows
        };
        row::EXPECTED_ROWS.min(ROW_GROUP_ROWS - used)
    }

    /// Hands the builder's rows to the rayon pool to be encoded into the
    /// open row group (closing it when it is full, or when `close_group`),
    /// while the builder goes on with the buffers of the batch before.
    fn seal(&mut self, close_group: bool) -> Result<(), CorpusError> {
        self.wait_in_flight()?;
        let sealed = self.buffer.seal();
        let sealed = self.poison(sealed)?;
        if let Some(spare) = self.spare.take() {
            self.buffer = spare;
        }
        let group = match self.group.take() {
            Some(g) => g,
            None => {
                let g = self.encoder.open_group();
                self.poison(g)?
            }
        };
        self.group_rows += sealed.batch.num_rows();
        let close = close_group || self.group_rows >= ROW_GROUP_ROWS;
        let (tx, rx) = std::sync::mpsc::channel();
        let encoder = self.encoder.clone();
        rayon::spawn(move || {
            let state = encoder.write(group, &sealed.batch, close);
            let _ = tx.send((state, sealed));
        });
        self.in_flight = Some(rx);
        Ok(())
    }

    /// Waits for the batch being encoded and takes its buffers back; keeps
    /// the group when it was closed.
    fn wait_in_flight(&mut self) -> Result<(), CorpusError> {
        let Some(rx) = self.in_flight.take() else {
            return Ok(());
        };
        let result = rx
            .recv()
            .map_err(|_| CorpusError::Arrow("the encoding thread died".into()));
        let (state, sealed) = self.poison(result)?;
        let mut spare = BatchBuilder::for_split(self.split);
        spare.reclaim(sealed);
        self.spare = Some(spare);
        match self.poison(state)? {
            GroupState::Open(g) => self.group = Some(g),
            GroupState::Closed(done) => self.keep(done),
        }
        Ok(())
    }

    /// Keeps a closed row group for the next flush.
    fn keep(&mut self, done: EncodedGroup) {
        self.group_rows -= done.rows;
        self.encoded.push(done);
    }

    /// Writes the buffered rows as one new segment and publishes it in the
    /// manifest. Returns the segment, or `None` when nothing was buffered.
    pub fn flush(&mut self) -> Result<Option<SegmentInfo>, CorpusError> {
        self.check_poisoned()?;
        if !self.buffer.is_empty() {
            self.seal(true)?;
        }
        self.wait_in_flight()?;
        if let Some(g) = self.group.take() {
            // The last batch left its group open (it ended on a batch
            // boundary): close it as it is.
            let done = GroupEncoder::close(g);
            let done = self.poison(done)?;
            self.keep(done);
        }
        if self.encoded.is_empty() {
            if self.dirty {
                self.manifest.updated_at = Utc::now();
                let r = self.manifest.save(&self.dir);
                self.poison(r)?;
                self.dirty = false;
            }
            return Ok(None);
        }
        let r = self.publish();
        self.poison(r).map(Some)
    }

    /// Writes the encoded groups as the next segment and publishes it.
    fn publish(&mut self) -> Result<SegmentInfo, CorpusError> {
        let groups = std::mem::take(&mut self.encoded);
        let rows: usize = groups.iter().map(|g| g.rows).sum();
        let seq = self.manifest.next_seq;
        let name = format!("part-{seq:06}.parquet");
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp)
            .map_err(|e| CorpusError::io(format!("creating {}", tmp.display()), e))?;
        let (sha256, bytes, file) = self.encoder.write_file(groups, file)?;
        file.sync_all()
            .map_err(|e| CorpusError::io(format!("fsync {}", tmp.display()), e))?;
        drop(file);
        let dst = self.dir.join(&name);
        std::fs::rename(&tmp, &dst)
            .map_err(|e| CorpusError::io(format!("renaming to {}", dst.display()), e))?;
        sync_dir(&self.dir)?;
        let info = SegmentInfo {
            file: name,
            rows: rows as u64,
            sha256,
            bytes,
            created_at: Utc::now(),
        };
        let mut next = self.manifest.clone();
        next.segments.push(info.clone());
        next.rows += info.rows;
        next.next_seq = seq + 1;
        next.updated_at = Utc::now();
        next.save(&self.dir)?;
        self.manifest = next;
        self.dirty = false;
        Ok(info)
    }

    /// Writes the manifest even when empty, so a finished run with no kept
    /// rows is still a readable (empty) corpus.
    pub fn finish(mut self) -> Result<CorpusManifest, CorpusError> {
        self.flush()?;
        if self.dirty || !CorpusManifest::exists(&self.dir) {
            self.manifest.updated_at = Utc::now();
            self.manifest.save(&self.dir)?;
        }
        Ok(self.manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::tests::sample_row;

    #[test]
    fn write_read_roundtrip_and_dedup_across_reopen() {
        let d = tempfile::tempdir().unwrap();
        let mut w = CorpusWriter::open(d.path()).unwrap();
        assert_eq!(w.insert(sample_row("a", "p1\n", 0)).unwrap(), Insert::Added);
        assert_eq!(w.insert(sample_row("a", "p2\n", 1)).unwrap(), Insert::Added);
        // same normalised patch, same instance
        assert_eq!(
            w.insert(sample_row("a", "p1\r\n", 2)).unwrap(),
            Insert::Duplicate
        );
        // same patch, other instance: kept
        assert_eq!(w.insert(sample_row("b", "p1\n", 0)).unwrap(), Insert::Added);
        w.flush().unwrap();
        assert!(w.flush().unwrap().is_none());
        drop(w);
        // a second process cannot open while the first holds the lock
        let w1 = CorpusWriter::open(d.path()).unwrap();
        assert!(matches!(
            CorpusWriter::open(d.path()),
            Err(CorpusError::Locked(_))
        ));
        drop(w1);

        let mut w = CorpusWriter::open(d.path()).unwrap();
        assert_eq!(w.kept_for("a"), 2);
        assert!(w.has_sample("a", "m", 1));
        assert!(!w.has_sample("a", "other-model", 1));
        assert_eq!(
            w.insert(sample_row("b", "p1\n", 3)).unwrap(),
            Insert::Duplicate
        );
        assert_eq!(w.insert(sample_row("c", "p3\n", 0)).unwrap(), Insert::Added);
        w.finish().unwrap();

        let (m, rows) = read_corpus(d.path()).unwrap();
        assert_eq!(m.segments.len(), 2);
        assert_eq!(m.rows, 4);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0], sample_row("a", "p1\n", 0));
        assert_eq!(rows[3].instance_id, "c");
        for seg in &m.segments {
            let bytes = std::fs::read(d.path().join(&seg.file)).unwrap();
            assert_eq!(crate::corpus::sha256_hex(&bytes), seg.sha256);
            assert_eq!(bytes.len() as u64, seg.bytes);
        }
    }

    /// Rows arrive in batches that are encoded while the next fills; the
    /// row groups still come out at exactly ROW_GROUP_ROWS rows, every row
    /// comes back in order, and the counts are right at every point.
    #[test]
    fn many_rows_make_full_row_groups_in_order_across_flushes() {
        let d = tempfile::tempdir().unwrap();
        let mut w = CorpusWriter::open(d.path()).unwrap();
        let row = |i: usize| sample_row(&format!("i{}", i % 7), &format!("p{i}\n"), i as i32);
        for i in 0..5_000 {
            assert_eq!(w.insert(row(i)).unwrap(), Insert::Added);
        }
        assert_eq!(w.buffered(), 5_000);
        let first = w.flush().unwrap().unwrap();
        assert_eq!((first.rows, w.buffered()), (5_000, 0));
        let n = 2 * ROW_GROUP_ROWS + 100;
        for i in 5_000..5_000 + n {
            w.insert(row(i)).unwrap();
            assert_eq!(w.total_rows(), i as u64 + 1);
        }
        // a duplicate patch of a buffered row is still caught
        assert_eq!(w.insert(row(5_001)).unwrap(), Insert::Duplicate);
        w.finish().unwrap();
        let (m, rows) = read_corpus(d.path()).unwrap();
        assert_eq!(m.rows as usize, 5_000 + n);
        assert_eq!(m.segments.len(), 2);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r, &row(i), "row {i}");
        }
        let groups = |file: &str| -> Vec<i64> {
            let f = File::open(d.path().join(file)).unwrap();
            let meta = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
            meta.metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect()
        };
        assert_eq!(groups(&m.segments[0].file), [5_000]);
        let full = ROW_GROUP_ROWS as i64;
        assert_eq!(groups(&m.segments[1].file), [full, full, 100]);
    }

    #[test]
    fn orphan_segments_and_tmp_files_are_removed_on_open() {
        let d = tempfile::tempdir().unwrap();
        let mut w = CorpusWriter::open(d.path()).unwrap();
        w.insert(sample_row("a", "p1\n", 0)).unwrap();
        w.finish().unwrap();
        std::fs::write(d.path().join("part-000009.parquet"), b"half").unwrap();
        std::fs::write(d.path().join(".part-000010.parquet.tmp"), b"half").unwrap();
        let w = CorpusWriter::open(d.path()).unwrap();
        assert_eq!(w.total_rows(), 1);
        assert!(!d.path().join("part-000009.parquet").exists());
        assert!(!d.path().join(".part-000010.parquet.tmp").exists());
    }

    #[test]
    fn non_public_rows_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut w = CorpusWriter::open(d.path()).unwrap();
        let mut r = sample_row("a", "p\n", 0);
        r.provenance = "customer".into();
        assert!(w.insert(r).is_err());
        let mut r = sample_row("a", "p\n", 0);
        r.patch_sha256 = "0".repeat(64);
        assert!(w.insert(r).is_err());
    }
}
