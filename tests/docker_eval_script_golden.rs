//! Golden tests: our eval scripts against the official packages' output.
//!
//! The goldens in tests/fixtures/swebench_eval_scripts/ were produced by
//! `generate.py` there (swebench 4.1.0's generator + the 5.0.2 transform):
//! full scripts for two rows per Lite repo, and the sha256 of the script for
//! every one of the 300 Lite rows. No Docker needed.

use std::path::{Path, PathBuf};

use airgate::swebench::dataset::load_dataset;
use airgate::swebench::eval_script::eval_script;
use sha2::{Digest, Sha256};

use crate::common::{self, root};

fn lite() -> PathBuf {
    let p = root().join("../shared/swebench/swebench_lite_test.jsonl");
    assert!(
        p.is_file(),
        "SWE-bench Lite rows are required at {} (the shared data folder)",
        p.display()
    );
    p
}

fn goldens() -> PathBuf {
    root().join("tests/fixtures/swebench_eval_scripts")
}

#[test]
fn every_lite_row_matches_the_official_script_hash() {
    let ds = load_dataset(&lite()).unwrap();
    assert!(ds.skipped.is_empty(), "{:?}", ds.skipped);
    let sums: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(goldens().join("sha256.json")).unwrap())
            .unwrap();
    assert_eq!(sums.len(), 300);
    let mut mismatched = Vec::new();
    for inst in &ds.instances {
        let ours = eval_script(inst).unwrap();
        let sum = hex::encode(Sha256::digest(ours.as_bytes()));
        let want = sums[&inst.instance_id].as_str().unwrap();
        if sum != want {
            mismatched.push(inst.instance_id.clone());
        }
    }
    assert!(mismatched.is_empty(), "scripts differ for {mismatched:?}");
}

#[test]
fn cli_prints_the_official_script_byte_for_byte() {
    let mut checked = 0;
    for entry in std::fs::read_dir(goldens()).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(id) = name.strip_suffix(".eval.sh") else {
            continue;
        };
        let out = common::airgate()
            .args(["swebench", "eval-script", "--dataset"])
            .arg(lite())
            .args(["--instance", id])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = std::fs::read(&path).unwrap();
        if out.stdout != want {
            let ours = String::from_utf8_lossy(&out.stdout);
            let theirs = String::from_utf8_lossy(&want);
            let first = ours
                .lines()
                .zip(theirs.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{id}: differs from the official script at line {}:\n ours: {:?}\n them: {:?}",
                first + 1,
                ours.lines().nth(first),
                theirs.lines().nth(first)
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 24, "expected two goldens per Lite repo");
}

#[test]
fn django_rows_use_dotted_test_modules_and_exit_code_lines() {
    let script = std::fs::read_to_string(goldens().join("django__django-15202.eval.sh")).unwrap();
    assert!(script.contains(
        "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1 forms_tests.field_tests.test_urlfield\nSWEBENCH_TEST_EXIT_CODE=$?\n: '>>>>> End Test Output'\necho \">>>>> Test Exit Code: $SWEBENCH_TEST_EXIT_CODE\"\n"
    ));
}

#[test]
fn unknown_instance_is_a_usage_error() {
    let out = common::airgate()
        .args(["swebench", "eval-script", "--dataset"])
        .arg(Path::new(&lite()))
        .args(["--instance", "nope__nope-1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope__nope-1"));
}

#[test]
fn rows_with_eval_script_run_it_as_given() {
    let ds = load_dataset(&root().join("datasets/airgate-mini.jsonl")).unwrap();
    let inst = ds.get("airgate__mini-1").unwrap();
    let script = eval_script(inst).unwrap();
    let given = inst.eval_script.as_deref().unwrap();
    // Same commands, plus the 5.x exit-code lines around the end marker.
    assert!(script.contains("python3 -m pytest -rA -p no:cacheprovider tests/test_clamp.py\nSWEBENCH_TEST_EXIT_CODE=$?\n"));
    assert_eq!(
        script.replace("SWEBENCH_TEST_EXIT_CODE=$?\n", "").replace(
            "echo \">>>>> Test Exit Code: $SWEBENCH_TEST_EXIT_CODE\"\n",
            ""
        ),
        given
    );
}
