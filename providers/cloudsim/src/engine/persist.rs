//! The engine's groups and idempotency tokens kept across a restart of the simulator, as a
//! cloud keeps its groups across a restart of its API servers. [`Engine::save`] takes a
//! snapshot: each group's id, address, phase, times, events and containers' states, with the
//! face's record of the request that made it (as the face encodes it); [`Engine::restore`]
//! puts the groups back under their ids and addresses, and their lifecycles go on from where
//! they were: a scheduling or pending group starts its containers, a running group's running
//! containers run what is left of their time (timers: the `simulate` executor, and simulated
//! mains; a real process cannot be resumed and starts again), a terminating group finishes its
//! delete, an ended group stays ended. Logs are not kept: a resumed run's log starts empty.
//! Writing the snapshot to a file is the face's business (it knows when its state changed).

use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::group::{CState, Event, Group, Phase};
use super::lifecycle::{self, Begin};
use super::tokens::Remembered;
use super::{Engine, NewGroup};

/// A snapshot of the engine's groups and tokens.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    pub next_seq: u64,
    pub groups: Vec<SavedGroup>,
    pub tokens: Vec<SavedToken>,
}

/// One group as saved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedGroup {
    pub seq: u64,
    pub id: String,
    pub ip: String,
    pub status: Phase,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub finished: Option<Timestamp>,
    pub events: Vec<Event>,
    pub init: Vec<SavedContainer>,
    pub apps: Vec<SavedContainer>,
    /// The face's record of the request that made the group, as the face saved it.
    pub face: serde_json::Value,
}

/// One container's state as saved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedContainer {
    pub name: String,
    pub state: CState,
    pub previous: Option<CState>,
    pub restart_count: i32,
    pub started_once: bool,
    pub started: bool,
    pub ready: bool,
}

/// An idempotency token still remembered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedToken {
    pub token: String,
    pub fingerprint: String,
    pub group_id: String,
    pub at: Timestamp,
}

/// One group as [`Engine::save`] saves it, with `face` as its face's record.
pub fn saved_group(g: &Group, face: serde_json::Value) -> SavedGroup {
    SavedGroup {
        seq: g.seq,
        id: g.id().to_string(),
        ip: g.ip.clone(),
        status: g.status,
        created: g.created,
        updated: g.updated,
        finished: g.finished,
        events: g.events.clone(),
        init: g.init.iter().map(saved_container).collect(),
        apps: g.apps.iter().map(saved_container).collect(),
        face,
    }
}

fn saved_container(c: &super::group::ContainerRt) -> SavedContainer {
    SavedContainer {
        name: c.spec.name.clone(),
        state: c.state.clone(),
        previous: c.previous.clone(),
        restart_count: c.restart_count,
        started_once: c.started_once,
        started: c.started,
        ready: c.ready,
    }
}

impl Engine {
    /// A snapshot of every group and live token; `face` encodes a group's face record.
    pub fn save(&self, face: impl Fn(&Group) -> serde_json::Value) -> Saved {
        let now = self.inner.clock.now();
        let state = self.inner.lock();
        Saved {
            next_seq: state.next_seq,
            groups: state
                .groups
                .values()
                .map(|g| saved_group(g, face(g)))
                .collect(),
            tokens: state
                .tokens
                .live(now)
                .map(|(token, r, at)| SavedToken {
                    token: token.to_string(),
                    fingerprint: r.fingerprint.clone(),
                    group_id: r.group_id.clone(),
                    at,
                })
                .collect(),
        }
    }

    /// Put the saved groups and tokens back and let the groups' lifecycles go on. `rebuild`
    /// turns a saved group's face record back into the request that made it (its id is the
    /// saved one whatever `rebuild` says). A group that cannot be put back (its record no
    /// longer decodes, its id or address is taken, its containers differ) is left out: the
    /// answer names each, with the reason.
    pub fn restore(
        &self,
        saved: Saved,
        rebuild: impl Fn(&SavedGroup) -> Result<NewGroup, String>,
    ) -> Vec<String> {
        let mut skipped = Vec::new();
        let mut resumed = Vec::new();
        {
            let mut state = self.inner.lock();
            state.next_seq = state.next_seq.max(saved.next_seq);
            for g in saved.groups {
                let mut new = match rebuild(&g) {
                    Ok(new) => new,
                    Err(e) => {
                        skipped.push(format!("group {}: {e}", g.id));
                        continue;
                    }
                };
                if state.by_id.contains_key(&g.id)
                    || state.groups.contains_key(&g.seq)
                    || state.ips.contains(&g.ip)
                {
                    skipped.push(format!(
                        "group {}: its id, sequence number or address {} is taken",
                        g.id, g.ip
                    ));
                    continue;
                }
                new.id = g.id.clone();
                new.idempotency = None;
                let (mut group, cancel) = self.assemble(new, g.seq, g.ip.clone(), g.created);
                let same_containers = |rt: &[super::group::ContainerRt], s: &[SavedContainer]| {
                    rt.len() == s.len() && rt.iter().zip(s).all(|(c, s)| c.spec.name == s.name)
                };
                if !same_containers(&group.init, &g.init) || !same_containers(&group.apps, &g.apps)
                {
                    skipped.push(format!(
                        "group {}: its saved containers are not its request's",
                        g.id
                    ));
                    continue;
                }
                for (c, s) in group
                    .init
                    .iter_mut()
                    .zip(g.init)
                    .chain(group.apps.iter_mut().zip(g.apps))
                {
                    c.state = s.state;
                    c.previous = s.previous;
                    c.restart_count = s.restart_count;
                    c.started_once = s.started_once;
                    c.started = s.started;
                    c.ready = s.ready;
                    if matches!(c.state, CState::Terminated { .. }) {
                        c.log.close();
                    }
                }
                group.status = g.status;
                group.updated = g.updated;
                group.finished = g.finished;
                group.events = g.events;
                let begin = match g.status {
                    Phase::Scheduling => Some(Begin::Schedule),
                    Phase::Pending | Phase::Restarting => Some(Begin::Provision),
                    Phase::Running => Some(Begin::Resume),
                    // The delete that began goes on below; ended groups stay as they are.
                    Phase::Terminating => None,
                    _ => None,
                };
                state.ips.insert(g.ip);
                state.by_id.insert(g.id.clone(), g.seq);
                self.inner.notify(super::inner::Change::Changed(&group));
                state.groups.insert(g.seq, group);
                state.next_seq = state.next_seq.max(g.seq + 1);
                resumed.push((g.id, g.status, begin, cancel));
            }
            for t in saved.tokens {
                let remembered = Remembered {
                    fingerprint: t.fingerprint,
                    group_id: t.group_id,
                };
                state.tokens.insert(&t.token, remembered, t.at);
            }
        }
        for (id, status, begin, cancel) in resumed {
            match begin {
                Some(begin) => lifecycle::spawn_at(self.inner.clone(), id, 0, cancel, begin),
                None if status == Phase::Terminating => {
                    self.inner.remove(&id);
                }
                None => {}
            }
        }
        skipped
    }
}

/// Write `value` as JSON to `path` whole: to a file beside it first, then renamed over it, so
/// a reader (or a restart after a crash mid-write) sees the old state or the new, never half.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let text = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        // It holds what the requests held (registry credentials among them): the owner's only.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)?;
        file.write_all(&text)?;
    }
    std::fs::rename(&partial, path)
}

/// Read JSON from `path`; `None` when there is no such file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{} is not a saved state: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::RestartPolicy;
    use crate::engine::tests::{fast_engine, timer};

    /// The request of a group whose one container runs `run_ms` and exits with `code`.
    fn timed(name: &str, run_ms: u64, code: i32) -> NewGroup {
        let mut new = crate::engine::tests::create(name);
        new.containers = vec![timer("app", Some(run_ms), code)];
        new.restart_policy = RestartPolicy::Never;
        new.idempotency = Some((format!("token-{name}"), name.into()));
        new.face = std::sync::Arc::new(format!("{name}:{run_ms}:{code}"));
        new
    }

    /// The saved face record (`name:run_ms:code`) back into its request.
    fn rebuild(g: &SavedGroup) -> Result<NewGroup, String> {
        let text = g.face.as_str().ok_or("no record")?;
        let mut parts = text.split(':');
        let name = parts.next().ok_or("no name")?;
        let run: u64 = parts.next().and_then(|p| p.parse().ok()).ok_or("no run")?;
        let code: i32 = parts.next().and_then(|p| p.parse().ok()).ok_or("no code")?;
        Ok(timed(name, run, code))
    }

    fn face(g: &Group) -> serde_json::Value {
        serde_json::Value::String(g.face::<String>().cloned().unwrap_or_default())
    }

    #[tokio::test]
    async fn restored_groups_keep_ids_phases_tokens_and_their_timers_go_on() {
        let engine = fast_engine();
        let done = engine.create(timed("done", 0, 3)).unwrap();
        let running = engine.create(timed("running", 600, 0)).unwrap();
        crate::engine::tests::wait_for(&engine, &done, |g| g.status == Phase::Failed).await;
        crate::engine::tests::wait_for(&engine, &running, |g| g.status == Phase::Running).await;
        let started = std::time::Instant::now();
        let saved = engine.save(face);
        assert_eq!(saved.groups.len(), 2);
        assert_eq!(saved.tokens.len(), 2);
        // Through the file, as a restarted simulator reads it.
        let dir = std::env::temp_dir().join(format!("persist-{}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("state.json");
        write_json(&file, &saved).unwrap();
        let saved: Saved = read_json(&file).unwrap().expect("the saved file");
        std::fs::remove_dir_all(&dir).unwrap();

        // The simulator is down a while.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let restarted = fast_engine();
        let skipped = restarted.restore(saved, rebuild);
        assert!(skipped.is_empty(), "{skipped:?}");
        {
            let state = restarted.state();
            let g = state.get(&done).expect("the ended group");
            assert_eq!(g.status, Phase::Failed);
            assert!(matches!(
                &g.apps[0].state,
                CState::Terminated { exit, .. } if exit.code == 3
            ));
            assert_eq!(state.get(&running).map(|g| g.status), Some(Phase::Running));
        }
        // The same request with the same token answers the same group, as before.
        assert_eq!(restarted.create(timed("running", 600, 0)).unwrap(), running);
        assert_eq!(restarted.len(), 2);
        crate::engine::tests::wait_for(&restarted, &running, |g| g.status == Phase::Succeeded)
            .await;
        // It ran what was left of its 600 ms, not another 600 ms from the restore.
        assert!(
            started.elapsed() < Duration::from_millis(850),
            "{:?}",
            started.elapsed()
        );
        let state = restarted.state();
        let g = state.get(&running).unwrap();
        let CState::Terminated {
            started, finished, ..
        } = &g.apps[0].state
        else {
            panic!("{:?}", g.apps[0].state);
        };
        let ran = started.expect("a start time").duration_until(*finished);
        assert!(ran.as_millis() >= 550, "the run took {ran:?}");
    }

    #[tokio::test]
    async fn a_record_that_no_longer_decodes_is_left_out_with_its_reason() {
        let engine = fast_engine();
        let id = engine.create(timed("a", 10, 0)).unwrap();
        let saved = engine.save(|_| serde_json::Value::Null);
        let restarted = fast_engine();
        let skipped = restarted.restore(saved, rebuild);
        assert_eq!(skipped.len(), 1);
        assert!(
            skipped[0].contains(&id) && skipped[0].contains("no record"),
            "{skipped:?}"
        );
        assert!(restarted.is_empty());
        let err = read_json::<Saved>(Path::new("/proc/self/status")).unwrap_err();
        assert!(err.contains("is not a saved state"), "{err}");
    }
}
