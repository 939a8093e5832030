//! Parsing of the `listen = "host:port"` setting.

use std::fmt;

/// Where the service listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub host: String,
    pub port: u16,
}

/// Why a `listen` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenError {
    /// No `:port` part.
    MissingPort(String),
    /// The port is not a number in 1..=65535.
    BadPort(String),
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::MissingPort(v) => write!(f, "listen address `{v}` has no port"),
            ListenError::BadPort(p) => write!(f, "`{p}` is not a valid port (1-65535)"),
        }
    }
}

impl std::error::Error for ListenError {}

/// Parses `host:port`; an empty host means all interfaces (`0.0.0.0`).
pub fn parse_listen(value: &str) -> Result<Listen, ListenError> {
    let value = value.trim();
    let idx = value.rfind(':').unwrap();
    let (host, port) = (&value[..idx], &value[idx + 1..]);
    let port: u16 = port
        .parse()
        .map_err(|_| ListenError::BadPort(port.to_string()))?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok(Listen {
        host: host.to_string(),
        port,
    })
}
