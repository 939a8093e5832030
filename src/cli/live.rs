//! Live progress on stderr for `solve`, `tiers run` and `factory run`: on a
//! terminal an indicatif line (attempt, step, tool, elapsed, tokens) with
//! one kept line per step and gate run; without one, a plain line per step
//! (`attempt 1 step 3: read_file accounts.py (0.2 s)`) and per gate run,
//! plus a `still waiting` line whenever the model is silent for
//! [`HEARTBEAT`]. Runs of many episodes get, on a terminal, one spinner
//! line per episode in flight under the run's own bar (and a kept line per
//! gate run); without one, the plain lines prefixed with the episode's
//! label. stdout is never written (`--json` stays one object).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::engine::{Live, Observer};

/// Longest silence without a terminal before a `still waiting` line.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// The live display of `solve`; `None` with `-q`.
pub fn observer(quiet: bool) -> Option<Observer> {
    if quiet {
        return None;
    }
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    Some(if tty {
        terminal(false)
    } else {
        plain(false, None)
    })
}

/// The live display of `solve --interactive`: plain lines even on a
/// terminal (a spinner would redraw over the question), and no `still
/// waiting` line while `asking` is set (the person is being asked, not the
/// model). `None` with `-q`; the questions are shown either way.
pub fn interactive_observer(quiet: bool, asking: Arc<AtomicBool>) -> Option<Observer> {
    (!quiet).then(|| plain(false, Some(asking)))
}

/// The live display of commands that run several episodes at once
/// (`tiers run`, `factory run`), and the [`MultiProgress`] their own run
/// bar must join (on a terminal). Without a terminal: plain lines
/// prefixed with the episode's label. On a terminal: one spinner line per
/// episode in flight (attempt, step, tool and argument, tokens), retired
/// at [`Live::EpisodeEnd`], and a kept line per gate run. `None` with `-q`.
pub fn episodes_observer(quiet: bool) -> (Option<Observer>, Option<MultiProgress>) {
    if quiet {
        return (None, None);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return (Some(plain(true, None)), None);
    }
    let multi = MultiProgress::new();
    (Some(episode_bars(multi.clone())), Some(multi))
}

/// What an episode's spinner line says for `ev` (`None`: unchanged).
pub fn episode_status(ev: &Live) -> Option<String> {
    Some(match ev {
        Live::Step {
            attempt,
            step,
            tool,
            arg,
            error,
            refused,
            tokens,
            ..
        } => {
            let mark = if *refused {
                " REFUSED"
            } else if *error {
                " error"
            } else {
                ""
            };
            let arg = if arg.is_empty() {
                String::new()
            } else {
                format!(" {arg}")
            };
            format!("attempt {attempt} step {step}: {tool}{arg}{mark} · {tokens} tokens")
        }
        Live::AttemptEnd { .. } => line(ev)?,
        other => waiting(other)?,
    })
}

fn episode_bars(multi: MultiProgress) -> Observer {
    let style = ProgressStyle::with_template("  {spinner} {prefix}: {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bars: Mutex<std::collections::HashMap<String, ProgressBar>> = Mutex::default();
    Observer(Arc::new(move |label: &str, ev: &Live| {
        let Ok(mut bars) = bars.lock() else { return };
        if let Live::EpisodeEnd { .. } = ev {
            if let Some(bar) = bars.remove(label) {
                bar.finish_and_clear();
                multi.remove(&bar);
            }
            return;
        }
        let bar = bars.entry(label.to_string()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(style.clone());
            bar.set_prefix(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        if let Some(msg) = episode_status(ev) {
            bar.set_message(msg);
        }
        if matches!(ev, Live::Gate { .. })
            && let Some(l) = line(ev)
        {
            let _ = multi.println(format!("{label}: {l}"));
        }
    }))
}

fn prefix(labelled: bool, label: &str) -> String {
    if !labelled || label.is_empty() {
        return String::new();
    }
    format!("{label}: ")
}

/// The kept line for an event (`None` for events that only move the
/// spinner).
pub fn line(ev: &Live) -> Option<String> {
    Some(match ev {
        Live::BaselineStart => "baseline: running the tests".into(),
        Live::Baseline { passed, wall_ms } => format!(
            "baseline: tests {} ({:.1} s)",
            if *passed { "pass" } else { "fail" },
            *wall_ms as f64 / 1000.0
        ),
        Live::AttemptStart { attempt, model } => format!("attempt {attempt}: {model}"),
        Live::Thinking { .. } | Live::GateStart { .. } => return None,
        Live::Step {
            attempt,
            step,
            tool,
            arg,
            tool_ms,
            refused,
            error,
            tokens,
            elapsed,
        } => {
            let mark = if *refused {
                " REFUSED"
            } else if *error {
                " error"
            } else {
                ""
            };
            let arg = if arg.is_empty() {
                String::new()
            } else {
                format!(" {arg}")
            };
            format!(
                "attempt {attempt} step {step}: {tool}{arg} ({:.1} s){mark} [{} s, {tokens} tokens]",
                *tool_ms as f64 / 1000.0,
                elapsed.as_secs()
            )
        }
        Live::Gate {
            attempt,
            passed,
            wall_ms,
        } => format!(
            "attempt {attempt} gate: tests {} ({:.1} s)",
            if *passed { "pass" } else { "fail" },
            *wall_ms as f64 / 1000.0
        ),
        Live::AttemptEnd { attempt, ended } => {
            format!("attempt {attempt} ended: {}", ended.as_str())
        }
        Live::EpisodeEnd { outcome } => format!(
            "episode ended: {}",
            outcome.map_or("failed (see the run's summary)", |o| o.as_str())
        ),
    })
}

/// What the display is waiting on, for the spinner and the heartbeat.
fn waiting(ev: &Live) -> Option<String> {
    match ev {
        Live::BaselineStart => Some("baseline tests running".into()),
        Live::Thinking { attempt, step } => Some(format!(
            "attempt {attempt} step {step}: waiting for the model"
        )),
        Live::GateStart { attempt } => Some(format!("attempt {attempt} gate: tests running")),
        _ => None,
    }
}

struct PlainState {
    last: Instant,
    waiting: Option<(String, Instant)>,
}

fn plain(labelled: bool, paused: Option<Arc<AtomicBool>>) -> Observer {
    let state = Arc::new(Mutex::new(PlainState {
        last: Instant::now(),
        waiting: None,
    }));
    // The heartbeat ends with the last observer (a weak reference).
    let weak = Arc::downgrade(&state);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let Some(st) = weak.upgrade() else { return };
            let Ok(mut g) = st.lock() else { return };
            if paused.as_ref().is_some_and(|p| p.load(Ordering::SeqCst)) {
                g.last = Instant::now();
                continue;
            }
            if g.last.elapsed() < HEARTBEAT {
                continue;
            }
            if let Some((what, since)) = &g.waiting {
                let _ = writeln!(
                    std::io::stderr(),
                    "{what} ({} s)",
                    since.elapsed().as_secs()
                );
                g.last = Instant::now();
            }
        }
    });
    Observer(Arc::new(move |label: &str, ev: &Live| {
        let Ok(mut g) = state.lock() else { return };
        let p = prefix(labelled, label);
        if let Some(w) = waiting(ev) {
            g.waiting = Some((format!("{p}{w}"), Instant::now()));
        }
        if let Some(l) = line(ev) {
            g.waiting = None;
            let _ = writeln!(std::io::stderr(), "{p}{l}");
            g.last = Instant::now();
        }
    }))
}

fn terminal(labelled: bool) -> Observer {
    let bar = ProgressBar::new_spinner().with_finish(indicatif::ProgressFinish::AndClear);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed}] {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let tokens = Arc::new(Mutex::new(0u64));
    Observer(Arc::new(move |label: &str, ev: &Live| {
        let p = prefix(labelled, label);
        if let Live::Step { tokens: t, .. } = ev
            && let Ok(mut g) = tokens.lock()
        {
            *g = *t;
        }
        let spent = tokens.lock().map(|g| *g).unwrap_or(0);
        if let Some(w) = waiting(ev) {
            bar.set_message(format!("{}{w} · {spent} tokens", p));
        }
        if let Some(l) = line(ev) {
            bar.println(format!("{}{l}", p));
        }
        if matches!(ev, Live::AttemptEnd { .. }) {
            bar.set_message(format!("{}judging · {spent} tokens", p));
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EndReason;

    #[test]
    fn step_line_names_attempt_step_tool_and_time() {
        let l = line(&Live::Step {
            attempt: 1,
            step: 3,
            tool: "read_file".into(),
            arg: "accounts.py".into(),
            tool_ms: 200,
            error: false,
            refused: false,
            tokens: 1234,
            elapsed: Duration::from_secs(35),
        })
        .unwrap();
        assert_eq!(
            l,
            "attempt 1 step 3: read_file accounts.py (0.2 s) [35 s, 1234 tokens]"
        );
        let end = line(&Live::AttemptEnd {
            attempt: 2,
            ended: EndReason::Stuck,
        })
        .unwrap();
        assert_eq!(end, "attempt 2 ended: stuck");
        assert!(
            line(&Live::Thinking {
                attempt: 1,
                step: 1
            })
            .is_none()
        );
    }

    #[test]
    fn an_episode_line_names_the_step_and_the_end() {
        let step = Live::Step {
            attempt: 2,
            step: 1,
            tool: "run".into(),
            arg: "pytest -q".into(),
            tool_ms: 10,
            error: false,
            refused: true,
            tokens: 99,
            elapsed: Duration::from_secs(1),
        };
        assert_eq!(
            episode_status(&step).unwrap(),
            "attempt 2 step 1: run pytest -q REFUSED · 99 tokens"
        );
        assert_eq!(
            line(&Live::EpisodeEnd {
                outcome: Some(crate::engine::Outcome::Verified)
            })
            .unwrap(),
            "episode ended: verified"
        );
        assert_eq!(
            prefix(true, "easy/x s0 [reference]"),
            "easy/x s0 [reference]: "
        );
        assert_eq!(prefix(false, "easy/x"), "");
    }
}
