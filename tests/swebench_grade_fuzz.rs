//! Property test: arbitrary bytes into every parser (5.x and legacy) and
//! into the grader never panic, and the grader's verdict is self-consistent.

use airgate::swebench::grading::{self, ResolvedStatus};
use airgate::swebench::instance::Instance;
use airgate::swebench::parsers::{REGISTRY, python::legacy_parser};
use proptest::prelude::*;

fn status_heavy() -> impl Strategy<Value = Vec<u8>> {
    // Bytes biased towards the tokens the parsers look for.
    let tokens = prop::sample::select(vec![
        "PASSED ",
        "FAILED ",
        "SKIPPED ",
        "ERROR ",
        "XFAIL ",
        " - ",
        "\n",
        "\r",
        "\x1c",
        "[",
        "]",
        " ... ok",
        " ... FAIL",
        "FAIL:",
        "ERROR:",
        "ok",
        "test_",
        " E",
        " F",
        "--- PASS: ",
        " (0.1s)",
        "test a ... ok",
        "✓ ",
        "✕ ",
        "○ ",
        "[PASSED] ",
        "\x1b[32m",
        ".py:",
        ">>>>> Start Test Output\n",
        ">>>>> End Test Output\n",
        ">>>>> Test Exit Code: 1\n",
        "applied patch",
        "t.py::a",
        "t.py::a[x",
        "12 specs, 0 failures",
        "\u{a0}",
        "\u{2028}",
    ]);
    prop::collection::vec(
        prop_oneof![
            tokens.prop_map(|t| t.as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 0..8),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsers_never_panic(bytes in status_heavy()) {
        let text = String::from_utf8_lossy(&bytes);
        for (name, parser) in REGISTRY {
            let _ = parser(&text);
            if let Some(legacy) = legacy_parser(name) {
                let _ = legacy(&text);
            }
        }
    }

    #[test]
    fn grade_never_panics_and_is_consistent(
        bytes in status_heavy(),
        parser in prop::sample::select(REGISTRY.iter().map(|(n, _)| *n).collect::<Vec<_>>()),
        fail_only in any::<bool>(),
    ) {
        let inst = Instance {
            repo: "any/repo".into(),
            instance_id: "any__repo-1".into(),
            fail_to_pass: vec!["t.py::a".into(), "t.py::a[x".into()],
            pass_to_pass: vec!["test_a".into()],
            log_parser: Some(parser.into()),
            eval_type: Some(if fail_only { "fail_only" } else { "pass_and_fail" }.into()),
            ..Default::default()
        };
        let g = grading::grade_bytes(&inst, &bytes);
        prop_assert!(g.error.is_none());
        prop_assert_eq!(g.resolved, g.resolution == ResolvedStatus::Full);
        if !g.patch_applied {
            prop_assert!(!g.resolved);
        }
    }
}
