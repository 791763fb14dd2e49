//! Real main processes of mock containers (annotation `mock.vk.io/process.<container>`).
//!
//! The driver runs the process in place of the container's timer: it starts in the
//! container's sandbox ([`sandbox`](crate::sandbox)), which exec joins, with the container's
//! environment and working directory; its output is the container's log, one line per log
//! entry, and its exit code ends the container (and every process exec started in it). With
//! `tty: true` it runs on a pseudo-terminal that stays open while it runs (so `cat` waits);
//! with `stdin: true` its stdin is open (attached clients write to it). While it runs it is in
//! the [`Registry`], where `kubectl attach` finds it: attached clients get its output from
//! then on (a broadcast: a client too slow to keep up misses chunks rather than slowing the
//! process down) and write to its stdin. Detaching never touches the process; the driver
//! kills its whole process group when the container is stopped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use vk_core::provider::{PodRef, TermSize};

use super::Shared;
use crate::config::MainCommand;
use crate::logs::LogRun;
use crate::sandbox::{self, BWRAP_MISSING, Joinable, Target};
use cloudsim::pty::PtyMaster;
use cloudsim::sandbox::spawn::{Reader, Streams, Writer, exit_code, spawn};

/// Output chunks kept for attached clients that fall behind.
const ATTACH_BUFFER: usize = 1024;
/// After the process exits, how long its output may stay open (a background job holding it).
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);
/// A line longer than this is logged in pieces.
const MAX_LINE: usize = 64 * 1024;
/// The exit code of a container whose process could not be started (as runc reports it).
pub(crate) const START_FAILED_EXIT_CODE: i32 = 128;

/// A running main process, as attached clients see it.
pub(crate) struct MainProcess {
    /// The process's stdin (`None` without `stdin: true`); attached clients share it.
    pub stdin: tokio::sync::Mutex<Option<Writer>>,
    pub stdout: broadcast::Sender<Bytes>,
    /// Empty with a TTY, where everything comes on stdout.
    pub stderr: broadcast::Sender<Bytes>,
    pty: Option<PtyMaster>,
    /// Cancelled once the process has exited and its output is read.
    pub ended: CancellationToken,
}

impl MainProcess {
    /// Sets the size of the process's terminal; ignored without one.
    pub fn resize(&self, size: TermSize) {
        if let Some(pty) = &self.pty
            && let Err(err) = pty.resize(size)
        {
            tracing::debug!(%err, "resizing a main process's terminal");
        }
    }
}

/// The running main processes, by pod key and container name.
#[derive(Default)]
pub(crate) struct Registry {
    running: Mutex<HashMap<(String, String), Arc<MainProcess>>>,
}

impl Registry {
    pub fn get(&self, key: &str, container: &str) -> Option<Arc<MainProcess>> {
        self.lock()
            .get(&(key.to_string(), container.to_string()))
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<MainProcess>>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Removes a process from the registry when its run ends, however it ends.
struct Registered<'a> {
    registry: &'a Registry,
    id: (String, String),
    process: Arc<MainProcess>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.process.ended.cancel();
        let mut running = self.registry.lock();
        if running
            .get(&self.id)
            .is_some_and(|p| Arc::ptr_eq(p, &self.process))
        {
            running.remove(&self.id);
        }
    }
}

/// Runs `main` as the main process of container `target` of the instance `key` until it
/// exits; its exit code. Dropping the future kills the process and everything it started.
pub(crate) async fn run(
    shared: &Shared,
    key: &str,
    pod: &PodRef,
    target: &Target,
    main: &MainCommand,
    log: &LogRun,
) -> i32 {
    let container = target.container.name.as_str();
    let streams = Streams {
        stdin: main.stdin,
        stdout: true,
        stderr: true,
        tty: main.tty.then_some(None),
        ptmx: None,
    };
    let started = match sandbox::command(pod, target, &main.command).await {
        Ok(command) => spawn(command, &streams)
            .map_err(|err| format!("starting bwrap: {err}. {BWRAP_MISSING}")),
        Err(err) => Err(err),
    };
    let mut spawned = match started {
        Ok(spawned) => spawned,
        Err(err) => {
            log.push(
                shared.clock.now(),
                format!("failed to start the main process: {err}"),
            );
            return START_FAILED_EXIT_CODE;
        }
    };
    // Killing the sandbox's process group ends the process and everything it (or an exec)
    // started; that happens when the run ends or the pod goes, whichever comes first.
    let _sandbox = spawned.child.id().map(|bwrap| {
        let joinable = Joinable {
            bwrap,
            root: sandbox::root_dir(pod, container),
        };
        shared.sandboxes.register_main(
            key,
            container,
            &target.container_id,
            joinable,
            spawned.group,
        )
    });
    let process = Arc::new(MainProcess {
        stdin: tokio::sync::Mutex::new(spawned.stdin.take()),
        stdout: broadcast::channel(ATTACH_BUFFER).0,
        stderr: broadcast::channel(ATTACH_BUFFER).0,
        pty: spawned.pty.take(),
        ended: CancellationToken::new(),
    });
    let id = (key.to_string(), container.to_string());
    shared.processes.lock().insert(id.clone(), process.clone());
    let _registered = Registered {
        registry: &shared.processes,
        id,
        process: process.clone(),
    };
    tracing::debug!(%pod, container, command = ?main.command, "mock main process started");

    let (out, err) = (spawned.stdout.take(), spawned.stderr.take());
    let outputs = async {
        tokio::join!(
            copy_output(shared, out, &process.stdout, log),
            copy_output(shared, err, &process.stderr, log),
        );
    };
    tokio::pin!(outputs);
    let mut outputs_done = false;
    let status = loop {
        tokio::select! {
            status = spawned.child.wait() => break status,
            () = &mut outputs, if !outputs_done => outputs_done = true,
        }
    };
    if !outputs_done
        && tokio::time::timeout(OUTPUT_DRAIN, &mut outputs)
            .await
            .is_err()
    {
        tracing::debug!(%pod, container, "main process output still open after it exited");
    }
    match status {
        Ok(status) => exit_code(status),
        Err(err) => {
            log.push(
                shared.clock.now(),
                format!("waiting for the main process: {err}"),
            );
            START_FAILED_EXIT_CODE
        }
    }
}

/// Copies one output of the process to the attached clients and, line by line, to the log.
async fn copy_output(
    shared: &Shared,
    from: Option<Reader>,
    to: &broadcast::Sender<Bytes>,
    log: &LogRun,
) {
    let Some(mut from) = from else { return };
    let mut buf = vec![0u8; 32 * 1024];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            // EIO from a terminal whose process is gone is its end too.
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        // No attached client is not an error.
        let _ = to.send(Bytes::copy_from_slice(chunk));
        for &b in chunk {
            if b == b'\n' || line.len() >= MAX_LINE {
                push_line(shared, log, &mut line);
                if b == b'\n' {
                    continue;
                }
            }
            line.push(b);
        }
    }
    if !line.is_empty() {
        push_line(shared, log, &mut line);
    }
}

fn push_line(shared: &Shared, log: &LogRun, line: &mut Vec<u8>) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    log.push(
        shared.clock.now(),
        String::from_utf8_lossy(line).into_owned(),
    );
    line.clear();
}

/// Writes `bytes` to the process's stdin; `false` when it has none or it is closed.
pub(crate) async fn write_stdin(process: &MainProcess, bytes: &[u8]) -> bool {
    let mut stdin = process.stdin.lock().await;
    let Some(w) = stdin.as_mut() else {
        return false;
    };
    let written = async {
        w.write_all(bytes).await?;
        w.flush().await
    };
    if written.await.is_err() {
        *stdin = None;
        return false;
    }
    true
}
