//! A control plane of a test's own, for tests that kill and restart its components (the shared
//! one must stay up for the other tests): `e2e/cluster up` in a temp state dir, stopped on drop
//! and, should the test process die first, by the script's reaper.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::{cluster_script, repo_root, unique};

pub struct OwnCluster {
    pub state: PathBuf,
    pub kubectl: PathBuf,
}

impl OwnCluster {
    /// Starts a fresh cluster (panics with the script's output if it cannot).
    pub fn start(prefix: &str) -> OwnCluster {
        let state = std::env::temp_dir().join(unique(prefix));
        // Built before `up` so that a failed start still stops what it started.
        let mut cluster = OwnCluster {
            kubectl: PathBuf::new(),
            state,
        };
        cluster.up();
        let bin = cluster_script(&["env", "bin", "--state", &cluster.state_str()])
            .unwrap_or_else(|e| panic!("{e:#}"));
        cluster.kubectl = Path::new(&bin).join("kubectl");
        cluster
    }

    fn state_str(&self) -> String {
        self.state.to_string_lossy().to_string()
    }

    /// `e2e/cluster up` on this state; its stderr (what it did), panicking if it failed.
    pub fn up(&self) -> String {
        let pid = std::process::id().to_string();
        self.script(&["up", "--state", &self.state_str(), "--watch-pid", &pid])
    }

    /// `e2e/cluster restart COMPONENT`; its stderr, panicking if it failed.
    pub fn restart(&self, component: &str) -> String {
        self.script(&["restart", component, "--state", &self.state_str()])
    }

    fn script(&self, args: &[&str]) -> String {
        let out = Command::new(repo_root().join("e2e/cluster"))
            .args(args)
            .output()
            .expect("running e2e/cluster");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.success(),
            "e2e/cluster {} failed:\n{stderr}",
            args.join(" ")
        );
        stderr
    }

    /// The pid `e2e/cluster` recorded for `component` (etcd, kube-apiserver, ...).
    pub fn pid(&self, component: &str) -> i32 {
        let file = self.state.join("pids").join(format!("{component}.pid"));
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        text.trim().parse().expect("a pid")
    }

    /// SIGKILL `component`, as a crash, and wait until it is gone.
    pub fn kill(&self, component: &str) {
        let pid = self.pid(component);
        // SAFETY: kill(2) with a pid this cluster's script started and recorded.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // Gone or a zombie, which has closed its sockets: an exiting process's command line
        // is empty before its last thread has let go of its ports.
        while cloudsim::test_support::running(pid as u32) {
            assert!(
                std::time::Instant::now() < deadline,
                "{component} (pid {pid}) still alive 10 s after SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// kubectl against this cluster.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(self.state.join("kubeconfig"))
            .args(args)
            .output()
            .expect("running kubectl")
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("e2e/cluster"))
            .args(["down", "--state", &self.state_str()])
            .output();
    }
}
