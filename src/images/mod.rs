//! Images without a registry: official-compatible instance image names, a
//! locally bootstrapped base image, and sha256-verified bundles for carrying
//! images across an air gap.
//!
//! A bundle is a directory of `docker save` tarballs plus `manifest.json`
//! listing each tarball's image, file name, size and sha256. Loading
//! verifies every entry before importing any, so a tampered or truncated
//! bundle loads nothing.
//!
//! Two formats are read. `airgate-image-bundle/1` (`images save IMAGE...`)
//! holds one tarball per image. `airgate-image-bundle/2` (`images save
//! --dataset`) holds every instance image of a dataset in one `docker save`
//! archive, so layers the images share are stored once, plus an optional
//! `validation.json`; its `files` list gives the sha256 of every file and
//! each image entry names its instance.

pub mod build;
pub mod fetch;
pub mod mirror;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use bollard::Docker;
use bollard::query_parameters::{CreateImageOptionsBuilder, ImportImageOptionsBuilder};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::Retryable;
use crate::sandbox::SandboxError;
use crate::sandbox::docker::{classify, image_exists};

pub use crate::swebench::instance::ARCH;
/// Manifest file inside a bundle.
pub const MANIFEST: &str = "manifest.json";
/// Bundle format tag of per-image bundles (`images save IMAGE...`).
pub const BUNDLE_FORMAT: &str = "airgate-image-bundle/1";
/// Bundle format tag of dataset bundles (one shared archive, `files` list).
pub const BUNDLE_FORMAT_DATASET: &str = "airgate-image-bundle/2";
/// The shared archive of a dataset bundle.
pub const DATASET_ARCHIVE: &str = "images.tar";
/// The validation record copied into a dataset bundle.
pub const BUNDLE_VALIDATION: &str = "validation.json";
/// Packages installed in the bootstrap base image.
pub const BASE_PACKAGES: &str = "python3,python3-pytest,git,patch,ca-certificates,procps";

/// Image failures.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// Docker failed.
    #[error(transparent)]
    Docker(#[from] SandboxError),
    /// Host file-system failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The bundle does not match its manifest: nothing was loaded.
    #[error(
        "bundle {bundle} failed verification, nothing was loaded: {problem}. \
         Re-copy the bundle from its source (it was altered or truncated in transit)"
    )]
    Tampered {
        /// Bundle directory.
        bundle: PathBuf,
        /// What did not match.
        problem: String,
    },
    /// A manifest that cannot be read.
    #[error("bundle manifest {path}: {message}")]
    BadManifest {
        /// The manifest path.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// A bootstrap step failed.
    #[error("bootstrap failed: {0}")]
    Bootstrap(String),
    /// Dataset instances whose image is not in the local daemon.
    #[error(
        "nothing was written: {} instance image(s) are not present locally: {}. \
         Build or pull them on the connected side (e.g. `docker pull IMAGE`, or \
         the dataset's image build), or leave those instances out with --instance-ids",
        .0.len(),
        .0.iter().map(|(id, img)| format!("{id} (needs {img})")).collect::<Vec<_>>().join(", ")
    )]
    InstanceImagesMissing(Vec<(String, String)>),
    /// A verified archive loaded, but an image its manifest lists is absent.
    #[error(
        "{file} loaded, but {image} is not in the daemon afterwards: the bundle was \
         saved without it. Save the bundle again on the connected side"
    )]
    NotInArchive {
        /// The archive.
        file: String,
        /// The image the manifest promised.
        image: String,
    },
}

impl Retryable for ImagesError {
    fn is_retryable(&self) -> bool {
        matches!(self, ImagesError::Docker(e) if e.is_retryable())
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImagesError {
    let context = context.into();
    move |source| ImagesError::Io { context, source }
}

pub use crate::swebench::instance::{image_for, instance_image_name};

/// One tarball in a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleEntry {
    /// Image reference as given to `save`.
    pub image: String,
    /// Tarball file name inside the bundle.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex sha256 of the tarball.
    pub sha256: String,
    /// The dataset instance this image serves (dataset bundles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
}

/// One file of a dataset bundle, listed with its checksum.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleFile {
    /// File name inside the bundle.
    pub file: String,
    /// What it holds: `images` (a `docker save` archive) or `validation`.
    pub kind: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lowercase hex sha256.
    pub sha256: String,
}

/// `manifest.json` of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleManifest {
    /// [`BUNDLE_FORMAT`] or [`BUNDLE_FORMAT_DATASET`].
    pub format: String,
    /// One entry per image (per instance in dataset bundles).
    pub images: Vec<BundleEntry>,
    /// Every file of a dataset bundle (empty in per-image bundles).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<BundleFile>,
    /// The dataset a dataset bundle was saved from, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
}

impl BundleManifest {
    /// The bundle's validation record file name, if it carries one.
    pub fn validation_file(&self) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.kind == "validation")
            .map(|f| f.file.as_str())
    }
}

fn file_name_for(image: &str) -> String {
    let safe: String = image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.tar")
}

/// Saves each image into `out/<name>.tar` (a `docker save` tarball) and
/// writes `out/manifest.json` last, atomically. `on_bytes` is told of every
/// chunk written (for a progress bar).
pub async fn save(
    docker: &Docker,
    images: &[String],
    out: &Path,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<BundleManifest, ImagesError> {
    tokio::fs::create_dir_all(out)
        .await
        .map_err(io(format!("creating {}", out.display())))?;
    let mut entries = Vec::new();
    for image in images {
        if !image_exists(docker, image).await? {
            return Err(SandboxError::ImageMissing(image.clone()).into());
        }
        let file = file_name_for(image);
        let path = out.join(&file);
        let (sha256, bytes) = export_to_file(
            docker.export_image(image),
            &path,
            &format!("exporting {image}"),
            on_bytes,
        )
        .await?;
        entries.push(BundleEntry {
            image: image.clone(),
            file,
            bytes,
            sha256,
            instance_id: None,
        });
    }
    let manifest = BundleManifest {
        format: BUNDLE_FORMAT.into(),
        images: entries,
        files: vec![],
        dataset: None,
    };
    write_manifest(out, &manifest).await?;
    Ok(manifest)
}

async fn write_manifest(out: &Path, manifest: &BundleManifest) -> Result<(), ImagesError> {
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| ImagesError::BadManifest {
        path: out.join(MANIFEST),
        message: e.to_string(),
    })?;
    let tmp = out.join(".manifest.json.partial");
    tokio::fs::write(&tmp, text + "\n")
        .await
        .map_err(io("writing manifest"))?;
    tokio::fs::rename(&tmp, out.join(MANIFEST))
        .await
        .map_err(io("renaming manifest"))?;
    Ok(())
}

/// Saves every instance image of a dataset (`(instance_id, image)` pairs)
/// into one `docker save` archive, `out/images.tar`, so layers shared by
/// the images are stored once; copies `validation` (a `validation.json`)
/// in when given; writes a [`BUNDLE_FORMAT_DATASET`] manifest last. Every
/// image is checked first: a missing one writes nothing and names its
/// instance.
pub async fn save_dataset(
    docker: &Docker,
    instances: &[(String, String)],
    dataset_label: &str,
    validation: Option<&Path>,
    out: &Path,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<BundleManifest, ImagesError> {
    let mut missing = Vec::new();
    for (id, image) in instances {
        if !image_exists(docker, image).await? {
            missing.push((id.clone(), image.clone()));
        }
    }
    if !missing.is_empty() {
        return Err(ImagesError::InstanceImagesMissing(missing));
    }
    tokio::fs::create_dir_all(out)
        .await
        .map_err(io(format!("creating {}", out.display())))?;
    let mut names: Vec<&str> = Vec::new();
    for (_, image) in instances {
        if !names.contains(&image.as_str()) {
            names.push(image);
        }
    }
    let archive = out.join(DATASET_ARCHIVE);
    let (sha256, bytes) = export_to_file(
        docker.export_images(&names),
        &archive,
        "exporting the dataset's images",
        on_bytes,
    )
    .await?;
    let mut files = vec![BundleFile {
        file: DATASET_ARCHIVE.into(),
        kind: "images".into(),
        bytes,
        sha256: sha256.clone(),
    }];
    if let Some(src) = validation {
        let dest = out.join(BUNDLE_VALIDATION);
        tokio::fs::copy(src, &dest)
            .await
            .map_err(io(format!("copying {} into the bundle", src.display())))?;
        let (sum, n) = sha256_file(&dest).await?;
        files.push(BundleFile {
            file: BUNDLE_VALIDATION.into(),
            kind: "validation".into(),
            bytes: n,
            sha256: sum,
        });
    }
    let manifest = BundleManifest {
        format: BUNDLE_FORMAT_DATASET.into(),
        images: instances
            .iter()
            .map(|(id, image)| BundleEntry {
                image: image.clone(),
                file: DATASET_ARCHIVE.into(),
                bytes,
                sha256: sha256.clone(),
                instance_id: Some(id.clone()),
            })
            .collect(),
        files,
        dataset: Some(dataset_label.to_string()),
    };
    write_manifest(out, &manifest).await?;
    Ok(manifest)
}

/// Reads a bundle's manifest.
pub fn read_manifest(bundle: &Path) -> Result<BundleManifest, ImagesError> {
    let path = bundle.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| ImagesError::BadManifest {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let m: BundleManifest = serde_json::from_str(&text).map_err(|e| ImagesError::BadManifest {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if m.format != BUNDLE_FORMAT && m.format != BUNDLE_FORMAT_DATASET {
        return Err(ImagesError::BadManifest {
            path,
            message: format!(
                "unknown format {:?} (expected {BUNDLE_FORMAT} or {BUNDLE_FORMAT_DATASET}); \
                 a newer airgate may have written it",
                m.format
            ),
        });
    }
    Ok(m)
}

async fn sha256_file(path: &Path) -> Result<(String, u64), ImagesError> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(io(format!("opening {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(io(format!("reading {}", path.display())))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Streams an engine export into `path` durably (a `.partial` file, synced,
/// then renamed), hashing it on the way: `(sha256 hex, bytes)`.
async fn export_to_file<S>(
    mut stream: S,
    path: &Path,
    what: &str,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<(String, u64), ImagesError>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, bollard::errors::Error>> + Unpin,
{
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.partial"));
    let mut f = tokio::fs::File::create(&tmp)
        .await
        .map_err(io(format!("creating {}", tmp.display())))?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| classify(e, what))?;
        hasher.update(&chunk);
        bytes += chunk.len() as u64;
        on_bytes(chunk.len() as u64);
        f.write_all(&chunk)
            .await
            .map_err(io(format!("writing {}", tmp.display())))?;
    }
    f.flush().await.map_err(io("flushing the export"))?;
    f.sync_all().await.map_err(io("syncing the export"))?;
    drop(f);
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(io(format!("renaming to {}", path.display())))?;
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// Verifies every file of a bundle against its manifest (size, sha256,
/// file names confined to the bundle): each image tarball, and in dataset
/// bundles every file of the `files` list. Loads nothing.
pub async fn verify(bundle: &Path) -> Result<BundleManifest, ImagesError> {
    let manifest = read_manifest(bundle)?;
    let tampered = |problem: String| ImagesError::Tampered {
        bundle: bundle.to_path_buf(),
        problem,
    };
    if manifest.images.is_empty() {
        return Err(tampered("the manifest lists no images".into()));
    }
    let dataset = manifest.format == BUNDLE_FORMAT_DATASET;
    if !dataset && !manifest.files.is_empty() {
        return Err(tampered(format!(
            "a {BUNDLE_FORMAT} manifest has a files list"
        )));
    }
    // Every file once, with the size and sum every mention of it agrees on.
    let mut checks: Vec<(&str, u64, &str)> = Vec::new();
    let mentions = manifest
        .files
        .iter()
        .map(|f| (f.file.as_str(), f.bytes, f.sha256.as_str(), "file list"))
        .chain(manifest.images.iter().map(|e| {
            (
                e.file.as_str(),
                e.bytes,
                e.sha256.as_str(),
                e.image.as_str(),
            )
        }));
    for (file, bytes, sha, who) in mentions {
        if file.contains('/') || file.contains('\\') || file.starts_with('.') || file == MANIFEST {
            return Err(tampered(format!(
                "entry {who} has an unsafe file name {file:?}"
            )));
        }
        match checks.iter().find(|(f, _, _)| *f == file) {
            Some((_, b, s)) if *b != bytes || *s != sha => {
                return Err(tampered(format!(
                    "the manifest gives {file} two different sizes or sums"
                )));
            }
            Some(_) => {}
            None => checks.push((file, bytes, sha)),
        }
    }
    if dataset {
        for e in &manifest.images {
            let listed = manifest
                .files
                .iter()
                .any(|f| f.file == e.file && f.kind == "images");
            if !listed {
                return Err(tampered(format!(
                    "{} of {} is not in the files list as an image archive",
                    e.file, e.image
                )));
            }
        }
    }
    for (file, want_bytes, want_sha) in checks {
        let path = bundle.join(file);
        if !path.is_file() {
            return Err(tampered(format!("{file} is missing")));
        }
        let (sum, bytes) = sha256_file(&path).await?;
        if bytes != want_bytes {
            return Err(tampered(format!(
                "{file} is {bytes} bytes, the manifest says {want_bytes}"
            )));
        }
        if sum != want_sha {
            return Err(tampered(format!(
                "{file} has sha256 {sum}, the manifest says {want_sha}"
            )));
        }
    }
    Ok(manifest)
}

/// Verifies the whole bundle, then loads every tarball into the daemon.
/// Returns the images loaded.
pub async fn load(docker: &Docker, bundle: &Path) -> Result<Vec<String>, ImagesError> {
    let manifest = verify(bundle).await?;
    let mut loaded = Vec::new();
    let mut done: Vec<&str> = Vec::new();
    for e in &manifest.images {
        if done.contains(&e.file.as_str()) {
            loaded.push(e.image.clone());
            continue;
        }
        done.push(&e.file);
        let path = bundle.join(&e.file);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(io(format!("opening {}", path.display())))?;
        let body = tokio_util::io::ReaderStream::new(file);
        let mut stream = docker.import_image_stream(
            ImportImageOptionsBuilder::default().quiet(true).build(),
            body,
            None,
        );
        while let Some(item) = stream.next().await {
            item.map_err(|err| classify(err, &format!("loading {}", e.file)))?;
        }
        loaded.push(e.image.clone());
    }
    for e in &manifest.images {
        if !image_exists(docker, &e.image).await? {
            return Err(ImagesError::NotInArchive {
                file: e.file.clone(),
                image: e.image.clone(),
            });
        }
    }
    Ok(loaded)
}

/// The first Debian mirror in the machine's apt sources (deb822 or
/// one-line), else deb.debian.org.
pub fn apt_mirror() -> String {
    let mut candidates = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            if p.extension().is_some_and(|e| e == "sources") {
                candidates.extend(
                    text.lines()
                        .filter_map(|l| l.strip_prefix("URIs:"))
                        .flat_map(|u| u.split_whitespace().map(str::to_string)),
                );
            } else if p.extension().is_some_and(|e| e == "list") {
                candidates.extend(one_line_uris(&text));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string("/etc/apt/sources.list") {
        candidates.extend(one_line_uris(&text));
    }
    candidates
        .into_iter()
        .find(|u| !u.contains("-security") && u.trim_end_matches('/').ends_with("/debian"))
        .unwrap_or_else(|| "http://deb.debian.org/debian".into())
}

fn one_line_uris(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("deb "))
        .filter_map(|l| {
            // `deb [opt=a opt=b] URI suite ...`: skip the bracketed options.
            let rest = l[4..].trim_start();
            let rest = match rest.strip_prefix('[') {
                Some(r) => r.split_once(']').map(|(_, after)| after)?,
                None => rest,
            };
            rest.split_whitespace().next().map(str::to_string)
        })
        .collect()
}

/// Builds the base image with no registry: `debootstrap` a Debian bookworm
/// minbase rootfs (python3, pytest, git, patch) from the configured apt
/// mirror, then stream it as a tar into the daemon (`docker import`).
/// Skips when the image exists unless `force`.
pub async fn bootstrap(docker: &Docker, tag: &str, force: bool) -> Result<bool, ImagesError> {
    if !force && image_exists(docker, tag).await? {
        return Ok(false);
    }
    let debootstrap = ["/usr/sbin/debootstrap", "/usr/bin/debootstrap"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .ok_or_else(|| {
            ImagesError::Bootstrap(
                "debootstrap is not installed: `apt-get install -y debootstrap` (needs root)"
                    .into(),
            )
        })?;
    let work = tempfile::Builder::new()
        .prefix("airgate-rootfs.")
        .tempdir()
        .map_err(io("creating a scratch directory"))?;
    let rootfs = work.path().join("rootfs");
    let mirror = apt_mirror();
    tracing::info!("debootstrap bookworm from {mirror}");
    let status = tokio::process::Command::new(debootstrap)
        .args([
            "--variant=minbase",
            &format!("--include={BASE_PACKAGES}"),
            "bookworm",
        ])
        .arg(&rootfs)
        .arg(&mirror)
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(io("running debootstrap"))?;
    if !status.success() {
        return Err(ImagesError::Bootstrap(format!(
            "debootstrap exited with {status} (mirror {mirror}; needs root and apt access)"
        )));
    }
    for sub in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        if let Ok(dir) = std::fs::read_dir(rootfs.join(sub)) {
            for e in dir.flatten() {
                if e.path().is_file() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    std::fs::create_dir_all(rootfs.join("testbed")).map_err(io("creating /testbed"))?;
    let mut tar = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .map_err(io("running tar"))?;
    let stdout = tar
        .stdout
        .take()
        .ok_or_else(|| ImagesError::Bootstrap("tar has no stdout".into()))?;
    let (repo, tagname) = match tag.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (tag, "latest"),
    };
    let opts = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(tagname)
        .changes(vec![
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "ENV LANG=C.UTF-8".into(),
            "WORKDIR /testbed".into(),
            "CMD [\"/bin/bash\"]".into(),
        ])
        .build();
    let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(stdout));
    let mut stream = docker.create_image(Some(opts), Some(body), None);
    while let Some(item) = stream.next().await {
        item.map_err(|e| classify(e, "importing the rootfs"))?;
    }
    let st = tar.wait().await.map_err(io("waiting for tar"))?;
    if !st.success() {
        return Err(ImagesError::Bootstrap(format!("tar exited with {st}")));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_sources_skip_options() {
        let t = "# c\ndeb [arch=amd64 signed-by=/k] http://m.example/debian bookworm main\ndeb-src http://x/debian bookworm main\n";
        assert_eq!(one_line_uris(t), vec!["http://m.example/debian"]);
    }

    #[tokio::test]
    async fn verify_refuses_tampered_and_truncated_bundles() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.tar"), b"hello").unwrap();
        let good = BundleManifest {
            format: BUNDLE_FORMAT.into(),
            images: vec![BundleEntry {
                image: "a:1".into(),
                file: "a.tar".into(),
                bytes: 5,
                sha256: hex::encode(Sha256::digest(b"hello")),
                instance_id: None,
            }],
            files: vec![],
            dataset: None,
        };
        std::fs::write(
            d.path().join(MANIFEST),
            serde_json::to_string(&good).unwrap(),
        )
        .unwrap();
        verify(d.path()).await.unwrap();
        std::fs::write(d.path().join("a.tar"), b"hellp").unwrap();
        let err = verify(d.path()).await.unwrap_err().to_string();
        assert!(
            err.contains("sha256") && err.contains("nothing was loaded"),
            "{err}"
        );
        std::fs::write(d.path().join("a.tar"), b"hell").unwrap();
        assert!(
            verify(d.path())
                .await
                .unwrap_err()
                .to_string()
                .contains("bytes")
        );
        let mut evil = good.clone();
        evil.images[0].file = "../etc/passwd".into();
        std::fs::write(
            d.path().join(MANIFEST),
            serde_json::to_string(&evil).unwrap(),
        )
        .unwrap();
        assert!(
            verify(d.path())
                .await
                .unwrap_err()
                .to_string()
                .contains("unsafe")
        );
    }

    fn write(dir: &Path, m: &BundleManifest) {
        std::fs::write(dir.join(MANIFEST), serde_json::to_string(m).unwrap()).unwrap();
    }

    #[tokio::test]
    async fn dataset_manifests_verify_every_file_once_and_refuse_disagreements() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(DATASET_ARCHIVE), b"layers").unwrap();
        std::fs::write(d.path().join(BUNDLE_VALIDATION), b"{}").unwrap();
        let sum = |b: &[u8]| hex::encode(Sha256::digest(b));
        let entry = |id: &str| BundleEntry {
            image: format!("sweb.eval.x86_64.{id}:latest"),
            file: DATASET_ARCHIVE.into(),
            bytes: 6,
            sha256: sum(b"layers"),
            instance_id: Some(id.into()),
        };
        let good = BundleManifest {
            format: BUNDLE_FORMAT_DATASET.into(),
            images: vec![entry("a__1"), entry("a__2")],
            files: vec![
                BundleFile {
                    file: DATASET_ARCHIVE.into(),
                    kind: "images".into(),
                    bytes: 6,
                    sha256: sum(b"layers"),
                },
                BundleFile {
                    file: BUNDLE_VALIDATION.into(),
                    kind: "validation".into(),
                    bytes: 2,
                    sha256: sum(b"{}"),
                },
            ],
            dataset: Some("d.jsonl".into()),
        };
        write(d.path(), &good);
        let m = verify(d.path()).await.unwrap();
        assert_eq!(m.validation_file(), Some(BUNDLE_VALIDATION));

        // The validation record is checked like the archive.
        std::fs::write(d.path().join(BUNDLE_VALIDATION), b"{ ").unwrap();
        let err = verify(d.path()).await.unwrap_err().to_string();
        assert!(err.contains("validation.json has sha256"), "{err}");
        std::fs::write(d.path().join(BUNDLE_VALIDATION), b"{}").unwrap();

        // An entry that disagrees with the files list.
        let mut evil = good.clone();
        evil.images[1].sha256 = sum(b"other");
        write(d.path(), &evil);
        let err = verify(d.path()).await.unwrap_err().to_string();
        assert!(err.contains("two different"), "{err}");

        // An image whose archive is not in the files list.
        let mut evil = good.clone();
        evil.files.remove(0);
        write(d.path(), &evil);
        let err = verify(d.path()).await.unwrap_err().to_string();
        assert!(err.contains("not in the files list"), "{err}");

        // The manifest itself cannot be listed as a file.
        let mut evil = good.clone();
        evil.files[1].file = MANIFEST.into();
        write(d.path(), &evil);
        let err = verify(d.path()).await.unwrap_err().to_string();
        assert!(err.contains("unsafe"), "{err}");

        // Unknown formats are refused by name.
        let mut evil = good.clone();
        evil.format = "airgate-image-bundle/9".into();
        write(d.path(), &evil);
        let err = verify(d.path()).await.unwrap_err().to_string();
        assert!(err.contains("unknown format"), "{err}");
    }
}
