//! Settings of the local (bubblewrap) sandbox, `configs/sandbox.toml`.
//!
//! They come from the installation or an explicit path
//! ([`crate::config::load`]), never from the current directory: a repository
//! fixed from its own root must not choose its own confinement. What is
//! fixed in code (no network, no capabilities, namespaces, only the
//! workspace writable) is not a setting at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::SandboxError;

/// The built-in copy of `configs/sandbox.toml`.
pub const BUILTIN: &str = include_str!("../../configs/sandbox.toml");

/// What the local sandbox shows, hides and limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// The user's home, whose contents stay unreachable; empty means `$HOME`.
    /// Also what `~/` expands to. A setting so that tests can point it at a
    /// directory of decoys.
    #[serde(default)]
    pub user_home: PathBuf,
    /// System directories bound read-only at the same path.
    #[serde(default)]
    pub system_paths: Vec<String>,
    /// Further directories bound read-only at the same path.
    #[serde(default)]
    pub extra_paths: Vec<String>,
    /// Whether every absolute directory on airgate's `PATH` is bound
    /// read-only (so commands find the operator's tools).
    #[serde(default)]
    pub path_from_env: bool,
    /// Paths hidden inside what is shown (files read as empty, directories
    /// as empty read-only directories).
    #[serde(default)]
    pub masks: Vec<String>,
    /// Globs of file names hidden at the top level of each toolchain
    /// directory (registry credentials and the like).
    #[serde(default)]
    pub toolchain_masks: Vec<String>,
    /// Variables copied from airgate's environment when set.
    #[serde(default)]
    pub env_passthrough: Vec<String>,
    /// Variables set to fixed values; `{home}` is the sandbox's home.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Toolchains living under a home directory, shown read-only.
    #[serde(default, rename = "toolchain")]
    pub toolchains: Vec<Toolchain>,
    /// Resource limits per command.
    #[serde(default)]
    pub limits: Limits,
}

/// A toolchain directory named by an environment variable.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Toolchain {
    /// The variable naming it (`CARGO_HOME`), also set inside the sandbox.
    pub var: String,
    /// Where it is when the variable is unset (`~/.cargo`); empty means
    /// only when the variable is set.
    #[serde(default)]
    pub default: String,
}

/// Resource limits applied to each command (0 = no limit).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// `RLIMIT_NPROC` (counted per user id; not enforced by the kernel for root).
    pub processes: u64,
    /// `RLIMIT_FSIZE`, in MiB.
    pub file_size_mb: u64,
    /// `RLIMIT_DATA`, in MiB.
    pub memory_mb: u64,
    /// `RLIMIT_NOFILE`.
    pub open_files: u64,
    /// Size of the private `/tmp` (and of a memory-backed home), in MiB.
    pub tmp_size_mb: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            processes: 4096,
            file_size_mb: 4096,
            memory_mb: 8192,
            open_files: 4096,
            tmp_size_mb: 2048,
        }
    }
}

impl SandboxConfig {
    /// The built-in settings (`configs/sandbox.toml` compiled in).
    pub fn builtin() -> Result<Self, SandboxError> {
        Self::parse(BUILTIN, "built-in configs/sandbox.toml")
    }

    /// Loads the settings: `explicit` if given, else
    /// `$AIRGATE_CONFIG_DIR/sandbox.toml`, else the built-in copy.
    pub fn load(explicit: Option<&Path>) -> Result<Self, SandboxError> {
        let loaded = crate::config::load("sandbox.toml", explicit, BUILTIN)
            .map_err(|e| SandboxError::Other(e.to_string()))?;
        Self::parse(&loaded.text, &loaded.origin)
    }

    /// Parses and checks settings text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SandboxError> {
        let cfg: Self = toml::from_str(text)
            .map_err(|e| SandboxError::Other(format!("invalid sandbox settings {origin}: {e}")))?;
        cfg.validate()
            .map_err(|e| SandboxError::Other(format!("invalid sandbox settings {origin}: {e}")))?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        for name in &self.env_passthrough {
            check_env_name(name)?;
            if looks_secret(name) {
                return Err(format!(
                    "env_passthrough names {name}, which looks like a secret; \
                     secrets never enter the sandbox (remove it)"
                ));
            }
        }
        for name in self.env.keys() {
            check_env_name(name)?;
        }
        for t in &self.toolchains {
            check_env_name(&t.var)?;
        }
        for g in &self.toolchain_masks {
            globset::Glob::new(g).map_err(|e| format!("toolchain_masks: {e}"))?;
        }
        Ok(())
    }

    /// The user's home: `user_home`, else `$HOME`. `None` when neither is an
    /// absolute path (then `~/` entries are skipped).
    pub fn home(&self) -> Option<PathBuf> {
        if !self.user_home.as_os_str().is_empty() {
            return self.user_home.is_absolute().then(|| self.user_home.clone());
        }
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    }

    /// Expands a leading `~/` against [`SandboxConfig::home`]; `None` when it
    /// cannot be expanded or the result is not absolute.
    pub fn expand(&self, path: &str) -> Option<PathBuf> {
        let p = if path == "~" {
            self.home()?
        } else if let Some(rest) = path.strip_prefix("~/") {
            self.home()?.join(rest)
        } else {
            PathBuf::from(path)
        };
        p.is_absolute().then_some(p)
    }
}

/// A valid environment variable name: non-empty, no `=`, no NUL.
pub(crate) fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(format!("invalid environment variable name {name:?}"));
    }
    Ok(())
}

/// Names of variables that carry credentials or reach the host: never
/// copied into the sandbox from airgate's environment.
pub(crate) fn looks_secret(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    const PARTS: [&str; 7] = [
        "KEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "CREDENTIAL",
        "COOKIE",
    ];
    const EXACT: [&str; 4] = [
        "SSH_AUTH_SOCK",
        "DOCKER_HOST",
        "DBUS_SESSION_BUS_ADDRESS",
        "XDG_RUNTIME_DIR",
    ];
    up.starts_with("AIRGATE_")
        || PARTS.iter().any(|p| up.contains(p))
        || EXACT.contains(&up.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped file parses, keeps the system read-only set, and every
    /// documented default is what the code assumes.
    #[test]
    fn builtin_parses() {
        let cfg = SandboxConfig::builtin().unwrap();
        assert!(cfg.system_paths.iter().any(|p| p == "/usr"));
        assert!(cfg.masks.iter().any(|p| p == "/etc/shadow"));
        assert!(cfg.toolchains.iter().any(|t| t.var == "CARGO_HOME"));
        assert!(cfg.path_from_env);
        assert_eq!(cfg.limits, Limits::default());
    }

    /// Attack: a settings file that passes an API key through is refused.
    /// Control: ordinary names are accepted.
    #[test]
    fn secret_passthrough_is_refused() {
        for bad in [
            "OPENAI_API_KEY",
            "AIRGATE_MODEL",
            "SSH_AUTH_SOCK",
            "GITHUB_TOKEN",
            "DOCKER_HOST",
        ] {
            let text = format!("env_passthrough = [\"{bad}\"]");
            let err = SandboxConfig::parse(&text, "t").unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
        let ok = SandboxConfig::parse("env_passthrough = [\"LANG\", \"TZ\"]", "t").unwrap();
        assert_eq!(ok.env_passthrough, ["LANG", "TZ"]);
    }

    /// Unknown keys are errors, not silently ignored settings.
    #[test]
    fn unknown_fields_are_refused() {
        assert!(SandboxConfig::parse("network = true", "t").is_err());
        assert!(SandboxConfig::parse("[limits]\nswap_mb = 1", "t").is_err());
    }

    #[test]
    fn tilde_expands_against_user_home() {
        let mut cfg = SandboxConfig::builtin().unwrap();
        cfg.user_home = PathBuf::from("/decoy");
        assert_eq!(cfg.expand("~/.cargo"), Some(PathBuf::from("/decoy/.cargo")));
        assert_eq!(cfg.expand("/usr"), Some(PathBuf::from("/usr")));
        assert_eq!(cfg.expand("relative"), None);
    }
}
