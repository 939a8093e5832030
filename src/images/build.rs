//! `airgate images build`: SWE-bench instance images from local mirrors.
//!
//! The three layers of the official harness, built with no registry and no
//! network:
//! - **base** (`sweb.base.py.x86_64:latest`): the `--base` image plus a
//!   conda-compatible activation (`/opt/miniconda3/bin/activate`,
//!   `conda activate testbed`) and the `nonroot` user;
//! - **env** (`sweb.env.py.x86_64.<key>:latest`, one per spec, shared by every
//!   instance of that spec): a full copy of the interpreter the spec names at
//!   `/opt/miniconda3/envs/testbed` (not a venv: tox-style runners need a
//!   real prefix), its dependencies from the wheelhouse, and a `pip.conf`
//!   pointing at the image's own wheel folder so the eval script's reinstall
//!   step works offline;
//! - **instance** (`sweb.eval.x86_64.<id>:latest`): the repo at `base_commit`
//!   cloned from a git bundle that holds nothing after it, then the spec's
//!   `pre_install` and `install`, then the official `SWE-bench` commit.
//!
//! Each layer is a generated Dockerfile and context (kept under the log
//! folder, so a plain `docker build` of the same files gives the same image)
//! built with `NetworkMode: none`: the only inputs are the files airgate put
//! in the context, read from the named mirrors on the host. Images carry
//! labels (dataset row sha256, spec sha256, env key), so a second build
//! skips what already matches.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::fetch::{FetchJob, MirrorUrl, shell_quote};
use super::mirror::{GitMirror, Interpreter, MirrorError, Snapshot, find_interpreter};
use crate::error::Retryable;
use crate::sandbox::SandboxError;
use crate::sandbox::docker::{classify, image_exists};
use crate::swebench::instance::{ARCH, Instance, image_for};
use crate::swebench::specs::{OneOrMany, Spec, SpecTable};

/// The base layer's image name (as the official harness names it).
pub const BASE_IMAGE: &str = "sweb.base.py.x86_64:latest";
/// Where the env layer's interpreter lives (a conda env's prefix).
pub const ENV_PREFIX: &str = "/opt/miniconda3/envs/testbed";
/// The image's own wheel folder, named by its `/etc/pip.conf`.
pub const WHEEL_DIR: &str = "/opt/airgate/wheels";
/// The build record written next to the logs.
pub const BUILD_RECORD: &str = "build.json";
/// Bumped when the generated layers change, so old images are rebuilt.
const LAYOUT: &str = "airgate-images-build/1";

/// Build failures that stop the whole build (per-instance failures are
/// recorded in the [`BuildRecord`] instead).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Docker failed.
    #[error(transparent)]
    Docker(#[from] SandboxError),
    /// The base layer could not be built; nothing else can be.
    #[error("base layer: {0}")]
    Base(String),
    /// Host file-system failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
}

impl Retryable for BuildError {
    fn is_retryable(&self) -> bool {
        matches!(self, BuildError::Docker(e) if e.is_retryable())
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let context = context.into();
    move |source| BuildError::Io { context, source }
}

/// Where the build reads from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// Repositories.
    pub git_mirror: GitMirror,
    /// Wheels (and sdists) for every dependency, pip and setuptools
    /// included; with a `pip_index`, what the index lacks.
    pub wheelhouse: Option<PathBuf>,
    /// A PyPI index (devpi, Nexus, Artifactory, a PEP 503 folder served
    /// over HTTP) that fetch steps read through the mirror bridge.
    pub pip_index: Option<MirrorUrl>,
    /// A Debian mirror (same suite as the base image, `main`) for specs
    /// with `apt-pkgs`, read through the mirror bridge.
    pub apt_mirror: Option<MirrorUrl>,
    /// Relocatable interpreters (python-build-standalone layout), if any.
    pub interpreters: Option<PathBuf>,
    /// The image the base layer starts from.
    pub base: String,
}

/// Options of one build.
pub struct BuildOptions {
    /// Sources.
    pub sources: Sources,
    /// The spec table (embedded, with `--specs` laid over it).
    pub specs: SpecTable,
    /// Parallel env and instance builds.
    pub max_workers: usize,
    /// Rebuild even when matching images exist.
    pub force: bool,
    /// Logs, contexts and the build record go here.
    pub log_dir: PathBuf,
    /// `AIRGATE_IMAGE_NAMESPACE`, as in eval.
    pub namespace: Option<String>,
    /// Draw a progress bar.
    pub progress: bool,
}

/// What happened to one instance.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Built now.
    Built,
    /// A matching image was already there.
    Skipped,
    /// The spec cannot be built from these sources (reason says why and
    /// what to provide).
    Unbuildable,
    /// A build step failed (reason and log say where).
    Failed,
}

/// One instance's line in the build record.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceBuild {
    /// Instance id.
    pub instance_id: String,
    /// Instance image name.
    pub image: String,
    /// Outcome.
    pub status: Status,
    /// Why it is unbuildable or failed (empty otherwise).
    pub reason: String,
    /// The env image it sits on, if planned.
    pub env_image: Option<String>,
    /// The instance image's digest (`sha256:...`), when it exists.
    pub image_digest: Option<String>,
    /// sha256 of the dataset row.
    pub row_sha256: String,
    /// sha256 of the spec row used.
    pub spec_sha256: Option<String>,
    /// Seconds spent on this instance's own layer.
    pub duration_s: f64,
    /// The build log of the layer that decided the outcome.
    pub log: Option<String>,
}

/// `build.json`: what the build did, per instance.
#[derive(Debug, Clone, Serialize)]
pub struct BuildRecord {
    /// Format tag.
    pub layout: String,
    /// The base image and what it was built from.
    pub base: String,
    /// Env images built or reused.
    pub envs: BTreeMap<String, EnvBuild>,
    /// Per instance.
    pub instances: Vec<InstanceBuild>,
}

/// One env image's line in the build record.
#[derive(Debug, Clone, Serialize)]
pub struct EnvBuild {
    /// `owner/name` and version it serves.
    pub spec: String,
    /// Python version and where the interpreter came from.
    pub python: String,
    /// Built, skipped or failed.
    pub status: Status,
    /// Failure reason.
    pub reason: String,
    /// Seconds.
    pub duration_s: f64,
}

/// sha256 of a dataset row as airgate reads it (its JSON form).
pub fn row_sha256(instance: &Instance) -> String {
    let json = serde_json::to_vec(instance).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A spec's build keys, read from the raw table row.
#[derive(Debug, Clone, PartialEq)]
struct EnvSpec {
    python: String,
    packages: String,
    pip_packages: Vec<String>,
    pre_install: Vec<String>,
    install: Vec<String>,
    apt_pkgs: Vec<String>,
}

fn strings(v: Option<&toml::Value>) -> Vec<String> {
    match v {
        Some(toml::Value::String(s)) => vec![s.clone()],
        Some(toml::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

impl EnvSpec {
    fn from_spec(spec: &Spec) -> Result<Self, String> {
        let python = spec
            .other
            .get("python")
            .and_then(|v| v.as_str())
            .ok_or("the spec row has no `python` version; add one with --specs FILE")?
            .to_string();
        Ok(Self {
            python,
            packages: spec
                .other
                .get("packages")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
            pip_packages: strings(spec.other.get("pip_packages")),
            pre_install: strings(spec.other.get("pre_install")),
            install: spec
                .install
                .as_ref()
                .map(OneOrMany::to_vec)
                .unwrap_or_default(),
            apt_pkgs: strings(spec.other.get("apt-pkgs")),
        })
    }
}

/// Single-quotes `s` for bash.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

const HEREDOC: &str = "EOF_59812759871";

/// The conda-compatible activation: `source /opt/miniconda3/bin/activate`
/// then `conda activate testbed`, as the official eval scripts run them.
const ACTIVATE: &str = r##"# airgate: a conda-compatible activation for environments that are full
# interpreter copies under /opt/miniconda3/envs (no conda needed).
_airgate_conda_root=/opt/miniconda3
conda() {
    case "${1:-}" in
        activate)
            local name="${2:-base}" prefix
            if [ "$name" = base ]; then prefix="$_airgate_conda_root"
            elif [ -d "$name" ]; then prefix="$name"
            else prefix="$_airgate_conda_root/envs/$name"; fi
            if [ ! -d "$prefix" ]; then echo "conda: no environment $name" >&2; return 1; fi
            [ -n "${CONDA_PREFIX:-}" ] && PATH="${PATH//$CONDA_PREFIX\/bin:/}"
            export CONDA_PREFIX="$prefix" CONDA_DEFAULT_ENV="$name"
            export PATH="$prefix/bin:$PATH"
            hash -r 2>/dev/null || true ;;
        deactivate)
            [ -n "${CONDA_PREFIX:-}" ] && PATH="${PATH//$CONDA_PREFIX\/bin:/}"
            unset CONDA_PREFIX CONDA_DEFAULT_ENV; hash -r 2>/dev/null || true ;;
        info|env)
            echo "# conda environments:"; for e in "$_airgate_conda_root"/envs/*; do echo "$(basename "$e")  $e"; done ;;
        list)
            python -m pip list ;;
        *)
            echo "conda ${1:-}: this image has no conda (built by airgate from mirrors); use pip" >&2
            return 1 ;;
    esac
}
if [ -n "${1:-}" ]; then conda activate "$1"; else conda activate base; fi
"##;

fn base_dockerfile(base: &str) -> String {
    format!(
        "FROM {base}\n\
         COPY activate /opt/miniconda3/bin/activate\n\
         COPY activate /opt/miniconda3/etc/profile.d/conda.sh\n\
         COPY setup_base.sh /root/setup_base.sh\n\
         RUN /bin/bash /root/setup_base.sh && rm /root/setup_base.sh\n\
         ENV PATH=/opt/miniconda3/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         WORKDIR /testbed/\n"
    )
}

const SETUP_BASE: &str = r#"#!/bin/bash
set -euo pipefail
for tool in git bash tar patch; do
  command -v "$tool" >/dev/null || { echo "the base image lacks $tool: build it with \`airgate images bootstrap\` or add $tool" >&2; exit 1; }
done
mkdir -p /opt/miniconda3/envs /testbed
chmod 0644 /opt/miniconda3/bin/activate /opt/miniconda3/etc/profile.d/conda.sh
id nonroot >/dev/null 2>&1 || useradd -m nonroot 2>/dev/null || adduser --disabled-password --gecos dog nonroot
"#;

fn env_dockerfile(interpreter: bool, debs: bool) -> String {
    let python = if interpreter {
        "COPY python.tar /root/python.tar\n"
    } else {
        ""
    };
    // Debian packages fetched from --apt-mirror, installed by dpkg offline.
    let debs = if debs { "COPY debs/ /root/debs/\n" } else { "" };
    format!(
        "FROM {BASE_IMAGE}\n\
         COPY wheels/ {WHEEL_DIR}/\n\
         {debs}\
         {python}\
         COPY setup_env.sh /root/setup_env.sh\n\
         RUN /bin/bash /root/setup_env.sh && rm -f /root/setup_env.sh /root/python.tar\n\
         WORKDIR /testbed/\n\
         RUN echo \"source /opt/miniconda3/etc/profile.d/conda.sh && conda activate testbed\" > /root/.bashrc\n"
    )
}

fn setup_env(spec: &EnvSpec, requirements: Option<&str>, interpreter: bool) -> String {
    let ver = &spec.python;
    let mut s = format!(
        "#!/bin/bash\nset -euxo pipefail\nE={ENV_PREFIX}\nmkdir -p \"$E\"\n\
         printf '[global]\\nno-index = true\\nfind-links = {WHEEL_DIR}\\ndisable-pip-version-check = true\\n' > /etc/pip.conf\n"
    );
    if !spec.apt_pkgs.is_empty() {
        s.push_str(&format!(
            "# apt-pkgs: {}\n\
             dpkg -i /root/debs/*.deb\nrm -rf /root/debs\n",
            spec.apt_pkgs.join(" ")
        ));
    }
    if interpreter {
        s.push_str(
            "tar -xf /root/python.tar -C \"$E\"\n\
             if [ -d \"$E/python\" ]; then cp -a \"$E/python/.\" \"$E/\" && rm -rf \"$E/python\"; fi\n",
        );
    } else {
        // A full copy of the base image's interpreter under the env prefix
        // (the prefix is found from the binary's location).
        s.push_str(&format!(
            "have=$(python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])')\n\
             [ \"$have\" = {v} ] || {{ echo \"the base image has Python $have, the spec needs {ver}: pass --interpreters DIR\" >&2; exit 1; }}\n\
             mkdir -p \"$E/bin\" \"$E/lib/python{ver}/dist-packages\"\n\
             # Debian's interpreter installs under PREFIX/local (scripts in\n\
             # local/bin): make that the prefix itself, as a conda env has it.\n\
             ln -s . \"$E/local\"\n\
             cp -a /usr/lib/python{ver} \"$E/lib/\"\n\
             cp \"$(readlink -f /usr/bin/python{ver})\" \"$E/bin/python{ver}\"\n\
             rm -f \"$E/lib/python{ver}/EXTERNALLY-MANAGED\"\n",
            v = quote(ver)
        ));
    }
    s.push_str(&format!(
        "for n in python3 python; do [ -e \"$E/bin/$n\" ] || ln -s python{ver} \"$E/bin/$n\"; done\n\
         source /opt/miniconda3/bin/activate\nconda activate testbed\n\
         test \"$(command -v python)\" = \"$E/bin/python\"\n\
         if ! python -m pip --version >/dev/null 2>&1; then\n\
         \x20 pipwhl=$(ls {WHEEL_DIR}/pip-*.whl 2>/dev/null | sort -V | tail -n1)\n\
         \x20 [ -n \"$pipwhl\" ] || {{ echo 'the wheelhouse has no pip wheel: add one (pip download pip setuptools wheel -d WHEELHOUSE)' >&2; exit 1; }}\n\
         \x20 python \"$pipwhl/pip\" install pip\n\
         fi\n\
         python -m pip install setuptools wheel\n"
    ));
    match spec.packages.as_str() {
        "" => {}
        "requirements.txt" => {
            s.push_str(&format!(
                "cat <<'{HEREDOC}' > /root/requirements.txt\n{}\n{HEREDOC}\n\
                 python -m pip install -r /root/requirements.txt\nrm /root/requirements.txt\n",
                requirements.unwrap_or_default()
            ));
        }
        list => {
            // Conda package names; the pip-only specs name pip packages.
            s.push_str(&format!("python -m pip install {list}\n"));
        }
    }
    if !spec.pip_packages.is_empty() {
        s.push_str(&format!(
            "python -m pip install {}\n",
            spec.pip_packages.join(" ")
        ));
    }
    s
}

fn instance_dockerfile(env_image: &str, wheels: bool) -> String {
    // Wheels the repository needs beyond its env (fetched from an index).
    let wheels = if wheels {
        format!("COPY wheels/ {WHEEL_DIR}/\n")
    } else {
        String::new()
    };
    format!(
        "FROM {env_image}\n\
         {wheels}\
         COPY repo.bundle /root/repo.bundle\n\
         COPY setup_repo.sh /root/setup_repo.sh\n\
         RUN /bin/bash /root/setup_repo.sh && rm -f /root/setup_repo.sh /root/repo.bundle\n\
         WORKDIR /testbed/\n"
    )
}

fn setup_repo(instance: &Instance, spec: &EnvSpec) -> String {
    let mut s = format!(
        "#!/bin/bash\nset -euxo pipefail\n\
         git clone -q /root/repo.bundle /testbed\n\
         chmod -R 777 /testbed\n\
         cd /testbed\n\
         git reset --hard {base}\n\
         git remote remove origin\n\
         git reflog expire --expire=now --all\n\
         git gc -q --prune=now\n\
         # Nothing after the base commit is reachable.\n\
         test \"$(git rev-list --all | grep -c .)\" = \"$(git rev-list {base} | grep -c .)\"\n\
         source /opt/miniconda3/bin/activate\n\
         conda activate testbed\n\
         echo \"Current environment: $CONDA_DEFAULT_ENV\"\n",
        base = quote(&instance.base_commit)
    );
    for cmd in spec.pre_install.iter().chain(&spec.install) {
        s.push_str(cmd);
        s.push('\n');
    }
    s.push_str(
        "git config --global user.email setup@swebench.config\n\
         git config --global user.name SWE-bench\n\
         git commit --allow-empty -am SWE-bench\n",
    );
    s
}

/// Why a spec cannot be built from these sources, if it cannot.
fn unbuildable(
    ext: &str,
    spec: &EnvSpec,
    repo: &str,
    table: &SpecTable,
    apt_mirror: bool,
) -> Option<String> {
    if ext != "py" {
        return Some(format!(
            "{repo} is a `{ext}` repository: only Python specs are built from mirrors so far; \
             build or load its image on the connected side and carry it in a bundle"
        ));
    }
    if spec.packages == "environment.yml" {
        return Some(
            "the spec installs through conda (`packages = \"environment.yml\"`), and this \
             build has no conda; build or load this image on the connected side, or give \
             a pip-only spec row with --specs FILE"
                .into(),
        );
    }
    if spec.packages == "requirements.txt" && !table.reqs_paths.contains_key(repo) {
        return Some(format!(
            "the spec reads requirements.txt but the table names no path for {repo}: add \
             [reqs_paths] \"{repo}\" = [\"path/to/requirements.txt\"] with --specs FILE"
        ));
    }
    if !spec.apt_pkgs.is_empty() && !apt_mirror {
        return Some(format!(
            "the spec needs Debian packages ({}) that the base image lacks; give a Debian \
             mirror with --apt-mirror URL, or build a base image that has them and pass it \
             with --base",
            spec.apt_pkgs.join(" ")
        ));
    }
    None
}

/// Writes a build context (a tar of `files`, plus `wheels/` when given)
/// into `dir` as plain files too, so a plain `docker build dir` reproduces
/// the layer.
fn write_context(
    dir: &Path,
    files: &[(&str, &[u8], u32)],
    folders: &[(&str, &[PathBuf])],
    python: Option<&Interpreter>,
) -> Result<PathBuf, BuildError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(format!("clearing {}", dir.display())))?;
    }
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    for (name, data, mode) in files {
        let p = dir.join(name);
        std::fs::write(&p, data).map_err(io(format!("writing {}", p.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))
                .map_err(io(format!("chmod {}", p.display())))?;
        }
    }
    for (folder, paths) in folders {
        let wd = dir.join(folder);
        std::fs::create_dir_all(&wd).map_err(io(format!("creating {folder}/")))?;
        for w in *paths {
            let Some(name) = w.file_name() else { continue };
            let target = wd.join(name);
            // Hard links keep a large wheelhouse from being copied per env.
            if std::fs::hard_link(w, &target).is_err() {
                std::fs::copy(w, &target).map_err(io(format!("copying {}", w.display())))?;
            }
        }
    }
    if let Some(interp) = python {
        let target = dir.join("python.tar");
        match interp {
            Interpreter::Archive(p) => {
                // Unpack gzip on the host so the Dockerfile needs no gzip.
                let status = std::process::Command::new("tar")
                    .arg("-xzf")
                    .arg(p)
                    .arg("-C")
                    .arg(dir)
                    .status()
                    .map_err(io("running tar"))?;
                if !status.success() {
                    return Err(BuildError::Io {
                        context: format!("unpacking {}", p.display()),
                        source: std::io::Error::other("tar failed"),
                    });
                }
                tar_folder(&dir.join("python"), &target)?;
                std::fs::remove_dir_all(dir.join("python")).map_err(io("cleaning python/"))?;
            }
            Interpreter::Folder(p) => tar_folder(p, &target)?,
        }
    }
    let tar_path = dir.with_extension("tar");
    let file =
        std::fs::File::create(&tar_path).map_err(io(format!("creating {}", tar_path.display())))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(file));
    builder.follow_symlinks(false);
    builder
        .append_dir_all(".", dir)
        .map_err(io("writing the build context"))?;
    builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(io("writing the build context"))?;
    Ok(tar_path)
}

fn tar_folder(src: &Path, out: &Path) -> Result<(), BuildError> {
    let file = std::fs::File::create(out).map_err(io(format!("creating {}", out.display())))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(file));
    b.follow_symlinks(false);
    b.append_dir_all(".", src)
        .map_err(io(format!("packing {}", src.display())))?;
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(io("packing the interpreter"))?;
    Ok(())
}

/// Builds `tag` from a context tar with no network, writing the daemon's
/// output to `log`. Returns the error text (last lines) on failure.
async fn docker_build(
    docker: &Docker,
    context: &Path,
    tag: &str,
    labels: &HashMap<String, String>,
    log: &Path,
) -> Result<Result<(), String>, BuildError> {
    let file = tokio::fs::File::open(context)
        .await
        .map_err(io(format!("opening {}", context.display())))?;
    let body = bollard::body_try_stream(tokio_util::io::ReaderStream::new(file));
    let opts = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .networkmode("none")
        .rm(true)
        .forcerm(true)
        .labels(labels)
        .build();
    let mut out = std::fs::File::create(log).map_err(io(format!("creating {}", log.display())))?;
    let mut stream = docker.build_image(opts, None, Some(body));
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(s) = &info.stream {
                    let _ = out.write_all(s.as_bytes());
                }
                if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                    let _ = writeln!(out, "ERROR: {detail}");
                    failure = Some(detail);
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                let _ = writeln!(out, "ERROR: {error}");
                failure = Some(error);
            }
            Err(e) => return Err(classify(e, &format!("building {tag}")).into()),
        }
    }
    drop(out);
    match failure {
        None => Ok(Ok(())),
        Some(msg) => {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(12).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Ok(Err(format!("{msg}\n{}", tail.join("\n"))))
        }
    }
}

/// The labels of an existing image, or `None` when it does not exist.
async fn labels_of(
    docker: &Docker,
    image: &str,
) -> Result<Option<HashMap<String, String>>, BuildError> {
    if !image_exists(docker, image).await? {
        return Ok(None);
    }
    let info = docker
        .inspect_image(image)
        .await
        .map_err(|e| classify(e, &format!("inspecting {image}")))?;
    Ok(Some(info.config.and_then(|c| c.labels).unwrap_or_default()))
}

async fn image_id(docker: &Docker, image: &str) -> Option<String> {
    docker.inspect_image(image).await.ok().and_then(|i| i.id)
}

/// What the python version of the base image is, by running it.
async fn base_python(docker: &Docker, base: &str) -> Result<String, BuildError> {
    use bollard::models::{ContainerCreateBody, HostConfig};
    use bollard::query_parameters::{
        CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
        WaitContainerOptionsBuilder,
    };
    let body = ContainerCreateBody {
        image: Some(base.into()),
        cmd: Some(vec![
            "python3".into(),
            "-c".into(),
            "import sys; print('%d.%d' % sys.version_info[:2])".into(),
        ]),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            // Podman's defaults exceed what these hosts allow.
            ulimits: Some(crate::sandbox::engine::host_ulimits()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let name = format!("airgate-pyprobe-{}", std::process::id());
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body,
        )
        .await
        .map_err(|e| classify(e, &format!("probing {base}")))?;
    let run = async {
        docker
            .start_container(&created.id, None)
            .await
            .map_err(|e| classify(e, "starting the probe"))?;
        let mut wait = docker.wait_container(
            &created.id,
            Some(WaitContainerOptionsBuilder::default().build()),
        );
        while let Some(w) = wait.next().await {
            if w.is_err() {
                break;
            }
        }
        let mut logs = docker.logs(
            &created.id,
            Some(LogsOptionsBuilder::default().stdout(true).build()),
        );
        let mut text = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&chunk.to_string());
        }
        Ok::<String, SandboxError>(text.trim().to_string())
    };
    let result = run.await;
    let _ = docker
        .remove_container(
            &created.id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await;
    Ok(result?)
}

/// One env image to build.
struct EnvPlan {
    key: String,
    image: String,
    spec_label: String,
    spec: EnvSpec,
    interpreter: Option<Interpreter>,
    requirements: Option<String>,
}

/// Builds the images of `instances`. Per-instance outcomes (built,
/// skipped, unbuildable with the reason, failed with the log) go into the
/// returned record and `build.json`; only failures that stop everything
/// (Docker down, base layer broken) are errors.
pub async fn build(
    docker: &Docker,
    instances: &[Instance],
    opts: BuildOptions,
) -> Result<BuildRecord, BuildError> {
    std::fs::create_dir_all(&opts.log_dir)
        .map_err(io(format!("creating {}", opts.log_dir.display())))?;
    // Absolute: git and tar run in other folders.
    let log_root = std::fs::canonicalize(&opts.log_dir)
        .map_err(io(format!("resolving {}", opts.log_dir.display())))?;
    let scratch = log_root.join(".scratch");
    let wheels = match &opts.sources.wheelhouse {
        Some(dir) => super::mirror::wheelhouse_files(dir).map_err(|e| BuildError::Io {
            context: "reading the wheelhouse".into(),
            source: std::io::Error::other(e.to_string()),
        })?,
        None => Vec::new(),
    };

    // Base layer.
    if !image_exists(docker, &opts.sources.base).await? {
        return Err(BuildError::Base(format!(
            "the base image {} is not present: run `airgate images bootstrap` (or load it \
             from a bundle) and pass it with --base",
            opts.sources.base
        )));
    }
    let base_id = image_id(docker, &opts.sources.base)
        .await
        .unwrap_or_default();
    let base_key = sha_hex(format!("{LAYOUT}\n{base_id}\n{ACTIVATE}\n{SETUP_BASE}").as_bytes());
    let base_labels: HashMap<String, String> = [
        ("airgate.layer", "base".to_string()),
        ("airgate.base_image", opts.sources.base.clone()),
        ("airgate.base_key", base_key.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let have = labels_of(docker, BASE_IMAGE).await?;
    let base_fresh =
        have.as_ref().and_then(|l| l.get("airgate.base_key")) == Some(&base_key) && !opts.force;
    if !base_fresh {
        let dir = log_root.join("base").join("sweb.base.py.x86_64");
        let ctx = write_context(
            &dir.join("context"),
            &[
                (
                    "Dockerfile",
                    base_dockerfile(&opts.sources.base).as_bytes(),
                    0o644,
                ),
                ("activate", ACTIVATE.as_bytes(), 0o644),
                ("setup_base.sh", SETUP_BASE.as_bytes(), 0o755),
            ],
            &[],
            None,
        )?;
        if let Err(msg) = docker_build(
            docker,
            &ctx,
            BASE_IMAGE,
            &base_labels,
            &dir.join("build_image.log"),
        )
        .await?
        {
            return Err(BuildError::Base(msg));
        }
        let _ = std::fs::remove_file(&ctx);
    }
    let base_py = base_python(docker, BASE_IMAGE).await.unwrap_or_default();
    let base_image_id = image_id(docker, BASE_IMAGE).await.unwrap_or_default();

    // Plan: one line per instance, envs grouped by key.
    let mut lines: Vec<InstanceBuild> = Vec::new();
    let mut plans: BTreeMap<String, EnvPlan> = BTreeMap::new();
    let mut inst_plan: Vec<Option<(String, String)>> = Vec::new(); // (env key, spec sha)
    for inst in instances {
        let image = image_for(inst, opts.namespace.as_deref());
        let mut line = InstanceBuild {
            instance_id: inst.instance_id.clone(),
            image: image.clone(),
            status: Status::Unbuildable,
            reason: String::new(),
            env_image: None,
            image_digest: None,
            row_sha256: row_sha256(inst),
            spec_sha256: None,
            duration_s: 0.0,
            log: None,
        };
        let planned = plan_env(inst, &opts, &scratch, &base_py, &base_image_id, &wheels);
        match planned {
            Ok((plan, spec_sha)) => {
                line.env_image = Some(plan.image.clone());
                line.spec_sha256 = Some(spec_sha.clone());
                let key = plan.key.clone();
                plans.entry(key.clone()).or_insert(plan);
                inst_plan.push(Some((key, spec_sha)));
            }
            Err(reason) => {
                line.reason = reason;
                inst_plan.push(None);
            }
        }
        lines.push(line);
    }

    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(
            (plans.len() + inst_plan.iter().filter(|p| p.is_some()).count()) as u64,
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} images · {msg}",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };

    // Env layers, in parallel.
    let sem = Arc::new(Semaphore::new(opts.max_workers.max(1)));
    let shared = Arc::new((docker.clone(), wheels, log_root.clone(), opts.force));
    let fetch = Arc::new(FetchSources {
        index: opts.sources.pip_index.clone(),
        apt: opts.sources.apt_mirror.clone(),
        wheelhouse: opts.sources.wheelhouse.clone(),
        scratch: scratch.clone(),
    });
    let mut set = tokio::task::JoinSet::new();
    for plan in plans.into_values() {
        let sem = sem.clone();
        let shared = shared.clone();
        let fetch = fetch.clone();
        let bar = bar.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            bar.set_message(format!("env {}", plan.spec_label));
            let started = Instant::now();
            let (docker, wheels, log_root, force) = &*shared;
            let res = build_env(docker, &plan, wheels, &fetch, log_root, *force).await;
            bar.inc(1);
            (plan, res, started.elapsed().as_secs_f64())
        });
    }
    let mut envs: BTreeMap<String, EnvBuild> = BTreeMap::new();
    let mut env_ok: BTreeMap<String, Result<(), (String, String)>> = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        let Ok((plan, res, secs)) = joined else {
            continue;
        };
        let res = res?;
        let python = format!(
            "{} ({})",
            plan.spec.python,
            plan.interpreter
                .as_ref()
                .map(Interpreter::describe)
                .unwrap_or_else(|| "base image".into())
        );
        let (status, reason) = match &res {
            Ok(true) => (Status::Built, String::new()),
            Ok(false) => (Status::Skipped, String::new()),
            Err((msg, _)) => (Status::Failed, msg.clone()),
        };
        envs.insert(
            plan.image.clone(),
            EnvBuild {
                spec: plan.spec_label.clone(),
                python,
                status,
                reason,
                duration_s: secs,
            },
        );
        env_ok.insert(plan.key.clone(), res.map(|_| ()));
    }

    // Instance layers, in parallel.
    let mut set = tokio::task::JoinSet::new();
    for (idx, planned) in inst_plan.into_iter().enumerate() {
        let Some((key, spec_sha)) = planned else {
            continue;
        };
        let Some(inst) = instances.get(idx).cloned() else {
            continue;
        };
        let env_image = lines[idx].env_image.clone().unwrap_or_default();
        if let Some(Err((msg, log))) = env_ok.get(&key) {
            bar.inc(1);
            lines[idx].status = Status::Failed;
            lines[idx].reason = format!("its env image {env_image} failed to build: {msg}");
            lines[idx].log = Some(log.clone());
            continue;
        }
        let sem = sem.clone();
        let shared = shared.clone();
        let bar = bar.clone();
        let specs_row = opts
            .specs
            .get(&inst.repo, &inst.version)
            .ok()
            .and_then(|(_, s)| EnvSpec::from_spec(s).ok());
        let row_sha = lines[idx].row_sha256.clone();
        let image = lines[idx].image.clone();
        let sources = opts.sources.clone();
        let scratch = scratch.clone();
        let fetch = fetch.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            bar.set_message(inst.instance_id.clone());
            let started = Instant::now();
            let (docker, _, log_root, force) = &*shared;
            let res = match specs_row {
                Some(spec) => {
                    build_instance(
                        docker,
                        &inst,
                        &spec,
                        InstanceKeys {
                            image: &image,
                            env_image: &env_image,
                            env_key: &key,
                            row_sha: &row_sha,
                            spec_sha: &spec_sha,
                        },
                        &sources.git_mirror,
                        &scratch,
                        &fetch,
                        log_root,
                        *force,
                    )
                    .await
                }
                None => Ok(Err(("the spec row vanished".into(), String::new()))),
            };
            bar.inc(1);
            (idx, res, started.elapsed().as_secs_f64())
        });
    }
    while let Some(joined) = set.join_next().await {
        let Ok((idx, res, secs)) = joined else {
            continue;
        };
        let line = &mut lines[idx];
        line.duration_s = secs;
        match res? {
            Ok((built, log)) => {
                line.status = if built {
                    Status::Built
                } else {
                    Status::Skipped
                };
                line.log = log;
            }
            Err((msg, log)) => {
                line.status = Status::Failed;
                line.reason = msg;
                line.log = (!log.is_empty()).then_some(log);
            }
        }
    }
    bar.finish_and_clear();
    for line in &mut lines {
        if matches!(line.status, Status::Built | Status::Skipped) {
            line.image_digest = docker
                .inspect_image(&line.image)
                .await
                .ok()
                .and_then(|i| i.id);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let record = BuildRecord {
        layout: LAYOUT.into(),
        base: format!("{BASE_IMAGE} from {}", opts.sources.base),
        envs,
        instances: lines,
    };
    let path = log_root.join(BUILD_RECORD);
    let json = serde_json::to_vec_pretty(&record).unwrap_or_default();
    std::fs::write(&path, json).map_err(io(format!("writing {}", path.display())))?;
    Ok(record)
}

/// Plans the env of one instance, or says why it cannot be built.
fn plan_env(
    inst: &Instance,
    opts: &BuildOptions,
    scratch: &Path,
    base_py: &str,
    base_image_id: &str,
    wheels: &[PathBuf],
) -> Result<(EnvPlan, String), String> {
    let (ext, spec_row) = opts
        .specs
        .get(&inst.repo, &inst.version)
        .map_err(|e| format!("{e} (or pass --specs FILE with a row for it)"))?;
    let spec = EnvSpec::from_spec(spec_row)?;
    let apt = opts.sources.apt_mirror.is_some();
    if let Some(why) = unbuildable(ext, &spec, &inst.repo, &opts.specs, apt) {
        return Err(why);
    }
    let interpreter = if spec.python == base_py {
        None
    } else {
        match opts
            .sources
            .interpreters
            .as_deref()
            .and_then(|d| find_interpreter(d, &spec.python))
        {
            Some(i) => Some(i),
            None => {
                return Err(format!(
                    "the spec needs Python {} but the base image has {} and {}; put a \
                     python-build-standalone `cpython-{}.*-x86_64-unknown-linux-gnu-install_only.tar.gz` \
                     (or its unpacked folder) there. airgate never substitutes another version",
                    spec.python,
                    if base_py.is_empty() {
                        "no python3"
                    } else {
                        base_py
                    },
                    match &opts.sources.interpreters {
                        Some(d) => format!("--interpreters {} has none", d.display()),
                        None => "no --interpreters DIR was given".into(),
                    },
                    spec.python
                ));
            }
        }
    };
    let env_commit = if inst.environment_setup_commit.is_empty() {
        &inst.base_commit
    } else {
        &inst.environment_setup_commit
    };
    let requirements = if spec.packages == "requirements.txt" {
        let paths = opts
            .specs
            .reqs_paths
            .get(&inst.repo)
            .cloned()
            .unwrap_or_default();
        let snap = Snapshot::fetch(&opts.sources.git_mirror, &inst.repo, env_commit, scratch)
            .map_err(|e: MirrorError| e.to_string())?;
        Some(snap.requirements(&paths).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let script = setup_env(&spec, requirements.as_deref(), interpreter.is_some());
    let interp_id = match &interpreter {
        Some(Interpreter::Archive(p)) => file_sha(p).unwrap_or_else(|| p.display().to_string()),
        Some(Interpreter::Folder(p)) => p.display().to_string(),
        None => "base".into(),
    };
    let wheel_list: Vec<String> = wheels
        .iter()
        .map(|w| {
            let size = std::fs::metadata(w).map(|m| m.len()).unwrap_or(0);
            format!("{}:{size}", w.display())
        })
        .collect();
    let index = opts
        .sources
        .pip_index
        .as_ref()
        .map(|m| m.url.clone())
        .unwrap_or_default();
    let apt = match (&opts.sources.apt_mirror, spec.apt_pkgs.is_empty()) {
        (Some(m), false) => m.url.clone(),
        _ => String::new(),
    };
    let index = format!("{index}\n{apt}");
    let key = sha_hex(
        format!(
            "{LAYOUT}\n{base_image_id}\n{interp_id}\n{script}\n{}\n{index}",
            wheel_list.join("\n")
        )
        .as_bytes(),
    );
    let key = key[..22].to_string();
    let spec_json = serde_json::to_string(&spec_row.other).unwrap_or_default();
    let spec_sha = sha_hex(
        format!(
            "{}\n{:?}\n{:?}\n{:?}",
            spec_json, spec_row.install, spec_row.test_cmd, spec_row.eval_commands
        )
        .as_bytes(),
    );
    Ok((
        EnvPlan {
            image: format!("sweb.env.py.{ARCH}.{key}:latest"),
            key,
            spec_label: format!("{} {}", inst.repo, inst.version),
            spec,
            interpreter,
            requirements,
        },
        spec_sha,
    ))
}

fn file_sha(p: &Path) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(p).ok()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Some(hex::encode(h.finalize()))
}

/// What fetch steps read from, shared by every env and instance build.
struct FetchSources {
    index: Option<MirrorUrl>,
    apt: Option<MirrorUrl>,
    wheelhouse: Option<PathBuf>,
    scratch: PathBuf,
}

/// Where a fetch container finds an `--interpreters` build.
const FETCH_PYTHON: &str = "/opt/airgate/fetch-python";

/// Keeps the first file of each name (a fetch also copies what it found
/// in the wheelhouse).
fn dedup_by_name(files: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| seen.insert(n.to_os_string())))
        .collect()
}

/// Fills `out` with what the env layer installs, read from the index
/// through the bridge: the requirements, `packages`, `pip_packages`, and
/// pip, setuptools and wheel. Runs in the base image with the spec's
/// interpreter, so pip resolves for the right Python version.
async fn fetch_env(
    docker: &Docker,
    plan: &EnvPlan,
    index: &MirrorUrl,
    fetch: &FetchSources,
    dir: &Path,
    out: &Path,
) -> Result<Result<usize, String>, BuildError> {
    let inputs = dir.join("fetch-inputs");
    let _ = std::fs::remove_dir_all(&inputs);
    std::fs::create_dir_all(&inputs).map_err(io(format!("creating {}", inputs.display())))?;
    // One download per install step, in the install order: the groups
    // may pin the same package differently (flask 2.3's requirements say
    // markupsafe==2.1.2, its pip_packages MarkupSafe==2.1.1), as the
    // official env script installs them one after another.
    let mut common = vec!["download".to_string(), "--dest".into(), "/out".into()];
    common.extend(index_args(index));
    let mut binds = vec![
        format!("{}:/out", out.display()),
        format!("{}:/in:ro", inputs.display()),
    ];
    if let Some(w) = &fetch.wheelhouse {
        let w = std::fs::canonicalize(w).map_err(io(format!("resolving {}", w.display())))?;
        binds.push(format!("{}:/wheelhouse:ro", w.display()));
        common.extend(["--find-links".into(), "/wheelhouse".into()]);
    }
    let mut groups: Vec<Vec<String>> =
        vec![vec!["pip".into(), "setuptools".into(), "wheel".into()]];
    match plan.spec.packages.as_str() {
        "" => {}
        "requirements.txt" => {
            let path = inputs.join("requirements.txt");
            std::fs::write(&path, plan.requirements.as_deref().unwrap_or_default())
                .map_err(io(format!("writing {}", path.display())))?;
            groups.push(vec!["-r".into(), "/in/requirements.txt".into()]);
        }
        list => groups.push(list.split_whitespace().map(shell_quote).collect()),
    }
    if !plan.spec.pip_packages.is_empty() {
        groups.push(
            plan.spec
                .pip_packages
                .iter()
                .map(|p| shell_quote(p))
                .collect(),
        );
    }
    let downloads: String = groups
        .iter()
        .map(|g| format!("$PIP {} {}\n", common.join(" "), g.join(" ")))
        .collect();
    // The spec's interpreter: the base image's, or an --interpreters build
    // mounted read-only (an archive is unpacked into scratch first).
    let mut _unpacked = None;
    let python = match &plan.interpreter {
        None => "python3".to_string(),
        Some(interp) => {
            let folder = match interp {
                Interpreter::Folder(p) => p.clone(),
                Interpreter::Archive(p) => {
                    let tmp = tempfile::Builder::new()
                        .prefix("python.")
                        .tempdir_in(&fetch.scratch)
                        .map_err(io("creating a scratch folder"))?;
                    let ok = std::process::Command::new("tar")
                        .arg("-xzf")
                        .arg(p)
                        .arg("-C")
                        .arg(tmp.path())
                        .status()
                        .map_err(io("running tar"))?
                        .success();
                    if !ok {
                        return Ok(Err(format!("unpacking {} failed", p.display())));
                    }
                    let path = tmp.path().to_path_buf();
                    _unpacked = Some(tmp);
                    path
                }
            };
            binds.push(format!("{}:{FETCH_PYTHON}:ro", folder.display()));
            format!(
                "\"$(ls -d {FETCH_PYTHON}/bin/python3 {FETCH_PYTHON}/python/bin/python3 2>/dev/null | head -n1)\""
            )
        }
    };
    let script = format!(
        "{}{downloads}",
        super::fetch::pip_bootstrap("\"$PY\"", &index.url),
    );
    let res = super::fetch::run(
        docker,
        FetchJob {
            image: BASE_IMAGE,
            python: &python,
            script,
            binds,
            mirror: index,
            log: &dir.join("fetch.log"),
            scratch: &fetch.scratch,
        },
    )
    .await
    .map_err(fetch_error)?;
    Ok(res)
}

/// `--index-url URL`, plus `--trusted-host` for a plain-http index: the
/// user named it explicitly, and pip otherwise ignores it.
fn index_args(index: &MirrorUrl) -> Vec<String> {
    let mut args = vec!["--index-url".to_string(), shell_quote(&index.url)];
    if index.url.starts_with("http://") {
        let host = index.alias.clone().unwrap_or_else(|| "127.0.0.1".into());
        args.extend(["--trusted-host".into(), shell_quote(&host)]);
    }
    args
}

/// Fills `out` with the `.deb` files that `apt-pkgs` need beyond what the
/// base image has installed, read from the Debian mirror through the
/// bridge (the base image's suite, `main`; its keyring checks the
/// mirror's signatures). The env layer then installs them with `dpkg -i`,
/// offline.
async fn fetch_debs(
    docker: &Docker,
    pkgs: &[String],
    mirror: &MirrorUrl,
    fetch: &FetchSources,
    dir: &Path,
    out: &Path,
) -> Result<Result<usize, String>, BuildError> {
    let pkgs: Vec<String> = pkgs.iter().map(|p| shell_quote(p)).collect();
    let script = format!(
        ". /etc/os-release\n\
         suite=${{VERSION_CODENAME:?the base image names no Debian suite in /etc/os-release}}\n\
         mkdir -p /tmp/apt/lists/partial /out/partial\n\
         echo \"deb {url} $suite main\" > /tmp/apt/sources.list\n\
         APT=\"apt-get -q -o Dir::Etc::SourceList=/tmp/apt/sources.list -o Dir::Etc::SourceParts=/nonexistent \
         -o Dir::State::Lists=/tmp/apt/lists -o Dir::Cache::archives=/out -o APT::Sandbox::User=root\"\n\
         $APT update\n\
         $APT install -y --download-only --no-install-recommends {pkgs}\n\
         rm -rf /out/partial /out/lock\n",
        url = mirror.url.trim_end_matches('/'),
        pkgs = pkgs.join(" ")
    );
    super::fetch::run(
        docker,
        FetchJob {
            image: BASE_IMAGE,
            python: "python3",
            script,
            binds: vec![format!("{}:/out", out.display())],
            mirror,
            log: &dir.join("fetch-apt.log"),
            scratch: &fetch.scratch,
        },
    )
    .await
    .map_err(fetch_error)
}

fn fetch_error(e: super::fetch::FetchError) -> BuildError {
    match e {
        super::fetch::FetchError::Docker(d) => BuildError::Docker(d),
        other => BuildError::Io {
            context: "fetching from the mirror".into(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// Fills `out` with what installing the repository at `base_commit` needs
/// beyond its env image: its dependencies and `[build-system] requires`,
/// read from the index through the bridge, in the env image itself.
/// Files the env image already has are dropped.
#[allow(clippy::too_many_arguments)]
async fn fetch_instance(
    docker: &Docker,
    env_image: &str,
    index: &MirrorUrl,
    fetch: &FetchSources,
    src: &Path,
    build_requires: &[String],
    dir: &Path,
    out: &Path,
) -> Result<Result<usize, String>, BuildError> {
    let mut args: Vec<String> = vec!["download".into(), "--dest".into(), "/out".into()];
    args.extend(index_args(index));
    args.extend(["--find-links".into(), WHEEL_DIR.into(), "/src".into()]);
    args.extend(build_requires.iter().map(|r| shell_quote(r)));
    let script = format!(
        "{}$PIP {}\n\
         for f in /out/*; do if [ -e \"{WHEEL_DIR}/${{f##*/}}\" ]; then rm -f \"$f\"; fi; done\n",
        super::fetch::pip_bootstrap("\"$PY\"", &index.url),
        args.join(" ")
    );
    let python = format!("{ENV_PREFIX}/bin/python");
    super::fetch::run(
        docker,
        FetchJob {
            image: env_image,
            python: &python,
            script,
            binds: vec![
                format!("{}:/out", out.display()),
                format!("{}:/src", src.display()),
            ],
            mirror: index,
            log: &dir.join("fetch.log"),
            scratch: &fetch.scratch,
        },
    )
    .await
    .map_err(fetch_error)
}

/// Builds one env image unless a matching one exists. `Ok(Ok(true))` built,
/// `Ok(Ok(false))` skipped, `Ok(Err((message, log)))` failed.
async fn build_env(
    docker: &Docker,
    plan: &EnvPlan,
    wheels: &[PathBuf],
    fetch: &FetchSources,
    log_root: &Path,
    force: bool,
) -> Result<Result<bool, (String, String)>, BuildError> {
    let have = labels_of(docker, &plan.image).await?;
    if !force && have.as_ref().and_then(|l| l.get("airgate.env_key")) == Some(&plan.key) {
        return Ok(Ok(false));
    }
    let name = plan.image.trim_end_matches(":latest");
    let dir = log_root.join("env").join(name);
    let script = setup_env(
        &plan.spec,
        plan.requirements.as_deref(),
        plan.interpreter.is_some(),
    );
    let mut wheels = wheels.to_vec();
    if let Some(index) = &fetch.index {
        let got = dir.join("fetched");
        let _ = std::fs::remove_dir_all(&got);
        std::fs::create_dir_all(&got).map_err(io(format!("creating {}", got.display())))?;
        if let Err(msg) = fetch_env(docker, plan, index, fetch, &dir, &got).await? {
            return Ok(Err((msg, dir.join("fetch.log").display().to_string())));
        }
        wheels.extend(super::fetch::fetched_files(&got));
    }
    let wheels = dedup_by_name(wheels);
    let mut debs = Vec::new();
    if !plan.spec.apt_pkgs.is_empty() {
        let Some(apt) = &fetch.apt else {
            return Ok(Err((
                "the spec needs apt-pkgs and no --apt-mirror was given".into(),
                String::new(),
            )));
        };
        let got = dir.join("fetched-debs");
        let _ = std::fs::remove_dir_all(&got);
        std::fs::create_dir_all(&got).map_err(io(format!("creating {}", got.display())))?;
        if let Err(msg) = fetch_debs(docker, &plan.spec.apt_pkgs, apt, fetch, &dir, &got).await? {
            return Ok(Err((msg, dir.join("fetch-apt.log").display().to_string())));
        }
        debs = super::fetch::fetched(&got, &[".deb"]);
    }
    let dockerfile = env_dockerfile(plan.interpreter.is_some(), !debs.is_empty());
    let ctx = write_context(
        &dir.join("context"),
        &[
            ("Dockerfile", dockerfile.as_bytes(), 0o644),
            ("setup_env.sh", script.as_bytes(), 0o755),
        ],
        &[("wheels", wheels.as_slice()), ("debs", debs.as_slice())],
        plan.interpreter.as_ref(),
    )?;
    let labels: HashMap<String, String> = [
        ("airgate.layer", "env".to_string()),
        ("airgate.env_key", plan.key.clone()),
        ("airgate.spec", plan.spec_label.clone()),
        ("airgate.python", plan.spec.python.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let log = dir.join("build_image.log");
    let res = docker_build(docker, &ctx, &plan.image, &labels, &log).await?;
    let _ = std::fs::remove_file(&ctx);
    Ok(match res {
        Ok(()) => Ok(true),
        Err(msg) => Err((msg, log.display().to_string())),
    })
}

/// The names and label values of one instance image.
struct InstanceKeys<'a> {
    image: &'a str,
    env_image: &'a str,
    env_key: &'a str,
    row_sha: &'a str,
    spec_sha: &'a str,
}

/// Builds one instance image unless a matching one exists.
#[allow(clippy::too_many_arguments)]
async fn build_instance(
    docker: &Docker,
    inst: &Instance,
    spec: &EnvSpec,
    keys: InstanceKeys<'_>,
    mirror: &GitMirror,
    scratch: &Path,
    fetch: &FetchSources,
    log_root: &Path,
    force: bool,
) -> Result<Result<(bool, Option<String>), (String, String)>, BuildError> {
    let have = labels_of(docker, keys.image).await?;
    if let Some(labels) = &have
        && !force
    {
        let same = labels.get("airgate.dataset_row_sha256").map(String::as_str)
            == Some(keys.row_sha)
            && labels.get("airgate.spec_sha256").map(String::as_str) == Some(keys.spec_sha)
            && labels.get("airgate.env_key").map(String::as_str) == Some(keys.env_key);
        // An image airgate did not build (loaded from a bundle, pulled on
        // the connected side) is left alone: --force replaces it.
        if same || !labels.contains_key("airgate.layer") {
            return Ok(Ok((false, None)));
        }
    }
    let name = keys.image.trim_end_matches(":latest");
    let dir = log_root.join("instances").join(name);
    let ctx_dir = dir.join("context");
    let _ = std::fs::remove_dir_all(&ctx_dir);
    std::fs::create_dir_all(&ctx_dir).map_err(io(format!("creating {}", ctx_dir.display())))?;
    let bundle = ctx_dir.join("repo.bundle");
    // With an index, the repository's own files at base_commit (the same
    // commit the image gets, so nothing later leaks) for the fetch.
    let src = match &fetch.index {
        Some(_) => Some(
            tempfile::Builder::new()
                .prefix("src.")
                .tempdir_in(scratch)
                .map_err(io("creating a scratch folder"))?,
        ),
        None => None,
    };
    let snap = {
        let mirror = mirror.clone();
        let repo = inst.repo.clone();
        let commit = inst.base_commit.clone();
        let scratch = scratch.to_path_buf();
        let bundle = bundle.clone();
        let src = src.as_ref().map(|d| d.path().join("src"));
        tokio::task::spawn_blocking(move || {
            let snap = Snapshot::fetch(&mirror, &repo, &commit, &scratch)?;
            snap.bundle(&bundle)?;
            match src {
                Some(dest) => {
                    snap.export(&dest)?;
                    snap.build_requires()
                }
                None => Ok(Vec::new()),
            }
        })
        .await
    };
    let build_requires = match snap {
        Ok(Ok(reqs)) => reqs,
        Ok(Err(e)) => return Ok(Err((e.to_string(), String::new()))),
        Err(e) => return Ok(Err((format!("mirror task failed: {e}"), String::new()))),
    };
    let bundle_data = std::fs::read(&bundle).map_err(io("reading the repo bundle"))?;
    let mut extra = Vec::new();
    if let (Some(index), Some(src)) = (&fetch.index, &src) {
        let got = dir.join("fetched");
        let _ = std::fs::remove_dir_all(&got);
        std::fs::create_dir_all(&got).map_err(io(format!("creating {}", got.display())))?;
        let res = fetch_instance(
            docker,
            keys.env_image,
            index,
            fetch,
            &src.path().join("src"),
            &build_requires,
            &dir,
            &got,
        )
        .await?;
        if let Err(msg) = res {
            return Ok(Err((msg, dir.join("fetch.log").display().to_string())));
        }
        extra = super::fetch::fetched_files(&got);
    }
    drop(src);
    let dockerfile = instance_dockerfile(keys.env_image, !extra.is_empty());
    let script = setup_repo(inst, spec);
    let ctx = write_context(
        &ctx_dir,
        &[
            ("Dockerfile", dockerfile.as_bytes(), 0o644),
            ("setup_repo.sh", script.as_bytes(), 0o755),
            ("repo.bundle", &bundle_data, 0o644),
        ],
        &[("wheels", extra.as_slice())],
        None,
    )?;
    let labels: HashMap<String, String> = [
        ("airgate.layer", "instance".to_string()),
        ("airgate.instance_id", inst.instance_id.clone()),
        ("airgate.dataset_row_sha256", keys.row_sha.to_string()),
        ("airgate.spec_sha256", keys.spec_sha.to_string()),
        ("airgate.env_key", keys.env_key.to_string()),
        ("airgate.env_image", keys.env_image.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let log = dir.join("build_image.log");
    let res = docker_build(docker, &ctx, keys.image, &labels, &log).await?;
    let _ = std::fs::remove_file(&ctx);
    // The bundle is large and the image has it; keep the scripts only.
    let _ = std::fs::remove_file(ctx_dir.join("repo.bundle"));
    Ok(match res {
        Ok(()) => Ok((true, Some(log.display().to_string()))),
        Err(msg) => Err((msg, log.display().to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> EnvSpec {
        let s: Spec = toml::from_str(toml_text).unwrap();
        EnvSpec::from_spec(&s).unwrap()
    }

    #[test]
    fn env_script_installs_requirements_then_pip_packages_offline() {
        let s = spec(
            "python = \"3.9\"\npackages = \"requirements.txt\"\npip_packages = [\"pytest==7.4.0\"]\ninstall = \"python -m pip install -e .\"\n",
        );
        let script = setup_env(&s, Some("attrs==23.1\n"), true);
        assert!(script.contains("no-index = true"), "{script}");
        assert!(script.contains("tar -xf /root/python.tar"), "{script}");
        let req = script
            .find("pip install -r /root/requirements.txt")
            .unwrap();
        let pip = script.find("pip install pytest==7.4.0").unwrap();
        assert!(req < pip);
        assert!(script.contains("attrs==23.1"));
        // The base interpreter path checks the version, never substitutes.
        let base = setup_env(&s, None, false);
        assert!(base.contains("the spec needs 3.9"), "{base}");
    }

    #[test]
    fn conda_apt_and_foreign_specs_are_unbuildable_with_a_reason() {
        let t = SpecTable::embedded().unwrap();
        let yml = spec("python = \"3.9\"\npackages = \"environment.yml\"\n");
        assert!(
            unbuildable("py", &yml, "pydata/xarray", &t, false)
                .unwrap()
                .contains("conda")
        );
        let apt = spec("python = \"3.9\"\napt-pkgs = [\"libgdal-dev\"]\n");
        assert!(
            unbuildable("py", &apt, "x/y", &t, false)
                .unwrap()
                .contains("libgdal-dev")
        );
        let reqs = spec("python = \"3.9\"\npackages = \"requirements.txt\"\n");
        assert!(
            unbuildable("py", &reqs, "bank/ledger", &t, false)
                .unwrap()
                .contains("[reqs_paths]")
        );
        assert!(unbuildable("py", &reqs, "pallets/flask", &t, false).is_none());
        // With a Debian mirror, apt-pkgs are fetched, not refused.
        assert!(unbuildable("py", &apt, "x/y", &t, true).is_none());
        let script = setup_env(&apt, None, true);
        assert!(script.contains("dpkg -i /root/debs/*.deb"), "{script}");
        assert!(
            unbuildable("js", &reqs, "a/b", &t, false)
                .unwrap()
                .contains("`js`")
        );
    }

    #[test]
    fn repo_script_strips_history_and_commits_like_the_official_one() {
        let s = spec(
            "python = \"3.11\"\npre_install = [\"echo pre\"]\ninstall = \"python -m pip install -e .\"\n",
        );
        let inst: Instance = serde_json::from_value(serde_json::json!({
            "repo": "o/r", "instance_id": "o__r-1", "base_commit": "abc"
        }))
        .unwrap();
        let script = setup_repo(&inst, &s);
        let pre = script.find("echo pre").unwrap();
        let install = script.find("pip install -e .").unwrap();
        let commit = script
            .find("git commit --allow-empty -am SWE-bench")
            .unwrap();
        assert!(pre < install && install < commit);
        assert!(script.contains("git rev-list --all"));
        assert!(script.contains("git remote remove origin"));
    }
}
