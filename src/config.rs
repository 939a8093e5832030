//! Where security-relevant settings come from: the installation, never the
//! current directory or the repository being fixed.
//!
//! A repo fixed from its own root could otherwise ship a
//! `configs/docker.toml` that chooses its own isolation. So a settings file
//! is looked up, in order, at:
//! 1. an explicit path (a `--config`-style flag of the command);
//! 2. `$AIRGATE_CONFIG_DIR/<name>`, a directory the operator chose;
//! 3. the copy compiled into the binary from this repo's `configs/`.
//!
//! The current directory is never consulted.

use std::path::{Path, PathBuf};

/// Environment variable naming the operator's configuration directory.
pub const CONFIG_DIR_ENV: &str = "AIRGATE_CONFIG_DIR";

/// Failure to read a settings file that was asked for.
#[derive(Debug, thiserror::Error)]
#[error(
    "reading {path}: {source} (fix the path, or unset {CONFIG_DIR_ENV} to use the built-in settings)"
)]
pub struct ConfigError {
    /// The file that could not be read.
    pub path: PathBuf,
    /// Cause.
    pub source: std::io::Error,
}

impl crate::error::Retryable for ConfigError {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// A settings file's text and where it came from (for error messages and
/// trajectories).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The TOML text.
    pub text: String,
    /// `path/to/file`, or `built-in configs/<name>`.
    pub origin: String,
}

/// Loads `name` (such as `docker.toml`): `explicit` if given, else
/// `$AIRGATE_CONFIG_DIR/name` if that file exists, else `builtin`.
pub fn load(name: &str, explicit: Option<&Path>, builtin: &str) -> Result<Loaded, ConfigError> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|text| Loaded {
                text,
                origin: p.display().to_string(),
            })
            .map_err(|source| ConfigError {
                path: p.to_path_buf(),
                source,
            })
    };
    if let Some(p) = explicit {
        return read(p);
    }
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        let p = Path::new(&dir).join(name);
        if p.is_file() {
            return read(&p);
        }
    }
    Ok(Loaded {
        text: builtin.to_string(),
        origin: format!("built-in configs/{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without an explicit path or an operator directory the built-in
    /// text is used; an explicit path wins; a missing explicit file is an
    /// error, never a silent fallback.
    #[test]
    fn explicit_then_builtin() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("configs")).unwrap();
        std::fs::write(d.path().join("configs/x.toml"), "evil = true").unwrap();
        let got = load("x.toml", None, "builtin = true").unwrap();
        assert_eq!(got.text, "builtin = true");
        assert!(got.origin.starts_with("built-in"));
        let explicit = load("x.toml", Some(&d.path().join("configs/x.toml")), "").unwrap();
        assert_eq!(explicit.text, "evil = true");
        assert!(load("x.toml", Some(&d.path().join("missing.toml")), "").is_err());
    }
}
