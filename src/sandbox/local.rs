//! The unconfined sandbox (`--sandbox none`): commands run on this machine,
//! in the workspace, in their own process group so a timeout can kill every
//! descendant.
//!
//! This module also owns the spawn-and-wait machinery every process-based
//! sandbox shares ([`exec_command`]): process group, timeout, bounded
//! capture, and killing the group when the waiting future is dropped.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{BoundedCapture, ExecOutput, ExecRequest, Sandbox, SandboxError, timeout_notice};

/// Runs commands directly on the host, from the workspace directory, with
/// no confinement at all (`--sandbox none`): for people who know what they
/// do. [`super::bwrap::BwrapSandbox`] is the confined local sandbox.
#[derive(Debug, Clone)]
pub struct LocalSandbox {
    root: PathBuf,
    report: Option<PathBuf>,
}

impl LocalSandbox {
    /// A sandbox whose commands run in `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            report: None,
        }
    }

    /// The directory commands run in (also available through [`Sandbox`]).
    pub fn workspace(&self) -> &Path {
        &self.root
    }
}

#[async_trait]
impl Sandbox for LocalSandbox {
    fn kind(&self) -> &'static str {
        "none"
    }

    fn workspace(&self) -> &Path {
        &self.root
    }

    async fn fresh(
        &self,
        root: &Path,
        report_dir: Option<&Path>,
    ) -> Result<Box<dyn Sandbox>, SandboxError> {
        Ok(Box::new(LocalSandbox {
            root: root.to_path_buf(),
            report: report_dir.map(Path::to_path_buf),
        }))
    }

    fn report_dir(&self) -> Option<String> {
        self.report.as_ref().map(|p| p.display().to_string())
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
        exec_command(bash_command(&self.root, req), req).await
    }

    fn stdio_command(&self, command: &str) -> Result<Command, SandboxError> {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(command)
            .current_dir(&self.root)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(cmd)
    }
}

/// `bash -c CMD` in `cwd` with the request's extra environment, inheriting
/// the rest of this process's environment (unconfined).
fn bash_command(cwd: &Path, req: &ExecRequest) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(&req.command).current_dir(cwd);
    for (k, v) in &req.env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a prepared command (program, arguments, directory, environment,
/// `pre_exec` hooks) to completion under `req`'s timeout and capture limit.
/// Stdin is `/dev/null`; stdout and stderr share one bounded capture; the
/// command leads its own process group, and that group is killed on timeout,
/// when the leader exits (stragglers), and when the returned future is
/// dropped (Ctrl-C, an outer timeout).
pub(crate) async fn exec_command(
    cmd: Command,
    req: &ExecRequest,
) -> Result<ExecOutput, SandboxError> {
    let req = req.clone();
    let pgid = Arc::new(AtomicI32::new(0));
    // If this future is dropped (Ctrl-C, an outer timeout), the command's
    // whole process group dies with it.
    let guard = KillOnDrop {
        pgid: pgid.clone(),
        armed: true,
    };
    let slot = pgid.clone();
    let result = tokio::task::spawn_blocking(move || spawn_and_wait(cmd, &req, &slot))
        .await
        .map_err(|e| SandboxError::Other(format!("exec task failed: {e}")))?;
    guard.disarm();
    result
}

/// Runs `req` in `cwd` synchronously. Public so that other blocking callers
/// (the tiers validator, scripts) share one implementation.
pub fn run_blocking(cwd: &Path, req: &ExecRequest) -> Result<ExecOutput, SandboxError> {
    spawn_and_wait(bash_command(cwd, req), req, &AtomicI32::new(0))
}

/// The pgid slot's value once the waiting future is gone: a command spawned
/// after that (Ctrl-C landed between `spawn` and the pgid being published)
/// is killed by its own thread at once.
const CANCELLED: i32 = -1;

/// Kills a process group when dropped, unless disarmed first.
struct KillOnDrop {
    pgid: Arc<AtomicI32>,
    armed: bool,
}

impl KillOnDrop {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let pid = self.pgid.swap(CANCELLED, Ordering::SeqCst);
        if pid > 0 {
            kill_group(pid);
        }
    }
}

/// The blocking half of [`exec_command`]; `pgid` is where the spawned
/// group's id is published for the cancelling side.
pub(crate) fn spawn_and_wait(
    mut cmd: Command,
    req: &ExecRequest,
    pgid: &AtomicI32,
) -> Result<ExecOutput, SandboxError> {
    let (reader, writer) =
        std::io::pipe().map_err(|e| SandboxError::io("creating output pipe", e))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| SandboxError::io("cloning output pipe", e))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer2))
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        let dir = cmd
            .get_current_dir()
            .map(|d| format!(" in {}", d.display()))
            .unwrap_or_default();
        SandboxError::io(
            format!("spawning `{}`{dir}", cmd.get_program().to_string_lossy()),
            e,
        )
    })?;
    // The Command still holds the write ends; drop it so EOF arrives when the
    // child's process group exits.
    drop(cmd);
    let pid = child.id() as i32;
    if pgid
        .compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        // The caller was cancelled while we were spawning: nobody will
        // kill this group for us, so do it now (the loop below reaps it).
        kill_group(pid);
    }
    let limit = req.capture_limit;
    let reader_thread = std::thread::spawn(move || {
        let mut reader = reader;
        let mut cap = BoundedCapture::new(limit);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => cap.push(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        cap
    });

    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(e) => return Err(SandboxError::io("waiting for command", e)),
        }
        if start.elapsed() >= req.timeout {
            timed_out = true;
            kill_group(pid);
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5).max(Duration::from_millis(
            (start.elapsed().as_millis() as u64 / 50).min(50),
        )));
    };
    // Children that outlived the leader still hold the pipe: reap the group.
    if pgid.swap(0, Ordering::SeqCst) == pid {
        kill_group(pid);
    }
    let cap = reader_thread
        .join()
        .map_err(|_| SandboxError::Other("output reader panicked".into()))?;
    let (mut output, dropped) = cap.into_string();
    if timed_out {
        output.push_str(&timeout_notice(req.timeout));
    }
    Ok(ExecOutput {
        exit_code: if timed_out {
            None
        } else {
            status.and_then(|s| s.code())
        },
        output,
        timed_out,
        dropped_bytes: dropped,
        duration_ms: start.elapsed().as_millis() as u64,
    })
}

fn kill_group(pid: i32) {
    // SAFETY: killpg only sends a signal; a stale pgid yields ESRCH, ignored.
    unsafe {
        libc::killpg(pid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn combines_stdout_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let sb = LocalSandbox::new(dir.path());
        let out = sb
            .exec(&ExecRequest::new(
                "echo out; echo err >&2; exit 3",
                Duration::from_secs(10),
            ))
            .await
            .unwrap();
        assert_eq!(out.exit_code, Some(3));
        assert!(out.output.contains("out") && out.output.contains("err"));
        assert!(!out.success());
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let sb = LocalSandbox::new(dir.path());
        let marker = dir.path().join("survived");
        let cmd = format!("(sleep 2; touch {}) & sleep 100", marker.display());
        let out = sb
            .exec(&ExecRequest::new(cmd, Duration::from_millis(300)))
            .await
            .unwrap();
        assert!(out.timed_out);
        assert!(!out.success());
        assert!(out.output.contains("Timeout error"));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "a grandchild outlived the timeout");
    }

    /// Ctrl-C between `spawn` and publishing the pgid: the spawning thread
    /// sees the cancellation and kills the group itself.
    #[test]
    fn a_command_spawned_after_cancellation_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let cmd = format!("(sleep 1; touch {}) & sleep 100", marker.display());
        let started = Instant::now();
        let req = ExecRequest::new(cmd, Duration::from_secs(60));
        let out = spawn_and_wait(
            bash_command(dir.path(), &req),
            &req,
            &AtomicI32::new(CANCELLED),
        )
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(30), "not killed");
        assert!(!out.success());
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!marker.exists(), "a grandchild outlived the cancellation");
    }

    #[tokio::test]
    async fn megabytes_of_output_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let sb = LocalSandbox::new(dir.path());
        let mut req = ExecRequest::new(
            "head -c 20000000 /dev/zero | tr '\\0' x",
            Duration::from_secs(30),
        );
        req.capture_limit = 1000;
        let out = sb.exec(&req).await.unwrap();
        assert!(out.success());
        assert_eq!(out.dropped_bytes, 20_000_000 - 2000);
        assert!(out.output.len() < 3000);
    }
}
