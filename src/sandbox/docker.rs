//! The Docker sandbox, on `bollard`.
//!
//! One [`Container`] per instance or episode: created from a local image
//! (nothing is ever pulled), isolated (`--network none`, CPU/memory/pids
//! limits from `configs/docker.toml`), named and labelled like the official
//! harness (`sweb.eval.<id>.<run_id>`), and removed on every exit path: an
//! explicit [`Container::remove`], the `Drop` guard, or
//! [`remove_all_live`] from a Ctrl-C handler.
//!
//! Commands run as `bash -c` under `setsid`, so a timeout can kill the whole
//! process group inside the container through a second exec. Files move in
//! and out as tar streams.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use serde::Deserialize;

use super::{BoundedCapture, ExecOutput, ExecRequest, Sandbox, SandboxError, timeout_notice};

/// Default image for `solve --sandbox docker` without `--image`.
pub const DEFAULT_IMAGE: &str = "airgate/base:latest";

/// Label put on every container airgate creates (for `docker ps --filter`).
pub const LABEL: &str = "airgate";

/// Isolation and limits for every container (`configs/docker.toml`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// Docker network mode; `"none"` keeps the container off the network.
    pub network: String,
    /// CPUs per container; 0 means no limit.
    pub cpus: f64,
    /// Memory limit in MiB; 0 means no limit.
    pub memory_mb: u64,
    /// Max processes per container; 0 means no limit.
    pub pids_limit: i64,
    /// User running commands; empty means the image default.
    pub user: String,
    /// Repository root inside the container.
    pub workdir: String,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            network: "none".into(),
            cpus: 2.0,
            memory_mb: 8192,
            pids_limit: 4096,
            user: "root".into(),
            workdir: "/testbed".into(),
        }
    }
}

impl DockerConfig {
    /// Reads a config file.
    pub fn from_file(path: &Path) -> Result<Self, SandboxError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SandboxError::io(format!("reading {}", path.display()), e))?;
        toml::from_str(&text).map_err(|e| {
            SandboxError::Other(format!("invalid docker config {}: {e}", path.display()))
        })
    }

    /// The config from `AIRGATE_DOCKER_CONFIG`, else `configs/docker.toml`
    /// in the current directory, else the built-in defaults (same values).
    pub fn load() -> Result<Self, SandboxError> {
        if let Ok(p) = std::env::var("AIRGATE_DOCKER_CONFIG") {
            return Self::from_file(Path::new(&p));
        }
        let local = Path::new("configs/docker.toml");
        if local.is_file() {
            return Self::from_file(local);
        }
        Ok(Self::default())
    }
}

/// Connects to the local daemon (honours `DOCKER_HOST`), negotiating the API
/// version so old engines work, and checks it answers.
pub async fn connect() -> Result<Docker, SandboxError> {
    let docker = Docker::connect_with_defaults()
        .map_err(|e| SandboxError::DaemonUnavailable(e.to_string()))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| SandboxError::DaemonUnavailable(e.to_string()))?;
    docker
        .ping()
        .await
        .map_err(|e| SandboxError::DaemonUnavailable(e.to_string()))?;
    Ok(docker)
}

/// Maps a bollard error to a [`SandboxError`], telling a missing image and a
/// gone daemon apart from everything else.
pub fn classify(e: BollardError, what: &str) -> SandboxError {
    match &e {
        BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        } if message.contains("No such image") => {
            let image = message
                .trim_start_matches("No such image:")
                .trim()
                .to_string();
            SandboxError::ImageMissing(image)
        }
        BollardError::SocketNotFoundError(_)
        | BollardError::HyperResponseError { .. }
        | BollardError::HyperLegacyError { .. }
        | BollardError::IOError { .. }
        | BollardError::RequestTimeoutError => {
            SandboxError::DaemonUnavailable(format!("{what}: {e}"))
        }
        _ => SandboxError::Other(format!("{what}: {e}")),
    }
}

/// Container name as the official harness makes it:
/// `sweb.eval.<instance id, lowercased>.<run_id>`.
pub fn container_name(instance_id: &str, run_id: &str) -> String {
    format!("sweb.eval.{}.{}", instance_id.to_lowercase(), run_id)
}

/// True when `image` exists locally.
pub async fn image_exists(docker: &Docker, image: &str) -> Result<bool, SandboxError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(classify(e, "inspecting image")),
    }
}

fn live() -> &'static Mutex<HashSet<String>> {
    static LIVE: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(HashSet::new()))
}

fn live_insert(id: &str) {
    if let Ok(mut set) = live().lock() {
        set.insert(id.to_string());
    }
}

fn live_remove(id: &str) {
    if let Ok(mut set) = live().lock() {
        set.remove(id);
    }
}

/// Force-removes every container this process created and has not removed
/// yet (kept ones excluded). Call it from a Ctrl-C handler before exiting.
pub async fn remove_all_live() -> usize {
    let ids: Vec<String> = live()
        .lock()
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    if ids.is_empty() {
        return 0;
    }
    let Ok(docker) = connect().await else {
        return 0;
    };
    let mut removed = 0;
    for id in ids {
        if force_remove(&docker, &id).await.is_ok() {
            removed += 1;
        }
        live_remove(&id);
    }
    removed
}

async fn force_remove(docker: &Docker, id: &str) -> Result<(), SandboxError> {
    let opts = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(opts)).await {
        Ok(()) => Ok(()),
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(classify(e, "removing container")),
    }
}

/// What to create.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Local image name.
    pub image: String,
    /// Container name (see [`container_name`]).
    pub name: String,
    /// Extra labels (the `airgate` label is always added).
    pub labels: HashMap<String, String>,
    /// Bind mounts, `host:container[:ro]`.
    pub binds: Vec<String>,
    /// Environment variables (`KEY=value`) for the container and its execs.
    pub env: Vec<String>,
    /// Limits and isolation.
    pub config: DockerConfig,
    /// Leave the container behind when done (debugging).
    pub keep: bool,
}

impl ContainerSpec {
    /// A spec with the given image and name, default config and no mounts.
    pub fn new(image: impl Into<String>, name: impl Into<String>, config: DockerConfig) -> Self {
        Self {
            image: image.into(),
            name: name.into(),
            labels: HashMap::new(),
            binds: vec![],
            env: vec![],
            config,
            keep: false,
        }
    }
}

/// A running container, removed when dropped unless `keep` was asked for.
pub struct Container {
    docker: Docker,
    id: String,
    name: String,
    config: DockerConfig,
    keep: bool,
    removed: AtomicBool,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

static EXEC_SEQ: AtomicU64 = AtomicU64::new(0);

impl Container {
    /// Creates and starts a container. The image must exist locally
    /// ([`SandboxError::ImageMissing`] otherwise); a stale container with the
    /// same name (from a crashed run) is removed first.
    pub async fn start(docker: &Docker, spec: &ContainerSpec) -> Result<Self, SandboxError> {
        let mut labels = spec.labels.clone();
        labels.insert(LABEL.into(), "1".into());
        let cfg = &spec.config;
        let host = HostConfig {
            network_mode: Some(cfg.network.clone()),
            nano_cpus: (cfg.cpus > 0.0).then_some((cfg.cpus * 1e9) as i64),
            memory: (cfg.memory_mb > 0).then(|| (cfg.memory_mb * 1024 * 1024) as i64),
            memory_swap: (cfg.memory_mb > 0).then(|| (cfg.memory_mb * 1024 * 1024) as i64),
            pids_limit: (cfg.pids_limit > 0).then_some(cfg.pids_limit),
            binds: (!spec.binds.is_empty()).then(|| spec.binds.clone()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: Some(vec!["tail".into(), "-f".into(), "/dev/null".into()]),
            labels: Some(labels),
            env: (!spec.env.is_empty()).then(|| spec.env.clone()),
            working_dir: Some(cfg.workdir.clone()),
            user: (!cfg.user.is_empty()).then(|| cfg.user.clone()),
            network_disabled: Some(cfg.network == "none"),
            host_config: Some(host),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        // Optimistic create (fewest daemon round trips): a 404 is a missing
        // image, a 409 a stale container of the same name from a crashed run.
        let created = match docker
            .create_container(Some(opts.clone()), body.clone())
            .await
        {
            Ok(c) => c,
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => return Err(SandboxError::ImageMissing(spec.image.clone())),
            Err(BollardError::DockerResponseServerError {
                status_code: 409, ..
            }) => {
                force_remove(docker, &spec.name).await?;
                docker
                    .create_container(Some(opts), body)
                    .await
                    .map_err(|e| classify(e, "creating container"))?
            }
            Err(e) => return Err(classify(e, "creating container")),
        };
        live_insert(&created.id);
        let container = Self {
            docker: docker.clone(),
            id: created.id,
            name: spec.name.clone(),
            config: spec.config.clone(),
            keep: spec.keep,
            removed: AtomicBool::new(false),
        };
        if spec.keep {
            live_remove(&container.id);
        }
        docker
            .start_container(&container.id, None)
            .await
            .map_err(|e| classify(e, "starting container"))?;
        tracing::debug!(name = %container.name, id = %container.id, "container started");
        Ok(container)
    }

    /// Container id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Container name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `req.command` with `bash -c` in the workdir; output combined and
    /// bounded; on timeout the command's process group is SIGKILLed and the
    /// official timeout text appended.
    pub async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        let start = Instant::now();
        let seq = EXEC_SEQ.fetch_add(1, Ordering::Relaxed);
        // In /dev/shm (a tmpfs): the container's filesystem stays untouched.
        let pidfile = format!("/dev/shm/.airgate-exec-{}-{seq}.pgid", std::process::id());
        // Job control (`set -m`) puts the command in its own process group,
        // whose id we record so a timeout can kill every descendant; `wait`
        // passes its status through (137 for SIGKILL), and `env -u` hides
        // the transport variable from the command. `2>&1` makes stdout and
        // stderr one pipe, so their interleaving is kept exactly (Docker's
        // two multiplexed streams may reorder them).
        let wrapper = format!(
            "set -m; env -u AIRGATE_EXEC_CMD bash -c \"$AIRGATE_EXEC_CMD\" 2>&1 & p=$!; \
             echo $p > {pidfile}; wait $p 2>/dev/null"
        );
        let mut env = vec![format!("AIRGATE_EXEC_CMD={}", req.command)];
        env.extend(req.env.iter().map(|(k, v)| format!("{k}={v}")));
        let exec = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions::<String> {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(vec!["bash".into(), "-c".into(), wrapper]),
                    env: Some(env),
                    working_dir: Some(self.config.workdir.clone()),
                    user: (!self.config.user.is_empty()).then(|| self.config.user.clone()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.classify_live(e, "creating exec"))?;
        let started = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| self.classify_live(e, "starting exec"))?;
        let StartExecResults::Attached { mut output, .. } = started else {
            return Err(SandboxError::Other("exec started detached".into()));
        };
        let mut cap = BoundedCapture::new(req.capture_limit);
        let deadline = tokio::time::Instant::now() + req.timeout;
        let mut timed_out = false;
        let mut leader_gone_at: Option<tokio::time::Instant> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.tick().await;
        loop {
            tokio::select! {
                item = output.next() => match item {
                    Some(Ok(chunk)) => cap.push(&chunk.into_bytes()),
                    Some(Err(e)) => {
                        tracing::debug!("exec stream error: {e}");
                        break;
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline), if !timed_out => {
                    timed_out = true;
                    self.kill_group(&pidfile).await;
                    leader_gone_at = Some(tokio::time::Instant::now());
                }
                _ = tick.tick() => {
                    if let Some(t) = leader_gone_at {
                        // The group was killed but something still holds the
                        // pipe: stop waiting for it.
                        if t.elapsed() > Duration::from_secs(5) {
                            break;
                        }
                    } else if let Ok(info) = self.docker.inspect_exec(&exec.id).await
                        && info.running == Some(false)
                    {
                        // Leader exited; descendants may still hold the output
                        // pipe open. Reap the group, as the local sandbox does.
                        self.kill_group(&pidfile).await;
                        leader_gone_at = Some(tokio::time::Instant::now());
                    }
                }
            }
        }
        drop(output);
        let exit_code = if timed_out {
            None
        } else {
            self.docker
                .inspect_exec(&exec.id)
                .await
                .map_err(|e| self.classify_live(e, "inspecting exec"))?
                .exit_code
                .map(|c| c as i32)
        };
        if !timed_out && matches!(exit_code, Some(137) | None) && self.oom_killed().await {
            return Err(SandboxError::OutOfMemory);
        }
        let (mut text, dropped) = cap.into_string();
        if timed_out {
            text.push_str(&timeout_notice(req.timeout));
        }
        Ok(ExecOutput {
            exit_code,
            output: text,
            timed_out,
            dropped_bytes: dropped,
            duration_ms: start.elapsed().as_millis() as u64,
        })
    }

    /// Runs a short helper command (no timeout handling beyond `timeout`).
    pub async fn sh(&self, command: &str, timeout: Duration) -> Result<ExecOutput, SandboxError> {
        self.exec(&ExecRequest::new(command, timeout)).await
    }

    async fn kill_group(&self, pidfile: &str) {
        let cmd = format!(
            "p=$(cat {pidfile} 2>/dev/null) && [ -n \"$p\" ] && kill -9 -- -$p 2>/dev/null; true"
        );
        let res = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions::<String> {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(vec!["bash".into(), "-c".into(), cmd]),
                    user: Some("root".into()),
                    ..Default::default()
                },
            )
            .await;
        let Ok(exec) = res else {
            // Exec impossible (container gone?): kill the container instead.
            let _ = self.docker.kill_container(&self.id, None).await;
            return;
        };
        if let Ok(StartExecResults::Attached { mut output, .. }) =
            self.docker.start_exec(&exec.id, None).await
        {
            let _ = tokio::time::timeout(Duration::from_secs(10), async {
                while output.next().await.is_some() {}
            })
            .await;
        }
    }

    /// True when the kernel OOM-killed something in this container.
    pub async fn oom_killed(&self) -> bool {
        if let Ok(info) = self.docker.inspect_container(&self.id, None).await
            && info.state.and_then(|s| s.oom_killed) == Some(true)
        {
            return true;
        }
        // A killed exec does not flag the container: read the cgroup counter.
        let probe = "cat /sys/fs/cgroup/memory.events 2>/dev/null; \
                     cat /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null; true";
        let Ok(exec) = self
            .docker
            .create_exec(
                &self.id,
                CreateExecOptions::<String> {
                    attach_stdout: Some(true),
                    cmd: Some(vec!["bash".into(), "-c".into(), probe.into()]),
                    ..Default::default()
                },
            )
            .await
        else {
            return false;
        };
        let mut text = Vec::new();
        if let Ok(StartExecResults::Attached { mut output, .. }) =
            self.docker.start_exec(&exec.id, None).await
        {
            while let Some(Ok(chunk)) = output.next().await {
                text.extend_from_slice(&chunk.into_bytes());
            }
        }
        parse_oom_kills(&String::from_utf8_lossy(&text)) > 0
    }

    fn classify_live(&self, e: BollardError, what: &str) -> SandboxError {
        classify(e, &format!("{what} in {}", self.name))
    }

    /// Uploads a tar archive, extracted under `dest_dir` (which must exist).
    pub async fn upload_tar(&self, dest_dir: &str, tar: Vec<u8>) -> Result<(), SandboxError> {
        let opts = UploadToContainerOptionsBuilder::default()
            .path(dest_dir)
            .build();
        self.docker
            .upload_to_container(&self.id, Some(opts), bollard::body_full(tar.into()))
            .await
            .map_err(|e| self.classify_live(e, "uploading files"))
    }

    /// Writes one file at absolute path `path` with `mode`, as a tar stream.
    pub async fn upload_file(
        &self,
        path: &str,
        data: &[u8],
        mode: u32,
    ) -> Result<(), SandboxError> {
        let (dir, name) = split_abs(path)?;
        let tar = tar_one(name, data, mode)?;
        self.upload_tar(dir, tar).await
    }

    /// Writes several files (absolute paths, with modes) in one tar stream.
    pub async fn upload_files(&self, files: &[(&str, &[u8], u32)]) -> Result<(), SandboxError> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data, mode) in files {
            let rel = path
                .strip_prefix('/')
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    SandboxError::Other(format!("container path must be absolute: {path}"))
                })?;
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(*mode);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, rel, *data)
                .map_err(|e| SandboxError::io("building tar", e))?;
        }
        let tar = builder
            .into_inner()
            .map_err(|e| SandboxError::io("building tar", e))?;
        self.upload_tar("/", tar).await
    }

    /// Packs a host directory into a tar stream and extracts it at `dest_dir`.
    pub async fn upload_dir(&self, src: &Path, dest_dir: &str) -> Result<(), SandboxError> {
        let src = src.to_path_buf();
        let tar = tokio::task::spawn_blocking(move || tar_dir(&src))
            .await
            .map_err(|e| SandboxError::Other(format!("tar task failed: {e}")))??;
        self.upload_tar(dest_dir, tar).await
    }

    /// Downloads `path` (file or directory) as a tar archive.
    pub async fn download_tar(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        let opts = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self.docker.download_from_container(&self.id, Some(opts));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.classify_live(e, &format!("downloading {path}")))?;
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Downloads one regular file's bytes.
    pub async fn download_file(&self, path: &str) -> Result<Vec<u8>, SandboxError> {
        let tar = self.download_tar(path).await?;
        let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
        let entries = archive
            .entries()
            .map_err(|e| SandboxError::io("reading downloaded tar", e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| SandboxError::io("reading downloaded tar", e))?;
            if entry.header().entry_type().is_file() {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut data)
                    .map_err(|e| SandboxError::io("reading downloaded file", e))?;
                return Ok(data);
            }
        }
        Err(SandboxError::Other(format!("{path} is not a regular file")))
    }

    /// Removes the container (force). Idempotent; a no-op when `keep` is set.
    pub async fn remove(&self) -> Result<(), SandboxError> {
        if self.keep || self.removed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let res = force_remove(&self.docker, &self.id).await;
        live_remove(&self.id);
        res
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.keep || self.removed.swap(true, Ordering::SeqCst) {
            return;
        }
        // Drop cannot await, and the caller's runtime may be shutting down
        // (Ctrl-C): remove from a fresh thread with its own runtime and client.
        let id = self.id.clone();
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(docker) = connect().await
                    && let Err(e) = force_remove(&docker, &id).await
                {
                    tracing::warn!("could not remove container {id}: {e}");
                }
            });
        });
        let _ = handle.join();
        live_remove(&self.id);
    }
}

/// Sum of `oom_kill` counters in cgroup v1/v2 memory files.
fn parse_oom_kills(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix("oom_kill "))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum()
}

fn split_abs(path: &str) -> Result<(&str, &str), SandboxError> {
    let Some(idx) = path.rfind('/') else {
        return Err(SandboxError::Other(format!(
            "container path must be absolute: {path}"
        )));
    };
    let dir = if idx == 0 { "/" } else { &path[..idx] };
    let name = &path[idx + 1..];
    if !path.starts_with('/') || name.is_empty() {
        return Err(SandboxError::Other(format!(
            "container path must be an absolute file path: {path}"
        )));
    }
    Ok((dir, name))
}

/// A tar archive holding one file.
pub fn tar_one(name: &str, data: &[u8], mode: u32) -> Result<Vec<u8>, SandboxError> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, name, data)
        .map_err(|e| SandboxError::io("building tar", e))?;
    builder
        .into_inner()
        .map_err(|e| SandboxError::io("building tar", e))
}

fn tar_dir(src: &Path) -> Result<Vec<u8>, SandboxError> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder
        .append_dir_all(".", src)
        .map_err(|e| SandboxError::io(format!("packing {}", src.display()), e))?;
    builder
        .into_inner()
        .map_err(|e| SandboxError::io("building tar", e))
}

/// The sandbox `solve --sandbox docker` uses: the host workspace
/// bind-mounted at the config's workdir (`/testbed`), so the file tools (on
/// the host) and commands (in the container) see one tree.
pub struct DockerSandbox {
    workspace: PathBuf,
    container: Container,
    image: String,
    config: DockerConfig,
    keep: bool,
    report: Option<String>,
}

impl DockerSandbox {
    /// Starts a container from `image` with `workspace` mounted at `/testbed`.
    pub async fn start(
        workspace: &Path,
        image: &str,
        config: DockerConfig,
        keep: bool,
    ) -> Result<Self, SandboxError> {
        Self::start_with(workspace, None, image, config, keep).await
    }

    /// [`DockerSandbox::start`], with `report_dir` (a harness-owned host
    /// directory) bind-mounted writable at [`super::REPORT_MOUNT`].
    pub async fn start_with(
        workspace: &Path,
        report_dir: Option<&Path>,
        image: &str,
        config: DockerConfig,
        keep: bool,
    ) -> Result<Self, SandboxError> {
        let docker = connect().await?;
        let host = workspace
            .canonicalize()
            .map_err(|e| SandboxError::io(format!("resolving {}", workspace.display()), e))?;
        let name = format!(
            "airgate.solve.{}.{}",
            std::process::id(),
            EXEC_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut spec = ContainerSpec::new(image, name, config.clone());
        spec.binds = vec![format!("{}:{}", host.display(), spec.config.workdir)];
        if let Some(report) = report_dir {
            let report = report
                .canonicalize()
                .map_err(|e| SandboxError::io(format!("resolving {}", report.display()), e))?;
            spec.binds
                .push(format!("{}:{}", report.display(), super::REPORT_MOUNT));
        }
        spec.keep = keep;
        spec.labels.insert("airgate.kind".into(), "solve".into());
        // The workspace belongs to the host user; let git inside agree,
        // without writing a config file into the container.
        spec.env = vec![
            "GIT_CONFIG_COUNT=1".into(),
            "GIT_CONFIG_KEY_0=safe.directory".into(),
            "GIT_CONFIG_VALUE_0=*".into(),
        ];
        let container = Container::start(&docker, &spec).await?;
        Ok(Self {
            workspace: workspace.to_path_buf(),
            container,
            image: image.to_string(),
            config,
            keep,
            report: None,
        })
    }

    /// The underlying container.
    pub fn container(&self) -> &Container {
        &self.container
    }
}

#[async_trait]
impl Sandbox for DockerSandbox {
    fn kind(&self) -> &'static str {
        "docker"
    }

    fn workspace(&self) -> &Path {
        &self.workspace
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        self.container.exec(req).await
    }

    async fn fresh(
        &self,
        root: &Path,
        report_dir: Option<&Path>,
    ) -> Result<Box<dyn Sandbox>, SandboxError> {
        let mut sb = DockerSandbox::start_with(
            root,
            report_dir,
            &self.image,
            self.config.clone(),
            self.keep,
        )
        .await?;
        sb.report = report_dir.map(|_| super::REPORT_MOUNT.to_string());
        Ok(Box::new(sb))
    }

    fn report_dir(&self) -> Option<String> {
        self.report.clone()
    }

    async fn close(&self) -> Result<(), SandboxError> {
        self.container.remove().await
    }
}

/// Builds the sandbox `solve --sandbox docker` uses: a container from
/// `image` with the workspace bind-mounted at `/testbed`.
pub async fn for_solve(
    workspace: &Path,
    image: Option<&str>,
) -> Result<Box<dyn Sandbox>, SandboxError> {
    let config = DockerConfig::load()?;
    let keep = std::env::var("AIRGATE_KEEP_CONTAINERS").is_ok_and(|v| v == "1");
    let sandbox =
        DockerSandbox::start(workspace, image.unwrap_or(DEFAULT_IMAGE), config, keep).await?;
    Ok(Box::new(sandbox))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_official_harness() {
        assert_eq!(
            container_name("Django__django-11099", "run1"),
            "sweb.eval.django__django-11099.run1"
        );
    }

    #[test]
    fn oom_counters_parse_for_both_cgroup_versions() {
        let v2 = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n";
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(parse_oom_kills(v2), 1);
        assert_eq!(parse_oom_kills(v1), 2);
        assert_eq!(parse_oom_kills("oom_kill_disable 0\n"), 0);
    }

    #[test]
    fn config_file_matches_defaults_and_rejects_typos() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/docker.toml");
        let cfg = DockerConfig::from_file(&path).unwrap();
        assert_eq!(cfg, DockerConfig::default());
        assert!(toml::from_str::<DockerConfig>("netwrok = \"host\"").is_err());
    }

    #[test]
    fn one_file_tars_round_trip() {
        let tar = tar_one("eval.sh", b"echo hi\n", 0o755).unwrap();
        let mut a = tar::Archive::new(std::io::Cursor::new(tar));
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().to_str(), Some("eval.sh"));
        assert_eq!(e.header().mode().unwrap(), 0o755);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut e, &mut s).unwrap();
        assert_eq!(s, "echo hi\n");
        assert!(split_abs("relative").is_err());
        assert_eq!(split_abs("/eval.sh").unwrap(), ("/", "eval.sh"));
        assert_eq!(
            split_abs("/tmp/patch.diff").unwrap(),
            ("/tmp", "patch.diff")
        );
    }
}
