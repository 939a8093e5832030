//! SWE-bench compatibility: dataset rows, predictions, log parsers, grading,
//! official-format reports, eval scripts and the Docker eval.

pub mod instance;
