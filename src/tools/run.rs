//! `run`. (Being implemented by the tools work.)
use super::{ToolContext, ToolOutcome};
use serde_json::{Map, Value};
/// Runs a command behind the safety filter.
pub async fn run(_ctx: &ToolContext<'_>, _args: &Map<String, Value>) -> ToolOutcome {
    ToolOutcome::err("run: not implemented")
}
