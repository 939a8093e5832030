//! Which container engine the Docker backend talks to: Docker, or Podman
//! through its Docker-compatible API (`podman system service`). One place
//! decides it — [`selected`] — from `--engine` / `AIRGATE_ENGINE`, else from
//! `DOCKER_HOST`; [`super::docker::connect`] and the `HostConfig` follow it.

use std::path::PathBuf;
use std::sync::OnceLock;

use bollard::models::ResourcesUlimits;

/// A container engine reachable over the Docker Engine API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// dockerd (`/var/run/docker.sock` unless `DOCKER_HOST` says otherwise).
    Docker,
    /// Podman's Docker-compatible service, rootless or root.
    Podman,
}

impl Engine {
    /// The engine's name as users type it.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
        }
    }
}

static SELECTED: OnceLock<Engine> = OnceLock::new();

/// Fixes the engine for this process (the CLI's `--engine`). Later calls are
/// ignored so one run never mixes engines.
pub fn select(engine: Engine) {
    let _ = SELECTED.set(engine);
}

/// The engine this process uses: the one [`select`]ed, else `AIRGATE_ENGINE`,
/// else Podman when `DOCKER_HOST` names a podman socket, else Docker.
pub fn selected() -> Engine {
    *SELECTED.get_or_init(|| {
        let named = std::env::var("AIRGATE_ENGINE").ok();
        let host = std::env::var("DOCKER_HOST").ok();
        infer(named.as_deref(), host.as_deref())
    })
}

/// The engine named by `AIRGATE_ENGINE` (`named`), else guessed from
/// `DOCKER_HOST` (`host`).
fn infer(named: Option<&str>, host: Option<&str>) -> Engine {
    match named.map(str::trim) {
        Some(n) if n.eq_ignore_ascii_case("podman") => return Engine::Podman,
        Some(n) if n.eq_ignore_ascii_case("docker") => return Engine::Docker,
        _ => {}
    }
    match host {
        Some(h) if h.contains("podman") => Engine::Podman,
        _ => Engine::Docker,
    }
}

/// Where Podman's API socket is by default: `/run/podman/podman.sock` for
/// root, `$XDG_RUNTIME_DIR/podman/podman.sock` rootless.
pub fn podman_default_socket() -> PathBuf {
    let rootless = current_uid() != 0;
    podman_socket_for(
        rootless,
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
    )
}

fn podman_socket_for(rootless: bool, xdg_runtime_dir: Option<PathBuf>) -> PathBuf {
    match (rootless, xdg_runtime_dir) {
        (true, Some(dir)) if !dir.as_os_str().is_empty() => dir.join("podman/podman.sock"),
        (true, _) => PathBuf::from(format!("/run/user/{}/podman/podman.sock", current_uid())),
        (false, _) => PathBuf::from("/run/podman/podman.sock"),
    }
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// What to tell a user whose Podman socket is missing.
pub fn podman_socket_hint(socket: &std::path::Path) -> String {
    format!(
        "podman API socket {} not found: run `systemctl start podman.socket` \
         (`systemctl --user start podman.socket` rootless) or \
         `podman system service --time=0 unix://{}`, or point DOCKER_HOST at it",
        socket.display(),
        socket.display()
    )
}

/// Ceilings for the explicit ulimits. The engine's own service process may
/// run with lower limits than this client (a systemd unit, another login),
/// and the container cannot exceed them; the pids cgroup limit is the real
/// process cap, so a moderate `nproc` costs nothing.
const NOFILE_CEILING: i64 = 65_536;
const NPROC_CEILING: i64 = 16_384;

/// Explicit `nofile` and `nproc` ulimits: this process's current soft limits,
/// capped at moderate ceilings. Podman's defaults are higher than a limited
/// host allows (`error setting rlimit ... operation not permitted`); setting
/// them explicitly works on both engines and never raises what the host
/// grants.
pub fn host_ulimits() -> Vec<ResourcesUlimits> {
    [
        ("nofile", libc::RLIMIT_NOFILE, NOFILE_CEILING),
        ("nproc", libc::RLIMIT_NPROC, NPROC_CEILING),
    ]
    .into_iter()
    .map(|(name, resource, ceiling)| {
        let limit = soft_limit(resource).map_or(ceiling, |soft| soft.min(ceiling));
        ResourcesUlimits {
            name: Some(name.to_string()),
            soft: Some(limit),
            hard: Some(limit),
        }
    })
    .collect()
}

fn soft_limit(resource: libc::__rlimit_resource_t) -> Option<i64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    let rc = unsafe { libc::getrlimit(resource, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    i64::try_from(lim.rlim_cur).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_comes_from_the_flag_env_or_docker_host() {
        assert_eq!(infer(None, None), Engine::Docker);
        assert_eq!(infer(Some("podman"), None), Engine::Podman);
        assert_eq!(
            infer(Some("Docker"), Some("unix:///run/podman/podman.sock")),
            Engine::Docker
        );
        assert_eq!(
            infer(None, Some("unix:///run/podman/podman.sock")),
            Engine::Podman
        );
        assert_eq!(
            infer(None, Some("unix:///var/run/docker.sock")),
            Engine::Docker
        );
        assert_eq!(infer(Some(""), Some("tcp://h:2375")), Engine::Docker);
    }

    #[test]
    fn podman_sockets_follow_root_and_rootless() {
        assert_eq!(
            podman_socket_for(false, Some("/run/user/7".into())),
            PathBuf::from("/run/podman/podman.sock")
        );
        assert_eq!(
            podman_socket_for(true, Some("/run/user/7".into())),
            PathBuf::from("/run/user/7/podman/podman.sock")
        );
    }

    #[test]
    fn ulimits_never_exceed_the_host_soft_limits() {
        for u in host_ulimits() {
            let resource = match u.name.as_deref() {
                Some("nofile") => libc::RLIMIT_NOFILE,
                Some("nproc") => libc::RLIMIT_NPROC,
                other => panic!("unexpected ulimit {other:?}"),
            };
            let host = soft_limit(resource).unwrap_or(i64::MAX);
            let limit = u.soft.expect("soft limit set");
            assert!(limit > 0 && limit <= host, "{u:?} exceeds host {host}");
            assert_eq!(u.hard, u.soft);
        }
        assert_eq!(
            host_ulimits().len(),
            2,
            "both nofile and nproc are explicit"
        );
    }
}
