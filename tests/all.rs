//! The one integration-test binary. Every `tests/NAME.rs` is a module of it
//! (test names are `NAME::test`), and `tests/common/` holds what they share:
//! running the airgate binary, fixture git repos, scripted models, mock model
//! servers, Docker helpers. One binary means the crate links once for the
//! whole suite instead of once per file (`Cargo.toml` sets `autotests =
//! false` and names this file; [`every_test_file_is_a_module`] keeps a new
//! `tests/*.rs` from being silently left out).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: a panic is a failed test

#[macro_use]
mod common;

mod cheats_e2e;
mod corpus_splits;
mod docker_config;
mod docker_eval;
mod docker_eval_script_golden;
mod docker_hardening;
mod docker_images;
mod docker_sandbox;
mod docker_solve;
mod docker_validate;
mod engine_loop;
mod escape_e2e;
mod factory_e2e;
mod gate_hygiene;
mod images_build;
mod interactive_tmux;
mod mcp_e2e;
mod model_backends;
mod model_bench;
mod model_e2e;
mod model_local;
mod solve_e2e;
mod swebench_grade;
mod swebench_grade_fuzz;
mod swebench_strict;
mod tiers_e2e;
mod tools_confinement;
mod tools_dispatch;

/// With `autotests = false` Cargo builds only this file: a `tests/*.rs` not
/// declared above would never compile or run. This lists the folder and
/// fails naming any file missing from the `mod` lines (or declared but gone).
#[test]
fn every_test_file_is_a_module() {
    let tests = common::root().join("tests");
    let mut files: Vec<String> = std::fs::read_dir(&tests)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".rs").map(str::to_string))
        .filter(|n| n != "all")
        .collect();
    files.sort();
    let source = std::fs::read_to_string(tests.join("all.rs")).unwrap();
    let mut declared: Vec<String> = source
        .lines()
        .filter_map(|l| l.strip_prefix("mod ")?.strip_suffix(';'))
        .filter(|m| *m != "common")
        .map(str::to_string)
        .collect();
    declared.sort();
    assert!(
        !files.is_empty(),
        "no test files found in {}",
        tests.display()
    );
    assert_eq!(
        files, declared,
        "tests/*.rs and the `mod` lines of tests/all.rs differ"
    );
}
