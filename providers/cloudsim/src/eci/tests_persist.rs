//! The ECI face's state file: a restarted face answers the same groups, tokens and counts.

use std::time::Duration;

use std::path::Path;
use std::sync::Arc;

use super::api::dispatch;
use super::config::MockCloudConfig;
use super::face::Face;
use super::persist::admin_creates;
use crate::engine::executor::simulate::SimulateExecutor;
use eci::wire::params::Params;

fn face(file: &Path) -> Face {
    let config = MockCloudConfig {
        schedule_latency_ms: 10,
        provision_latency_ms: 10,
        latency_jitter_ms: 0,
        state_file: Some(file.to_path_buf()),
        ..Default::default()
    };
    Face::new(config, Arc::new(SimulateExecutor::new(Default::default())))
}

async fn create(face: &Face, name: &str, run_ms: &str) -> String {
    let mut p = Params::new();
    for (k, v) in [
        ("RegionId", "cn-hangzhou"),
        ("ContainerGroupName", name),
        ("ClientToken", name),
        ("RestartPolicy", "Never"),
        ("Tag.1.Key", "pod-uid"),
        ("Tag.1.Value", name),
        ("Container.1.Name", "main"),
        ("Container.1.Image", "busybox"),
        ("Container.1.EnvironmentVar.1.Key", "MOCKCLOUD_RUN_MS"),
        ("Container.1.EnvironmentVar.1.Value", run_ms),
        ("Signature", "not-kept"),
        ("AccessKeyId", "not-kept-either"),
    ] {
        p.push(k, v);
    }
    let body = dispatch(face, "CreateContainerGroup", &p, "localhost")
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    body["ContainerGroupId"].as_str().unwrap().to_string()
}

fn status(face: &Face, id: &str) -> Option<crate::engine::Phase> {
    face.engine().state().get(id).map(|g| g.status)
}

#[tokio::test]
async fn a_restarted_face_answers_the_same_groups_tokens_and_counts() {
    let dir = std::env::temp_dir().join(format!("eci-state-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.json");
    let first = face(&file);
    assert_eq!(first.restore_state(), Ok(0), "no file yet");
    let long = create(&first, "long", "forever").await;
    let short = create(&first, "short", "400").await;
    // A ClientToken's repeat is not another group.
    assert_eq!(create(&first, "long", "forever").await, long);
    for _ in 0..100 {
        if status(&first, &short) == Some(crate::engine::Phase::Running) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.save_state();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("not-kept"), "the signature was kept: {text}");
    drop(first);

    let second = face(&file);
    assert_eq!(second.restore_state(), Ok(2));
    assert_eq!(status(&second, &long), Some(crate::engine::Phase::Running));
    assert_eq!(create(&second, "long", "forever").await, long);
    let report = second.creates();
    assert_eq!(report.creates.len(), 2, "{report:?}");
    assert!(report.creates.iter().all(|c| c.exists));
    assert_eq!(report.creates[0].created.tags["pod-uid"], "long");
    // The short one's timer went on and ended.
    for _ in 0..200 {
        if status(&second, &short) == Some(crate::engine::Phase::Succeeded) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        status(&second, &short),
        Some(crate::engine::Phase::Succeeded)
    );
    let (code, body) = admin_creates("GET", || second.creates());
    assert_eq!(code, 200);
    assert!(
        body.contains(&long) && body.contains("\"exists\":true"),
        "{body}"
    );
    assert_eq!(admin_creates("DELETE", || second.creates()).0, 405);

    std::fs::write(&file, "not json").unwrap();
    let err = face(&file).restore_state().unwrap_err();
    assert!(err.contains("is not a saved state"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
