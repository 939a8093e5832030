//! Docker settings come from the installation, never from the current
//! directory (issue 12): a repository run from its own root that ships a
//! `configs/docker.toml` does not choose its own isolation.
//!
//! Its own test binary: it changes the process's current directory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: a panic is a failed test

use std::path::Path;

use airgate::sandbox::docker::DockerConfig;

#[test]
fn a_repo_shipping_configs_docker_toml_does_not_choose_its_isolation() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile_docker_config");
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
