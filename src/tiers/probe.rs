//! Before any task starts: resolve each `--model`, decide how many episodes
//! it may run at once, and check that its server answers, so that a typo in
//! a URL costs one clear line instead of thirty failed episodes.

use std::path::Path;
use std::time::Duration;

use crate::model::ModelSpec;

/// How long a reachability probe waits for a TCP connection.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Anthropic (or any hosted API) episodes in flight at once.
const HOSTED_LIMIT: usize = 4;

/// Resolves a name from `configs/models/` to the spec it names.
pub fn resolve(spec: &ModelSpec, config_root: &Path) -> Result<ModelSpec, String> {
    match spec {
        ModelSpec::Named(name) => {
            let (spec_text, path) = named_spec(config_root, name)?;
            let cfg_spec = spec_text;
            let inner =
                ModelSpec::parse(&cfg_spec).map_err(|e| format!("{}: {e}", path.display()))?;
            if matches!(inner, ModelSpec::Named(_)) {
                return Err(format!(
                    "{}: spec `{}` names another config; give a concrete spec (openai:, ollama:, anthropic:, local)",
                    path.display(),
                    cfg_spec
                ));
            }
            Ok(inner)
        }
        other => Ok(other.clone()),
    }
}

/// Reads the `spec` of `configs/models/NAME.toml` (the model backend owns
/// the rest of the file; resolution here only needs where the server is).
fn named_spec(root: &Path, name: &str) -> Result<(String, std::path::PathBuf), String> {
    if name.contains('/') || name.contains('\\') || name.contains("..") {
        return Err(format!(
            "`{name}` is neither a model spec (openai:, ollama:, anthropic:, script:, local, reference) nor a name from configs/models/"
        ));
    }
    let path = root
        .join("configs")
        .join("models")
        .join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "no model config {} ({e}); pass a spec such as ollama:MODEL or a name from configs/models/",
            path.display()
        )
    })?;
    let value: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let spec = value
        .get("spec")
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("{}: no `spec = \"...\"` line", path.display()))?;
    Ok((spec.to_string(), path))
}

/// Whether the policy replays or applies patches without any model server.
pub fn is_offline(spec: &ModelSpec) -> bool {
    matches!(spec, ModelSpec::Script(_) | ModelSpec::Reference)
}

/// Episodes of this model that may run at once: offline policies use every
/// job slot; a server on this machine (local, Ollama, a loopback
/// OpenAI-compatible server) serves one request at a time; hosted APIs a few.
pub fn concurrency(spec: &ModelSpec, jobs: usize) -> usize {
    let jobs = jobs.max(1);
    match spec {
        ModelSpec::Script(_) | ModelSpec::Reference => jobs,
        ModelSpec::Local | ModelSpec::Ollama { .. } => 1,
        ModelSpec::OpenAi { base_url, .. } if is_loopback(base_url) => 1,
        ModelSpec::OpenAi { .. } | ModelSpec::Anthropic { .. } => jobs.min(HOSTED_LIMIT),
        ModelSpec::Named(_) => 1,
    }
}

fn is_loopback(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]" || h == "::1")
}

/// The server a spec talks to, if any.
pub fn endpoint(spec: &ModelSpec) -> Option<&str> {
    match spec {
        ModelSpec::OpenAi { base_url, .. }
        | ModelSpec::Ollama { base_url, .. }
        | ModelSpec::Anthropic { base_url, .. } => Some(base_url),
        _ => None,
    }
}

/// Checks that the spec's server accepts a TCP connection. `local` starts
/// its own server and the offline policies need none: both pass.
pub async fn probe(spec: &ModelSpec) -> Result<(), String> {
    let Some(url) = endpoint(spec) else {
        return Ok(());
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad base URL `{url}`: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("base URL `{url}` has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| format!("base URL `{url}` has no port"))?;
    match tokio::time::timeout(
        PROBE_TIMEOUT,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("server {url} unreachable: {e}")),
        Err(_) => Err(format!(
            "server {url} unreachable: no answer within {} s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_per_backend() {
        let p = |s: &str| ModelSpec::parse(s).unwrap();
        assert_eq!(concurrency(&p("reference"), 8), 8);
        assert_eq!(concurrency(&p("script:x.jsonl"), 2), 2);
        assert_eq!(concurrency(&p("local"), 8), 1);
        assert_eq!(concurrency(&p("ollama:qwen2.5-coder:7b"), 8), 1);
        assert_eq!(concurrency(&p("openai:q@http://127.0.0.1:8000/v1"), 8), 1);
        assert_eq!(concurrency(&p("openai:q@https://api.example.com/v1"), 8), 4);
        assert_eq!(concurrency(&p("anthropic:claude"), 2), 2);
    }

    #[tokio::test]
    async fn probe_refuses_a_closed_port_and_accepts_a_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = ModelSpec::parse(&format!("ollama:m@http://127.0.0.1:{port}")).unwrap();
        assert!(probe(&up).await.is_ok());
        drop(listener);
        let err = probe(&up).await.unwrap_err();
        assert!(err.contains("unreachable"), "{err}");
        assert!(probe(&ModelSpec::Reference).await.is_ok());
    }

    #[test]
    fn named_specs_resolve_through_configs() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("configs/models")).unwrap();
        std::fs::write(
            d.path().join("configs/models/q7.toml"),
            "spec = \"ollama:qwen2.5-coder:7b\"\n",
        )
        .unwrap();
        let r = resolve(&ModelSpec::Named("q7".into()), d.path()).unwrap();
        assert!(matches!(r, ModelSpec::Ollama { .. }));
        assert!(resolve(&ModelSpec::Named("nope".into()), d.path()).is_err());
    }
}
