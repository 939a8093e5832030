//! Prompts. The system prompt lives in `configs/prompts/system.md`; it is
//! compiled in so the binary works from any directory, and can be replaced
//! at run time with `AIRGATE_SYSTEM_PROMPT=FILE`.

use crate::gate::GateRun;

/// The default system prompt (from `configs/prompts/system.md`).
pub const DEFAULT_SYSTEM_PROMPT: &str = include_str!("../../configs/prompts/system.md");

/// The system prompt in force: the override file if set and readable.
pub fn system_prompt() -> String {
    std::env::var_os("AIRGATE_SYSTEM_PROMPT")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_else(|| DEFAULT_SYSTEM_PROMPT.to_string())
}

/// The first user message of an attempt.
pub fn task_message(
    task: &str,
    test_cmd: &str,
    failure: &GateRun,
    previous: Option<(&str, &GateRun)>,
    masked: &[String],
) -> String {
    let mut s = format!(
        "<task>\n{}\n</task>\n\nThe test command is `{}`. It currently fails (exit code {}):\n<test_output>\n{}\n</test_output>\n",
        task.trim(),
        test_cmd,
        exit_label(failure),
        failure.output.trim_end()
    );
    if let Some((diff, run)) = previous {
        s.push_str(&format!(
            "\nA previous attempt was rejected by the tests; the repository has been reset to its original state.\nThat attempt's change was:\n<previous_patch>\n{}\n</previous_patch>\nand the tests then failed (exit code {}) with:\n<previous_failure>\n{}\n</previous_failure>\nTry a different approach.\n",
            if diff.trim().is_empty() { "(no change)" } else { diff.trim_end() },
            exit_label(run),
            run.output.trim_end()
        ));
    }
    if !masked.is_empty() {
        s.push_str(&format!(
            "\nThese files look like secrets and are masked: they exist in the user's repository but not in your copy, you cannot read them, and a patch may not change them: {}\n",
            masked.join(", ")
        ));
    }
    s.push_str("\nStart by exploring the repository.");
    s
}

fn exit_label(run: &GateRun) -> String {
    match (run.timed_out, run.exit_code) {
        (true, _) => "timeout".into(),
        (false, Some(c)) => c.to_string(),
        (false, None) => "killed".into(),
    }
}
