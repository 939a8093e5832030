//! Reading network mirrors (a PyPI index such as devpi, Nexus or
//! Artifactory) during an image build, with the network cut off except for
//! the one mirror.
//!
//! Image layers themselves are still built with `NetworkMode: none`. What
//! needs the mirror runs first, in a *fetch container* that also has
//! `NetworkMode: none`: its only way out is a Unix socket bind-mounted from
//! the host, behind which airgate connects to the mirror's host and port and
//! nowhere else ([`Bridge`]). Inside, a small forwarder listens on
//! `127.0.0.1:<mirror port>` and the mirror's host name resolves to
//! `127.0.0.1`, so URLs (and TLS names) stay unchanged. The fetch writes
//! plain files (wheels, sdists) into a host folder that the no-network
//! layer build then copies in, so every image is still rebuilt from the
//! files kept under the log folder.
//!
//! The boundary is the network namespace (no interfaces but loopback) and
//! the one socket; what the repository's `setup.py` or an sdist's build
//! does while the fetch runs can reach the mirror and nothing else.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::error::Retryable;
use crate::sandbox::SandboxError;
use crate::sandbox::docker::classify;

/// Failures setting up a fetch (a failing fetch *command* is reported as
/// the build step's failure instead).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The mirror URL cannot be used.
    #[error("mirror URL {url:?}: {why}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The host side of the bridge could not be set up.
    #[error("setting up the mirror bridge: {0}")]
    Bridge(#[source] std::io::Error),
    /// The container engine failed.
    #[error(transparent)]
    Docker(#[from] SandboxError),
}

impl Retryable for FetchError {
    fn is_retryable(&self) -> bool {
        matches!(self, FetchError::Docker(e) if e.is_retryable())
    }
}

/// A network mirror: its URL and the one host and port a fetch may reach.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorUrl {
    /// The URL the fetch uses inside the container (the given one, unless
    /// its host was an IP address other than loopback: then `127.0.0.1`).
    pub url: String,
    /// The host airgate connects to (a name is resolved on the host).
    pub host: String,
    /// The port airgate connects to.
    pub port: u16,
    /// A host name the container must resolve to `127.0.0.1`, if any.
    pub alias: Option<String>,
}

impl MirrorUrl {
    /// Parses an `http(s)://host[:port]/path` URL.
    pub fn parse(s: &str) -> Result<Self, FetchError> {
        let bad = |why: &str| FetchError::BadUrl {
            url: s.to_string(),
            why: why.to_string(),
        };
        let mut url = reqwest::Url::parse(s).map_err(|e| {
            bad(&format!(
                "{e}; give an http:// or https:// URL such as \
                 https://devpi.example.internal/root/pypi/+simple/"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(
                "only http and https mirrors can be bridged; give one such as \
                 https://devpi.example.internal/root/pypi/+simple/",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Credentials would land in build logs and the generated files.
            return Err(bad(
                "credentials in the URL would be written to the build logs; give the mirror \
                 a token-free read URL",
            ));
        }
        let port = url.port_or_known_default().ok_or_else(|| bad("no port"))?;
        let host = url.host_str().ok_or_else(|| bad("no host"))?.to_string();
        let (host, alias) = if host.starts_with('[') {
            return Err(bad("IPv6 mirror addresses are not supported"));
        } else if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
            if !ip.is_loopback() {
                // The forwarder can only listen on the container's
                // loopback: point the URL there.
                url.set_host(Some("127.0.0.1"))
                    .map_err(|e| bad(&e.to_string()))?;
            }
            (host, None)
        } else {
            (host.clone(), Some(host))
        };
        Ok(Self {
            url: url.to_string(),
            host,
            port,
            alias,
        })
    }

    /// `host:port` as written in logs and labels.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The host side of the one way out: a Unix socket in a fresh folder,
/// every connection to which airgate joins to the mirror's host and port.
/// Dropping it stops accepting and removes the folder.
pub struct Bridge {
    dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
    connections: Arc<AtomicUsize>,
}

/// The socket's name inside the bridge folder.
const SOCKET: &str = "mirror.sock";
/// Where the bridge folder is mounted in the fetch container.
const BRIDGE_MOUNT: &str = "/run/airgate-mirror";

impl Bridge {
    /// Listens on a new socket under `scratch`, forwarding to `mirror`.
    pub fn open(scratch: &Path, mirror: &MirrorUrl) -> Result<Self, FetchError> {
        std::fs::create_dir_all(scratch).map_err(FetchError::Bridge)?;
        let dir = tempfile::Builder::new()
            .prefix("bridge.")
            .tempdir_in(scratch)
            .map_err(FetchError::Bridge)?;
        let path = dir.path().join(SOCKET);
        let listener = tokio::net::UnixListener::bind(&path).map_err(FetchError::Bridge)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The fetch may run as a mapped user (rootless engines).
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .map_err(FetchError::Bridge)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))
                .map_err(FetchError::Bridge)?;
        }
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let target = mirror.endpoint();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    break;
                };
                count.fetch_add(1, Ordering::Relaxed);
                let target = target.clone();
                tokio::spawn(async move {
                    match tokio::net::TcpStream::connect(&target).await {
                        Ok(mut outbound) => {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                        Err(e) => tracing::warn!("mirror bridge: connecting to {target}: {e}"),
                    }
                });
            }
        });
        Ok(Self {
            dir,
            task,
            connections,
        })
    }

    /// How many connections went through so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    fn folder(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The in-container forwarder: `127.0.0.1:PORT` to the bridge socket.
/// Python 2.7 and 3.x alike (old specs use old interpreters).
const FORWARDER: &str = r#"import socket, sys, threading
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except (OSError, IOError, socket.error):
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except (OSError, IOError, socket.error):
        pass
def serve(c):
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        u.connect(sys.argv[2])
    except (OSError, IOError, socket.error):
        c.close()
        return
    t = threading.Thread(target=pump, args=(c, u))
    t.daemon = True
    t.start()
    pump(u, c)
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(64)
while True:
    c, _ = l.accept()
    t = threading.Thread(target=serve, args=(c,))
    t.daemon = True
    t.start()
"#;

/// Finds a pip for an interpreter that has none: the newest pip wheel on
/// the index whose `data-requires-python` allows this interpreter.
const GET_PIP: &str = r##"import re, sys, urllib.request, urllib.parse, html
index = sys.argv[1].rstrip("/") + "/pip/"
page = urllib.request.urlopen(index).read().decode("utf-8", "replace")
have = sys.version_info[:2]
def allowed(spec):
    for part in [p.strip() for p in html.unescape(spec).split(",") if p.strip()]:
        m = re.match(r"(>=|>|<=|<|!=|==)\s*(\d+)(?:\.(\d+))?", part)
        if not m:
            continue
        want = (int(m.group(2)), int(m.group(3) or 0))
        op = m.group(1)
        if op == ">=" and not have >= want: return False
        if op == ">" and not have > want: return False
        if op == "<" and not have < want: return False
        if op == "<=" and not have <= want: return False
    return True
best = None
for m in re.finditer(r"<a\s([^>]*)>", page):
    attrs = m.group(1)
    href = re.search(r'href="([^"]+)"', attrs)
    if not href:
        continue
    url = urllib.parse.urljoin(index, html.unescape(href.group(1))).split("#")[0]
    name = url.rsplit("/", 1)[-1]
    v = re.match(r"pip-(\d+(?:\.\d+)*)-py3-none-any\.whl$", name)
    if not v:
        continue
    rp = re.search(r'data-requires-python="([^"]*)"', attrs)
    if rp and not allowed(rp.group(1)):
        continue
    key = tuple(int(x) for x in v.group(1).split("."))
    if best is None or key > best[0]:
        best = (key, url, name)
if best is None:
    sys.exit("the index has no pip wheel for Python %d.%d at %s" % (have[0], have[1], index))
out = "/tmp/" + best[2]
with open(out, "wb") as f:
    f.write(urllib.request.urlopen(best[1]).read())
print(out)
"##;

/// One fetch: a shell script run in `image` with the bridge, `binds`
/// (`host:container[:ro]`) and `env`, its output written to `log`.
pub struct FetchJob<'a> {
    /// Image to run.
    pub image: &'a str,
    /// A shell expression for the python that runs the forwarder (and
    /// pip); the script sees it as `"$PY"`.
    pub python: &'a str,
    /// The script (bash), run after the forwarder is up.
    pub script: String,
    /// Extra bind mounts.
    pub binds: Vec<String>,
    /// The mirror.
    pub mirror: &'a MirrorUrl,
    /// Where the output goes.
    pub log: &'a Path,
    /// Scratch folder for the bridge socket.
    pub scratch: &'a Path,
}

/// Runs a fetch. `Ok(Ok(connections))` when the script exited 0 (with how
/// many connections reached the mirror), `Ok(Err(message))` when it
/// failed.
pub async fn run(docker: &Docker, job: FetchJob<'_>) -> Result<Result<usize, String>, FetchError> {
    let bridge = Bridge::open(job.scratch, job.mirror)?;
    let port = job.mirror.port;
    let py = job.python;
    let script = format!(
        "set -euo pipefail\nPY={py}\n\
         cat > /tmp/airgate-forward.py <<'EOF_FWD'\n{FORWARDER}EOF_FWD\n\
         cat > /tmp/airgate-get-pip.py <<'EOF_PIP'\n{GET_PIP}EOF_PIP\n\
         \"$PY\" /tmp/airgate-forward.py {port} {BRIDGE_MOUNT}/{SOCKET} &\n\
         for _ in $(seq 100); do\n\
         \x20 \"$PY\" -c 'import socket,sys; socket.create_connection((\"127.0.0.1\", int(sys.argv[1])), 1)' {port} 2>/dev/null && break\n\
         \x20 sleep 0.1\n\
         done\n\
         {}\n",
        job.script
    );
    let mut binds = vec![format!("{}:{BRIDGE_MOUNT}", bridge.folder().display())];
    binds.extend(job.binds.iter().cloned());
    let body = ContainerCreateBody {
        image: Some(job.image.to_string()),
        entrypoint: Some(vec!["/bin/bash".into(), "-c".into()]),
        cmd: Some(vec![script]),
        user: Some("0:0".into()),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            binds: Some(binds),
            extra_hosts: job
                .mirror
                .alias
                .as_ref()
                .map(|a| vec![format!("{a}:127.0.0.1")]),
            cap_drop: Some(vec!["ALL".into()]),
            // pip writes as root into the bind-mounted output folder.
            cap_add: Some(vec!["CHOWN".into(), "DAC_OVERRIDE".into(), "FOWNER".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            ulimits: Some(crate::sandbox::engine::host_ulimits()),
            // The fetch runs the repository's setup.py: no fork bomb.
            pids_limit: Some(4096),
            ..Default::default()
        }),
        ..Default::default()
    };
    let name = format!(
        "airgate-fetch-{}-{}",
        std::process::id(),
        bridge
            .folder()
            .file_name()
            .map(|n| n.to_string_lossy().replace('.', "-"))
            .unwrap_or_default()
    );
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body,
        )
        .await
        .map_err(|e| {
            classify(
                e,
                &format!("creating the fetch container from {}", job.image),
            )
        })?;
    let outcome = async {
        docker
            .start_container(&created.id, None)
            .await
            .map_err(|e| classify(e, "starting the fetch container"))?;
        let mut code = None;
        let mut wait = docker.wait_container(
            &created.id,
            Some(WaitContainerOptionsBuilder::default().build()),
        );
        while let Some(w) = wait.next().await {
            match w {
                Ok(r) => code = Some(r.status_code),
                Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => {
                    code = Some(c)
                }
                Err(_) => break,
            }
        }
        let mut logs = docker.logs(
            &created.id,
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .build(),
            ),
        );
        let mut text = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&chunk.to_string());
        }
        Ok::<_, SandboxError>((code, text))
    }
    .await;
    let _ = docker
        .remove_container(
            &created.id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await;
    let (code, text) = outcome?;
    let connections = bridge.connections();
    drop(bridge);
    let _ = std::fs::write(
        job.log,
        format!(
            "{text}\n# airgate: fetch from {} ({} connections through the bridge), exit {:?}\n",
            job.mirror.endpoint(),
            connections,
            code
        ),
    );
    Ok(match code {
        Some(0) => Ok(connections),
        other => {
            let tail: Vec<&str> = text.lines().rev().take(12).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(format!(
                "fetching from {} failed (exit {other:?}); log: {}\n{}",
                job.mirror.endpoint(),
                job.log.display(),
                tail.join("\n")
            ))
        }
    })
}

/// The shell lines that put a working `pip` in `$PIP` for `py`: its own,
/// else the newest pip wheel in `/wheelhouse` (when mounted), else one from
/// the index.
pub fn pip_bootstrap(py: &str, index_url: &str) -> String {
    format!(
        "export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1\n\
         if {py} -m pip --version >/dev/null 2>&1; then PIP=\"{py} -m pip\"\n\
         else\n\
         \x20 whl=$(ls /wheelhouse/pip-*.whl 2>/dev/null | sort -V | tail -n1 || true)\n\
         \x20 [ -n \"$whl\" ] || whl=$({py} /tmp/airgate-get-pip.py {idx})\n\
         \x20 PIP=\"{py} $whl/pip\"\n\
         fi\n\
         $PIP --version\n",
        idx = shell_quote(index_url)
    )
}

/// Single-quotes `s` for bash.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The wheels and sdists a fetch left in `dir`, sorted (see [`fetched`]).
pub fn fetched_files(dir: &Path) -> Vec<PathBuf> {
    fetched(dir, &[".whl", ".tar.gz", ".zip"])
}

/// The files a fetch left at the top of `dir` whose names end with one of
/// `exts`, sorted: regular files only. The fetch ran code from the
/// repository and the index, so a symlink there (to a host file) is
/// skipped, never followed.
pub fn fetched(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| exts.iter().any(|x| n.to_string_lossy().ends_with(x)))
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn mirror_urls_keep_names_and_move_remote_ips_to_loopback() {
        let m = MirrorUrl::parse("https://devpi.bank.internal/root/pypi/+simple/").unwrap();
        assert_eq!(m.host, "devpi.bank.internal");
        assert_eq!(m.port, 443);
        assert_eq!(m.alias.as_deref(), Some("devpi.bank.internal"));
        assert_eq!(m.url, "https://devpi.bank.internal/root/pypi/+simple/");

        let m = MirrorUrl::parse("http://10.1.2.3:3141/simple").unwrap();
        assert_eq!(m.endpoint(), "10.1.2.3:3141");
        assert_eq!(m.url, "http://127.0.0.1:3141/simple");
        assert!(m.alias.is_none());

        let m = MirrorUrl::parse("http://127.0.0.1:8080/simple/").unwrap();
        assert_eq!(m.url, "http://127.0.0.1:8080/simple/");

        for bad in [
            "ftp://mirror/simple",
            "http://user:secret@mirror/simple",
            "not a url",
            "http://[::1]:80/simple",
        ] {
            assert!(MirrorUrl::parse(bad).is_err(), "{bad}");
        }
    }

    /// The bridge joins a socket connection to the mirror and counts it.
    #[tokio::test]
    async fn bridge_forwards_to_the_mirror_only() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mirror = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = mirror.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = mirror.accept().await.unwrap();
            s.write_all(b"from the mirror").await.unwrap();
        });
        let scratch = tempfile::tempdir().unwrap();
        let url = MirrorUrl::parse(&format!("http://127.0.0.1:{port}/simple/")).unwrap();
        let bridge = Bridge::open(scratch.path(), &url).unwrap();
        let mut c = tokio::net::UnixStream::connect(bridge.folder().join(SOCKET))
            .await
            .unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "from the mirror");
        assert_eq!(bridge.connections(), 1);
    }
}
