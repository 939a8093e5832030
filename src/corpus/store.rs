//! Segments and the manifest: the on-disk layout of a corpus and its
//! crash-safe writer.
//!
//! Write protocol, per flush: encode the buffered rows to
//! `.part-NNNNNN.parquet.tmp` (hashing the bytes as they are written),
//! fsync, rename to `part-NNNNNN.parquet`, then write the new manifest to
//! `.manifest.json.tmp`, fsync and rename it over `manifest.json`. The
//! manifest is the truth: a segment it does not list (a crash between the
//! two renames) is removed when the corpus is next opened for writing, so a
//! crash loses at most the rows that were in flight.

use std::collections::HashSet;

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

use super::row::{self, CorpusRow};
use super::{CorpusError, patch_sha256};

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
pub struct Manifest {
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
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            format: FORMAT.into(),
            version: 1,
            rows: 0,
            next_seq: 1,
            segments: vec![],
            columns: row::schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string()))
                .collect(),
            updated_at: Utc::now(),
        }
    }
}

impl Manifest {
    /// Reads `dir/manifest.json`; an absent manifest is an empty corpus.
    pub fn load(dir: &Path) -> Result<Self, CorpusError> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(CorpusError::io(format!("reading {}", path.display()), e)),
        };
        let m: Manifest = serde_json::from_slice(&text)
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

/// Rows per row group (and per Arrow batch).
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

/// Encodes rows as one zstd Parquet file into `out`; returns (sha256, bytes).
///
/// Every (row group, column) chunk is encoded and compressed in parallel on
/// the rayon pool; the chunks are then spliced into the file in order, so
/// the bytes are the same as a serial write. The file carries the Arrow
/// schema, as `ArrowWriter` would write it.
fn encode_segment<W: Write + Send>(
    rows: &[CorpusRow],
    out: W,
) -> Result<(String, u64, W), CorpusError> {
    use parquet::arrow::ArrowSchemaConverter;
    use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
    use parquet::file::writer::SerializedFileWriter;
    use rayon::prelude::*;

    let arrow_err = |e: parquet::errors::ParquetError| CorpusError::Arrow(e.to_string());
    let schema = row::schema();
    let mut props = writer_properties()?;
    let parquet_schema = ArrowSchemaConverter::new()
        .with_coerce_types(props.coerce_types())
        .convert(&schema)
        .map_err(arrow_err)?;
    parquet::arrow::add_encoded_arrow_schema_to_metadata(&schema, &mut props);
    let hw = HashingWriter {
        inner: out,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let mut writer =
        SerializedFileWriter::new(hw, parquet_schema.root_schema_ptr(), Arc::new(props))
            .map_err(arrow_err)?;
    let factory = ArrowRowGroupWriterFactory::new(&writer, schema.clone());
    let groups: Vec<&[CorpusRow]> = rows.chunks(ROW_GROUP_ROWS).collect();
    let encoded = groups
        .par_iter()
        .enumerate()
        .map(|(index, chunk)| {
            let batch = row::to_batch(chunk)?;
            let mut leaves = Vec::with_capacity(schema.fields().len());
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                leaves.extend(compute_leaves(field, column).map_err(arrow_err)?);
            }
            let writers = factory.create_column_writers(index).map_err(arrow_err)?;
            if writers.len() != leaves.len() {
                return Err(CorpusError::Arrow(format!(
                    "{} column writers for {} leaves",
                    writers.len(),
                    leaves.len()
                )));
            }
            writers
                .into_par_iter()
                .zip(leaves.into_par_iter())
                .map(|(mut w, leaf)| {
                    w.write(&leaf).map_err(arrow_err)?;
                    w.close().map_err(arrow_err)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, CorpusError>>()?;
    for chunks in encoded {
        let mut group = writer.next_row_group().map_err(arrow_err)?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut group).map_err(arrow_err)?;
        }
        group.close().map_err(arrow_err)?;
    }
    let hw = writer.into_inner().map_err(arrow_err)?;
    Ok((hex::encode(hw.hasher.finalize()), hw.bytes, hw.inner))
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
/// patch_sha256, model, sample).
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
            "patch_sha256",
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
            s("patch_sha256")?,
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
pub fn read_corpus(dir: &Path) -> Result<(Manifest, Vec<CorpusRow>), CorpusError> {
    if !Manifest::exists(dir) {
        return Err(CorpusError::Manifest(format!(
            "{} has no {MANIFEST}: is it a corpus directory?",
            dir.display()
        )));
    }
    let manifest = Manifest::load(dir)?;
    let mut rows = Vec::with_capacity(manifest.rows as usize);
    for seg in &manifest.segments {
        rows.extend(read_segment(&dir.join(&seg.file))?);
    }
    Ok((manifest, rows))
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
    manifest: Manifest,
    buffer: Vec<CorpusRow>,
    // FxHash: the keys are our own ids and hashes, not attacker input, and
    // SipHash was a visible share of inserting 100k rows.
    ids: FxHashSet<String>,
    patches: FxHashSet<(String, String)>,
    per_instance: FxHashMap<String, u32>,
    samples: FxHashSet<(String, String, i32)>,
    _lock: File,
}

impl std::fmt::Debug for CorpusWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorpusWriter")
            .field("dir", &self.dir)
            .field("rows", &self.manifest.rows)
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

impl CorpusWriter {
    /// Opens (or creates) a corpus for appending: takes the lock, removes
    /// temporary files and segments the manifest does not list (left by a
    /// crash), and loads the dedup keys of every listed segment.
    pub fn open(dir: &Path) -> Result<Self, CorpusError> {
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
        let manifest = Manifest::load(dir)?;
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
            manifest,
            buffer: vec![],
            ids: FxHashSet::default(),
            patches: FxHashSet::default(),
            per_instance: FxHashMap::default(),
            samples: FxHashSet::default(),
            _lock: lock,
        };
        for seg in w.manifest.segments.clone() {
            for (tid, iid, psha, model, sample) in read_keys(&dir.join(&seg.file))? {
                w.remember(tid, iid, psha, model, sample);
            }
        }
        Ok(w)
    }

    fn remember(&mut self, tid: String, iid: String, psha: String, model: String, sample: i32) {
        self.ids.insert(tid);
        *self.per_instance.entry(iid.clone()).or_default() += 1;
        self.samples.insert((iid.clone(), model, sample));
        self.patches.insert((iid, psha));
    }

    /// The corpus directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest as of the last flush.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Rows kept (durable and buffered) for `instance_id`.
    pub fn kept_for(&self, instance_id: &str) -> u32 {
        self.per_instance.get(instance_id).copied().unwrap_or(0)
    }

    /// Whether a row for (`instance_id`, `model`, `sample`) is in the corpus or buffer.
    pub fn has_sample(&self, instance_id: &str, model: &str, sample: i32) -> bool {
        self.samples
            .contains(&(instance_id.to_string(), model.to_string(), sample))
    }

    /// Rows not yet flushed.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Total rows (durable and buffered).
    pub fn total_rows(&self) -> u64 {
        self.manifest.rows + self.buffer.len() as u64
    }

    /// Validates a row and buffers it unless it duplicates one already kept.
    pub fn insert(&mut self, row: CorpusRow) -> Result<Insert, CorpusError> {
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
        let key = (row.instance_id.clone(), row.patch_sha256.clone());
        if self.ids.contains(&row.trajectory_id) || self.patches.contains(&key) {
            return Ok(Insert::Duplicate);
        }
        self.remember(
            row.trajectory_id.clone(),
            row.instance_id.clone(),
            row.patch_sha256.clone(),
            row.model.clone(),
            row.sample,
        );
        self.buffer.push(row);
        Ok(Insert::Added)
    }

    /// Writes the buffered rows as one new segment and publishes it in the
    /// manifest. Returns the segment, or `None` when nothing was buffered.
    pub fn flush(&mut self) -> Result<Option<SegmentInfo>, CorpusError> {
        if self.buffer.is_empty() {
            return Ok(None);
        }
        let seq = self.manifest.next_seq;
        let name = format!("part-{seq:06}.parquet");
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let file = File::create(&tmp)
            .map_err(|e| CorpusError::io(format!("creating {}", tmp.display()), e))?;
        let (sha256, bytes, file) = encode_segment(&self.buffer, file)?;
        file.sync_all()
            .map_err(|e| CorpusError::io(format!("fsync {}", tmp.display()), e))?;
        drop(file);
        let dst = self.dir.join(&name);
        std::fs::rename(&tmp, &dst)
            .map_err(|e| CorpusError::io(format!("renaming to {}", dst.display()), e))?;
        sync_dir(&self.dir)?;
        let info = SegmentInfo {
            file: name,
            rows: self.buffer.len() as u64,
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
        self.buffer.clear();
        Ok(Some(info))
    }

    /// Writes the manifest even when empty, so a finished run with no kept
    /// rows is still a readable (empty) corpus.
    pub fn finish(mut self) -> Result<Manifest, CorpusError> {
        self.flush()?;
        if !Manifest::exists(&self.dir) {
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
