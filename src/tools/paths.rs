//! Path confinement: every path the model gives is resolved inside the
//! workspace root, or refused.
//!
//! Resolution walks the path one component at a time against the real
//! filesystem, so a symlink anywhere (a directory in the middle, or the final
//! file) is followed and checked, not trusted. Components that do not exist
//! yet are allowed (for file creation) as long as everything that does exist
//! resolves inside the root.

use std::path::{Component, Path, PathBuf};

/// Symlink hops followed before giving up (as the kernel's ELOOP limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// A path confined to the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Absolute host path (symlinks resolved) inside the canonical root.
    pub abs: PathBuf,
    /// The same path relative to the root, with `/` separators; `.` for the root.
    pub rel: String,
}

impl Resolved {
    /// True when the path exists (following symlinks).
    pub fn exists(&self) -> bool {
        self.abs.exists()
    }
}

/// Resolves a model-given `path` inside `root`.
///
/// Errors (text for the model) on absolute paths, `~`, `..` that leaves the
/// root, and symlinks whose target lies outside the root.
pub fn resolve(root: &Path, path: &str) -> Result<Resolved, String> {
    let root = root.canonicalize().map_err(|e| {
        format!(
            "the workspace root {} is not accessible: {e}",
            root.display()
        )
    })?;
    let trimmed = path.trim();
    if trimmed.contains('\0') {
        return Err(format!("path {path:?} contains a NUL byte"));
    }
    if trimmed == "~" || trimmed.starts_with("~/") {
        return Err(format!(
            "path `{path}` points into the home directory; only files inside the repository \
             are accessible. Use a path relative to the repository root, e.g. `src/main.py`."
        ));
    }
    if Path::new(trimmed).is_absolute() {
        return Err(format!(
            "absolute path `{path}` is not allowed; use a path relative to the repository root \
             (e.g. `src/main.py`, or `.` for the root)."
        ));
    }
    let mut hops = 0;
    let abs = walk(&root, &root, Path::new(trimmed), path, &mut hops)?;
    let rel = match abs.strip_prefix(&root) {
        Ok(r) if r.as_os_str().is_empty() => ".".to_string(),
        Ok(r) => r.to_string_lossy().replace('\\', "/"),
        Err(_) => return Err(outside(path)),
    };
    Ok(Resolved { abs, rel })
}

fn outside(path: &str) -> String {
    format!(
        "path `{path}` resolves outside the repository; only files inside the repository \
         are accessible. Use a path relative to the repository root."
    )
}

/// Appends `rel`'s components to `base` (already canonical and inside
/// `root`), following each symlink met and checking confinement at each step.
fn walk(
    root: &Path,
    base: &Path,
    rel: &Path,
    original: &str,
    hops: &mut usize,
) -> Result<PathBuf, String> {
    let mut cur = base.to_path_buf();
    // Once a component does not exist, the rest cannot be symlinks.
    let mut missing = false;
    for comp in rel.components() {
        match comp {
            Component::CurDir => {}
            Component::ParentDir => {
                if cur == root {
                    return Err(format!(
                        "path `{original}` uses `..` to leave the repository; only files inside \
                         the repository are accessible."
                    ));
                }
                cur.pop();
            }
            Component::Normal(name) => {
                cur.push(name);
                if missing {
                    continue;
                }
                match std::fs::symlink_metadata(&cur) {
                    Err(_) => missing = true,
                    Ok(meta) if meta.file_type().is_symlink() => {
                        *hops += 1;
                        if *hops > MAX_SYMLINK_HOPS {
                            return Err(format!(
                                "path `{original}` has too many levels of symbolic links"
                            ));
                        }
                        let target = std::fs::read_link(&cur)
                            .map_err(|e| format!("cannot read symlink in `{original}`: {e}"))?;
                        cur.pop();
                        if target.is_absolute() {
                            // Re-anchor an absolute target at the root, if it lies inside.
                            let Some(inside) = lexical_strip(&target, root) else {
                                return Err(symlink_outside(original, &target));
                            };
                            cur = walk(root, root, &inside, original, hops)
                                .map_err(|_| symlink_outside(original, &target))?;
                        } else {
                            let parent = cur.clone();
                            cur = walk(root, &parent, &target, original, hops)
                                .map_err(|_| symlink_outside(original, &target))?;
                        }
                        if !cur.exists() {
                            missing = true;
                        }
                    }
                    Ok(_) => {}
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "absolute path `{original}` is not allowed; use a path relative to the \
                     repository root."
                ));
            }
        }
    }
    if !cur.starts_with(root) {
        return Err(outside(original));
    }
    Ok(cur)
}

fn symlink_outside(original: &str, target: &Path) -> String {
    format!(
        "path `{original}` goes through a symbolic link to `{}`, which is outside the \
         repository; only files inside the repository are accessible.",
        target.display()
    )
}

/// `target` (absolute) relative to `root`, normalising `.`/`..` lexically;
/// `None` when it lies outside.
fn lexical_strip(target: &Path, root: &Path) -> Option<PathBuf> {
    let mut norm = PathBuf::new();
    for c in target.components() {
        match c {
            Component::ParentDir => {
                norm.pop();
            }
            Component::CurDir => {}
            other => norm.push(other.as_os_str()),
        }
    }
    norm.strip_prefix(root).ok().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().canonicalize().expect("canon");
        let root = base.join("repo");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("src/pkg")).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(root.join("src/pkg/a.py"), "x = 1\n").expect("write");
        std::fs::write(outside.join("secret.txt"), "secret").expect("write");
        Fixture {
            _dir: dir,
            root,
            outside,
        }
    }

    #[test]
    fn plain_relative_paths_resolve() {
        let f = fixture();
        let r = resolve(&f.root, "src/pkg/a.py").expect("ok");
        assert_eq!(r.rel, "src/pkg/a.py");
        assert_eq!(r.abs, f.root.join("src/pkg/a.py"));
        assert!(r.exists());
        assert_eq!(resolve(&f.root, ".").expect("ok").rel, ".");
        assert_eq!(resolve(&f.root, "").expect("ok").rel, ".");
        assert_eq!(resolve(&f.root, "./src/./pkg").expect("ok").rel, "src/pkg");
    }

    #[test]
    fn dotdot_inside_root_is_fine() {
        let f = fixture();
        let r = resolve(&f.root, "src/pkg/../pkg/a.py").expect("ok");
        assert_eq!(r.rel, "src/pkg/a.py");
    }

    #[test]
    fn dotdot_escape_is_refused() {
        let f = fixture();
        let e = resolve(&f.root, "../outside/secret.txt").unwrap_err();
        assert!(e.contains("`..`"), "{e}");
        let e = resolve(&f.root, "src/../../outside").unwrap_err();
        assert!(e.contains("`..`"), "{e}");
        assert!(resolve(&f.root, "..").is_err());
    }

    #[test]
    fn absolute_path_is_refused() {
        let f = fixture();
        let e = resolve(&f.root, "/etc/passwd").unwrap_err();
        assert!(e.contains("absolute path"), "{e}");
        // Even one that points inside the root.
        let inside = f.root.join("src/pkg/a.py");
        let e = resolve(&f.root, inside.to_str().expect("utf8")).unwrap_err();
        assert!(e.contains("relative to the repository root"), "{e}");
    }

    #[test]
    fn home_path_is_refused() {
        let f = fixture();
        assert!(resolve(&f.root, "~/.ssh/id_rsa").is_err());
        assert!(resolve(&f.root, "~").is_err());
    }

    #[test]
    fn symlinked_dir_outside_is_refused() {
        let f = fixture();
        symlink(&f.outside, f.root.join("escape")).expect("symlink");
        let e = resolve(&f.root, "escape/secret.txt").unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        // Creating a new file through it is refused too.
        assert!(resolve(&f.root, "escape/new.txt").is_err());
        assert!(resolve(&f.root, "escape").is_err());
    }

    #[test]
    fn symlinked_final_file_outside_is_refused() {
        let f = fixture();
        symlink(f.outside.join("secret.txt"), f.root.join("link.txt")).expect("symlink");
        let e = resolve(&f.root, "link.txt").unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
    }

    #[test]
    fn relative_symlink_outside_is_refused() {
        let f = fixture();
        symlink(
            "../../../outside/secret.txt",
            f.root.join("src/pkg/rel.txt"),
        )
        .expect("symlink");
        assert!(resolve(&f.root, "src/pkg/rel.txt").is_err());
    }

    #[test]
    fn dangling_symlink_outside_is_refused() {
        let f = fixture();
        symlink(f.outside.join("not-yet.txt"), f.root.join("dangling")).expect("symlink");
        assert!(resolve(&f.root, "dangling").is_err());
    }

    #[test]
    fn symlink_inside_root_is_followed() {
        let f = fixture();
        symlink("src/pkg", f.root.join("pk")).expect("symlink");
        let r = resolve(&f.root, "pk/a.py").expect("ok");
        assert_eq!(r.rel, "src/pkg/a.py");
        symlink(f.root.join("src/pkg/a.py"), f.root.join("abs-link.py")).expect("symlink");
        let r = resolve(&f.root, "abs-link.py").expect("ok");
        assert_eq!(r.rel, "src/pkg/a.py");
    }

    #[test]
    fn symlink_loop_is_an_error_not_a_hang() {
        let f = fixture();
        symlink("loop-b", f.root.join("loop-a")).expect("symlink");
        symlink("loop-a", f.root.join("loop-b")).expect("symlink");
        assert!(resolve(&f.root, "loop-a").is_err());
    }

    #[test]
    fn missing_files_resolve_for_creation() {
        let f = fixture();
        let r = resolve(&f.root, "new/dir/file.py").expect("ok");
        assert_eq!(r.rel, "new/dir/file.py");
        assert!(!r.exists());
        // `..` inside a missing part still may not escape.
        assert!(resolve(&f.root, "new/../../x").is_err());
    }

    #[test]
    fn root_given_through_symlink_works() {
        let f = fixture();
        let alias = f.outside.join("alias");
        symlink(&f.root, &alias).expect("symlink");
        let r = resolve(&alias, "src/pkg/a.py").expect("ok");
        assert_eq!(r.rel, "src/pkg/a.py");
    }
}
