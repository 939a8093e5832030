//! Turns the remote specs (`openai:`, `ollama:`, `anthropic:`, `local`, and
//! names from `configs/models/`) into policies, and probes whether their
//! server is reachable so a long run can fail fast with one clear line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::anthropic::{ANTHROPIC_VERSION, AnthropicWire};
use super::config::{BackendOptions, ModelConfig, ToolCallMode};
use super::http::{HttpClient, HttpError, HttpOptions};
use super::local::{LOCAL_CONFIG_TOML, LocalInstall, LocalPins, LocalPolicy, install_dir};
use super::ollama::OllamaWire;
use super::openai::OpenAiWire;
use super::remote::{RemotePolicy, Wire};
use super::spec::PolicyContext;
use super::{ModelError, ModelSpec, Policy};

/// The directory holding `configs/`.
pub fn config_root(ctx: &PolicyContext) -> PathBuf {
    ctx.config_root
        .clone()
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A spec and the config that came with it (if it was named).
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The concrete spec (never `Named`).
    pub spec: ModelSpec,
    /// The config file's settings (empty for a bare spec).
    pub config: Option<ModelConfig>,
}

/// Resolves `Named` through `configs/models/NAME.toml`; `local` picks up
/// `configs/models/local.toml` (or the compiled-in default).
pub fn resolve(spec: &ModelSpec, root: &Path) -> Result<Resolved, ModelError> {
    match spec {
        ModelSpec::Named(name) => {
            let (cfg, path) = ModelConfig::load_named(root, name)?;
            let inner = ModelSpec::parse(&cfg.spec)
                .map_err(|e| ModelError::Config(format!("{}: bad `spec`: {e}", path.display())))?;
            if let ModelSpec::Named(n) = &inner {
                return Err(ModelError::Config(format!(
                    "{}: `spec` names another config (`{n}`); give a concrete spec such as ollama:MODEL",
                    path.display()
                )));
            }
            Ok(Resolved {
                spec: inner,
                config: Some(cfg),
            })
        }
        ModelSpec::Local => {
            let path = root.join("configs/models/local.toml");
            let cfg = match std::fs::read_to_string(&path) {
                Ok(text) => ModelConfig::parse(&text, &path.display().to_string())?,
                Err(_) => ModelConfig::parse(LOCAL_CONFIG_TOML, "built-in local.toml")?,
            };
            Ok(Resolved {
                spec: ModelSpec::Local,
                config: Some(cfg),
            })
        }
        other => Ok(Resolved {
            spec: other.clone(),
            config: None,
        }),
    }
}

fn default_mode(spec: &ModelSpec) -> ToolCallMode {
    match spec {
        ModelSpec::Anthropic { .. } => ToolCallMode::Native,
        ModelSpec::Local => ToolCallMode::Text,
        _ => ToolCallMode::Auto,
    }
}

fn options(r: &Resolved) -> BackendOptions {
    let mode = default_mode(&r.spec);
    match &r.config {
        Some(c) => BackendOptions::from_config(c, mode),
        None => {
            let mut o = BackendOptions::defaults(mode);
            if matches!(r.spec, ModelSpec::Anthropic { .. }) {
                o.context_size = 200_000;
                o.max_tokens = 4096;
            }
            o
        }
    }
}

fn wire_for(spec: &ModelSpec) -> Option<Box<dyn Wire>> {
    match spec {
        ModelSpec::OpenAi { model, base_url } => Some(Box::new(OpenAiWire::new(model, base_url))),
        ModelSpec::Ollama { model, base_url } => Some(Box::new(OllamaWire::new(model, base_url))),
        ModelSpec::Anthropic { model, base_url } => {
            Some(Box::new(AnthropicWire::new(model, base_url)))
        }
        _ => None,
    }
}

/// Builds the policy of a remote spec (`openai`, `ollama`, `anthropic`,
/// `local` or a config name).
pub async fn build_remote(
    spec: &ModelSpec,
    ctx: &PolicyContext,
) -> Result<Box<dyn Policy>, ModelError> {
    let root = config_root(ctx);
    let r = resolve(spec, &root)?;
    let opts = options(&r);
    match &r.spec {
        ModelSpec::Local => {
            let cfg = r.config.clone().unwrap_or_default();
            Ok(Box::new(LocalPolicy::start(&root, &cfg).await?))
        }
        ModelSpec::Script(path) => Ok(Box::new(super::script::ScriptPolicy::load(path)?)),
        ModelSpec::Reference => Err(ModelError::Config(
            "a model config cannot name `reference`; pass --model reference".into(),
        )),
        s => {
            let wire = wire_for(s)
                .ok_or_else(|| ModelError::Config(format!("no backend for model spec {s:?}")))?;
            let name = wire.label();
            Ok(Box::new(RemotePolicy::new(name, wire, opts)?))
        }
    }
}

/// Checks cheaply that the spec's server answers (and, for Ollama, has the
/// model). Returns a one-line description of what was reached.
pub async fn probe(spec: &ModelSpec, ctx: &PolicyContext) -> Result<String, ModelError> {
    let root = config_root(ctx);
    let r = resolve(spec, &root)?;
    let http = HttpClient::new(HttpOptions {
        connect_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(10),
        max_retries: 0,
        ..HttpOptions::default()
    })
    .map_err(|e| ModelError::Config(e.to_string()))?;
    let unreachable = |base: &str, e: HttpError| ModelError::Unreachable {
        endpoint: base.to_string(),
        detail: e.to_string(),
    };
    match &r.spec {
        ModelSpec::OpenAi { model, base_url } => {
            let wire = OpenAiWire::new(model, base_url);
            let mut headers = vec![];
            if let Ok(k) = std::env::var("OPENAI_API_KEY")
                && !k.trim().is_empty()
            {
                headers.push(("Authorization".to_string(), format!("Bearer {k}")));
            }
            match http.get_once(&format!("{base_url}/models"), &headers).await {
                Ok(v) => {
                    let ids: Vec<&str> = v
                        .get("data")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|m| m.get("id").and_then(Value::as_str))
                                .collect()
                        })
                        .unwrap_or_default();
                    Ok(format!(
                        "{} reachable ({} model(s) listed)",
                        wire.label(),
                        ids.len()
                    ))
                }
                Err(HttpError::Status {
                    status: 401 | 403,
                    body,
                    ..
                }) => Err(ModelError::Rejected(wire.unauthorized(401, &body))),
                // Some servers do not list models; an HTTP answer is reachability.
                Err(HttpError::Status { .. }) | Err(HttpError::Decode { .. }) => {
                    Ok(format!("{} reachable", wire.label()))
                }
                Err(e) => Err(unreachable(base_url, e)),
            }
        }
        ModelSpec::Ollama { model, base_url } => {
            let wire = OllamaWire::new(model, base_url);
            let v = http
                .get_once(&format!("{base_url}/api/tags"), &[])
                .await
                .map_err(|e| unreachable(base_url, e))?;
            let names: Vec<&str> = v
                .get("models")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m.get("name").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            let wanted =
                |n: &&str| *n == model || n.strip_suffix(":latest") == Some(model.as_str());
            if names.iter().any(wanted) {
                Ok(format!("{} reachable, model present", wire.label()))
            } else {
                Err(ModelError::Rejected(wire.not_found("not in /api/tags")))
            }
        }
        ModelSpec::Anthropic { model, base_url } => {
            let wire = AnthropicWire::new(model, base_url);
            let mut headers = vec![(
                "anthropic-version".to_string(),
                ANTHROPIC_VERSION.to_string(),
            )];
            if let Ok(k) = std::env::var("ANTHROPIC_API_KEY") {
                headers.push(("x-api-key".to_string(), k));
            }
            match http
                .get_once(&format!("{base_url}/v1/models"), &headers)
                .await
            {
                Ok(_) => Ok(format!("{} reachable", wire.label())),
                Err(HttpError::Status {
                    status: 401 | 403,
                    body,
                    ..
                }) => Err(ModelError::Rejected(wire.unauthorized(401, &body))),
                Err(HttpError::Status { .. }) | Err(HttpError::Decode { .. }) => {
                    Ok(format!("{} reachable", wire.label()))
                }
                Err(e) => Err(unreachable(base_url, e)),
            }
        }
        ModelSpec::Local => {
            let pins = LocalPins::load(&root)?;
            let dir = install_dir();
            let inst = LocalInstall::load(&dir, &pins)?;
            Ok(format!("local model installed ({})", inst.gguf.display()))
        }
        ModelSpec::Script(p) => {
            if p.is_file() {
                Ok(format!("script {}", p.display()))
            } else {
                Err(ModelError::Config(format!(
                    "script {} does not exist",
                    p.display()
                )))
            }
        }
        ModelSpec::Reference => Ok("reference".into()),
        ModelSpec::Named(n) => Err(ModelError::Config(format!("unresolved model name `{n}`"))),
    }
}

/// The sampling parameters a spec's policy will use, as JSON for the
/// corpus's `sampling` column: temperature, max_tokens, context size and
/// tool-call mode for a model server; `{"kind": "deterministic"}` for
/// policies that do not sample (script, reference).
pub fn sampling_params(
    spec: &ModelSpec,
    ctx: &PolicyContext,
) -> Result<serde_json::Value, ModelError> {
    let r = resolve(spec, &config_root(ctx))?;
    match r.spec {
        ModelSpec::Script(_) | ModelSpec::Reference => {
            Ok(serde_json::json!({"kind": "deterministic"}))
        }
        _ => {
            let o = options(&r);
            Ok(serde_json::json!({
                "temperature": o.temperature,
                "max_tokens": o.max_tokens,
                "context_size": o.context_size,
                "tool_calls": format!("{:?}", o.mode).to_lowercase(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_configs_resolve_and_cannot_chain() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("configs/models");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(
            m.join("q.toml"),
            "spec = \"ollama:qwen2.5-coder:7b\"\ncontext_size = 32768\n",
        )
        .unwrap();
        std::fs::write(m.join("loop.toml"), "spec = \"q\"\n").unwrap();
        let r = resolve(&ModelSpec::Named("q".into()), dir.path()).unwrap();
        assert!(matches!(r.spec, ModelSpec::Ollama { .. }));
        assert_eq!(options(&r).context_size, 32768);
        assert_eq!(options(&r).mode, ToolCallMode::Auto);
        assert!(resolve(&ModelSpec::Named("loop".into()), dir.path()).is_err());
        // `local` falls back to the compiled-in config.
        let r = resolve(&ModelSpec::Local, dir.path()).unwrap();
        assert_eq!(options(&r).mode, ToolCallMode::Text);
    }

    #[test]
    fn shipped_presets_all_resolve() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let names = super::super::config::list_names(root);
        for want in [
            "local",
            "qwen2.5-coder-7b",
            "qwen2.5-coder-3b",
            "vllm-qwen2.5-coder-7b",
            "anthropic-teacher",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "missing preset {want}: {names:?}"
            );
        }
        for n in names {
            resolve(&ModelSpec::Named(n.clone()), root).unwrap_or_else(|e| panic!("{n}: {e}"));
        }
    }

    #[tokio::test]
    async fn probe_says_unreachable_in_one_line() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let spec = ModelSpec::parse(&format!("openai:m@http://127.0.0.1:{port}/v1")).unwrap();
        let err = probe(&spec, &PolicyContext::default()).await.unwrap_err();
        assert!(matches!(err, ModelError::Unreachable { .. }), "{err}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }
}
