//! Images without a registry: official-compatible instance image names, a
//! locally bootstrapped base image, and sha256-verified bundles for carrying
//! images across an air gap.
//!
//! A bundle is a directory of `docker save` tarballs plus `manifest.json`
//! listing each tarball's image, file name, size and sha256. Loading
//! verifies every entry before importing any, so a tampered or truncated
//! bundle loads nothing.

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
/// Bundle format tag written in the manifest.
pub const BUNDLE_FORMAT: &str = "airgate-image-bundle/1";
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
}

/// `manifest.json` of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleManifest {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// One entry per image.
    pub images: Vec<BundleEntry>,
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
        let tmp = out.join(format!(".{file}.partial"));
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .map_err(io(format!("creating {}", tmp.display())))?;
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut stream = docker.export_image(image);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| classify(e, &format!("exporting {image}")))?;
            hasher.update(&chunk);
            bytes += chunk.len() as u64;
            on_bytes(chunk.len() as u64);
            f.write_all(&chunk)
                .await
                .map_err(io(format!("writing {}", tmp.display())))?;
        }
        f.flush().await.map_err(io("flushing tarball"))?;
        f.sync_all().await.map_err(io("syncing tarball"))?;
        drop(f);
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(io(format!("renaming to {}", path.display())))?;
        entries.push(BundleEntry {
            image: image.clone(),
            file,
            bytes,
            sha256: hex::encode(hasher.finalize()),
        });
    }
    let manifest = BundleManifest {
        format: BUNDLE_FORMAT.into(),
        images: entries,
    };
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
    if m.format != BUNDLE_FORMAT {
        return Err(ImagesError::BadManifest {
            path,
            message: format!("unknown format {:?} (expected {BUNDLE_FORMAT})", m.format),
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

/// Verifies every tarball of a bundle against its manifest (size, sha256,
/// file names confined to the bundle). Loads nothing.
pub async fn verify(bundle: &Path) -> Result<BundleManifest, ImagesError> {
    let manifest = read_manifest(bundle)?;
    let tampered = |problem: String| ImagesError::Tampered {
        bundle: bundle.to_path_buf(),
        problem,
    };
    if manifest.images.is_empty() {
        return Err(tampered("the manifest lists no images".into()));
    }
    for e in &manifest.images {
        if e.file.contains('/') || e.file.starts_with('.') {
            return Err(tampered(format!(
                "entry {} has an unsafe file name {:?}",
                e.image, e.file
            )));
        }
        let path = bundle.join(&e.file);
        if !path.is_file() {
            return Err(tampered(format!("{} is missing", e.file)));
        }
        let (sum, bytes) = sha256_file(&path).await?;
        if bytes != e.bytes {
            return Err(tampered(format!(
                "{} is {bytes} bytes, the manifest says {}",
                e.file, e.bytes
            )));
        }
        if sum != e.sha256 {
            return Err(tampered(format!(
                "{} has sha256 {sum}, the manifest says {}",
                e.file, e.sha256
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
    for e in &manifest.images {
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
            }],
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
}
