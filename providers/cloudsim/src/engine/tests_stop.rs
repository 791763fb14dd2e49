//! `Engine::stop`: the group is kept, ended, with its logs; a second stop, a stop before the
//! start and a stop of an unknown group.

use super::tests::{create, fast_engine, timer, wait_for};
use super::*;

#[tokio::test]
async fn a_stopped_group_is_kept_ended_with_its_logs() {
    let engine = fast_engine();
    let mut new = create("stop");
    new.idempotency = None;
    new.restart_policy = RestartPolicy::Never;
    new.containers = vec![timer("app", None, 0), timer("done", Some(0), 0)];
    let id = engine.create(new).unwrap();
    wait_for(&engine, &id, |g| {
        matches!(g.apps[0].state, group::CState::Running { .. })
            && matches!(g.apps[1].state, group::CState::Terminated { .. })
    })
    .await;
    engine.stop(&id).unwrap();
    {
        let state = engine.state();
        let g = state.get(&id).expect("kept");
        assert_eq!(g.status, Phase::Failed, "a container was killed");
        assert!(matches!(
            &g.apps[0].state,
            group::CState::Terminated { exit, .. } if exit.code == 137
        ));
    }
    let log = engine.log(&id, "app", false).unwrap().unwrap();
    assert!(log.select(None, None)[0].1.contains("started"));
    // Stopping again, or a group that never started, is fine; an unknown one is not.
    engine.stop(&id).unwrap();
    engine.faults().set(faults::FaultConfig {
        stuck_pending: true,
        ..Default::default()
    });
    let mut pending = create("pending");
    pending.idempotency = None;
    let waiting = engine.create(pending).unwrap();
    engine.stop(&waiting).unwrap();
    assert!(engine.state().get(&waiting).unwrap().is_terminal());
    assert!(matches!(
        engine.stop("nope"),
        Err(EngineError::GroupNotFound { .. })
    ));
}
