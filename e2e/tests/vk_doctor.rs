//! `vk doctor` with the config of a running virtual node (eci provider, mock cloud): every
//! check passes on a working setup, and each deliberately broken setting is named with its fix.

use e2e::harness::Options;
use e2e::vk::token_kubeconfig;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn doctor_passes_on_a_working_node() {
    let s = Options::eci("vk-doctor-ok", "simulate", &[])
        .serving_cert()
        .start()
        .await;
    let out = s.vk.doctor(None, &[]);
    let report = stdout(&out);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in ["api", "rbac", "node", "serving-cert", "client-ca", "cloud"] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "{check} did not pass: {report}"
        );
    }
    assert!(report.contains("checks passed"), "{report}");
}

#[tokio::test]
async fn doctor_names_the_fix_for_each_broken_setting() {
    // The serving certificate is left unapproved.
    let s = Options::eci("vk-doctor-bad", "simulate", &[]).start().await;
    let node = s.vk.node.clone();
    let csrs: Api<CertificateSigningRequest> = Api::all(s.client.clone());
    let pending = csrs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .find(|n| n.starts_with(&format!("vk-serving-{node}-")))
        .expect("vk submitted its CSR");
    let out = s.vk.doctor(None, &[]);
    let report = stdout(&out);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains(&format!("fix: kubectl certificate approve {pending}")),
        "{report}"
    );

    // A wrong cloud secret.
    let out =
        s.vk.doctor(None, &[("VK_ECI_ACCESS_KEY_SECRET", "not-the-secret")]);
    let report = stdout(&out);
    assert!(!out.status.success());
    let cloud = report
        .lines()
        .skip_while(|l| !l.starts_with("FAIL  cloud"))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(cloud.contains("SignatureDoesNotMatch"), "{report}");
    assert!(
        cloud.contains("fix: the AccessKey pair is wrong"),
        "{report}"
    );

    // An identity without vk's RBAC.
    let sas: Api<ServiceAccount> = Api::namespaced(s.client.clone(), &s.ns.name);
    sas.create(
        &PostParams::default(),
        &ServiceAccount {
            metadata: ObjectMeta {
                name: Some("nobody".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let nobody = token_kubeconfig(&s.client, &s.ns.name, "nobody").await;
    let out = s.vk.doctor(Some(&nobody), &[]);
    let report = stdout(&out);
    assert!(!out.status.success());
    assert!(report.contains("FAIL  rbac"), "{report}");
    assert!(report.contains("denied: get nodes (core)"), "{report}");
    assert!(
        report.contains("create leases (coordination.k8s.io) in kube-node-lease"),
        "{report}"
    );
    assert!(
        report.contains("fix: apply manifests/base/rbac.yaml"),
        "{report}"
    );
}
