//! `airgate images bootstrap|save|load|validate`.
use std::path::PathBuf;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{CliError, exit};
use crate::images;
use crate::sandbox::docker::{DockerConfig, connect};
use crate::swebench::dataset::load_dataset;
use crate::swebench::validate::{self as validation, ValidateOptions};

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
    /// Build SWE-bench instance images (base, env, instance layers) from
    /// local mirrors only: a git mirror, a wheelhouse and/or a PyPI index,
    /// optionally a Debian mirror and, for Python versions the base image
    /// lacks, relocatable interpreters. Layers build with no network; only
    /// the fetch steps reach the named index or mirror, and nothing else.
    /// Images already matching are skipped.
    #[command(group(clap::ArgGroup::new("python_source").required(true).multiple(true)))]
    Build {
        /// Dataset file (.jsonl, .json, Parquet, or a swebench 5.x task repo).
        #[arg(long)]
        dataset: PathBuf,
        /// Only these instances.
        #[arg(long, num_args = 1..)]
        instance_ids: Vec<String>,
        /// Where `owner/name` repositories live: a folder of mirrors
        /// (`DIR/owner/name.git`, `DIR/owner__name.git`, ...) or a git
        /// server URL (`URL/owner/name.git`, or with `{repo}`).
        #[arg(long)]
        git_mirror: String,
        /// A folder of wheels (and sdists) for every dependency, including
        /// pip, setuptools and wheel. Each env image keeps a copy and a
        /// pip.conf pointing at it.
        #[arg(long, group = "python_source")]
        wheelhouse: Option<PathBuf>,
        /// A PyPI index URL (devpi, Nexus, Artifactory, or a PEP 503 folder
        /// served over HTTP). Fetch steps download from it in containers
        /// whose only way out is a bridge to this host and port; the wheels
        /// end up in each image's own wheel folder. With --wheelhouse, the
        /// wheelhouse is searched first.
        #[arg(long, value_name = "URL", group = "python_source")]
        pip_index: Option<String>,
        /// A Debian mirror (e.g. http://deb.bank.internal/debian) for specs
        /// with `apt-pkgs`: the base image's suite, component `main`,
        /// checked against the base image's keyring. Fetched the same
        /// way as --pip-index; installed offline with dpkg.
        #[arg(long, value_name = "URL")]
        apt_mirror: Option<String>,
        /// A folder of relocatable CPython builds (python-build-standalone
        /// `cpython-X.Y.Z+...-x86_64-unknown-linux-gnu-install_only.tar.gz`
        /// or unpacked), for versions the base image does not have.
        #[arg(long)]
        interpreters: Option<PathBuf>,
        /// The image the base layer starts from.
        #[arg(long, default_value = "airgate/base:latest")]
        base: String,
        /// A spec table (same TOML as configs/swebench/specs.toml) whose rows
        /// add to or override the official ones, e.g. for a site's own repos.
        #[arg(long)]
        specs: Option<PathBuf>,
        /// Parallel env and instance builds.
        #[arg(long, default_value_t = 2)]
        max_workers: usize,
        /// Rebuild images even when matching ones exist.
        #[arg(long)]
        force: bool,
        /// Build logs, the generated Dockerfiles and build.json go here.
        #[arg(long, default_value = "logs/build_images")]
        log_dir: PathBuf,
    },
    /// Write images to a bundle for carrying across an air gap: the images
    /// named, or with --dataset every instance image of a dataset in one
    /// archive (shared layers stored once).
    Save {
        /// Images to save (one tarball each).
        #[arg(required_unless_present = "dataset", conflicts_with = "dataset")]
        images: Vec<String>,
        /// Dataset file (.jsonl, .json, Parquet): save every instance image
        /// (`AIRGATE_IMAGE_NAMESPACE` as in eval).
        #[arg(long)]
        dataset: Option<PathBuf>,
        /// With --dataset: only these instances.
        #[arg(long, num_args = 1.., requires = "dataset")]
        instance_ids: Vec<String>,
        /// With --dataset: a validation.json from `images validate` to carry
        /// in the bundle (listed in the manifest with its sha256).
        #[arg(long, requires = "dataset")]
        validation: Option<PathBuf>,
        /// Bundle directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a bundle's sha256 sums, then load it.
    Load {
        /// Bundle directory.
        bundle: PathBuf,
    },
    /// Prove each instance image grades: the gold patch must resolve and
    /// the empty patch must not. Writes validation.json.
    Validate {
        /// Dataset file (.jsonl, .json, Parquet).
        #[arg(long)]
        dataset: PathBuf,
        /// Only these instances.
        #[arg(long, num_args = 1..)]
        instance_ids: Vec<String>,
        /// Where validation.json (merged with an existing one) and the logs go.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Parallel instances.
        #[arg(long, default_value_t = 4)]
        max_workers: usize,
        /// Per-run timeout of the eval script, seconds.
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
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
        ImagesAction::Build {
            dataset,
            instance_ids,
            git_mirror,
            wheelhouse,
            pip_index,
            apt_mirror,
            interpreters,
            base,
            specs,
            max_workers,
            force,
            log_dir,
        } => {
            let selected = select(&dataset, &instance_ids)?;
            let specs = crate::swebench::specs::SpecTable::with_overlay(specs.as_deref())
                .map_err(|e| CliError::usage(e.to_string()))?;
            if let Some(wheelhouse) = &wheelhouse
                && !wheelhouse.is_dir()
            {
                return Err(CliError::usage(format!(
                    "--wheelhouse {} is not a folder: give a folder of wheels \
                     (e.g. made with `pip download -r requirements.txt pip setuptools wheel -d DIR`)",
                    wheelhouse.display()
                ))
                .into());
            }
            let pip_index = pip_index
                .as_deref()
                .map(images::fetch::MirrorUrl::parse)
                .transpose()
                .map_err(|e| CliError::usage(format!("--pip-index: {e}")))?;
            let apt_mirror = apt_mirror
                .as_deref()
                .map(images::fetch::MirrorUrl::parse)
                .transpose()
                .map_err(|e| CliError::usage(format!("--apt-mirror: {e}")))?;
            if let Some(dir) = &interpreters
                && !dir.is_dir()
            {
                return Err(CliError::usage(format!(
                    "--interpreters {} is not a folder",
                    dir.display()
                ))
                .into());
            }
            let opts = images::build::BuildOptions {
                sources: images::build::Sources {
                    git_mirror: images::mirror::GitMirror::parse(&git_mirror),
                    wheelhouse,
                    pip_index,
                    apt_mirror,
                    interpreters,
                    base,
                },
                specs,
                max_workers: max_workers.max(1),
                force,
                log_dir: log_dir.clone(),
                namespace: std::env::var("AIRGATE_IMAGE_NAMESPACE").ok(),
                progress: true,
            };
            let record = images::build::build(&docker, &selected, opts)
                .await
                .map_err(|e| CliError::failure(e.to_string()))?;
            let mut bad = 0;
            for line in &record.instances {
                let status = match line.status {
                    images::build::Status::Built => "built",
                    images::build::Status::Skipped => "present",
                    images::build::Status::Unbuildable => "UNBUILDABLE",
                    images::build::Status::Failed => "FAILED",
                };
                let mut text = format!("{}  {}  {}", line.instance_id, status, line.image);
                if !line.reason.is_empty() {
                    bad += 1;
                    let first = line.reason.lines().next().unwrap_or_default();
                    text.push_str(&format!("  ({first})"));
                }
                if let (Some(log), images::build::Status::Failed) = (&line.log, &line.status) {
                    text.push_str(&format!("  log: {log}"));
                }
                println!("{text}");
            }
            println!(
                "{} of {} images ready; record: {}",
                record.instances.len() - bad,
                record.instances.len(),
                log_dir.join(images::build::BUILD_RECORD).display()
            );
            return Ok(if bad == 0 { exit::OK } else { exit::FAILURE });
        }
        ImagesAction::Save {
            dataset: Some(dataset),
            instance_ids,
            validation,
            out,
            ..
        } => {
            return save_dataset(&docker, dataset, instance_ids, validation, out).await;
        }
        ImagesAction::Save {
            images: list, out, ..
        } => {
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
            if let Ok(m) = images::read_manifest(&bundle)
                && let Some(v) = m.validation_file()
            {
                println!(
                    "validation record (verified): {} — pass it to --require-validated",
                    bundle.join(v).display()
                );
            }
        }
        ImagesAction::Validate {
            dataset,
            instance_ids,
            out,
            max_workers,
            timeout,
        } => {
            return validate(dataset, instance_ids, out, max_workers, timeout).await;
        }
    }
    Ok(exit::OK)
}

/// Picks the selected instances of a dataset, or a usage error naming the
/// ids that are not in it.
fn select(
    dataset_path: &std::path::Path,
    instance_ids: &[String],
) -> Result<Vec<crate::swebench::instance::Instance>, CliError> {
    let dataset = load_dataset(dataset_path).map_err(|e| CliError::usage(e.to_string()))?;
    let missing: Vec<&str> = instance_ids
        .iter()
        .filter(|id| dataset.get(id).is_none())
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(CliError::usage(format!(
            "some instance ids are not in {}: {}",
            dataset_path.display(),
            missing.join(" ")
        )));
    }
    Ok(dataset
        .instances
        .iter()
        .filter(|i| instance_ids.is_empty() || instance_ids.contains(&i.instance_id))
        .cloned()
        .collect())
}

async fn save_dataset(
    docker: &bollard::Docker,
    dataset_path: PathBuf,
    instance_ids: Vec<String>,
    validation: Option<PathBuf>,
    out: PathBuf,
) -> anyhow::Result<u8> {
    let selected = select(&dataset_path, &instance_ids)?;
    if let Some(v) = &validation {
        let record =
            validation::ValidationFile::read(v).map_err(|e| CliError::usage(e.to_string()))?;
        let not_valid: Vec<&str> = selected
            .iter()
            .filter(|i| {
                !record
                    .instances
                    .get(&i.instance_id)
                    .is_some_and(|r| r.valid)
            })
            .map(|i| i.instance_id.as_str())
            .collect();
        if !not_valid.is_empty() {
            eprintln!(
                "warning: {} does not record these instances as valid ({} of {}): {}; \
                 --require-validated with it will refuse them (run `airgate images validate`)",
                v.display(),
                not_valid.len(),
                selected.len(),
                not_valid.join(" ")
            );
        }
    }
    let namespace = std::env::var("AIRGATE_IMAGE_NAMESPACE").ok();
    let pairs: Vec<(String, String)> = selected
        .iter()
        .map(|i| {
            (
                i.instance_id.clone(),
                images::image_for(i, namespace.as_deref()),
            )
        })
        .collect();
    let bar = spinner(format!(
        "saving {} instance image(s) to {}",
        pairs.len(),
        out.display()
    ));
    let b2 = bar.clone();
    let manifest = images::save_dataset(
        docker,
        &pairs,
        &dataset_path.display().to_string(),
        validation.as_deref(),
        &out,
        &move |n| b2.inc(n),
    )
    .await
    .map_err(|e| CliError::failure(e.to_string()));
    bar.finish_and_clear();
    let manifest = manifest?;
    for f in &manifest.files {
        println!("{}  {}  {} bytes  ({})", f.sha256, f.file, f.bytes, f.kind);
    }
    for e in &manifest.images {
        println!("{}  {}", e.instance_id.as_deref().unwrap_or("-"), e.image);
    }
    println!("bundle written to {}", out.display());
    Ok(exit::OK)
}

async fn validate(
    dataset_path: PathBuf,
    instance_ids: Vec<String>,
    out: PathBuf,
    max_workers: usize,
    timeout: u64,
) -> anyhow::Result<u8> {
    let selected = select(&dataset_path, &instance_ids)?;
    let docker = DockerConfig::load(None).map_err(|e| CliError::usage(e.to_string()))?;
    let opts = ValidateOptions {
        out: out.clone(),
        max_workers: max_workers.max(1),
        timeout: std::time::Duration::from_secs(timeout.max(1)),
        namespace: std::env::var("AIRGATE_IMAGE_NAMESPACE").ok(),
        docker,
        dataset_label: dataset_path.display().to_string(),
        progress: true,
    };
    let file = validation::validate(&selected, opts)
        .await
        .map_err(|e| CliError::failure(e.to_string()))?;
    let mut bad = 0;
    for inst in &selected {
        let Some(v) = file.instances.get(&inst.instance_id) else {
            continue;
        };
        let verdict = if v.valid { "valid" } else { "NOT VALID" };
        println!(
            "{}  {}  gold={} ({:.1}s)  empty={} ({:.1}s)  {}{}",
            inst.instance_id,
            verdict,
            v.gold.status,
            v.gold.duration_s,
            v.empty.status,
            v.empty.duration_s,
            v.image_digest.as_deref().unwrap_or("no image"),
            if v.valid {
                String::new()
            } else {
                format!("  ({})", v.reason)
            }
        );
        if !v.valid {
            bad += 1;
        }
    }
    println!(
        "{} of {} valid; written to {}",
        selected.len() - bad,
        selected.len(),
        out.join(validation::VALIDATION_FILE).display()
    );
    Ok(if bad == 0 { exit::OK } else { exit::FAILURE })
}
