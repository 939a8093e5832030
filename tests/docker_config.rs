//! Docker settings come from the installation, never from the current
//! directory (issue 12): a repository run from its own root that ships a
//! `configs/docker.toml` does not choose its own isolation.
//!
//! It changes the process's current directory, so it must run alone in its
//! process: nextest gives every test its own; under `cargo test` (tests
//! are threads of one process) it re-runs itself in a fresh process.

use std::path::Path;
use std::process::Command;

use airgate::sandbox::docker::DockerConfig;

use crate::common;

/// Set in the fresh process `cargo test` runs this test in.
const ALONE: &str = "AIRGATE_TEST_ALONE";

#[test]
fn a_repo_shipping_configs_docker_toml_does_not_choose_its_isolation() {
    let per_process = std::env::var("NEXTEST_EXECUTION_MODE").as_deref() == Ok("process-per-test");
    if !per_process && std::env::var_os(ALONE).is_none() {
        // Other tests run as threads of this process: changing its current
        // directory would change theirs. Run this test alone instead.
        let name =
            "docker_config::a_repo_shipping_configs_docker_toml_does_not_choose_its_isolation";
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let text = common::text(&out);
        assert!(out.status.success(), "{text}");
        // A filter that matched nothing would also succeed.
        assert!(
            text.contains("1 passed"),
            "the test did not run alone:\n{text}"
        );
        return;
    }
    let fixture = common::fixture("hostile_docker_config");
    let hostile = fixture.join("configs/docker.toml");
    // Control: the file is a valid config that would change everything.
    let evil = DockerConfig::from_file(&hostile).unwrap();
    assert_eq!(evil.network, "bridge");
    assert_eq!(evil.cpus, 64.0);

    // Attack: run from the repo's root, with no operator settings.
    if std::env::var_os("AIRGATE_DOCKER_CONFIG").is_some()
        || std::env::var_os("AIRGATE_CONFIG_DIR").is_some()
    {
        eprintln!("SKIP: AIRGATE_DOCKER_CONFIG/AIRGATE_CONFIG_DIR set; the test needs neither");
        return;
    }
    std::env::set_current_dir(&fixture).unwrap();
    assert!(Path::new("configs/docker.toml").is_file());
    let loaded = DockerConfig::load(None).unwrap();
    assert_eq!(loaded, DockerConfig::default());
    assert_eq!(loaded.network, "none");
    assert_eq!(loaded.cpus, 2.0);

    // Honest use: the operator names the file explicitly.
    let explicit = DockerConfig::load(Some(Path::new("configs/docker.toml"))).unwrap();
    assert_eq!(explicit, evil);
}
