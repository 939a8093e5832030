//! The local sources an image build reads: a git mirror, a wheelhouse and a
//! folder of relocatable interpreters. Everything here runs on the host,
//! so it only ever *reads* the mirror through the one git runner
//! ([`crate::git::Git`]: no hooks, no repo config that runs programs, only
//! the named transport) and never executes anything a repository holds.

use std::path::{Path, PathBuf};

use crate::error::Retryable;
use crate::git::{Git, GitError};

/// Failures reading the mirrors.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// No mirror repository for `owner/name`.
    #[error(
        "no mirror of {repo} under {mirror}: looked for {tried}. Mirror it there \
         (`git clone --mirror <source> {mirror}/{repo}.git`) or point --git-mirror elsewhere"
    )]
    NoRepo {
        /// `owner/name`.
        repo: String,
        /// The mirror root.
        mirror: String,
        /// Paths tried.
        tried: String,
    },
    /// A commit the dataset names is not in the mirror.
    #[error(
        "{repo}: commit {commit} is not in the mirror {location} ({source}); update the \
         mirror (`git remote update` on the mirror side) and build again"
    )]
    NoCommit {
        /// `owner/name`.
        repo: String,
        /// The commit.
        commit: String,
        /// Where it was looked for.
        location: String,
        /// What git said.
        source: Box<GitError>,
    },
    /// None of the dependency files the spec table names exist at the commit.
    #[error(
        "{repo} at {commit}: none of {paths} exists; add the right path to the spec \
         table's [reqs_paths] / [env_yml_paths] with --specs FILE"
    )]
    NoDependencyFile {
        /// `owner/name`.
        repo: String,
        /// The commit read.
        commit: String,
        /// Paths tried, joined.
        paths: String,
    },
    /// Another git failure.
    #[error(transparent)]
    Git(Box<GitError>),
    /// Host file-system failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Cause.
        source: std::io::Error,
    },
}

impl From<GitError> for MirrorError {
    fn from(e: GitError) -> Self {
        Self::Git(Box::new(e))
    }
}

impl Retryable for MirrorError {
    fn is_retryable(&self) -> bool {
        false
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> MirrorError {
    let context = context.into();
    move |source| MirrorError::Io { context, source }
}

/// Where `owner/name` repositories come from.
#[derive(Debug, Clone, PartialEq)]
pub enum GitMirror {
    /// A folder of bare (or plain) repositories: `DIR/owner/name.git`,
    /// `DIR/owner/name`, `DIR/owner__name.git` or `DIR/owner__name`.
    Dir(PathBuf),
    /// A git server: `URL/owner/name.git`, or the URL with `{repo}`
    /// replaced by `owner/name`.
    Url(String),
}

impl GitMirror {
    /// Parses `--git-mirror`: a URL when it has a scheme, else a folder.
    pub fn parse(s: &str) -> Self {
        if ["http://", "https://", "git://", "ssh://", "file://"]
            .iter()
            .any(|p| s.starts_with(p))
        {
            Self::Url(s.trim_end_matches('/').to_string())
        } else {
            Self::Dir(PathBuf::from(s))
        }
    }

    /// The location git fetches `repo` from, and the one transport that
    /// fetch may use.
    pub fn locate(&self, repo: &str) -> Result<(String, &'static str), MirrorError> {
        match self {
            Self::Dir(dir) => {
                let flat = repo.replace('/', "__");
                let tried = [
                    dir.join(format!("{repo}.git")),
                    dir.join(repo),
                    dir.join(format!("{flat}.git")),
                    dir.join(&flat),
                ];
                tried
                    .iter()
                    .find(|p| p.join("HEAD").is_file() || p.join(".git").exists())
                    // git runs in its own scratch folder: the path must be absolute.
                    .map(|p| {
                        let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
                        (abs.display().to_string(), "file")
                    })
                    .ok_or_else(|| MirrorError::NoRepo {
                        repo: repo.into(),
                        mirror: dir.display().to_string(),
                        tried: tried
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            }
            Self::Url(url) => {
                let loc = if url.contains("{repo}") {
                    url.replace("{repo}", repo)
                } else {
                    format!("{url}/{repo}.git")
                };
                let scheme = loc.split("://").next().unwrap_or("https");
                let scheme = match scheme {
                    "http" => "http",
                    "git" => "git",
                    "ssh" => "ssh",
                    "file" => "file",
                    _ => "https",
                };
                Ok((loc, scheme))
            }
        }
    }
}

/// A harness-owned scratch repository holding one commit of a mirror and
/// its history, nothing after it.
pub struct Snapshot {
    git: Git,
    repo: String,
    commit: String,
    _dir: tempfile::TempDir,
}

impl Snapshot {
    /// Fetches `commit` (and only its ancestors) of `repo` from `mirror`,
    /// plus the mirror's tags that point into that history.
    pub fn fetch(
        mirror: &GitMirror,
        repo: &str,
        commit: &str,
        scratch: &Path,
    ) -> Result<Self, MirrorError> {
        let (location, scheme) = mirror.locate(repo)?;
        std::fs::create_dir_all(scratch).map_err(io("creating the build scratch folder"))?;
        let dir = tempfile::Builder::new()
            .prefix("mirror.")
            .tempdir_in(scratch)
            .map_err(io("creating a scratch repository"))?;
        let git = Git::new(dir.path().join("repo.git"), None).with_protocols(&[scheme]);
        git.init()?;
        git.run(&[
            "fetch",
            "-q",
            "--no-tags",
            "--no-recurse-submodules",
            &location,
            &format!("+{commit}:refs/heads/main"),
        ])
        .map_err(|source| MirrorError::NoCommit {
            repo: repo.into(),
            commit: commit.into(),
            location: location.clone(),
            source: Box::new(source),
        })?;
        git.run(&["symbolic-ref", "HEAD", "refs/heads/main"])?;
        // Tags whose commit is already here are in the fetched history, so
        // they cannot reveal anything after `commit`; fetch just those refs.
        let listed = git.run(&["ls-remote", "--tags", &location])?;
        let mut wanted = Vec::new();
        for line in listed.lines() {
            let Some((sha, name)) = line.split_once('\t') else {
                continue;
            };
            let Some(tag) = name.strip_suffix("^{}") else {
                continue;
            };
            let peeled_here = git.run(&["cat-file", "-e", &format!("{sha}^{{commit}}")]);
            if peeled_here.is_ok()
                && git
                    .run(&["merge-base", "--is-ancestor", sha, "refs/heads/main"])
                    .is_ok()
            {
                wanted.push(format!("+{tag}:{tag}"));
            }
        }
        // Lightweight tags have no peeled line: keep those on the history too.
        for line in listed.lines() {
            let Some((sha, name)) = line.split_once('\t') else {
                continue;
            };
            if name.ends_with("^{}") || listed.contains(&format!("{name}^{{}}")) {
                continue;
            }
            if git
                .run(&["cat-file", "-e", &format!("{sha}^{{commit}}")])
                .is_ok()
                && git
                    .run(&["merge-base", "--is-ancestor", sha, "refs/heads/main"])
                    .is_ok()
            {
                wanted.push(format!("+{name}:{name}"));
            }
        }
        for chunk in wanted.chunks(200) {
            let mut args = vec!["fetch", "-q", "--no-tags", location.as_str()];
            args.extend(chunk.iter().map(String::as_str));
            git.run(&args)?;
        }
        Ok(Self {
            git,
            repo: repo.into(),
            commit: commit.into(),
            _dir: dir,
        })
    }

    /// The file at `path` in the snapshot's commit, if it exists.
    pub fn read(&self, path: &str) -> Result<Option<String>, MirrorError> {
        let spec = format!("{}:{}", self.commit, path.trim_start_matches("./"));
        if self.git.run(&["cat-file", "-e", &spec]).is_err() {
            return Ok(None);
        }
        Ok(Some(self.git.run(&["cat-file", "blob", &spec])?))
    }

    /// Writes a git bundle holding `main` (the commit) and the kept tags:
    /// the instance image clones it, so history after the commit never
    /// enters the image.
    pub fn bundle(&self, out: &Path) -> Result<(), MirrorError> {
        let path = out.display().to_string();
        self.git.run(&["bundle", "create", "-q", &path, "--all"])?;
        Ok(())
    }

    /// Writes the commit's files (no `.git`) into `dest`, for a fetch that
    /// reads the project's own metadata. The archive is unpacked with the
    /// `tar` crate, which refuses entries that would land outside `dest`.
    pub fn export(&self, dest: &Path) -> Result<(), MirrorError> {
        std::fs::create_dir_all(dest).map_err(io(format!("creating {}", dest.display())))?;
        let archive = dest.with_extension("tar");
        let path = archive.display().to_string();
        self.git
            .run(&["archive", "--format=tar", "-o", &path, &self.commit])?;
        let file = std::fs::File::open(&archive).map_err(io(format!("opening {path}")))?;
        tar::Archive::new(file)
            .unpack(dest)
            .map_err(io(format!("unpacking {path}")))?;
        let _ = std::fs::remove_file(&archive);
        Ok(())
    }

    /// `[build-system] requires` of the commit's `pyproject.toml`: what an
    /// offline `pip install .` needs besides the project's dependencies.
    pub fn build_requires(&self) -> Result<Vec<String>, MirrorError> {
        let Some(text) = self.read("pyproject.toml")? else {
            return Ok(Vec::new());
        };
        let Ok(doc) = text.parse::<toml::Table>() else {
            return Ok(Vec::new());
        };
        Ok(doc
            .get("build-system")
            .and_then(|b| b.get("requires"))
            .and_then(|r| r.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The requirements text the official harness builds for a
    /// `packages = "requirements.txt"` row: the first of `paths` that
    /// exists, its `-r` includes inlined first, `-e .`, comments and
    /// `.[test` lines dropped, yanked packages replaced.
    pub fn requirements(&self, paths: &[String]) -> Result<String, MirrorError> {
        let exclude = |l: &str| {
            let t = l.trim();
            t.starts_with("-e .") || t.starts_with('#') || t.starts_with(".[test")
        };
        for path in paths {
            let Some(text) = self.read(path)? else {
                continue;
            };
            let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let mut extra = Vec::new();
            let mut own = Vec::new();
            for line in text.split('\n') {
                if let Some(inc) = line.trim().strip_prefix("-r") {
                    let inc = inc.trim();
                    let inc_path = if dir.is_empty() {
                        inc.to_string()
                    } else {
                        format!("{dir}/{inc}")
                    };
                    if let Some(inner) = self.read(&inc_path)? {
                        extra.extend(
                            inner
                                .split('\n')
                                .filter(|l| !exclude(l))
                                .map(str::to_string),
                        );
                    }
                } else if !exclude(line) {
                    own.push(line.to_string());
                }
            }
            extra.push(own.join("\n"));
            return Ok(replace_yanked(&extra.join("\n")));
        }
        Err(MirrorError::NoDependencyFile {
            repo: self.repo.clone(),
            commit: self.commit.clone(),
            paths: paths.join(", "),
        })
    }
}

/// Packages yanked from PyPI and what the official harness installs
/// instead (`REPLACE_REQ_PACKAGES`).
const REPLACE_REQ_PACKAGES: &[(&str, &str)] = &[("types-pkg_resources", "types-setuptools")];

fn replace_yanked(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            for (old, new) in REPLACE_REQ_PACKAGES {
                if let Some(rest) = line.strip_prefix(old)
                    && (rest.is_empty() || rest.starts_with(['<', '>', '=', '!', '~']))
                {
                    return (*new).to_string();
                }
            }
            line.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A relocatable interpreter for one Python version.
#[derive(Debug, Clone, PartialEq)]
pub enum Interpreter {
    /// A python-build-standalone `install_only` archive (top folder `python/`).
    Archive(PathBuf),
    /// An unpacked one: the folder holding `bin/python3`.
    Folder(PathBuf),
}

impl Interpreter {
    /// What the build used, for labels and the build record.
    pub fn describe(&self) -> String {
        match self {
            Self::Archive(p) | Self::Folder(p) => p.display().to_string(),
        }
    }
}

/// Finds an interpreter for `version` (`3.9`) in `dir`, laid out as
/// python-build-standalone mirrors are: `cpython-3.9.18+20240107-x86_64-
/// unknown-linux-gnu-install_only.tar.gz`, the same unpacked (a folder
/// holding `python/bin/python3` or `bin/python3`), or a folder named `3.9`.
/// The newest patch release wins.
pub fn find_interpreter(dir: &Path, version: &str) -> Option<Interpreter> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut found: Vec<(Vec<u32>, Interpreter)> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let full = if name == version {
            Some(version.to_string())
        } else {
            name.strip_prefix("cpython-").and_then(|rest| {
                let ver: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                let ver = ver.trim_end_matches('.').to_string();
                (ver == version || ver.starts_with(&format!("{version}."))).then_some(ver)
            })
        };
        let Some(full) = full else { continue };
        if !name.contains("x86_64") && name.starts_with("cpython-") {
            continue;
        }
        let key: Vec<u32> = full.split('.').filter_map(|p| p.parse().ok()).collect();
        if path.is_file() && (name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
            found.push((key, Interpreter::Archive(path)));
        } else if path.is_dir() {
            for root in [path.join("python"), path.clone()] {
                if root.join("bin/python3").exists() {
                    found.push((key, Interpreter::Folder(root)));
                    break;
                }
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.pop().map(|(_, i)| i)
}

/// The wheel files (and sdists) at the top of a wheelhouse, sorted.
pub fn wheelhouse_files(dir: &Path) -> Result<Vec<PathBuf>, MirrorError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(format!("reading the wheelhouse {}", dir.display())))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.ends_with(".whl") || n.ends_with(".tar.gz") || n.ends_with(".zip")
                })
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(dir: &Path, script: &str) {
        let ok = Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap()
            .success();
        assert!(ok, "{script}");
    }

    /// A mirror with three commits and a tag on each; the snapshot of the
    /// second holds the first two commits and their tags, and its bundle
    /// clones to a repository that cannot see the third.
    #[test]
    fn snapshot_holds_history_up_to_the_commit_only() {
        let d = tempfile::tempdir().unwrap();
        sh(
            d.path(),
            "git init -q src && cd src && for i in 1 2 3; do echo $i > f; \
             echo req$i > requirements.txt; git add .; git commit -qm c$i; git tag -a v$i -m v$i; done; \
             git tag light HEAD~2; cd .. && mkdir -p m/o && git clone -q --mirror src m/o/r.git",
        );
        let second = String::from_utf8(
            Command::new("git")
                .args(["-C", "src", "rev-parse", "HEAD~1"])
                .current_dir(d.path())
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_string();
        let mirror = GitMirror::parse(&d.path().join("m").display().to_string());
        let snap = Snapshot::fetch(&mirror, "o/r", &second, &d.path().join("scratch")).unwrap();
        assert_eq!(snap.read("f").unwrap().as_deref(), Some("2\n"));
        assert_eq!(snap.read("nope").unwrap(), None);
        assert_eq!(
            snap.requirements(&["missing.txt".into(), "requirements.txt".into()])
                .unwrap(),
            "req2\n"
        );
        let bundle = d.path().join("b.bundle");
        snap.bundle(&bundle).unwrap();
        sh(
            d.path(),
            "git clone -q b.bundle cl && cd cl && test $(git log --all --oneline | wc -l) = 2 \
             && test \"$(git tag | sort | tr '\\n' ' ')\" = 'light v1 v2 ' && ! git log --all --format=%s | grep -qx c3",
        );
        // A commit the mirror lacks is named, with what to do.
        let err = Snapshot::fetch(
            &mirror,
            "o/r",
            "0123456789012345678901234567890123456789",
            &d.path().join("scratch"),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("not in the mirror"), "{err}");
        let err = Snapshot::fetch(&mirror, "o/other", &second, &d.path().join("scratch"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no mirror of o/other"), "{err}");
    }

    #[test]
    fn requirements_follow_the_official_cleaning() {
        assert_eq!(
            replace_yanked("a==1\ntypes-pkg_resources==0.1\ntypes-pkg_resources_x"),
            "a==1\ntypes-setuptools\ntypes-pkg_resources_x"
        );
    }

    #[test]
    fn interpreters_match_version_and_prefer_the_newest_patch() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "cpython-3.9.18+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz",
            "cpython-3.9.7+20211017-x86_64-unknown-linux-gnu-install_only.tar.gz",
            "cpython-3.10.1+20211017-x86_64-unknown-linux-gnu-install_only.tar.gz",
            "cpython-3.9.19+20240107-aarch64-unknown-linux-gnu-install_only.tar.gz",
        ] {
            std::fs::write(d.path().join(n), "x").unwrap();
        }
        std::fs::create_dir_all(d.path().join("3.8/bin")).unwrap();
        std::fs::write(d.path().join("3.8/bin/python3"), "").unwrap();
        let got = find_interpreter(d.path(), "3.9").unwrap().describe();
        assert!(
            got.ends_with("cpython-3.9.18+20240107-x86_64-unknown-linux-gnu-install_only.tar.gz"),
            "{got}"
        );
        assert!(matches!(
            find_interpreter(d.path(), "3.8"),
            Some(Interpreter::Folder(_))
        ));
        assert!(find_interpreter(d.path(), "3.1").is_none());
        assert!(find_interpreter(d.path(), "3.7").is_none());
    }

    #[test]
    fn mirror_urls_and_folders() {
        assert_eq!(
            GitMirror::parse("https://git.bank/mirrors/")
                .locate("o/r")
                .unwrap(),
            ("https://git.bank/mirrors/o/r.git".into(), "https")
        );
        assert_eq!(
            GitMirror::parse("http://g/{repo}/x").locate("o/r").unwrap(),
            ("http://g/o/r/x".into(), "http")
        );
        assert!(matches!(GitMirror::parse("/srv/git"), GitMirror::Dir(_)));
    }
}
