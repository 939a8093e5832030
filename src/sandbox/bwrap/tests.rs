//! Escape classes against the bubblewrap sandbox: for each, an attack that
//! must be contained and an honest control that must still work. Decoys
//! live in a throwaway directory that stands in for the user's home.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::sandbox::config::Toolchain;
use crate::sandbox::local::LocalSandbox;

const SSH_KEY: &str = "DECOY-SSH-PRIVATE-KEY-7f3a";
const TOOL_TOKEN: &str = "DECOY-REGISTRY-TOKEN-91cd";
const PRECIOUS: &str = "precious host file";

/// A workspace, a decoy home full of secrets, and a host file outside both.
struct Fixture {
    _dir: tempfile::TempDir,
    base: PathBuf,
    ws: PathBuf,
    decoy: PathBuf,
    outside: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        Self::new_in(&std::env::temp_dir())
    }

    fn new_in(parent: &Path) -> Self {
        let dir = tempfile::tempdir_in(parent).unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let ws = base.join("ws");
        let decoy = base.join("home");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::create_dir_all(decoy.join(".ssh")).unwrap();
        std::fs::write(decoy.join(".ssh/id_rsa"), SSH_KEY).unwrap();
        std::fs::write(decoy.join(".gitconfig"), "[user]\nname = decoy\n").unwrap();
        // A toolchain kept in the home: shown read-only, its credentials masked.
        let tool = decoy.join(".decoytool");
        std::fs::create_dir_all(tool.join("bin")).unwrap();
        std::fs::write(
            tool.join("bin/hello"),
            "#!/bin/sh\necho hello from the toolchain\n",
        )
        .unwrap();
        std::fs::set_permissions(
            tool.join("bin/hello"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(tool.join("credentials.toml"), TOOL_TOKEN).unwrap();
        let outside = base.join("outside.txt");
        std::fs::write(&outside, PRECIOUS).unwrap();
        Self {
            _dir: dir,
            base,
            ws,
            decoy,
            outside,
        }
    }

    /// The built-in settings with the decoy as the user's home. The real
    /// toolchains (under the real $HOME) stay reachable, and the decoy
    /// toolchain is added.
    fn config(&self) -> SandboxConfig {
        let mut cfg = SandboxConfig::builtin().unwrap();
        let real_home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        for t in &mut cfg.toolchains {
            if let Some(rest) = t.default.strip_prefix("~/") {
                t.default = format!("{real_home}/{rest}");
            }
        }
        cfg.toolchains.push(Toolchain {
            var: "DECOY_TOOL_HOME".into(),
            default: self.decoy.join(".decoytool").display().to_string(),
        });
        cfg.user_home = self.decoy.clone();
        cfg
    }

    fn sandbox(&self) -> BwrapSandbox {
        self.sandbox_with(self.config())
    }

    fn sandbox_with(&self, cfg: SandboxConfig) -> BwrapSandbox {
        BwrapSandbox::new(&self.ws, Some(self.base.join("agent-home")), Arc::new(cfg)).unwrap()
    }

    /// Every decoy file still holds what it held, and nothing was added
    /// next to the workspace.
    fn assert_host_untouched(&self) {
        assert_eq!(
            std::fs::read_to_string(self.decoy.join(".ssh/id_rsa")).unwrap(),
            SSH_KEY
        );
        assert_eq!(std::fs::read_to_string(&self.outside).unwrap(), PRECIOUS);
        assert!(self.decoy.join(".gitconfig").exists());
        assert!(self.decoy.join(".decoytool/bin/hello").exists());
        let mut names: Vec<_> = std::fs::read_dir(&self.base)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["agent-home", "home", "outside.txt", "ws"]);
    }
}

async fn run(sb: &dyn Sandbox, cmd: &str) -> ExecOutput {
    sb.exec(&ExecRequest::new(cmd, Duration::from_secs(120)))
        .await
        .unwrap()
}

/// Host processes whose command line contains `token`.
fn processes_with(token: &str) -> Vec<String> {
    let mut found = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(token) {
                found.push(format!("{}: {text}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

fn copy_fixture(name: &str, to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sandbox")
        .join(name);
    for entry in walkdir::WalkDir::new(&from) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(&from).unwrap();
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

#[test]
fn preflight_passes_here() {
    preflight().unwrap();
}

/// Control: output, exit codes and workspace writes come back as they
/// would from `bash -c`, at the workspace's own path.
#[tokio::test]
async fn honest_commands_behave_like_bash() {
    let f = Fixture::new();
    let sb = f.sandbox();
    assert_eq!(sb.kind(), "local");
    let out = run(&sb, "echo out; echo err >&2; exit 3").await;
    assert_eq!(out.exit_code, Some(3));
    assert!(
        out.output.contains("out") && out.output.contains("err"),
        "{}",
        out.output
    );
    let out = run(
        &sb,
        "pwd; echo kept > made.txt; mkdir -p sub && echo deep > sub/f",
    )
    .await;
    assert!(out.success(), "{}", out.output);
    assert_eq!(out.output.trim(), f.ws.display().to_string());
    assert_eq!(
        std::fs::read_to_string(f.ws.join("made.txt")).unwrap(),
        "kept\n"
    );
    assert_eq!(
        std::fs::read_to_string(f.ws.join("sub/f")).unwrap(),
        "deep\n"
    );
    // The task's own variables arrive; a syntax error is the command's.
    let mut req = ExecRequest::new("echo \"$TASK_VAR\"", Duration::from_secs(30));
    req.env.push(("TASK_VAR".into(), "from-the-task".into()));
    assert_eq!(sb.exec(&req).await.unwrap().output.trim(), "from-the-task");
    let out = run(&sb, "echo before\nif then").await;
    assert_eq!(out.exit_code, Some(2), "{}", out.output);
    assert!(out.output.contains("before"));
}

/// Attack: writes and deletes outside the workspace through python, a
/// base64-decoded script and `find -delete`, into the decoy home, next to
/// the workspace and into system and toolchain directories.
/// Control: the same python write inside the workspace persists.
#[tokio::test]
async fn writes_outside_the_workspace_are_contained() {
    let f = Fixture::new();
    let sb = f.sandbox();
    let decoy = f.decoy.display();
    let outside = f.outside.display();
    let py = format!(
        "python3 -c \"open('{outside}', 'w').write('pwned'); \
         open('{decoy}/.ssh/id_rsa', 'w').write('pwned')\"; \
         python3 -c \"import shutil; shutil.rmtree('{decoy}')\""
    );
    let script = format!(
        "rm -rf {decoy}; echo pwned > {outside}; touch {}/x\n",
        f.base.display()
    );
    let b64 = base64(script.as_bytes());
    let attacks = [
        py,
        format!("echo {b64} | base64 -d | bash"),
        format!("find {decoy} -delete; find {} -delete", f.base.display()),
        "rm -rf ~/ 2>/dev/null; rm -rf \"$(getent passwd root | cut -d: -f6)\"".to_string(),
        format!("echo pwned > {decoy}/.decoytool/bin/hello; rm -f {decoy}/.decoytool/bin/hello"),
        "touch /usr/airgate-probe /etc/airgate-probe /airgate-probe /opt/airgate-probe".into(),
    ];
    for a in &attacks {
        let _ = run(&sb, a).await;
        f.assert_host_untouched();
    }
    for p in [
        "/usr/airgate-probe",
        "/etc/airgate-probe",
        "/airgate-probe",
        "/opt/airgate-probe",
    ] {
        assert!(!Path::new(p).exists(), "{p} was created on the host");
    }
    // Control: the very same kind of write, aimed at the workspace.
    let out = run(&sb, "python3 -c \"open('inside.txt', 'w').write('ok')\"").await;
    assert!(out.success(), "{}", out.output);
    assert_eq!(
        std::fs::read_to_string(f.ws.join("inside.txt")).unwrap(),
        "ok"
    );
    // Control: the shown toolchain is usable (read-only).
    let out = run(&sb, "\"$DECOY_TOOL_HOME/bin/hello\"").await;
    assert!(
        out.output.contains("hello from the toolchain"),
        "{}",
        out.output
    );
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Attack: plant `../conftest.py` and `../.cargo/config.toml` (pytest and
/// cargo read config from parent directories), for a workspace under /tmp
/// and one elsewhere. Control: the same files inside the workspace work.
#[tokio::test]
async fn parents_of_the_workspace_are_read_only() {
    let mut fixtures = vec![Fixture::new()];
    if let Ok(meta) = std::fs::metadata("/var/tmp") {
        if meta.is_dir() {
            fixtures.push(Fixture::new_in(Path::new("/var/tmp")));
        } else {
            println!("skipping the /var/tmp workspace case: /var/tmp is not a directory");
        }
    }
    for f in &fixtures {
        let sb = f.sandbox();
        let out = run(
            &sb,
            "touch ../conftest.py; mkdir -p ../.cargo && echo '[build]' > ../.cargo/config.toml; \
             touch ../../conftest.py; ls -ld .. ; exit 0",
        )
        .await;
        assert!(!f.base.join("conftest.py").exists(), "{}", out.output);
        assert!(!f.base.join(".cargo").exists(), "{}", out.output);
        let top = f.base.parent().unwrap();
        assert!(!top.join("conftest.py").exists(), "{}", out.output);
        f.assert_host_untouched();
        // Inside the sandbox too the parent is read-only (not just thrown away).
        let out = run(&sb, "touch ../probe").await;
        assert!(!out.success(), "parent writable: {}", out.output);
        assert!(out.output.contains("Read-only"), "{}", out.output);
        // Control.
        let out = run(
            &sb,
            "touch conftest.py && mkdir -p .cargo && echo '[build]' > .cargo/config.toml",
        )
        .await;
        assert!(out.success(), "{}", out.output);
        assert!(f.ws.join(".cargo/config.toml").exists());
    }
}

/// Attack: read the decoy home's key, the real home's dotfiles, system
/// secrets, the docker socket, /var, /run and a toolchain's credentials
/// (quoting tricks included). Control: the toolchain next to them works and
/// ordinary system files are readable.
#[tokio::test]
async fn secrets_are_unreachable() {
    let f = Fixture::new();
    let sb = f.sandbox();
    let decoy = f.decoy.display();
    let real_home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let out = run(
        &sb,
        &format!(
            "cat {decoy}/.ssh/id_rsa; cat {decoy}/.s''sh/id_r\"sa\"; cat \"$HOME/.ssh/id_rsa\"; \
             cat $DECOY_TOOL_HOME/credentials.toml; cat {decoy}/.decoytool/cred*; \
             grep -r DECOY \"$HOME\" /tmp 2>/dev/null | head; \
             echo SHADOW:; cat /etc/shadow; echo SSH:; ls -A /etc/ssh; echo VAR:; ls /var /run /srv; \
             ls -l /var/run/docker.sock; echo HOMES:; ls -A {real_home} /home; echo END"
        ),
    )
    .await;
    let o = &out.output;
    assert!(o.contains("END"), "{o}");
    for secret in [SSH_KEY, TOOL_TOKEN] {
        assert!(!o.contains(secret), "{secret} leaked: {o}");
    }
    // The host's real /etc/shadow (readable here when the tests run as root).
    if let Ok(shadow) = std::fs::read_to_string("/etc/shadow") {
        let first = shadow.lines().next().unwrap_or_default();
        assert!(
            first.is_empty() || !o.contains(first),
            "/etc/shadow leaked: {o}"
        );
    }
    // /etc/ssh is an empty directory; /var, /run, /srv do not exist.
    let ssh = o
        .split("SSH:")
        .nth(1)
        .unwrap()
        .split("VAR:")
        .next()
        .unwrap();
    assert!(ssh.trim().is_empty(), "{ssh}");
    assert!(o.contains("/var': No such file"), "{o}");
    assert!(o.contains("docker.sock': No such file"), "{o}");
    for dotfile in [".gitconfig", ".claude", ".ssh", ".bashrc", ".config"] {
        let homes = o.split("HOMES:").nth(1).unwrap();
        assert!(
            !homes.lines().any(|l| l.trim() == dotfile),
            "{dotfile} visible: {homes}"
        );
    }
    f.assert_host_untouched();
    // Controls: the real home's secret-free toolchains and /etc work.
    let out = run(
        &sb,
        "\"$DECOY_TOOL_HOME/bin/hello\"; head -1 /etc/passwd; ls $DECOY_TOOL_HOME",
    )
    .await;
    assert!(
        out.output.contains("hello from the toolchain"),
        "{}",
        out.output
    );
    assert!(out.output.contains("root:x:0:0"), "{}", out.output);
    assert!(out.output.contains("bin"), "{}", out.output);
    // Control: without the sandbox the decoy is right there.
    let local = LocalSandbox::new(&f.ws);
    let out = run(&local, &format!("cat {decoy}/.ssh/id_rsa")).await;
    assert!(out.output.contains(SSH_KEY));
}

/// Attack: airgate's environment (API keys, AIRGATE_*, the SSH agent, the
/// docker host) read through `env`, `/proc/1/environ` and
/// `/proc/<airgate pid>/environ`. Control: the allowlist and the task's
/// own variables arrive.
#[tokio::test]
async fn environment_is_cleared() {
    let f = Fixture::new();
    let mut host = host_env();
    for (k, v) in [
        ("OPENAI_API_KEY", "sk-decoy-openai-5521"),
        ("AIRGATE_MODEL_TOKEN", "decoy-airgate-6632"),
        ("SSH_AUTH_SOCK", "/tmp/decoy-agent.sock"),
        ("DOCKER_HOST", "unix:///decoy-docker.sock"),
        ("RANDOM_HOST_VAR", "decoy-plain-7743"),
        ("LANG", "C.UTF-8"),
    ] {
        host.insert(k.into(), v.into());
    }
    let sb = BwrapSandbox::build(&f.ws, Home::Memory, None, Arc::new(f.config()), &host).unwrap();
    let pid = std::process::id();
    let mut req = ExecRequest::new(
        format!(
            "env; echo PID1:; tr '\\0' '\\n' < /proc/1/environ; echo SELF:; \
             tr '\\0' '\\n' < /proc/{pid}/environ; echo END"
        ),
        Duration::from_secs(30),
    );
    req.env.push(("TASK_VAR".into(), "task-value".into()));
    let out = sb.exec(&req).await.unwrap();
    let o = &out.output;
    assert!(o.contains("END"), "{o}");
    for decoy in [
        "sk-decoy",
        "decoy-airgate",
        "decoy-agent",
        "decoy-docker",
        "decoy-plain",
    ] {
        assert!(!o.contains(decoy), "{decoy} leaked: {o}");
    }
    assert!(o.contains("LANG=C.UTF-8"), "{o}");
    assert!(o.contains("TASK_VAR=task-value"), "{o}");
    assert!(o.contains(&format!("HOME={HOME_MOUNT}")), "{o}");
    assert!(o.contains("TMPDIR=/tmp"), "{o}");

    // The real sandbox (environment snapshot of this test process): a
    // variable of ours outside the allowlist never shows, not even in the
    // environment bubblewrap itself was started with (/proc/1/environ).
    let cfg = f.config();
    let mut allowed: Vec<String> = ["PATH", "HOME", "TMPDIR"].map(String::from).to_vec();
    allowed.extend(cfg.env_passthrough.iter().cloned());
    allowed.extend(cfg.env.keys().cloned());
    allowed.extend(cfg.toolchains.iter().map(|t| t.var.clone()));
    let (name, value) = std::env::vars()
        .find(|(k, v)| !allowed.contains(k) && v.len() >= 4)
        .expect("the test process has some variable outside the allowlist");
    let sb = f.sandbox();
    let out = run(&sb, "env; tr '\\0' '\\n' < /proc/1/environ; echo END").await;
    assert!(out.output.contains("END"), "{}", out.output);
    assert!(
        !out.output.contains(&format!("{name}={value}")),
        "{name} leaked: {}",
        out.output
    );
    // Control: it is there without the sandbox.
    let out = run(&LocalSandbox::new(&f.ws), "env").await;
    assert!(out.output.contains(&format!("{name}={value}")));
}

/// Attack: reach a host directory, a host process's environment and
/// airgate's own through /proc (`/proc/<pid>/cwd`, `/root`, `/environ`).
/// Control: the same reads work without the sandbox; inside, the command
/// sees its own processes.
#[tokio::test]
async fn host_processes_are_out_of_reach_through_proc() {
    let f = Fixture::new();
    let mut helper = std::process::Command::new("sleep")
        .arg("60")
        .current_dir(f.decoy.join(".ssh"))
        .env("DECOY_PROC_SECRET", "decoy-proc-secret-8812")
        .spawn()
        .unwrap();
    let pid = helper.id();
    let me = std::process::id();
    let attack = format!(
        "cat /proc/{pid}/cwd/id_rsa; tr '\\0' '\\n' < /proc/{pid}/environ; \
         cat /proc/{pid}/root{decoy}/.ssh/id_rsa; ls /proc/{me}/root/; \
         echo PIDS:; ls /proc | grep -E '^[0-9]+$' | wc -l",
        decoy = f.decoy.display()
    );
    let out = run(&f.sandbox(), &attack).await;
    let local = run(&LocalSandbox::new(&f.ws), &attack).await;
    let _ = helper.kill();
    let _ = helper.wait();
    assert!(!out.output.contains(SSH_KEY), "{}", out.output);
    assert!(!out.output.contains("decoy-proc-secret"), "{}", out.output);
    // Only the sandbox's own few processes (bubblewrap's init, bash, ls...).
    let pids: usize = out
        .output
        .split("PIDS:")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pids < 10, "{pids} processes visible: {}", out.output);
    // Control: the attack is real.
    assert!(local.output.contains(SSH_KEY), "{}", local.output);
    assert!(
        local.output.contains("decoy-proc-secret"),
        "{}",
        local.output
    );
}

/// Attack: connect to a server listening on the host's loopback. Control:
/// a listen + connect on the sandbox's own loopback works.
#[tokio::test]
async fn no_network_but_a_private_loopback() {
    let f = Fixture::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!(
        "python3 -c \"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=5); print('CONNECTED')\nexcept OSError as e:\n    print('BLOCKED', e)\""
    );
    let out = run(&f.sandbox(), &connect).await;
    assert!(out.output.contains("BLOCKED"), "{}", out.output);
    assert!(matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock));
    let out = run(&f.sandbox(), "python3 -c \"import socket; socket.create_connection(('1.1.1.1', 53), timeout=5)\" 2>&1 | tail -1").await;
    assert!(out.output.contains("unreachable"), "{}", out.output);
    let out = run(&f.sandbox(), "tail -n +3 /proc/net/dev | cut -d: -f1").await;
    assert_eq!(
        out.output.split_whitespace().collect::<Vec<_>>(),
        ["lo"],
        "interfaces"
    );
    // Control: the sandbox's own loopback works.
    let own = "python3 -c \"import socket\ns = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\nc = socket.create_connection(s.getsockname()); a, _ = s.accept(); c.sendall(b'ping'); print(a.recv(4).decode())\"";
    let out = run(&f.sandbox(), own).await;
    assert!(out.output.contains("ping"), "{}", out.output);
    // Control: without the sandbox the host server is reachable.
    let out = run(&LocalSandbox::new(&f.ws), &connect).await;
    assert!(out.output.contains("CONNECTED"), "{}", out.output);
}

/// Attack: `setsid`, `nohup` and double-forked daemons that would touch a
/// marker after 1 s. Control: when the command waits for them, they run.
#[tokio::test]
async fn nothing_survives_the_command() {
    let f = Fixture::new();
    let sb = f.sandbox();
    let token = "airgate-daemon-token-31337";
    let daemons = format!(
        "setsid bash -c 'sleep 1; touch m1' {token} </dev/null >/dev/null 2>&1 & \
         nohup bash -c 'sleep 1; touch m2' {token} >/dev/null 2>&1 & \
         ( ( exec -a {token} bash -c 'sleep 1; touch m3' & ) & ) ; \
         for i in $(seq 40); do setsid bash -c 'sleep 30' {token} >/dev/null 2>&1 & done; \
         disown -a; echo started"
    );
    let out = run(&sb, &daemons).await;
    assert!(out.output.contains("started"), "{}", out.output);
    assert_eq!(processes_with(token), Vec::<String>::new());
    std::thread::sleep(Duration::from_millis(1500));
    for m in ["m1", "m2", "m3"] {
        assert!(!f.ws.join(m).exists(), "{m}: a daemon outlived its command");
    }
    // Control: the daemons do work when the command waits for them.
    let out = run(&sb, &format!("{daemons}; sleep 2")).await;
    assert!(out.success(), "{}", out.output);
    for m in ["m1", "m2", "m3"] {
        assert!(f.ws.join(m).exists(), "{m} missing: {}", out.output);
    }
}

/// Attack: a daemon started by a command that times out, and by one whose
/// future is dropped (Ctrl-C). Control: the timeout is reported.
#[tokio::test]
async fn timeouts_and_cancellation_kill_everything() {
    let f = Fixture::new();
    let sb = f.sandbox();
    let token = "airgate-timeout-token-4242";
    let cmd = format!("setsid bash -c 'sleep 1; touch late' {token} & sleep 100");
    let out = sb
        .exec(&ExecRequest::new(cmd.clone(), Duration::from_millis(500)))
        .await
        .unwrap();
    assert!(out.timed_out);
    assert!(out.output.contains("Timeout error"));
    wait_until_gone(token);
    let cancelled = tokio::time::timeout(
        Duration::from_millis(500),
        sb.exec(&ExecRequest::new(cmd, Duration::from_secs(100))),
    )
    .await;
    assert!(
        cancelled.is_err(),
        "the command should still have been running"
    );
    wait_until_gone(token);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!f.ws.join("late").exists(), "a daemon outlived its command");
}

/// Polls (up to 10 s) until no host process carries `token`.
fn wait_until_gone(token: &str) {
    for _ in 0..200 {
        if processes_with(token).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("still running: {:?}", processes_with(token));
}

/// Attack: the agent poisons its home (a Go-style cache) for the gate.
/// Control: the agent's own later commands keep their home; the gate's
/// report directory is writable at REPORT_MOUNT.
#[tokio::test]
async fn fresh_sandboxes_share_nothing_writable() {
    let f = Fixture::new();
    let sb = f.sandbox();
    let out = run(
        &sb,
        "mkdir -p ~/.cache && echo poison > ~/.cache/p && echo x > /tmp/t",
    )
    .await;
    assert!(out.success(), "{}", out.output);
    let out = run(&sb, "cat ~/.cache/p; cat /tmp/t").await;
    assert!(
        out.output.contains("poison"),
        "home persists within an episode"
    );
    assert!(
        out.output.contains("No such file"),
        "/tmp is per command: {}",
        out.output
    );

    let gate_root = f.ws.clone();
    let report = tempfile::tempdir().unwrap();
    let gate = sb.fresh(&gate_root, Some(report.path())).await.unwrap();
    assert_eq!(gate.kind(), "local");
    assert_eq!(gate.report_dir().as_deref(), Some(REPORT_MOUNT));
    let out = run(
        gate.as_ref(),
        &format!("cat ~/.cache/p; echo verdict > {REPORT_MOUNT}/r.xml"),
    )
    .await;
    assert!(!out.output.contains("poison"), "{}", out.output);
    assert_eq!(
        std::fs::read_to_string(report.path().join("r.xml")).unwrap(),
        "verdict\n"
    );
    // Without a report dir nothing is mounted there.
    let plain = sb.fresh(&gate_root, None).await.unwrap();
    assert_eq!(plain.report_dir(), None);
    let out = run(plain.as_ref(), &format!("touch {REPORT_MOUNT}/x")).await;
    assert!(!out.success());
}

/// A bubblewrap setup failure is a SandboxError; a command that merely
/// prints something that looks like one is an ordinary failure.
#[tokio::test]
async fn setup_failures_are_errors_not_exit_codes() {
    let f = Fixture::new();
    let sb = f.sandbox();
    let out = run(&sb, "echo 'bwrap: Can not mount'; exit 1").await;
    assert_eq!(out.exit_code, Some(1));
    std::fs::remove_dir_all(&f.ws).unwrap();
    let err = sb
        .exec(&ExecRequest::new("true", Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("bubblewrap could not start"),
        "{err}"
    );
}

/// Dangerous layouts are refused when the sandbox is built; ordinary ones
/// are accepted.
#[test]
fn dangerous_layouts_are_refused() {
    let f = Fixture::new();
    for bad in ["/", "/var", "/run", "/proc/self", "/home"] {
        if !Path::new(bad).exists() {
            println!("not checking {bad}: absent here");
            continue;
        }
        let mut cfg = f.config();
        cfg.extra_paths = vec![bad.into()];
        let err = BwrapSandbox::new(&f.ws, None, Arc::new(cfg)).unwrap_err();
        assert!(err.to_string().contains("remove it"), "{bad}: {err}");
    }
    // The user's home itself, or a parent of it.
    let mut cfg = f.config();
    cfg.extra_paths = vec![f.decoy.display().to_string(), "~".into()];
    assert!(BwrapSandbox::new(&f.ws, None, Arc::new(cfg)).is_err());
    let mut cfg = f.config();
    cfg.extra_paths = vec![f.base.display().to_string()];
    assert!(BwrapSandbox::new(&f.ws, None, Arc::new(cfg)).is_err());
    // A derived path that would expose the home is skipped, not shown.
    let mut cfg = f.config();
    cfg.toolchains.push(Toolchain {
        var: "EVIL_HOME".into(),
        default: f.decoy.display().to_string(),
    });
    let sb = BwrapSandbox::new(&f.ws, None, Arc::new(cfg)).unwrap();
    assert!(
        !sb.args.iter().any(|a| Path::new(a) == f.decoy),
        "{:?}",
        sb.args
    );
    // Workspaces: the home, a parent of it, a symlinked path; a home dir
    // inside the workspace.
    let cfg = Arc::new(f.config());
    assert!(BwrapSandbox::new(&f.decoy, None, cfg.clone()).is_err());
    assert!(BwrapSandbox::new(&f.base, None, cfg.clone()).is_err());
    std::os::unix::fs::symlink(&f.ws, f.base.join("link")).unwrap();
    assert!(BwrapSandbox::new(&f.base.join("link"), None, cfg.clone()).is_err());
    std::fs::remove_file(f.base.join("link")).unwrap();
    assert!(BwrapSandbox::new(&f.ws, Some(f.ws.join("home")), cfg.clone()).is_err());
    // Controls.
    let mut cfg = f.config();
    cfg.extra_paths = vec!["/usr/share".into(), "/does/not/exist".into()];
    BwrapSandbox::new(&f.ws, None, Arc::new(cfg)).unwrap();
}

/// Limits apply inside: a file past the size limit and an allocation past
/// the memory limit fail; smaller ones succeed.
#[tokio::test]
async fn resource_limits_apply() {
    let f = Fixture::new();
    let mut cfg = f.config();
    cfg.limits = Limits {
        processes: 3000,
        file_size_mb: 1,
        memory_mb: 512,
        open_files: 321,
        tmp_size_mb: 8,
    };
    let sb = f.sandbox_with(cfg);
    let out = run(&sb, "ulimit -n; ulimit -u; ulimit -c").await;
    assert_eq!(
        out.output.split_whitespace().collect::<Vec<_>>(),
        ["321", "3000", "0"]
    );
    let out = run(&sb, "head -c 2000000 /dev/zero > big").await;
    assert!(!out.success());
    assert!(std::fs::metadata(f.ws.join("big")).unwrap().len() <= 1 << 20);
    let out = run(&sb, "head -c 500000 /dev/zero > small").await;
    assert!(out.success(), "{}", out.output);
    let out = run(&sb, "python3 -c 'b = bytearray(1 << 30)'").await;
    assert!(out.output.contains("MemoryError"), "{}", out.output);
    let out = run(&sb, "python3 -c 'b = bytearray(64 << 20); print(len(b))'").await;
    assert!(out.success(), "{}", out.output);
    // The private /tmp is bounded too.
    let out = run(&sb, "head -c 900000 /dev/zero > /tmp/a; for i in $(seq 12); do cp /tmp/a /tmp/$i || exit 9; done").await;
    assert_eq!(out.exit_code, Some(9), "{}", out.output);
}

/// Toolchains under the home (pyenv, rustup/cargo) and system ones (go,
/// node) work read-only under the default limits.
#[tokio::test]
async fn python_and_pytest_work_inside() {
    let f = Fixture::new();
    copy_fixture("pytest", &f.ws);
    let sb = f.sandbox();
    let out = run(
        &sb,
        "python3 -c 'print(6 * 7)' && python -m pytest -q -p no:cacheprovider",
    )
    .await;
    assert!(out.success(), "{}", out.output);
    assert!(
        out.output.contains("42") && out.output.contains("1 passed"),
        "{}",
        out.output
    );
}

#[tokio::test]
async fn cargo_test_works_inside() {
    let f = Fixture::new();
    copy_fixture("cargo", &f.ws);
    let out = run(&f.sandbox(), "cargo test --offline -q 2>&1").await;
    assert!(out.success(), "{}", out.output);
    assert!(out.output.contains("1 passed"), "{}", out.output);
}

#[tokio::test]
async fn go_test_works_inside() {
    if !Path::new("/usr/bin/go").exists() && which("go").is_none() {
        println!("skipping go_test_works_inside: `go` is not installed");
        return;
    }
    let f = Fixture::new();
    copy_fixture("go", &f.ws);
    let sb = f.sandbox();
    let out = run(&sb, "go test ./... 2>&1").await;
    assert!(out.success(), "{}", out.output);
    assert!(out.output.contains("ok"), "{}", out.output);
    // Go's test cache lives in the private home.
    let home = sb.home_dir().unwrap();
    assert!(home.join(".cache/go-build").is_dir());
}

#[tokio::test]
async fn node_test_works_inside() {
    if which("node").is_none() {
        println!("skipping node_test_works_inside: `node` is not installed");
        return;
    }
    let f = Fixture::new();
    copy_fixture("node", &f.ws);
    let out = run(&f.sandbox(), "node --test 2>&1").await;
    assert!(out.success(), "{}", out.output);
    assert!(out.output.contains("pass 1"), "{}", out.output);
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

/// Not a test: the per-step overhead of the sandbox against `--sandbox
/// none`, driven by `scripts/bench-sandbox.sh`.
#[tokio::test]
#[ignore]
async fn bench_step_overhead() {
    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let f = Fixture::new();
    let cfg = SandboxConfig::load(None).unwrap();
    let bw = BwrapSandbox::new(&f.ws, Some(f.base.join("agent-home")), Arc::new(cfg)).unwrap();
    let local = LocalSandbox::new(&f.ws);
    // The floor: bubblewrap's own cost here (namespaces, two forks), with
    // one bind and nothing of our layout.
    let floor = |cmd: &str| {
        format!(
            "{} --unshare-all --die-with-parent --ro-bind / / -- bash -c '{cmd}'",
            bw.bwrap.display()
        )
    };
    for cmd in ["true", "python3 -c pass"] {
        let mut times = [0f64; 3];
        let bare = floor(cmd);
        // Warm up, then interleave so machine noise hits all three alike.
        for i in 0..=reps {
            let t = std::time::Instant::now();
            let out = run(&bw, cmd).await;
            let b = t.elapsed().as_secs_f64();
            assert!(out.success(), "{}", out.output);
            let t = std::time::Instant::now();
            let out = run(&local, cmd).await;
            let l = t.elapsed().as_secs_f64();
            assert!(out.success(), "{}", out.output);
            let t = std::time::Instant::now();
            let out = run(&local, &bare).await;
            let f = t.elapsed().as_secs_f64();
            assert!(out.success(), "{}", out.output);
            // The first round is a warm-up.
            if i > 0 {
                times[0] += b;
                times[1] += l;
                times[2] += f;
            }
        }
        let ms = |x: f64| x * 1e3 / reps as f64;
        let (b, l, f) = (ms(times[0]), ms(times[1]), ms(times[2]));
        println!(
            "BENCH {cmd:>16}: bwrap {b:7.2} ms  none {l:7.2} ms  overhead {:6.2} ms  ratio {:.2}x  \
             (bare `bwrap --unshare-all` floor: {f:7.2} ms, {:+.2} ms over none; {reps} reps)",
            b - l,
            b / l,
            f - l
        );
    }
}
