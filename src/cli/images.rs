//! `airgate images bootstrap|save|load`.
use std::path::PathBuf;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{CliError, exit};
use crate::images;
use crate::sandbox::docker::connect;

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
        /// Rebuild even if the image exists.
        #[arg(long)]
        force: bool,
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

fn spinner(msg: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {bytes} {elapsed}") {
        bar.set_style(style);
    }
    bar.set_message(msg);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Runs `airgate images`.
pub async fn run(args: ImagesArgs) -> anyhow::Result<u8> {
    let docker = connect()
        .await
        .map_err(|e| CliError::failure(e.to_string()))?;
    match args.action {
        ImagesAction::Bootstrap { tag, force } => {
            let built = images::bootstrap(&docker, &tag, force)
                .await
                .map_err(|e| CliError::failure(e.to_string()))?;
            if built {
                println!("built {tag}");
            } else {
                println!("{tag} already present (use --force to rebuild)");
            }
        }
        ImagesAction::Save { images: list, out } => {
            let bar = spinner(format!(
                "saving {} image(s) to {}",
                list.len(),
                out.display()
            ));
            let b2 = bar.clone();
            let manifest = images::save(&docker, &list, &out, &move |n| b2.inc(n))
                .await
                .map_err(|e| CliError::failure(e.to_string()))?;
            bar.finish_and_clear();
            for e in &manifest.images {
                println!("{}  {}  {}", e.sha256, e.file, e.image);
            }
            println!("bundle written to {}", out.display());
        }
        ImagesAction::Load { bundle } => {
            let bar = spinner(format!("verifying and loading {}", bundle.display()));
            let loaded = images::load(&docker, &bundle)
                .await
                .map_err(|e| CliError::failure(e.to_string()));
            bar.finish_and_clear();
            for image in loaded? {
                println!("loaded {image}");
            }
        }
    }
    Ok(exit::OK)
}
