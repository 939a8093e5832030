//! The graded task suite: task format, validation, runs and scores.

pub mod task;
