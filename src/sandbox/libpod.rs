//! Creating containers on Podman through its native (libpod) API.
//!
//! Everything else the Docker backend does (start, exec, copy, remove) goes
//! through Podman's Docker-compatible API, but *creating* a container does
//! not: on a cgroup v1 or hybrid host, Podman 4 (its compat API and its
//! `containers.conf` default alike) turns a requested private cgroup
//! namespace into the host's (`specgen.ParseCgroupNamespace` ignores the
//! value unless cgroup v2 is unified), so the container would see the host's
//! cgroup paths. Only a libpod `SpecGenerator` with `cgroupns.nsmode =
//! "private"` is honoured as asked (like `podman run --cgroupns=private`).
//!
//! [`spec_generator`] translates the very `ContainerCreateBody` the Docker
//! path sends, so the hardening is written once ([`super::docker`]'s
//! `host_config`). libpod silently ignores JSON fields it does not know, so
//! the translation fails closed: a field of the body or its `HostConfig`
//! that it does not carry over is an error, never dropped.

use std::path::PathBuf;
use std::time::Duration;

use bollard::models::ContainerCreateBody;
use serde_json::{Map, Value, json};

use super::SandboxError;

/// The libpod API version in request paths: Podman 4.0 and later serve it.
const LIBPOD_API: &str = "v4.0.0";

/// Why a libpod create failed, as [`super::docker::Container::start`] needs
/// to tell it apart.
#[derive(Debug)]
pub(crate) enum CreateFailure {
    /// The image is not in Podman's storage.
    ImageMissing,
    /// A container of that name exists (a crashed run's).
    NameInUse,
    /// Anything else.
    Other(SandboxError),
}

/// Where Podman's API listens: `DOCKER_HOST` (`unix://` or `tcp://`) when
/// set, else the default root or rootless socket.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    Unix(PathBuf),
    Http(String),
}

fn endpoint(docker_host: Option<&str>) -> Result<Endpoint, SandboxError> {
    let Some(host) = docker_host.filter(|h| !h.is_empty()) else {
        return Ok(Endpoint::Unix(super::engine::podman_default_socket()));
    };
    if let Some(path) = host.strip_prefix("unix://") {
        Ok(Endpoint::Unix(PathBuf::from(path)))
    } else if let Some(addr) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        Ok(Endpoint::Http(format!(
            "http://{}",
            addr.trim_end_matches('/')
        )))
    } else {
        Err(SandboxError::Unavailable(format!(
            "DOCKER_HOST={host}: with Podman, airgate creates containers through \
             a unix:// or tcp:// endpoint only"
        )))
    }
}

/// An HTTP client for the Podman endpoint, the base URL its paths follow,
/// and the endpoint (for messages).
fn client() -> Result<(reqwest::Client, String, Endpoint), SandboxError> {
    let host = std::env::var("DOCKER_HOST").ok();
    let endpoint = endpoint(host.as_deref())?;
    let builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120));
    let (builder, base) = match &endpoint {
        Endpoint::Unix(path) => (builder.unix_socket(path.clone()), "http://podman".into()),
        Endpoint::Http(base) => (builder, base.clone()),
    };
    let client = builder
        .build()
        .map_err(|e| SandboxError::DaemonUnavailable(format!("podman ({endpoint:?}): {e}")))?;
    Ok((client, format!("{base}/{LIBPOD_API}/libpod"), endpoint))
}

/// Creates the container `name` from `body` with libpod's
/// `POST /libpod/containers/create`; returns its id.
pub(crate) async fn create(
    name: &str,
    body: &ContainerCreateBody,
) -> Result<String, CreateFailure> {
    let spec = spec_generator(name, body).map_err(CreateFailure::Other)?;
    let (client, base, endpoint) = client().map_err(CreateFailure::Other)?;
    let resp = client
        .post(format!("{base}/containers/create"))
        .json(&spec)
        .send()
        .await
        .map_err(|e| {
            CreateFailure::Other(SandboxError::DaemonUnavailable(format!(
                "podman ({endpoint:?}): creating container: {e}"
            )))
        })?;
    let status = resp.status();
    let reply: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return reply["Id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                CreateFailure::Other(SandboxError::Other(format!(
                    "podman: creating container {name}: no id in the reply {reply}"
                )))
            });
    }
    Err(failure(status.as_u16(), &reply, name))
}

/// The names of every container, in any state, from libpod's
/// `GET /libpod/containers/json?all=true`. The compat listing is no use
/// here: Podman 4 reports a container between exit and removal as
/// `"stopped"`, a state the Docker API (and bollard) does not know, so one
/// such container anywhere fails the whole list.
pub(crate) async fn container_names() -> Result<Vec<String>, SandboxError> {
    let (client, base, endpoint) = client()?;
    let unavailable = |e: reqwest::Error| {
        SandboxError::DaemonUnavailable(format!("podman ({endpoint:?}): listing containers: {e}"))
    };
    let resp = client
        .get(format!("{base}/containers/json?all=true"))
        .send()
        .await
        .map_err(unavailable)?;
    let status = resp.status();
    let reply: Value = resp.json().await.map_err(unavailable)?;
    let Some(list) = reply.as_array().filter(|_| status.is_success()) else {
        return Err(SandboxError::Other(format!(
            "podman: listing containers: HTTP {status}: {reply}"
        )));
    };
    Ok(names_of(list))
}

fn names_of(list: &[Value]) -> Vec<String> {
    list.iter()
        .flat_map(|c| c["Names"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_str().map(|n| n.trim_start_matches('/').to_string()))
        .collect()
}

/// Classifies libpod's error reply (`{"cause", "message", "response"}`).
fn failure(status: u16, reply: &Value, name: &str) -> CreateFailure {
    let cause = reply["cause"].as_str().unwrap_or_default();
    let message = reply["message"].as_str().unwrap_or_default();
    if cause == "image not known" || status == 404 {
        CreateFailure::ImageMissing
    } else if cause == "that name is already in use" || status == 409 {
        CreateFailure::NameInUse
    } else {
        CreateFailure::Other(SandboxError::Other(format!(
            "podman: creating container {name}: HTTP {status}: {}",
            if message.is_empty() {
                reply.to_string()
            } else {
                message.to_string()
            }
        )))
    }
}

fn unsupported(what: &str, value: &Value) -> SandboxError {
    SandboxError::Other(format!(
        "podman: cannot carry {what} = {value} to the libpod API (refusing to create a container without it)"
    ))
}

fn string(what: &str, v: &Value) -> Result<String, SandboxError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| unsupported(what, v))
}

fn int(what: &str, v: &Value) -> Result<i64, SandboxError> {
    v.as_i64().ok_or_else(|| unsupported(what, v))
}

/// libpod's `SpecGenerator` for `body`, named `name`: the same image,
/// command, labels, environment, user, working directory and every field of
/// the `HostConfig`, with the namespaces explicit (cgroup, IPC and PID
/// private, as Docker gives them). A field it cannot carry is an error.
pub(crate) fn spec_generator(
    name: &str,
    body: &ContainerCreateBody,
) -> Result<Value, SandboxError> {
    let body = serde_json::to_value(body)
        .map_err(|e| SandboxError::Other(format!("podman: encoding the container spec: {e}")))?;
    let mut spec = Map::new();
    spec.insert("name".into(), json!(name));
    spec.insert("pidns".into(), json!({"nsmode": "private"}));
    spec.insert("create_working_dir".into(), json!(true));
    let mut network_disabled = false;
    for (key, v) in body.as_object().into_iter().flatten() {
        match key.as_str() {
            "Image" => {
                spec.insert("image".into(), json!(string(key, v)?));
            }
            "Cmd" => {
                spec.insert("command".into(), v.clone());
            }
            "Labels" => {
                spec.insert("labels".into(), v.clone());
            }
            "Env" => {
                let mut env = Map::new();
                for e in v.as_array().into_iter().flatten() {
                    let e = string("Env", e)?;
                    let Some((k, val)) = e.split_once('=') else {
                        return Err(unsupported("Env", &json!(e)));
                    };
                    env.insert(k.into(), json!(val));
                }
                spec.insert("env".into(), Value::Object(env));
            }
            "WorkingDir" => {
                spec.insert("work_dir".into(), json!(string(key, v)?));
            }
            "User" => {
                spec.insert("user".into(), json!(string(key, v)?));
            }
            "NetworkDisabled" => network_disabled = v.as_bool() == Some(true),
            "HostConfig" => host_config(v, &mut spec)?,
            _ => return Err(unsupported(key, v)),
        }
    }
    if network_disabled && spec["netns"]["nsmode"] != "none" {
        return Err(unsupported("NetworkDisabled", &json!(true)));
    }
    Ok(Value::Object(spec))
}

fn host_config(host: &Value, spec: &mut Map<String, Value>) -> Result<(), SandboxError> {
    let mut limits = Map::new();
    for (key, v) in host.as_object().into_iter().flatten() {
        let what = format!("HostConfig.{key}");
        match key.as_str() {
            "NetworkMode" => {
                let mode = match string(&what, v)?.as_str() {
                    "none" => "none",
                    "host" => "host",
                    "bridge" | "default" => "bridge",
                    _ => return Err(unsupported(&what, v)),
                };
                spec.insert("netns".into(), json!({"nsmode": mode}));
            }
            "CgroupnsMode" | "IpcMode" => {
                let mode = string(&what, v)?;
                if !matches!(mode.as_str(), "private" | "host") {
                    return Err(unsupported(&what, v));
                }
                let field = if key == "CgroupnsMode" {
                    "cgroupns"
                } else {
                    "ipcns"
                };
                spec.insert(field.into(), json!({"nsmode": mode}));
            }
            "CapDrop" | "CapAdd" => {
                let field = if key == "CapDrop" {
                    "cap_drop"
                } else {
                    "cap_add"
                };
                spec.insert(field.into(), v.clone());
            }
            "SecurityOpt" => {
                for opt in v.as_array().into_iter().flatten() {
                    match opt.as_str() {
                        Some("no-new-privileges" | "no-new-privileges:true") => {
                            spec.insert("no_new_privileges".into(), json!(true));
                        }
                        _ => return Err(unsupported(&what, opt)),
                    }
                }
            }
            "Privileged" => {
                spec.insert("privileged".into(), json!(v.as_bool() == Some(true)));
            }
            "NanoCpus" => {
                // Docker's NanoCpus is a CFS quota over a 100 ms period.
                let quota = int(&what, v)? / 10_000;
                limits.insert("cpu".into(), json!({"quota": quota, "period": 100_000}));
            }
            "Memory" | "MemorySwap" => {
                let field = if key == "Memory" { "limit" } else { "swap" };
                let memory = limits.entry("memory").or_insert_with(|| json!({}));
                memory[field] = json!(int(&what, v)?);
            }
            "PidsLimit" => {
                limits.insert("pids".into(), json!({"limit": int(&what, v)?}));
            }
            "Ulimits" => {
                let mut rlimits = Vec::new();
                for u in v.as_array().into_iter().flatten() {
                    rlimits.push(json!({
                        "type": string("Ulimits.Name", &u["Name"])?,
                        "soft": int("Ulimits.Soft", &u["Soft"])?,
                        "hard": int("Ulimits.Hard", &u["Hard"])?,
                    }));
                }
                spec.insert("r_limits".into(), Value::Array(rlimits));
            }
            "Mounts" => {
                let mounts = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(mount)
                    .collect::<Result<Vec<_>, _>>()?;
                spec.insert("mounts".into(), Value::Array(mounts));
            }
            _ => return Err(unsupported(&what, v)),
        }
    }
    if !limits.is_empty() {
        spec.insert("resource_limits".into(), Value::Object(limits));
    }
    Ok(())
}

/// A Docker bind `Mount` as an OCI mount: `bind` (non-recursive) or
/// `rbind`, its propagation, `ro`/`rw`.
fn mount(m: &Value) -> Result<Value, SandboxError> {
    let mut source = None;
    let mut target = None;
    let mut read_only = false;
    let mut recursive = true;
    let mut propagation = None;
    for (key, v) in m.as_object().into_iter().flatten() {
        let what = format!("Mounts.{key}");
        match key.as_str() {
            "Type" if v == "bind" => {}
            "Source" => source = Some(string(&what, v)?),
            "Target" => target = Some(string(&what, v)?),
            "ReadOnly" => read_only = v.as_bool() == Some(true),
            "BindOptions" => {
                for (bkey, bv) in v.as_object().into_iter().flatten() {
                    match bkey.as_str() {
                        "Propagation" => propagation = Some(string("Propagation", bv)?),
                        "NonRecursive" => recursive = bv.as_bool() != Some(true),
                        _ => return Err(unsupported(&format!("{what}.{bkey}"), bv)),
                    }
                }
            }
            _ => return Err(unsupported(&what, v)),
        }
    }
    let (Some(source), Some(target)) = (source, target) else {
        return Err(unsupported("Mounts", m));
    };
    let mut options = vec![if recursive { "rbind" } else { "bind" }.to_string()];
    options.extend(propagation);
    options.push(if read_only { "ro" } else { "rw" }.into());
    Ok(json!({
        "type": "bind",
        "source": source,
        "destination": target,
        "options": options,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::HostConfig;

    #[test]
    fn endpoints_follow_docker_host() {
        assert_eq!(
            endpoint(Some("unix:///run/podman/podman.sock")).unwrap(),
            Endpoint::Unix("/run/podman/podman.sock".into())
        );
        assert_eq!(
            endpoint(Some("tcp://10.0.0.5:8888")).unwrap(),
            Endpoint::Http("http://10.0.0.5:8888".into())
        );
        assert_eq!(
            endpoint(None).unwrap(),
            Endpoint::Unix(super::super::engine::podman_default_socket())
        );
        assert!(endpoint(Some("ssh://me@host")).is_err());
    }

    #[test]
    fn errors_tell_a_missing_image_and_a_taken_name_apart() {
        let image =
            json!({"cause": "image not known", "message": "x: image not known", "response": 500});
        assert!(matches!(
            failure(500, &image, "n"),
            CreateFailure::ImageMissing
        ));
        let name = json!({"cause": "that name is already in use", "response": 500});
        assert!(matches!(failure(500, &name, "n"), CreateFailure::NameInUse));
        let other = json!({"cause": "bad", "message": "something broke", "response": 500});
        let CreateFailure::Other(e) = failure(500, &other, "n") else {
            panic!("not other")
        };
        assert!(e.to_string().contains("something broke"), "{e}");
    }

    #[test]
    fn listed_names_come_whatever_the_state() {
        let list = json!([
            {"Names": ["sweb.eval.a.r1"], "State": "stopped"},
            {"Names": ["/b"], "State": "running"},
            {"State": "created"},
        ]);
        assert_eq!(
            names_of(list.as_array().unwrap()),
            vec!["sweb.eval.a.r1".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn fields_it_cannot_carry_are_refused_not_dropped() {
        let body = ContainerCreateBody {
            image: Some("img".into()),
            host_config: Some(HostConfig {
                readonly_rootfs: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = spec_generator("n", &body).unwrap_err().to_string();
        assert!(err.contains("HostConfig.ReadonlyRootfs"), "{err}");
        let body = ContainerCreateBody {
            image: Some("img".into()),
            host_config: Some(HostConfig {
                security_opt: Some(vec!["seccomp=unconfined".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(spec_generator("n", &body).is_err());
        let body = ContainerCreateBody {
            image: Some("img".into()),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                network_mode: Some("bridge".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(spec_generator("n", &body).is_err());
    }
}
