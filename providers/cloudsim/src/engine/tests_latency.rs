//! The latency models through the lifecycle, on tokio's paused clock: the realistic model's
//! placement, attach and pulls (shared layers once, cached images not at all) take exactly
//! the formula's time, with its events; the instant model is as it always was.

use std::time::Duration;

use super::group::{CState, Group};
use super::latency::{LatencyModel, RealisticLatency, seconds};
use super::tests::{create, timer};
use super::*;

fn engine(model: LatencyModel) -> Engine {
    let config = EngineConfig {
        latency_jitter_ms: 0,
        latency_model: model,
        ..Default::default()
    };
    let executor = executor::simulate::SimulateExecutor::new(Default::default());
    Engine::new(config, Arc::new(executor))
}

/// A group running golang and the Jenkins agent (both forever).
fn build_pod(cache: CacheUse) -> NewGroup {
    let mut new = create("build");
    new.idempotency = None;
    let mut go = timer("go", None, 0);
    go.image = "golang:1.22".into();
    let mut jnlp = timer("jnlp", None, 0);
    jnlp.image = "jenkins/inbound-agent:latest".into();
    new.containers = vec![go, jnlp];
    new.image_cache = cache;
    new
}

fn peek<R>(engine: &Engine, id: &str, f: impl FnOnce(&Group) -> R) -> R {
    f(engine.state().get(id).expect("the group"))
}

fn reasons(engine: &Engine, id: &str) -> Vec<(String, String)> {
    peek(engine, id, |g| {
        g.events
            .iter()
            .map(|e| (e.reason.clone(), e.message.clone()))
            .collect()
    })
}

/// Sleep until `ms` after `start`.
async fn at(start: tokio::time::Instant, ms: u64) {
    tokio::time::sleep_until(start + Duration::from_millis(ms)).await;
}

#[tokio::test(start_paused = true)]
async fn realistic_pulls_the_shared_base_once_in_the_formulas_time() {
    let engine = engine(LatencyModel::Realistic);
    let r = RealisticLatency::default();
    let plan = r
        .plan(
            &engine.config().catalog,
            &["golang:1.22".into(), "jenkins/inbound-agent:latest".into()],
            &[],
        )
        .unwrap();
    let (go, agent) = (&plan.images[0], &plan.images[1]);
    let bookworm = 48.5;
    let agent_total: f64 = engine
        .config()
        .catalog
        .layers("jenkins/inbound-agent", 0.0)
        .unwrap()
        .iter()
        .map(|l| l.1)
        .sum();
    assert!(
        (agent.new_mb - (agent_total - bookworm)).abs() < 1e-9,
        "debian bookworm comes once, with golang"
    );
    let start = tokio::time::Instant::now();
    let id = engine.create(build_pod(CacheUse::None)).unwrap();

    at(start, r.placement_ms - 1).await;
    assert_eq!(peek(&engine, &id, |g| g.status), Phase::Scheduling);
    at(start, r.placement_ms + 1).await;
    assert_eq!(peek(&engine, &id, |g| g.status), Phase::Pending);

    // Attached, then pulling golang: Pending, the containers waiting in ContainerCreating.
    let pulling_go = r.placement_ms + r.eni_attach_ms;
    at(start, pulling_go + 1).await;
    peek(&engine, &id, |g| {
        assert_eq!(g.status, Phase::Pending);
        assert!(
            g.apps
                .iter()
                .all(|c| c.state == CState::waiting("ContainerCreating"))
        );
    });
    let events = reasons(&engine, &id);
    assert_eq!(
        events.last().unwrap(),
        &(
            "Pulling".to_string(),
            "Pulling image \"golang:1.22\"".to_string()
        )
    );
    let running_at = pulling_go + go.ms + agent.ms;
    assert_eq!(
        running_at,
        r.placement_ms
            + r.eni_attach_ms
            + 2 * r.per_image_ms
            + r.transfer_ms(go.new_mb)
            + r.transfer_ms(agent.new_mb)
    );
    at(start, running_at - 1).await;
    assert_eq!(peek(&engine, &id, |g| g.status), Phase::Pending);
    at(start, running_at + 1).await;
    assert_eq!(peek(&engine, &id, |g| g.status), Phase::Running);
    let events = reasons(&engine, &id);
    let pulled: Vec<&String> = events
        .iter()
        .filter(|(r, _)| r == "Pulled")
        .map(|(_, m)| m)
        .collect();
    assert_eq!(pulled.len(), 2);
    assert!(
        pulled[0].starts_with(&format!(
            "Successfully pulled image \"golang:1.22\" in {}",
            seconds(go.ms)
        )),
        "{}",
        pulled[0]
    );
    assert!(pulled[1].contains(&seconds(agent.ms)), "{}", pulled[1]);
    assert!(!events.iter().any(|(r, _)| r.contains("ImageCache")));
}

#[tokio::test(start_paused = true)]
async fn a_cache_hit_skips_its_images_pulls() {
    let engine = engine(LatencyModel::Realistic);
    let r = RealisticLatency::default();
    let cache = CacheUse::Hit {
        id: "imc-golang".into(),
        images: vec!["docker.io/library/golang:1.22".into()],
    };
    let plan = r
        .plan(
            &engine.config().catalog,
            &["golang:1.22".into(), "jenkins/inbound-agent:latest".into()],
            &["golang:1.22".into()],
        )
        .unwrap();
    let start = tokio::time::Instant::now();
    let id = engine.create(build_pod(cache)).unwrap();
    let running_at = r.placement_ms + r.eni_attach_ms + r.cache_attach_ms + plan.images[1].ms;
    at(start, running_at - 1).await;
    assert_eq!(peek(&engine, &id, |g| g.status), Phase::Pending);
    at(start, running_at + 1).await;
    assert_eq!(peek(&engine, &id, |g| g.status), Phase::Running);
    let events = reasons(&engine, &id);
    let reason_list: Vec<&str> = events.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        reason_list[..6],
        [
            "Created",
            "Scheduled",
            "SuccessfulHitImageCache",
            "Pulled",
            "Pulling",
            "Pulled"
        ]
    );
    assert_eq!(
        events[2].1,
        "Successfully hit image cache imc-golang, eci will be scheduled with this image cache."
    );
    assert_eq!(
        events[3].1,
        "Container image \"golang:1.22\" already present on machine"
    );
}

#[tokio::test(start_paused = true)]
async fn misses_and_auto_created_caches_are_told() {
    let engine = engine(LatencyModel::Instant);
    let id = engine
        .create(build_pod(CacheUse::Missed {
            auto_created: Some("imc-new".into()),
        }))
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = reasons(&engine, &id);
    assert!(events.iter().any(|(r, _)| r == "ImageCacheMissed"));
    assert!(events.contains(&(
        "ImageCacheAutoCreated".to_string(),
        "Image cache imc-new is auto created".to_string()
    )));
}

#[tokio::test(start_paused = true)]
async fn the_instant_model_is_unchanged() {
    let engine = engine(LatencyModel::Instant);
    let config = engine.config().clone();
    let start = tokio::time::Instant::now();
    let id = engine.create(build_pod(CacheUse::None)).unwrap();
    // No jitter: scheduling then provisioning, whatever the images' sizes.
    at(
        start,
        config.schedule_latency_ms + config.provision_latency_ms + 1,
    )
    .await;
    assert_eq!(peek(&engine, &id, |g| g.status), Phase::Running);
    let events = reasons(&engine, &id);
    assert!(events.contains(&(
        "Pulled".to_string(),
        "Pulled the images of build".to_string()
    )));
    assert!(!events.iter().any(|(r, _)| r == "Pulling"));
}

#[tokio::test(start_paused = true)]
async fn a_realistic_restart_finds_its_images_on_the_machine() {
    let engine = engine(LatencyModel::Realistic);
    let id = engine.create(build_pod(CacheUse::None)).unwrap();
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(peek(&engine, &id, |g| g.status), Phase::Running);
    engine.restart(&id).unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(peek(&engine, &id, |g| g.status), Phase::Running);
    let events = reasons(&engine, &id);
    assert!(
        events
            .iter()
            .any(|(_, m)| m.ends_with("already present on machine"))
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_image_still_waits_in_err_image_pull() {
    let engine = engine(LatencyModel::Realistic);
    let mut new = build_pod(CacheUse::None);
    new.containers[0].image = "nope.example.com/x:1".into();
    let id = engine.create(new).unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    peek(&engine, &id, |g| {
        assert_eq!(g.status, Phase::Pending);
        assert!(
            matches!(&g.apps[0].state, CState::Waiting { reason, .. } if reason == "ErrImagePull")
        );
    });
}
