//! Runs the simulator's ACI face (`vk-cloud serve --face aci`) for a test: ARM, Azure AD and
//! the exec sockets over HTTPS with a CA made at start, a client secret vk signs in with.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use aci::{AciConfig, AciProvider};
use vk_core::provider::Provider;

use crate::vk::vk_binary;

pub const TENANT: &str = "e2e-tenant";
pub const CLIENT_ID: &str = "e2e-client";
pub const CLIENT_SECRET: &str = "e2e-client-secret";
pub const SUBSCRIPTION: &str = "00000000-0000-0000-0000-0000000000e2";
pub const RESOURCE_GROUP: &str = "vk-e2e";

/// A running ACI face; killed on drop.
pub struct AciCloud {
    child: Child,
    /// `https://127.0.0.1:PORT`
    pub endpoint: String,
    /// The CA its certificate is signed by.
    pub ca: PathBuf,
    /// The client secret, in a file vk reads.
    pub secret_file: PathBuf,
}

impl AciCloud {
    /// Start it with `executor` (`process` or `simulate`) and extra flags.
    pub fn start(executor: &str, extra: &[&str]) -> AciCloud {
        let bin = vk_binary().with_file_name("vk-cloud");
        let dir = std::env::temp_dir().join(crate::unique("vk-aci"));
        std::fs::create_dir_all(&dir).expect("the cloud's directory");
        let ca = dir.join("ca.pem");
        let secret_file = dir.join("client-secret");
        std::fs::write(&secret_file, CLIENT_SECRET).expect("the secret file");
        let mut cmd = Command::new(&bin);
        cmd.args(["serve", "--face", "aci", "--listen", "127.0.0.1:0"])
            .args(["--executor", executor])
            .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
            .args(["--tenant-id", TENANT, "--subscription-id", SUBSCRIPTION])
            .arg("--ca-out")
            .arg(&ca)
            .arg("--work-dir")
            .arg(dir.join("work"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
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
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("vk-cloud prints its address");
        AciCloud {
            child,
            endpoint: format!("https://{}", first.trim()),
            ca,
            secret_file,
        }
    }

    /// The `aci:` section of a vk config file pointing at this cloud.
    pub fn aci_config(&self) -> String {
        format!(
            "aci:\n  subscription_id: {SUBSCRIPTION}\n  resource_group: {RESOURCE_GROUP}\n  location: westeurope\n  endpoint: {0}\n  extra_ca_file: {1}\n  status_interval_ms: 500\n  log_poll_interval_ms: 300\n  credentials:\n    source: client_secret\n    tenant_id: {TENANT}\n    client_id: {CLIENT_ID}\n    client_secret_file: {2}\n    authority_host: {0}\n",
            self.endpoint,
            self.ca.display(),
            self.secret_file.display()
        )
    }

    /// The names of the pods whose container groups the cloud holds for `node`, asked with
    /// the provider's own client.
    pub async fn groups(&self, node: &str) -> anyhow::Result<Vec<String>> {
        let section = self.aci_config();
        let yaml = section.trim_start_matches("aci:\n");
        let mut config: AciConfig = serde_yaml::from_str(&unindent(yaml))?;
        config.node_name = node.into();
        let provider = AciProvider::new(config)?;
        Ok(provider
            .list()
            .await?
            .into_iter()
            .map(|i| i.pod.name)
            .collect())
    }
}

fn unindent(yaml: &str) -> String {
    yaml.lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for AciCloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
