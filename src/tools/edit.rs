//! `str_replace`. (Being implemented by the tools work.)
use super::{ToolContext, ToolOutcome};
use serde_json::{Map, Value};
/// Replaces a unique match.
pub fn str_replace(_ctx: &ToolContext<'_>, _args: &Map<String, Value>) -> ToolOutcome {
    ToolOutcome::err("str_replace: not implemented")
}
