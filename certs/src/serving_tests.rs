use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;
use crate::material::CertificateFiles;
use crate::test_support::{TestCa, temp_dir};

const NODE: &str = "vk-unit";
const SANS: [&str; 2] = ["10.9.8.7", "vk-unit.example"];

/// A client for an apiserver that is not there: any API call fails at once, so a test sees
/// whether the code tried to reach it.
fn offline_client() -> kube::Client {
    let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

fn config(dir: &Path, mode: ServingCertMode) -> ServingCertConfig {
    ServingCertConfig {
        node_name: NODE.into(),
        ips: vec![SANS[0].parse().unwrap()],
        hostnames: vec![SANS[1].into()],
        dir: dir.to_owned(),
        mode,
        requested_duration: None,
    }
}

fn csr_mode() -> ServingCertMode {
    ServingCertMode::Csr {
        auto_approve: false,
    }
}

fn store(dir: &Path, cert: &str, key: &str) {
    fs::write(dir.join(CertificateFiles::CERT), cert).unwrap();
    fs::write(dir.join(CertificateFiles::KEY), key).unwrap();
}

/// Starts CSR mode against the offline apiserver: `Ok` means the stored certificate was
/// reused, an error naming the CSR creation means a new one was requested.
async fn start_offline(dir: &Path) -> Result<ServingCert, CertError> {
    let cancel = CancellationToken::new();
    let started =
        ServingCert::start(offline_client(), config(dir, csr_mode()), cancel.clone()).await;
    cancel.cancel();
    started
}

fn assert_requested_new(result: Result<ServingCert, CertError>, dir: &Path) {
    let err = result.expect_err("a new certificate should have been requested");
    assert!(
        matches!(&err, CertError::Kube { action, .. } if action.starts_with("creating CertificateSigningRequest vk-serving-vk-unit-")),
        "{err}"
    );
    let pending = dir.join(CertificateFiles::PENDING_KEY);
    let mode = fs::metadata(&pending).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the pending key must be private");
}

#[tokio::test]
async fn csr_mode_reuses_a_valid_stored_certificate() {
    let dir = temp_dir("reuse-valid");
    let (cert, key) = TestCa::new("ca").leaf("system:node:vk-unit", &SANS, -600, 3600);
    store(&dir, &cert, &key);
    let serving = start_offline(&dir).await.unwrap();
    assert_eq!(serving.current_pem().trim(), cert.trim());
    fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn csr_mode_renews_an_expiring_certificate() {
    let dir = temp_dir("reuse-expiring");
    // 50 of 60 minutes gone: inside the last fifth of its lifetime.
    let (cert, key) = TestCa::new("ca").leaf("system:node:vk-unit", &SANS, -3000, 3600);
    store(&dir, &cert, &key);
    assert_requested_new(start_offline(&dir).await, &dir);
    fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn csr_mode_renews_when_the_node_names_changed() {
    let dir = temp_dir("reuse-sans");
    let (cert, key) = TestCa::new("ca").leaf("system:node:vk-unit", &["10.9.8.6"], -600, 3600);
    store(&dir, &cert, &key);
    assert_requested_new(start_offline(&dir).await, &dir);
    fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn csr_mode_renews_corrupt_or_mismatched_files() {
    let dir = temp_dir("reuse-corrupt");
    let ca = TestCa::new("ca");
    let (cert, _) = ca.leaf("system:node:vk-unit", &SANS, -600, 3600);
    let (_, other_key) = ca.leaf("system:node:vk-unit", &SANS, -600, 3600);
    store(&dir, &cert, &other_key);
    assert_requested_new(start_offline(&dir).await, &dir);
    store(&dir, "garbage", "garbage");
    assert_requested_new(start_offline(&dir).await, &dir);
    fs::remove_file(dir.join(CertificateFiles::KEY)).unwrap();
    assert_requested_new(start_offline(&dir).await, &dir);
    fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn csr_mode_renews_in_the_background_when_due_and_keeps_serving_meanwhile() {
    let dir = temp_dir("rotation-due");
    // 75 of 100 seconds gone: reusable now (a loaded machine has 5 s to get here), due for
    // renewal about 5 s later.
    let (cert, key) = TestCa::new("ca").leaf("system:node:vk-unit", &SANS, -75, 100);
    store(&dir, &cert, &key);
    let cancel = CancellationToken::new();
    let serving = ServingCert::start(offline_client(), config(&dir, csr_mode()), cancel.clone())
        .await
        .unwrap();
    assert!(!dir.join(CertificateFiles::PENDING_KEY).exists());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // A renewal makes a new key before it asks the (here unreachable) apiserver to sign it.
    while !dir.join(CertificateFiles::PENDING_KEY).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no renewal was attempted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The renewal failed; the stored certificate serves until one succeeds.
    assert_eq!(serving.current_pem().trim(), cert.trim());
    cancel.cancel();
    fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn csr_mode_resumes_the_pending_request_after_a_restart() {
    let dir = temp_dir("pending");
    let first = start_offline(&dir).await.err().unwrap().to_string();
    let second = start_offline(&dir).await.err().unwrap().to_string();
    // Same pending key, same CSR name: the operator approves one request, not one per restart.
    assert_eq!(first, second);
    fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn self_signed_mode_serves_the_node_names() {
    let dir = temp_dir("self-signed");
    let cancel = CancellationToken::new();
    let config = config(&dir, ServingCertMode::SelfSigned);
    let serving = ServingCert::start(offline_client(), config.clone(), cancel.clone())
        .await
        .unwrap();
    let der = crate::material::parse_certificates(serving.current_pem().as_bytes(), "pem").unwrap();
    let facts = CertificateFacts::from_der(&der[0], "leaf").unwrap();
    assert_eq!(facts.common_name.as_deref(), Some("system:node:vk-unit"));
    assert_eq!(facts.sans, config.subject_alt_names());
    assert_eq!(assess(&facts, &config, Timestamp::now()), Verdict::Reuse);
    cancel.cancel();
    fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn files_mode_errors_name_the_file() {
    let dir = temp_dir("files-errors");
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let mode = ServingCertMode::Files {
        cert: cert.clone(),
        key: key.clone(),
    };
    let cancel = CancellationToken::new();
    let err = ServingCert::start(offline_client(), config(&dir, mode.clone()), cancel.clone())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&cert.display().to_string()), "{err}");

    let (cert_pem, _) = TestCa::new("ca").leaf("system:node:vk-unit", &SANS, -60, 3600);
    fs::write(&cert, &cert_pem).unwrap();
    fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = ServingCert::start(offline_client(), config(&dir, mode), cancel)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&key.display().to_string()), "{err}");
    fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn files_mode_serves_and_reloads_changed_files() {
    let dir = temp_dir("files-reload");
    let ca = TestCa::new("ca");
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let (first_cert, first_key) = ca.leaf("system:node:vk-unit", &SANS, -60, 3600);
    fs::write(&cert, &first_cert).unwrap();
    fs::write(&key, &first_key).unwrap();
    let mode = ServingCertMode::Files {
        cert: cert.clone(),
        key: key.clone(),
    };
    let cancel = CancellationToken::new();
    let serving = ServingCert::start(offline_client(), config(&dir, mode.clone()), cancel.clone())
        .await
        .unwrap();
    assert_eq!(serving.current_pem().trim(), first_cert.trim());
    cancel.cancel();

    // The same watch, polling fast enough for a test.
    let resolver = Arc::new(ServingCertResolver::new(crate::test_support::certified(
        &first_cert,
        &first_key,
    )));
    let cancel = CancellationToken::new();
    let watch = FileWatch {
        cert: cert.clone(),
        key: key.clone(),
        poll: Duration::from_millis(20),
    };
    let task = tokio::spawn(watch_files(
        watch,
        config(&dir, mode),
        resolver.clone(),
        cancel.clone(),
    ));
    let (second_cert, second_key) = ca.leaf("system:node:vk-unit", &SANS, -60, 7200);
    // Half-written update: the new certificate without its key is not served.
    tokio::time::sleep(Duration::from_millis(30)).await;
    fs::write(&cert, &second_cert).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(resolver.current_pem().trim(), first_cert.trim());
    fs::write(&key, &second_key).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while resolver.current_pem().trim() != second_cert.trim() {
        assert!(
            std::time::Instant::now() < deadline,
            "the new files were not loaded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    task.await.unwrap();
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn renewal_retries_start_at_a_minute_and_double_up_to_half_an_hour_without_end() {
    use backon::BackoffBuilder as _;
    // backon's factor is an f32: compare whole seconds.
    let delays: Vec<u64> = renewal_retries()
        .build()
        .take(8)
        .map(|d| d.as_secs())
        .collect();
    assert_eq!(delays, [60, 120, 240, 480, 960, 1800, 1800, 1800]);
    assert_eq!(renewal_retries().build().take(1000).count(), 1000);
}

#[test]
fn every_renewal_failure_but_cancellation_is_retried() {
    assert!(!retryable(&CertError::Cancelled));
    assert!(retryable(&CertError::CsrDeleted {
        name: "csr-1".into()
    }));
    assert!(retryable(&CertError::Pem {
        what: "certificate".into(),
        reason: "no PEM block".into()
    }));
}
