//! The HTTP client every remote backend uses: connect and whole-request
//! timeouts, and retries with exponential backoff plus jitter on 429, 5xx
//! and connection resets only (honouring `Retry-After`). Everything else is
//! returned at once as a typed [`HttpError`].

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::error::Retryable;

/// Timeouts and retry budget.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout, generation included.
    pub request_timeout: Duration,
    /// Retries after the first try.
    pub max_retries: u32,
    /// First backoff delay; doubled on each retry, with jitter.
    pub backoff_base: Duration,
    /// Upper bound of one backoff delay (and of an honoured `Retry-After`).
    pub backoff_cap: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(600),
            max_retries: 4,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(60),
        }
    }
}

/// A failed HTTP exchange, after retries.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server answered with a non-success status.
    #[error("HTTP {status} from {url}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The URL called.
        url: String,
        /// The (truncated) response body.
        body: String,
    },
    /// The request (or the connect) took longer than allowed.
    #[error("request to {url} timed out after {secs} s")]
    Timeout {
        /// The URL called.
        url: String,
        /// The timeout that fired.
        secs: u64,
    },
    /// Nothing accepted the connection (refused, DNS, unroutable).
    #[error("cannot connect to {url}: {detail}")]
    Connect {
        /// The URL called.
        url: String,
        /// The cause.
        detail: String,
    },
    /// The connection broke mid-exchange, still after every retry.
    #[error("connection to {url} was reset: {detail}")]
    Reset {
        /// The URL called.
        url: String,
        /// The cause.
        detail: String,
    },
    /// The body was not the JSON we expected.
    #[error("unreadable response from {url}: {detail}")]
    Decode {
        /// The URL called.
        url: String,
        /// The cause.
        detail: String,
    },
    /// The client could not be built (bad TLS setup, bad header).
    #[error("HTTP client setup failed: {0}")]
    Setup(String),
}

impl HttpError {
    /// The status code, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl Retryable for HttpError {
    fn is_retryable(&self) -> bool {
        match self {
            HttpError::Status { status, body, .. } => {
                (*status == 429 || *status >= 500) && !is_refusal_body(body)
            }
            HttpError::Timeout { .. } | HttpError::Reset { .. } => true,
            HttpError::Connect { .. } | HttpError::Decode { .. } | HttpError::Setup(_) => false,
        }
    }
}

/// True when an error body says the server cannot do what was asked
/// ("not supported", "requires --jinja"): some servers say so with a 5xx,
/// and asking again will not change the answer.
pub fn is_refusal_body(body: &str) -> bool {
    let b = body.to_ascii_lowercase();
    [
        "not supported",
        "unsupported",
        "does not support",
        "requires --",
        "enable-auto-tool-choice",
    ]
    .iter()
    .any(|p| b.contains(p))
}

/// A reqwest client with the retry policy baked in.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    opts: HttpOptions,
}

/// Bytes of an error body kept in messages.
const BODY_EXCERPT: usize = 600;

impl HttpClient {
    /// Builds a client. Proxies from the environment are ignored: an
    /// air-gapped site's model server is addressed directly.
    pub fn new(opts: HttpOptions) -> Result<Self, HttpError> {
        let client = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.request_timeout)
            .no_proxy()
            // Requests are small and latency-bound: never let Nagle hold
            // the body back waiting for an ACK.
            .tcp_nodelay(true)
            .build()
            .map_err(|e| HttpError::Setup(e.to_string()))?;
        Ok(Self { client, opts })
    }

    /// The options in force.
    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    /// POSTs `body` as JSON and returns the JSON reply, retrying transient
    /// failures (429, 5xx, connection resets) with backoff.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &Value,
    ) -> Result<Value, HttpError> {
        let mut attempt: u32 = 0;
        loop {
            let (err, retry_after) = match self.post_once(url, headers, body).await {
                Ok(v) => return Ok(v),
                Err(pair) => pair,
            };
            let retry = match &err {
                HttpError::Status { status, body, .. } => {
                    (*status == 429 || *status >= 500) && !is_refusal_body(body)
                }
                HttpError::Reset { .. } => true,
                _ => false,
            };
            if !retry || attempt >= self.opts.max_retries {
                return Err(err);
            }
            let delay = self.backoff(attempt, retry_after);
            tracing::warn!(%url, attempt = attempt + 1, delay_ms = delay.as_millis() as u64, error = %err, "retrying model call");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// GETs `url` once (no retries): used by reachability probes.
    pub async fn get_once(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Value, HttpError> {
        let mut req = self.client.get(url);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| classify(url, &e, &self.opts))?;
        read_json(url, resp).await.map_err(|(e, _)| e)
    }

    async fn post_once(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &Value,
    ) -> Result<Value, (HttpError, Option<Duration>)> {
        let mut req = self.client.post(url).json(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| (classify(url, &e, &self.opts), None))?;
        read_json(url, resp).await
    }

    /// Exponential backoff with jitter in [d/2, d]; a `Retry-After` longer
    /// than that is honoured (up to the cap).
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .opts
            .backoff_base
            .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX));
        let d = exp.min(self.opts.backoff_cap);
        let ms = d.as_millis() as u64;
        let jittered = if ms >= 2 {
            Duration::from_millis(rand::random_range(ms / 2..=ms))
        } else {
            d
        };
        match retry_after {
            Some(ra) => ra.min(self.opts.backoff_cap).max(jittered),
            None => jittered,
        }
    }
}

async fn read_json(
    url: &str,
    resp: reqwest::Response,
) -> Result<Value, (HttpError, Option<Duration>)> {
    let status = resp.status();
    let retry_after = parse_retry_after(resp.headers().get(reqwest::header::RETRY_AFTER));
    let text = resp.text().await.map_err(|e| {
        (
            HttpError::Reset {
                url: url.to_string(),
                detail: format!("reading the body: {e}"),
            },
            None,
        )
    })?;
    if !status.is_success() {
        return Err((
            HttpError::Status {
                status: status.as_u16(),
                url: url.to_string(),
                body: excerpt(&text),
            },
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                retry_after
            } else {
                None
            },
        ));
    }
    serde_json::from_str(&text).map_err(|e| {
        (
            HttpError::Decode {
                url: url.to_string(),
                detail: format!("{e}; body starts: {}", excerpt(&text)),
            },
            None,
        )
    })
}

fn excerpt(s: &str) -> String {
    let s = s.trim();
    if s.len() <= BODY_EXCERPT {
        return s.to_string();
    }
    let mut end = BODY_EXCERPT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(v: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let s = v?.to_str().ok()?.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(s).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

fn classify(url: &str, e: &reqwest::Error, opts: &HttpOptions) -> HttpError {
    let detail = error_chain(e);
    if e.is_timeout() {
        let secs = if e.is_connect() {
            opts.connect_timeout
        } else {
            opts.request_timeout
        };
        return HttpError::Timeout {
            url: url.to_string(),
            secs: secs.as_secs().max(1),
        };
    }
    if is_reset(e) {
        return HttpError::Reset {
            url: url.to_string(),
            detail,
        };
    }
    HttpError::Connect {
        url: url.to_string(),
        detail,
    }
}

/// A connection that broke after it was established (reset, aborted, closed
/// before the response completed), as opposed to one never accepted.
fn is_reset(e: &reqwest::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            ) {
                return true;
            }
        }
        let msg = s.to_string().to_ascii_lowercase();
        if msg.contains("connection reset")
            || msg.contains("connection closed before message completed")
            || msg.contains("incomplete message")
        {
            return true;
        }
        src = s.source();
    }
    false
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_honours_retry_after() {
        let c = HttpClient::new(HttpOptions {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(5),
            ..HttpOptions::default()
        })
        .unwrap();
        for _ in 0..20 {
            let d0 = c.backoff(0, None);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
            let d3 = c.backoff(3, None);
            assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800));
        }
        assert_eq!(
            c.backoff(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            c.backoff(0, Some(Duration::from_secs(99))),
            Duration::from_secs(5)
        );
        assert!(c.backoff(30, None) <= Duration::from_secs(5));
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let h = reqwest::header::HeaderValue::from_static("2");
        assert_eq!(parse_retry_after(Some(&h)), Some(Duration::from_secs(2)));
        let h = reqwest::header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(Some(&h)), Some(Duration::ZERO));
        let h = reqwest::header::HeaderValue::from_static("soon");
        assert_eq!(parse_retry_after(Some(&h)), None);
    }

    #[test]
    fn retryability_follows_the_status() {
        let s = |status| HttpError::Status {
            status,
            url: "u".into(),
            body: String::new(),
        };
        assert!(s(429).is_retryable());
        assert!(s(503).is_retryable());
        assert!(!s(404).is_retryable());
        assert!(!s(400).is_retryable());
    }

    #[test]
    fn excerpts_cut_on_char_boundaries() {
        let long = "é".repeat(1000);
        let e = excerpt(&long);
        assert!(e.ends_with('…') && e.len() < 700);
    }
}
