//! The review hook: before a tool call runs, a person (`solve
//! --interactive`) sees the proposed action and accepts it, skips it,
//! gives the model a new instruction, or stops the run.
//!
//! The engine stays free of any user interface: it calls
//! [`ActionReview::review`] on the [`Reviewer`] of its
//! [`super::EngineConfig`], and the front end (the terminal prompt in
//! `src/cli/interactive.rs`, a script in tests) answers. A person's choices
//! only ever *withhold* actions or add words for the model: the gate still
//! judges every patch, the patch policy and the sandbox still apply, and a
//! command the approval policy forbids is refused whatever the answer.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use crate::model::ToolCall;
use crate::tools::ToolContext;
use crate::tools::approval::{ApprovalMode, ApprovalPolicy, Decision};

/// The trajectory's `aborted` when the person stopped the run.
pub const QUIT: &str = "stopped by the user (quit in --interactive)";

/// A tool call the model proposed, before it runs.
#[derive(Debug)]
pub struct ProposedAction<'a> {
    /// 1-based attempt number.
    pub attempt: u32,
    /// Step number within the attempt.
    pub step: u32,
    /// The call as the model made it (name and arguments).
    pub call: &'a ToolCall,
    /// The scratch copy the call works on.
    pub root: &'a Path,
    /// For `run`: what the approval policy says about the command, when it
    /// holds it back or forbids it (`None`: no rule matched, or no policy).
    pub approval: Option<Decision>,
    /// The approval mode of the run (`--approve`), when a policy applies.
    pub approval_mode: Option<ApprovalMode>,
}

/// What the person decided about a [`ProposedAction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    /// Run it (a command the approval policy holds back is approved).
    Accept,
    /// Do not run it; the model is told the user declined it.
    Skip,
    /// Do not run it; the text is given to the model as a user message
    /// before its next step.
    Instruct(String),
    /// Do not run it and stop the run: the attempt ends (`user_quit`), its
    /// patch is still judged by the gate, and no further attempt starts.
    Quit,
}

impl Review {
    /// The JSON name recorded in the trajectory (`accept`, `skip`,
    /// `instruct`, `quit`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Review::Accept => "accept",
            Review::Skip => "skip",
            Review::Instruct(_) => "instruct",
            Review::Quit => "quit",
        }
    }
}

/// Answers for proposed actions (the terminal prompt of `solve
/// --interactive`, or a script in tests).
#[async_trait]
pub trait ActionReview: Send + Sync {
    /// Decides about one proposed action; the engine waits for the answer.
    async fn review(&self, action: &ProposedAction<'_>) -> Review;
}

/// The reviewer of an [`super::EngineConfig`].
#[derive(Clone)]
pub struct Reviewer(pub Arc<dyn ActionReview>);

impl std::fmt::Debug for Reviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reviewer")
    }
}

/// The answer for one call and what the engine does with it.
#[derive(Debug)]
pub struct Said {
    /// The person's decision.
    pub review: Review,
    /// The approval policy held the command back and the person approved it.
    approved_hold: bool,
    /// The rule that held it back, for the model's message on a skip.
    held: Option<(String, String)>,
}

impl Said {
    /// Whether the call runs.
    pub fn runs(&self) -> bool {
        self.review == Review::Accept
    }

    /// What the model gets in place of the tool result when the call does
    /// not run.
    pub fn refusal(&self) -> String {
        let held = self
            .held
            .as_ref()
            .map(|(rule, reason)| format!(" (approval rule `{rule}`: {reason})"))
            .unwrap_or_default();
        match &self.review {
            Review::Accept => String::new(),
            Review::Skip => format!(
                "ERROR: not run: the user declined this action{held}. Do the task another way."
            ),
            Review::Instruct(_) => format!(
                "ERROR: not run: the user stopped this action{held} to give you a new instruction; it follows."
            ),
            Review::Quit => "ERROR: not run: the user stopped the run.".into(),
        }
    }

    /// The text the model gets in place of the tool result, when the call
    /// does not run (`None`: it runs).
    pub fn withheld(&self) -> Option<String> {
        (!self.runs()).then(|| self.refusal())
    }

    /// The trajectory's record of the answer.
    pub fn event(&self, step: u32) -> super::Event {
        super::Event::Review {
            step,
            decision: self.review.as_str().into(),
            instruction: self.instruction(),
        }
    }

    /// The end of the attempt the answer calls for ([`Review::Quit`]).
    pub fn ends_attempt(&self) -> Option<super::EndReason> {
        (self.review == Review::Quit).then_some(super::EndReason::UserQuit)
    }

    /// The user message to add before the next step, for [`Review::Instruct`].
    pub fn instruction(&self) -> Option<String> {
        match &self.review {
            Review::Instruct(t) => Some(format!("Instruction from the user: {t}")),
            _ => None,
        }
    }

    /// The tool context the call runs with: a command the person approved
    /// after the approval policy held it back is not asked about again
    /// (a forbidden one is still refused by the tool).
    pub fn context<'a>(&self, ctx: &ToolContext<'a>) -> ToolContext<'a> {
        let mut out = ctx.clone();
        if self.approved_hold
            && let Some((policy, _)) = ctx.guards.approval
        {
            out.guards.approval = Some((policy, ApprovalMode::Allow));
        }
        out
    }
}

/// Asks the reviewer, if any, about `call` (attempt `attempt`, step
/// `step`); `None` without a reviewer.
pub async fn ask(
    reviewer: Option<&Reviewer>,
    approval: Option<(&ApprovalPolicy, ApprovalMode)>,
    root: &Path,
    attempt: u32,
    step: u32,
    call: &ToolCall,
) -> Option<Said> {
    let reviewer = reviewer?;
    let decision = approval.and_then(|(policy, _)| {
        let command = call.arguments.get("command").and_then(|c| c.as_str());
        (call.name == "run")
            .then_some(command)
            .flatten()
            .map(|c| policy.evaluate(c))
            .filter(|d| *d != Decision::Allow)
    });
    let mode = approval.map(|(_, m)| m);
    let action = ProposedAction {
        attempt,
        step,
        call,
        root,
        approval: decision.clone(),
        approval_mode: mode,
    };
    let review = reviewer.0.review(&action).await;
    let held = match &decision {
        Some(Decision::NeedsApproval { rule, reason }) => Some((rule.clone(), reason.clone())),
        _ => None,
    };
    Some(Said {
        approved_hold: review == Review::Accept
            && held.is_some()
            && mode == Some(ApprovalMode::Ask),
        review,
        held,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_choice_and_the_rule() {
        let skip = Said {
            review: Review::Skip,
            approved_hold: false,
            held: Some(("git-push".into(), "pushes".into())),
        };
        assert!(!skip.runs());
        assert_eq!(
            skip.refusal(),
            "ERROR: not run: the user declined this action (approval rule `git-push`: pushes). Do the task another way."
        );
        let said = Said {
            review: Review::Instruct("use Decimal".into()),
            approved_hold: false,
            held: None,
        };
        assert_eq!(
            said.instruction().as_deref(),
            Some("Instruction from the user: use Decimal")
        );
        assert!(said.refusal().contains("new instruction"));
        assert_eq!(Review::Quit.as_str(), "quit");
    }
}
