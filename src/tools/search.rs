//! `search`. (Being implemented by the tools work.)
use super::{ToolContext, ToolOutcome};
use serde_json::{Map, Value};
/// Regex search across the repo.
pub fn search(_ctx: &ToolContext<'_>, _args: &Map<String, Value>) -> ToolOutcome {
    ToolOutcome::err("search: not implemented")
}
