//! The Docker sandbox, on `bollard`.
//!
//! One [`Container`] per instance or episode: created from a local image
//! (nothing is ever pulled), hardened (all capabilities dropped but a
//! justified few, `no-new-privileges`, private cgroup namespace, no network,
//! CPU/memory/pids limits from the installation's `docker.toml`; see
//! [`host_config`]), named and labelled like the official
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
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum, Mount, MountBindOptions,
    MountBindOptionsPropagationEnum, MountType,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use serde::Deserialize;

use super::libpod::CreateFailure;
use super::{BoundedCapture, ExecOutput, ExecRequest, Sandbox, SandboxError, timeout_notice};

/// Default image for `solve --sandbox docker` without `--image`.
pub const DEFAULT_IMAGE: &str = "airgate/base:latest";

/// Label put on every container airgate creates (for `docker ps --filter`).
pub const LABEL: &str = "airgate";

/// Capabilities a grading container gets back after `CapDrop: ["ALL"]`
/// (the default of [`DockerConfig::eval_cap_add`]). Agent sandboxes and the
/// factory's copy-out get none: every Docker test passes without any. Grading
/// runs the official eval script as root on an official image, where the
/// official harness has Docker's default set, so the verdicts keep these:
/// - `CHOWN`: install steps and test suites running as root set file owners
///   (tar extraction, `shutil.chown`, `chown` in install scripts);
/// - `DAC_OVERRIDE`: root-run suites expect root to read and write files
///   whatever their mode (read-only fixtures; permission tests skip by
///   checking for uid 0, not for the capability);
/// - `FOWNER`: `chmod`/`utime` on files of another uid (image layers keep
///   the uids they were built with);
/// - `SETUID`, `SETGID`: a root process dropping to another user (`su`,
///   `runuser`, suites that test as an unprivileged user); with
///   `no-new-privileges` they only ever lower privileges;
/// - `KILL`: signalling processes that changed uid.
///
/// Never given back: `NET_RAW` (raw sockets, `ping`, spoofing), `MKNOD`
/// (device nodes), `SYS_CHROOT`, `SETFCAP`/`SETPCAP` (file capabilities),
/// `FSETID`, `AUDIT_WRITE` and `NET_BIND_SERVICE` (Docker already lets any
/// user bind low ports inside the container's network namespace).
pub const GRADING_CAP_ADD: [&str; 6] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "SETUID",
    "SETGID",
    "KILL",
];

/// [`DockerConfig::sandbox_user`] value meaning "the uid:gid that owns the
/// mounted workspace on the host".
pub const WORKSPACE_OWNER: &str = "workspace";

/// Isolation and limits for every container (`configs/docker.toml`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// Docker network mode; `"none"` keeps the container off the network.
    pub network: String,
    /// CPUs per agent container; 0 means no limit.
    pub cpus: f64,
    /// CPUs per grading container (`swebench eval`, factory verification);
    /// 0 (the default) sets no quota, as the official harness does, so
    /// verdicts that depend on the CPU count match it.
    pub eval_cpus: f64,
    /// Memory limit in MiB; 0 means no limit.
    pub memory_mb: u64,
    /// Max processes per container; 0 means no limit.
    pub pids_limit: i64,
    /// User of containers that work on the image's own tree (grading, the
    /// factory's copy-out); empty means the image default. Official
    /// instance images need root: conda lives in root-owned `/opt`, and the
    /// eval scripts `git checkout` and `pip install` into root-owned paths.
    pub user: String,
    /// User of agent sandboxes (`solve`/`tiers --sandbox docker`, factory
    /// episodes), whose tree is the host workspace bind-mounted in:
    /// [`WORKSPACE_OWNER`] (the default) runs as the uid:gid owning that
    /// workspace, so nothing the agent writes belongs to root unless the
    /// host user is root; or a user name, `uid[:gid]`, or empty for the
    /// image default.
    pub sandbox_user: String,
    /// Capabilities added back after dropping all of them, for agent
    /// sandboxes and the factory's copy-out; none by default.
    pub cap_add: Vec<String>,
    /// Capabilities added back in grading containers (see
    /// [`GRADING_CAP_ADD`] for why each default is there).
    pub eval_cap_add: Vec<String>,
    /// Repository root inside the container.
    pub workdir: String,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            network: "none".into(),
            cpus: 2.0,
            eval_cpus: 0.0,
            memory_mb: 8192,
            pids_limit: 4096,
            user: "root".into(),
            sandbox_user: WORKSPACE_OWNER.into(),
            cap_add: vec![],
            eval_cap_add: GRADING_CAP_ADD.iter().map(|c| c.to_string()).collect(),
            workdir: "/testbed".into(),
        }
    }
}

/// Deprecated alias of an explicit Docker config path (use `--config`).
pub const DOCKER_CONFIG_ENV: &str = "AIRGATE_DOCKER_CONFIG";

impl DockerConfig {
    /// Reads a config file.
    pub fn from_file(path: &Path) -> Result<Self, SandboxError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SandboxError::io(format!("reading {}", path.display()), e))?;
        Self::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Self, SandboxError> {
        let cfg: Self = toml::from_str(text)
            .map_err(|e| SandboxError::Other(format!("invalid docker config {origin}: {e}")))?;
        cfg.validate()
            .map_err(|e| SandboxError::Other(format!("invalid docker config {origin}: {e}")))?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        for cap in self.cap_add.iter().chain(&self.eval_cap_add) {
            let bare = cap.strip_prefix("CAP_").unwrap_or(cap);
            if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                return Err(format!(
                    "cap_add: `{cap}` is not a capability name (like CHOWN)"
                ));
            }
            if matches!(
                bare,
                "ALL" | "SYS_ADMIN" | "SYS_PTRACE" | "SYS_MODULE" | "NET_ADMIN"
            ) {
                return Err(format!(
                    "cap_add: `{cap}` would undo the container's confinement; remove it"
                ));
            }
        }
        if self.cpus < 0.0 || self.eval_cpus < 0.0 {
            return Err("cpus and eval_cpus must be 0 (no limit) or positive".into());
        }
        Ok(())
    }

    /// The installation's config: `explicit` (a `--config` flag) if given,
    /// else `$AIRGATE_DOCKER_CONFIG` (deprecated alias of an explicit path),
    /// else `$AIRGATE_CONFIG_DIR/docker.toml`, else the built-in copy of
    /// `configs/docker.toml`. Never the current directory: a repository
    /// fixed from its own root must not choose its own isolation.
    pub fn load(explicit: Option<&Path>) -> Result<Self, SandboxError> {
        let alias = std::env::var_os(DOCKER_CONFIG_ENV)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        if explicit.is_none() && alias.is_some() {
            tracing::warn!("{DOCKER_CONFIG_ENV} is deprecated; pass the file with --config");
        }
        let explicit = explicit.or(alias.as_deref());
        let loaded = crate::config::load(
            "docker.toml",
            explicit,
            include_str!("../../configs/docker.toml"),
        )
        .map_err(|e| SandboxError::Other(e.to_string()))?;
        Self::parse(&loaded.text, &loaded.origin)
    }

    /// This config for a grading container: the CPU quota is
    /// [`DockerConfig::eval_cpus`] (none by default, as officially) and the
    /// capabilities [`DockerConfig::eval_cap_add`].
    pub fn for_grading(&self) -> Self {
        Self {
            cpus: self.eval_cpus,
            cap_add: self.eval_cap_add.clone(),
            ..self.clone()
        }
    }
}

/// Connects to the selected engine ([`super::engine::selected`]): `DOCKER_HOST`
/// when set, else Docker's or Podman's default socket. Negotiates the API
/// version so old engines work, and checks it answers.
pub async fn connect() -> Result<Docker, SandboxError> {
    let engine = super::engine::selected();
    let host_set = std::env::var_os("DOCKER_HOST").is_some_and(|h| !h.is_empty());
    let docker = if engine == super::engine::Engine::Podman && !host_set {
        let socket = super::engine::podman_default_socket();
        if !socket.exists() {
            return Err(SandboxError::DaemonUnavailable(
                super::engine::podman_socket_hint(&socket),
            ));
        }
        Docker::connect_with_unix(&socket.to_string_lossy(), 120, bollard::API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_defaults()
    }
    .map_err(|e| SandboxError::DaemonUnavailable(format!("{}: {e}", engine.name())))?;
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

/// Names (without the leading `/`) of every container, in any state, whose
/// name contains `needle`: the official report's `unstopped_containers`
/// check (`run_id in container.name`).
pub async fn container_names_containing(
    docker: &Docker,
    needle: &str,
) -> Result<Vec<String>, SandboxError> {
    let names = if super::engine::selected() == super::engine::Engine::Podman {
        super::libpod::container_names().await?
    } else {
        let opts = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .build();
        let list = docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| classify(e, "listing containers"))?;
        list.into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .map(|n| n.trim_start_matches('/').to_string())
            .collect()
    };
    let mut out: Vec<String> = names.into_iter().filter(|n| n.contains(needle)).collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Every `repo:tag` the engine holds (the official `list_images`); on
/// Podman also without its `localhost/` prefix.
pub async fn image_tags(docker: &Docker) -> Result<HashSet<String>, SandboxError> {
    let opts = bollard::query_parameters::ListImagesOptionsBuilder::default()
        .all(true)
        .build();
    let list = docker
        .list_images(Some(opts))
        .await
        .map_err(|e| classify(e, "listing images"))?;
    let mut tags: HashSet<String> = list.into_iter().flat_map(|i| i.repo_tags).collect();
    if super::engine::selected() == super::engine::Engine::Podman {
        // Podman qualifies unqualified local names: `docker load`ed
        // `sweb.eval...:latest` is listed as `localhost/sweb.eval...:latest`.
        let short: Vec<String> = tags
            .iter()
            .filter_map(|t| t.strip_prefix("localhost/").map(str::to_string))
            .collect();
        tags.extend(short);
    }
    Ok(tags)
}

/// The engine's content id of `image` (`sha256:...`, the image `Id`), which
/// names exactly the bytes a verdict was computed on, unlike a tag.
/// `Ok(None)` when the image is absent.
pub async fn image_digest(docker: &Docker, image: &str) -> Result<Option<String>, SandboxError> {
    match docker.inspect_image(image).await {
        Ok(info) => Ok(info.id),
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(classify(e, "inspecting image")),
    }
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

/// PID 1 of every container: bash idling in a loop. Orphans are re-parented
/// to it and bash reaps any child that exits, so processes killed by a
/// timeout do not linger as zombies (`tail -f /dev/null`, the official
/// harness's PID 1, never reaps). Docker's `Init: true` would do the same
/// but bind-mounts `/usr/sbin/docker-init` into the container's filesystem
/// and needs an init binary on the host (Podman).
const REAPER: [&str; 3] = [
    "bash",
    "-c",
    "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done",
];

/// The hardened host config of every container airgate creates:
/// - `CapDrop: ALL`, then only [`DockerConfig::cap_add`];
/// - `no-new-privileges`: a setuid binary (even one the agent made in the
///   workspace) runs without gaining its owner's rights, and file
///   capabilities are ignored. Docker's API offers no `nosuid`/`nodev` for
///   bind mounts (the local volume driver drops them on `bind`), so this,
///   with `MKNOD` dropped (no device nodes can be made), is what stands in
///   for them inside the container;
/// - a private cgroup, IPC and PID namespace; no network (`none`);
/// - pids, memory (swap included) and CPU limits; `nofile`/`nproc` ulimits
///   no higher than the host's soft limits (Podman's defaults exceed them);
/// - bind mounts as `Mounts` (a missing host path is an error, never
///   created; submounts of the host path are not carried in).
fn host_config(spec: &ContainerSpec) -> Result<HostConfig, SandboxError> {
    let cfg = &spec.config;
    cfg.validate()
        .map_err(|e| SandboxError::Other(format!("invalid docker config: {e}")))?;
    let mounts = spec
        .binds
        .iter()
        .map(|b| bind_mount(b))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HostConfig {
        network_mode: Some(cfg.network.clone()),
        nano_cpus: (cfg.cpus > 0.0).then_some((cfg.cpus * 1e9) as i64),
        memory: (cfg.memory_mb > 0).then(|| (cfg.memory_mb * 1024 * 1024) as i64),
        memory_swap: (cfg.memory_mb > 0).then(|| (cfg.memory_mb * 1024 * 1024) as i64),
        pids_limit: (cfg.pids_limit > 0).then_some(cfg.pids_limit),
        mounts: (!mounts.is_empty()).then_some(mounts),
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: (!cfg.cap_add.is_empty()).then(|| cfg.cap_add.clone()),
        security_opt: Some(vec!["no-new-privileges".into()]),
        cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
        ipc_mode: Some("private".into()),
        privileged: Some(false),
        ulimits: Some(super::engine::host_ulimits()),
        ..Default::default()
    })
}

/// `host:container[:ro|:rw]` as a bind `Mount`. The last `:` before the
/// container path splits the two, so host paths may hold a `:`.
fn bind_mount(bind: &str) -> Result<Mount, SandboxError> {
    let (rest, read_only) = match bind.rsplit_once(':') {
        Some((rest, "ro")) => (rest, true),
        Some((rest, "rw")) => (rest, false),
        _ => (bind, false),
    };
    let Some((source, target)) = rest.rsplit_once(':') else {
        return Err(SandboxError::Other(format!(
            "bind mount `{bind}` is not host:container[:ro]"
        )));
    };
    if !source.starts_with('/') || !target.starts_with('/') {
        return Err(SandboxError::Other(format!(
            "bind mount `{bind}`: both paths must be absolute"
        )));
    }
    Ok(Mount {
        typ: Some(MountType::BIND),
        source: Some(source.to_string()),
        target: Some(target.to_string()),
        read_only: Some(read_only),
        bind_options: Some(MountBindOptions {
            propagation: Some(MountBindOptionsPropagationEnum::RPRIVATE),
            non_recursive: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The create request for `spec`: image, the reaper as PID 1, labels,
/// environment, user, working directory and the hardened [`host_config`].
fn create_body(spec: &ContainerSpec) -> Result<ContainerCreateBody, SandboxError> {
    let mut labels = spec.labels.clone();
    labels.insert(LABEL.into(), "1".into());
    let cfg = &spec.config;
    Ok(ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(REAPER.iter().map(|s| s.to_string()).collect()),
        labels: Some(labels),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        working_dir: Some(cfg.workdir.clone()),
        user: (!cfg.user.is_empty()).then(|| cfg.user.clone()),
        network_disabled: Some(cfg.network == "none"),
        host_config: Some(host_config(spec)?),
        ..Default::default()
    })
}

/// Creates the container `name`; returns its id. Docker gets the body as
/// is; Podman gets it through its libpod API ([`super::libpod`]), the one
/// way its private cgroup namespace is honoured on a cgroup v1 host.
async fn create(
    docker: &Docker,
    name: &str,
    body: &ContainerCreateBody,
) -> Result<String, CreateFailure> {
    if super::engine::selected() == super::engine::Engine::Podman {
        return super::libpod::create(name, body).await;
    }
    let opts = CreateContainerOptionsBuilder::default().name(name).build();
    match docker.create_container(Some(opts), body.clone()).await {
        Ok(c) => Ok(c.id),
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => Err(CreateFailure::ImageMissing),
        Err(BollardError::DockerResponseServerError {
            status_code: 409, ..
        }) => Err(CreateFailure::NameInUse),
        Err(e) => Err(CreateFailure::Other(classify(e, "creating container"))),
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
        let body = create_body(spec)?;
        // Optimistic create (fewest daemon round trips): a missing image is
        // an error, a taken name a stale container from a crashed run.
        let id = match create(docker, &spec.name, &body).await {
            Ok(id) => id,
            Err(CreateFailure::ImageMissing) => {
                return Err(SandboxError::ImageMissing(spec.image.clone()));
            }
            Err(CreateFailure::NameInUse) => {
                force_remove(docker, &spec.name).await?;
                match create(docker, &spec.name, &body).await {
                    Ok(id) => id,
                    Err(CreateFailure::ImageMissing) => {
                        return Err(SandboxError::ImageMissing(spec.image.clone()));
                    }
                    Err(CreateFailure::NameInUse) => {
                        return Err(SandboxError::Other(format!(
                            "creating container: the name {} is still taken after removing it",
                            spec.name
                        )));
                    }
                    Err(CreateFailure::Other(e)) => return Err(e),
                }
            }
            Err(CreateFailure::Other(e)) => return Err(e),
        };
        live_insert(&id);
        let container = Self {
            docker: docker.clone(),
            id,
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
                    privileged: Some(false),
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
                    // The command's own user: no capability is needed to
                    // signal one's own processes.
                    user: (!self.config.user.is_empty()).then(|| self.config.user.clone()),
                    privileged: Some(false),
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

    /// The content id (`sha256:...`) of the image this container was
    /// created from: exactly the bytes it runs, whatever tag named them.
    pub async fn image_id(&self) -> Result<Option<String>, SandboxError> {
        let info = self
            .docker
            .inspect_container(&self.id, None)
            .await
            .map_err(|e| self.classify_live(e, "inspecting the container"))?;
        Ok(info.image)
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
        spec.config.user = sandbox_user(&config.sandbox_user, &host)?;
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

/// The user an agent sandbox runs as: [`WORKSPACE_OWNER`] resolves to the
/// `uid:gid` owning `workspace` on the host; anything else is used as given.
fn sandbox_user(setting: &str, workspace: &Path) -> Result<String, SandboxError> {
    if setting != WORKSPACE_OWNER {
        return Ok(setting.to_string());
    }
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(workspace).map_err(|e| {
        SandboxError::io(format!("reading the owner of {}", workspace.display()), e)
    })?;
    Ok(format!("{}:{}", meta.uid(), meta.gid()))
}

/// Copies `image`'s workdir (`/testbed`) out into a host temporary
/// directory: a throwaway container, no mounts, removed afterwards.
/// Returns the directory holding the copy (its `.git` included) and the
/// copy's path.
pub async fn copy_image_workdir(
    image: &str,
    config: &DockerConfig,
) -> Result<(tempfile::TempDir, PathBuf), SandboxError> {
    let docker = connect().await?;
    let name = format!(
        "airgate.copy.{}.{}",
        std::process::id(),
        EXEC_SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let mut spec = ContainerSpec::new(image, name, config.clone());
    spec.labels.insert("airgate.kind".into(), "copy".into());
    let container = Container::start(&docker, &spec).await?;
    let tar = container.download_tar(&config.workdir).await;
    if let Err(e) = container.remove().await {
        tracing::warn!("removing {}: {e}", container.name());
    }
    let tar = tar?;
    let scratch = tempfile::Builder::new()
        .prefix("airgate-image-tree-")
        .tempdir()
        .map_err(|e| SandboxError::io("creating a scratch directory", e))?;
    let dest = scratch.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
        archive.set_preserve_permissions(true);
        archive.unpack(&dest)
    })
    .await
    .map_err(|e| SandboxError::Other(format!("untar task failed: {e}")))?
    .map_err(|e| SandboxError::io("unpacking the tree copied out of the image", e))?;
    let base = Path::new(&config.workdir)
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "testbed".into());
    let root = scratch.path().join(base);
    Ok((scratch, root))
}

/// The sandbox `solve --sandbox docker` uses, starting from the image's own
/// `/testbed`: the files the image's build generated there (versions
/// written by setuptools-scm, built extensions, egg-info) are laid into the
/// workspace where the user's repo lacks them, so the bind mount does not
/// hide them; the user's files win. Then as [`for_solve_with`].
pub async fn for_solve_workspace(
    ws: &super::Workspace,
    image: Option<&str>,
    config: DockerConfig,
) -> Result<Box<dyn Sandbox>, SandboxError> {
    let image = image.unwrap_or(DEFAULT_IMAGE);
    let (_scratch, tree) = copy_image_workdir(image, &config).await?;
    if tree.is_dir() {
        let added = ws.add_missing_from(&tree)?;
        if !added.is_empty() {
            tracing::info!(
                count = added.len(),
                "files of the image's {} added to the workspace",
                config.workdir
            );
        }
    }
    for_solve_with(ws.root(), Some(image), config).await
}

/// Builds the sandbox `solve --sandbox docker` uses: a container from
/// `image` with the workspace bind-mounted at `/testbed`, configured by the
/// installation's `docker.toml` (see [`DockerConfig::load`]).
pub async fn for_solve(
    workspace: &Path,
    image: Option<&str>,
) -> Result<Box<dyn Sandbox>, SandboxError> {
    for_solve_with(workspace, image, DockerConfig::load(None)?).await
}

/// [`for_solve`] with a config the caller loaded (from `--config`).
pub async fn for_solve_with(
    workspace: &Path,
    image: Option<&str>,
    config: DockerConfig,
) -> Result<Box<dyn Sandbox>, SandboxError> {
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
    fn every_container_is_hardened() {
        let mut spec = ContainerSpec::new("img", "n", DockerConfig::default());
        spec.binds = vec!["/host/a:b/ws:/testbed".into(), "/r:/report:ro".into()];
        let host = host_config(&spec).unwrap();
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(host.cap_add, None, "agent sandboxes get no capability back");
        assert_eq!(host.security_opt, Some(vec!["no-new-privileges".into()]));
        assert_eq!(
            host.cgroupns_mode,
            Some(HostConfigCgroupnsModeEnum::PRIVATE)
        );
        assert_eq!(host.privileged, Some(false));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.nano_cpus, Some(2_000_000_000));
        assert_eq!(host.pids_limit, Some(4096));
        assert!(
            host.binds.is_none(),
            "binds would create missing host paths"
        );
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts[0].source.as_deref(), Some("/host/a:b/ws"));
        assert_eq!(mounts[0].target.as_deref(), Some("/testbed"));
        assert_eq!(mounts[0].read_only, Some(false));
        assert_eq!(mounts[1].read_only, Some(true));
        assert!(bind_mount("relative:/x").is_err());
        assert!(bind_mount("/only-one-path").is_err());
    }

    /// On Podman the same body goes to the libpod API: every hardening
    /// field arrives, with the namespaces explicit.
    #[test]
    fn podman_containers_are_hardened_the_same() {
        let mut spec = ContainerSpec::new("img", "n", DockerConfig::default());
        spec.binds = vec!["/host/ws:/testbed".into(), "/r:/report:ro".into()];
        spec.env = vec!["A=b=c".into()];
        let body = create_body(&spec).unwrap();
        let g = super::super::libpod::spec_generator("n", &body).unwrap();
        assert_eq!(g["name"], "n");
        assert_eq!(g["image"], "img");
        assert_eq!(g["command"][0], "bash");
        assert_eq!(g["labels"][LABEL], "1");
        assert_eq!(g["env"]["A"], "b=c");
        assert_eq!(g["work_dir"], "/testbed");
        assert_eq!(g["cap_drop"], serde_json::json!(["ALL"]));
        assert!(g.get("cap_add").is_none());
        assert_eq!(g["no_new_privileges"], true);
        assert_eq!(g["privileged"], false);
        for ns in ["cgroupns", "ipcns", "pidns"] {
            assert_eq!(g[ns]["nsmode"], "private", "{ns}");
        }
        assert_eq!(g["netns"]["nsmode"], "none");
        let limits = &g["resource_limits"];
        assert_eq!(limits["pids"]["limit"], 4096);
        assert_eq!(limits["cpu"]["quota"], 200_000);
        assert_eq!(limits["cpu"]["period"], 100_000);
        let memory = (DockerConfig::default().memory_mb * 1024 * 1024) as i64;
        assert_eq!(limits["memory"]["limit"], memory);
        assert_eq!(limits["memory"]["swap"], memory);
        let rlimits = g["r_limits"].as_array().unwrap();
        assert_eq!(rlimits.len(), 2);
        assert_eq!(rlimits[0]["type"], "nofile");
        assert_eq!(
            g["mounts"],
            serde_json::json!([
                {"type": "bind", "source": "/host/ws", "destination": "/testbed",
                 "options": ["bind", "rprivate", "rw"]},
                {"type": "bind", "source": "/r", "destination": "/report",
                 "options": ["bind", "rprivate", "ro"]},
            ])
        );
        // Grading containers get their capabilities back there too.
        let mut grading = DockerConfig::default();
        grading.cap_add = grading.eval_cap_add.clone();
        let body = create_body(&ContainerSpec::new("img", "n", grading.clone())).unwrap();
        let g = super::super::libpod::spec_generator("n", &body).unwrap();
        assert_eq!(g["cap_add"], serde_json::json!(grading.eval_cap_add));
    }

    /// Grading keeps the official harness's limits (no CPU quota) while the
    /// agent sandboxes keep theirs.
    #[test]
    fn grading_containers_have_no_cpu_quota() {
        let cfg = DockerConfig::default();
        let spec = ContainerSpec::new("i", "n", cfg.for_grading());
        let host = host_config(&spec).unwrap();
        assert_eq!(host.nano_cpus, None);
        assert_eq!(host.cap_add.unwrap(), GRADING_CAP_ADD);
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(cfg.for_grading().memory_mb, cfg.memory_mb);
        let spec = ContainerSpec::new("i", "n", cfg);
        assert_eq!(host_config(&spec).unwrap().nano_cpus, Some(2_000_000_000));
    }

    /// A config cannot hand back the capabilities that undo confinement.
    #[test]
    fn dangerous_capabilities_are_refused() {
        for bad in [
            "SYS_ADMIN",
            "CAP_SYS_ADMIN",
            "ALL",
            "NET_ADMIN",
            "chown",
            "",
        ] {
            for key in ["cap_add", "eval_cap_add"] {
                let text = format!("{key} = [\"{bad}\"]");
                assert!(
                    DockerConfig::parse(&text, "t").is_err(),
                    "{key} {bad} accepted"
                );
            }
        }
        let ok = DockerConfig::parse("cap_add = [\"CAP_KILL\"]", "t").unwrap();
        let spec = ContainerSpec::new("i", "n", ok);
        assert_eq!(host_config(&spec).unwrap().cap_add.unwrap(), ["CAP_KILL"]);
        assert!(DockerConfig::parse("cpus = -1.0", "t").is_err());
    }

    #[test]
    fn the_sandbox_user_is_the_workspace_owner() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let meta = std::fs::metadata(d.path()).unwrap();
        assert_eq!(
            sandbox_user(WORKSPACE_OWNER, d.path()).unwrap(),
            format!("{}:{}", meta.uid(), meta.gid())
        );
        assert_eq!(sandbox_user("1000:1000", d.path()).unwrap(), "1000:1000");
        assert_eq!(sandbox_user("", d.path()).unwrap(), "");
        assert!(sandbox_user(WORKSPACE_OWNER, &d.path().join("gone")).is_err());
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
