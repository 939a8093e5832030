//! Which MCP servers to start: `--mcp NAME=COMMAND` flags and `[[mcp]]`
//! tables of `mcp.toml` (an explicit `--mcp-config FILE`, else
//! `$AIRGATE_CONFIG_DIR/mcp.toml`, else the built-in copy, which starts
//! none). Never read from the current directory or the repository: a repo
//! must not choose the programs that run beside the agent.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::McpError;

/// The built-in `configs/mcp.toml` (no servers).
pub const BUILTIN: &str = include_str!("../../configs/mcp.toml");

/// Default seconds a tool call may take before the server is stopped.
pub const DEFAULT_CALL_TIMEOUT_S: u64 = 30;
/// Default seconds a server has to answer `initialize` and `tools/list`.
pub const DEFAULT_STARTUP_TIMEOUT_S: u64 = 20;
/// Default cap on one JSON-RPC message from a server (bytes).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 << 20;

/// One server to start.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerSpec {
    /// Short name; the server's tools are offered as `NAME__tool`.
    pub name: String,
    /// Shell command line, run with `bash -c` inside the sandbox, from the
    /// scratch repo's root.
    pub command: String,
    /// Seconds one tool call may take (default 30); past it the server is
    /// stopped and its tools disabled.
    #[serde(default)]
    pub timeout_s: Option<u64>,
    /// Seconds the server has to start and list its tools (default 20).
    #[serde(default)]
    pub startup_timeout_s: Option<u64>,
    /// Largest message accepted from the server, in bytes (default 4 MiB);
    /// a larger one stops the server.
    #[serde(default)]
    pub max_message_bytes: Option<usize>,
}

impl McpServerSpec {
    /// Parses `NAME=COMMAND` (the `--mcp` flag).
    pub fn parse_flag(s: &str) -> Result<Self, McpError> {
        let Some((name, command)) = s.split_once('=') else {
            return Err(McpError::Config(format!(
                "--mcp {s:?}: expected NAME=COMMAND, e.g. --mcp 'docs=python3 tools/docs_server.py docs'"
            )));
        };
        let spec = Self {
            name: name.trim().to_string(),
            command: command.trim().to_string(),
            timeout_s: None,
            startup_timeout_s: None,
            max_message_bytes: None,
        };
        spec.validate()
            .map_err(|e| McpError::Config(format!("--mcp {s:?}: {e}")))?;
        Ok(spec)
    }

    /// Checks the name (it becomes part of tool names) and the command.
    pub fn validate(&self) -> Result<(), String> {
        let n = &self.name;
        let ok = !n.is_empty()
            && n.len() <= 32
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            && !n.contains("__")
            && !n.starts_with(['_', '-'])
            && !n.ends_with('_');
        if !ok {
            return Err(format!(
                "server name {n:?} must be 1-32 characters of a-z, 0-9, `_` and `-`, without `__` and not starting with `_` or `-` (its tools are offered as NAME__tool)"
            ));
        }
        if self.command.trim().is_empty() {
            return Err(format!("server `{n}` has an empty command"));
        }
        if self.timeout_s == Some(0) || self.startup_timeout_s == Some(0) {
            return Err(format!("server `{n}`: timeouts must be at least 1 second"));
        }
        if self.max_message_bytes.is_some_and(|b| b < 1024) {
            return Err(format!(
                "server `{n}`: max_message_bytes must be at least 1024"
            ));
        }
        Ok(())
    }

    /// Per-call timeout.
    pub fn call_timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_s.unwrap_or(DEFAULT_CALL_TIMEOUT_S))
    }

    /// Startup timeout.
    pub fn startup_timeout(&self) -> Duration {
        Duration::from_secs(self.startup_timeout_s.unwrap_or(DEFAULT_STARTUP_TIMEOUT_S))
    }

    /// Message cap in bytes.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    mcp: Vec<McpServerSpec>,
}

/// Parses the text of an `mcp.toml`; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Vec<McpServerSpec>, McpError> {
    let f: File = toml::from_str(text).map_err(|e| McpError::Config(format!("{origin}: {e}")))?;
    for s in &f.mcp {
        s.validate()
            .map_err(|e| McpError::Config(format!("{origin}: {e}")))?;
    }
    Ok(f.mcp)
}

/// The servers to start: those of the settings file (explicit path, else
/// `$AIRGATE_CONFIG_DIR/mcp.toml`, else built-in), then the `--mcp` flags.
/// Two servers with one name are an error.
pub fn servers(explicit: Option<&Path>, flags: &[String]) -> Result<Vec<McpServerSpec>, McpError> {
    let loaded = crate::config::load("mcp.toml", explicit, BUILTIN)
        .map_err(|e| McpError::Config(e.to_string()))?;
    let mut all = parse(&loaded.text, &loaded.origin)?;
    for f in flags {
        all.push(McpServerSpec::parse_flag(f)?);
    }
    let mut seen = std::collections::HashSet::new();
    for s in &all {
        if !seen.insert(s.name.as_str()) {
            return Err(McpError::Config(format!(
                "two MCP servers are named `{}`: give each --mcp / [[mcp]] entry its own name",
                s.name
            )));
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_names_are_refused() {
        let s = McpServerSpec::parse_flag("docs=python3 srv.py a=b").unwrap();
        assert_eq!(s.name, "docs");
        assert_eq!(s.command, "python3 srv.py a=b");
        for bad in [
            "nocommand",
            "=cmd",
            "Docs=x",
            "a__b=x",
            "_a=x",
            "a=",
            "a/b=x",
        ] {
            assert!(McpServerSpec::parse_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn toml_tables_and_duplicates() {
        let text = "[[mcp]]\nname = \"docs\"\ncommand = \"python3 s.py\"\ntimeout_s = 5\n";
        let v = parse(text, "t.toml").unwrap();
        assert_eq!(v[0].call_timeout(), Duration::from_secs(5));
        assert!(parse("[[mcp]]\nname = \"x\"\ncommand = \"c\"\nshell = 1\n", "t").is_err());
        assert!(parse(BUILTIN, "builtin").unwrap().is_empty());
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("mcp.toml");
        std::fs::write(&p, text).unwrap();
        assert_eq!(servers(Some(&p), &["other=true".into()]).unwrap().len(), 2);
        let dup = servers(Some(&p), &["docs=true".into()]).unwrap_err();
        assert!(dup.to_string().contains("two MCP servers"), "{dup}");
    }
}
