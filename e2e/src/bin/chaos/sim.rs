//! The simulator of the soak: `vk-cloud serve --face eci --executor simulate` on a fixed port
//! with a state file, so that a SIGKILL and a start again is a restart of the cloud's API
//! servers: the same address, the same groups.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use cloudsim::eci::persist::CreatesReport;
use e2e::cloud::{ACCESS_KEY_ID, ACCESS_KEY_SECRET};
use e2e::vk::{free_port, vk_binary};

pub struct Sim {
    child: Option<Child>,
    port: u16,
    pub state_file: PathBuf,
    pub log: PathBuf,
    pub endpoint: String,
}

impl Sim {
    /// Start it with its state and log in `dir`.
    pub fn start(dir: &Path) -> anyhow::Result<Sim> {
        let port = free_port();
        let mut sim = Sim {
            child: None,
            port,
            state_file: dir.join("cloud-state.json"),
            log: dir.join("vk-cloud.log"),
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        sim.spawn()?;
        Ok(sim)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .context("the simulator's log")?;
        let bin = vk_binary().with_file_name("vk-cloud");
        let mut cmd = Command::new(&bin);
        cmd.args(["serve", "--face", "eci", "--executor", "simulate"])
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["--access-key-id", ACCESS_KEY_ID])
            .args(["--access-key-secret", ACCESS_KEY_SECRET])
            .arg("--state-file")
            .arg(&self.state_file)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; the kernel kills the cloud if the soak dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("the simulator's stdout")?;
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .context("reading the simulator's address")?;
        if first.trim().is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "vk-cloud did not start (see {}): {}",
                self.log.display(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL, as a crash of the cloud's API servers.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same port with the same state file.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let mut tries = 0;
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                // The port may take a moment to be free again.
                Err(e) if tries < 20 => {
                    tries += 1;
                    eprintln!("[chaos] vk-cloud restart: {e:#}; again");
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The `eci:` section of vk's config for this cloud.
    pub fn eci_config(&self) -> String {
        format!(
            "eci:\n  endpoint: {0}\n  access_key_id: {ACCESS_KEY_ID}\n  access_key_secret: {ACCESS_KEY_SECRET}\n  status_interval_ms: 1000\n  log_poll_interval_ms: 1000\n  services:\n    vpc_endpoint: {0}\n    ecs_endpoint: {0}\n    quota_endpoint: {0}\n",
            self.endpoint
        )
    }

    /// Replace the injected faults (`POST /admin/faults`).
    pub async fn set_faults(&self, json: &str) -> anyhow::Result<()> {
        let (status, body) = self.request("POST", "/admin/faults", json).await?;
        if status != 200 {
            bail!("POST /admin/faults {json}: {status} {body}");
        }
        Ok(())
    }

    /// Every group the cloud made, with its tags, and whether it still exists.
    pub async fn creates(&self) -> anyhow::Result<CreatesReport> {
        let (status, body) = self.request("GET", "/admin/creates", "").await?;
        if status != 200 {
            bail!("GET /admin/creates: {status} {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("GET /admin/creates: {body}"))
    }

    async fn request(&self, method: &str, path: &str, json: &str) -> anyhow::Result<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = format!("127.0.0.1:{}", self.port);
        let work = async {
            let mut stream = tokio::net::TcpStream::connect(&addr).await?;
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            );
            stream.write_all(request.as_bytes()).await?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        let answer = tokio::time::timeout(std::time::Duration::from_secs(20), work)
            .await
            .with_context(|| format!("{method} {path}: no answer in 20 s"))?
            .with_context(|| format!("{method} {path}"))?;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((status, body.to_string()))
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.kill();
    }
}
