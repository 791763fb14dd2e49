//! Test harness for the end-to-end tests: a real control plane shared by all tests of a test
//! binary, a fresh `kube::Client` per test, a fresh namespace per test, and helpers to run
//! real clients (kubectl) and the real `vk` binary. [`harness`] starts a test's virtual node
//! (vk, its node, its serving certificate, a mock cloud) and namespace, and removes them in order.
//!
//! The cluster is the one `KUBECONFIG` names when it is set (the README's test command sets it
//! to the cluster it started); otherwise this binary starts its own with `e2e/cluster up`, and
//! a reaper stops it when the test process exits.

pub mod aci_cloud;
pub mod cloud;
pub mod dns;
pub mod fabric8;
pub mod fargate_cloud;
pub mod harness;
pub mod jenkins;
pub mod own_cluster;
pub mod pods;
pub mod python;
pub mod vk;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Where the shared cluster is.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub kubeconfig: PathBuf,
    /// The kubectl to run: the one built with the control plane, or `kubectl` from PATH.
    pub kubectl: PathBuf,
    /// The cluster's state dir when this project's scripts started it (holds the CA).
    pub state: Option<PathBuf>,
    /// The InternalIP the test's virtual nodes register (reachable by the API server and
    /// not loopback, which the API server refuses to proxy to).
    pub node_ip: String,
    /// The cluster DNS (CoreDNS, port 53) pods use as their nameserver: `VK_E2E_CLUSTER_DNS`,
    /// else `e2e/cluster env dns`; `None` for a cluster without one.
    pub dns: Option<String>,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// An object from `manifests/examples/<file>`, as a user would apply it.
pub fn example<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let path = repo_root().join("manifests/examples").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

pub(crate) fn cluster_script(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(repo_root().join("e2e/cluster"))
        .args(args)
        .output()
        .context("running e2e/cluster")?;
    if !out.status.success() {
        bail!(
            "e2e/cluster {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The cluster DNS address: the environment's, else the one the state dir records.
fn cluster_dns(state: Option<&Path>) -> Option<String> {
    if let Ok(addr) = std::env::var("VK_E2E_CLUSTER_DNS") {
        return Some(addr);
    }
    let state = state?.to_string_lossy().to_string();
    cluster_script(&["env", "dns", "--state", &state]).ok()
}

fn start_cluster() -> anyhow::Result<Cluster> {
    if let Some(kubeconfig) = std::env::var_os("KUBECONFIG") {
        let state = std::env::var_os("VK_E2E_CLUSTER_STATE").map(PathBuf::from);
        let kubectl = match &state {
            Some(s) => PathBuf::from(cluster_script(&[
                "env",
                "bin",
                "--state",
                &s.to_string_lossy(),
            ])?)
            .join("kubectl"),
            None => PathBuf::from("kubectl"),
        };
        let node_ip = match (&state, std::env::var("VK_E2E_NODE_IP")) {
            (_, Ok(ip)) => ip,
            (Some(s), Err(_)) => {
                cluster_script(&["env", "node-ip", "--state", &s.to_string_lossy()])?
            }
            (None, Err(_)) => "127.0.0.1".into(),
        };
        let dns = cluster_dns(state.as_deref());
        return Ok(Cluster {
            kubeconfig: PathBuf::from(kubeconfig),
            kubectl,
            state,
            node_ip,
            dns,
        });
    }
    let exe = std::env::current_exe()?;
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "tests".into());
    let state = std::env::temp_dir().join(format!("vk-e2e-{name}-{}", std::process::id()));
    let state_s = state.to_string_lossy().to_string();
    let pid = std::process::id().to_string();
    eprintln!(
        "[e2e] starting a control plane in {state_s} (set KUBECONFIG to use an existing cluster)"
    );
    let status = Command::new(repo_root().join("e2e/cluster"))
        .args(["up", "--state", &state_s, "--watch-pid", &pid])
        .status()
        .context("running e2e/cluster up")?;
    if !status.success() {
        bail!("e2e/cluster up failed");
    }
    let bin = cluster_script(&["env", "bin", "--state", &state_s])?;
    let node_ip = cluster_script(&["env", "node-ip", "--state", &state_s])?;
    let dns = cluster_dns(Some(&state));
    Ok(Cluster {
        kubeconfig: state.join("kubeconfig"),
        kubectl: PathBuf::from(bin).join("kubectl"),
        state: Some(state),
        node_ip,
        dns,
    })
}

/// The shared cluster, started on first use.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| match start_cluster() {
        Ok(c) => c,
        Err(e) => panic!("no control plane for the e2e tests: {e:#}"),
    })
}

/// A client for the shared cluster, bound to the calling test's runtime.
pub async fn client() -> kube::Client {
    let c = cluster();
    let kubeconfig = Kubeconfig::read_from(&c.kubeconfig).expect("reading the kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("loading the kubeconfig");
    kube::Client::try_from(config).expect("building a client")
}

/// A kubectl command against the shared cluster, for a test that wires its pipes itself.
pub fn kubectl_command(args: &[&str]) -> Command {
    let c = cluster();
    let mut cmd = Command::new(&c.kubectl);
    cmd.arg("--kubeconfig").arg(&c.kubeconfig).args(args);
    cmd
}

/// Run kubectl against the shared cluster.
pub fn kubectl(args: &[&str]) -> Output {
    kubectl_command(args).output().expect("running kubectl")
}

/// Run `cmd` to its end with `input` written to its stdin (no stdin when `None`); its
/// stdout and stderr.
pub fn output_with_input(mut cmd: Command, input: Option<&str>) -> Output {
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the command");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(input.as_bytes()).expect("writing stdin");
    }
    child.wait_with_output().expect("waiting for the command")
}

/// Run kubectl and return stdout, failing the test with stderr when it fails.
pub fn kubectl_ok(args: &[&str]) -> String {
    let out = kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A unique name for this test run (DNS-1123 safe).
pub fn unique(prefix: &str) -> String {
    let n: u32 = rand::random();
    format!("{prefix}-{:08x}", n)
}

/// A namespace that lives as long as the test; deleted (without waiting) on drop.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    pub async fn new(client: &kube::Client, prefix: &str) -> Self {
        let name = unique(prefix);
        let api: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    [("e2e.vk-serverless.io/test".to_string(), "true".to_string())].into(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &ns)
            .await
            .expect("creating the test namespace");
        // The ServiceAccount admission plugin rejects pods until the default SA exists.
        let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(client.clone(), &name);
        wait_for(
            "default service account",
            Duration::from_secs(30),
            || async { sa.get_opt("default").await.ok().flatten().is_some() },
        )
        .await;
        Self { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::env::var_os("VK_E2E_KEEP").is_some() {
            return;
        }
        let _ = kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// Poll `check` every 100 ms until it is true; panic naming `what` after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Delete a namespace and wait until it is gone.
pub async fn delete_namespace(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    api.delete(name, &DeleteParams::default()).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    while api.get_opt(name).await?.is_some() {
        if tokio::time::Instant::now() >= deadline {
            bail!("namespace {name} still exists after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Live processes (not zombies) whose command line contains `marker`: what a test checks to see
/// a command in a sandbox still run, or gone (the simulator's component tests use the same).
pub use cloudsim::test_support::processes_with;
