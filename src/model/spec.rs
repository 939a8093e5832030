//! Model specs (`openai:MODEL@URL`, `ollama:...`, `local`, `script:FILE`, ...)
//! and the factory that turns one into a [`Policy`].

use std::path::{Path, PathBuf};

use super::{ModelError, Policy};

/// A parsed `--model` value. See docs/design.md, "Model SPEC".
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// `openai:MODEL@BASE_URL`: any OpenAI-compatible chat-completions server.
    OpenAi {
        /// Model name sent to the server.
        model: String,
        /// Base URL, e.g. `http://127.0.0.1:8000/v1`.
        base_url: String,
    },
    /// `ollama:MODEL[@BASE_URL]`.
    Ollama {
        /// Model tag, e.g. `qwen2.5-coder:7b`.
        model: String,
        /// Base URL; `http://127.0.0.1:11434` by default.
        base_url: String,
    },
    /// `anthropic:MODEL[@BASE_URL]`.
    Anthropic {
        /// Model name.
        model: String,
        /// Base URL; `https://api.anthropic.com` by default.
        base_url: String,
    },
    /// `local`: the embedded SmolLM2 served by llama.cpp on loopback.
    Local,
    /// `script:FILE`: replays tool calls from a JSONL file.
    Script(PathBuf),
    /// `reference`: applies a tier task's `solution.patch`, then submits.
    Reference,
    /// A name resolved through `configs/models/NAME.toml`.
    Named(String),
}

impl ModelSpec {
    /// Parses a spec string. Unknown `scheme:` prefixes are errors; a bare
    /// word other than `local`/`reference` is a config name.
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ModelError::Config("empty model spec".into()));
        }
        if s == "local" {
            return Ok(Self::Local);
        }
        if s == "reference" {
            return Ok(Self::Reference);
        }
        let Some((scheme, rest)) = s.split_once(':') else {
            return Ok(Self::Named(s.to_string()));
        };
        let split_at = |rest: &str| -> (String, Option<String>) {
            match rest.split_once('@') {
                Some((m, u)) => (m.to_string(), Some(u.trim_end_matches('/').to_string())),
                None => (rest.to_string(), None),
            }
        };
        match scheme {
            "script" => Ok(Self::Script(PathBuf::from(rest))),
            "openai" => {
                let (model, url) = split_at(rest);
                let base_url = url.ok_or_else(|| {
                    ModelError::Config(format!(
                        "model spec `{s}` needs a base URL: openai:MODEL@http://host:port/v1"
                    ))
                })?;
                Ok(Self::OpenAi { model, base_url })
            }
            "ollama" => {
                let (model, url) = split_at(rest);
                Ok(Self::Ollama {
                    model,
                    base_url: url.unwrap_or_else(|| "http://127.0.0.1:11434".into()),
                })
            }
            "anthropic" => {
                let (model, url) = split_at(rest);
                Ok(Self::Anthropic {
                    model,
                    base_url: url.unwrap_or_else(|| "https://api.anthropic.com".into()),
                })
            }
            other => Err(ModelError::Config(format!(
                "unknown model scheme `{other}` in `{s}`: use openai:, ollama:, anthropic:, script:, local, reference or a name from configs/models/"
            ))),
        }
    }
}

/// What building a policy may need beyond the spec itself.
#[derive(Debug, Clone, Default)]
pub struct PolicyContext {
    /// The tier task's `solution.patch`, for `reference`.
    pub solution_patch: Option<PathBuf>,
    /// Directory holding `configs/` (defaults to the current directory).
    pub config_root: Option<PathBuf>,
}

/// Builds the policy a spec names.
pub async fn build_policy(
    spec: &ModelSpec,
    ctx: &PolicyContext,
) -> Result<Box<dyn Policy>, ModelError> {
    match spec {
        ModelSpec::Script(path) => Ok(Box::new(super::script::ScriptPolicy::load(path)?)),
        ModelSpec::Reference => {
            let patch = ctx.solution_patch.as_deref().ok_or_else(|| {
                ModelError::Config(
                    "`--model reference` needs a tier task: no solution.patch next to the repo"
                        .into(),
                )
            })?;
            Ok(Box::new(super::reference::ReferencePolicy::load(patch)?))
        }
        other => super::provider::build_remote(other, ctx).await,
    }
}

/// Finds `solution.patch` for a tier task whose repo is `repo` (`<task>/repo`).
pub fn find_solution_patch(repo: &Path) -> Option<PathBuf> {
    let candidate = repo.parent()?.join("solution.patch");
    candidate.is_file().then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            ModelSpec::parse("openai:qwen@http://127.0.0.1:8000/v1/").unwrap(),
            ModelSpec::OpenAi {
                model: "qwen".into(),
                base_url: "http://127.0.0.1:8000/v1".into()
            }
        );
        assert_eq!(
            ModelSpec::parse("ollama:qwen2.5-coder:7b").unwrap(),
            ModelSpec::Ollama {
                model: "qwen2.5-coder:7b".into(),
                base_url: "http://127.0.0.1:11434".into()
            }
        );
        assert_eq!(ModelSpec::parse("local").unwrap(), ModelSpec::Local);
        assert_eq!(ModelSpec::parse("reference").unwrap(), ModelSpec::Reference);
        assert_eq!(
            ModelSpec::parse("script:a.jsonl").unwrap(),
            ModelSpec::Script("a.jsonl".into())
        );
        assert_eq!(
            ModelSpec::parse("qwen7b").unwrap(),
            ModelSpec::Named("qwen7b".into())
        );
        assert!(ModelSpec::parse("openai:qwen").is_err());
        assert!(ModelSpec::parse("bogus:x").is_err());
    }
}
