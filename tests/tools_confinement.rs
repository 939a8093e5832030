//! The file tools against an adversary who can change the workspace while
//! they run (issue 12, point 4): symlink swaps racing `read_file`,
//! `str_replace` and `search`, hard links to outside files, symlinked parent
//! directories, `/proc` magic links, FIFOs. Each attack sits next to an
//! honest control showing the same tool still works on a normal file.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use airgate::model::ToolCall;
use airgate::sandbox::local::LocalSandbox;
use airgate::tools::{self, ToolContext, ToolOutcome};
use serde_json::{Value, json};

/// Iterations of each race; enough for thousands of swaps to interleave.
const RACE_ROUNDS: usize = 3_000;

const DECOY: &str = "DECOY-SECRET-d3c0y";

struct Repo {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

/// A repo and, beside it, an `outside` directory holding decoys that must
/// never be shown or changed.
fn repo() -> Repo {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().canonicalize().expect("canon");
    let root = base.join("repo");
    let outside = base.join("outside");
    std::fs::create_dir_all(root.join("src")).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(root.join("src/app.py"), "marker = 'HONEST'\n").expect("write");
    std::fs::write(outside.join("decoy.txt"), format!("marker = '{DECOY}'\n")).expect("write");
    std::fs::write(outside.join("secret.txt"), format!("marker = '{DECOY}'\n")).expect("write");
    Repo {
        _dir: dir,
        root,
        outside,
    }
}

/// Calls tools on one root with one runtime.
struct Tools {
    sandbox: LocalSandbox,
    rt: tokio::runtime::Runtime,
}

impl Tools {
    fn new(root: &Path) -> Self {
        Self {
            sandbox: LocalSandbox::new(root),
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
        }
    }

    fn call(&self, name: &str, args: Value) -> ToolOutcome {
        let ctx = ToolContext {
            sandbox: &self.sandbox,
            guards: Default::default(),
            output_limit: tools::DEFAULT_OUTPUT_LIMIT,
            run_timeout: Duration::from_secs(30),
            max_run_timeout: Duration::from_secs(60),
        };
        let call = ToolCall {
            id: "t".into(),
            name: name.into(),
            arguments: args,
        };
        self.rt.block_on(tools::dispatch(&ctx, &call))
    }
}

/// Snapshot of everything under `dir`: (relative path, content or link).
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.expect("walk");
        let rel = e
            .path()
            .strip_prefix(dir)
            .expect("prefix")
            .display()
            .to_string();
        let ft = e.file_type();
        let what = if ft.is_symlink() {
            format!(
                "-> {}",
                std::fs::read_link(e.path()).expect("readlink").display()
            )
        } else if ft.is_file() {
            std::fs::read_to_string(e.path()).expect("read")
        } else {
            "dir".into()
        };
        out.push((rel, what));
    }
    out
}

/// Flips `name` in `root` between a regular file with `honest` content and
/// a symlink to `target`, until `stop`; returns the number of flips.
fn flip_file(root: PathBuf, name: &str, honest: String, target: PathBuf, f: Flips) -> usize {
    let victim = root.join(name);
    let tmp_file = root.join(format!(".{name}.file"));
    let tmp_link = root.join(format!(".{name}.link"));
    let mut flips = 0;
    while !f.stop.load(Ordering::Relaxed) {
        std::fs::write(&tmp_file, &honest).expect("write");
        std::fs::rename(&tmp_file, &victim).expect("rename file");
        let _ = std::fs::remove_file(&tmp_link);
        symlink(&target, &tmp_link).expect("symlink");
        std::fs::rename(&tmp_link, &victim).expect("rename link");
        flips += 2;
        f.count.fetch_add(2, Ordering::Relaxed);
    }
    flips
}

/// Flips directory `name` in `root` between a real directory holding
/// `secret.txt` with `honest` content and a symlink to `target`.
fn flip_dir(root: PathBuf, name: &str, honest: String, target: PathBuf, f: Flips) -> usize {
    let victim = root.join(name);
    let parked = root.join(format!(".{name}.real"));
    let mut flips = 0;
    std::fs::create_dir_all(&parked).expect("mkdir");
    while !f.stop.load(Ordering::Relaxed) {
        std::fs::write(parked.join("secret.txt"), &honest).expect("write");
        // The tool may create `name/` again at any moment: retry until the
        // swap wins.
        while {
            clear(&victim);
            std::fs::rename(&parked, &victim).is_err()
        } {}
        std::fs::rename(&victim, &parked).expect("rename dir out");
        while {
            clear(&victim);
            symlink(&target, &victim).is_err()
        } {}
        flips += 2;
        f.count.fetch_add(2, Ordering::Relaxed);
    }
    flips
}

/// Shared between a race's flippers and its driver.
#[derive(Clone)]
struct Flips {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
}

type Flipper = Box<dyn FnOnce(Flips) -> usize + Send>;

/// Removes whatever is at `p`: the link, or a directory str_replace
/// created (with its parents) while the name was missing.
fn clear(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

/// Runs `body` until it ran RACE_ROUNDS times and the flippers made
/// RACE_ROUNDS swaps (bounded, so a starved flipper cannot hang the test);
/// returns the number of swaps.
fn race(flippers: Vec<Flipper>, mut body: impl FnMut(usize)) -> usize {
    let f = Flips {
        stop: Arc::new(AtomicBool::new(false)),
        count: Arc::new(AtomicUsize::new(0)),
    };
    let handles: Vec<_> = flippers
        .into_iter()
        .map(|flip| {
            let f = f.clone();
            std::thread::spawn(move || flip(f))
        })
        .collect();
    let mut i = 0;
    while i < RACE_ROUNDS || (f.count.load(Ordering::Relaxed) < RACE_ROUNDS && i < 50 * RACE_ROUNDS)
    {
        body(i);
        i += 1;
    }
    f.stop.store(true, Ordering::Relaxed);
    handles
        .into_iter()
        .map(|h| h.join().expect("flipper"))
        .sum()
}

#[test]
fn symlink_swap_race_against_read_file_never_shows_the_decoy() {
    let r = repo();
    let t = Tools::new(&r.root);
    let honest_reads = AtomicUsize::new(0);
    let (root_a, root_b) = (r.root.clone(), r.root.clone());
    let (decoy, out_dir) = (r.outside.join("decoy.txt"), r.outside.clone());
    let flips = race(
        vec![
            Box::new(move |s| {
                flip_file(root_a, "victim.py", "marker = 'HONEST'\n".into(), decoy, s)
            }),
            Box::new(move |s| flip_dir(root_b, "d", "marker = 'HONEST'\n".into(), out_dir, s)),
        ],
        |i| {
            let path = if i % 2 == 0 {
                "victim.py"
            } else {
                "d/secret.txt"
            };
            let out = t.call("read_file", json!({ "path": path }));
            assert!(
                !out.text.contains(DECOY),
                "round {i}: {path} leaked: {}",
                out.text
            );
            if out.text.contains("HONEST") {
                honest_reads.fetch_add(1, Ordering::Relaxed);
            }
        },
    );
    assert!(flips > 0);
    // Honest control: with nothing racing, the same reads work.
    let _ = std::fs::remove_file(r.root.join("victim.py"));
    std::fs::write(r.root.join("victim.py"), "marker = 'HONEST'\n").expect("write");
    let out = t.call("read_file", json!({"path": "victim.py"}));
    assert_eq!(out.text, "     1\tmarker = 'HONEST'\n");
    eprintln!(
        "read_file race: {flips} swaps; {} reads got the honest file",
        honest_reads.into_inner()
    );
}

#[test]
fn symlink_swap_race_against_str_replace_never_writes_outside() {
    let r = repo();
    let t = Tools::new(&r.root);
    let before = snapshot(&r.outside);
    let (root_a, root_b) = (r.root.clone(), r.root.clone());
    let (decoy, out_dir) = (r.outside.join("decoy.txt"), r.outside.clone());
    let edits = AtomicUsize::new(0);
    let flips = race(
        vec![
            Box::new(move |s| flip_file(root_a, "victim.py", "marker = 'x'\n".into(), decoy, s)),
            Box::new(move |s| flip_dir(root_b, "d", "marker = 'x'\n".into(), out_dir, s)),
        ],
        |i| {
            let (path, old) = match i % 3 {
                0 => ("victim.py", "marker"),
                1 => ("d/secret.txt", "marker"),
                // Creating a new file through the flipping directory.
                _ => ("d/created.py", ""),
            };
            let out = t.call(
                "str_replace",
                json!({"path": path, "old_str": old, "new_str": "edited"}),
            );
            assert!(
                !out.text.contains(DECOY),
                "round {i}: {path} leaked: {}",
                out.text
            );
            if !out.is_error {
                edits.fetch_add(1, Ordering::Relaxed);
            }
        },
    );
    assert_eq!(
        snapshot(&r.outside),
        before,
        "a file outside the repo changed"
    );
    // Honest control: the same edit on a plain file works.
    let out = t.call(
        "str_replace",
        json!({"path": "src/app.py", "old_str": "HONEST", "new_str": "EDITED"}),
    );
    assert!(!out.is_error, "{}", out.text);
    assert_eq!(
        std::fs::read_to_string(r.root.join("src/app.py")).expect("read"),
        "marker = 'EDITED'\n"
    );
    eprintln!(
        "str_replace race: {flips} swaps; {} edits went through (inside)",
        edits.into_inner()
    );
}

#[test]
fn symlink_swap_race_against_search_never_finds_the_decoy() {
    let r = repo();
    let t = Tools::new(&r.root);
    let (root_a, root_b) = (r.root.clone(), r.root.clone());
    let (decoy, out_dir) = (r.outside.join("decoy.txt"), r.outside.clone());
    race(
        vec![
            Box::new(move |s| {
                flip_file(root_a, "victim.py", "marker = 'HONEST'\n".into(), decoy, s)
            }),
            Box::new(move |s| flip_dir(root_b, "d", "marker = 'HONEST'\n".into(), out_dir, s)),
        ],
        |i| {
            // A search costs more than a swap: search every 5th round.
            if i % 5 != 0 {
                return;
            }
            let out = t.call("search", json!({"pattern": "DECOY"}));
            assert!(!out.text.contains(DECOY), "round {i} leaked: {}", out.text);
            let out = t.call("search", json!({"pattern": "DECOY", "path": "d"}));
            assert!(!out.text.contains(DECOY), "round {i} leaked: {}", out.text);
        },
    );
    // Honest control.
    let out = t.call("search", json!({"pattern": "HONEST", "path": "src"}));
    assert_eq!(out.text, "src/app.py:1: marker = 'HONEST'\n");
}

#[test]
fn hard_link_to_an_outside_file_is_refused_for_read_write_and_search() {
    let r = repo();
    let t = Tools::new(&r.root);
    std::fs::hard_link(r.outside.join("secret.txt"), r.root.join("src/linked.py")).expect("link");
    let before = snapshot(&r.outside);
    let out = t.call("read_file", json!({"path": "src/linked.py"}));
    assert!(
        out.is_error && out.text.contains("hard links"),
        "{}",
        out.text
    );
    assert!(!out.text.contains(DECOY));
    let out = t.call(
        "str_replace",
        json!({"path": "src/linked.py", "old_str": "marker", "new_str": "pwned"}),
    );
    assert!(
        out.is_error && out.text.contains("hard links"),
        "{}",
        out.text
    );
    let out = t.call("search", json!({"pattern": "marker"}));
    assert!(!out.text.contains(DECOY), "{}", out.text);
    let out = t.call(
        "search",
        json!({"pattern": "marker", "path": "src/linked.py"}),
    );
    assert!(out.is_error && !out.text.contains(DECOY), "{}", out.text);
    assert_eq!(snapshot(&r.outside), before);
    // Honest control: the file beside it reads, edits and is found.
    let out = t.call("search", json!({"pattern": "marker"}));
    assert_eq!(out.text, "src/app.py:1: marker = 'HONEST'\n");
    let out = t.call("read_file", json!({"path": "src/app.py"}));
    assert_eq!(out.text, "     1\tmarker = 'HONEST'\n");
}

#[test]
fn symlinked_parent_directories_are_refused_and_named() {
    let r = repo();
    let t = Tools::new(&r.root);
    symlink(&r.outside, r.root.join("out")).expect("symlink");
    symlink("src", r.root.join("code")).expect("symlink");
    let before = snapshot(&r.outside);
    for (tool, args) in [
        ("read_file", json!({"path": "out/secret.txt"})),
        ("ls", json!({"path": "out"})),
        ("search", json!({"pattern": "marker", "path": "out"})),
        (
            "str_replace",
            json!({"path": "out/secret.txt", "old_str": "marker", "new_str": "x"}),
        ),
        (
            "str_replace",
            json!({"path": "out/new.py", "old_str": "", "new_str": "x"}),
        ),
        (
            "str_replace",
            json!({"path": "out/deeper/new.py", "old_str": "", "new_str": "x"}),
        ),
    ] {
        let out = t.call(tool, args.clone());
        assert!(out.is_error, "{tool} {args}: {}", out.text);
        assert!(
            out.text.contains("symbolic link") && out.text.contains("outside"),
            "{tool} {args}: {}",
            out.text
        );
        assert!(!out.text.contains(DECOY), "{tool} {args}: {}", out.text);
    }
    assert_eq!(snapshot(&r.outside), before);
    // A link that stays inside: refused, with the real path to retry with.
    let out = t.call("read_file", json!({"path": "code/app.py"}));
    assert!(out.is_error, "{}", out.text);
    assert!(out.text.contains("`src/app.py`"), "{}", out.text);
    let out = t.call("read_file", json!({"path": "src/app.py"}));
    assert!(!out.is_error, "{}", out.text);
    // ls shows both links without following them.
    let out = t.call("ls", json!({}));
    assert_eq!(
        out.text,
        "code -> src (symbolic link; use the real path)\n\
         out -> (symbolic link pointing outside the repository)\n\
         src/\n"
    );
}

#[test]
fn dotdot_absolute_and_proc_paths_are_refused() {
    let r = repo();
    let t = Tools::new(&r.root);
    symlink("/proc/self/cwd", r.root.join("cwd")).expect("symlink");
    symlink("/proc/self/root", r.root.join("sysroot")).expect("symlink");
    let secret = r.outside.join("secret.txt");
    let secret = secret.to_str().expect("utf8");
    for (tool, args) in [
        ("read_file", json!({"path": "../outside/secret.txt"})),
        ("read_file", json!({"path": "src/../../outside/secret.txt"})),
        ("read_file", json!({"path": secret})),
        (
            "read_file",
            json!({"path": format!("/proc/self/root{secret}")}),
        ),
        ("read_file", json!({"path": "/proc/self/cwd/Cargo.toml"})),
        ("read_file", json!({"path": format!("sysroot{secret}")})),
        ("read_file", json!({"path": "cwd/Cargo.toml"})),
        ("ls", json!({"path": "cwd"})),
        ("ls", json!({"path": "sysroot/etc"})),
        ("search", json!({"pattern": "marker", "path": "sysroot"})),
        (
            "str_replace",
            json!({"path": "cwd/pwned.txt", "old_str": "", "new_str": "x"}),
        ),
        (
            "str_replace",
            json!({"path": format!("sysroot{}", r.outside.join("pwned.txt").display()), "old_str": "", "new_str": "x"}),
        ),
    ] {
        let out = t.call(tool, args.clone());
        assert!(out.is_error, "{tool} {args}: {}", out.text);
        assert!(!out.text.contains(DECOY), "{tool} {args}: {}", out.text);
    }
    assert!(!r.outside.join("pwned.txt").exists());
    assert!(!Path::new("pwned.txt").exists());
    // Honest control: `..` that stays inside is fine.
    let out = t.call("read_file", json!({"path": "src/../src/app.py"}));
    assert_eq!(out.text, "     1\tmarker = 'HONEST'\n");
}

#[test]
fn fifos_and_devices_are_refused_without_blocking() {
    let r = repo();
    let t = Tools::new(&r.root);
    let st = std::process::Command::new("mkfifo")
        .arg(r.root.join("src/pipe"))
        .status()
        .expect("mkfifo");
    assert!(st.success());
    let out = t.call("read_file", json!({"path": "src/pipe"}));
    assert!(
        out.is_error && out.text.contains("not a regular file"),
        "{}",
        out.text
    );
    let out = t.call(
        "str_replace",
        json!({"path": "src/pipe", "old_str": "a", "new_str": "b"}),
    );
    assert!(
        out.is_error && out.text.contains("not a regular file"),
        "{}",
        out.text
    );
    let out = t.call("search", json!({"pattern": "a", "path": "src/pipe"}));
    assert!(out.is_error, "{}", out.text);
    // A device node (needs CAP_MKNOD; checked where the tests run as root).
    let dev = std::process::Command::new("mknod")
        .arg(r.root.join("src/zero"))
        .args(["c", "1", "5"])
        .status()
        .is_ok_and(|s| s.success());
    if dev {
        let out = t.call("read_file", json!({"path": "src/zero"}));
        assert!(
            out.is_error && out.text.contains("not a regular file"),
            "{}",
            out.text
        );
    }
    // Honest control: a whole-repo search walks past them and finds the file.
    let out = t.call("search", json!({"pattern": "marker"}));
    assert_eq!(out.text, "src/app.py:1: marker = 'HONEST'\n");
}
