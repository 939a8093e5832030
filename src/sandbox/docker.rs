//! The Docker sandbox (bollard). Filled in by the Docker issue.

use std::path::Path;

use super::{Sandbox, SandboxError};

/// Builds the sandbox `solve --sandbox docker` uses: a container from
/// `image` with the workspace bind-mounted at `/testbed`.
pub async fn for_solve(
    _workspace: &Path,
    _image: Option<&str>,
) -> Result<Box<dyn Sandbox>, SandboxError> {
    Err(SandboxError::Other(
        "the docker sandbox is not yet available in this build".into(),
    ))
}
