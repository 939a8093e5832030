//! Lexical (string-only, no file system access) path handling for the
//! artifact store, which keys objects by normalised `/`-separated paths.

/// Normalises `path` lexically:
/// - repeated `/` collapse, `.` segments disappear;
/// - `x/..` cancels out;
/// - a relative path keeps leading `..` segments that cannot be cancelled
///   (`../a`, `a/../..` is `..`);
/// - `..` directly under the root stays at the root (`/../a` is `/a`);
/// - no trailing `/` except for the root itself;
/// - an empty result is `.` for a relative path and `/` for an absolute one.
pub fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// `base` joined with `rel` and normalised; an absolute `rel` replaces
/// `base`.
pub fn join(base: &str, rel: &str) -> String {
    normalize(&format!("{base}/{rel}"))
}

/// The relative path that leads from directory `base` to `target`, both
/// absolute; `.` when they are the same. `None` if either is relative.
pub fn relative_to(target: &str, base: &str) -> Option<String> {
    if !target.starts_with('/') || !base.starts_with('/') {
        return None;
    }
    let target = normalize(target);
    let base = normalize(base);
    if let Some(rest) = target.strip_prefix(&base) {
        return Some(normalize(rest.trim_start_matches('/')));
    }
    let ups = base.matches('/').count();
    Some(format!("{}{}", "../".repeat(ups), target.trim_start_matches('/')))
}

/// True when `path`, once normalised, stays inside `root` (an absolute
/// directory); used to refuse uploads like `../../etc/passwd`.
pub fn is_within(root: &str, path: &str) -> bool {
    let full = join(root, path);
    full.starts_with(&normalize(root))
}
