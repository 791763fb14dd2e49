//! What a pod references reaches the provider resolved, on the real control plane: bound
//! service-account tokens (valid, naming the pod, refreshed), configMap/secret/downward-API
//! env and files, edits of mounted configMaps reaching the running instance, image pull
//! secrets as registry credentials, missing references, init container failures.

use std::path::Path;
use std::time::Duration;

use e2e::harness::{Options, TestBed};
use e2e::pods::{pod_for_node, wait_events, wait_phase};
use e2e::wait_for;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapKeySelector, ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, Event,
    LocalObjectReference, ObjectFieldSelector, Pod, Secret, SecretKeySelector, SecretVolumeSource,
    Volume, VolumeMount,
};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::Value;

/// A vk with the mock provider persisting what it received, `extra_config` appended to its
/// config file, and a namespace.
async fn setup(prefix: &str, extra_config: &str) -> TestBed {
    Options::mock(prefix)
        .state_file()
        .config(extra_config)
        .start()
        .await
}

/// The spec the provider received for a pod (the mock persists it).
fn received(state_file: &Path, uid: &str) -> Value {
    let state = serde_json::to_value(mock::Persisted::load(state_file)).unwrap_or(Value::Null);
    state["instances"][uid].clone()
}

fn env_of(spec: &Value, container: &str, name: &str) -> Option<String> {
    spec["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == container)?["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
        .map(str::to_string)
}

/// The content of file `path` in the volume named `volume` (or whose name starts with it).
fn file_of(spec: &Value, volume: &str, path: &str) -> Option<String> {
    let volumes = spec["volumes"].as_array()?;
    let v = volumes
        .iter()
        .find(|v| v["name"].as_str().is_some_and(|n| n.starts_with(volume)))?;
    let file = v["source"]["Files"]
        .as_array()?
        .iter()
        .find(|f| f["path"] == path)?;
    let bytes: Vec<u8> = file["content"]
        .as_array()?
        .iter()
        .filter_map(|b| b.as_u64().map(|b| b as u8))
        .collect();
    String::from_utf8(bytes).ok()
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

async fn review(client: &kube::Client, token: &str) -> TokenReview {
    let api: Api<TokenReview> = Api::all(client.clone());
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            audiences: None,
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &review).await.unwrap()
}

#[tokio::test]
async fn provider_gets_a_bound_service_account_token_that_is_refreshed() {
    let s = setup("vk-token", "token_refresh_seconds: 3\n").await;
    let pod = pod_for_node("tokened", &s.vk.node, &["main"], &[]);
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    let pod = wait_phase(&s.pods, "tokened", "Running", Duration::from_secs(60)).await;
    let uid = uid(&pod);

    let spec = received(s.state_file(), &uid);
    let token =
        file_of(&spec, "kube-api-access-", "token").expect("a token file in the projected volume");
    let ca = file_of(&spec, "kube-api-access-", "ca.crt").expect("ca.crt from kube-root-ca.crt");
    assert!(ca.contains("BEGIN CERTIFICATE"));
    assert_eq!(
        file_of(&spec, "kube-api-access-", "namespace").as_deref(),
        Some(s.ns.name.as_str())
    );

    let answer = review(&s.client, &token)
        .await
        .status
        .expect("review status");
    assert_eq!(answer.authenticated, Some(true), "{answer:?}");
    let user = answer.user.expect("user");
    assert_eq!(
        user.username.as_deref(),
        Some(format!("system:serviceaccount:{}:default", s.ns.name).as_str())
    );
    let extra = user.extra.unwrap_or_default();
    assert_eq!(
        extra
            .get("authentication.kubernetes.io/pod-name")
            .map(|v| v.as_slice()),
        Some(&["tokened".to_string()][..]),
        "the token is not bound to the pod: {extra:?}"
    );
    assert_eq!(
        extra
            .get("authentication.kubernetes.io/pod-uid")
            .map(|v| v.as_slice()),
        Some(&[uid.clone()][..])
    );

    // Re-issued on schedule (3 s here) and pushed to the provider.
    let mut refreshed = String::new();
    wait_for(
        "a refreshed token at the provider",
        Duration::from_secs(30),
        || {
            let next = file_of(&received(s.state_file(), &uid), "kube-api-access-", "token");
            let changed = next.as_ref().is_some_and(|t| *t != token);
            if let Some(t) = next.filter(|_| changed) {
                refreshed = t;
            }
            async move { changed }
        },
    )
    .await;
    let answer = review(&s.client, &refreshed)
        .await
        .status
        .expect("review status");
    assert_eq!(answer.authenticated, Some(true));
}

#[tokio::test]
async fn config_map_secret_and_downward_api_reach_the_container() {
    let s = setup("vk-refs", "").await;
    let cms: Api<ConfigMap> = Api::namespaced(s.client.clone(), &s.ns.name);
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.ns.name);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "build-settings"},
        "data": {"GOFLAGS": "-mod=vendor", "settings.xml": "<settings/>"}
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "registry"},
        "stringData": {"token": "s3cr3t", "config.json": "{\"auths\":{}}"}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    let mut pod = pod_for_node("refs", &s.vk.node, &["golang"], &[]);
    let spec = pod.spec.as_mut().unwrap();
    let c: &mut Container = &mut spec.containers[0];
    c.env = Some(vec![
        EnvVar {
            name: "GOFLAGS".into(),
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name: "build-settings".into(),
                    key: "GOFLAGS".into(),
                    optional: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
        EnvVar {
            name: "REGISTRY_TOKEN".into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: "registry".into(),
                    key: "token".into(),
                    optional: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
        EnvVar {
            name: "POD_NAME".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "metadata.name".into(),
                    api_version: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
        EnvVar {
            name: "GREETING".into(),
            value: Some("hello $(POD_NAME)".into()),
            ..Default::default()
        },
    ]);
    c.volume_mounts = Some(vec![VolumeMount {
        name: "docker-config".into(),
        mount_path: "/kaniko/.docker".into(),
        ..Default::default()
    }]);
    spec.volumes = Some(vec![Volume {
        name: "docker-config".into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some("registry".into()),
            default_mode: Some(0o400),
            ..Default::default()
        }),
        ..Default::default()
    }]);
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    let pod = wait_phase(&s.pods, "refs", "Running", Duration::from_secs(60)).await;
    let spec = received(s.state_file(), &uid(&pod));
    assert_eq!(
        env_of(&spec, "golang", "GOFLAGS").as_deref(),
        Some("-mod=vendor")
    );
    // In-cluster clients find the API server: by default the address vk itself uses.
    let server = kube::config::Kubeconfig::read()
        .ok()
        .and_then(|k| k.clusters.into_iter().next())
        .and_then(|c| c.cluster)
        .and_then(|c| c.server)
        .expect("the test kubeconfig names a server");
    let address = server.trim_start_matches("https://").trim_end_matches('/');
    let (host, port) = address.rsplit_once(':').unwrap_or((address, "443"));
    assert_eq!(
        env_of(&spec, "golang", "KUBERNETES_SERVICE_HOST").as_deref(),
        Some(host)
    );
    assert_eq!(
        env_of(&spec, "golang", "KUBERNETES_SERVICE_PORT").as_deref(),
        Some(port)
    );
    assert_eq!(
        env_of(&spec, "golang", &format!("KUBERNETES_PORT_{port}_TCP")),
        Some(format!("tcp://{host}:{port}"))
    );
    assert_eq!(
        env_of(&spec, "golang", "REGISTRY_TOKEN").as_deref(),
        Some("s3cr3t")
    );
    assert_eq!(env_of(&spec, "golang", "POD_NAME").as_deref(), Some("refs"));
    assert_eq!(
        env_of(&spec, "golang", "GREETING").as_deref(),
        Some("hello refs")
    );
    assert_eq!(
        file_of(&spec, "docker-config", "config.json").as_deref(),
        Some("{\"auths\":{}}")
    );
    let mode = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "docker-config")
        .and_then(|v| v["source"]["Files"][0]["mode"].as_u64());
    assert_eq!(mode, Some(0o400));
}

#[tokio::test]
async fn missing_secret_keeps_the_pod_pending_until_it_exists() {
    let s = setup("vk-missing", "").await;
    let mut pod = pod_for_node("waits", &s.vk.node, &["kaniko"], &[]);
    pod.spec.as_mut().unwrap().containers[0].env = Some(vec![EnvVar {
        name: "TOKEN".into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: "late-secret".into(),
                key: "token".into(),
                optional: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }]);
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let pod = loop {
        let pod = s.pods.get("waits").await.unwrap();
        let reason = pod
            .status
            .as_ref()
            .and_then(|st| st.container_statuses.as_ref())
            .and_then(|cs| cs.first())
            .and_then(|c| c.state.as_ref())
            .and_then(|st| st.waiting.as_ref())
            .and_then(|w| w.reason.clone());
        if reason.as_deref() == Some("CreateContainerConfigError") {
            break pod;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no CreateContainerConfigError within 60 s: {:?}",
            pod.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Pending"));

    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.ns.name);
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "late-secret"}, "stringData": {"token": "now"}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let pod = wait_phase(&s.pods, "waits", "Running", Duration::from_secs(60)).await;
    let spec = received(s.state_file(), &uid(&pod));
    assert_eq!(env_of(&spec, "kaniko", "TOKEN").as_deref(), Some("now"));
    // Woken by the namespace's secret watch, not by the periodic retry.
    let woken = format!("pod={}/waits", s.ns.name);
    assert!(
        s.vk.logs()
            .lines()
            .any(|l| l.contains("a referenced object changed") && l.contains(&woken)),
        "the secret watch did not wake the pod"
    );
}

#[tokio::test]
async fn an_edited_config_map_volume_reaches_the_running_instance() {
    let s = setup("vk-cmedit", "").await;
    let cms: Api<ConfigMap> = Api::namespaced(s.client.clone(), &s.ns.name);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "maven-settings"},
        "data": {"settings.xml": "<settings>v1</settings>"}
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();

    let mut pod = pod_for_node("maven", &s.vk.node, &["maven"], &[]);
    let spec = pod.spec.as_mut().unwrap();
    spec.containers[0].volume_mounts = Some(vec![VolumeMount {
        name: "m2".into(),
        mount_path: "/root/.m2".into(),
        ..Default::default()
    }]);
    spec.volumes = Some(vec![Volume {
        name: "m2".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: "maven-settings".into(),
            ..Default::default()
        }),
        ..Default::default()
    }]);
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    let pod = wait_phase(&s.pods, "maven", "Running", Duration::from_secs(60)).await;
    let uid = uid(&pod);
    assert_eq!(
        file_of(&received(s.state_file(), &uid), "m2", "settings.xml").as_deref(),
        Some("<settings>v1</settings>")
    );

    let edit = serde_json::json!({"data": {"settings.xml": "<settings>v2</settings>"}});
    cms.patch(
        "maven-settings",
        &PatchParams::default(),
        &Patch::Merge(&edit),
    )
    .await
    .unwrap();
    wait_for(
        "the edited settings.xml at the provider",
        Duration::from_secs(30),
        || {
            let file = file_of(&received(s.state_file(), &uid), "m2", "settings.xml");
            async move { file.as_deref() == Some("<settings>v2</settings>") }
        },
    )
    .await;
    // Updated in place: still the one instance, still running.
    let pod = s.pods.get("maven").await.unwrap();
    assert_eq!(e2e::pods::phase(&pod).as_deref(), Some("Running"));
    let state = mock::Persisted::load(s.state_file());
    assert_eq!(state.creates.get(&uid), Some(&1));
}

#[tokio::test]
async fn failing_init_container_fails_the_pod_with_its_exit_code() {
    let s = setup("vk-init", "").await;
    let mut pod = pod_for_node(
        "init-fails",
        &s.vk.node,
        &["main"],
        &[("mock.vk.io/exit-code.checkout", "7")],
    );
    pod.spec.as_mut().unwrap().init_containers = Some(vec![Container {
        name: "checkout".into(),
        image: Some("alpine/git:2.45".into()),
        command: Some(vec![
            "git".into(),
            "clone".into(),
            "https://example.invalid/repo".into(),
        ]),
        ..Default::default()
    }]);
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    let pod = wait_phase(&s.pods, "init-fails", "Failed", Duration::from_secs(60)).await;
    let status = pod.status.unwrap();
    let init = &status
        .init_container_statuses
        .expect("init container statuses")[0];
    let terminated = init
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("terminated");
    assert_eq!(terminated.exit_code, 7);
    let main = &status.container_statuses.unwrap()[0];
    assert!(
        main.state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .is_none(),
        "the app container must never have started"
    );
}

#[tokio::test]
async fn image_pull_secrets_reach_the_provider_and_a_missing_one_is_a_warning() {
    let s = setup("vk-pull", "").await;
    let secret: Secret = e2e::example("registry-credentials.yaml");
    Api::<Secret>::namespaced(s.client.clone(), &s.ns.name)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let mut pod = pod_for_node("private", &s.vk.node, &["app"], &[]);
    let spec = pod.spec.as_mut().unwrap();
    spec.containers[0].image = Some("registry.example.com/team/app:1".into());
    spec.image_pull_secrets = Some(vec![
        LocalObjectReference {
            name: "registry-credentials".into(),
        },
        LocalObjectReference {
            name: "not-there".into(),
        },
    ]);
    s.pods.create(&PostParams::default(), &pod).await.unwrap();
    let pod = wait_phase(&s.pods, "private", "Running", Duration::from_secs(60)).await;
    let spec = received(s.state_file(), &uid(&pod));
    assert_eq!(
        spec["image_pull_credentials"],
        serde_json::json!([
            {"server": "registry.example.com", "username": "demo", "password": "demo"}
        ])
    );
    let events: Api<Event> = Api::namespaced(s.client.clone(), &s.ns.name);
    let warning = wait_events(&events, "private", &["FailedToRetrieveImagePullSecret"])
        .await
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("FailedToRetrieveImagePullSecret"))
        .expect("a FailedToRetrieveImagePullSecret event");
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(
        warning.message.as_deref(),
        Some(
            "Unable to retrieve some image pull secrets (not-there); attempting to pull the image may not succeed."
        )
    );
}
