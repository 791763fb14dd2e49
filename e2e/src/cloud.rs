//! Runs the mock ECI cloud (`vk-cloud serve`) as a real HTTP service for a test.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use eci::{EciConfig, EciProvider};
use vk_core::provider::Provider;

use crate::vk::vk_binary;

pub const ACCESS_KEY_ID: &str = "e2e-access-key";
pub const ACCESS_KEY_SECRET: &str = "e2e-access-secret";

/// A running `vk-cloud serve`; killed on drop.
pub struct MockCloud {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// Where its stderr goes, when not to the test's ([`MockCloud::start_logged`]).
    pub log: Option<PathBuf>,
}

impl MockCloud {
    /// Start it with the given executor (`process` or `simulate`) and extra flags.
    pub fn start(executor: &str, extra: &[&str]) -> MockCloud {
        Self::start_with(executor, extra, &[], None)
    }

    /// The same with extra environment variables (e.g. `RUST_LOG`), its stderr to a file of
    /// its own ([`MockCloud::logs`]).
    pub fn start_logged(executor: &str, extra: &[&str], env: &[(String, String)]) -> MockCloud {
        let log = std::env::temp_dir().join(format!("{}.log", crate::unique("vk-cloud")));
        Self::start_with(executor, extra, env, Some(log))
    }

    /// What it logged so far (empty unless started with [`MockCloud::start_logged`]).
    pub fn logs(&self) -> String {
        self.log
            .as_ref()
            .and_then(|l| std::fs::read_to_string(l).ok())
            .unwrap_or_default()
    }

    fn start_with(
        executor: &str,
        extra: &[&str],
        env: &[(String, String)],
        log: Option<PathBuf>,
    ) -> MockCloud {
        let stderr = match &log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("the cloud's log file")),
            None => Stdio::inherit(),
        };
        let bin = vk_binary().with_file_name("vk-cloud");
        let work = std::env::temp_dir().join(crate::unique("vk-cloud"));
        let mut cmd = Command::new(&bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--executor", executor])
            .args([
                "--access-key-id",
                ACCESS_KEY_ID,
                "--access-key-secret",
                ACCESS_KEY_SECRET,
            ])
            .arg("--work-dir")
            .arg(&work)
            .args(extra)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        // SAFETY: prctl is async-signal-safe; the kernel kills the cloud if the test dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("vk-cloud prints its address");
        MockCloud {
            child,
            endpoint: format!("http://{}", first.trim()),
            log,
        }
    }

    /// The names of the pods whose container groups the cloud holds for `node`, asked with
    /// the provider's own client (and its retries).
    pub async fn groups(&self, node: &str) -> anyhow::Result<Vec<String>> {
        let provider = EciProvider::new(EciConfig {
            endpoint: self.endpoint.clone(),
            access_key_id: ACCESS_KEY_ID.into(),
            access_key_secret: ACCESS_KEY_SECRET.into(),
            node_name: node.into(),
            ..Default::default()
        })?;
        Ok(provider
            .list()
            .await?
            .into_iter()
            .map(|i| i.pod.name)
            .collect())
    }

    /// Every group the cloud made, when, and how many creates and deletes its quota refused
    /// (`GET /admin/creates`).
    pub async fn creates(&self) -> cloudsim::eci::persist::CreatesReport {
        let body = http_request(&self.endpoint, "GET", "/admin/creates", "").await;
        serde_json::from_str(&body).expect("GET /admin/creates answers a CreatesReport")
    }

    /// The container groups the cloud holds for `node`, as DescribeContainerGroups answers
    /// them (zone, vSwitch, security group, tags).
    pub async fn node_groups(&self, node: &str) -> Vec<eci::wire::api::ContainerGroup> {
        use eci::pod::{tag, tags};
        use eci::wire::query::DescribeContainerGroups;
        let provider = EciProvider::new(EciConfig {
            endpoint: self.endpoint.clone(),
            access_key_id: ACCESS_KEY_ID.into(),
            access_key_secret: ACCESS_KEY_SECRET.into(),
            node_name: node.into(),
            ..Default::default()
        })
        .expect("an eci client for the mock cloud");
        let mut query = DescribeContainerGroups {
            tags: vec![tag(tags::NODE, node)],
            limit: Some(20),
            ..Default::default()
        };
        let mut groups = Vec::new();
        loop {
            let page = provider
                .client()
                .send(&query)
                .await
                .expect("DescribeContainerGroups");
            groups.extend(page.container_groups);
            if page.next_token.is_empty() {
                return groups;
            }
            query.next_token = Some(page.next_token);
        }
    }

    /// `services:` of the `eci:` section: VPC, ECS and Quota Center are this cloud too.
    fn services(&self) -> String {
        format!(
            "  services:\n    vpc_endpoint: {0}\n    ecs_endpoint: {0}\n    quota_endpoint: {0}\n",
            self.endpoint
        )
    }

    /// The `eci:` section of a vk config file pointing at this cloud.
    pub fn eci_config(&self) -> String {
        self.eci_config_polling(500)
    }

    /// The `eci:` section without an AccessKey: STS and the metadata service are this cloud.
    pub fn eci_config_keyless(&self) -> String {
        format!(
            "eci:\n  endpoint: {0}\n  sts_endpoint: {0}\n  metadata_endpoint: {0}\n  status_interval_ms: 500\n  log_poll_interval_ms: 300\n{1}",
            self.endpoint,
            self.services()
        )
    }

    /// What the cloud's STS and metadata faces saw and issued (`GET /admin/sts`).
    pub async fn sts_report(&self) -> cloudsim::sts::StsReport {
        let body = http_request(&self.endpoint, "GET", "/admin/sts", "").await;
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET /admin/sts: {e}: {body}"))
    }

    /// Make the cloud's STS refuse (`true`) or answer (`false`) AssumeRoleWithOIDC.
    pub async fn set_sts_failing(&self, failing: bool) {
        let json = format!(r#"{{"failing":{failing}}}"#);
        http_request(&self.endpoint, "POST", "/admin/sts", &json).await;
    }

    /// The same, with vk listing the node's groups every `status_interval_ms`.
    pub fn eci_config_polling(&self, status_interval_ms: u64) -> String {
        format!(
            "eci:\n  endpoint: {}\n  access_key_id: {ACCESS_KEY_ID}\n  access_key_secret: {ACCESS_KEY_SECRET}\n  status_interval_ms: {status_interval_ms}\n  log_poll_interval_ms: 300\n{}",
            self.endpoint,
            self.services()
        )
    }
}

impl Drop for MockCloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replace the faults the cloud at `endpoint` injects (`POST /admin/faults`, a `FaultConfig`
/// as JSON); returns the faults it now applies, as it echoes them.
pub async fn set_faults(endpoint: &str, json: &str) -> String {
    http_request(endpoint, "POST", "/admin/faults", json).await
}

/// One request to the cloud's admin API; the body of its 200 answer.
async fn http_request(endpoint: &str, method: &str, path: &str, json: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connecting to the mock cloud at {addr}: {e}"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("sending the request");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .expect("reading the answer");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    assert!(
        head.starts_with("HTTP/1.1 200"),
        "{method} {path} {json} was refused: {answer}"
    );
    body.to_string()
}
