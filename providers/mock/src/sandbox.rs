//! Containers' sandboxes on the mock ([`cloudsim::sandbox`], as in the mock cloud): a container's
//! real processes run in a bubblewrap sandbox laid out under the pod's directory:
//!
//! ```text
//! <tmp>/vk-mock-exec/<pod uid>/volumes/<volume>/     emptyDirs and files, shared by the pod
//! <tmp>/vk-mock-exec/<pod uid>/rootfs/<container>/   the container's writable root
//! <tmp>/vk-mock-exec/<pod uid>/etc/                  its /etc/hosts and /etc/resolv.conf
//! ```
//!
//! A container with an annotated main process has its sandbox while that process runs. Any
//! other container gets one on its first exec: a holder process (`cat` on a pipe nobody
//! writes to) keeps the namespaces alive for exec'd commands to join, until the container
//! stops (its run ends, it restarts, the pod goes). A pod nobody execs into spawns nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::process::Command;
use vk_core::provider::{ContainerSpec, PodRef, ResolvedPod, Volume, VolumeSource};

use super::pod_key;
use cloudsim::engine::spec::Names;
use cloudsim::sandbox::spawn::{Streams, spawn};
use cloudsim::sandbox::{self, HOST_DIRS, Sandbox, SandboxKiller, etc, join};

/// What to tell a person whose machine lacks bubblewrap.
pub(crate) const BWRAP_MISSING: &str = "bubblewrap (bwrap) runs the mock's container processes: install it with `apt-get install -y bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap`";

/// What to tell a person whose machine lacks nsenter.
pub(crate) const NSENTER_MISSING: &str =
    "nsenter (util-linux) runs exec'd commands inside their container: install util-linux";

/// The directory of a pod's sandboxes: `<tmp>/vk-mock-exec/<pod uid>` (the UID with anything
/// but ASCII letters, digits and `-` replaced by `_`).
pub(crate) fn pod_dir(pod: &PodRef) -> PathBuf {
    std::env::temp_dir()
        .join("vk-mock-exec")
        .join(cloudsim::sandbox::dir_name(&pod_key(pod)))
}

fn volume_dir(pod: &PodRef, volume: &str) -> PathBuf {
    pod_dir(pod).join("volumes").join(sandbox::sanitize(volume))
}

pub(crate) fn root_dir(pod: &PodRef, container: &str) -> PathBuf {
    pod_dir(pod)
        .join("rootfs")
        .join(sandbox::sanitize(container))
}

/// A container as its processes see it, read from the instance when they start.
#[derive(Clone)]
pub(crate) struct Target {
    pub container: ContainerSpec,
    pub volumes: Vec<Volume>,
    /// This run of the container (a new one on each restart).
    pub container_id: String,
    /// It has an annotated main process, whose sandbox exec joins.
    pub main_process: bool,
    /// The pod's hostname, resolver and host aliases, as an ECI group has them.
    pub names: Names,
    /// The pod's name, the hostname without another.
    pub pod_name: String,
    pub ip: String,
}

impl Target {
    /// What a container of `pod` (at `ip`) sees, if it runs.
    pub fn of(pod: &ResolvedPod, container: &ContainerSpec, main_process: bool, ip: &str) -> Self {
        Target {
            container: container.clone(),
            volumes: pod.volumes.clone(),
            container_id: String::new(),
            main_process,
            names: Names::of(pod),
            pod_name: pod.pod.name.clone(),
            ip: ip.to_string(),
        }
    }

    /// The hostname as the kubelet gives it (`uname -n`, `$HOSTNAME`).
    pub fn hostname(&self) -> String {
        etc::host_name(&self.names, &self.pod_name)
    }

    /// The environment of the container's processes.
    pub fn env(&self) -> Vec<(String, String)> {
        sandbox::container_env(
            &self.hostname(),
            self.container.tty,
            self.container
                .env
                .iter()
                .map(|e| (e.name.as_str(), e.value.as_str())),
        )
    }

    pub fn workdir(&self) -> &str {
        self.container.working_dir.as_deref().unwrap_or("/")
    }
}

/// Makes the pod's volumes: emptyDirs writable by anyone (as the kubelet makes them), files
/// written afresh (also after an update of the pod).
pub(crate) async fn write_volumes(pod: &PodRef, volumes: &[Volume]) -> Result<(), String> {
    for volume in volumes {
        let dir = volume_dir(pod, &volume.name);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
        match &volume.source {
            VolumeSource::EmptyDir { .. } => sandbox::set_mode(&dir, 0o777)
                .await
                .map_err(|e| e.to_string())?,
            VolumeSource::Files(files) => {
                for file in files {
                    sandbox::write_file(&dir, &file.path, &file.content, file.mode)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(())
}

/// The bwrap arguments of the container's sandbox, up to (not including) `--` and the argv.
pub(crate) async fn bwrap_args(pod: &PodRef, target: &Target) -> Result<Vec<String>, String> {
    write_volumes(pod, &target.volumes).await?;
    // The pod's /etc/hosts and /etc/resolv.conf, then the volumes.
    let who = etc::Identity {
        names: &target.names,
        name: &target.pod_name,
        ip: &target.ip,
    };
    let mut binds = etc::binds(&pod_dir(pod), &who)
        .await
        .map_err(|e| e.to_string())?;
    for mount in &target.container.volume_mounts {
        binds.push(
            sandbox::volume_bind(
                &volume_dir(pod, &mount.volume),
                mount.sub_path.as_deref().unwrap_or(""),
                &mount.mount_path,
                mount.read_only,
            )
            .await
            .map_err(|e| e.to_string())?,
        );
    }
    let host_dirs: Vec<PathBuf> = HOST_DIRS.iter().map(PathBuf::from).collect();
    sandbox::bwrap_args(&Sandbox {
        root: &root_dir(pod, &target.container.name),
        hostname: &target.hostname(),
        host_dirs: &host_dirs,
        binds: &binds,
        workdir: target.workdir(),
        env: &target.env(),
        read_only_root: false,
        shared_pid: false,
    })
    .await
    .map_err(|e| e.to_string())
}

/// bwrap running `argv` in the container's sandbox.
pub(crate) async fn command(
    pod: &PodRef,
    target: &Target,
    argv: &[String],
) -> Result<Command, String> {
    let args = bwrap_args(pod, target).await?;
    let mut command = Command::new("bwrap");
    command.args(args).arg("--").args(argv);
    Ok(command)
}

/// A running sandbox an exec can join: its outer bwrap and the container's root.
#[derive(Clone, Debug)]
pub(crate) struct Joinable {
    pub bwrap: u32,
    pub root: PathBuf,
}

/// The containers' sandboxes that run now, by pod key and container name.
#[derive(Default)]
pub(crate) struct Sandboxes {
    running: Mutex<HashMap<(String, String), Entry>>,
}

#[derive(Clone)]
struct Entry {
    container_id: String,
    slot: Arc<Slot>,
}

#[derive(Default)]
struct Slot {
    joinable: tokio::sync::OnceCell<Joinable>,
    /// The sandbox's process group (a holder's or a main process's).
    holder: Mutex<Option<SandboxKiller>>,
}

impl Slot {
    fn kill(&self) {
        drop(
            self.holder
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take(),
        );
    }
}

impl Sandboxes {
    fn lock(&self) -> MutexGuard<'_, HashMap<(String, String), Entry>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A main process's sandbox, for exec to join until the returned guard drops, which
    /// kills it (`killer`) unless the pod's deletion did already.
    pub fn register_main<'a>(
        &'a self,
        key: &str,
        container: &str,
        container_id: &str,
        joinable: Joinable,
        killer: SandboxKiller,
    ) -> Registration<'a> {
        let slot = Arc::new(Slot {
            joinable: tokio::sync::OnceCell::new_with(Some(joinable)),
            holder: Mutex::new(Some(killer)),
        });
        let id = (key.to_string(), container.to_string());
        let entry = Entry {
            container_id: container_id.to_string(),
            slot: slot.clone(),
        };
        if let Some(old) = self.lock().insert(id.clone(), entry) {
            old.slot.kill();
        }
        Registration {
            sandboxes: self,
            id,
            slot,
        }
    }

    /// The sandbox an exec into `target` joins: its main process's (once it runs), else
    /// the container's holder, started now if it has none yet.
    pub async fn joinable(&self, pod: &PodRef, target: &Target) -> Result<Joinable, String> {
        let id = (pod_key(pod), target.container.name.clone());
        if target.main_process {
            return self.main_of(&id, &target.container_id).await;
        }
        let slot = {
            let mut running = self.lock();
            match running.get(&id) {
                Some(entry) if entry.container_id == target.container_id => entry.slot.clone(),
                _ => {
                    let slot = Arc::new(Slot::default());
                    let entry = Entry {
                        container_id: target.container_id.clone(),
                        slot: slot.clone(),
                    };
                    if let Some(old) = running.insert(id.clone(), entry) {
                        old.slot.kill();
                    }
                    slot
                }
            }
        };
        let joinable = slot
            .joinable
            .get_or_try_init(|| async {
                let (joinable, killer) = start_holder(pod, target).await?;
                *slot.holder.lock().unwrap_or_else(|p| p.into_inner()) = Some(killer);
                Ok::<_, String>(joinable)
            })
            .await?
            .clone();
        // The container may have stopped while its holder started.
        let current = self
            .lock()
            .get(&id)
            .is_some_and(|e| Arc::ptr_eq(&e.slot, &slot));
        if !current {
            slot.kill();
            return Err(format!("container {} is not running", id.1));
        }
        Ok(joinable)
    }

    /// The main process's sandbox, which its run registers right after the container
    /// started.
    async fn main_of(&self, id: &(String, String), container_id: &str) -> Result<Joinable, String> {
        let deadline = tokio::time::Instant::now() + join::SETUP_WAIT;
        loop {
            let found = self
                .lock()
                .get(id)
                .filter(|e| e.container_id == container_id)
                .and_then(|e| e.slot.joinable.get().cloned());
            if let Some(joinable) = found {
                return Ok(joinable);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "the main process of container {} has no sandbox",
                    id.1
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The container stopped: its holder goes, and with it every process exec started.
    pub fn stop(&self, key: &str, container: &str) {
        let removed = self
            .lock()
            .remove(&(key.to_string(), container.to_string()));
        if let Some(entry) = removed {
            entry.slot.kill();
        }
    }

    /// The pod goes: every sandbox of it goes now, main processes' too.
    pub fn stop_pod(&self, key: &str) {
        let mut removed = Vec::new();
        self.lock().retain(|(k, _), entry| {
            let keep = k != key;
            if !keep {
                removed.push(entry.slot.clone());
            }
            keep
        });
        for slot in removed {
            slot.kill();
        }
    }

    /// Stops the container's sandbox when dropped (the run ended or was abandoned).
    pub fn stop_on_drop<'a>(&'a self, key: &str, container: &str) -> StopOnDrop<'a> {
        StopOnDrop {
            sandboxes: self,
            key: key.to_string(),
            container: container.to_string(),
        }
    }
}

/// Kills a main process's sandbox and forgets it when its run ends (unless a later run
/// replaced it).
pub(crate) struct Registration<'a> {
    sandboxes: &'a Sandboxes,
    id: (String, String),
    slot: Arc<Slot>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.slot.kill();
        let mut running = self.sandboxes.lock();
        if running
            .get(&self.id)
            .is_some_and(|e| Arc::ptr_eq(&e.slot, &self.slot))
        {
            running.remove(&self.id);
        }
    }
}

pub(crate) struct StopOnDrop<'a> {
    sandboxes: &'a Sandboxes,
    key: String,
    container: String,
}

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.sandboxes.stop(&self.key, &self.container);
    }
}

/// Starts the container's holder: `cat` on a pipe this side keeps open, in the container's
/// sandbox; it and everything exec'd into it die when the returned killer drops.
async fn start_holder(pod: &PodRef, target: &Target) -> Result<(Joinable, SandboxKiller), String> {
    let command = command(pod, target, &["cat".to_string()]).await?;
    let streams = Streams {
        stdin: true,
        stdout: false,
        stderr: false,
        tty: None,
        ptmx: None,
    };
    let spawned =
        spawn(command, &streams).map_err(|e| format!("starting bwrap: {e}. {BWRAP_MISSING}"))?;
    let mut child = spawned.child;
    let bwrap = child
        .id()
        .ok_or_else(|| "the container's sandbox ended at once".to_string())?;
    let stdin = spawned.stdin;
    // Reaps the holder; its stdin stays open while it runs.
    tokio::spawn(async move {
        let _stdin = stdin;
        let _ = child.wait().await;
    });
    let joinable = Joinable {
        bwrap,
        root: root_dir(pod, &target.container.name),
    };
    Ok((joinable, spawned.group))
}

/// Is `program` there for a command started in `workdir` of the sandbox whose first
/// process is `init`, with `PATH` from `env`? As runc, an exec of a missing program is an
/// error rather than an exit code.
pub(crate) fn find_program(
    init: u32,
    program: &str,
    env: &[(String, String)],
    workdir: &str,
) -> Result<(), String> {
    let root = PathBuf::from(format!("/proc/{init}/root"));
    let exists = |path: &Path| std::fs::symlink_metadata(path).is_ok();
    let inside = |path: &str| root.join(path.trim_start_matches('/'));
    if program.contains('/') {
        let path = if program.starts_with('/') {
            program.to_string()
        } else {
            format!("{workdir}/{program}")
        };
        if exists(&inside(&path)) {
            return Ok(());
        }
        return Err(format!(
            "exec: {program:?}: stat {program}: no such file or directory"
        ));
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if path
        .split(':')
        .filter(|dir| !dir.is_empty())
        .any(|dir| exists(&inside(&format!("{dir}/{program}"))))
    {
        return Ok(());
    }
    Err(format!(
        "exec: {program:?}: executable file not found in $PATH"
    ))
}
