//! Helpers shared by the component tests of the providers (mock, eci) and the simulator: an exec
//! client, reading a stream to its end, finding processes, waiting for a condition, and the
//! fuzz tests' deterministic generator.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, DuplexStream};
use vk_core::provider::ExecIo;

/// The client's side of an exec: the streams to hand to `Provider::exec`, and the ends that
/// read what the command printed.
pub struct ExecClient {
    pub io: ExecIo,
    pub stdout: DuplexStream,
    pub stderr: DuplexStream,
}

/// A client that sends `stdin` (then its end) when given; with `tty` there is no stderr
/// stream (it goes to the terminal).
pub fn exec_client(stdin: Option<&'static [u8]>, tty: bool) -> ExecClient {
    let (out_w, stdout) = tokio::io::duplex(1 << 16);
    let (err_w, stderr) = tokio::io::duplex(1 << 16);
    ExecClient {
        io: ExecIo {
            stdin: stdin.map(|b| Box::new(b) as Box<dyn AsyncRead + Send + Unpin>),
            stdout: Some(Box::new(out_w)),
            stderr: (!tty).then(|| Box::new(err_w) as _),
            tty,
            resize: None,
        },
        stdout,
        stderr,
    }
}

/// Everything a stream carries until its end, as text.
pub async fn read_all(mut r: DuplexStream) -> String {
    let mut s = String::new();
    r.read_to_string(&mut s).await.unwrap();
    s
}

/// Whether `pid` is a process that has not exited yet: neither gone nor a zombie (which has
/// closed its files and sockets).
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Live processes (not zombies) whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if running(pid) && String::from_utf8_lossy(&cmdline).contains(marker) {
            found.push(pid);
        }
    }
    found
}

pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen");
}

/// One pod's instance from the provider's listing (what vk-core sees), `None` when it has none.
pub async fn status_of(
    provider: &dyn vk_core::provider::Provider,
    pod: &vk_core::provider::PodRef,
) -> Result<Option<vk_core::provider::InstanceStatus>, vk_core::provider::ProviderError> {
    Ok(provider
        .list()
        .await?
        .into_iter()
        .find(|s| s.pod.uid == pod.uid))
}
