//! The approval policy: which `run` commands need a human's yes
//! (`--approve ask|deny|allow`), in the spirit of codex's exec-policy prefix
//! rules.
//!
//! Rules live in TOML (`configs/approval.toml`, from the installation or an
//! explicit path, never the current directory). Each rule has an id, a
//! match, a decision (`prompt` or `forbid`), a reason, and examples that must
//! and must not match; the examples are checked every time a policy is
//! loaded, so a rule and its documentation cannot drift apart.
//!
//! A command is split like a shell would split it into simple commands
//! (`&&`, `||`, `;`, `|`, `$(...)`, backticks, `bash -c '...'` and `eval`
//! recursively, `find -exec`), each unwrapped from `VAR=1`, `env`, `sudo`,
//! `xargs`, `nice`, `timeout` and similar wrappers, and matched on its
//! argument vector. The most severe decision of any simple command wins.
//!
//! This is UX, not the boundary. A model can always spell a command so that
//! no rule sees it (`x=push; git $x`, a script file, `python3 -c`). The
//! boundary is the sandbox (bubblewrap locally, a hardened container in
//! Docker): no network, no writes outside the workspace. The policy only
//! makes sure that an honest agent's risky step is shown to the user first.

use std::io::{BufRead, Write};
use std::path::Path;

use globset::{Glob, GlobMatcher};
use regex::Regex;
use serde::Deserialize;

/// What the policy says about one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No rule matched.
    Allow,
    /// A `prompt` rule matched: run only if approved.
    NeedsApproval {
        /// The rule's id.
        rule: String,
        /// Why it needs approval.
        reason: String,
    },
    /// A `forbid` rule matched: never run, whatever the mode.
    Forbidden {
        /// The rule's id.
        rule: String,
        /// Why it is forbidden.
        reason: String,
    },
}

impl Decision {
    fn severity(&self) -> u8 {
        match self {
            Decision::Allow => 0,
            Decision::NeedsApproval { .. } => 1,
            Decision::Forbidden { .. } => 2,
        }
    }
}

/// How commands that need approval are handled (`--approve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalMode {
    /// Ask the user on the terminal, showing the exact command.
    Ask,
    /// Refuse them; the model is told which rule refused.
    Deny,
    /// Run them (forbidden commands still never run).
    Allow,
}

impl ApprovalMode {
    /// The mode of a run: the one asked for, else `Ask` on a terminal and
    /// `Deny` in batch runs (stdin not a TTY). `Ask` without a terminal
    /// becomes `Deny`: nobody could answer.
    pub fn resolve(mode: Option<ApprovalMode>, is_terminal: bool) -> ApprovalMode {
        match (mode, is_terminal) {
            (Some(ApprovalMode::Ask) | None, true) => ApprovalMode::Ask,
            (Some(ApprovalMode::Ask) | None, false) => ApprovalMode::Deny,
            (Some(m), _) => m,
        }
    }

    /// The flag value (`ask`, `deny`, `allow`).
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalMode::Ask => "ask",
            ApprovalMode::Deny => "deny",
            ApprovalMode::Allow => "allow",
        }
    }
}

impl std::str::FromStr for ApprovalMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ask" => Ok(ApprovalMode::Ask),
            "deny" => Ok(ApprovalMode::Deny),
            "allow" => Ok(ApprovalMode::Allow),
            other => Err(format!(
                "--approve must be ask, deny or allow, not `{other}`"
            )),
        }
    }
}

/// A policy that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The file could not be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The TOML does not parse.
    #[error("approval policy {origin}: {message}")]
    Parse {
        /// Where the policy came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A rule is malformed.
    #[error("approval policy {origin}, rule `{rule}`: {message}")]
    Rule {
        /// Where the policy came from.
        origin: String,
        /// The rule's id.
        rule: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A rule's example does not behave as written next to it.
    #[error(
        "approval policy {origin}, rule `{rule}`: the example `{example}` should {}match but does {}; fix the rule or the example",
        if *should_match { "" } else { "not " },
        if *should_match { "not" } else { "" }
    )]
    Example {
        /// Where the policy came from.
        origin: String,
        /// The rule's id.
        rule: String,
        /// The example command.
        example: String,
        /// What the file says it should do.
        should_match: bool,
    },
}

impl crate::error::Retryable for ApprovalError {
    fn is_retryable(&self) -> bool {
        false
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    rule: Vec<RuleFile>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RuleDecision {
    Prompt,
    Forbid,
}

/// A pattern word: one literal or glob, or a list of alternatives.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TokenFile {
    One(String),
    Any(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    decision: RuleDecision,
    reason: String,
    #[serde(default)]
    prefix: Option<Vec<TokenFile>>,
    #[serde(default)]
    prefixes: Vec<Vec<TokenFile>>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    with_flag: Vec<String>,
    #[serde(default)]
    unless_operands_inside: Vec<String>,
    #[serde(default)]
    examples_match: Vec<String>,
    #[serde(default)]
    examples_not_match: Vec<String>,
}

/// One word of a prefix pattern: any of these literals or globs.
#[derive(Debug)]
struct Token {
    literals: Vec<String>,
    globs: Vec<GlobMatcher>,
}

impl Token {
    fn matches(&self, word: &str) -> bool {
        self.literals.iter().any(|l| l == word) || self.globs.iter().any(|g| g.is_match(word))
    }
}

#[derive(Debug)]
struct Rule {
    id: String,
    decision: RuleDecision,
    reason: String,
    prefixes: Vec<Vec<Token>>,
    regex: Option<Regex>,
    with_flag: Vec<String>,
    unless_operands_inside: Vec<String>,
}

/// A loaded approval policy.
#[derive(Debug)]
pub struct ApprovalPolicy {
    rules: Vec<Rule>,
    origin: String,
}

impl ApprovalPolicy {
    /// The installation's policy: `explicit` if given, else
    /// `$AIRGATE_CONFIG_DIR/approval.toml`, else the built-in copy of
    /// `configs/approval.toml`. Every rule's examples are checked.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ApprovalError> {
        let loaded = crate::config::load(
            "approval.toml",
            explicit,
            include_str!("../../configs/approval.toml"),
        )?;
        Self::from_toml(&loaded.text, &loaded.origin)
    }

    /// Parses a policy and checks its examples; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ApprovalError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| ApprovalError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        let mut rules = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in &file.rule {
            let bad = |message: String| ApprovalError::Rule {
                origin: origin.to_string(),
                rule: r.id.clone(),
                message,
            };
            if r.id.trim().is_empty() || !seen.insert(r.id.clone()) {
                return Err(bad("ids must be present and unique".into()));
            }
            rules.push(compile(r).map_err(bad)?);
        }
        let policy = Self {
            rules,
            origin: origin.to_string(),
        };
        for (rule, r) in policy.rules.iter().zip(&file.rule) {
            let cases = r
                .examples_match
                .iter()
                .map(|e| (e, true))
                .chain(r.examples_not_match.iter().map(|e| (e, false)));
            for (example, should_match) in cases {
                let hit = policy.rule_matches(rule, example);
                if hit != should_match {
                    return Err(ApprovalError::Example {
                        origin: origin.to_string(),
                        rule: rule.id.clone(),
                        example: example.clone(),
                        should_match,
                    });
                }
            }
        }
        Ok(policy)
    }

    /// Where the policy came from (a path, or `built-in configs/approval.toml`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The ids of the rules, in file order.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// What the policy says about `command`: the most severe decision of
    /// any rule on any simple command in it (a command nested too deeply to
    /// look into needs approval).
    pub fn evaluate(&self, command: &str) -> Decision {
        let commands = match simple_commands(command) {
            Ok(c) => c,
            Err(TooDeep) => {
                return Decision::NeedsApproval {
                    rule: "too-nested".into(),
                    reason: "the command nests shells or substitutions too deeply to check".into(),
                };
            }
        };
        let mut best = Decision::Allow;
        for cmd in &commands {
            for rule in &self.rules {
                if rule_hits(rule, cmd) {
                    let d = match rule.decision {
                        RuleDecision::Prompt => Decision::NeedsApproval {
                            rule: rule.id.clone(),
                            reason: rule.reason.clone(),
                        },
                        RuleDecision::Forbid => Decision::Forbidden {
                            rule: rule.id.clone(),
                            reason: rule.reason.clone(),
                        },
                    };
                    if d.severity() > best.severity() {
                        best = d;
                    }
                }
            }
        }
        best
    }

    fn rule_matches(&self, rule: &Rule, command: &str) -> bool {
        match simple_commands(command) {
            Ok(cmds) => cmds.iter().any(|cmd| rule_hits(rule, cmd)),
            Err(TooDeep) => false,
        }
    }
}

fn compile(r: &RuleFile) -> Result<Rule, String> {
    let token = |t: &TokenFile| -> Result<Token, String> {
        let words = match t {
            TokenFile::One(w) => std::slice::from_ref(w),
            TokenFile::Any(ws) => ws.as_slice(),
        };
        if words.is_empty() || words.iter().any(|w| w.is_empty()) {
            return Err("a prefix word is empty".into());
        }
        let mut tok = Token {
            literals: vec![],
            globs: vec![],
        };
        for w in words {
            if w.contains(['*', '?', '[']) {
                let g = Glob::new(w).map_err(|e| format!("bad glob `{w}`: {e}"))?;
                tok.globs.push(g.compile_matcher());
            } else {
                tok.literals.push(w.clone());
            }
        }
        Ok(tok)
    };
    let mut prefixes = Vec::new();
    for p in r.prefix.iter().chain(&r.prefixes) {
        if p.is_empty() {
            return Err("a prefix is empty".into());
        }
        prefixes.push(p.iter().map(token).collect::<Result<Vec<_>, _>>()?);
    }
    let regex = r
        .regex
        .as_deref()
        .map(|re| Regex::new(re).map_err(|e| format!("bad regex: {e}")))
        .transpose()?;
    if prefixes.is_empty() == regex.is_none() {
        return Err("give either `prefix`/`prefixes` or `regex`".into());
    }
    if regex.is_some() && !(r.with_flag.is_empty() && r.unless_operands_inside.is_empty()) {
        return Err("`with_flag` and `unless_operands_inside` go with a prefix".into());
    }
    if r.examples_match.is_empty() {
        return Err("give at least one example in `examples_match`".into());
    }
    Ok(Rule {
        id: r.id.clone(),
        decision: r.decision,
        reason: r.reason.clone(),
        prefixes,
        regex,
        with_flag: r.with_flag.clone(),
        unless_operands_inside: r.unless_operands_inside.clone(),
    })
}

/// Whether `rule` matches one simple command's argument vector.
fn rule_hits(rule: &Rule, cmd: &Simple) -> bool {
    let argv = &cmd.argv;
    if argv.is_empty() {
        return false;
    }
    if let Some(re) = &rule.regex {
        return re.is_match(&cmd.raw.join(" "));
    }
    rule.prefixes.iter().any(|p| {
        let Some(rest) = match_prefix(p, argv) else {
            return false;
        };
        if !rule.with_flag.is_empty() && !rest.iter().any(|a| has_flag(&rule.with_flag, a)) {
            return false;
        }
        if !rule.unless_operands_inside.is_empty() {
            let ops = operands(rest);
            if !ops.is_empty() && ops.iter().all(|o| inside(o, &rule.unless_operands_inside)) {
                return false;
            }
        }
        true
    })
}

/// Matches `pattern` against the start of `argv` (the program by its
/// basename), skipping options (`-x`) between pattern words; returns the
/// words after the match.
fn match_prefix<'a>(pattern: &[Token], argv: &'a [String]) -> Option<&'a [String]> {
    let mut i = 0;
    for (k, tok) in pattern.iter().enumerate() {
        if k == 0 {
            if !tok.matches(basename(argv.first()?)) {
                return None;
            }
            i = 1;
            continue;
        }
        loop {
            let w = argv.get(i)?;
            i += 1;
            if tok.matches(w) {
                break;
            }
            if !w.starts_with('-') {
                return None;
            }
        }
    }
    Some(&argv[i..])
}

/// `-r` matches `-r` and clusters like `-rf`; `--force` matches
/// `--force` and `--force=...`; anything else matches exactly.
fn has_flag(flags: &[String], arg: &str) -> bool {
    flags.iter().any(|f| {
        if arg == f {
            return true;
        }
        let short = f.len() == 2 && f.starts_with('-') && f != "--";
        if short && arg.starts_with('-') && !arg.starts_with("--") && arg.len() > 2 {
            return arg[1..].chars().all(|c| c.is_ascii_alphabetic()) && arg.contains(&f[1..]);
        }
        f.starts_with("--")
            && arg
                .strip_prefix(f.as_str())
                .is_some_and(|r| r.starts_with('='))
    })
}

/// Non-option words (everything after `--` counts).
fn operands(rest: &[String]) -> Vec<&str> {
    let mut out = Vec::new();
    let mut opts_done = false;
    for w in rest {
        if !opts_done && w == "--" {
            opts_done = true;
        } else if opts_done || !w.starts_with('-') {
            out.push(w.as_str());
        }
    }
    out
}

/// A relative path with no `..`, no expansion (`$`, `~`, backtick), and one
/// of `dirs` among its components.
fn inside(path: &str, dirs: &[String]) -> bool {
    if path.starts_with('/') || path.contains(['$', '`', '~']) || path.contains('\0') {
        return false;
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    !parts.contains(&"..") && parts.iter().any(|p| dirs.iter().any(|d| d == p))
}

fn basename(w: &str) -> &str {
    w.rsplit('/').next().unwrap_or(w)
}

/// Nested shells or substitutions beyond what is looked into.
#[derive(Debug)]
struct TooDeep;

const MAX_DEPTH: usize = 8;

const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "busybox"];

/// Words that start a compound command or negate one.
const RESERVED: &[&str] = &[
    "!", "{", "}", "(", ")", "if", "then", "elif", "else", "fi", "do", "done", "while", "until",
    "time", "coproc",
];

/// One simple command, unwrapped from wrappers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Simple {
    /// What prefix rules see (git without its global options).
    argv: Vec<String>,
    /// What regex rules see (git's `-c key=value` kept).
    raw: Vec<String>,
}

/// The simple commands of `command`, unwrapped, as argument vectors.
fn simple_commands(command: &str) -> Result<Vec<Simple>, TooDeep> {
    let mut out = Vec::new();
    collect(command, 0, &mut out)?;
    Ok(out)
}

fn collect(command: &str, depth: usize, out: &mut Vec<Simple>) -> Result<(), TooDeep> {
    if depth > MAX_DEPTH {
        return Err(TooDeep);
    }
    let lexed = lex(command);
    for body in &lexed.nested {
        collect(body, depth + 1, out)?;
    }
    for words in lexed.commands {
        let argv = unwrap(words);
        let Some(prog) = argv.first().map(|p| basename(p).to_string()) else {
            continue;
        };
        if SHELLS.contains(&prog.as_str()) {
            if let Some(script) = shell_script(&argv[1..]) {
                collect(&script, depth + 1, out)?;
            }
        } else if prog == "eval" && argv.len() > 1 {
            collect(&argv[1..].join(" "), depth + 1, out)?;
        } else if prog == "find" {
            out.extend(find_exec(&argv).into_iter().map(|argv| Simple {
                raw: argv.clone(),
                argv,
            }));
        }
        let normal = if prog == "git" {
            git_normal(argv.clone())
        } else {
            argv.clone()
        };
        out.push(Simple {
            argv: normal,
            raw: argv,
        });
    }
    Ok(())
}

/// The script of `sh -c SCRIPT` (also `-ec`, `-lc`...), if any.
fn shell_script(args: &[String]) -> Option<String> {
    let mut has_c = false;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "-o" || a == "+o" {
            i += 2;
            continue;
        }
        if a == "--" {
            i += 1;
            break;
        }
        if (a.starts_with('-') || a.starts_with('+')) && a.len() > 1 && !a.starts_with("--") {
            has_c |= a.contains('c');
            i += 1;
            continue;
        }
        if a.starts_with("--") {
            i += 1;
            continue;
        }
        break;
    }
    has_c.then(|| args.get(i).cloned()).flatten()
}

/// The commands `find ... -exec CMD ... ;` would run.
fn find_exec(argv: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        if matches!(argv[i].as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
            let start = i + 1;
            let mut end = start;
            while end < argv.len() && argv[end] != ";" && argv[end] != "+" {
                end += 1;
            }
            if end > start {
                out.push(unwrap(argv[start..end].to_vec()));
            }
            i = end;
        }
        i += 1;
    }
    out
}

/// `git` without its global options (`-C dir`, `-c k=v`, `--git-dir=...`),
/// so `git -C repo push` reads as `git push`.
fn git_normal(argv: Vec<String>) -> Vec<String> {
    let mut out = vec![argv[0].clone()];
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if matches!(
            a,
            "-C" | "-c"
                | "--git-dir"
                | "--work-tree"
                | "--namespace"
                | "--exec-path"
                | "--config-env"
        ) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    out.extend(argv.into_iter().skip(i));
    out
}

fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

/// Options (taking a value) of the wrappers that run another command.
fn wrapper_value_opts(wrapper: &str) -> Option<&'static [&'static str]> {
    Some(match wrapper {
        "env" => &["-u", "--unset", "-C", "--chdir", "-S", "--split-string"],
        "sudo" => &[
            "-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "--user", "--group",
        ],
        "doas" => &["-u", "-C"],
        "xargs" => &[
            "-a",
            "-d",
            "-E",
            "-I",
            "-L",
            "-n",
            "-P",
            "-s",
            "--arg-file",
            "--delimiter",
            "--max-args",
            "--max-procs",
            "--max-lines",
            "--replace",
        ],
        "nice" => &["-n", "--adjustment"],
        "ionice" => &["-c", "-n", "-p", "-P", "-u", "--class", "--classdata"],
        "timeout" => &["-s", "-k", "--signal", "--kill-after"],
        "stdbuf" => &["-i", "-o", "-e", "--input", "--output", "--error"],
        "exec" => &["-a"],
        "nohup" | "setsid" | "command" | "builtin" | "unbuffer" | "chronic" => &[],
        _ => return None,
    })
}

/// Drops leading assignments, reserved words and wrappers until the real
/// program comes first.
fn unwrap(mut words: Vec<String>) -> Vec<String> {
    loop {
        let Some(first) = words.first() else {
            return words;
        };
        if is_assignment(first) || RESERVED.contains(&first.as_str()) {
            words.remove(0);
            continue;
        }
        let prog = basename(first).to_string();
        let Some(value_opts) = wrapper_value_opts(&prog) else {
            return words;
        };
        let mut i = 1;
        let mut split: Option<String> = None;
        while i < words.len() {
            let w = words[i].as_str();
            if w == "--" {
                i += 1;
                break;
            }
            if prog == "command" && (w == "-v" || w == "-V") {
                return vec![]; // a lookup, not a run
            }
            if prog == "env" && is_assignment(w) {
                i += 1;
                continue;
            }
            if !w.starts_with('-') || w == "-" {
                break;
            }
            let (name, attached) = match w.split_once('=') {
                Some((n, _)) if n.starts_with("--") => (n, true),
                _ => (w, false),
            };
            if prog == "env" && (name == "-S" || name == "--split-string") {
                split = if attached {
                    w.split_once('=').map(|(_, v)| v.to_string())
                } else {
                    words.get(i + 1).cloned()
                };
            }
            i += if value_opts.contains(&name) && !attached {
                2
            } else {
                1
            };
        }
        if prog == "timeout" && i < words.len() {
            i += 1; // the duration
        }
        let rest: Vec<String> = words.split_off(i.min(words.len()));
        words = match split {
            Some(s) => lex(&s).commands.into_iter().flatten().chain(rest).collect(),
            None => rest,
        };
    }
}

#[derive(Debug, Default)]
struct Lexed {
    commands: Vec<Vec<String>>,
    /// Bodies of `$(...)`, backticks and `<(...)`/`>(...)`.
    nested: Vec<String>,
}

/// A forgiving shell lexer: never fails; an unbalanced quote runs to the
/// end. Redirections and their targets are dropped from the words; heredoc
/// bodies are skipped.
fn lex(s: &str) -> Lexed {
    let c: Vec<char> = s.chars().collect();
    let mut out = Lexed::default();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    // The next word is a redirect target (dropped) or a heredoc delimiter.
    let mut target = false;
    let mut heredoc_next = false;
    let mut heredocs: Vec<String> = Vec::new();
    let mut i = 0;

    let end_word = |word: &mut String,
                    in_word: &mut bool,
                    words: &mut Vec<String>,
                    target: &mut bool,
                    heredoc_next: &mut bool,
                    heredocs: &mut Vec<String>| {
        if !*in_word {
            return;
        }
        let w = std::mem::take(word);
        *in_word = false;
        if *heredoc_next {
            heredocs.push(w);
            *heredoc_next = false;
            *target = false;
        } else if *target {
            *target = false;
        } else {
            words.push(w);
        }
    };
    macro_rules! end {
        () => {
            end_word(
                &mut word,
                &mut in_word,
                &mut words,
                &mut target,
                &mut heredoc_next,
                &mut heredocs,
            )
        };
    }
    macro_rules! end_cmd {
        () => {{
            end!();
            if !words.is_empty() {
                out.commands.push(std::mem::take(&mut words));
            }
            target = false;
        }};
    }

    while i < c.len() {
        let ch = c[i];
        match ch {
            ' ' | '\t' | '\r' => {
                end!();
                i += 1;
            }
            '\n' => {
                end_cmd!();
                i += 1;
                // Skip heredoc bodies: lines up to each delimiter.
                for delim in std::mem::take(&mut heredocs) {
                    loop {
                        if i >= c.len() {
                            break;
                        }
                        let start = i;
                        while i < c.len() && c[i] != '\n' {
                            i += 1;
                        }
                        let line: String = c[start..i].iter().collect();
                        i += 1;
                        if line.trim_start_matches('\t') == delim {
                            break;
                        }
                    }
                }
            }
            '\\' => {
                if let Some(&n) = c.get(i + 1)
                    && n != '\n'
                {
                    word.push(n);
                    in_word = true;
                }
                i += 2;
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < c.len() && c[i] != '\'' {
                    word.push(c[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < c.len() && c[i] != '"' {
                    match c[i] {
                        '\\' if matches!(c.get(i + 1), Some('"' | '\\' | '$' | '`' | '\n')) => {
                            if c[i + 1] != '\n' {
                                word.push(c[i + 1]);
                            }
                            i += 2;
                        }
                        '$' if c.get(i + 1) == Some(&'(') => {
                            let (body, next) = balanced(&c, i + 2, '(', ')');
                            word.push_str(&format!("$({body})"));
                            if !body.starts_with('(') {
                                out.nested.push(body);
                            }
                            i = next;
                        }
                        '`' => {
                            let (body, next) = backtick(&c, i + 1);
                            word.push_str(&format!("$({body})"));
                            out.nested.push(body);
                            i = next;
                        }
                        x => {
                            word.push(x);
                            i += 1;
                        }
                    }
                }
                i += 1;
            }
            '$' if c.get(i + 1) == Some(&'(') => {
                let (body, next) = balanced(&c, i + 2, '(', ')');
                word.push_str(&format!("$({body})"));
                // `$((...))` is arithmetic, not a command.
                if !body.starts_with('(') {
                    out.nested.push(body);
                }
                in_word = true;
                i = next;
            }
            '$' if c.get(i + 1) == Some(&'{') => {
                let (body, next) = balanced(&c, i + 2, '{', '}');
                word.push_str(&format!("${{{body}}}"));
                in_word = true;
                i = next;
            }
            '`' => {
                let (body, next) = backtick(&c, i + 1);
                word.push_str(&format!("$({body})"));
                out.nested.push(body);
                in_word = true;
                i = next;
            }
            '#' if !in_word => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '<' | '>' if c.get(i + 1) == Some(&'(') => {
                let (body, next) = balanced(&c, i + 2, '(', ')');
                out.nested.push(body);
                word.push_str("/dev/fd/63");
                in_word = true;
                i = next;
            }
            '<' | '>' | '&' if ch != '&' || c.get(i + 1) == Some(&'>') => {
                // A bare fd number before the operator belongs to it.
                if in_word && !word.is_empty() && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                end!();
                let mut op = String::from(ch);
                i += 1;
                while i < c.len() && matches!(c[i], '<' | '>' | '&' | '|' | '-') {
                    op.push(c[i]);
                    i += 1;
                }
                if op.starts_with("<<") && !op.starts_with("<<<") {
                    heredoc_next = true;
                }
                // `>&2`, `2>&1`, `>&-`: the fd is part of the operator.
                if op.ends_with('&') && c.get(i).is_some_and(|d| d.is_ascii_digit()) {
                    while i < c.len() && c[i].is_ascii_digit() {
                        i += 1;
                    }
                } else if !op.ends_with('-') || op.starts_with("<<") {
                    target = true;
                }
            }
            '|' | ';' | '&' | '(' | ')' => {
                end_cmd!();
                i += 1;
            }
            _ => {
                word.push(ch);
                in_word = true;
                i += 1;
            }
        }
    }
    end!();
    if !words.is_empty() {
        out.commands.push(words);
    }
    out
}

/// Body of a group opened before `start`, and the index after its close;
/// quotes inside are respected.
fn balanced(c: &[char], start: usize, open: char, close: char) -> (String, usize) {
    let mut depth = 1;
    let mut i = start;
    let mut quote: Option<char> = None;
    while i < c.len() {
        let ch = c[i];
        match quote {
            Some(q) if ch == q => quote = None,
            Some('"') if ch == '\\' => i += 1,
            Some(_) => {}
            None => match ch {
                '\'' | '"' => quote = Some(ch),
                '\\' => i += 1,
                x if x == open => depth += 1,
                x if x == close => {
                    depth -= 1;
                    if depth == 0 {
                        return (c[start..i].iter().collect(), i + 1);
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    let start = start.min(c.len());
    (c[start..].iter().collect(), c.len())
}

fn backtick(c: &[char], start: usize) -> (String, usize) {
    let mut body = String::new();
    let mut i = start;
    while i < c.len() && c[i] != '`' {
        if c[i] == '\\' && i + 1 < c.len() {
            body.push(c[i + 1]);
            i += 2;
        } else {
            body.push(c[i]);
            i += 1;
        }
    }
    (body, i + 1)
}

/// The exact command with control characters made visible, so a command
/// cannot hide part of itself on the terminal (`\r`, escape sequences).
pub fn visible(command: &str) -> String {
    let mut out = String::new();
    for ch in command.chars() {
        match ch {
            '\n' => out.push_str("\n    "),
            '\t' => out.push('\t'),
            c if c.is_control()
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&c.escape_unicode().to_string())
            }
            c => out.push(c),
        }
    }
    out
}

/// Asks on the controlling terminal (`/dev/tty`, not stdin/stdout, which
/// may be pipes) whether `command` may run; shows the exact command and
/// the rule. `Ok(true)` only for `y` or `yes`.
pub fn ask_terminal(command: &str, rule: &str, reason: &str) -> std::io::Result<bool> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let mut reader = std::io::BufReader::new(tty.try_clone()?);
    ask(&mut reader, &mut &tty, command, rule, reason)
}

fn ask(
    input: &mut impl BufRead,
    output: &mut impl Write,
    command: &str,
    rule: &str,
    reason: &str,
) -> std::io::Result<bool> {
    write!(
        output,
        "\nairgate: the agent wants to run\n    {}\nrule `{rule}`: {reason}\nAllow this command? [y/N] ",
        visible(command)
    )?;
    output.flush()?;
    let mut line = String::new();
    input.read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// What the `run` tool calls before executing `command`: `Ok` to run it, or
/// the refusal text to return to the model (naming the rule).
pub fn gate_command(
    policy: &ApprovalPolicy,
    mode: ApprovalMode,
    command: &str,
) -> Result<(), String> {
    gate_command_with(policy, mode, command, ask_terminal)
}

/// [`gate_command`] with the question asked by `asker` (a terminal prompt
/// in production, a script in tests).
pub fn gate_command_with(
    policy: &ApprovalPolicy,
    mode: ApprovalMode,
    command: &str,
    asker: impl FnOnce(&str, &str, &str) -> std::io::Result<bool>,
) -> Result<(), String> {
    match policy.evaluate(command) {
        Decision::Allow => Ok(()),
        Decision::Forbidden { rule, reason } => Err(format!(
            "command refused by the approval policy (rule `{rule}`, forbidden): {reason}. It is \
             never run in this installation; do the task without it."
        )),
        Decision::NeedsApproval { rule, reason } => match mode {
            ApprovalMode::Allow => Ok(()),
            ApprovalMode::Deny => Err(format!(
                "command not run: it needs the user's approval (rule `{rule}`: {reason}) and \
                 this run does not ask (--approve deny). Do the task without it, or leave the \
                 step to the user and say so when you submit."
            )),
            ApprovalMode::Ask => match asker(command, &rule, &reason) {
                Ok(true) => Ok(()),
                Ok(false) => Err(format!(
                    "command not run: the user declined it (rule `{rule}`: {reason}). Do the \
                     task another way, or leave the step to the user."
                )),
                Err(e) => Err(format!(
                    "command not run: it needs the user's approval (rule `{rule}`: {reason}) \
                     and the terminal could not be asked ({e})."
                )),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> ApprovalPolicy {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/approval.toml"),
        )
        .unwrap();
        ApprovalPolicy::from_toml(&text, "configs/approval.toml").unwrap()
    }

    /// Every example written next to a shipped rule behaves as written
    /// (loading checks them; this asserts each one again, by name).
    #[test]
    fn every_shipped_example_holds() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/approval.toml"),
        )
        .unwrap();
        let file: PolicyFile = toml::from_str(&text).unwrap();
        let policy = shipped();
        assert!(file.rule.len() >= 5);
        let mut n = 0;
        for (r, rule) in file.rule.iter().zip(&policy.rules) {
            assert_eq!(r.id, rule.id);
            assert!(
                !r.examples_not_match.is_empty(),
                "{}: no counter-example",
                r.id
            );
            for e in &r.examples_match {
                assert!(policy.rule_matches(rule, e), "{}: `{e}` should match", r.id);
                assert_ne!(policy.evaluate(e), Decision::Allow, "{}: `{e}`", r.id);
                n += 1;
            }
            for e in &r.examples_not_match {
                assert!(
                    !policy.rule_matches(rule, e),
                    "{}: `{e}` should not match",
                    r.id
                );
                n += 1;
            }
        }
        assert!(n >= 60, "only {n} examples");
        // The built-in copy is the same file.
        assert_eq!(
            ApprovalPolicy::load(None)
                .unwrap()
                .rule_ids()
                .collect::<Vec<_>>(),
            policy.rule_ids().collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_wrong_example_is_a_load_error() {
        let text = r#"
            [[rule]]
            id = "git-push"
            decision = "prompt"
            reason = "pushes"
            prefix = ["git", "push"]
            examples_match = ["git push", "git status"]
            examples_not_match = []
        "#;
        let err = ApprovalPolicy::from_toml(text, "t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`git status` should match"), "{err}");
        let no_match = text.replace("\"git status\"", "\"git push -f\"");
        assert!(ApprovalPolicy::from_toml(&no_match, "t").is_ok());
        let both = no_match.replace("prefix = [", "regex = \"x\"\nprefix = [");
        assert!(ApprovalPolicy::from_toml(&both, "t").is_err());
        assert!(ApprovalPolicy::from_toml("[[rule]]\nid = 1", "t").is_err());
    }

    #[test]
    fn commands_split_like_a_shell() {
        let got = simple_commands(
            "cd a && FOO=1 sudo -u me env -i X=2 nice -n 5 timeout -s KILL 10 git -C r push \
             origin; echo \"$(rm -rf x)\" | xargs -n1 pip install `echo hi` 2>&1 >/tmp/o",
        )
        .unwrap();
        let flat: Vec<String> = got.iter().map(|a| a.argv.join(" ")).collect();
        assert_eq!(
            flat,
            [
                "rm -rf x",
                "echo hi",
                "cd a",
                "git push origin",
                "echo $(rm -rf x)",
                "pip install $(echo hi)",
            ]
        );
        let inner = simple_commands("bash -lc 'sh -c \"git push\"'").unwrap();
        assert!(inner.iter().any(|a| a.argv == ["git", "push"]), "{inner:?}");
        let heredoc = simple_commands("cat <<'EOF' > f.txt\ngit push\nEOF\nls").unwrap();
        let heredoc: Vec<_> = heredoc.into_iter().map(|a| a.argv).collect();
        assert_eq!(heredoc, [vec!["cat"], vec!["ls"]]);
        let find = simple_commands("find . -name '*.py' -exec rm -r {} \\;").unwrap();
        assert!(
            find.iter().any(|a| a.argv == ["rm", "-r", "{}"]),
            "{find:?}"
        );
        let nested = (0..12).fold("git push".to_string(), |acc, _| format!("$({acc})"));
        assert!(simple_commands(&nested).is_err());
    }

    #[test]
    fn decisions_take_the_most_severe_rule() {
        let p = shipped();
        assert_eq!(p.evaluate("pytest -q"), Decision::Allow);
        assert!(matches!(
            p.evaluate("git push origin main"),
            Decision::NeedsApproval { rule, .. } if rule == "git-push"
        ));
        assert!(matches!(
            p.evaluate("git push origin main && git push --force"),
            Decision::Forbidden { rule, .. } if rule == "git-push-force"
        ));
        assert!(matches!(
            p.evaluate(&"$(".repeat(12)),
            Decision::NeedsApproval { rule, .. } if rule == "too-nested"
        ));
    }

    #[test]
    fn modes_resolve_batch_runs_to_deny() {
        use ApprovalMode::*;
        assert_eq!(ApprovalMode::resolve(None, true), Ask);
        assert_eq!(ApprovalMode::resolve(None, false), Deny);
        assert_eq!(ApprovalMode::resolve(Some(Ask), false), Deny);
        assert_eq!(ApprovalMode::resolve(Some(Allow), false), Allow);
        assert_eq!(ApprovalMode::resolve(Some(Deny), true), Deny);
        assert_eq!("allow".parse::<ApprovalMode>(), Ok(Allow));
        assert!("yes".parse::<ApprovalMode>().is_err());
    }

    #[test]
    fn the_gate_tells_the_model_which_rule_refused() {
        let p = shipped();
        let never = |_: &str, _: &str, _: &str| -> std::io::Result<bool> { panic!("must not ask") };
        assert!(gate_command_with(&p, ApprovalMode::Deny, "pytest -q", never).is_ok());
        let err = gate_command_with(&p, ApprovalMode::Deny, "git push", never).unwrap_err();
        assert!(
            err.contains("rule `git-push`") && err.contains("--approve deny"),
            "{err}"
        );
        assert!(gate_command_with(&p, ApprovalMode::Allow, "git push", never).is_ok());
        let err = gate_command_with(&p, ApprovalMode::Allow, "git push -f", never).unwrap_err();
        assert!(err.contains("forbidden"), "{err}");
        let mut asked = String::new();
        let yes = |c: &str, r: &str, _: &str| {
            asked = format!("{c} / {r}");
            Ok(true)
        };
        assert!(gate_command_with(&p, ApprovalMode::Ask, "pip install x", yes).is_ok());
        assert_eq!(asked, "pip install x / pip-install");
        let no = |_: &str, _: &str, _: &str| Ok(false);
        let err = gate_command_with(&p, ApprovalMode::Ask, "pip install x", no).unwrap_err();
        assert!(err.contains("declined"), "{err}");
        let broken = |_: &str, _: &str, _: &str| Err(std::io::Error::other("no tty"));
        assert!(gate_command_with(&p, ApprovalMode::Ask, "git push", broken).is_err());
    }

    /// The prompt shows the exact command, and a command cannot hide part
    /// of itself with a carriage return or escape sequences.
    #[test]
    fn the_prompt_shows_the_exact_command() {
        let cmd = "echo safe\rgit push --force \u{1b}[2K";
        let mut out = Vec::new();
        let ok = ask(&mut "y\n".as_bytes(), &mut out, cmd, "git-push", "pushes").unwrap();
        assert!(ok);
        let shown = String::from_utf8(out).unwrap();
        assert!(
            shown.contains("echo safe\\u{d}git push --force \\u{1b}[2K"),
            "{shown}"
        );
        assert!(!shown.contains('\r') && !shown.contains('\u{1b}'));
        assert!(shown.contains("rule `git-push`: pushes"));
        for answer in ["\n", "n\n", "", "yes please\n"] {
            let mut sink = Vec::new();
            assert!(!ask(&mut answer.as_bytes(), &mut sink, "x", "r", "why").unwrap());
        }
    }
}
