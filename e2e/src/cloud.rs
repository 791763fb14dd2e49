//! Runs the mock ECI cloud (`vk-cloud serve`) as a real HTTP service for a test.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use crate::vk::vk_binary;

pub const ACCESS_KEY_ID: &str = "e2e-access-key";
pub const ACCESS_KEY_SECRET: &str = "e2e-access-secret";

/// A running `vk-cloud serve`; killed on drop.
pub struct MockCloud {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

impl MockCloud {
    /// Start it with the given executor (`process` or `simulate`) and extra flags.
    pub fn start(executor: &str, extra: &[&str]) -> MockCloud {
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
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("vk-cloud prints its address");
        MockCloud {
            child,
            endpoint: format!("http://{}", first.trim()),
        }
    }

    /// The `eci:` section of a vk config file pointing at this cloud.
    pub fn eci_config(&self) -> String {
        format!(
            "eci:\n  endpoint: {}\n  access_key_id: {ACCESS_KEY_ID}\n  access_key_secret: {ACCESS_KEY_SECRET}\n  status_interval_ms: 500\n  log_poll_interval_ms: 300\n",
            self.endpoint
        )
    }
}

impl Drop for MockCloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
