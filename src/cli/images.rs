//! `airgate images bootstrap|save|load`.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::error::CliError;

/// Arguments of `airgate images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Which action.
    #[command(subcommand)]
    pub action: ImagesAction,
}

/// `images` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImagesAction {
    /// Build the local base image (python3, git, pytest) with no registry.
    Bootstrap {
        /// Image tag to create.
        #[arg(long, default_value = "airgate/base:latest")]
        tag: String,
    },
    /// Write images to a bundle for carrying across an air gap.
    Save {
        /// Images to save.
        #[arg(required = true)]
        images: Vec<String>,
        /// Bundle directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a bundle's sha256 sums, then load it.
    Load {
        /// Bundle directory.
        bundle: PathBuf,
    },
}

/// Runs `airgate images`.
pub async fn run(_args: ImagesArgs) -> anyhow::Result<u8> {
    Err(CliError::not_yet("images").into())
}
