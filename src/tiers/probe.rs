//! Per-backend scheduling for `tiers run`: how many episodes of a model may
//! run at once. Reachability itself is the model room's
//! [`crate::model::provider::probe`], called before any task starts.

use crate::model::ModelSpec;

/// Hosted-API episodes in flight at once (rate limits, not CPUs, bound them).
const HOSTED_LIMIT: usize = 4;

/// Whether the policy replays or applies patches without any model server.
pub fn is_offline(spec: &ModelSpec) -> bool {
    matches!(spec, ModelSpec::Script(_) | ModelSpec::Reference)
}

/// Episodes of this (resolved) model that may run at once: offline policies
/// use every job slot; a server on this machine (local, Ollama, a loopback
/// OpenAI-compatible server) gets one request at a time; hosted APIs a few.
pub fn concurrency(spec: &ModelSpec, jobs: usize) -> usize {
    let jobs = jobs.max(1);
    match spec {
        ModelSpec::Script(_) | ModelSpec::Reference => jobs,
        ModelSpec::Local | ModelSpec::Ollama { .. } | ModelSpec::Named(_) => 1,
        ModelSpec::OpenAi { base_url, .. } if is_loopback(base_url) => 1,
        ModelSpec::OpenAi { .. } | ModelSpec::Anthropic { .. } => jobs.min(HOSTED_LIMIT),
    }
}

fn is_loopback(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]" || h == "::1")
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
        assert_eq!(concurrency(&p("anthropic:claude"), 0), 1);
    }
}
