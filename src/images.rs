//! Local base images and air-gapped image bundles. Filled in by the Docker issue.
