//! The local sandbox: every command in its own bubblewrap container.
//!
//! Each [`Sandbox::exec`] is one `bwrap ... bash -c CMD` invocation. What the
//! command sees:
//! - a memory-backed root, read-only once built (`--remount-ro /`), holding
//!   read-only binds of the system directories (`/usr`, `/etc`...), of the
//!   toolchains that live in a home directory (rustup, cargo, pyenv) and of
//!   the directories on airgate's `PATH`, minus masked secrets
//!   (`/etc/shadow`, `/etc/ssh`, cargo credentials...). The user's home,
//!   `/var`, `/run`, `/srv` and other users' homes are simply not there;
//! - the workspace, writable, at the same absolute path as on the host (file
//!   tools and commands agree on paths); every parent of it read-only, so no
//!   `../conftest.py` or `../.cargo/config.toml` can be planted;
//! - a private `/tmp` (a tmpfs that dies with the command) and a private
//!   `$HOME` ([`HOME_MOUNT`]): a harness-owned host directory kept for an
//!   episode, a brand-new one for [`Sandbox::fresh`], or a tmpfs;
//! - no network (an empty loopback only), its own PID, IPC, UTS, cgroup and
//!   user namespaces, no capabilities, no nested user namespaces, a fresh
//!   `/proc` (only its own processes) and a minimal `/dev`;
//! - a cleared environment with a short allowlist;
//! - rlimits from [`SandboxConfig::limits`].
//!
//! Nothing survives a command: when `bash` ends, bubblewrap's PID 1 exits
//! and the kernel kills everything left in the PID namespace (`setsid`,
//! double forks included). A timeout or a dropped future kills bubblewrap's
//! process group, and `--die-with-parent` takes the namespace down with it.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use async_trait::async_trait;

use super::config::{Limits, SandboxConfig, check_env_name, looks_secret};
use super::local::exec_command;
use super::{ExecOutput, ExecRequest, REPORT_MOUNT, Sandbox, SandboxError};

/// Where the sandbox's private home is mounted (and what `$HOME` says).
pub const HOME_MOUNT: &str = "/airgate-home";

/// Host trees that are never shown, whatever the settings say (sockets,
/// logs, other services' state, kernel interfaces).
const DENIED_ROOTS: [&str; 6] = ["/proc", "/sys", "/dev", "/run", "/var", "/srv"];

/// The descriptor through which the sandboxed shell reports that it started.
const STARTED_FD: i32 = 3;

/// The descriptor on which bubblewrap reports its PID 1 (`--info-fd`).
const INFO_FD: i32 = 4;

/// How long to wait for a killed namespace to empty before giving up (a
/// process stuck in uninterruptible I/O can delay it).
const TEARDOWN_LIMIT_MS: i32 = 10_000;

/// How to install bubblewrap, or to do without it: the end of every
/// "sandbox unavailable" message.
const INSTALL_HINT: &str =
    "install it (`apt-get install bubblewrap`) or pass `--sandbox none` to run unconfined";

/// A snapshot of airgate's environment (names that are not UTF-8 are dropped).
type HostEnv = BTreeMap<String, OsString>;

/// Where the sandbox's `$HOME` comes from.
#[derive(Debug, Clone)]
enum Home {
    /// A harness-owned host directory (kept across an episode's commands).
    Host(PathBuf),
    /// A brand-new directory owned by this sandbox, removed with it.
    Owned(Arc<tempfile::TempDir>),
    /// A tmpfs per command.
    Memory,
}

impl Home {
    fn host_dir(&self) -> Option<&Path> {
        match self {
            Home::Host(p) => Some(p),
            Home::Owned(t) => Some(t.path()),
            Home::Memory => None,
        }
    }
}

/// Runs each command in its own bubblewrap sandbox, with only the workspace
/// writable (see the module documentation for the layout).
#[derive(Debug, Clone)]
pub struct BwrapSandbox {
    root: PathBuf,
    cfg: Arc<SandboxConfig>,
    home: Home,
    report: Option<PathBuf>,
    bwrap: PathBuf,
    /// Everything between `bwrap` and the per-command part, built once.
    args: Arc<Vec<OsString>>,
    bash: PathBuf,
}

impl BwrapSandbox {
    /// A sandbox whose commands run in `root` (an existing directory, given
    /// by its canonical path). `home` is a harness-owned directory for the
    /// sandbox's `$HOME` (created if missing; `None` = a tmpfs per command).
    pub fn new(
        root: &Path,
        home: Option<PathBuf>,
        cfg: Arc<SandboxConfig>,
    ) -> Result<Self, SandboxError> {
        let home = match home {
            Some(h) => {
                std::fs::create_dir_all(&h)
                    .map_err(|e| SandboxError::io(format!("creating {}", h.display()), e))?;
                Home::Host(h)
            }
            None => Home::Memory,
        };
        Self::build(root, home, None, cfg, &host_env())
    }

    fn build(
        root: &Path,
        home: Home,
        report: Option<PathBuf>,
        cfg: Arc<SandboxConfig>,
        host: &HostEnv,
    ) -> Result<Self, SandboxError> {
        let bwrap = find_bwrap().ok_or_else(|| {
            SandboxError::Unavailable(format!(
                "bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
            ))
        })?;
        warn_nproc_for_root(&cfg.limits);
        let (args, bash) = {
            let l = Layout::plan(root, home.host_dir(), report.as_deref(), &cfg, host, false)?;
            (l.args, l.bash)
        };
        Ok(Self {
            root: root.to_path_buf(),
            cfg,
            home,
            report,
            bwrap,
            args: Arc::new(args),
            bash,
        })
    }

    /// The host directory behind the sandbox's `$HOME` (`None` for a tmpfs).
    pub fn home_dir(&self) -> Option<&Path> {
        self.home.host_dir()
    }

    /// The full `bwrap` command line for `req`.
    fn command(&self, req: &ExecRequest) -> Result<Command, SandboxError> {
        let mut cmd = Command::new(&self.bwrap);
        // bubblewrap itself runs on the host: it gets none of airgate's
        // environment, and the task's variables reach it only as
        // `--setenv` arguments applied inside (an `LD_PRELOAD` from a task
        // file must never load into a host process).
        cmd.env_clear()
            .current_dir("/")
            .args(self.args.iter())
            .args(["--info-fd", &INFO_FD.to_string()]);
        for (k, v) in &req.env {
            check_env_name(k).map_err(SandboxError::Other)?;
            cmd.arg("--setenv").arg(k).arg(v);
        }
        // The first line tells us the sandbox is up (so a bubblewrap setup
        // failure is a SandboxError, not a command that "exited 1") and
        // closes our descriptors; `eval` then runs the command exactly as
        // `bash -c` would.
        cmd.arg("--")
            .arg(&self.bash)
            .arg("-c")
            .arg(format!(
                "printf . >&{STARTED_FD}; exec {STARTED_FD}>&- {INFO_FD}>&-; eval \"$1\""
            ))
            .arg("bash")
            .arg(&req.command);
        Ok(cmd)
    }
}

#[async_trait]
impl Sandbox for BwrapSandbox {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn workspace(&self) -> &Path {
        &self.root
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        let mut cmd = self.command(req)?;
        let (mut started_r, started_w) =
            std::io::pipe().map_err(|e| SandboxError::io("creating a status pipe", e))?;
        let (mut info_r, info_w) =
            std::io::pipe().map_err(|e| SandboxError::io("creating a status pipe", e))?;
        let limits = self.cfg.limits;
        // SAFETY: the closure runs in the forked child before exec and only
        // makes async-signal-safe system calls (fcntl, dup2, prctl,
        // getrlimit, setrlimit); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                // Move both pipes out of the way first (close-on-exec
                // copies above 10), then onto their fixed numbers (dup2
                // clears close-on-exec there).
                let high_started = libc::fcntl(started_w.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10);
                let high_info = libc::fcntl(info_w.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10);
                if high_started < 0
                    || high_info < 0
                    || libc::dup2(high_started, STARTED_FD) < 0
                    || libc::dup2(high_info, INFO_FD) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // Dies with airgate's waiting thread even if airgate is
                // SIGKILLed (bubblewrap's own --die-with-parent covers the
                // sandbox below it).
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                apply_limits(&limits)
            });
        }
        let out = exec_command(cmd, req).await?;
        // bubblewrap returns as soon as `bash` exits; its PID 1 then kills
        // whatever is left (`setsid` daemons...). Wait for that, so nothing
        // the command started is alive when exec returns.
        let info = read_available(&mut info_r);
        super::blocking(|| wait_for_namespace(&info));
        if !out.timed_out && !started(&mut started_r) {
            let first = out.output.lines().next().unwrap_or("").trim();
            return Err(SandboxError::Other(format!(
                "bubblewrap could not start the sandbox in {}: {first}",
                self.root.display()
            )));
        }
        Ok(out)
    }

    async fn fresh(
        &self,
        root: &Path,
        report_dir: Option<&Path>,
    ) -> Result<Box<dyn Sandbox>, SandboxError> {
        // A brand-new home: a gate run must never see a cache the agent
        // could have poisoned (Go caches test results).
        let home = tempfile::Builder::new()
            .prefix("airgate-home-")
            .tempdir()
            .map_err(|e| SandboxError::io("creating a fresh sandbox home", e))?;
        let sb = Self::build(
            root,
            Home::Owned(Arc::new(home)),
            report_dir.map(Path::to_path_buf),
            self.cfg.clone(),
            &host_env(),
        )?;
        Ok(Box::new(sb))
    }

    fn report_dir(&self) -> Option<String> {
        self.report.as_ref().map(|_| REPORT_MOUNT.to_string())
    }

    fn stdio_command(&self, command: &str) -> Result<Command, SandboxError> {
        // The layout of `exec`, but the workspace read-only and a tmpfs
        // HOME: a long-lived server must not change the patch or plant
        // state in the HOME the agent's commands share.
        let l = Layout::plan(&self.root, None, None, &self.cfg, &host_env(), true)?;
        let mut cmd = Command::new(&self.bwrap);
        cmd.env_clear()
            .current_dir("/")
            .args(l.args)
            .arg("--")
            .arg(&l.bash)
            .arg("-c")
            .arg(command)
            .process_group(0);
        let limits = self.cfg.limits;
        // SAFETY: prctl, getrlimit and setrlimit are async-signal-safe and
        // allocate nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                apply_limits(&limits)
            });
        }
        Ok(cmd)
    }
}

/// Checks that bubblewrap is installed and can build a sandbox here (user
/// namespaces allowed). The error is one line saying what to do.
pub fn preflight() -> Result<(), SandboxError> {
    let bwrap = find_bwrap().ok_or_else(|| {
        SandboxError::Unavailable(format!(
            "bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
        ))
    })?;
    let out = Command::new(&bwrap)
        .env_clear()
        .args([
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--ro-bind",
            "/",
            "/",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            "1048576",
            "--tmpfs",
            "/tmp",
            "--",
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            SandboxError::Unavailable(format!(
                "cannot run {} ({e}): {INSTALL_HINT}",
                bwrap.display()
            ))
        })?;
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr);
    let why = why.lines().next().unwrap_or("no message").trim();
    if why.contains("Unknown option") {
        return Err(SandboxError::Unavailable(format!(
            "{} is too old ({why}): bubblewrap 0.8 or later is needed; upgrade it \
             (`apt-get install bubblewrap`) or pass `--sandbox none` to run unconfined",
            bwrap.display()
        )));
    }
    Err(SandboxError::Unavailable(format!(
        "bubblewrap cannot create a sandbox here ({why}): allow unprivileged user \
         namespaces, or pass `--sandbox none` to run unconfined"
    )))
}

/// `bwrap` on airgate's `PATH`, else the Debian location.
fn find_bwrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join("bwrap"))
        .chain([PathBuf::from("/usr/bin/bwrap")])
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn host_env() -> HostEnv {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
        .collect()
}

/// Whether the sandboxed shell wrote its "started" byte.
fn started(r: &mut std::io::PipeReader) -> bool {
    !read_available(r).is_empty()
}

/// What a pipe holds now, without blocking (every writer should be gone
/// once exec returned, but a wait here must never hang airgate).
fn read_available(r: &mut std::io::PipeReader) -> Vec<u8> {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fd = r.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < 64 * 1024 {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// Waits until the PID namespace bubblewrap reported on `--info-fd` is
/// empty. Its PID 1 finishes exiting only after the kernel has killed and
/// reaped every other process in it, so PID 1's exit is the signal.
fn wait_for_namespace(info: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Info {
        #[serde(rename = "child-pid")]
        child_pid: i32,
        #[serde(rename = "pid-namespace")]
        pid_namespace: Option<u64>,
    }
    let Some(Ok(info)) = serde_json::Deserializer::from_slice(info)
        .into_iter::<Info>()
        .next()
    else {
        return;
    };
    let pid = info.child_pid;
    if pid <= 1 {
        return;
    }
    // Pin the process first (a pidfd cannot be recycled), then check it is
    // still that sandbox's PID 1 and not a newcomer with a reused number.
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let is_ours = || {
        let link = std::fs::read_link(format!("/proc/{pid}/ns/pid"));
        match (link, info.pid_namespace) {
            (Ok(l), Some(ns)) => l.to_string_lossy() == format!("pid:[{ns}]"),
            (Ok(_), None) => true,
            // Gone, or a zombie (its namespace links are already released).
            (Err(_), _) => false,
        }
    };
    if raw < 0 {
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            // Kernels before 5.3: poll /proc.
            for _ in 0..TEARDOWN_LIMIT_MS {
                if !is_ours() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            tracing::warn!(pid, "a sandbox namespace outlived its command");
        }
        return;
    }
    // SAFETY: `raw` is a new descriptor that nothing else owns.
    let pidfd =
        unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw as i32) };
    if !is_ours() {
        return;
    }
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, TEARDOWN_LIMIT_MS) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n == 0 {
            tracing::warn!(pid, "a sandbox namespace outlived its command");
        }
        return;
    }
}

fn warn_nproc_for_root(limits: &Limits) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: geteuid cannot fail.
    if limits.processes > 0 && unsafe { libc::geteuid() } == 0 {
        ONCE.call_once(|| {
            tracing::warn!(
                "airgate runs as root: the kernel does not enforce the sandbox's process limit \
                 (RLIMIT_NPROC) for root; run airgate as an ordinary user to bound fork bombs"
            );
        });
    }
}

/// Applies the configured rlimits (soft = hard, so the sandbox cannot raise
/// them) in the child about to become bubblewrap. Memory is bounded with
/// `RLIMIT_DATA` (heap and private writable mappings), not `RLIMIT_AS`: Go
/// and node reserve many GiB of address space they never touch, and an
/// address-space limit kills them at start.
fn apply_limits(l: &Limits) -> std::io::Result<()> {
    const MIB: u64 = 1 << 20;
    set_limit(libc::RLIMIT_NPROC, l.processes)?;
    set_limit(libc::RLIMIT_FSIZE, l.file_size_mb.saturating_mul(MIB))?;
    set_limit(libc::RLIMIT_DATA, l.memory_mb.saturating_mul(MIB))?;
    set_limit(libc::RLIMIT_NOFILE, l.open_files)?;
    // No core dumps of sandboxed processes (they could hold secrets of the
    // task and land in the workspace).
    // SAFETY: setrlimit with a valid struct.
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type Resource = libc::c_int;

fn set_limit(resource: Resource, value: u64) -> std::io::Result<()> {
    if value == 0 {
        return Ok(());
    }
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with valid pointers.
    unsafe {
        if libc::getrlimit(resource, &mut cur) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let v = (value as libc::rlim_t).min(cur.rlim_max);
        let new = libc::rlimit {
            rlim_cur: v,
            rlim_max: v,
        };
        if libc::setrlimit(resource, &new) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The bubblewrap arguments for one sandbox, built once.
struct Layout<'a> {
    cfg: &'a SandboxConfig,
    root: &'a Path,
    user_home: Option<PathBuf>,
    args: Vec<OsString>,
    /// Canonical host paths shown read-only.
    bound: Vec<PathBuf>,
    /// Symbolic links recreated (their paths).
    links: HashSet<PathBuf>,
    /// Directories masked so far.
    masked: Vec<PathBuf>,
    bash: PathBuf,
}

/// Whether a path to show came from the settings (an error if refused) or
/// was derived from the environment (skipped with a warning).
#[derive(Clone, Copy, PartialEq)]
enum Origin {
    Settings,
    Derived,
}

impl<'a> Layout<'a> {
    fn plan(
        root: &'a Path,
        home: Option<&Path>,
        report: Option<&Path>,
        cfg: &'a SandboxConfig,
        host: &HostEnv,
        ro_workspace: bool,
    ) -> Result<Self, SandboxError> {
        let user_home = cfg.home().map(|h| std::fs::canonicalize(&h).unwrap_or(h));
        let mut l = Layout {
            cfg,
            root,
            user_home,
            args: Vec::new(),
            bound: Vec::new(),
            links: HashSet::new(),
            masked: Vec::new(),
            bash: PathBuf::new(),
        };
        l.check_workspace()?;
        let home = home.map(|h| l.check_private(h, "home")).transpose()?;
        let report = report.map(|r| l.check_private(r, "report")).transpose()?;

        l.push([
            "--unshare-all",
            // Explicit: as root, --unshare-all only *tries* a user namespace.
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
        ]);
        l.tmpfs("/tmp");
        // A workspace under /tmp: its top directory there becomes a
        // read-only tmpfs (after the workspace is bound into it), so every
        // parent the host has is read-only inside. /tmp itself stays
        // writable, but it is this command's own tmpfs and dies with it.
        let tmp_top = l.tmp_top()?;
        if let Some(top) = &tmp_top {
            l.push(["--tmpfs"]);
            l.args.push(top.clone().into());
        }

        for p in &cfg.system_paths {
            if let Some(p) = cfg.expand(p) {
                l.show(&p, Origin::Settings)?;
            }
        }
        let mut env: Vec<(String, OsString)> = Vec::new();
        let mut toolchain_dirs = Vec::new();
        for t in &cfg.toolchains {
            let p = match host.get(&t.var) {
                Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
                _ if t.default.is_empty() => None,
                _ => cfg.expand(&t.default),
            };
            let Some(p) = p.filter(|p| p.is_absolute()) else {
                continue;
            };
            if let Some(c) = l.show(&p, Origin::Derived)? {
                env.push((t.var.clone(), p.into_os_string()));
                toolchain_dirs.push(c);
            }
        }
        let path = host
            .get("PATH")
            .cloned()
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        let path_dirs: Vec<PathBuf> = std::env::split_paths(&path)
            .filter(|d| d.is_absolute())
            .collect();
        if cfg.path_from_env {
            for d in &path_dirs {
                l.show(d, Origin::Derived)?;
            }
        }
        for p in &cfg.extra_paths {
            if let Some(p) = cfg.expand(p) {
                l.show(&p, Origin::Settings)?;
            }
        }

        for m in &cfg.masks {
            if let Some(m) = cfg.expand(m) {
                l.mask(&m);
            }
        }
        l.mask_toolchain_secrets(&toolchain_dirs)?;

        match home {
            Some(h) => l.bind("--bind", &h, Path::new(HOME_MOUNT)),
            None => l.tmpfs(HOME_MOUNT),
        }
        if let Some(r) = &report {
            l.bind("--bind", r, Path::new(REPORT_MOUNT));
        }
        l.bind(
            if ro_workspace { "--ro-bind" } else { "--bind" },
            root,
            root,
        );
        if let Some(top) = &tmp_top {
            l.push(["--remount-ro"]);
            l.args.push(top.clone().into());
        }
        l.push(["--remount-ro", "/", "--chdir"]);
        l.args.push(root.into());

        l.bash = l.find_bash()?;

        // The environment: a short allowlist, then fixed values, then the
        // toolchains. Nothing else of airgate's environment exists inside.
        let mut all: Vec<(String, OsString)> = vec![
            (
                "PATH".into(),
                std::env::join_paths(&path_dirs).unwrap_or_else(|_| path.clone()),
            ),
            ("HOME".into(), HOME_MOUNT.into()),
            ("TMPDIR".into(), "/tmp".into()),
        ];
        for name in &cfg.env_passthrough {
            if looks_secret(name) {
                continue;
            }
            if let Some(v) = host.get(name) {
                all.push((name.clone(), v.clone()));
            }
        }
        for (k, v) in &cfg.env {
            all.push((k.clone(), v.replace("{home}", HOME_MOUNT).into()));
        }
        all.extend(env);
        for (k, v) in all {
            l.push(["--setenv"]);
            l.args.push(k.into());
            l.args.push(v);
        }
        Ok(l)
    }

    fn push<const N: usize>(&mut self, a: [&str; N]) {
        self.args.extend(a.iter().map(OsString::from));
    }

    fn tmpfs(&mut self, dest: &str) {
        if self.cfg.limits.tmp_size_mb > 0 {
            self.push(["--size"]);
            self.args
                .push((self.cfg.limits.tmp_size_mb << 20).to_string().into());
        }
        self.push(["--tmpfs", dest]);
    }

    fn bind(&mut self, how: &str, src: &Path, dest: &Path) {
        self.args.push(how.into());
        self.args.push(src.into());
        self.args.push(dest.into());
    }

    fn covered(&self, c: &Path) -> bool {
        self.bound.iter().any(|b| c.starts_with(b))
    }

    /// Why `c` (canonical) must never be shown, if it must not.
    fn refused(&self, c: &Path) -> Option<&'static str> {
        if c == Path::new("/") {
            return Some("the whole filesystem");
        }
        if self.user_home.as_ref().is_some_and(|h| h.starts_with(c)) {
            return Some("the user's home (or a parent of it)");
        }
        if DENIED_ROOTS.iter().any(|d| c.starts_with(d)) {
            return Some("a runtime tree (/proc, /sys, /dev, /run, /var, /srv)");
        }
        let in_user_home = self.user_home.as_ref().is_some_and(|h| c.starts_with(h));
        if c.starts_with("/home") && !in_user_home {
            return Some("another user's home");
        }
        None
    }

    /// The workspace: absolute, canonical, a directory, never `/`, the
    /// user's home or a parent of it, nor a kernel tree.
    fn check_workspace(&self) -> Result<(), SandboxError> {
        let root = self.root;
        let bad = |why: &str| {
            SandboxError::Other(format!(
                "cannot sandbox workspace {}: {why}",
                root.display()
            ))
        };
        let c = std::fs::canonicalize(root)
            .map_err(|e| SandboxError::io(format!("resolving workspace {}", root.display()), e))?;
        if c != root {
            return Err(bad(&format!(
                "give its canonical path {} (no symbolic links, no ..)",
                c.display()
            )));
        }
        if !c.is_dir() {
            return Err(bad("not a directory"));
        }
        if c == Path::new("/") || c == Path::new("/tmp") {
            return Err(bad("it must be a directory of its own"));
        }
        if self.user_home.as_ref().is_some_and(|h| h.starts_with(&c)) {
            return Err(bad("it holds the user's home"));
        }
        for d in ["/proc", "/sys", "/dev", HOME_MOUNT, REPORT_MOUNT] {
            if c.starts_with(d) {
                return Err(bad(&format!("{d} is reserved")));
            }
        }
        Ok(())
    }

    /// A harness-owned directory made writable inside (home, report dir):
    /// canonical, and sharing nothing with the workspace or the user's home.
    fn check_private(&self, dir: &Path, what: &str) -> Result<PathBuf, SandboxError> {
        let c = std::fs::canonicalize(dir)
            .map_err(|e| SandboxError::io(format!("resolving {what} dir {}", dir.display()), e))?;
        let overlaps = c.starts_with(self.root) || self.root.starts_with(&c);
        let exposes_home = self.user_home.as_ref().is_some_and(|h| h.starts_with(&c));
        if overlaps || exposes_home || c == Path::new("/") {
            return Err(SandboxError::Other(format!(
                "cannot use {} as the sandbox's {what} dir: it must be a directory of its own, \
                 outside the workspace {} and not holding the user's home",
                c.display(),
                self.root.display()
            )));
        }
        Ok(c)
    }

    /// `/tmp/<first component>` when the workspace lies deeper under /tmp.
    fn tmp_top(&self) -> Result<Option<PathBuf>, SandboxError> {
        let Ok(rest) = self.root.strip_prefix("/tmp") else {
            return Ok(None);
        };
        let Some(first) = rest.components().next() else {
            return Ok(None);
        };
        let top = Path::new("/tmp").join(first);
        Ok((top != self.root).then_some(top))
    }

    /// Shows `p` read-only at its path. Returns its canonical path when it
    /// is visible (`None` when absent, inside the workspace, or refused).
    fn show(&mut self, p: &Path, origin: Origin) -> Result<Option<PathBuf>, SandboxError> {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return Ok(None);
        };
        let Ok(c) = std::fs::canonicalize(p) else {
            return Ok(None);
        };
        if let Some(why) = self.refused(&c) {
            if origin == Origin::Settings {
                return Err(SandboxError::Other(format!(
                    "sandbox settings list {}, which would expose {why}: remove it",
                    p.display()
                )));
            }
            tracing::warn!(path = %p.display(), "not shown in the sandbox: it would expose {why}");
            return Ok(None);
        }
        if c.starts_with(self.root) {
            return Ok(None);
        }
        if !self.covered(&c) {
            self.bind("--ro-bind", &c.clone(), &c.clone());
            self.bound.push(c.clone());
        }
        if meta.file_type().is_symlink() && !self.links.contains(p) {
            let parent_visible = p
                .parent()
                .and_then(|d| std::fs::canonicalize(d).ok())
                .is_some_and(|d| self.covered(&d));
            if !parent_visible {
                let target = std::fs::read_link(p)
                    .map_err(|e| SandboxError::io(format!("reading link {}", p.display()), e))?;
                self.bind("--symlink", &target, p);
                self.links.insert(p.to_path_buf());
            }
        }
        Ok(Some(c))
    }

    /// Hides `p` if it is visible: a directory becomes an empty read-only
    /// tmpfs, a file is covered by `/dev/null` (unreadable: no devices).
    fn mask(&mut self, p: &Path) {
        let Ok(c) = std::fs::canonicalize(p) else {
            return;
        };
        if !self.covered(&c) || c.starts_with(self.root) {
            return;
        }
        if self.masked.iter().any(|m| c.starts_with(m)) {
            return;
        }
        if c.is_dir() {
            self.push(["--tmpfs"]);
            self.args.push(c.clone().into());
            self.push(["--remount-ro"]);
            self.args.push(c.clone().into());
            self.masked.push(c);
        } else {
            self.bind("--ro-bind", Path::new("/dev/null"), &c);
        }
    }

    fn mask_toolchain_secrets(&mut self, dirs: &[PathBuf]) -> Result<(), SandboxError> {
        let mut b = globset::GlobSetBuilder::new();
        for g in &self.cfg.toolchain_masks {
            b.add(globset::Glob::new(g).map_err(|e| {
                SandboxError::Other(format!("sandbox settings toolchain_masks: {e}"))
            })?);
        }
        let set = b
            .build()
            .map_err(|e| SandboxError::Other(format!("sandbox settings toolchain_masks: {e}")))?;
        for d in dirs {
            let Ok(entries) = std::fs::read_dir(d) else {
                continue;
            };
            let mut hits: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .filter(|e| set.is_match(e.file_name()))
                .map(|e| e.path())
                .collect();
            hits.sort();
            for h in hits {
                self.mask(&h);
            }
        }
        Ok(())
    }

    /// `bash`, which must be visible inside.
    fn find_bash(&self) -> Result<PathBuf, SandboxError> {
        ["/usr/bin/bash", "/bin/bash"]
            .iter()
            .map(Path::new)
            .filter(|p| is_executable(p))
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .find(|c| self.covered(c))
            .ok_or_else(|| {
                SandboxError::Other(
                    "bash is not visible in the sandbox: add its directory to system_paths in \
                     sandbox.toml"
                        .into(),
                )
            })
    }
}

#[cfg(test)]
mod tests;
