//! airgate: a verification-first coding-agent harness for air-gapped sites.
//!
//! Data flows one way: dataset → instance → sandbox → agent loop → gate →
//! trajectory → corpus/report. Each module below is one room of that house.
//! The contracts (CLI, exit codes, tools, task format, trajectory, corpus
//! columns) are in `docs/design.md`.
//!
//! The pieces are usable as a library. For example, the patch policy that
//! keeps a fix from passing by editing the tests:
//!
//! ```
//! use airgate::gate::policy::{ChangeKind, PatchPolicy};
//!
//! let policy = PatchPolicy::load(None)?; // the built-in configs/patch_policy.toml
//! assert!(policy.check("src/accounts.py", ChangeKind::Modify).is_ok());
//! let denial = policy.check("tests/test_accounts.py", ChangeKind::Modify).unwrap_err();
//! println!("refused: {} ({})", denial.path, denial.category);
//! # Ok::<(), airgate::gate::policy::PolicyError>(())
//! ```

pub mod cli;
pub mod config;
pub mod corpus;
pub mod engine;
pub mod error;
pub mod factory;
pub mod gate;
pub mod git;
pub mod images;
pub mod mcp;
pub mod model;
pub mod protocol;
pub mod redact;
pub mod report;
pub mod sandbox;
pub mod swebench;
pub mod tiers;
pub mod tools;
pub mod truncate;

/// Version recorded in every trajectory and corpus row.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
