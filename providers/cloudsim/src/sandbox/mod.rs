//! Containers as real local processes in bubblewrap sandboxes, shared by the mock cloud's
//! `process` executor and the in-process `mock` provider.
//!
//! A container's sandbox binds its writable root directory at `/`, the host's system
//! directories read-only, the pod's volumes at their mount paths; it has its own PID, IPC and
//! UTS namespaces (its hostname) and the host's network; it starts with exactly the
//! container's environment in its working directory, and dies with the process that made it.
//! [`bwrap_args`] turns a neutral [`Sandbox`] description into bwrap's arguments;
//! [`join`] runs an exec'd command inside a running sandbox, as `runc exec` does;
//! [`spawn`] starts either on pipes or on a pseudo-terminal.

mod error;
pub mod etc;
pub mod join;
pub mod run_as;
pub mod spawn;

use std::path::{Path, PathBuf};

pub use error::SandboxError;

/// The host's directories every sandbox sees read-only (each skipped when absent).
pub const HOST_DIRS: [&str; 6] = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"];

/// A container's `PATH` unless it sets one (the usual default of container images).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A host file or directory bound into the sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    /// The path inside the sandbox.
    pub target: String,
    pub read_only: bool,
}

/// What a container's sandbox is made of, whoever runs it.
pub struct Sandbox<'a> {
    /// The container's writable root on the host, bound at `/`.
    pub root: &'a Path,
    pub hostname: &'a str,
    /// Host directories bound read-only (skipped when absent).
    pub host_dirs: &'a [PathBuf],
    /// Volumes (and files) at their mount paths, after the host directories.
    pub binds: &'a [Bind],
    /// The working directory inside the sandbox (made when missing).
    pub workdir: &'a str,
    pub env: &'a [(String, String)],
    /// `/` read-only (`readOnlyRootFilesystem`); volumes, `/dev` and `/proc` stay writable.
    pub read_only_root: bool,
    /// Join this process's PID namespace instead of making one (`shareProcessNamespace`);
    /// the caller runs bwrap in it.
    pub shared_pid: bool,
}

/// The bwrap arguments for `sandbox`, up to (not including) `--` and the argv. Makes the
/// root's `/tmp`; the binds' sources must exist.
pub async fn bwrap_args(sandbox: &Sandbox<'_>) -> Result<Vec<String>, SandboxError> {
    let tmp = sandbox.root.join("tmp");
    tokio::fs::create_dir_all(&tmp)
        .await
        .map_err(SandboxError::io("creating", &tmp))?;
    set_mode(&tmp, 0o1777).await?;
    let mut args: Vec<String> = vec!["--die-with-parent".into()];
    if !sandbox.shared_pid {
        args.push("--unshare-pid".into());
    }
    args.extend(
        ["--unshare-ipc", "--unshare-uts", "--hostname"]
            .iter()
            .map(|s| s.to_string()),
    );
    // The kernel's limit for a hostname.
    args.push(sandbox.hostname.chars().take(63).collect());
    args.extend(["--bind".into(), path_str(sandbox.root)?, "/".into()]);
    let targets: Vec<PathBuf> = sandbox
        .binds
        .iter()
        .map(|b| PathBuf::from(&b.target))
        .chain(std::iter::once(PathBuf::from(sandbox.workdir)))
        .filter(|t| needs_mount_point(t))
        .collect();
    let mut remount = Vec::new();
    for dir in sandbox.host_dirs {
        if tokio::fs::try_exists(dir).await.unwrap_or(false) {
            host_binds(dir, &targets, &mut args, &mut remount)?;
        }
    }
    args.extend([
        "--proc".into(),
        "/proc".into(),
        "--dev".into(),
        "/dev".into(),
    ]);
    for bind in sandbox.binds {
        let kind = if bind.read_only {
            "--ro-bind"
        } else {
            "--bind"
        };
        args.extend([kind.into(), path_str(&bind.source)?, bind.target.clone()]);
    }
    let workdir = sandbox.workdir.to_string();
    args.extend(["--dir".into(), workdir.clone(), "--chdir".into(), workdir]);
    for dir in remount {
        args.extend(["--remount-ro".into(), dir]);
    }
    if sandbox.read_only_root {
        args.extend(["--remount-ro".into(), "/".into()]);
    }
    args.push("--clearenv".into());
    for (k, v) in sandbox.env {
        args.extend(["--setenv".into(), k.clone(), v.clone()]);
    }
    Ok(args)
}

/// The bind of a volume's directory (or its `sub_path` inside it, made when missing) at
/// `mount_path`. A `sub_path` that leaves the volume is refused.
pub async fn volume_bind(
    volume_dir: &Path,
    sub_path: &str,
    mount_path: &str,
    read_only: bool,
) -> Result<Bind, SandboxError> {
    if sub_path.split('/').any(|s| s == "..") {
        return Err(SandboxError::SubPathLeavesVolume(sub_path.to_string()));
    }
    let source = volume_dir.join(sub_path.trim_start_matches('/'));
    tokio::fs::create_dir_all(&source)
        .await
        .map_err(SandboxError::io("creating", &source))?;
    Ok(Bind {
        source,
        target: mount_path.to_string(),
        read_only,
    })
}

/// The environment of a container's processes, main and exec'd alike: a default `PATH`,
/// `HOME`, `HOSTNAME`, `TERM` with a terminal (as container runtimes set it), then the
/// container's variables (later ones win; malformed names are skipped).
pub fn container_env<'a>(
    hostname: &str,
    tty: bool,
    vars: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), "/root".into()),
        ("HOSTNAME".into(), hostname.into()),
    ];
    if tty {
        env.push(("TERM".into(), "xterm".into()));
    }
    for (key, value) in vars {
        if key.is_empty() || key.contains('=') {
            continue;
        }
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.to_string()));
    }
    env
}

/// Writes a volume's file (`path` relative to the volume's `dir`) with `mode`: to a temporary
/// name of its own first (containers starting together write the same files), then renamed,
/// so a container never reads half a file.
pub async fn write_file(
    dir: &Path,
    path: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<(), SandboxError> {
    if path.starts_with('/') || path.split('/').any(|s| s == "..") {
        return Err(SandboxError::FileLeavesVolume(path.to_string()));
    }
    let path = dir.join(path);
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(SandboxError::io("creating", &parent))?;
    }
    let tmp = path.with_extension(format!("vk-tmp-{:016x}", rand::random::<u64>()));
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(SandboxError::io("writing", &tmp))?;
    set_mode(&tmp, mode).await?;
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(SandboxError::io("writing", &path))
}

/// Kills a sandbox's process group when dropped (the run or exec ended, or was abandoned).
/// bwrap's `--die-with-parent` alone leaves a window: bwrap killed before its child has set
/// its parent-death signal leaves the sandbox running; the group holds every bwrap process of
/// the sandbox, and killing its PID namespace's first process ends the rest.
pub struct SandboxKiller(Option<u32>);

impl SandboxKiller {
    /// For a process spawned as the leader of its own process group (or session).
    pub fn of(child: &tokio::process::Child) -> Self {
        Self(child.id())
    }

    /// Leaves the group alone after all.
    pub fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for SandboxKiller {
    fn drop(&mut self) {
        let Some(group) = self
            .0
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            return;
        };
        // ESRCH: the group is gone already.
        if let Err(err) = rustix::process::kill_process_group(group, rustix::process::Signal::KILL)
            && err != rustix::io::Errno::SRCH
        {
            tracing::warn!(pid = ?self.0, %err, "killing a sandbox's process group");
        }
    }
}

/// Must the sandbox make `target` in a host directory? Not when the host has it (a bind
/// lands on an existing file or directory, even in a read-only bind: `/etc/hosts`), but for a
/// missing path or a symlink (a bind cannot land on a link whose target the sandbox lacks).
fn needs_mount_point(target: &Path) -> bool {
    !std::fs::symlink_metadata(target).is_ok_and(|m| !m.file_type().is_symlink())
}

/// Bind a host directory read-only. When a volume or the working directory goes below it,
/// its mount point cannot be made in a read-only bind, so the directory becomes a tmpfs with
/// each entry bound read-only (recursing toward the targets), to be remounted read-only once
/// the volumes are in place.
fn host_binds(
    dir: &Path,
    targets: &[PathBuf],
    args: &mut Vec<String>,
    remount: &mut Vec<String>,
) -> Result<(), SandboxError> {
    let d = path_str(dir)?;
    let below = targets.iter().any(|t| t != dir && t.starts_with(dir));
    let is_symlink = std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    if !below || is_symlink {
        args.extend(["--ro-bind".into(), d.clone(), d]);
        return Ok(());
    }
    args.extend(["--tmpfs".into(), d.clone()]);
    remount.push(d);
    let entries = std::fs::read_dir(dir).map_err(SandboxError::io("listing", &dir))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let p = path_str(&path)?;
        if targets.contains(&path) {
            // A volume is mounted right here and hides the host's entry, as in Kubernetes.
            continue;
        }
        match entry.file_type() {
            Ok(t) if t.is_symlink() => {
                let link = std::fs::read_link(&path)
                    .map_err(SandboxError::io("reading the link", &path))?;
                args.extend(["--symlink".into(), path_str(&link)?, p]);
            }
            Ok(t) if t.is_dir() => host_binds(&path, targets, args, remount)?,
            Ok(_) => args.extend(["--ro-bind".into(), p.clone(), p]),
            Err(_) => {}
        }
    }
    Ok(())
}

/// `program` as found on this process's `PATH` (unchanged when it has a slash or is not
/// found): a command whose environment is the container's would look it up on theirs.
pub fn on_path(program: &Path) -> PathBuf {
    if program.components().count() > 1 {
        return program.to_path_buf();
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| program.to_path_buf())
}

/// A name (container, volume) as one safe path component.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

pub fn path_str(p: &Path) -> Result<String, SandboxError> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| SandboxError::NotUtf8(p.to_path_buf()))
}

pub async fn set_mode(path: &Path, mode: u32) -> Result<(), SandboxError> {
    use std::os::unix::fs::PermissionsExt as _;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(SandboxError::io("chmod", &path))
}

/// `name` as one safe directory name: anything but ASCII letters, digits and `-` becomes `_`,
/// so an id or a pod UID can never name a path outside the directory it is joined to.
pub fn dir_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
