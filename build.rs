//! Records the git commit airgate is built from (`AIRGATE_GIT_COMMIT`), so
//! every corpus row can say which build produced it. Outside a git checkout
//! (a source tarball) the commit is left unset and reads as `unknown`.
use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=AIRGATE_GIT_COMMIT");
    if let Ok(c) = std::env::var("AIRGATE_GIT_COMMIT") {
        println!("cargo:rustc-env=AIRGATE_GIT_COMMIT={c}");
        return;
    }
    let Some(commit) = git(&["rev-parse", "HEAD"]) else {
        return;
    };
    // Rebuild when HEAD moves: the HEAD file (a branch switch) and the ref
    // it points at (a commit on the branch), also in a worktree.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!(
            "cargo:rerun-if-changed={}",
            Path::new(&dir).join("HEAD").display()
        );
    }
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
    {
        let loose = Path::new(&common).join(&r);
        if loose.exists() {
            println!("cargo:rerun-if-changed={}", loose.display());
        }
        // Only when it exists: cargo treats a missing watched file as
        // changed, so watching an absent packed-refs rebuilt the crate on
        // every cargo call. A ref moving from loose to packed removes the
        // loose file, which is watched, so that still triggers a rebuild.
        let packed = Path::new(&common).join("packed-refs");
        if packed.exists() {
            println!("cargo:rerun-if-changed={}", packed.display());
        }
    }
    println!("cargo:rustc-env=AIRGATE_GIT_COMMIT={commit}");
}
