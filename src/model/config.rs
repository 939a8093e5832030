//! Model configs: `configs/models/NAME.toml` and the options every remote
//! backend shares (tool-call mode, context size, sampling, prices, HTTP).
//!
//! ```toml
//! spec = "ollama:qwen2.5-coder:7b"
//! tool_calls = "auto"          # native | text | auto
//! context_size = 16384
//! temperature = 0.2
//! max_tokens = 2048
//! [price]                       # USD per million tokens; omit = unpriced (0)
//! input_per_mtok = 0.0
//! output_per_mtok = 0.0
//! [http]
//! connect_timeout_s = 10
//! request_timeout_s = 600
//! max_retries = 4
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::ModelError;
use super::http::HttpOptions;

/// How the backend gets tool calls out of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ToolCallMode {
    /// The server's native tool-calling API only.
    Native,
    /// A fenced JSON action in the reply text (small local models).
    Text,
    /// Native tools, falling back to text parsing when the reply has no call.
    #[default]
    Auto,
}

/// Prices in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// Per million prompt (input) tokens.
    #[serde(default)]
    pub input_per_mtok: f64,
    /// Per million completion (output) tokens.
    #[serde(default)]
    pub output_per_mtok: f64,
    /// Per million prompt tokens read from the prompt cache (default: the
    /// input price, which over- rather than under-states the cost).
    #[serde(default)]
    pub cache_read_per_mtok: Option<f64>,
    /// Per million prompt tokens written to the prompt cache (default: the
    /// input price).
    #[serde(default)]
    pub cache_write_per_mtok: Option<f64>,
}

impl Prices {
    /// Cost of one call in USD.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> f64 {
        self.cost_cached(prompt_tokens, completion_tokens, 0, 0)
    }

    /// Cost of one call in USD when `read` and `write` of the prompt tokens
    /// went through the prompt cache.
    pub fn cost_cached(
        &self,
        prompt_tokens: u64,
        completion_tokens: u64,
        read: u64,
        write: u64,
    ) -> f64 {
        let plain = prompt_tokens.saturating_sub(read + write);
        (plain as f64 * self.input_per_mtok
            + read as f64 * self.cache_read_per_mtok.unwrap_or(self.input_per_mtok)
            + write as f64 * self.cache_write_per_mtok.unwrap_or(self.input_per_mtok)
            + completion_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// `[http]` table of a model config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpToml {
    /// TCP connect timeout.
    pub connect_timeout_s: Option<f64>,
    /// Whole-request timeout (generation included).
    pub request_timeout_s: Option<f64>,
    /// Retries after the first try, on 429/5xx/connection resets.
    pub max_retries: Option<u32>,
    /// First backoff delay; doubles each retry (with jitter).
    pub backoff_ms: Option<u64>,
}

/// `[run]` table of a model config: the defaults of a run with this model
/// (flags override them). Lets a slow local model end in a bounded time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunDefaults {
    /// Tool calls per attempt (`--max-steps`).
    pub max_steps: Option<u32>,
    /// Attempts per model (`--max-attempts`).
    pub max_attempts: Option<u32>,
    /// Wall-time budget of a run in seconds (`--max-wall`).
    pub max_wall_s: Option<u64>,
    /// Token budget of a run (`--max-tokens`).
    pub max_tokens: Option<u64>,
    /// Ignored loop-breaker nudges before an attempt ends as `stuck`
    /// (`--stuck-after`, at least 1).
    pub stuck_after: Option<u32>,
}

/// One `configs/models/NAME.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model spec (`openai:...`, `ollama:...`, `anthropic:...`, `local`).
    pub spec: String,
    /// Free text shown by tools that list models.
    #[serde(default)]
    pub description: Option<String>,
    /// Tool-call protocol.
    #[serde(default)]
    pub tool_calls: Option<ToolCallMode>,
    /// The model's context window in tokens (sent as `num_ctx` to Ollama).
    #[serde(default)]
    pub context_size: Option<u32>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Completion token limit per call.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Turns kept verbatim when old observations are elided.
    #[serde(default)]
    pub keep_turns: Option<usize>,
    /// Text mode only: constrain decoding to a JSON action with a schema
    /// (`response_format` on OpenAI-compatible servers, `format` on Ollama).
    #[serde(default)]
    pub constrain_actions: Option<bool>,
    /// Optional price table.
    #[serde(default)]
    pub price: Option<Prices>,
    /// HTTP behaviour.
    #[serde(default)]
    pub http: Option<HttpToml>,
    /// Defaults of a run with this model.
    #[serde(default)]
    pub run: Option<RunDefaults>,
}

impl ModelConfig {
    /// Parses a config file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ModelError> {
        toml::from_str(text)
            .map_err(|e| ModelError::Config(format!("invalid model config {origin}: {e}")))
    }

    /// Loads `configs/models/NAME.toml` under `root`.
    pub fn load_named(root: &Path, name: &str) -> Result<(Self, PathBuf), ModelError> {
        if name.contains('/') || name.contains("..") || name.contains('\\') {
            return Err(ModelError::Config(format!(
                "model name `{name}` must be a plain name from configs/models/ (or a spec such as openai:MODEL@URL)"
            )));
        }
        let path = root
            .join("configs")
            .join("models")
            .join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            let known = list_names(root);
            ModelError::Config(format!(
                "no model config `{name}` ({}: {e}); known names: {}; or pass a spec such as openai:MODEL@URL",
                path.display(),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ))
        })?;
        Ok((Self::parse(&text, &path.display().to_string())?, path))
    }
}

/// Names of the configs in `root/configs/models/`, sorted.
pub fn list_names(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("configs").join("models"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension().is_some_and(|x| x == "toml"))
                        .then(|| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                        .flatten()
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Resolved options of one remote backend.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    /// Tool-call protocol.
    pub mode: ToolCallMode,
    /// Context window in tokens.
    pub context_size: u32,
    /// Sampling temperature.
    pub temperature: f32,
    /// Completion token limit per call.
    pub max_tokens: u32,
    /// Turns kept verbatim by the context budget.
    pub keep_turns: usize,
    /// Text mode: send a JSON schema of the actions to constrain decoding.
    pub constrain_actions: bool,
    /// Price table (zero when unpriced).
    pub prices: Prices,
    /// HTTP timeouts and retries.
    pub http: HttpOptions,
}

impl BackendOptions {
    /// Defaults for a bare spec with no config file.
    pub fn defaults(mode: ToolCallMode) -> Self {
        Self {
            mode,
            context_size: 16_384,
            temperature: 0.2,
            max_tokens: 2048,
            keep_turns: 4,
            constrain_actions: false,
            prices: Prices::default(),
            http: HttpOptions::default(),
        }
    }

    /// Defaults overlaid with what a config file sets.
    pub fn from_config(cfg: &ModelConfig, default_mode: ToolCallMode) -> Self {
        let mut o = Self::defaults(cfg.tool_calls.unwrap_or(default_mode));
        if let Some(c) = cfg.context_size {
            o.context_size = c.max(512);
        }
        if let Some(t) = cfg.temperature {
            o.temperature = t;
        }
        if let Some(m) = cfg.max_tokens {
            o.max_tokens = m.max(16);
        }
        if let Some(k) = cfg.keep_turns {
            o.keep_turns = k.max(1);
        }
        if let Some(c) = cfg.constrain_actions {
            o.constrain_actions = c;
        }
        if let Some(p) = cfg.price {
            o.prices = p;
        }
        if let Some(h) = &cfg.http {
            let secs = |s: f64| Duration::from_secs_f64(s.max(0.001));
            if let Some(s) = h.connect_timeout_s {
                o.http.connect_timeout = secs(s);
            }
            if let Some(s) = h.request_timeout_s {
                o.http.request_timeout = secs(s);
            }
            if let Some(r) = h.max_retries {
                o.http.max_retries = r;
            }
            if let Some(b) = h.backoff_ms {
                o.http.backoff_base = Duration::from_millis(b);
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config_and_prices_calls() {
        let cfg = ModelConfig::parse(
            r#"
spec = "anthropic:claude"
tool_calls = "native"
context_size = 200000
max_tokens = 4096
[price]
input_per_mtok = 3.0
output_per_mtok = 15.0
[http]
request_timeout_s = 1.5
max_retries = 2
"#,
            "t",
        )
        .unwrap();
        let o = BackendOptions::from_config(&cfg, ToolCallMode::Auto);
        assert_eq!(o.mode, ToolCallMode::Native);
        assert_eq!(o.context_size, 200_000);
        assert_eq!(o.http.max_retries, 2);
        assert_eq!(o.http.request_timeout, Duration::from_millis(1500));
        let c = o.prices.cost(1_000_000, 100_000);
        assert!((c - 4.5).abs() < 1e-9, "{c}");
    }

    #[test]
    fn cached_prompt_tokens_are_priced_apart() {
        let p: Prices = toml::from_str(
            "input_per_mtok = 3.0\noutput_per_mtok = 15.0\ncache_read_per_mtok = 0.3\ncache_write_per_mtok = 3.75\n",
        )
        .unwrap();
        // 1000 prompt tokens: 900 read from the cache, 95 written, 5 plain.
        let want = (5.0 * 3.0 + 900.0 * 0.3 + 95.0 * 3.75 + 2.0 * 15.0) / 1e6;
        assert!((p.cost_cached(1000, 2, 900, 95) - want).abs() < 1e-15);
        // Without cache prices, cached tokens cost what input costs.
        let plain = Prices {
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
            ..Prices::default()
        };
        assert_eq!(plain.cost_cached(1000, 2, 900, 95), plain.cost(1000, 2));
        assert_eq!(Prices::default().cost_cached(1000, 2, 900, 95), 0.0);
    }

    #[test]
    fn unknown_keys_and_bad_modes_are_errors() {
        assert!(ModelConfig::parse("spec='x'\nbogus=1", "t").is_err());
        assert!(ModelConfig::parse("spec='x'\ntool_calls='maybe'", "t").is_err());
        let cfg = ModelConfig::parse("spec='x'", "t").unwrap();
        let o = BackendOptions::from_config(&cfg, ToolCallMode::Text);
        assert_eq!(o.mode, ToolCallMode::Text);
        assert_eq!(o.prices.cost(10, 10), 0.0);
    }

    #[test]
    fn missing_name_lists_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("configs/models")).unwrap();
        std::fs::write(dir.path().join("configs/models/a.toml"), "spec='local'").unwrap();
        let err = ModelConfig::load_named(dir.path(), "b")
            .unwrap_err()
            .to_string();
        assert!(err.contains("known names: a"), "{err}");
        assert!(ModelConfig::load_named(dir.path(), "../x").is_err());
        assert_eq!(
            ModelConfig::load_named(dir.path(), "a").unwrap().0.spec,
            "local"
        );
    }
}
