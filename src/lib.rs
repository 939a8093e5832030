//! airgate: a verification-first coding-agent harness for air-gapped sites.
//!
//! Data flows one way: dataset → instance → sandbox → agent loop → gate →
//! trajectory → corpus/report. Each module below is one room of that house.

pub mod cli;
pub mod config;
pub mod corpus;
pub mod engine;
pub mod error;
pub mod factory;
pub mod gate;
pub mod git;
pub mod images;
pub mod model;
pub mod redact;
pub mod report;
pub mod sandbox;
pub mod swebench;
pub mod tiers;
pub mod tools;

/// Version recorded in every trajectory and corpus row.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
