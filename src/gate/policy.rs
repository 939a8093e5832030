//! The patch policy: which files a patch may change.
//!
//! It is an allowlist. A patch may change or add files of a recognised kind
//! (source by language, plus configuration data); anything else is refused,
//! and so are the categories of `configs/patch_policy.toml` whose change can
//! decide the verdict without a fix (tests, runner and build configuration,
//! CI, VCS metadata, secrets, modules that shadow the runner or the standard
//! library), symlinks and files made executable.
//!
//! The same policy answers two callers: `str_replace` asks [`PatchPolicy::check`]
//! before an edit (the model gets the [`Denial`] as a message and goes on),
//! and the gate runs [`PatchPolicy::filter_patch`] on the final diff, which
//! drops refused sections so that what is judged, and shipped, is only what
//! the policy allows. This is UX and hygiene, not the security boundary: the
//! gate also runs on a fresh pristine copy in a fresh sandbox.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::error::Retryable;

/// The built-in policy, compiled into the binary.
pub const BUILTIN_POLICY: &str = include_str!("../../configs/patch_policy.toml");

/// File name of the policy under `$AIRGATE_CONFIG_DIR`.
pub const POLICY_FILE: &str = "patch_policy.toml";

/// Failure to load or build a policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The settings file could not be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The settings file is not a valid policy.
    #[error(
        "{origin}: invalid patch policy: {message} (fix the file or remove it to use the built-in policy)"
    )]
    Parse {
        /// Where the text came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A glob (from the policy, a task's `protected` or `--allow-path`) is invalid.
    #[error("invalid path glob `{pattern}`: {message} (fix the glob)")]
    Glob {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
}

impl Retryable for PolicyError {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// What a patch does to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new file (also the target of a rename or copy).
    Add,
    /// An edit of an existing file.
    Modify,
    /// A deleted file (also the source of a rename).
    Delete,
    /// A symlink created or changed.
    Symlink,
    /// A file made executable (or created executable).
    MakeExecutable,
}

/// Why a change of one path is refused; its `Display` is the message shown
/// to the model (and recorded as a flag when the gate drops a section).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Denial {
    /// The refused path, relative to the repo root.
    pub path: String,
    /// The policy category (`tests`, `runner_config`, `vcs`, `unrecognised`...).
    pub category: String,
    /// Why that category is refused.
    pub reason: String,
    /// Whether `--allow-path` could lift it.
    pub liftable: bool,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused to change `{}`: {} [{}]. Change the code under test instead",
            self.path, self.reason, self.category
        )?;
        if self.liftable {
            write!(
                f,
                "; if the task really needs this file, the operator can allow it with --allow-path"
            )?;
        }
        Ok(())
    }
}

/// The result of [`PatchPolicy::filter_patch`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filtered {
    /// The allowed sections, in order; applies with `git apply`.
    pub kept: String,
    /// One denial per dropped section.
    pub dropped: Vec<Denial>,
    /// Paths the kept sections touch (new names of renames).
    pub kept_paths: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    allow: AllowFile,
    #[serde(default)]
    deny: Vec<DenyFile>,
    shadow: ShadowFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowFile {
    source: Vec<String>,
    #[serde(default)]
    data: Vec<String>,
    #[serde(default)]
    names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyFile {
    category: String,
    reason: String,
    liftable: bool,
    globs: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShadowFile {
    reason: String,
    stdlib: Vec<String>,
}

#[derive(Debug, Clone)]
struct Category {
    name: String,
    reason: String,
    liftable: bool,
    globs: PathGlobs,
}

/// A set of gitignore-like globs over repo-relative paths.
///
/// A pattern without `/` matches a file or directory name at any depth
/// (`conftest.py`, `*.pth`); a pattern with a `/` in it, or a leading `/`,
/// is anchored at the root (`tests/**`, `/vendor/`); a trailing `/` names a
/// directory and everything under it (`.git/`, `__tests__/`). `*` never
/// crosses `/`; `**` does.
#[derive(Debug, Clone)]
pub struct PathGlobs {
    set: GlobSet,
    patterns: Vec<String>,
}

impl PathGlobs {
    /// Builds the set; `case_insensitive` for denials, where missing a
    /// `Makefile` spelled `MAKEFILE` costs more than refusing it.
    pub fn new<S: AsRef<str>>(patterns: &[S], case_insensitive: bool) -> Result<Self, PolicyError> {
        let mut b = GlobSetBuilder::new();
        let mut kept = Vec::with_capacity(patterns.len());
        for p in patterns {
            let p = p.as_ref();
            for g in gitignore_globs(p) {
                let glob = GlobBuilder::new(&g)
                    .literal_separator(true)
                    .case_insensitive(case_insensitive)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| PolicyError::Glob {
                        pattern: p.to_string(),
                        message: e.to_string(),
                    })?;
                b.add(glob);
            }
            kept.push(p.to_string());
        }
        let set = b.build().map_err(|e| PolicyError::Glob {
            pattern: kept.join(", "),
            message: e.to_string(),
        })?;
        Ok(Self {
            set,
            patterns: kept,
        })
    }

    /// True when `path` (repo-relative, `/`-separated) matches a pattern.
    pub fn is_match(&self, path: &str) -> bool {
        !self.patterns.is_empty() && self.set.is_match(path)
    }

    /// The patterns as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// Translates one gitignore-like pattern into globset globs.
fn gitignore_globs(pattern: &str) -> Vec<String> {
    let p = pattern.trim();
    let anchored_root = p.starts_with('/');
    let p = p.trim_start_matches('/');
    let dir = p.ends_with('/');
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        return vec![];
    }
    let anchored = anchored_root || p.contains('/');
    let base = if anchored {
        p.to_string()
    } else {
        format!("**/{p}")
    };
    if dir {
        vec![base.clone(), format!("{base}/**")]
    } else {
        vec![base]
    }
}

/// The gate's patch policy (see the module docs).
#[derive(Debug, Clone)]
pub struct PatchPolicy {
    origin: String,
    source_exts: BTreeSet<String>,
    data_exts: BTreeSet<String>,
    names: BTreeSet<String>,
    categories: Vec<Category>,
    shadow_reason: String,
    shadow_names: BTreeSet<String>,
    protected: Option<PathGlobs>,
    allowed: Option<PathGlobs>,
}

impl PatchPolicy {
    /// Loads the policy: `explicit` if given, else
    /// `$AIRGATE_CONFIG_DIR/patch_policy.toml`, else the built-in copy.
    /// Never the repository being fixed.
    pub fn load(explicit: Option<&Path>) -> Result<Self, PolicyError> {
        let loaded = crate::config::load(POLICY_FILE, explicit, BUILTIN_POLICY)?;
        Self::from_toml(&loaded.text, &loaded.origin)
    }

    /// Parses a policy from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| PolicyError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        if file.allow.source.is_empty() {
            return Err(PolicyError::Parse {
                origin: origin.to_string(),
                message: "[allow] source is empty: no patch could ever be kept".into(),
            });
        }
        let lower = |v: Vec<String>| -> BTreeSet<String> {
            v.into_iter()
                .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                .collect()
        };
        let mut categories = Vec::with_capacity(file.deny.len());
        for d in file.deny {
            categories.push(Category {
                globs: PathGlobs::new(&d.globs, true)?,
                name: d.category,
                reason: d.reason,
                liftable: d.liftable,
            });
        }
        Ok(Self {
            origin: origin.to_string(),
            source_exts: lower(file.allow.source),
            data_exts: lower(file.allow.data),
            names: file.allow.names.into_iter().collect(),
            categories,
            shadow_reason: file.shadow.reason,
            shadow_names: file.shadow.stdlib.into_iter().collect(),
            protected: None,
            allowed: None,
        })
    }

    /// Where the policy came from (a path, or `built-in configs/...`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Adds a task's `protected` globs to the denials. They are never lifted.
    pub fn with_protected(mut self, globs: &[String]) -> Result<Self, PolicyError> {
        let mut all: Vec<String> = self
            .protected
            .as_ref()
            .map(|p| p.patterns().to_vec())
            .unwrap_or_default();
        all.extend(globs.iter().cloned());
        self.protected = Some(PathGlobs::new(&all, true)?);
        Ok(self)
    }

    /// Lifts the liftable denials (`--allow-path`) for paths matching `globs`.
    pub fn with_allowed(mut self, globs: &[String]) -> Result<Self, PolicyError> {
        let mut all: Vec<String> = self
            .allowed
            .as_ref()
            .map(|p| p.patterns().to_vec())
            .unwrap_or_default();
        all.extend(globs.iter().cloned());
        self.allowed = Some(PathGlobs::new(&all, false)?);
        Ok(self)
    }

    /// Adds the top-level import names of the installed distributions (as
    /// computed by the caller in the gate image): a new top-level module
    /// with one of these names would shadow the real package.
    pub fn with_installed(mut self, names: &[String]) -> Self {
        self.shadow_names.extend(names.iter().cloned());
        self
    }

    fn allowed(&self, path: &str) -> bool {
        self.allowed.as_ref().is_some_and(|a| a.is_match(path))
    }

    /// Decides whether `change` of `path` (repo-relative) is allowed.
    pub fn check(&self, path: &str, change: ChangeKind) -> Result<(), Denial> {
        let path = normalize(path).ok_or_else(|| Denial {
            path: path.to_string(),
            category: "invalid_path".into(),
            reason: "the path is not a plain relative path inside the repository".into(),
            liftable: false,
        })?;
        let deny = |category: &str, reason: &str, liftable: bool| Denial {
            path: path.clone(),
            category: category.to_string(),
            reason: reason.to_string(),
            liftable,
        };
        if self.protected.as_ref().is_some_and(|p| p.is_match(&path)) {
            return Err(deny(
                "protected",
                "the task protects it (task.toml `protected`)",
                false,
            ));
        }
        let allowed = self.allowed(&path);
        for c in &self.categories {
            if c.globs.is_match(&path) && !(c.liftable && allowed) {
                return Err(deny(&c.name, &c.reason, c.liftable));
            }
        }
        match change {
            ChangeKind::Symlink => {
                return Err(deny(
                    "symlink",
                    "a symlink can point the tests or the runner at files outside the patch",
                    false,
                ));
            }
            ChangeKind::MakeExecutable => {
                return Err(deny(
                    "executable",
                    "a patch may not make files executable",
                    false,
                ));
            }
            ChangeKind::Add if !allowed && self.shadows(&path) => {
                return Err(deny("shadow_module", &self.shadow_reason, true));
            }
            _ => {}
        }
        if !allowed && !self.recognised(&path) {
            return Err(deny(
                "unrecognised",
                "it is not a recognised source or configuration-data file",
                true,
            ));
        }
        Ok(())
    }

    /// A new `<name>.py` or `<name>/__init__.py` at the root, `<name>` a
    /// standard-library or installed top-level module.
    fn shadows(&self, path: &str) -> bool {
        let name = match path.split_once('/') {
            None => path.strip_suffix(".py"),
            Some((dir, "__init__.py")) => Some(dir),
            Some(_) => None,
        };
        name.is_some_and(|n| self.shadow_names.contains(n))
    }

    fn recognised(&self, path: &str) -> bool {
        let file = path.rsplit('/').next().unwrap_or(path);
        if self.names.contains(file) {
            return true;
        }
        match file.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => {
                let ext = ext.to_ascii_lowercase();
                self.source_exts.contains(&ext) || self.data_exts.contains(&ext)
            }
            _ => false,
        }
    }

    /// Splits a `git diff --binary` output into per-file sections and drops
    /// the refused ones. A section that cannot be parsed is dropped too
    /// (fail closed), and so is any text before the first `diff --git`.
    pub fn filter_patch(&self, patch: &str) -> Filtered {
        let mut out = Filtered::default();
        let (preamble, sections) = split_sections(patch);
        if !preamble.trim().is_empty() {
            out.dropped
                .push(unparsed("(text before the first `diff --git`)"));
        }
        for section in sections {
            match self.judge_section(section) {
                Ok(paths) => {
                    out.kept.push_str(section);
                    if !section.ends_with('\n') {
                        out.kept.push('\n');
                    }
                    out.kept_paths.extend(paths);
                }
                Err(d) => {
                    tracing::debug!(path = %d.path, category = %d.category, "patch section dropped");
                    out.dropped.push(*d);
                }
            }
        }
        out
    }

    /// The checks one section needs; the paths it touches when all pass.
    fn judge_section(&self, section: &str) -> Result<Vec<String>, Box<Denial>> {
        let h = parse_header(section).ok_or_else(|| {
            let first = section.lines().next().unwrap_or_default();
            Box::new(unparsed(first))
        })?;
        let target_mode = h.new_mode.as_deref().or(h.index_mode.as_deref());
        let any_mode = |m: &str| {
            [&h.old_mode, &h.new_mode, &h.index_mode]
                .iter()
                .any(|x| x.as_deref() == Some(m))
        };
        let mut checks: Vec<(String, ChangeKind)> = vec![];
        match (&h.old, &h.new) {
            (None, Some(new)) => checks.push((new.clone(), ChangeKind::Add)),
            (Some(old), None) => checks.push((old.clone(), ChangeKind::Delete)),
            (Some(old), Some(new)) if old != new || h.rename || h.copy => {
                if !h.copy {
                    checks.push((old.clone(), ChangeKind::Delete));
                }
                checks.push((new.clone(), ChangeKind::Add));
            }
            (Some(_), Some(new)) => checks.push((new.clone(), ChangeKind::Modify)),
            (None, None) => return Err(Box::new(unparsed("(no path)"))),
        }
        if let Some(target) = h.new.clone() {
            if any_mode("160000") {
                return Err(Box::new(Denial {
                    path: target,
                    category: "submodule".into(),
                    reason: "a patch may not add or move git submodules".into(),
                    liftable: false,
                }));
            }
            if target_mode == Some("120000") || h.old_mode.as_deref() == Some("120000") {
                checks.push((target.clone(), ChangeKind::Symlink));
            }
            // An executable edited in place (no mode line) stays as it was.
            let in_place = h.old.as_deref() == Some(target.as_str()) && !h.copy;
            if target_mode == Some("100755") && !(in_place && h.new_mode.is_none()) {
                checks.push((target, ChangeKind::MakeExecutable));
            }
        } else if any_mode("160000") {
            // Deleting a submodule entry is still a gitlink change.
            if let Some(old) = &h.old {
                return Err(Box::new(Denial {
                    path: old.clone(),
                    category: "submodule".into(),
                    reason: "a patch may not add or move git submodules".into(),
                    liftable: false,
                }));
            }
        }
        for (p, k) in &checks {
            self.check(p, *k).map_err(Box::new)?;
        }
        let mut paths: Vec<String> = checks.into_iter().map(|(p, _)| p).collect();
        paths.dedup();
        Ok(paths)
    }
}

fn unparsed(what: &str) -> Denial {
    Denial {
        path: what.to_string(),
        category: "unparsed".into(),
        reason: "this part of the patch could not be parsed as a `git diff` file section".into(),
        liftable: false,
    }
}

/// A repo-relative path with `./` and empty components removed; `None` when
/// absolute, escaping (`..`), empty or containing NUL.
fn normalize(path: &str) -> Option<String> {
    if path.starts_with('/') || path.contains('\0') {
        return None;
    }
    let mut parts = vec![];
    for c in path.split('/') {
        match c {
            "" | "." => continue,
            ".." => return None,
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

/// Splits at lines starting with `diff --git `: the text before the first
/// one, and each section (with its trailing newline).
pub(crate) fn split_sections(patch: &str) -> (&str, Vec<&str>) {
    let mut starts = vec![];
    let mut off = 0;
    for line in patch.split_inclusive('\n') {
        if line.starts_with("diff --git ") {
            starts.push(off);
        }
        off += line.len();
    }
    let Some(&first) = starts.first() else {
        return (patch, vec![]);
    };
    let mut sections = Vec::with_capacity(starts.len());
    for (i, &s) in starts.iter().enumerate() {
        let e = starts.get(i + 1).copied().unwrap_or(patch.len());
        sections.push(&patch[s..e]);
    }
    (&patch[..first], sections)
}

/// The names and modes of one `diff --git` section.
#[derive(Debug, Default)]
pub(crate) struct Header {
    pub(crate) old: Option<String>,
    pub(crate) new: Option<String>,
    pub(crate) old_mode: Option<String>,
    pub(crate) new_mode: Option<String>,
    pub(crate) index_mode: Option<String>,
    pub(crate) rename: bool,
    pub(crate) copy: bool,
}

/// Parses a section's `diff --git` line and extended headers, the way
/// `git apply` finds names: `rename`/`copy` lines, then `---`/`+++`, then
/// the `diff --git` line itself (two equal halves when unquoted).
pub(crate) fn parse_header(section: &str) -> Option<Header> {
    let mut lines = section.lines();
    let first = lines.next()?.strip_prefix("diff --git ")?;
    let (hdr_a, hdr_b) = split_git_names(first)?;
    let mut h = Header::default();
    let (mut minus, mut plus) = (None, None);
    let (mut new_file, mut deleted) = (false, false);
    let (mut rename_from, mut rename_to) = (None, None);
    for line in lines {
        if line.starts_with("@@")
            || line.starts_with("GIT binary patch")
            || line.starts_with("Binary files ")
        {
            break;
        }
        if let Some(m) = line.strip_prefix("old mode ") {
            h.old_mode = Some(m.trim().to_string());
        } else if let Some(m) = line.strip_prefix("new mode ") {
            h.new_mode = Some(m.trim().to_string());
        } else if let Some(m) = line.strip_prefix("new file mode ") {
            new_file = true;
            h.new_mode = Some(m.trim().to_string());
        } else if let Some(m) = line.strip_prefix("deleted file mode ") {
            deleted = true;
            h.old_mode = Some(m.trim().to_string());
        } else if let Some(p) = line.strip_prefix("rename from ") {
            h.rename = true;
            rename_from = Some(unquote(p)?);
        } else if let Some(p) = line.strip_prefix("rename to ") {
            h.rename = true;
            rename_to = Some(unquote(p)?);
        } else if let Some(p) = line.strip_prefix("copy from ") {
            h.copy = true;
            rename_from = Some(unquote(p)?);
        } else if let Some(p) = line.strip_prefix("copy to ") {
            h.copy = true;
            rename_to = Some(unquote(p)?);
        } else if let Some(rest) = line.strip_prefix("index ") {
            h.index_mode = rest.split_whitespace().nth(1).map(str::to_string);
        } else if let Some(p) = line.strip_prefix("--- ") {
            minus = Some(diff_name(p)?);
        } else if let Some(p) = line.strip_prefix("+++ ") {
            plus = Some(diff_name(p)?);
        } else if line.starts_with("similarity index ") || line.starts_with("dissimilarity index ")
        {
        } else {
            // An extended header git does not write: fail closed.
            return None;
        }
    }
    let old = rename_from
        .map(Some)
        .or(minus)
        .unwrap_or_else(|| Some(hdr_a.clone()));
    let new = rename_to
        .map(Some)
        .or(plus)
        .unwrap_or_else(|| Some(hdr_b.clone()));
    h.old = if new_file { None } else { old };
    h.new = if deleted { None } else { new };
    if new_file && deleted {
        return None;
    }
    Some(h)
}

/// A `---`/`+++` name: `/dev/null` is `None`; otherwise unquoted, without
/// git's trailing tab, and without the `a/`-style prefix.
fn diff_name(raw: &str) -> Option<Option<String>> {
    let raw = raw.strip_suffix('\t').unwrap_or(raw);
    if raw == "/dev/null" {
        return Some(None);
    }
    let name = unquote(raw)?;
    Some(Some(strip_prefix_component(&name)?.to_string()))
}

fn strip_prefix_component(name: &str) -> Option<&str> {
    name.split_once('/')
        .map(|(_, rest)| rest)
        .filter(|r| !r.is_empty())
}

/// Splits the names of a `diff --git A B` line (prefixes removed).
fn split_git_names(rest: &str) -> Option<(String, String)> {
    if rest.starts_with('"') {
        let (a, tail) = take_quoted(rest)?;
        let b = tail.strip_prefix(' ')?;
        let b = unquote(b)?;
        return Some((
            strip_prefix_component(&a)?.to_string(),
            strip_prefix_component(&b)?.to_string(),
        ));
    }
    if let Some(i) = rest.find(" \"") {
        let a = &rest[..i];
        let b = unquote(&rest[i + 1..])?;
        return Some((
            strip_prefix_component(a)?.to_string(),
            strip_prefix_component(&b)?.to_string(),
        ));
    }
    // Unquoted: the same name twice (renames give their names in
    // `rename from/to` lines, which win over this).
    for (i, _) in rest.match_indices(' ') {
        let (a, b) = (&rest[..i], &rest[i + 1..]);
        if let (Some(x), Some(y)) = (strip_prefix_component(a), strip_prefix_component(b))
            && x == y
        {
            return Some((x.to_string(), y.to_string()));
        }
    }
    // Different names without a rename header: take the first split.
    let (a, b) = rest.split_once(' ')?;
    Some((
        strip_prefix_component(a)?.to_string(),
        strip_prefix_component(b)?.to_string(),
    ))
}

/// Reads one C-quoted string at the start of `s`; returns it and the rest.
fn take_quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut bytes = Vec::new();
    let mut it = body.char_indices();
    while let Some((i, c)) = it.next() {
        match c {
            '"' => {
                let s = String::from_utf8(bytes).ok()?;
                return Some((s, &body[i + 1..]));
            }
            '\\' => {
                let (_, e) = it.next()?;
                let b = match e {
                    'a' => 7,
                    'b' => 8,
                    't' => b'\t',
                    'n' => b'\n',
                    'v' => 11,
                    'f' => 12,
                    'r' => b'\r',
                    '"' => b'"',
                    '\\' => b'\\',
                    '0'..='3' => {
                        let (_, d2) = it.next()?;
                        let (_, d3) = it.next()?;
                        let oct: String = [e, d2, d3].iter().collect();
                        u8::from_str_radix(&oct, 8).ok()?
                    }
                    _ => return None,
                };
                bytes.push(b);
            }
            c => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    None
}

/// A whole name, C-quoted or not (a quoted one must have nothing after it).
fn unquote(s: &str) -> Option<String> {
    if s.starts_with('"') {
        let (name, rest) = take_quoted(s)?;
        rest.is_empty().then_some(name)
    } else {
        Some(s.to_string())
    }
}

/// The default globs for one category, for callers that show the policy.
pub fn category_globs(policy: &PatchPolicy, category: &str) -> Vec<String> {
    policy
        .categories
        .iter()
        .find(|c| c.name == category)
        .map(|c| c.globs.patterns().to_vec())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn policy() -> PatchPolicy {
        PatchPolicy::load(None).unwrap()
    }

    fn denied(p: &PatchPolicy, path: &str, k: ChangeKind) -> Option<String> {
        p.check(path, k).err().map(|d| d.category)
    }

    #[test]
    fn builtin_policy_parses_and_rejects_bad_files() {
        let p = policy();
        assert!(p.origin().starts_with("built-in"));
        assert!(!category_globs(&p, "tests").is_empty());
        assert!(PatchPolicy::from_toml("allow = 1", "x").is_err());
        let empty = "[allow]\nsource=[]\n[shadow]\nreason='r'\nstdlib=[]\n";
        assert!(PatchPolicy::from_toml(empty, "x").is_err());
        let bad_glob = "[allow]\nsource=['py']\n[[deny]]\ncategory='c'\nreason='r'\nliftable=true\nglobs=['a[']\n[shadow]\nreason='r'\nstdlib=[]\n";
        assert!(matches!(
            PatchPolicy::from_toml(bad_glob, "x"),
            Err(PolicyError::Glob { .. })
        ));
    }

    #[test]
    fn gitignore_like_globs() {
        let g = PathGlobs::new(
            &["conftest.py", "tests/**", ".git/", "/vendor/", "*.pth"],
            false,
        )
        .unwrap();
        for yes in [
            "conftest.py",
            "a/b/conftest.py",
            "tests/x.py",
            "tests/a/b.py",
            ".git/config",
            "sub/.git/hooks/pre-commit",
            ".git",
            "vendor/x.go",
            "site.pth",
            "lib/x.pth",
        ] {
            assert!(g.is_match(yes), "{yes}");
        }
        for no in [
            "src/conftest.py.bak",
            "src/tests/x.py",
            "a/vendor/x.go",
            "gitx/config",
            "my.git/x",
        ] {
            assert!(!g.is_match(no), "{no}");
        }
        // `*` does not cross directories.
        let g = PathGlobs::new(&["src/*.py"], false).unwrap();
        assert!(g.is_match("src/a.py") && !g.is_match("src/x/a.py"));
        assert!(!PathGlobs::new::<&str>(&[], false).unwrap().is_match("a"));
    }

    /// Each category of the brief refuses its files (ATTACK); source files
    /// in the same places are allowed (HONEST CONTROL).
    #[test]
    fn categories_refuse_and_source_is_allowed() {
        use ChangeKind::*;
        let p = policy();
        let cases: &[(&str, ChangeKind, &str)] = &[
            ("tests/test_calc.py", Modify, "tests"),
            ("pkg/test_x.py", Add, "tests"),
            ("calc_test.go", Modify, "tests"),
            ("src/x.test.js", Modify, "tests"),
            ("web/__tests__/a.js", Add, "tests"),
            ("tests/it.rs", Modify, "tests"),
            ("benches/b.rs", Modify, "tests"),
            ("conftest.py", Add, "runner_config"),
            ("src/deep/conftest.py", Add, "runner_config"),
            ("pytest.ini", Add, "runner_config"),
            (".pytest.ini", Add, "runner_config"),
            ("pytest.toml", Add, "runner_config"),
            ("tox.ini", Modify, "runner_config"),
            ("setup.cfg", Modify, "runner_config"),
            ("pyproject.toml", Modify, "runner_config"),
            ("setup.py", Modify, "runner_config"),
            ("noxfile.py", Add, "runner_config"),
            ("package.json", Modify, "runner_config"),
            (".npmrc", Add, "runner_config"),
            (".yarnrc.yml", Add, "runner_config"),
            ("jest.config.js", Add, "runner_config"),
            (".mocharc.json", Add, "runner_config"),
            ("vitest.config.ts", Add, "runner_config"),
            ("babel.config.js", Add, "runner_config"),
            ("Makefile", Modify, "runner_config"),
            ("GNUmakefile", Add, "runner_config"),
            ("makefile", Add, "runner_config"),
            ("rules.mk", Add, "runner_config"),
            ("Cargo.toml", Modify, "runner_config"),
            ("Cargo.lock", Modify, "runner_config"),
            ("build.rs", Add, "runner_config"),
            (".cargo/config.toml", Add, "runner_config"),
            ("go.mod", Modify, "runner_config"),
            ("go.sum", Modify, "runner_config"),
            ("rust-toolchain.toml", Add, "runner_config"),
            (".github/workflows/ci.yml", Modify, "ci"),
            (".gitlab-ci.yml", Modify, "ci"),
            (".git/config", Modify, "vcs"),
            (".git/info/exclude", Add, "vcs"),
            (".gitignore", Modify, "vcs"),
            (".gitattributes", Add, "vcs"),
            (".gitmodules", Add, "vcs"),
            (".env", Add, "secrets"),
            (".env.production", Add, "secrets"),
            ("certs/server.pem", Add, "secrets"),
            ("deploy.key", Add, "secrets"),
            ("id_rsa", Add, "secrets"),
            ("id_ed25519.pub", Add, "secrets"),
            ("pytest.py", Add, "runner_shadow"),
            ("_pytest/python.py", Add, "runner_shadow"),
            ("unittest.py", Add, "runner_shadow"),
            ("sitecustomize.py", Add, "runner_shadow"),
            ("usercustomize.py", Add, "runner_shadow"),
            ("lib/evil.pth", Add, "runner_shadow"),
            ("mypkg.egg-info/entry_points.txt", Add, "runner_shadow"),
            ("x-1.0.dist-info/METADATA", Add, "runner_shadow"),
            ("node_modules/assert/index.js", Add, "runner_shadow"),
            ("src/__pycache__/calc.cpython-311.pyc", Add, "runner_shadow"),
            (".pytest_cache/v/cache/lastfailed", Add, "runner_config"),
            ("json.py", Add, "shadow_module"),
            ("random/__init__.py", Add, "shadow_module"),
            ("src/calc.py", Symlink, "symlink"),
            ("run.sh", MakeExecutable, "executable"),
            ("payload.bin", Add, "unrecognised"),
            ("module.so", Add, "unrecognised"),
            ("x.pyc", Add, "unrecognised"),
            ("../outside.py", Add, "invalid_path"),
            ("/etc/passwd", Modify, "invalid_path"),
            ("", Modify, "invalid_path"),
        ];
        for (path, kind, want) in cases {
            assert_eq!(
                denied(&p, path, *kind).as_deref(),
                Some(*want),
                "{path} {kind:?}"
            );
        }
        for (path, kind) in [
            ("src/calc.py", Modify),
            ("calc.py", Add),
            ("pkg/json.py", Add), // not top level: no shadowing
            ("json.py", Modify),  // existed at baseline
            ("mypkg/__init__.py", Add),
            ("src/lib.rs", Modify),
            ("src/parser/mod.rs", Add),
            ("config/env.go", Modify),
            ("src/util/qs.js", Modify),
            ("src/a.ts", Add),
            ("k8s/service.yaml", Modify),
            ("nginx/conf.d/app.conf", Modify),
            ("requirements.txt", Modify),
            ("requirements.in", Modify),
            ("deploy/worker.env", Modify),
            ("src/contest.py", Modify),
            ("src/testament.py", Modify), // not a test by convention
            ("Dockerfile", Modify),
            ("old.py", Delete),
        ] {
            assert_eq!(denied(&p, path, kind), None, "{path} {kind:?}");
        }
        assert_eq!(p.check("./src//calc.py", Modify), Ok(()));
    }

    #[test]
    fn protected_adds_and_allow_path_lifts_only_liftable() {
        use ChangeKind::*;
        let p = policy()
            .with_protected(&["data/golden.json".into(), "src/frozen.py".into()])
            .unwrap()
            .with_allowed(&[
                "package.json".into(),
                ".gitignore".into(),
                ".env".into(),
                "src/frozen.py".into(),
                "*.bin".into(),
                "queue.py".into(),
            ])
            .unwrap();
        // Lifted: runner config, unrecognised, shadowing a stdlib name.
        assert_eq!(p.check("package.json", Modify), Ok(()));
        assert_eq!(p.check("blob.bin", Add), Ok(()));
        assert_eq!(p.check("queue.py", Add), Ok(()));
        // Never lifted: VCS, secrets, the task's own `protected`.
        assert_eq!(denied(&p, ".gitignore", Modify).as_deref(), Some("vcs"));
        assert_eq!(denied(&p, ".env", Add).as_deref(), Some("secrets"));
        assert_eq!(
            denied(&p, "src/frozen.py", Modify).as_deref(),
            Some("protected")
        );
        assert_eq!(
            denied(&p, "data/golden.json", Modify).as_deref(),
            Some("protected")
        );
        // Not named by --allow-path: still refused.
        assert_eq!(
            denied(&p, "Makefile", Modify).as_deref(),
            Some("runner_config")
        );
        // Installed distributions are shadowed too.
        let p = policy().with_installed(&["requests".into()]);
        assert_eq!(
            denied(&p, "requests.py", Add).as_deref(),
            Some("shadow_module")
        );
        assert_eq!(p.check("requests_helper.py", Add), Ok(()));
    }

    #[test]
    fn denial_message_names_path_and_reason() {
        let d = policy()
            .check("tests/test_x.py", ChangeKind::Modify)
            .unwrap_err();
        let msg = d.to_string();
        assert!(
            msg.contains("`tests/test_x.py`") && msg.contains("test file"),
            "{msg}"
        );
        assert!(msg.contains("--allow-path"));
        let d = policy().check(".git/HEAD", ChangeKind::Modify).unwrap_err();
        assert!(!d.to_string().contains("--allow-path"));
    }

    #[test]
    fn unquoting_and_header_names() {
        assert_eq!(
            take_quoted(r#""a/\303\251 x\t\"q\".py" rest"#),
            Some(("a/é x\t\"q\".py".to_string(), " rest"))
        );
        assert_eq!(take_quoted(r#""a/\xff""#), None);
        assert_eq!(take_quoted(r#""a/\377""#), None, "not UTF-8: fail closed");
        assert_eq!(take_quoted(r#""unterminated"#), None);
        assert_eq!(
            split_git_names("a/x y.py b/x y.py"),
            Some(("x y.py".into(), "x y.py".into()))
        );
        assert_eq!(
            split_git_names(r#"a/x.py "b/\303\251.py""#),
            Some(("x.py".into(), "é.py".into()))
        );
        assert_eq!(normalize("a/../../b"), None);
        assert_eq!(normalize("./a/./b"), Some("a/b".into()));
    }

    #[test]
    fn unparseable_sections_and_preamble_are_dropped() {
        let p = policy();
        let f = p.filter_patch("garbage\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n");
        assert!(f.kept.is_empty());
        assert_eq!(f.dropped[0].category, "unparsed");
        let f = p.filter_patch("diff --git a/x.py b/x.py\nweird header\n");
        assert_eq!(f.dropped[0].category, "unparsed");
        assert!(f.kept.is_empty());
        assert_eq!(p.filter_patch(""), Filtered::default());
    }

    /// HONEST CONTROL over the shipped tier tasks: every reference fix is
    /// kept whole, except the one whose real fix is a `package.json` edit,
    /// which `--allow-path package.json` lets through.
    #[test]
    fn shipped_reference_fixes_are_kept() {
        let tasks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tasks");
        let mut seen = 0;
        for tier in ["easy", "medium", "hard"] {
            for e in std::fs::read_dir(tasks.join(tier)).unwrap() {
                let dir = e.unwrap().path();
                let patch = std::fs::read_to_string(dir.join("solution.patch")).unwrap();
                let toml: toml::Value =
                    toml::from_str(&std::fs::read_to_string(dir.join("task.toml")).unwrap())
                        .unwrap();
                let protected: Vec<String> = toml
                    .get("protected")
                    .and_then(|p| p.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let p = policy().with_protected(&protected).unwrap();
                let f = p.filter_patch(&patch);
                let id = dir.file_name().unwrap().to_string_lossy().to_string();
                if id == "js-lodash-advisory" {
                    assert_eq!(f.dropped.len(), 1, "{id}: {:?}", f.dropped);
                    assert_eq!(f.dropped[0].category, "runner_config");
                    let f = p
                        .with_allowed(&["package.json".into()])
                        .unwrap()
                        .filter_patch(&patch);
                    assert!(f.dropped.is_empty(), "{id}: {:?}", f.dropped);
                } else {
                    assert!(f.dropped.is_empty(), "{id}: {:?}", f.dropped);
                    assert_eq!(f.kept, patch, "{id}");
                }
                seen += 1;
            }
        }
        assert_eq!(seen, 30);
    }

    // --- real git ---------------------------------------------------------

    /// Plain git on purpose, not [`crate::git::Git`]: these fixtures need
    /// git's own defaults (quoted paths, rename detection) to test the
    /// parser against what a patch from anywhere looks like.
    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn write(dir: &Path, rel: &str, bytes: &[u8]) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    /// Builds a base repo from tests/fixtures/gate_policy/base, commits it,
    /// then makes every kind of change git can express.
    fn changed_repo() -> (tempfile::TempDir, tempfile::TempDir) {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gate_policy/base");
        let work = tempfile::tempdir().unwrap();
        let pristine = tempfile::tempdir().unwrap();
        for d in [work.path(), pristine.path()] {
            let src = format!("{}/.", fixture.display());
            let ok = Command::new("cp")
                .args(["-a", &src])
                .arg(d)
                .status()
                .unwrap();
            assert!(ok.success());
            git(d, &["init", "-q"]);
            write(d, "data.bin", &[0, 1, 2, 3, 255, 0]);
            write(d, "dir with space/é mod.py", b"x = 1\n");
            git(d, &["add", "-A"]);
            git(d, &["commit", "-qm", "base"]);
        }
        let w = work.path();
        // Allowed: source edit, new source file, rename of source, deleted
        // source, binary edit of an allowed... (binary data is refused).
        write(w, "src/calc.py", b"def add(a, b):\n    return a + b\n");
        write(w, "src/new_mod.py", b"VALUE = 2\n");
        git(w, &["mv", "src/old_name.py", "src/new name.py"]);
        git(w, &["rm", "-q", "src/dead.py"]);
        write(w, "dir with space/é mod.py", b"x = 2\n");
        // Refused: test edit, conftest, shadow pytest, binary blob, mode
        // change, symlink, runner config, .gitignore, rename INTO tests.
        write(
            w,
            "tests/test_calc.py",
            b"def test_add():\n    assert True\n",
        );
        write(w, "conftest.py", b"import pytest\n");
        write(w, "pytest.py", b"import sys; sys.exit(0)\n");
        write(w, "data.bin", &[9, 9, 9, 0, 1]);
        let mut perm = std::fs::metadata(w.join("src/util.py"))
            .unwrap()
            .permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(w.join("src/util.py"), perm).unwrap();
        std::os::unix::fs::symlink("../src/calc.py", w.join("src/link.py")).unwrap();
        write(w, "pytest.ini", b"[pytest]\naddopts = --co\n");
        write(w, ".gitignore", b"build/\n");
        git(w, &["mv", "src/helper.py", "tests/helper.py"]);
        git(w, &["add", "-A"]);
        (work, pristine)
    }

    fn kept_and_dropped(diff_args: &[&str]) {
        let (work, pristine) = changed_repo();
        let mut args = vec!["diff", "--cached", "--binary"];
        args.extend_from_slice(diff_args);
        let patch = git(work.path(), &args);
        let f = policy().filter_patch(&patch);
        let mut dropped: Vec<(String, String)> = f
            .dropped
            .iter()
            .map(|d| (d.path.clone(), d.category.clone()))
            .collect();
        dropped.sort();
        let want: &[(&str, &str)] = &[
            (".gitignore", "vcs"),
            ("conftest.py", "runner_config"),
            ("data.bin", "unrecognised"),
            ("pytest.ini", "runner_config"),
            ("pytest.py", "runner_shadow"),
            ("src/link.py", "symlink"),
            ("src/util.py", "executable"),
            ("tests/test_calc.py", "tests"),
        ];
        for (p, c) in want {
            assert!(
                dropped.contains(&(p.to_string(), c.to_string())),
                "{p} {c} not in {dropped:?} ({diff_args:?})"
            );
        }
        // The rename into tests/ is dropped whichever way git shows it.
        assert!(
            dropped
                .iter()
                .any(|(p, c)| p == "tests/helper.py" && c == "tests"),
            "{dropped:?}"
        );
        // The kept part applies cleanly to the pristine copy...
        let pf = pristine.path().join("kept.patch");
        std::fs::write(&pf, &f.kept).unwrap();
        git(pristine.path(), &["apply", "--check", pf.to_str().unwrap()]);
        git(pristine.path(), &["apply", pf.to_str().unwrap()]);
        std::fs::remove_file(&pf).unwrap();
        let p = pristine.path();
        // ...and carries the allowed changes, and none of the refused.
        let read = |r: &str| std::fs::read_to_string(p.join(r)).ok();
        assert_eq!(
            read("src/calc.py").unwrap(),
            "def add(a, b):\n    return a + b\n"
        );
        assert_eq!(read("src/new_mod.py").unwrap(), "VALUE = 2\n");
        assert!(read("src/new name.py").is_some() && read("src/old_name.py").is_none());
        assert!(read("src/dead.py").is_none());
        assert_eq!(read("dir with space/é mod.py").unwrap(), "x = 2\n");
        assert!(read("conftest.py").is_none() && read("pytest.py").is_none());
        assert!(read("pytest.ini").is_none() && read(".gitignore").is_none());
        assert!(
            read("tests/test_calc.py")
                .unwrap()
                .contains("assert add(1, 2) == 3")
        );
        // A rename into tests/ is one refused section; without rename
        // detection it is an allowed deletion plus a refused addition.
        assert!(read("tests/helper.py").is_none());
        assert_eq!(read("src/helper.py").is_some(), diff_args.contains(&"-M"));
        assert_eq!(
            std::fs::read(p.join("data.bin")).unwrap(),
            [0, 1, 2, 3, 255, 0]
        );
        assert!(!p.join("src/link.py").exists());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(p.join("src/util.py"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o111, 0);
        assert!(f.kept_paths.contains(&"src/calc.py".to_string()));
        assert!(
            f.kept_paths
                .contains(&"dir with space/é mod.py".to_string())
        );
    }

    #[test]
    fn real_git_diff_filtered_and_applied_without_renames() {
        kept_and_dropped(&["--no-renames"]);
    }

    #[test]
    fn real_git_diff_filtered_and_applied_with_renames_and_copies() {
        kept_and_dropped(&["-M", "-C", "--find-copies-harder"]);
    }

    #[test]
    fn real_git_diff_with_unquoted_unicode_paths() {
        let (work, _) = changed_repo();
        let patch = git(
            work.path(),
            &["-c", "core.quotePath=false", "diff", "--cached", "--binary"],
        );
        let f = policy().filter_patch(&patch);
        assert!(
            f.kept_paths
                .contains(&"dir with space/é mod.py".to_string()),
            "{:?}",
            f.kept_paths
        );
    }
}
