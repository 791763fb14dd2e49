//! Every branch of the decision, on plain values.

use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A pod being deleted with 30 s of grace, `left` of it still to go.
fn deleting(left: Duration) -> Facts {
    Facts {
        deletion: Some(Deletion {
            grace: secs(30),
            left,
        }),
        ..Facts::default()
    }
}

fn with_instance(facts: Facts, phase: InstancePhase) -> Facts {
    Facts {
        instance: Some(phase),
        ..facts
    }
}

#[test]
fn a_deleted_pod_first_stops_its_instance_once() {
    let facts = with_instance(deleting(secs(20)), InstancePhase::Running);
    assert_eq!(decide(&facts), Decision::StopInstance { grace: secs(30) });
    // Also one that ended: the stop removes it.
    let ended = with_instance(deleting(secs(20)), InstancePhase::Succeeded);
    assert_eq!(decide(&ended), Decision::StopInstance { grace: secs(30) });

    let sent = Facts {
        delete_sent: true,
        ..facts
    };
    assert_eq!(decide(&sent), Decision::AwaitStop { after: secs(5) });
    let nearly_over = Facts {
        deletion: Some(Deletion {
            grace: secs(30),
            left: secs(2),
        }),
        ..sent.clone()
    };
    assert_eq!(decide(&nearly_over), Decision::AwaitStop { after: secs(2) });
}

#[test]
fn a_deleted_pod_leaves_the_api_once_its_instance_stopped_or_the_grace_is_over() {
    let stopped = Facts {
        delete_sent: true,
        ..with_instance(deleting(secs(20)), InstancePhase::Failed)
    };
    assert_eq!(
        decide(&stopped),
        Decision::DeleteFromApi {
            still_running: false
        }
    );
    assert_eq!(
        decide(&deleting(secs(20))),
        Decision::DeleteFromApi {
            still_running: false
        },
        "no instance"
    );
    let over = Facts {
        delete_sent: true,
        ..with_instance(deleting(Duration::ZERO), InstancePhase::Running)
    };
    assert_eq!(
        decide(&over),
        Decision::DeleteFromApi {
            still_running: true
        }
    );
}

#[test]
fn deletion_comes_before_everything_else() {
    let facts = Facts {
        terminal: true,
        deadline_passed: true,
        started: true,
        ..deleting(secs(20))
    };
    assert!(matches!(decide(&facts), Decision::DeleteFromApi { .. }));
}

#[test]
fn a_terminal_pod_is_left_alone() {
    let facts = Facts {
        terminal: true,
        deadline_passed: true,
        ..with_instance(Facts::default(), InstancePhase::Running)
    };
    assert_eq!(decide(&facts), Decision::Leave);
}

#[test]
fn a_passed_deadline_stops_an_instance_that_did_not_end_on_its_own() {
    let passed = Facts {
        deadline_passed: true,
        termination_grace: secs(5),
        ..Facts::default()
    };
    let stop = Decision::StopForDeadline { grace: secs(5) };
    assert_eq!(decide(&passed), stop, "not reported yet");
    for phase in [InstancePhase::Pending, InstancePhase::Running] {
        assert_eq!(decide(&with_instance(passed.clone(), phase)), stop);
    }
    for phase in [InstancePhase::Succeeded, InstancePhase::Failed] {
        assert_eq!(
            decide(&with_instance(passed.clone(), phase)),
            Decision::Mirror { update: None }
        );
    }
}

#[test]
fn an_instance_is_mirrored_and_updated_when_something_changed() {
    let running = Facts {
        generation: 2,
        generation_sent: Some(2),
        ..with_instance(Facts::default(), InstancePhase::Running)
    };
    assert_eq!(decide(&running), Decision::Mirror { update: None });
    // Adopted after a restart: the generation is taken as sent.
    let adopted = Facts {
        generation_sent: None,
        ..running.clone()
    };
    assert_eq!(decide(&adopted), Decision::Mirror { update: None });

    let update = |facts: Facts| match decide(&facts) {
        Decision::Mirror { update } => update,
        other => panic!("{other:?}"),
    };
    let respec = Facts {
        generation_sent: Some(1),
        ..running.clone()
    };
    assert_eq!(
        update(respec),
        Some(Update {
            respec: true,
            ..Update::default()
        })
    );
    let tokens = Facts {
        tokens_due: true,
        ..running.clone()
    };
    assert_eq!(
        update(tokens.clone()),
        Some(Update {
            tokens: true,
            ..Update::default()
        })
    );
    let files = Facts {
        mounted_changed: true,
        ..running.clone()
    };
    assert_eq!(
        update(files.clone()),
        Some(Update {
            files: true,
            ..Update::default()
        })
    );
    // An instance that ended gets no new tokens or files, but a new spec is still sent.
    let ended = |f: Facts| with_instance(f, InstancePhase::Succeeded);
    assert_eq!(update(ended(tokens)), None);
    assert_eq!(update(ended(files)), None);
    assert_eq!(
        update(ended(Facts {
            generation_sent: Some(1),
            ..running
        })),
        Some(Update {
            respec: true,
            ..Update::default()
        })
    );
}

#[test]
fn a_pod_that_ran_and_lost_its_instance_fails() {
    let facts = Facts {
        started: true,
        created_ago: Some(secs(1)),
        ..Facts::default()
    };
    assert_eq!(decide(&facts), Decision::InstanceLost);
}

#[test]
fn a_pod_without_an_instance_is_created_unless_it_just_was() {
    assert_eq!(decide(&Facts::default()), Decision::Create);
    let just = Facts {
        created_ago: Some(secs(10)),
        ..Facts::default()
    };
    assert_eq!(
        decide(&just),
        Decision::AwaitReport {
            after: secs(20) + Duration::from_millis(50)
        }
    );
    let long_ago = Facts {
        created_ago: Some(REPORT_WAIT),
        ..Facts::default()
    };
    assert_eq!(decide(&long_ago), Decision::Create, "created again");
}

fn pod(json: serde_json::Value) -> Pod {
    serde_json::from_value(json).unwrap()
}

fn instance(phase: InstancePhase) -> InstanceStatus {
    InstanceStatus {
        billing: None,
        pod: PodRef::default(),
        phase,
        reason: None,
        message: None,
        pod_ip: None,
        created_at: None,
        init_containers: vec![],
        containers: vec![],
        events: vec![],
    }
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn facts_are_read_from_the_pod_and_its_record() {
    let mono = Instant::now();
    let now = Now {
        wall: at("2025-01-01T00:10:00Z"),
        mono,
    };
    let p = pod(serde_json::json!({
        "metadata": {
            "name": "p", "generation": 3,
            "deletionTimestamp": "2025-01-01T00:10:12Z", "deletionGracePeriodSeconds": 15,
        },
        "spec": {
            "containers": [{"name": "a"}],
            "activeDeadlineSeconds": 60, "terminationGracePeriodSeconds": 7,
        },
        "status": {"phase": "Running", "startTime": "2025-01-01T00:00:00Z"},
    }));
    let record = PodRecord {
        instance: Some(instance(InstancePhase::Running)),
        delete_sent: true,
        generation_sent: Some(2),
        created: mono.checked_sub(secs(4)),
        tokens_due: Some(at("2025-01-01T00:20:00Z")),
        mounted_changed: true,
        ..PodRecord::default()
    };
    let facts = Facts::of(&p, Some(&record), true, now);
    assert_eq!(
        facts,
        Facts {
            deletion: Some(Deletion {
                grace: secs(15),
                left: secs(12),
            }),
            terminal: false,
            started: true,
            deadline_passed: true,
            termination_grace: secs(7),
            generation: 3,
            instance: Some(InstancePhase::Running),
            delete_sent: true,
            created_ago: Some(secs(4)),
            generation_sent: Some(2),
            tokens_due: false,
            mounted_changed: true,
        }
    );
    // Tokens whose refresh time is unknown (after a restart) are due.
    let fresh = pod(serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": []}}));
    let facts = Facts::of(&fresh, None, true, now);
    assert!(facts.tokens_due);
    assert_eq!(facts.termination_grace, secs(30));
    assert!(!facts.started && !facts.terminal && facts.deletion.is_none());
    assert!(!Facts::of(&fresh, None, false, now).tokens_due);
}

#[test]
fn a_pending_status_is_held_back_only_right_after_a_create() {
    let ms = Duration::from_millis;
    assert_eq!(interim_wait(Some("Pending"), Some(ms(100))), Some(ms(150)));
    assert_eq!(interim_wait(Some("Pending"), Some(INTERIM_DELAY)), None);
    assert_eq!(interim_wait(Some("Pending"), None), None, "adopted");
    assert_eq!(interim_wait(Some("Running"), Some(ms(100))), None);
}

#[test]
fn a_running_pod_wakes_for_its_tokens_or_every_five_minutes() {
    assert_eq!(mirror_wake(None), secs(300));
    assert_eq!(
        mirror_wake(Some(secs(60))),
        secs(60) + Duration::from_millis(50)
    );
    assert_eq!(
        mirror_wake(Some(secs(3600))),
        secs(300) + Duration::from_millis(50)
    );
}

#[test]
fn failures_back_off_exponentially_up_to_a_minute() {
    assert_eq!(backoff(1), secs(1));
    assert_eq!(backoff(2), secs(2));
    assert_eq!(backoff(6), secs(32));
    assert_eq!(backoff(7), secs(60));
    assert_eq!(backoff(u32::MAX), secs(60));
}

fn deadline_pod(deadline: Option<i64>, started: Timestamp) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p", "namespace": "ci", "uid": "u"},
        "spec": {"containers": [{"name": "a"}], "activeDeadlineSeconds": deadline},
        "status": {"startTime": started.to_string()},
    }))
    .unwrap()
}

#[test]
fn the_active_deadline_brings_the_next_reconcile_forward() {
    let now = Timestamp::now();
    let a_minute = Some(Duration::from_secs(60));
    assert_eq!(
        requeue(&deadline_pod(None, now), a_minute, now),
        Action::requeue(Duration::from_secs(60))
    );
    assert_eq!(
        requeue(&deadline_pod(None, now), None, now),
        Action::await_change()
    );
    // Exceeded already: at once (the reconcile then fails the pod).
    let long_ago = now.checked_sub(Duration::from_secs(3600)).unwrap();
    assert_eq!(
        requeue(&deadline_pod(Some(10), long_ago), a_minute, now),
        Action::requeue(Duration::from_millis(50))
    );
    assert_eq!(
        requeue(&deadline_pod(Some(10), long_ago), None, now),
        Action::requeue(Duration::from_millis(50))
    );
    // A deadline further away than the requested wake-up changes nothing.
    assert_eq!(
        requeue(&deadline_pod(Some(86_400), now), a_minute, now),
        Action::requeue(Duration::from_secs(60))
    );
}

#[test]
fn tokens_are_re_issued_at_four_fifths_of_their_shortest_life() {
    let with_tokens = pod(serde_json::json!({
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "a"}],
            "volumes": [{"name": "t", "projected": {"sources": [
                {"serviceAccountToken": {"path": "a", "expirationSeconds": 3600}},
                {"serviceAccountToken": {"path": "b", "expirationSeconds": 1000}},
            ]}}],
        },
    }));
    assert_eq!(tokens_valid_for(&with_tokens, None), Some(secs(800)));
    assert_eq!(
        tokens_valid_for(&with_tokens, Some(secs(20))),
        Some(secs(20)),
        "configured"
    );
    let without = pod(serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": []}}));
    assert_eq!(tokens_valid_for(&without, Some(secs(20))), None);
}

#[test]
fn a_deleted_or_terminal_pod_stops_keeping_its_namespace_watched() {
    let grace = secs(1);
    for d in [
        Decision::StopInstance { grace },
        Decision::DeleteFromApi {
            still_running: false,
        },
        Decision::AwaitStop { after: grace },
        Decision::Leave,
    ] {
        assert_eq!(d.reads_references(), Some(false), "{d:?}");
    }
    for d in [
        Decision::Mirror { update: None },
        Decision::InstanceLost,
        Decision::AwaitReport { after: grace },
        Decision::Create,
    ] {
        assert_eq!(d.reads_references(), Some(true), "{d:?}");
    }
    assert_eq!(Decision::StopForDeadline { grace }.reads_references(), None);
}

#[test]
fn instances_without_a_known_pod_are_orphans() {
    let of = |uid: &str| InstanceStatus {
        billing: None,
        pod: PodRef {
            namespace: "ci".into(),
            name: format!("p-{uid}"),
            uid: uid.into(),
        },
        ..instance(InstancePhase::Running)
    };
    let instances = [of("a"), of("b"), of("c")];
    let known: HashSet<String> = ["a".to_string(), "c".to_string()].into();
    let found: Vec<&str> = orphans(&instances, &known)
        .map(|p| p.uid.as_str())
        .collect();
    assert_eq!(found, ["b"]);
    assert_eq!(orphans(&instances, &HashSet::new()).count(), 3);
}
