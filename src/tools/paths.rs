//! Path confinement that cannot be raced: every file the tools touch is
//! opened relative to a directory fd of the workspace root, and checked on
//! the fd that was opened, never again by name.
//!
//! A model-given path is first checked lexically ([`RelPath::parse`]:
//! relative, no `~`, no `..` above the root). It is then opened with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
//! RESOLVE_NO_XDEV)` from the root's fd (or, where the kernel lacks
//! `openat2`, one component at a time with `O_NOFOLLOW`), so a symlink
//! anywhere in the path, a magic link under `/proc`, or a mount point makes
//! the open fail instead of leading outside. The opened fd is then
//! `fstat`ed: the tools read a regular file with one link on the root's
//! device, or list a directory on it. Files are first opened `O_PATH` (which
//! never runs a device's or FIFO's open handler) and only reopened for
//! reading, through `/proc/self/fd`, once the fd is known to be a regular
//! file. Writes go to a new file created beside the target through the
//! parent directory's fd and `renameat`ed over the name, so a hard link to an
//! outside file is never written through.
//!
//! Symlinks are never followed, even ones that stay inside the repository:
//! the error names the link's target (relative to the repository) so the
//! model can retry with the real path.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

/// Set once the kernel said `openat2` does not exist (Linux < 5.6, or a
/// seccomp filter that hides it); later opens go straight to the fallback.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Counter making temporary file names unique within the process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Attempts at `openat2` when the kernel asks to retry (`EAGAIN`, `EINTR`).
const OPEN_RETRIES: usize = 8;

/// Why a path could not be used. `Display` is the text for the model; the
/// tools replace [`PathError::NotFound`] with a hint of their own.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// Refused on its face: absolute, `~`, `..` leaving the root, NUL.
    #[error("{0}")]
    Refused(String),
    /// The workspace root itself cannot be opened.
    #[error("the workspace root {path} is not accessible: {source}")]
    Root {
        /// The root as given.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Nothing at that path (or a file stands where a directory should be).
    #[error("`{rel}` does not exist")]
    NotFound {
        /// The path, relative to the root.
        rel: String,
    },
    /// A component of the path is a symbolic link.
    #[error("{}", symlink_message(rel, link, target.as_deref()))]
    Symlink {
        /// The path asked for.
        rel: String,
        /// The component that is a link, relative to the root.
        link: String,
        /// The real path the model may use instead, when the link stays inside.
        target: Option<String>,
    },
    /// The path crosses into another filesystem (a mount point, or a file on
    /// another device).
    #[error(
        "`{rel}` is on another filesystem than the repository (a mount point); the file tools \
         only work on the repository's own files"
    )]
    OtherFilesystem {
        /// The path asked for.
        rel: String,
    },
    /// A regular file with more than one hard link: one of them may be outside.
    #[error(
        "`{rel}` has {links} hard links; a file with several links may be shared with a file \
         outside the repository, so the file tools refuse it. Use run with `cp` to make a \
         private copy if you need its content."
    )]
    HardLinked {
        /// The path asked for.
        rel: String,
        /// Its link count.
        links: u64,
    },
    /// A directory where a file was expected.
    #[error("`{rel}` is a directory")]
    IsDir {
        /// The path asked for.
        rel: String,
    },
    /// A file where a directory was expected.
    #[error("`{rel}` is a file, not a directory")]
    NotDir {
        /// The path asked for.
        rel: String,
    },
    /// A FIFO, socket or device.
    #[error("`{rel}` is not a regular file (a device, socket or pipe); it cannot be read")]
    NotRegular {
        /// The path asked for.
        rel: String,
    },
    /// The path changed between two steps of one open (another process is
    /// swapping it); nothing was read or written.
    #[error("`{rel}` changed while it was being opened; try again")]
    Raced {
        /// The path asked for.
        rel: String,
    },
    /// Any other failure of the filesystem.
    #[error("cannot open `{rel}`: {source}")]
    Io {
        /// The path asked for.
        rel: String,
        /// Cause.
        source: std::io::Error,
    },
}

impl crate::error::Retryable for PathError {
    fn is_retryable(&self) -> bool {
        matches!(self, PathError::Raced { .. })
    }
}

fn symlink_message(rel: &str, link: &str, real: Option<&str>) -> String {
    let what = if rel == link {
        format!("`{rel}` is a symbolic link")
    } else {
        format!("path `{rel}` goes through `{link}`, a symbolic link")
    };
    match real {
        Some(real) => format!(
            "{what}; the file tools do not follow symbolic links. It points inside the \
             repository: use the real path `{real}` instead."
        ),
        None => format!(
            "{what} pointing outside the repository; only files inside the repository are \
             accessible, and the file tools do not follow symbolic links."
        ),
    }
}

/// A model-given path that passed the lexical checks: relative, no `~`,
/// no `..` above the root, `.` and `..` folded away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelPath {
    /// Components joined with `/`; empty for the root.
    path: PathBuf,
    /// The same for messages (lossy UTF-8); `.` for the root.
    shown: String,
}

impl RelPath {
    /// Checks `path` lexically. Errors (text for the model) on absolute
    /// paths, `~`, `..` that leaves the root and NUL bytes.
    pub fn parse(path: &str) -> Result<Self, PathError> {
        let trimmed = path.trim();
        if trimmed.contains('\0') {
            return Err(PathError::Refused(format!(
                "path {path:?} contains a NUL byte"
            )));
        }
        if trimmed == "~" || trimmed.starts_with("~/") {
            return Err(PathError::Refused(format!(
                "path `{path}` points into the home directory; only files inside the \
                 repository are accessible. Use a path relative to the repository root, e.g. \
                 `src/main.py`."
            )));
        }
        if trimmed.starts_with('/') {
            return Err(PathError::Refused(format!(
                "absolute path `{path}` is not allowed; use a path relative to the repository \
                 root (e.g. `src/main.py`, or `.` for the root)."
            )));
        }
        let mut comps: Vec<&str> = Vec::new();
        for c in trimmed.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    if comps.pop().is_none() {
                        return Err(PathError::Refused(format!(
                            "path `{path}` uses `..` to leave the repository; only files \
                             inside the repository are accessible."
                        )));
                    }
                }
                name => comps.push(name),
            }
        }
        let joined = comps.join("/");
        Ok(Self {
            path: PathBuf::from(&joined),
            shown: if joined.is_empty() {
                ".".into()
            } else {
                joined
            },
        })
    }

    /// A path found by walking the tree (relative to the root, no `..`).
    pub fn from_walk(rel: &Path) -> Self {
        let path: PathBuf = rel
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        let shown = path.to_string_lossy().into_owned();
        Self {
            shown: if shown.is_empty() { ".".into() } else { shown },
            path,
        }
    }

    /// The path for messages, `/`-separated; `.` for the root.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// True for the root itself.
    pub fn is_root(&self) -> bool {
        self.path.as_os_str().is_empty()
    }

    /// The path as passed to the kernel (`.` for the root).
    fn kernel(&self) -> &Path {
        if self.is_root() {
            Path::new(".")
        } else {
            &self.path
        }
    }

    /// Parent directory and final name; `None` for the root.
    fn split(&self) -> Option<(RelPath, &OsStr)> {
        let name = self.path.file_name()?;
        let parent = self.path.parent().unwrap_or(Path::new(""));
        Some((RelPath::from_walk(parent), name))
    }
}

/// The workspace root, held open: every path is opened relative to this fd.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    dev: u64,
    path: PathBuf,
    /// `/proc/self/fd`, for reopening `O_PATH` fds; `None` without procfs.
    proc_fd: Option<OwnedFd>,
    /// Use the component-by-component fallback (no `openat2`); tests set it.
    walk_only: bool,
}

/// An object opened `O_PATH` (no data access) and its `fstat`.
#[derive(Debug)]
pub struct Node {
    /// The `O_PATH` fd.
    pub fd: OwnedFd,
    /// Its status.
    pub stat: Stat,
}

impl Node {
    /// Kind of object.
    pub fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.stat.st_mode)
    }
}

/// A regular file opened for reading, already checked.
#[derive(Debug)]
pub struct OpenFile {
    /// The file, readable.
    pub file: File,
    /// Its status at open time.
    pub stat: Stat,
}

/// A directory entry as `ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A symbolic link: `Some(real path)` when it stays inside the repository.
    Symlink(Option<String>),
    /// Anything else.
    Other,
}

impl Root {
    /// Opens the workspace root (the harness's own path, so symlinks in it
    /// are followed once, here).
    pub fn open(root: &Path) -> Result<Self, PathError> {
        let err = |source: std::io::Error| PathError::Root {
            path: root.to_path_buf(),
            source,
        };
        let path = root.canonicalize().map_err(err)?;
        let fd = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err(e.into()))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| err(e.into()))?;
        let proc_fd = rustix::fs::open(
            "/proc/self/fd",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok();
        Ok(Self {
            fd,
            dev: st.st_dev,
            path,
            proc_fd,
            walk_only: false,
        })
    }

    /// The same root, opening paths only with the `O_NOFOLLOW` walk (as on
    /// kernels without `openat2`) and, with `no_proc`, without procfs.
    #[cfg(test)]
    fn fallback(mut self, no_proc: bool) -> Self {
        self.walk_only = true;
        if no_proc {
            self.proc_fd = None;
        }
        self
    }

    /// The canonical host path of the root (for walkers and messages only;
    /// nothing is opened through it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `rel` `O_PATH` (never following a link, never running an open
    /// handler) and checks it is on the root's device.
    pub fn lookup(&self, rel: &RelPath) -> Result<Node, PathError> {
        let fd = self.open_at(self.fd.as_fd(), rel.kernel(), OFlags::PATH, rel)?;
        let stat = self.fstat_checked(&fd, rel)?;
        if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink {
            return Err(self.diagnose(rel));
        }
        Ok(Node { fd, stat })
    }

    /// Opens a directory for listing.
    pub fn open_dir(&self, rel: &RelPath) -> Result<OwnedFd, PathError> {
        self.open_dir_at(self.fd.as_fd(), rel.kernel(), rel)
    }

    fn open_dir_at(
        &self,
        dir: BorrowedFd<'_>,
        path: &Path,
        rel: &RelPath,
    ) -> Result<OwnedFd, PathError> {
        let fd = match self.open_at(dir, path, OFlags::RDONLY | OFlags::DIRECTORY, rel) {
            Err(PathError::NotFound { .. }) => {
                // ENOTDIR on the last component: say it is a file.
                return Err(match self.lookup(rel) {
                    Ok(_) => PathError::NotDir {
                        rel: rel.shown.clone(),
                    },
                    Err(e) => e,
                });
            }
            other => other?,
        };
        self.fstat_checked(&fd, rel)?;
        Ok(fd)
    }

    /// Opens a regular file with one link on the root's device, for reading.
    pub fn open_file(&self, rel: &RelPath) -> Result<OpenFile, PathError> {
        self.open_file_at(self.fd.as_fd(), rel.kernel(), rel)
    }

    /// As [`Root::open_file`], for `path` relative to the directory `dir`
    /// (itself opened through this root); `rel` is for messages.
    fn open_file_at(
        &self,
        dir: BorrowedFd<'_>,
        path: &Path,
        rel: &RelPath,
    ) -> Result<OpenFile, PathError> {
        let node_fd = self.open_at(dir, path, OFlags::PATH, rel)?;
        let stat = self.fstat_checked(&node_fd, rel)?;
        check_regular(&stat, rel, || self.diagnose(rel))?;
        // Reopen the very inode the O_PATH fd holds, for reading.
        let flags = OFlags::RDONLY | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let reopened = self.proc_fd.as_ref().and_then(|proc_fd| {
            let name = node_fd.as_raw_fd().to_string();
            rustix::fs::openat(proc_fd, name.as_str(), flags, Mode::empty()).ok()
        });
        let fd = match reopened {
            // The same open file, by construction: no need to compare.
            Some(fd) => fd,
            // No usable procfs: open by name again (still confined) and
            // compare inodes. A device swapped in between these two opens
            // would be opened (then refused); procfs avoids that.
            None => {
                let fd = self.open_at(dir, path, flags, rel)?;
                let now = rustix::fs::fstat(&fd).map_err(|e| io_err(rel, e))?;
                if now.st_dev != stat.st_dev || now.st_ino != stat.st_ino {
                    return Err(PathError::Raced {
                        rel: rel.shown.clone(),
                    });
                }
                check_regular(&now, rel, || self.diagnose(rel))?;
                fd
            }
        };
        Ok(OpenFile {
            file: File::from(fd),
            stat,
        })
    }

    /// As [`Root::open_file`] with one open instead of two, for `search`'s
    /// walk over thousands of files: the file is opened for reading
    /// directly (`O_NONBLOCK`, so a FIFO never blocks) and then checked.
    /// Unlike [`Root::open_file`], a device node swapped in after the walk
    /// saw a regular file would be opened (and then refused); creating one
    /// needs `CAP_MKNOD`, which the sandboxes never give the agent.
    pub fn open_file_walked(&self, rel: &RelPath) -> Result<OpenFile, PathError> {
        let flags = OFlags::RDONLY | OFlags::NOCTTY | OFlags::NONBLOCK;
        let fd = self.open_at(self.fd.as_fd(), rel.kernel(), flags, rel)?;
        let stat = self.fstat_checked(&fd, rel)?;
        check_regular(&stat, rel, || self.diagnose(rel))?;
        Ok(OpenFile {
            file: File::from(fd),
            stat,
        })
    }

    /// Opens the parent directory of `rel` and the file in it, for an edit:
    /// returns the directory fd (to write the new version through) and the
    /// file opened for reading.
    pub fn open_for_edit(&self, rel: &RelPath) -> Result<(OwnedFd, OpenFile), PathError> {
        let Some((parent, name)) = rel.split() else {
            return Err(PathError::IsDir {
                rel: rel.shown.clone(),
            });
        };
        let dir = match self.open_dir(&parent) {
            Err(PathError::NotDir { .. }) => {
                return Err(PathError::NotFound {
                    rel: rel.shown.clone(),
                });
            }
            other => other?,
        };
        let file = self.open_file_at(dir.as_fd(), Path::new(name), rel)?;
        Ok((dir, file))
    }

    /// Writes `content` as the new version of `name` in `dir`: a new file
    /// created beside it (`O_EXCL`, never following anything) and renamed
    /// over the name, so whatever the name pointed to is never written.
    pub fn replace_in(
        &self,
        dir: BorrowedFd<'_>,
        rel: &RelPath,
        content: &[u8],
        mode: u32,
    ) -> Result<(), PathError> {
        let Some((_, name)) = rel.split() else {
            return Err(PathError::IsDir {
                rel: rel.shown.clone(),
            });
        };
        let tmp = format!(
            ".airgate-edit-{}-{}.tmp",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let fd = rustix::fs::openat(
            dir,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io_err(rel, e))?;
        let written = (|| -> Result<(), Errno> {
            let mut f = File::from(fd);
            f.write_all(content)
                .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
            rustix::fs::fchmod(&f, Mode::from_raw_mode(mode & 0o777))?;
            rustix::fs::renameat(dir, tmp.as_str(), dir, name)
        })();
        if let Err(e) = written {
            let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
            return Err(io_err(rel, e));
        }
        Ok(())
    }

    /// Creates the new file `rel` with `content`, and its missing parent
    /// directories, each through the fd of the one above. Fails with
    /// `AlreadyExists`-style errors if anything is at `rel` already.
    pub fn create_file(&self, rel: &RelPath, content: &[u8]) -> Result<(), PathError> {
        let Some((parent, name)) = rel.split() else {
            return Err(PathError::IsDir {
                rel: rel.shown.clone(),
            });
        };
        let mut dir = self.open_dir(&RelPath::from_walk(Path::new("")))?;
        let mut walked = PathBuf::new();
        for comp in parent.path.components() {
            walked.push(comp);
            let step = RelPath::from_walk(&walked);
            let name = comp.as_os_str();
            let next = match self.open_dir_at(dir.as_fd(), Path::new(name), &step) {
                Err(PathError::NotFound { .. }) => {
                    match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_err(&step, e)),
                    }
                    self.open_dir_at(dir.as_fd(), Path::new(name), &step)?
                }
                other => other?,
            };
            dir = next;
        }
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::NOCTTY
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )
        .map_err(|e| match e {
            Errno::EXIST => match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                    self.diagnose(rel)
                }
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                    PathError::IsDir {
                        rel: rel.shown.clone(),
                    }
                }
                _ => io_err(rel, e),
            },
            e => io_err(rel, e),
        })?;
        let mut f = File::from(fd);
        f.write_all(content).map_err(|source| PathError::Io {
            rel: rel.shown.clone(),
            source,
        })
    }

    /// Lists the directory `dir` (opened for `rel` by [`Root::open_dir`]):
    /// names (lossy UTF-8) and kinds, unsorted. Links are not followed; their
    /// targets are given relative to the root when they stay inside.
    pub fn list(
        &self,
        dir: OwnedFd,
        rel: &RelPath,
    ) -> Result<Vec<(String, EntryKind)>, std::io::Error> {
        let dir_fd = rustix::io::dup(&dir)?;
        let rd = rustix::fs::Dir::new(dir)?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent?;
            let name = ent.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let os = OsStr::from_bytes(name);
            let mut ty = ent.file_type();
            if ty == FileType::Unknown {
                ty = rustix::fs::statat(&dir_fd, os, AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| FileType::from_raw_mode(st.st_mode))
                    .unwrap_or(FileType::Unknown);
            }
            let kind = match ty {
                FileType::Directory => EntryKind::Dir,
                FileType::Symlink => EntryKind::Symlink(
                    rustix::fs::readlinkat(&dir_fd, os, Vec::new())
                        .ok()
                        .and_then(|t| self.inside_target(rel, OsStr::from_bytes(t.to_bytes()))),
                ),
                _ => EntryKind::Other,
            };
            out.push((String::from_utf8_lossy(name).into_owned(), kind));
        }
        Ok(out)
    }

    /// `target` (a link's content, found in directory `parent`) as a path
    /// relative to the root, or `None` when it leaves the root.
    fn inside_target(&self, parent: &RelPath, target: &OsStr) -> Option<String> {
        let target = Path::new(target);
        let (mut comps, rest): (Vec<&OsStr>, &Path) = if target.is_absolute() {
            (Vec::new(), target.strip_prefix(&self.path).ok()?)
        } else {
            (
                parent.path.components().map(|c| c.as_os_str()).collect(),
                target,
            )
        };
        for c in rest.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    comps.pop()?;
                }
                Component::Normal(n) => comps.push(n),
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        let p: PathBuf = comps.iter().collect();
        let s = p.to_string_lossy().into_owned();
        Some(if s.is_empty() { ".".into() } else { s })
    }

    /// Opens `path` (relative to `dir`, which was itself opened through
    /// this root) without following any link or crossing a mount.
    fn open_at(
        &self,
        dir: BorrowedFd<'_>,
        path: &Path,
        flags: OFlags,
        rel: &RelPath,
    ) -> Result<OwnedFd, PathError> {
        let flags = flags | OFlags::CLOEXEC;
        let res = if self.walk_only || NO_OPENAT2.load(Ordering::Relaxed) {
            self.open_walk(dir, path, flags)
        } else {
            let resolve = ResolveFlags::BENEATH
                | ResolveFlags::NO_SYMLINKS
                | ResolveFlags::NO_MAGICLINKS
                | ResolveFlags::NO_XDEV;
            let mut tries = 0;
            loop {
                match rustix::fs::openat2(dir, path, flags, Mode::empty(), resolve) {
                    Err(Errno::AGAIN | Errno::INTR) if tries < OPEN_RETRIES => tries += 1,
                    Err(Errno::NOSYS) => {
                        NO_OPENAT2.store(true, Ordering::Relaxed);
                        tracing::debug!(
                            "openat2 unavailable; opening paths component by component"
                        );
                        break self.open_walk(dir, path, flags);
                    }
                    // Old Docker seccomp profiles answer EPERM; the walk is as safe.
                    Err(Errno::PERM) => break self.open_walk(dir, path, flags),
                    other => break other,
                }
            }
        };
        res.map_err(|e| self.classify(rel, e))
    }

    /// The fallback: one component at a time, each with `O_NOFOLLOW`, each
    /// directory checked to be on the root's device.
    fn open_walk(&self, dir: BorrowedFd<'_>, path: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
        let comps: Vec<&OsStr> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        let Some((last, middle)) = comps.split_last() else {
            return rustix::fs::openat(dir, ".", flags, Mode::empty());
        };
        let mut cur: Option<OwnedFd> = None;
        for c in middle {
            let d = cur.as_ref().map_or(dir, |f| f.as_fd());
            let next = rustix::fs::openat(
                d,
                *c,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| match e {
                Errno::NOTDIR if is_symlink_at(d, c) => Errno::LOOP,
                e => e,
            })?;
            if rustix::fs::fstat(&next)?.st_dev != self.dev {
                return Err(Errno::XDEV);
            }
            cur = Some(next);
        }
        let d = cur.as_ref().map_or(dir, |f| f.as_fd());
        let fd = rustix::fs::openat(d, *last, flags | OFlags::NOFOLLOW, Mode::empty())?;
        // O_PATH | O_NOFOLLOW opens a symlink itself: refuse it as openat2 would.
        if flags.contains(OFlags::PATH)
            && FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) == FileType::Symlink
        {
            return Err(Errno::LOOP);
        }
        Ok(fd)
    }

    /// Turns an open failure into a message; link and mount refusals are
    /// diagnosed by walking the path (for the message only).
    fn classify(&self, rel: &RelPath, e: Errno) -> PathError {
        match e {
            Errno::NOENT | Errno::NOTDIR => PathError::NotFound {
                rel: rel.shown.clone(),
            },
            Errno::LOOP => self.diagnose(rel),
            // No link to blame: a mount point on the way.
            Errno::XDEV => match self.diagnose(rel) {
                PathError::Raced { .. } => PathError::OtherFilesystem {
                    rel: rel.shown.clone(),
                },
                e => e,
            },
            e => io_err(rel, e),
        }
    }

    /// Finds which component of `rel` is a symlink (or a mount point) and
    /// says so, naming the real path when the link stays inside.
    fn diagnose(&self, rel: &RelPath) -> PathError {
        let comps: Vec<&OsStr> = rel.path.components().map(|c| c.as_os_str()).collect();
        let mut cur: Option<OwnedFd> = None;
        for (i, c) in comps.iter().enumerate() {
            let d = cur.as_ref().map_or(self.fd.as_fd(), |f| f.as_fd());
            let Ok(st) = rustix::fs::statat(d, *c, AtFlags::SYMLINK_NOFOLLOW) else {
                break;
            };
            if st.st_dev != self.dev {
                return PathError::OtherFilesystem {
                    rel: rel.shown.clone(),
                };
            }
            let link_rel: PathBuf = comps[..=i].iter().collect();
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => {
                    let parent = RelPath::from_walk(&comps[..i].iter().collect::<PathBuf>());
                    let target = rustix::fs::readlinkat(d, *c, Vec::new())
                        .ok()
                        .and_then(|t| self.inside_target(&parent, OsStr::from_bytes(t.to_bytes())))
                        .map(|t| {
                            let rest: PathBuf = comps[i + 1..].iter().collect();
                            if rest.as_os_str().is_empty() {
                                t
                            } else if t == "." {
                                rest.to_string_lossy().into_owned()
                            } else {
                                format!("{t}/{}", rest.to_string_lossy())
                            }
                        });
                    return PathError::Symlink {
                        rel: rel.shown.clone(),
                        link: link_rel.to_string_lossy().into_owned(),
                        target,
                    };
                }
                FileType::Directory => {
                    match rustix::fs::openat(
                        d,
                        *c,
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    ) {
                        Ok(fd) => cur = Some(fd),
                        Err(_) => break,
                    }
                }
                _ => break,
            }
        }
        // Nothing to blame now: the path changed under us.
        PathError::Raced {
            rel: rel.shown.clone(),
        }
    }

    fn fstat_checked(&self, fd: &OwnedFd, rel: &RelPath) -> Result<Stat, PathError> {
        let st = rustix::fs::fstat(fd).map_err(|e| io_err(rel, e))?;
        if st.st_dev != self.dev {
            return Err(PathError::OtherFilesystem {
                rel: rel.shown.clone(),
            });
        }
        Ok(st)
    }
}

fn check_regular(
    st: &Stat,
    rel: &RelPath,
    symlink: impl FnOnce() -> PathError,
) -> Result<(), PathError> {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Directory => {
            return Err(PathError::IsDir {
                rel: rel.shown.clone(),
            });
        }
        FileType::Symlink => return Err(symlink()),
        _ => {
            return Err(PathError::NotRegular {
                rel: rel.shown.clone(),
            });
        }
    }
    #[allow(clippy::useless_conversion)]
    let links = u64::from(st.st_nlink);
    if links != 1 {
        return Err(PathError::HardLinked {
            rel: rel.shown.clone(),
            links,
        });
    }
    Ok(())
}

fn is_symlink_at(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

fn io_err(rel: &RelPath, e: Errno) -> PathError {
    PathError::Io {
        rel: rel.shown.clone(),
        source: e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::CWD;
    use std::io::Read;
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

    /// Both ways of opening: `openat2`, and the `O_NOFOLLOW` walk without
    /// procfs (older kernels, containers hiding `openat2`).
    fn roots(root: &Path) -> Vec<Root> {
        vec![
            Root::open(root).expect("root"),
            Root::open(root).expect("root").fallback(true),
        ]
    }

    fn rel(p: &str) -> RelPath {
        RelPath::parse(p).expect("parse")
    }

    fn read(root: &Root, p: &str) -> Result<String, PathError> {
        let mut f = root.open_file(&rel(p))?;
        let mut s = String::new();
        f.file.read_to_string(&mut s).expect("read");
        Ok(s)
    }

    #[test]
    fn plain_relative_paths_parse_and_open() {
        let f = fixture();
        assert_eq!(rel("src/pkg/a.py").shown(), "src/pkg/a.py");
        assert_eq!(rel(".").shown(), ".");
        assert_eq!(rel("").shown(), ".");
        assert!(rel("").is_root());
        assert_eq!(rel("./src/./pkg").shown(), "src/pkg");
        assert_eq!(rel("src//pkg/").shown(), "src/pkg");
        for r in roots(&f.root) {
            assert_eq!(read(&r, "src/pkg/a.py").expect("read"), "x = 1\n");
            assert!(r.open_dir(&rel(".")).is_ok());
            assert!(r.open_dir(&rel("src/pkg")).is_ok());
        }
    }

    #[test]
    fn dotdot_inside_root_is_fine() {
        assert_eq!(rel("src/pkg/../pkg/a.py").shown(), "src/pkg/a.py");
        assert_eq!(rel("src/..").shown(), ".");
    }

    #[test]
    fn dotdot_escape_is_refused() {
        for p in [
            "../outside/secret.txt",
            "src/../../outside",
            "..",
            "new/../../x",
        ] {
            let e = RelPath::parse(p).unwrap_err().to_string();
            assert!(e.contains("`..`"), "{p}: {e}");
        }
    }

    #[test]
    fn absolute_and_home_paths_are_refused() {
        let f = fixture();
        let e = RelPath::parse("/etc/passwd").unwrap_err().to_string();
        assert!(e.contains("absolute path"), "{e}");
        // Even one that points inside the root, and /proc's magic roots.
        let inside = f.root.join("src/pkg/a.py");
        for p in [
            inside.to_str().expect("utf8"),
            "/proc/self/root/etc/passwd",
            "/proc/self/cwd/src/pkg/a.py",
            "  /etc/passwd",
        ] {
            let e = RelPath::parse(p).unwrap_err().to_string();
            assert!(e.contains("relative to the repository root"), "{p}: {e}");
        }
        assert!(RelPath::parse("~/.ssh/id_rsa").is_err());
        assert!(RelPath::parse("~").is_err());
        assert!(RelPath::parse("a\0b").is_err());
    }

    #[test]
    fn symlinked_dir_outside_is_refused() {
        let f = fixture();
        symlink(&f.outside, f.root.join("escape")).expect("symlink");
        for r in roots(&f.root) {
            let e = read(&r, "escape/secret.txt").unwrap_err();
            assert!(
                matches!(&e, PathError::Symlink { link, target: None, .. } if link == "escape"),
                "{e:?}"
            );
            let msg = e.to_string();
            assert!(
                msg.contains("symbolic link") && msg.contains("outside"),
                "{msg}"
            );
            assert!(!msg.contains(f.outside.to_str().expect("utf8")), "{msg}");
            // Creating a new file through it is refused too.
            assert!(r.create_file(&rel("escape/new.txt"), b"x").is_err());
            assert!(r.open_dir(&rel("escape")).is_err());
            assert!(r.lookup(&rel("escape")).is_err());
        }
        assert!(!f.outside.join("new.txt").exists());
    }

    #[test]
    fn symlinked_final_file_outside_is_refused() {
        let f = fixture();
        symlink(f.outside.join("secret.txt"), f.root.join("link.txt")).expect("symlink");
        symlink(
            "../../../outside/secret.txt",
            f.root.join("src/pkg/rel.txt"),
        )
        .expect("symlink");
        symlink(f.outside.join("not-yet.txt"), f.root.join("dangling")).expect("symlink");
        for r in roots(&f.root) {
            for p in ["link.txt", "src/pkg/rel.txt", "dangling"] {
                let e = read(&r, p).unwrap_err();
                assert!(
                    matches!(e, PathError::Symlink { target: None, .. }),
                    "{p}: {e:?}"
                );
                let e = r.open_file_walked(&rel(p)).unwrap_err();
                assert!(matches!(e, PathError::Symlink { .. }), "{p}: {e:?}");
            }
            // A new file is never created through a dangling link.
            let e = r.create_file(&rel("dangling"), b"x").unwrap_err();
            assert!(matches!(e, PathError::Symlink { .. }), "{e:?}");
        }
        assert!(!f.outside.join("not-yet.txt").exists());
    }

    /// Changed by issue 12: links that stay inside used to be followed. They
    /// are refused now, and the error names the real path to use.
    #[test]
    fn symlink_inside_root_is_refused_naming_the_real_path() {
        let f = fixture();
        symlink("src/pkg", f.root.join("pk")).expect("symlink");
        symlink(f.root.join("src/pkg/a.py"), f.root.join("abs-link.py")).expect("symlink");
        symlink("../pkg/./a.py", f.root.join("src/pkg/same.py")).expect("symlink");
        symlink(".", f.root.join("here")).expect("symlink");
        for r in roots(&f.root) {
            let cases = [
                ("pk/a.py", "pk", "src/pkg/a.py"),
                ("abs-link.py", "abs-link.py", "src/pkg/a.py"),
                ("src/pkg/same.py", "src/pkg/same.py", "src/pkg/a.py"),
                ("here/src/pkg/a.py", "here", "src/pkg/a.py"),
            ];
            for (p, link, real) in cases {
                let e = read(&r, p).unwrap_err();
                match &e {
                    PathError::Symlink {
                        link: l,
                        target: Some(t),
                        ..
                    } => {
                        assert_eq!((l.as_str(), t.as_str()), (link, real), "{p}");
                    }
                    other => panic!("{p}: {other:?}"),
                }
                let msg = e.to_string();
                assert!(msg.contains(&format!("`{real}`")), "{msg}");
                // Honest control: the real path works.
                assert_eq!(read(&r, real).expect("real path"), "x = 1\n");
            }
        }
    }

    #[test]
    fn symlink_loop_is_an_error_not_a_hang() {
        let f = fixture();
        symlink("loop-b", f.root.join("loop-a")).expect("symlink");
        symlink("loop-a", f.root.join("loop-b")).expect("symlink");
        for r in roots(&f.root) {
            let e = read(&r, "loop-a").unwrap_err();
            assert!(matches!(e, PathError::Symlink { .. }), "{e:?}");
        }
    }

    #[test]
    fn magic_links_are_refused() {
        let f = fixture();
        symlink("/proc/self/cwd", f.root.join("cwd")).expect("symlink");
        symlink("/proc/self/root", f.root.join("sysroot")).expect("symlink");
        for r in roots(&f.root) {
            for p in ["cwd/src/pkg/a.py", "sysroot/etc/passwd", "cwd", "sysroot"] {
                let e = read(&r, p).unwrap_err();
                assert!(
                    matches!(e, PathError::Symlink { target: None, .. }),
                    "{p}: {e:?}"
                );
                assert!(r.open_dir(&rel(p)).is_err(), "{p}");
            }
        }
    }

    #[test]
    fn hard_link_to_an_outside_file_is_refused() {
        let f = fixture();
        std::fs::hard_link(f.outside.join("secret.txt"), f.root.join("hl.txt")).expect("link");
        for r in roots(&f.root) {
            let e = read(&r, "hl.txt").unwrap_err();
            assert!(matches!(e, PathError::HardLinked { links: 2, .. }), "{e:?}");
            assert!(e.to_string().contains("hard links"), "{e}");
            let e = r.open_file_walked(&rel("hl.txt")).unwrap_err();
            assert!(matches!(e, PathError::HardLinked { .. }), "{e:?}");
            assert!(r.open_file_walked(&rel("src/pkg/a.py")).is_ok());
            let e = r.open_for_edit(&rel("hl.txt")).unwrap_err();
            assert!(matches!(e, PathError::HardLinked { .. }), "{e:?}");
            // Honest control: a file with one link opens for editing.
            assert!(r.open_for_edit(&rel("src/pkg/a.py")).is_ok());
        }
    }

    #[test]
    fn fifo_and_devices_are_refused_without_opening_them() {
        let f = fixture();
        rustix::fs::mknodat(
            CWD,
            f.root.join("pipe"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        // A device node needs CAP_MKNOD; without it only the FIFO is checked.
        let dev = rustix::fs::mknodat(
            CWD,
            f.root.join("null"),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o600),
            rustix::fs::makedev(1, 3),
        )
        .is_ok();
        for r in roots(&f.root) {
            // O_PATH never blocks on a FIFO with no writer: this returns.
            let e = read(&r, "pipe").unwrap_err();
            assert!(matches!(e, PathError::NotRegular { .. }), "{e:?}");
            // The walk's one-open variant opens it O_NONBLOCK: no hang either.
            let e = r.open_file_walked(&rel("pipe")).unwrap_err();
            assert!(matches!(e, PathError::NotRegular { .. }), "{e:?}");
            if dev {
                let e = read(&r, "null").unwrap_err();
                assert!(matches!(e, PathError::NotRegular { .. }), "{e:?}");
            }
        }
    }

    #[test]
    fn missing_files_and_file_components() {
        let f = fixture();
        for r in roots(&f.root) {
            assert!(matches!(
                read(&r, "new/dir/file.py").unwrap_err(),
                PathError::NotFound { .. }
            ));
            assert!(matches!(
                read(&r, "src/pkg/a.py/x").unwrap_err(),
                PathError::NotFound { .. }
            ));
            assert!(matches!(
                r.open_dir(&rel("src/pkg/a.py")).unwrap_err(),
                PathError::NotDir { .. }
            ));
            assert!(matches!(
                read(&r, "src").unwrap_err(),
                PathError::IsDir { .. }
            ));
        }
    }

    #[test]
    fn create_makes_parents_and_never_overwrites() {
        let f = fixture();
        for (i, r) in roots(&f.root).into_iter().enumerate() {
            let p = format!("new{i}/dir/file.py");
            r.create_file(&rel(&p), b"y = 2\n").expect("create");
            assert_eq!(read(&r, &p).expect("read"), "y = 2\n");
            let e = r.create_file(&rel(&p), b"z").unwrap_err();
            assert!(
                matches!(&e, PathError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
                "{e:?}"
            );
            assert_eq!(read(&r, &p).expect("read"), "y = 2\n");
        }
    }

    #[test]
    fn replace_goes_through_a_new_file_and_keeps_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let f = fixture();
        let path = f.root.join("src/pkg/a.py");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o751)).expect("chmod");
        let r = Root::open(&f.root).expect("root");
        let (dir, opened) = r.open_for_edit(&rel("src/pkg/a.py")).expect("open");
        r.replace_in(
            dir.as_fd(),
            &rel("src/pkg/a.py"),
            b"x = 2\n",
            opened.stat.st_mode,
        )
        .expect("replace");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "x = 2\n");
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o777, 0o751);
        // No temporary file left behind.
        let names: Vec<_> = std::fs::read_dir(f.root.join("src/pkg"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.py")]);
    }

    #[test]
    fn list_shows_links_without_following_them() {
        let f = fixture();
        symlink("src/pkg", f.root.join("pk")).expect("symlink");
        symlink(&f.outside, f.root.join("out")).expect("symlink");
        let r = Root::open(&f.root).expect("root");
        let mut got = r
            .list(r.open_dir(&rel(".")).expect("dir"), &rel("."))
            .expect("list");
        got.sort();
        assert_eq!(
            got,
            vec![
                ("out".to_string(), EntryKind::Symlink(None)),
                ("pk".to_string(), EntryKind::Symlink(Some("src/pkg".into()))),
                ("src".to_string(), EntryKind::Dir),
            ]
        );
    }

    #[test]
    fn root_given_through_symlink_works() {
        let f = fixture();
        let alias = f.outside.join("alias");
        symlink(&f.root, &alias).expect("symlink");
        let r = Root::open(&alias).expect("root");
        assert_eq!(read(&r, "src/pkg/a.py").expect("read"), "x = 1\n");
        assert!(Root::open(&f.root.join("missing")).is_err());
    }
}
