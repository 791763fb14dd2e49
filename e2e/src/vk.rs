//! Runs the real `vk` binary against the shared cluster, with the least-privilege identity from
//! `manifests/base` (a ServiceAccount token from the TokenRequest API), never the admin one.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;

use crate::{cluster, kubectl_ok, repo_root, unique};

/// The `vk` binary next to the test executable (cargo builds it with the workspace).
pub fn vk_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("VK_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/vk
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("test binary under target/<profile>/deps");
    let vk = profile_dir.join("vk");
    assert!(
        vk.exists(),
        "{} does not exist: run `cargo build --bins` first (e2e/test does)",
        vk.display()
    );
    vk
}

/// A kubeconfig holding only the `vk-system/vk` ServiceAccount's token, after applying the
/// RBAC from `manifests/base`. Made once per test binary.
pub async fn service_account_kubeconfig(client: &kube::Client) -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    if let Some(p) = PATH.get() {
        return p.clone();
    }
    let base = repo_root().join("manifests/base");
    for file in ["namespace.yaml", "serviceaccount.yaml", "rbac.yaml"] {
        kubectl_ok(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &base.join(file).to_string_lossy(),
        ]);
    }
    let path = token_kubeconfig(client, "vk-system", "vk").await;
    let _ = PATH.set(path.clone());
    path
}

/// A kubeconfig for the API server with only a token of ServiceAccount `namespace/name` (valid
/// for a day), written to a file of its own.
pub async fn token_kubeconfig(client: &kube::Client, namespace: &str, name: &str) -> PathBuf {
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(24 * 3600),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let token = sa
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name}: {e}"))
        .status
        .expect("token status")
        .token;
    let admin = Kubeconfig::read_from(&cluster().kubeconfig).expect("admin kubeconfig");
    let context = admin
        .current_context
        .as_ref()
        .and_then(|name| admin.contexts.iter().find(|c| &c.name == name))
        .and_then(|c| c.context.clone())
        .expect("current context");
    let cluster_entry = admin
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.clone())
        .expect("cluster entry");
    let server = cluster_entry.server.clone().unwrap_or_default();
    let ca = cluster_entry
        .certificate_authority_data
        .clone()
        .unwrap_or_default();
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: vk\n  user:\n    token: {token}\ncontexts:\n- name: vk\n  context:\n    cluster: c\n    user: vk\ncurrent-context: vk\n"
    );
    // Tests of one binary may get here at once: each writes its own file and renames it into
    // place, so a vk started meanwhile never reads a half-written kubeconfig.
    let path = std::env::temp_dir().join(format!(
        "vk-e2e-sa-{namespace}-{name}-{}.kubeconfig",
        std::process::id()
    ));
    let partial = path.with_extension(format!("kubeconfig.{}", unique("part")));
    std::fs::write(&partial, yaml).expect("writing the SA kubeconfig");
    std::fs::rename(&partial, &path).expect("moving the SA kubeconfig into place");
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Approve the kubelet-serving CSR a vk submitted for `node`, as an operator would
/// (`kubectl certificate approve`), and wait until the signer issued it. Returns its name.
pub async fn approve_serving_csr(client: &kube::Client, node: &str) -> String {
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequest, CertificateSigningRequestCondition,
        CertificateSigningRequestStatus,
    };
    use kube::api::{ListParams, Patch, PatchParams};
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let prefix = format!("vk-serving-{node}-");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let name = loop {
        let list = api
            .list(&ListParams::default())
            .await
            .expect("listing CSRs");
        if let Some(csr) = list.items.iter().find(|c| {
            c.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(&prefix))
        }) {
            break csr.metadata.name.clone().unwrap_or_default();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "vk submitted no serving CSR for {node}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let approval = CertificateSigningRequest {
        status: Some(CertificateSigningRequestStatus {
            conditions: Some(vec![CertificateSigningRequestCondition {
                type_: "Approved".into(),
                status: "True".into(),
                reason: Some("E2EOperatorApproved".into()),
                message: Some("approved by the e2e suite, as kubectl certificate approve".into()),
                ..Default::default()
            }]),
            certificate: None,
        }),
        ..Default::default()
    };
    api.patch_approval(&name, &PatchParams::default(), &Patch::Merge(&approval))
        .await
        .expect("approving the CSR");
    name
}

/// A running `vk run` process; killed on drop.
pub struct Vk {
    child: Option<Child>,
    pub node: String,
    /// The kubelet API port (each vk of a test run has its own; the node IP is 127.0.0.1).
    pub kubelet_port: u16,
    cert_dir: PathBuf,
    pub log: PathBuf,
    config: PathBuf,
    kubeconfig: PathBuf,
    /// Extra environment of vk (after the defaults, so `RUST_LOG` may be overridden).
    env: Vec<(String, String)>,
}

impl Vk {
    /// The process id of the running vk (the bench reads its /proc figures).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Start `vk run` for `node` with the given config file body (YAML).
    pub fn start(kubeconfig: &std::path::Path, node: &str, config_yaml: &str) -> Vk {
        Self::start_with_env(kubeconfig, node, config_yaml, Vec::new())
    }

    /// The same, with extra environment variables for vk.
    pub fn start_with_env(
        kubeconfig: &std::path::Path,
        node: &str,
        config_yaml: &str,
        env: Vec<(String, String)>,
    ) -> Vk {
        let dir = std::env::temp_dir().join(format!("vk-e2e-{node}"));
        std::fs::create_dir_all(&dir).expect("vk dir");
        let config = dir.join("config.yaml");
        std::fs::write(&config, config_yaml).expect("vk config");
        let mut vk = Vk {
            child: None,
            node: node.to_string(),
            kubelet_port: free_port(),
            cert_dir: dir.join("certs"),
            log: dir.join("vk.log"),
            config,
            kubeconfig: kubeconfig.to_path_buf(),
            env,
        };
        vk.spawn();
        vk
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("vk log");
        let mut cmd = Command::new(vk_binary());
        cmd.arg("run")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--config")
            .arg(&self.config)
            .args(["--node-name", &self.node, "--node-ip", &cluster().node_ip])
            .arg("--kubelet-port")
            .arg(self.kubelet_port.to_string())
            .arg("--cert-dir")
            .arg(&self.cert_dir)
            .env(
                "RUST_LOG",
                std::env::var("VK_E2E_RUST_LOG").unwrap_or_else(|_| "info,vk_core=debug".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; it makes the kernel kill vk if the test dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().expect("starting vk"));
    }

    /// Another replica of this vk (run with leader election on): the same node, config file,
    /// identity and environment, its own kubelet port, certificate directory and log (under
    /// `<temp>/vk-e2e-<node>-<replica>`). Killed on drop: drop it before the node is deleted.
    pub fn replica(&self, replica: &str) -> Vk {
        let dir = std::env::temp_dir().join(format!("vk-e2e-{}-{replica}", self.node));
        std::fs::create_dir_all(&dir).expect("replica dir");
        let config = dir.join("config.yaml");
        std::fs::copy(&self.config, &config).expect("the replica's config");
        let mut vk = Vk {
            child: None,
            node: self.node.clone(),
            kubelet_port: free_port(),
            cert_dir: dir.join("certs"),
            log: dir.join("vk.log"),
            config,
            kubeconfig: self.kubeconfig.clone(),
            env: self.env.clone(),
        };
        let _ = std::fs::remove_file(&vk.log);
        vk.spawn();
        vk
    }

    /// `vk doctor` with this vk's flags and config file (optionally another kubeconfig, extra
    /// environment variables); its output.
    pub fn doctor(
        &self,
        kubeconfig: Option<&std::path::Path>,
        env: &[(&str, &str)],
    ) -> std::process::Output {
        Command::new(vk_binary())
            .arg("doctor")
            .arg("--kubeconfig")
            .arg(kubeconfig.unwrap_or(&self.kubeconfig))
            .arg("--config")
            .arg(&self.config)
            .args(["--node-name", &self.node, "--node-ip", &cluster().node_ip])
            .arg("--cert-dir")
            .arg(&self.cert_dir)
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .expect("running vk doctor")
    }

    /// This vk's config file as written.
    pub fn config_yaml(&self) -> String {
        std::fs::read_to_string(&self.config).expect("vk's config file")
    }

    /// `vk doctor` as [`Vk::doctor`] but with another config file body (e.g. one broken
    /// setting); vk itself keeps running with its own.
    pub fn doctor_with_config(&self, config_yaml: &str) -> std::process::Output {
        let path = self
            .config
            .with_file_name(format!("{}.yaml", unique("doctor")));
        std::fs::write(&path, config_yaml).expect("doctor config");
        let out = Command::new(vk_binary())
            .arg("doctor")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--config")
            .arg(&path)
            .args(["--node-name", &self.node, "--node-ip", &cluster().node_ip])
            .arg("--cert-dir")
            .arg(&self.cert_dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .expect("running vk doctor");
        let _ = std::fs::remove_file(&path);
        out
    }

    /// The exit status once vk exited by itself (without waiting); None while it runs.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGKILL: no chance to clean up, as after a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start again with the same node, config and identity.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Vk {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- vk log ({}) ----\n{}", self.log.display(), self.logs());
        }
    }
}

/// GET `path` from vk's plain-HTTP health port (`/healthz`, `/metrics`); the whole answer.
pub async fn health_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("vk's health port");
    let request = format!("GET {path} HTTP/1.1\r\nHost: vk\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}
