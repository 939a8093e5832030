//! The Docker backend (the default): one container per episode and a fresh
//! one per verification.
//!
//! - Agent side: start a container from the instance image, strip git
//!   history after `base_commit` (the shared hygiene script), copy `/testbed`
//!   out to a host scratch directory, adopt it as the workspace, and start
//!   the episode's container with that workspace bind-mounted at `/testbed`.
//!   The instance image has no `test_patch` applied; the agent never sees it.
//! - Verification: the official `swebench eval` path (`run_eval`) on a
//!   one-instance dataset in a new container: apply the patch with the
//!   official chain, run the official eval script (which applies the test
//!   patch), grade F2P/P2P with the shared grader.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::FactoryError;
use super::local::from_grade;
use super::seams::{InstanceEnv, PatchVerifier, Prepared, Verdict};
use crate::sandbox::docker::{Container, ContainerSpec, DockerConfig, DockerSandbox, connect};
use crate::sandbox::{SandboxError, Workspace};
use crate::swebench::dataset::Dataset;
use crate::swebench::eval::{EvalOptions, RunStatus, run_eval};
use crate::swebench::git_hygiene::strip_future_history;
use crate::swebench::instance::Instance;
use crate::swebench::instance::image_for;
use crate::swebench::predictions::Prediction;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Docker settings of the factory.
#[derive(Debug, Clone)]
pub struct DockerBackend {
    /// Limits and isolation (`configs/docker.toml`).
    pub config: DockerConfig,
    /// Image namespace (`None` for local names).
    pub namespace: Option<String>,
    /// Limit of one eval script run.
    pub eval_timeout: Duration,
}

impl DockerBackend {
    fn image(&self, inst: &Instance) -> String {
        image_for(inst, self.namespace.as_deref())
    }

    /// One-instance eval settings writing under `root`.
    fn eval_options(&self, root: &std::path::Path) -> EvalOptions {
        EvalOptions {
            run_id: format!(
                "factory-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ),
            max_workers: 1,
            timeout: self.eval_timeout,
            keep: false,
            root: root.to_path_buf(),
            report_dir: root.to_path_buf(),
            namespace: self.namespace.clone(),
            docker: self.config.clone(),
            dataset_label: "factory".into(),
            progress: false,
            strict: None,
        }
    }

    fn unique(&self, what: &str, inst: &Instance) -> String {
        format!(
            "airgate.factory.{what}.{}.{}.{}",
            inst.instance_id.to_ascii_lowercase(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        )
    }
}

#[async_trait]
impl InstanceEnv for DockerBackend {
    fn kind(&self) -> &'static str {
        "docker"
    }

    async fn prepare(&self, inst: &Instance) -> Result<Prepared, FactoryError> {
        let docker = connect().await?;
        let image = self.image(inst);
        let mut spec = ContainerSpec::new(&image, self.unique("prep", inst), self.config.clone());
        spec.labels
            .insert("airgate.kind".into(), "factory-prepare".into());
        let container = Container::start(&docker, &spec).await?;
        let copied = copy_out(&container, inst, &self.config.workdir).await;
        if let Err(e) = container.remove().await {
            tracing::warn!("removing {}: {e}", container.name());
        }
        let (scratch, root) = copied?;
        let workspace = crate::sandbox::blocking(|| Workspace::adopt(&root))?;
        let sandbox = DockerSandbox::start(&root, &image, self.config.clone(), false).await?;
        Ok(Prepared {
            workspace,
            sandbox: Box::new(sandbox),
            scratch: Some(scratch),
        })
    }

    async fn image_digest(&self, inst: &Instance) -> Option<String> {
        let docker = connect().await.ok()?;
        let image = self.image(inst);
        match docker.inspect_image(&image).await {
            Ok(i) => i.id.filter(|id| id.starts_with("sha256:")),
            Err(e) => {
                tracing::warn!("inspecting {image} for its digest: {e}");
                None
            }
        }
    }
}

/// Strips history in the container, then copies the repo to a host scratch dir.
async fn copy_out(
    container: &Container,
    inst: &Instance,
    workdir: &str,
) -> Result<(tempfile::TempDir, PathBuf), FactoryError> {
    strip_future_history(container, &inst.base_commit)
        .await
        .map_err(|e| FactoryError::Other(format!("{}: {e}", inst.instance_id)))?;
    let tar = container.download_tar(workdir).await?;
    let scratch = tempfile::Builder::new()
        .prefix("airgate-factory-")
        .tempdir()
        .map_err(|e| FactoryError::io("creating a scratch directory", e))?;
    let dest = scratch.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut archive = tar::Archive::new(std::io::Cursor::new(tar));
        archive.set_preserve_permissions(true);
        archive.unpack(&dest)
    })
    .await
    .map_err(|e| FactoryError::Other(format!("untar task failed: {e}")))?
    .map_err(|e| FactoryError::io("unpacking the repo copied out of the container", e))?;
    let name = std::path::Path::new(workdir)
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "testbed".into());
    let root = scratch.path().join(name);
    if !root.is_dir() {
        return Err(FactoryError::Sandbox(SandboxError::Other(format!(
            "{}: {workdir} was not found in the instance image",
            inst.instance_id
        ))));
    }
    Ok((scratch, root))
}

#[async_trait]
impl PatchVerifier for DockerBackend {
    fn describe(&self) -> String {
        "docker eval (fresh container, official eval script, shared grader)".into()
    }

    async fn empty_patch_resolves(&self, inst: &Instance) -> Result<bool, FactoryError> {
        let scratch = tempfile::Builder::new()
            .prefix("airgate-control-")
            .tempdir()
            .map_err(|e| FactoryError::io("creating a scratch directory", e))?;
        let opts = self.eval_options(scratch.path());
        crate::swebench::eval::empty_patch_resolves(inst, opts, &scratch.path().join("controls"))
            .await
            .map_err(|e| match e {
                crate::swebench::eval::EvalError::Sandbox(s) => FactoryError::Sandbox(s),
                other => FactoryError::Other(format!("empty-patch control: {other}")),
            })
    }

    async fn verify(&self, inst: &Instance, patch: &str) -> Result<Verdict, FactoryError> {
        let scratch = tempfile::Builder::new()
            .prefix("airgate-verify-")
            .tempdir()
            .map_err(|e| FactoryError::io("creating a scratch directory", e))?;
        let run_id = format!(
            "factory-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let model = "airgate-factory".to_string();
        let mut opts = self.eval_options(scratch.path());
        opts.run_id = run_id.clone();
        let dataset = Dataset {
            instances: vec![inst.clone()],
            skipped: vec![],
        };
        let pred = Prediction {
            instance_id: inst.instance_id.clone(),
            model_name_or_path: Some(model.clone()),
            model_patch: Some(patch.to_string()),
        };
        let summary = run_eval(&dataset, &[pred], &[], opts)
            .await
            .map_err(|e| FactoryError::Other(format!("eval: {e}")))?;
        let mut verdict = Verdict {
            verified_by: self.describe(),
            ..Verdict::default()
        };
        let run = summary.runs.into_iter().next();
        let log_dir = crate::swebench::logs::instance_log_dir(
            scratch.path(),
            &run_id,
            Some(&model),
            &inst.instance_id,
        );
        match run.as_ref().map(|r| &r.status) {
            Some(RunStatus::Resolved | RunStatus::Unresolved) => {
                let log = std::fs::read(log_dir.join(crate::swebench::logs::LOG_TEST_OUTPUT))
                    .map_err(|e| FactoryError::io("reading test_output.txt", e))?;
                Ok(from_grade(
                    inst,
                    patch,
                    &String::from_utf8_lossy(&log),
                    verdict,
                ))
            }
            Some(RunStatus::Infra(kind)) => Err(FactoryError::Sandbox(match kind {
                crate::swebench::eval::InfraKind::ImageMissing => {
                    SandboxError::ImageMissing(image_for(inst, self.namespace.as_deref()))
                }
                crate::swebench::eval::InfraKind::DaemonUnavailable => {
                    SandboxError::DaemonUnavailable("during the eval".into())
                }
                crate::swebench::eval::InfraKind::OutOfMemory => SandboxError::OutOfMemory,
            })),
            _ => {
                verdict.error = Some(
                    run.and_then(|r| r.message)
                        .unwrap_or_else(|| "the eval produced no verdict".into()),
                );
                Ok(verdict)
            }
        }
    }
}
