//! One SWE-bench row: the shared currency of the grader, the Docker eval and
//! the factory.

use serde::{Deserialize, Serialize};

/// A SWE-bench instance (a dataset row), with the optional 5.x fields.
/// `FAIL_TO_PASS`/`PASS_TO_PASS` are always real lists here; the loader
/// decodes JSON-encoded strings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Instance {
    /// `owner/name`.
    pub repo: String,
    /// e.g. `django__django-11099`.
    pub instance_id: String,
    /// Commit the instance starts from.
    pub base_commit: String,
    /// The gold patch.
    #[serde(default)]
    pub patch: String,
    /// The test patch applied at evaluation time.
    #[serde(default)]
    pub test_patch: String,
    /// The issue text.
    #[serde(default)]
    pub problem_statement: String,
    /// Hints from the issue thread.
    #[serde(default)]
    pub hints_text: String,
    /// Creation time as in the dataset.
    #[serde(default)]
    pub created_at: String,
    /// Spec-table version, e.g. `3.0`.
    #[serde(default)]
    pub version: String,
    /// Tests that must go from failing to passing.
    #[serde(rename = "FAIL_TO_PASS", default)]
    pub fail_to_pass: Vec<String>,
    /// Tests that must keep passing.
    #[serde(rename = "PASS_TO_PASS", default)]
    pub pass_to_pass: Vec<String>,
    /// Environment setup commit.
    #[serde(default)]
    pub environment_setup_commit: String,
    /// 5.x: the eval script to run as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_script: Option<String>,
    /// 5.x: the image to evaluate in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// 5.x: the log parser name; wins over the repo map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_parser: Option<String>,
    /// 5.x: e.g. `pass_and_fail` or `fail_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_type: Option<String>,
}

/// Architecture in official image names (the official harness's default).
pub const ARCH: &str = "x86_64";

/// The official instance image name: `sweb.eval.x86_64.<id>:<tag>`, or with
/// a namespace `<ns>/sweb.eval.x86_64.<id with __ → _1776_>:<tag>` (as
/// swebench's `TestSpec.instance_image_key`; ids are lowercased).
pub fn instance_image_name(instance_id: &str, namespace: Option<&str>, tag: &str) -> String {
    let key = format!("sweb.eval.{ARCH}.{}:{tag}", instance_id.to_lowercase());
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{key}").replace("__", "_1776_"),
        _ => key,
    }
}

/// The image an instance is evaluated in: the row's 5.x `image` if it has
/// one, else the official name.
pub fn image_for(instance: &Instance, namespace: Option<&str>) -> String {
    match &instance.image {
        Some(img) if !img.is_empty() => img.clone(),
        _ => instance_image_name(&instance.instance_id, namespace, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_official_keys() {
        assert_eq!(
            instance_image_name("django__django-11099", None, "latest"),
            "sweb.eval.x86_64.django__django-11099:latest"
        );
        assert_eq!(
            instance_image_name("Django__Django-11099", Some("swebench"), "latest"),
            "swebench/sweb.eval.x86_64.django_1776_django-11099:latest"
        );
        let mut inst = Instance {
            instance_id: "a__b-1".into(),
            ..Default::default()
        };
        assert_eq!(image_for(&inst, None), "sweb.eval.x86_64.a__b-1:latest");
        inst.image = Some("custom:1".into());
        assert_eq!(image_for(&inst, Some("ns")), "custom:1");
    }
}
