//! What runs as a container's main in the `process` executor, as exec and attach find it
//! while its run lasts: a [`MainProcess`] (the process's stdin, its output broadcast to
//! attached clients, its terminal), or, for a timer main, a [`Holder`] (the sandbox the first
//! exec starts; see `process_holder`). Attach itself is in `process_attach`.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use vk_core::provider::TermSize;

use crate::engine::logstore::LogStore;
use crate::pty::PtyMaster;
use crate::sandbox::SandboxKiller;
use crate::sandbox::spawn::{Reader, Writer};

/// Output chunks kept for attached clients that fall behind.
const ATTACH_BUFFER: usize = 1024;

/// A line longer than this goes to the log in pieces.
const MAX_LINE: usize = 64 * 1024;

/// A running main process, as attached clients see it.
pub(super) struct MainProcess {
    /// Its stdin (`None` without `stdin`, or once closed); attached clients share it.
    stdin: tokio::sync::Mutex<Option<Writer>>,
    pub(super) stdout: broadcast::Sender<Bytes>,
    /// Silent with a terminal, where everything comes on stdout.
    pub(super) stderr: broadcast::Sender<Bytes>,
    /// Its terminal, with `tty`.
    pty: Mutex<Option<PtyMaster>>,
    /// Cancelled once the process has exited and its output is read (or the run is dropped).
    pub(super) ended: CancellationToken,
}

impl MainProcess {
    pub(super) fn new(stdin: Option<Writer>, pty: Option<PtyMaster>) -> Self {
        Self {
            stdin: tokio::sync::Mutex::new(stdin),
            stdout: broadcast::channel(ATTACH_BUFFER).0,
            stderr: broadcast::channel(ATTACH_BUFFER).0,
            pty: Mutex::new(pty),
            ended: CancellationToken::new(),
        }
    }

    /// The run is over: attached clients get what is left and end; the process's stdin and
    /// terminal close.
    pub(super) fn end(&self) {
        self.ended.cancel();
        if let Ok(mut stdin) = self.stdin.try_lock() {
            stdin.take();
        }
        self.pty.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Starts copying the process's stdout and stderr to attached clients and, line by line,
    /// to `log`; the tasks end when the pipes do.
    pub(super) fn pump(
        &self,
        stdout: Option<Reader>,
        stderr: Option<Reader>,
        log: &Arc<LogStore>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        [(stdout, &self.stdout), (stderr, &self.stderr)]
            .into_iter()
            .filter_map(|(from, to)| {
                let from = from?;
                Some(tokio::spawn(copy_output(from, to.clone(), log.clone())))
            })
            .collect()
    }

    pub(super) fn resize(&self, size: TermSize) {
        if let Some(pty) = &*self.pty.lock().unwrap_or_else(|p| p.into_inner())
            && let Err(e) = pty.resize(size)
        {
            tracing::debug!(error = %e, "resizing a main process's terminal");
        }
    }

    /// Writes `bytes` to the process's stdin; `false` when it has none or it is closed.
    pub(super) async fn write_stdin(&self, bytes: &[u8]) -> bool {
        let mut stdin = self.stdin.lock().await;
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
}

/// Copies one output of the process to the attached clients and, line by line, to the log.
async fn copy_output(mut from: Reader, to: broadcast::Sender<Bytes>, log: Arc<LogStore>) {
    let mut buf = vec![0u8; 32 * 1024];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            // EIO from a terminal whose processes are gone is its end too.
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        // No attached client is not an error.
        let _ = to.send(Bytes::copy_from_slice(chunk));
        for &b in chunk {
            if b == b'\n' || line.len() >= MAX_LINE {
                push_line(&log, &mut line);
                if b == b'\n' {
                    continue;
                }
            }
            line.push(b);
        }
    }
    if !line.is_empty() {
        push_line(&log, &mut line);
    }
}

fn push_line(log: &LogStore, line: &mut Vec<u8>) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    log.push(&String::from_utf8_lossy(line));
    line.clear();
}

/// The sandbox of one timer run, once something exec'd into it.
#[derive(Default)]
pub(super) struct Holder {
    /// The holder's outer bwrap, once started.
    pub(super) bwrap: tokio::sync::OnceCell<u32>,
    live: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    /// The run is over: no holder may start any more.
    ended: bool,
    /// Kills the holder's process group when dropped.
    killer: Option<SandboxKiller>,
    /// The holder's stdin, which nobody writes to; closing it ends `cat` too.
    stdin: Option<Writer>,
}

impl Holder {
    fn live(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The run ended: the holder (if any) dies now, with everything exec started in it.
    pub(super) fn kill(&self) {
        let (killer, stdin) = {
            let mut live = self.live();
            live.ended = true;
            (live.killer.take(), live.stdin.take())
        };
        drop(killer);
        drop(stdin);
    }

    /// Has the run ended?
    pub(super) fn ended(&self) -> bool {
        self.live().ended
    }

    /// Keeps a just-started holder (its process group's killer and its stdin) until the run
    /// ends; `false` when it ended already: the holder is killed at once.
    pub(super) fn adopt(&self, killer: SandboxKiller, stdin: Option<Writer>) -> bool {
        let mut live = self.live();
        if live.ended {
            drop(live);
            drop(killer);
            return false;
        }
        live.killer = Some(killer);
        live.stdin = stdin;
        true
    }

    /// The holder's outer bwrap, once one started.
    #[cfg(test)]
    pub(super) fn started(&self) -> Option<u32> {
        self.bwrap.get().copied()
    }
}
