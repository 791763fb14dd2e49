//! No secret reaches a log at any level: vk and the mock cloud (`vk-cloud`, eci provider,
//! `process` executor) run at `RUST_LOG=trace` (the cloud with the wire libraries named too)
//! through a whole pod life (a Secret-backed env var, the projected service-account token,
//! exec with the secret on stdin, `kubectl logs`), and neither log holds the Secret's value,
//! the pod's token or the cloud's AccessKey secret (plain, base64 or hex), while both hold
//! their trace lines and lines of that pod's life (the capture works). With the unsafe opt-in,
//! the payload does show (the search finds what it looks for).

use std::time::Duration;

use e2e::cloud::ACCESS_KEY_SECRET;
use e2e::harness::{Options, TestBed};
use e2e::pods::pod_for_node;
use e2e::{kubectl_command, kubectl_ok, output_with_input, unique};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, Event, Secret, SecretKeySelector};
use kube::api::{Api, ListParams, PostParams};

const TRACE: (&str, &str) = ("RUST_LOG", "trace");
/// Trace, and the wire libraries asked for by name: no directive lifts the cap.
const TRACE_WIRE: (&str, &str) = (
    "RUST_LOG",
    "trace,tungstenite=trace,tokio_tungstenite::compat=trace,h2=trace,hyper=trace,kube_client=trace",
);
/// What `cli::init_tracing` logs at trace when the wire libraries are capped.
const CAPPED_LINE: &str = "wire-level libraries log at debug at most";
const TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Standard base64, as the API sends a Secret's value.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Lowercase hex, as the WebSocket library prints a frame's payload.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn assert_absent(what: &str, text: &str, secrets: &[(&str, String)]) {
    for (name, secret) in secrets {
        assert!(secret.len() >= 16, "{name} is too short to search for");
        assert!(
            !text.contains(secret.as_str()),
            "{name} appears in {what}: {}",
            text.lines()
                .find(|l| l.contains(secret.as_str()))
                .unwrap_or_default()
                .replace(secret.as_str(), "<SECRET>")
        );
    }
}

/// What a pod life moved through vk and the cloud: the Secret's value and the pod's token.
struct Life {
    s: TestBed,
    canary: String,
    token: String,
}

/// A pod with a Secret-backed env var on a node made of `options`, exec with the Secret's value
/// on stdin (echoed back), the token read over exec, `kubectl logs`.
async fn pod_life(options: Options) -> Life {
    let s = options.serving_cert().start().await;
    let canary = unique("canary-secret-value");
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("hygiene".into()),
            ..Default::default()
        },
        string_data: Some([("value".to_string(), canary.clone())].into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(s.client.clone(), &s.ns.name)
        .create(&PostParams::default(), &secret)
        .await
        .expect("creating the secret");
    let mut pod = pod_for_node("hygiene", &s.vk.node, &["main"], &[]);
    let container = &mut pod.spec.as_mut().expect("spec").containers[0];
    container.env = Some(vec![EnvVar {
        name: "CANARY".into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: "hygiene".into(),
                key: "value".into(),
                optional: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }]);
    container.command = Some(vec![
        "sh".into(),
        "-c".into(),
        "echo \"env=$CANARY\"; sleep 3600".into(),
    ]);
    s.run_pod_within(&pod, Duration::from_secs(120)).await;

    // exec with the secret on stdin, echoed back on stdout.
    let exec = kubectl_command(&[
        "-n",
        &s.ns.name,
        "exec",
        "-i",
        "hygiene",
        "-c",
        "main",
        "--",
        "sh",
        "-c",
        "read x; echo \"stdin=$x\"",
    ]);
    let out = output_with_input(exec, Some(&format!("{canary}\n")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("stdin={canary}")),
        "exec did not echo stdin: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The token, read from inside the container (it crosses the exec stream too).
    let token = kubectl_ok(&[
        "-n", &s.ns.name, "exec", "hygiene", "-c", "main", "--", "cat", TOKEN_PATH,
    ]);
    let token = token.trim().to_string();
    assert!(
        token.starts_with("eyJ"),
        "not a JWT: {} characters",
        token.len()
    );
    // The env var, through the log stream.
    let logs = kubectl_ok(&["-n", &s.ns.name, "logs", "hygiene", "-c", "main"]);
    assert!(
        logs.contains(&format!("env={canary}")),
        "kubectl logs: {logs}"
    );
    Life { s, canary, token }
}

#[tokio::test]
async fn secrets_tokens_and_exec_payloads_never_reach_the_logs_at_trace_level() {
    let options = Options::eci("vk-hygiene", "process", &[])
        .vk_env(&[TRACE])
        .cloud_env(&[TRACE_WIRE]);
    let Life { s, canary, token } = pod_life(options).await;
    let signature = token.rsplit('.').next().unwrap_or_default().to_string();
    let secrets = [
        ("the Secret's value", canary.clone()),
        ("the Secret's value in base64", base64(canary.as_bytes())),
        ("the Secret's value in hex", hex(canary.as_bytes())),
        ("the pod's service-account token", token.clone()),
        ("the token in base64", base64(token.as_bytes())),
        ("the token's signature", signature.clone()),
        ("the token's signature in hex", hex(signature.as_bytes())),
        (
            "the cloud's AccessKey secret",
            ACCESS_KEY_SECRET.to_string(),
        ),
    ];
    let vk_log = s.vk.logs();
    let cloud_log = s.cloud().logs();
    // The capture works: both logs hold the trace line of the start-up, and lines of this
    // pod's life.
    for (who, log) in [("vk", &vk_log), ("vk-cloud", &cloud_log)] {
        assert!(
            log.lines()
                .any(|l| l.contains(" TRACE ") && l.contains(CAPPED_LINE)),
            "{who}'s log lacks its trace line on the cap"
        );
    }
    assert!(vk_log.contains("hygiene"), "vk's log does not name the pod");
    assert!(
        cloud_log.contains("interactive exec started"),
        "vk-cloud's log does not show the exec sessions"
    );
    assert_absent("vk's log", &vk_log, &secrets);
    assert_absent("vk-cloud's log", &cloud_log, &secrets);

    // Nor in the pod's Events.
    let events = Api::<Event>::namespaced(s.client.clone(), &s.ns.name)
        .list(&ListParams::default())
        .await
        .expect("listing events");
    let events = serde_json::to_string(&events.items).expect("events as JSON");
    assert_absent("the Events", &events, &secrets);
}

/// The control: with `VK_LOG_PAYLOADS=1` the cloud's log does hold the exec payload, so the
/// search above finds what it looks for, and the opt-in is announced.
#[tokio::test]
async fn the_opt_in_lets_the_payloads_into_the_log() {
    let options =
        Options::eci("vk-payloads", "process", &[]).cloud_env(&[TRACE, ("VK_LOG_PAYLOADS", "1")]);
    let Life { s, canary, .. } = pod_life(options).await;
    let cloud_log = s.cloud().logs();
    assert!(
        cloud_log.contains("VK_LOG_PAYLOADS is set"),
        "the opt-in is not announced"
    );
    assert!(
        cloud_log.contains(&hex(canary.as_bytes())),
        "the exec payload is not in the cloud's log even with the opt-in"
    );
}
