//! SWE-bench compatibility: dataset rows, predictions, log parsers, grading,
//! official-format reports, eval scripts and the Docker eval.

pub mod dataset;
pub mod eval;
pub mod eval_script;
pub mod git_hygiene;
pub mod grading;
pub mod instance;
pub mod logs;
pub mod parsers;
pub mod patch_apply;
pub mod predictions;
pub mod regrade;
pub mod report;
pub mod specs;
pub mod strict;
pub mod validate;
