//! `ls` and `read_file`. (Being implemented by the tools work.)
use super::{ToolContext, ToolOutcome};
use serde_json::{Map, Value};
/// Lists a directory.
pub fn ls(_ctx: &ToolContext<'_>, _args: &Map<String, Value>) -> ToolOutcome {
    ToolOutcome::err("ls: not implemented")
}
/// Reads a file or a line range.
pub fn read_file(_ctx: &ToolContext<'_>, _args: &Map<String, Value>) -> ToolOutcome {
    ToolOutcome::err("read_file: not implemented")
}
