//! Conformance: Microsoft's own Python clients against `vk-cloud serve --face aci`.
//! `azure-identity` takes tokens from the face's Azure AD endpoint (a client secret, and a
//! workload identity's federated token file) and its instance metadata service, `azure-mgmt-containerinstance` drives every
//! container group operation the aci provider uses and a few more (its long-running
//! operation pollers must finish), `websocket-client` opens the exec and attach sockets with
//! ACI's password handshake. Every answer must parse into the SDK's models, and errors must
//! come as the SDK's `HttpResponseError` with ARM's code. The face serves HTTPS with a CA it
//! makes at start (`--ca-out`), which the clients are told to trust. No Kubernetes cluster
//! needed.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// Pinned, the SDK, the identity library and a WebSocket client.
const PACKAGES: &[&str] = &[
    "azure-mgmt-containerinstance==10.1.0",
    "azure-identity==1.27.0",
    "websocket-client==1.9.2",
    "azure-core==1.41.0",
    "azure-mgmt-core==1.6.0",
    "msal==1.39.0",
];

const SCRIPT: &str = include_str!("../conformance/aci_sdk.py");

const TENANT: &str = "72f988bf-0000-4000-8000-00000000aad1";
const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const SECRET: &str = "conformance-secret";
const SUBSCRIPTION: &str = "00000000-0000-0000-0000-00000000c0de";
const FED_CLIENT: &str = "99999999-8888-7777-6666-555555555555";
const MI_CLIENT: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const ISSUER: &str = "https://oidc.example.test/cluster";
const SUBJECT: &str = "system:serviceaccount:vk:virtual-kubelet";

/// A federated token as a cluster issues it; only its claims are checked by the face.
fn federated_token(subject: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": subject, "aud": ["api://AzureADTokenExchange"],
        "iat": now, "nbf": now, "exp": now + 3600,
    });
    format!(
        "{}.{}.{}",
        B64.encode(br#"{"alg":"RS256","kid":"test"}"#),
        B64.encode(claims.to_string()),
        B64.encode(b"not-checked")
    )
}

/// `vk-cloud` next to the test executable (`cargo build --bins` makes it), or `$VK_CLOUD_BIN`.
fn vk_cloud_binary() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("VK_CLOUD_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/vk-cloud
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("test binary under target/<profile>/deps")
        .join("vk-cloud");
    assert!(
        bin.exists(),
        "{} does not exist: run `cargo build -p cloudsim --bins` first",
        bin.display()
    );
    bin
}

struct Cloud(Child);

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn official_python_clients_drive_the_aci_face() {
    let python = e2e::python::venv("azure-aci-sdks", PACKAGES);
    let dir = std::env::temp_dir().join(e2e::unique("aci-sdk"));
    std::fs::create_dir_all(&dir).expect("a work dir");
    let config = dir.join("aci.yaml");
    let yaml = serde_json::json!({
        "tenant_id": TENANT,
        "subscriptions": [SUBSCRIPTION],
        "resource_groups": ["vk-rg"],
        "location": "westeurope",
        "clients": {CLIENT_ID: SECRET},
        "federated": [{"client_id": FED_CLIENT, "issuer": ISSUER, "subject": SUBJECT}],
        "managed_identity_client_id": MI_CLIENT,
        "page_size": 2,
        "schedule_latency_ms": 50,
        "provision_latency_ms": 50,
        "latency_jitter_ms": 0,
    });
    std::fs::write(&config, yaml.to_string()).expect("the config file");
    let ca = dir.join("ca.pem");
    let (good, bad) = (dir.join("token"), dir.join("bad-token"));
    std::fs::write(&good, federated_token(SUBJECT)).expect("the token file");
    std::fs::write(&bad, federated_token("system:serviceaccount:other:sa"))
        .expect("the token file");

    let bin = vk_cloud_binary();
    let mut cmd = Command::new(&bin);
    cmd.args([
        "serve",
        "--face",
        "aci",
        "--listen",
        "127.0.0.1:0",
        "--executor",
        "simulate",
    ])
    .arg("--config")
    .arg(&config)
    .arg("--ca-out")
    .arg(&ca)
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    // SAFETY: prctl is async-signal-safe; the kernel kills the cloud if the test dies.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let stdout = child.stdout.take().expect("stdout");
    let cloud = Cloud(child);
    let mut addr = String::new();
    BufReader::new(stdout)
        .read_line(&mut addr)
        .expect("vk-cloud prints its address");
    let endpoint = format!("https://{}", addr.trim());

    let out = Command::new(&python)
        .args(["-c", SCRIPT, &endpoint])
        .arg(&ca)
        .args([TENANT, CLIENT_ID, SECRET, SUBSCRIPTION, FED_CLIENT])
        .arg(&good)
        .arg(&bad)
        .arg(MI_CLIENT)
        .output()
        .expect("running the SDK script");
    drop(cloud);
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let passed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ok "))
        .collect();
    assert_eq!(
        passed,
        [
            "ClientSecretCredential token",
            "begin_create_or_update",
            "get",
            "begin_create_or_update again",
            "list_by_resource_group",
            "list",
            "update (tags)",
            "list_logs",
            "execute_command",
            "exec wrong password",
            "attach",
            "begin_restart",
            "stop and begin_start",
            "usages and capabilities",
            "bad requests",
            "wrong secret",
            "WorkloadIdentityCredential",
            "WorkloadIdentityCredential untrusted",
            "ManagedIdentityCredential (IMDS)",
            "begin_delete",
        ],
        "{stdout}\n{stderr}"
    );
}
