//! The mock cloud's memory across vk restarts: the spec of every instance, its address, and how
//! many times each pod was created.
//!
//! The file is a journal of JSON lines, one per change, each the whole record of one pod key
//! after it (`{"put": KEY, "pod": .., "ip": .., "creates": N}`) or its removal
//! (`{"delete": KEY, "creates": N}`), and the state of its running group when it changes
//! (`{"run": KEY, "group": ..}`, the engine's saved form); the last line about a key wins. A change costs one
//! appended line, not a rewrite of every instance (which made 10 000 creates quadratic). When
//! the journal holds more than three times as many lines as live keys (and at least
//! [`COMPACT_MIN_LINES`]), it is rewritten with one line per key, atomically. Lines are
//! written before the call returns, so a process killed afterwards (SIGKILL included) keeps
//! them. A file in the earlier format (one JSON object of all instances) is still read.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use cloudsim::engine::persist::SavedGroup;
use serde::{Deserialize, Serialize};
use vk_core::provider::ResolvedPod;

/// A journal shorter than this is never compacted.
const COMPACT_MIN_LINES: usize = 1024;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Persisted {
    /// By pod key (the UID).
    pub instances: BTreeMap<String, ResolvedPod>,
    /// Successful creates per pod key; a resumed instance is not counted again.
    pub creates: BTreeMap<String, u64>,
    /// Pod IPs per pod key: a resumed instance keeps its address.
    #[serde(default)]
    pub ips: BTreeMap<String, String>,
    /// The last state of each running group (its containers' states and start times), so a
    /// resumed instance goes on running as it was rather than starting again.
    #[serde(default)]
    pub runs: BTreeMap<String, SavedGroup>,
}

/// One journal line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Put {
        put: String,
        pod: Option<Box<ResolvedPod>>,
        ip: Option<String>,
        creates: u64,
    },
    Delete {
        delete: String,
        creates: u64,
    },
    Run {
        run: String,
        group: Box<SavedGroup>,
    },
}

impl Persisted {
    /// The state a state file holds (also for tests and tools that inspect the mock's cloud).
    /// A missing file is an empty cloud; unreadable lines are skipped with a warning.
    pub fn load(path: &Path) -> Self {
        let Ok(bytes) = std::fs::read(path) else {
            return Self::default();
        };
        if let Ok(whole) = serde_json::from_slice::<Self>(&bytes) {
            return whole;
        }
        let mut state = Self::default();
        let mut bad = 0usize;
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<Line>(line) {
                Ok(line) => state.apply(line),
                Err(_) => bad += 1,
            }
        }
        if bad > 0 {
            tracing::warn!(path = %path.display(), lines = bad, "skipped unreadable lines of the mock state file");
        }
        state
    }

    fn apply(&mut self, line: Line) {
        match line {
            Line::Put {
                put,
                pod,
                ip,
                creates,
            } => {
                match pod {
                    Some(pod) => self.instances.insert(put.clone(), *pod),
                    None => self.instances.remove(&put),
                };
                match ip {
                    Some(ip) => self.ips.insert(put.clone(), ip),
                    None => self.ips.remove(&put),
                };
                self.creates.insert(put, creates);
            }
            Line::Delete { delete, creates } => {
                self.instances.remove(&delete);
                self.ips.remove(&delete);
                self.runs.remove(&delete);
                self.creates.insert(delete, creates);
            }
            Line::Run { run, group } => {
                if self.instances.contains_key(&run) {
                    self.runs.insert(run, *group);
                }
            }
        }
    }

    /// The line that records `key` as it is now.
    fn line_of(&self, key: &str) -> Line {
        let creates = self.creates.get(key).copied().unwrap_or(0);
        if self.instances.contains_key(key) || self.ips.contains_key(key) {
            Line::Put {
                put: key.to_string(),
                pod: self.instances.get(key).cloned().map(Box::new),
                ip: self.ips.get(key).cloned(),
                creates,
            }
        } else {
            Line::Delete {
                delete: key.to_string(),
                creates,
            }
        }
    }
}

/// The open journal of a state file.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: Option<File>,
    lines: usize,
}

impl Journal {
    /// The journal of `path`, which already holds `state` (as [`Persisted::load`] read it):
    /// rewritten once, so it starts compact.
    pub fn open(path: &Path, state: &Persisted) -> Self {
        let mut journal = Self {
            path: path.to_path_buf(),
            file: None,
            lines: 0,
        };
        journal.compact(state);
        journal
    }

    /// Record `key` as `state` now holds it.
    pub fn record(&mut self, state: &Persisted, key: &str) {
        self.write_line(&state.line_of(key));
        self.compact_if_long(state);
    }

    /// Record the running state of `key`'s group (as `state.runs` holds it).
    pub fn record_run(&mut self, state: &Persisted, key: &str) {
        let Some(group) = state.runs.get(key) else {
            return;
        };
        let line = Line::Run {
            run: key.to_string(),
            group: Box::new(group.clone()),
        };
        self.write_line(&line);
        self.compact_if_long(state);
    }

    /// Rewrite the journal once it holds more than three lines per live key.
    fn compact_if_long(&mut self, state: &Persisted) {
        let keys = state.creates.len().max(state.instances.len());
        if self.lines >= COMPACT_MIN_LINES && self.lines > 3 * keys {
            self.compact(state);
        }
    }

    fn write_line(&mut self, line: &Line) {
        let result = serde_json::to_vec(line)
            .map_err(std::io::Error::other)
            .and_then(|mut bytes| {
                bytes.push(b'\n');
                self.append(&bytes)
            });
        match result {
            Ok(()) => self.lines += 1,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "writing the mock state file failed");
                self.file = None;
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&self.path)?,
            );
        }
        match &mut self.file {
            Some(file) => file.write_all(bytes),
            None => Ok(()),
        }
    }

    /// Rewrite the journal with one line per key (to a temporary file, then renamed).
    fn compact(&mut self, state: &Persisted) {
        let tmp = self.path.with_extension("tmp");
        let mut keys: Vec<&String> = state.creates.keys().collect();
        keys.extend(
            state
                .instances
                .keys()
                .filter(|k| !state.creates.contains_key(*k)),
        );
        let mut bytes = Vec::new();
        let mut result = Ok(());
        let mut lines = 0;
        for key in &keys {
            let run = state.runs.get(*key).map(|group| Line::Run {
                run: key.to_string(),
                group: Box::new(group.clone()),
            });
            for line in std::iter::once(state.line_of(key)).chain(run) {
                match serde_json::to_writer(&mut bytes, &line) {
                    Ok(()) => {
                        bytes.push(b'\n');
                        lines += 1;
                    }
                    Err(e) => {
                        result = Err(std::io::Error::other(e));
                        break;
                    }
                }
            }
        }
        self.file = None;
        let result = result
            .and_then(|()| std::fs::write(&tmp, &bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        match result {
            Ok(()) => self.lines = lines,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "rewriting the mock state file failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str) -> ResolvedPod {
        let mut pod = ResolvedPod::default();
        pod.pod.uid = uid.to_string();
        pod
    }

    #[test]
    fn the_journal_replays_puts_and_deletes_and_compacts() {
        let dir = std::env::temp_dir().join(format!("mock-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let _ = std::fs::remove_file(&path);
        let mut state = Persisted::default();
        let mut journal = Journal::open(&path, &state);
        for n in 0..3000 {
            let key = format!("uid-{}", n % 10);
            state.instances.insert(key.clone(), pod(&key));
            state.ips.insert(key.clone(), format!("10.0.0.{}", n % 10));
            *state.creates.entry(key.clone()).or_insert(0) += 1;
            journal.record(&state, &key);
            if n % 3 == 0 {
                state.instances.remove(&key);
                state.ips.remove(&key);
                journal.record(&state, &key);
            }
        }
        let read = Persisted::load(&path);
        assert_eq!(read.creates, state.creates);
        assert_eq!(
            read.instances.keys().collect::<Vec<_>>(),
            state.instances.keys().collect::<Vec<_>>()
        );
        assert_eq!(read.ips, state.ips);
        // Compacted along the way: far fewer lines than the 4000 changes.
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines <= COMPACT_MIN_LINES + 1, "{lines} lines");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_state_file_of_the_earlier_format_is_read() {
        let dir = std::env::temp_dir().join(format!("mock-journal-old-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let mut old = Persisted::default();
        old.instances.insert("keep".into(), pod("keep"));
        old.creates.insert("keep".into(), 2);
        std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        let read = Persisted::load(&path);
        assert_eq!(read.creates["keep"], 2);
        assert!(read.instances.contains_key("keep"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
