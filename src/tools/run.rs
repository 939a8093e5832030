//! `run`: a shell command in the sandbox, behind the safety filter.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{ToolContext, ToolOutcome, opt_u64, req_str, safety};
use crate::sandbox::ExecRequest;

/// Runs `command` from the repo root with a timeout (`timeout_s`, default
/// the context's, capped at its maximum) and shows exit code and output.
pub async fn run(ctx: &ToolContext<'_>, args: &Map<String, Value>) -> ToolOutcome {
    let parsed = (|| -> Result<(&str, Option<u64>), String> {
        Ok((req_str(args, "command")?, opt_u64(args, "timeout_s")?))
    })();
    let (command, timeout_s) = match parsed {
        Ok(p) => p,
        Err(e) => return ToolOutcome::err(e),
    };
    if command.trim().is_empty() {
        return ToolOutcome::err("`command` is empty; give a shell command such as `pytest -q`");
    }
    if timeout_s == Some(0) {
        return ToolOutcome::err("`timeout_s` must be at least 1");
    }
    if let Err(refusal) = safety::check(command) {
        tracing::info!(rule = refusal.rule, command, "run: command refused");
        return ToolOutcome::err(refusal.to_string());
    }
    if let Some((policy, mode)) = ctx.guards.approval
        && let Err(refusal) =
            crate::sandbox::blocking(|| super::approval::gate_command(policy, mode, command))
    {
        tracing::info!(command, "run: held back by the approval policy");
        return ToolOutcome::err(refusal);
    }
    let requested = timeout_s.map_or(ctx.run_timeout, Duration::from_secs);
    let timeout = requested.min(ctx.max_run_timeout);
    let mut note = String::new();
    if requested > ctx.max_run_timeout {
        note = format!(
            "[note: timeout_s capped at the maximum of {} s]\n",
            ctx.max_run_timeout.as_secs()
        );
    }
    let mut req = ExecRequest::new(command, timeout);
    req.env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
    match ctx.sandbox.exec(&req).await {
        Ok(out) => {
            let mut text = note;
            if out.timed_out {
                text.push_str(&format!(
                    "Timed out after {} s and was killed (a timeout is a failure). Run a \
                     narrower command (one test file or test), or pass a larger timeout_s \
                     (at most {} s).\n",
                    timeout.as_secs(),
                    ctx.max_run_timeout.as_secs()
                ));
            } else {
                match out.exit_code {
                    Some(c) => text.push_str(&format!("exit code: {c}\n")),
                    None => text.push_str("exit code: none (killed by a signal)\n"),
                }
            }
            if out.dropped_bytes > 0 {
                text.push_str(&format!(
                    "[note: {} bytes of output were dropped from the middle]\n",
                    out.dropped_bytes
                ));
            }
            if out.output.trim().is_empty() {
                text.push_str("(no output)\n");
            } else {
                text.push_str(&out.output);
                if !out.output.ends_with('\n') {
                    text.push('\n');
                }
            }
            // A failing command is information for the model, not a tool error.
            ToolOutcome::ok(text)
        }
        Err(e) => ToolOutcome::err(format!(
            "the command could not be started: {e}. Check the command, or try again."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::local::LocalSandbox;
    use serde_json::json;

    fn ctx(sb: &LocalSandbox, max: u64) -> ToolContext<'_> {
        ToolContext {
            mcp: None,
            sandbox: sb,
            guards: Default::default(),
            output_limit: 10_000,
            run_timeout: Duration::from_secs(20),
            max_run_timeout: Duration::from_secs(max),
        }
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[tokio::test]
    async fn shows_exit_code_and_output() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("f.txt"), "hello\n").expect("write");
        let sb = LocalSandbox::new(d.path());
        let out = run(
            &ctx(&sb, 60),
            &args(json!({"command": "cat f.txt; exit 3"})),
        )
        .await;
        assert!(!out.is_error);
        assert_eq!(out.text, "exit code: 3\nhello\n");
        let out = run(&ctx(&sb, 60), &args(json!({"command": "true"}))).await;
        assert_eq!(out.text, "exit code: 0\n(no output)\n");
    }

    #[tokio::test]
    async fn sets_pythondontwritebytecode() {
        let d = tempfile::tempdir().expect("tempdir");
        let sb = LocalSandbox::new(d.path());
        let out = run(
            &ctx(&sb, 60),
            &args(json!({"command": "echo \"pdwb=$PYTHONDONTWRITEBYTECODE\""})),
        )
        .await;
        assert!(out.text.contains("pdwb=1"), "{}", out.text);
    }

    #[tokio::test]
    async fn refuses_dangerous_commands_without_running_them() {
        let d = tempfile::tempdir().expect("tempdir");
        let sb = LocalSandbox::new(d.path());
        let out = run(
            &ctx(&sb, 60),
            &args(json!({"command": "touch ran.txt && sudo ls"})),
        )
        .await;
        assert!(out.is_error);
        assert!(out.text.contains("safety filter"), "{}", out.text);
        assert!(!d.path().join("ran.txt").exists(), "nothing may run");
    }

    #[tokio::test]
    async fn timeout_is_capped_and_reported() {
        let d = tempfile::tempdir().expect("tempdir");
        let sb = LocalSandbox::new(d.path());
        let out = run(
            &ctx(&sb, 1),
            &args(json!({"command": "echo start; sleep 30", "timeout_s": 100})),
        )
        .await;
        assert!(
            out.text.contains("capped at the maximum of 1 s"),
            "{}",
            out.text
        );
        assert!(out.text.contains("Timed out after 1 s"), "{}", out.text);
        assert!(out.text.contains("start"), "{}", out.text);
    }

    #[tokio::test]
    async fn bad_arguments() {
        let d = tempfile::tempdir().expect("tempdir");
        let sb = LocalSandbox::new(d.path());
        let c = ctx(&sb, 60);
        assert!(
            run(&c, &args(json!({})))
                .await
                .text
                .contains("missing required argument")
        );
        assert!(
            run(&c, &args(json!({"command": "  "})))
                .await
                .text
                .contains("empty")
        );
        assert!(
            run(&c, &args(json!({"command": "ls", "timeout_s": 0})))
                .await
                .is_error
        );
        assert!(
            run(&c, &args(json!({"command": "ls", "timeout_s": "x"})))
                .await
                .is_error
        );
    }
}
