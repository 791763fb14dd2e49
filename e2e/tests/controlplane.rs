//! Smoke tests proving the control plane is real: the scheduler schedules (and says why it
//! cannot), the controller-manager signs kubelet-serving CSRs with the cluster CA and
//! finalises namespace deletion.

use std::process::Command;
use std::time::Duration;

use e2e::{TestNamespace, client, cluster, delete_namespace, kubectl_ok, unique, wait_for};
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
};
use k8s_openapi::api::core::v1::{Container, Event, Pod, PodSpec};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

#[tokio::test]
async fn unschedulable_pod_stays_pending_with_failed_scheduling_event() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "smoke-sched").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let pod = Pod {
        metadata: kube::api::ObjectMeta {
            name: Some("nowhere".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some("busybox:1.36".into()),
                ..Default::default()
            }],
            // Matches no node, virtual or otherwise.
            node_selector: Some(
                [("e2e.vk-serverless.io/none".to_string(), "true".to_string())].into(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    pods.create(&PostParams::default(), &pod).await.unwrap();

    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    wait_for(
        "a FailedScheduling event from kube-scheduler",
        Duration::from_secs(60),
        || async {
            let list = events
                .list(&ListParams::default().fields("involvedObject.name=nowhere"))
                .await
                .unwrap();
            list.items.iter().any(|e| {
                e.reason.as_deref() == Some("FailedScheduling")
                    && (e.reporting_component.as_deref() == Some("default-scheduler")
                        || e.source.as_ref().and_then(|s| s.component.as_deref())
                            == Some("default-scheduler"))
            })
        },
    )
    .await;
    let pod = pods.get("nowhere").await.unwrap();
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Pending"));
    assert!(pod.spec.unwrap().node_name.is_none());
}

#[tokio::test]
async fn kubelet_serving_csr_is_signed_by_the_cluster_ca() {
    let Some(state) = cluster().state.clone() else {
        eprintln!(
            "KUBECONFIG names an external cluster whose CA this test cannot read; checking the signature is skipped"
        );
        return;
    };
    let dir = tempdir();
    let key = dir.join("node.key");
    let csr_pem = dir.join("node.csr");
    let node = unique("csr-node");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr_pem)
        .args(["-subj", &format!("/O=system:nodes/CN=system:node:{node}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl could not make a CSR");

    let client = client().await;
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let name = unique("e2e-kubelet-serving");
    let csr = CertificateSigningRequest {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(std::fs::read(&csr_pem).unwrap()),
            signer_name: "kubernetes.io/kubelet-serving".into(),
            usages: Some(vec!["digital signature".into(), "server auth".into()]),
            ..Default::default()
        },
        status: None,
    };
    api.create(&PostParams::default(), &csr).await.unwrap();
    let approval = CertificateSigningRequest {
        status: Some(CertificateSigningRequestStatus {
            conditions: Some(vec![CertificateSigningRequestCondition {
                type_: "Approved".into(),
                status: "True".into(),
                reason: Some("E2EApproved".into()),
                message: Some("approved by the e2e smoke test".into()),
                ..Default::default()
            }]),
            certificate: None,
        }),
        ..Default::default()
    };
    api.patch_approval(&name, &PatchParams::default(), &Patch::Merge(&approval))
        .await
        .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let cert = loop {
        let csr = api.get(&name).await.unwrap();
        if let Some(c) = csr
            .status
            .and_then(|s| s.certificate)
            .filter(|c| !c.0.is_empty())
        {
            break c.0;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no certificate was issued for {name} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let cert_path = dir.join("node.crt");
    std::fs::write(&cert_path, &cert).unwrap();
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(state.join("pki/ca.crt"))
        .arg(&cert_path)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "the certificate is not signed by the cluster CA: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let text = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-ext",
            "extendedKeyUsage",
            "-in",
        ])
        .arg(&cert_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("system:node:{node}")), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    let _ = api.delete(&name, &Default::default()).await;
}

#[tokio::test]
async fn namespace_deletion_completes() {
    let client = client().await;
    let name = unique("smoke-nsdel");
    kubectl_ok(&["create", "namespace", &name]);
    kubectl_ok(&[
        "-n",
        &name,
        "create",
        "configmap",
        "x",
        "--from-literal=a=b",
    ]);
    delete_namespace(&client, &name, Duration::from_secs(60))
        .await
        .unwrap();
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("vk-e2e"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
