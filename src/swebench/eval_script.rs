//! The eval script of an instance, as the official 5.0.2 harness runs it.
//!
//! A row carrying `eval_script` (5.x datasets) is used as given. Otherwise
//! the 4.x script is generated from the row and the spec table exactly as
//! swebench 4.1.0's `make_eval_script_list` does (test directives from
//! `test_patch`, dotted modules for django, checkout/apply of the test
//! files, the `: '>>>>> Start Test Output'` markers). Either way the 5.0.2
//! `make_test_spec` transform follows: the shebang/`set` lines are
//! re-rendered and the test command's exit status is recorded after the end
//! marker (`>>>>> Test Exit Code: N`), so grading can tell a spoofed log
//! from a passing run.

use std::sync::OnceLock;

use regex::Regex;

use super::instance::Instance;
use super::specs::{SpecError, SpecTable};
use crate::error::Retryable;

/// Marker line before the test output.
pub const START_TEST_OUTPUT: &str = ">>>>> Start Test Output";
/// Marker line after the test output.
pub const END_TEST_OUTPUT: &str = ">>>>> End Test Output";
/// Prefix of the exit-code line the 5.x harness adds.
pub const TEST_EXIT_CODE: &str = ">>>>> Test Exit Code";
/// Shell variable holding the test command's `$?`.
pub const TEST_EXIT_CODE_VAR: &str = "SWEBENCH_TEST_EXIT_CODE";
/// Repository root inside instance images.
pub const REPO_DIRECTORY: &str = "/testbed";
/// Conda environment name in official images.
pub const ENV_NAME: &str = "testbed";

const HEREDOC_DELIMITER: &str = "EOF_114329324912";
const NON_TEST_EXTS: &[&str] = &[
    ".json", ".png", "csv", ".txt", ".md", ".jpg", ".jpeg", ".pkl", ".yml", ".yaml", ".toml",
];

/// Eval-script failures.
#[derive(Debug, thiserror::Error)]
pub enum EvalScriptError {
    /// No spec row, or a bad table.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A language family whose 4.x script needs network access or custom
    /// code we do not carry.
    #[error(
        "{repo}: generating eval scripts for `{ext}` repositories is not supported; \
         use a dataset row that carries `eval_script` (SWE-bench 5.x datasets do)"
    )]
    Unsupported {
        /// `owner/name`.
        repo: String,
        /// Language family.
        ext: String,
    },
    /// The spec table row does not fit the generator.
    #[error("{0}")]
    BadSpec(String),
}

impl Retryable for EvalScriptError {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// The script to run for `instance`, byte-identical to the 5.0.2 harness's
/// `TestSpec.eval_script`.
pub fn eval_script(instance: &Instance) -> Result<String, EvalScriptError> {
    let source = match &instance.eval_script {
        Some(s) if !s.trim().is_empty() => s.clone(),
        _ => generate_4x(instance, SpecTable::global()?)?,
    };
    Ok(apply_5x_transform(&source))
}

/// The 5.0.2 `make_test_spec` transform: `parse_eval_script`, then
/// `record_test_exit_code`, rendered by `TestSpec.eval_script`.
pub fn apply_5x_transform(script: &str) -> String {
    let lines: Vec<&str> = script
        .trim()
        .split('\n')
        .filter(|l| *l != "#!/bin/bash" && *l != "set -uxo pipefail")
        .collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + 4);
    out.push("#!/bin/bash".into());
    out.push("set -uxo pipefail".into());
    let mut done = false;
    for line in lines {
        if !done && line.contains(END_TEST_OUTPUT) {
            out.push(format!("{TEST_EXIT_CODE_VAR}=$?"));
            out.push(line.to_string());
            out.push(format!("echo \"{TEST_EXIT_CODE}: ${TEST_EXIT_CODE_VAR}\""));
            done = true;
        } else {
            out.push(line.to_string());
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// The 4.x eval script (swebench 4.1.0 `make_eval_script_list`, rendered by
/// its `TestSpec.eval_script`).
pub fn generate_4x(instance: &Instance, table: &SpecTable) -> Result<String, EvalScriptError> {
    let (ext, spec) = table.get(&instance.repo, &instance.version)?;
    let lines = match ext {
        "py" => eval_lines_py(instance, spec)?,
        "js" => {
            return Err(EvalScriptError::Unsupported {
                repo: instance.repo.clone(),
                ext: ext.into(),
            });
        }
        _ => eval_lines_common(instance, spec)?,
    };
    let mut text = ["#!/bin/bash", "set -uxo pipefail"]
        .into_iter()
        .map(str::to_string)
        .chain(lines)
        .collect::<Vec<_>>()
        .join("\n");
    text.push('\n');
    Ok(text)
}

fn eval_lines_py(
    instance: &Instance,
    spec: &super::specs::Spec,
) -> Result<Vec<String>, EvalScriptError> {
    let base = &instance.base_commit;
    let test_files = modified_files(&instance.test_patch);
    let reset = format!("git checkout {base} {}", test_files.join(" "));
    let apply = format!(
        "git apply -v - <<'{HEREDOC_DELIMITER}'\n{}\n{HEREDOC_DELIMITER}",
        instance.test_patch
    );
    let test_cmd = match &spec.test_cmd {
        Some(super::specs::OneOrMany::One(s)) => s.clone(),
        _ => {
            return Err(EvalScriptError::BadSpec(format!(
                "{} {}: the spec has no single test_cmd to run",
                instance.repo, instance.version
            )));
        }
    };
    let test_command = std::iter::once(test_cmd)
        .chain(test_directives(instance))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmds = vec![
        "source /opt/miniconda3/bin/activate".to_string(),
        format!("conda activate {ENV_NAME}"),
        format!("cd {REPO_DIRECTORY}"),
    ];
    cmds.extend(spec.eval_commands.iter().cloned());
    cmds.extend([
        format!("git config --global --add safe.directory {REPO_DIRECTORY}"),
        format!("cd {REPO_DIRECTORY}"),
        "git status".into(),
        "git show".into(),
        format!("git -c core.fileMode=false diff {base}"),
        "source /opt/miniconda3/bin/activate".into(),
        format!("conda activate {ENV_NAME}"),
    ]);
    if let Some(install) = &spec.install {
        match install {
            super::specs::OneOrMany::One(s) => cmds.push(s.clone()),
            super::specs::OneOrMany::Many(_) => {
                return Err(EvalScriptError::BadSpec(format!(
                    "{} {}: a Python spec must have a single install command",
                    instance.repo, instance.version
                )));
            }
        }
    }
    cmds.extend([
        reset.clone(),
        apply,
        format!(": '{START_TEST_OUTPUT}'"),
        test_command,
        format!(": '{END_TEST_OUTPUT}'"),
        reset,
    ]);
    Ok(cmds)
}

fn eval_lines_common(
    instance: &Instance,
    spec: &super::specs::Spec,
) -> Result<Vec<String>, EvalScriptError> {
    let Some(test_cmd) = &spec.test_cmd else {
        return Err(EvalScriptError::BadSpec(format!(
            "{} {}: the spec has no test_cmd",
            instance.repo, instance.version
        )));
    };
    let test_files = modified_files(&instance.test_patch);
    let reset = if test_files.is_empty() {
        "echo \"No test files to reset\"".to_string()
    } else {
        format!(
            "git checkout {} {}",
            instance.base_commit,
            test_files.join(" ")
        )
    };
    let apply = format!(
        "git apply --verbose --reject - <<'{HEREDOC_DELIMITER}'\n{}\n{HEREDOC_DELIMITER}",
        instance.test_patch
    );
    let mut cmds = vec![
        format!("cd {REPO_DIRECTORY}"),
        format!("git config --global --add safe.directory {REPO_DIRECTORY}"),
        format!("cd {REPO_DIRECTORY}"),
        reset.clone(),
        apply,
    ];
    cmds.extend(spec.build.iter().cloned());
    cmds.push(format!(": '{START_TEST_OUTPUT}'"));
    cmds.extend(test_cmd.to_vec());
    cmds.push(format!(": '{END_TEST_OUTPUT}'"));
    cmds.push(reset);
    Ok(cmds)
}

/// Test directives from the test patch, as 4.x `get_test_directives`: the
/// `b/` paths of `diff --git` headers minus non-test files; for django,
/// dotted module names relative to `tests/`.
pub fn test_directives(instance: &Instance) -> Vec<String> {
    if instance.repo == "swe-bench/humaneval" {
        return vec!["test.py".into()];
    }
    static DIFF_GIT: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = DIFF_GIT
        .get_or_init(|| Regex::new(r"diff --git a/.* b/(.*)").ok())
        .as_ref()
    else {
        return vec![];
    };
    let directives = re
        .captures_iter(&instance.test_patch)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
        .filter(|d| !NON_TEST_EXTS.iter().any(|ext| d.ends_with(ext)));
    if instance.repo == "django/django" {
        directives
            .map(|d| {
                let d = d.strip_suffix(".py").unwrap_or(&d);
                let d = d.strip_prefix("tests/").unwrap_or(d);
                d.replace('/', ".")
            })
            .collect()
    } else {
        directives.collect()
    }
}

/// Files a patch modifies or deletes (not creates), as 4.x
/// `get_modified_files` computes them with `unidiff`: each file's source
/// path when it is not `/dev/null`, keeping those under `a/`.
pub fn modified_files(patch: &str) -> Vec<String> {
    let mut sources: Vec<String> = Vec::new();
    // Index into `sources` of the file whose headers we are reading.
    let mut current: Option<usize> = None;
    let mut lines = patch.split('\n').peekable();
    while let Some(raw) = lines.next() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(rest) = line.strip_prefix("diff --git ") {
            sources.push(git_header_source(rest));
            current = Some(sources.len() - 1);
            continue;
        }
        if line.starts_with("new file mode ") {
            if let Some(i) = current {
                sources[i] = "/dev/null".into();
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("--- ")
            && lines.peek().is_some_and(|n| n.starts_with("+++ "))
        {
            let name = rest
                .split('\t')
                .next()
                .unwrap_or(rest)
                .trim_end()
                .to_string();
            match current {
                // `---` of a file already opened by its `diff --git` header.
                Some(i) => sources[i] = name,
                None => sources.push(name),
            }
            lines.next();
            current = None;
            continue;
        }
        if let Some(header) = line.strip_prefix("@@ ") {
            current = None;
            skip_hunk(header, &mut lines);
        }
    }
    sources
        .into_iter()
        .filter(|s| s != "/dev/null")
        .filter_map(|s| s.strip_prefix("a/").map(str::to_string))
        .collect()
}

fn git_header_source(rest: &str) -> String {
    // `a/X b/Y`: split at the last " b/" so paths with spaces survive.
    match rest.rfind(" b/") {
        Some(i) => rest[..i].to_string(),
        None => rest.split(' ').next().unwrap_or(rest).to_string(),
    }
}

/// Consumes a hunk body so `--- ` lines inside it are not taken for headers.
fn skip_hunk<'a, I: Iterator<Item = &'a str>>(header: &str, lines: &mut std::iter::Peekable<I>) {
    let count = |spec: &str| -> i64 {
        let spec = &spec[1..];
        match spec.split_once(',') {
            Some((_, n)) => n.parse().unwrap_or(1),
            None => 1,
        }
    };
    let mut parts = header.split(' ');
    let (Some(src), Some(dst)) = (parts.next(), parts.next()) else {
        return;
    };
    if !src.starts_with('-') || !dst.starts_with('+') {
        return;
    }
    let (mut old, mut new) = (count(src), count(dst));
    while old > 0 || new > 0 {
        let Some(l) = lines.peek() else { return };
        match l.as_bytes().first() {
            Some(b'+') => new -= 1,
            Some(b'-') => old -= 1,
            Some(b'\\') => {}
            Some(b' ') | None => {
                old -= 1;
                new -= 1;
            }
            _ if l.is_empty() || *l == "\r" => {
                old -= 1;
                new -= 1;
            }
            _ => return,
        }
        lines.next();
    }
    // A trailing "\ No newline at end of file" belongs to the hunk.
    while lines.peek().is_some_and(|l| l.starts_with('\\')) {
        lines.next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_files_skip_new_files_and_hunk_lookalikes() {
        let patch = "diff --git a/t/test_a.py b/t/test_a.py\n--- a/t/test_a.py\n+++ b/t/test_a.py\n@@ -1,2 +1,2 @@\n---- not a header\n+++++ neither\n ctx\ndiff --git a/t/new.py b/t/new.py\nnew file mode 100644\n--- /dev/null\n+++ b/t/new.py\n@@ -0,0 +1 @@\n+x\ndiff --git a/t/gone.py b/t/gone.py\ndeleted file mode 100644\n--- a/t/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n";
        assert_eq!(modified_files(patch), vec!["t/test_a.py", "t/gone.py"]);
    }

    #[test]
    fn django_directives_are_dotted_modules() {
        let inst = Instance {
            repo: "django/django".into(),
            test_patch: "diff --git a/tests/forms_tests/test_x.py b/tests/forms_tests/test_x.py\ndiff --git a/tests/data.json b/tests/data.json\n".into(),
            ..Default::default()
        };
        assert_eq!(test_directives(&inst), vec!["forms_tests.test_x"]);
    }

    #[test]
    fn rows_with_eval_script_are_used_as_given_plus_exit_code() {
        let inst = Instance {
            eval_script: Some(
                "#!/bin/bash\nset -uxo pipefail\ncd /testbed\n: '>>>>> Start Test Output'\npytest\n: '>>>>> End Test Output'\n".into(),
            ),
            ..Default::default()
        };
        let s = eval_script(&inst).unwrap();
        assert_eq!(
            s,
            "#!/bin/bash\nset -uxo pipefail\ncd /testbed\n: '>>>>> Start Test Output'\npytest\nSWEBENCH_TEST_EXIT_CODE=$?\n: '>>>>> End Test Output'\necho \">>>>> Test Exit Code: $SWEBENCH_TEST_EXIT_CODE\"\n"
        );
    }

    #[test]
    fn unknown_versions_are_refused_with_advice() {
        let inst = Instance {
            repo: "django/django".into(),
            version: "99.9".into(),
            ..Default::default()
        };
        let msg = eval_script(&inst).unwrap_err().to_string();
        assert!(msg.contains("eval_script"), "{msg}");
    }
}
