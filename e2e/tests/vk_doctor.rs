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

/// The demo network of the mock cloud: a zone, its vSwitch, the VPC's security group.
const NETWORK: &str =
    "  zone_id: cn-hangzhou-j\n  vswitch_id: vsw-vk-demo-j\n  security_group_id: sg-vk-demo\n";

/// The failed check `name` of a report and its fix line.
fn failed_check(report: &str, name: &str) -> String {
    report
        .lines()
        .skip_while(|l| !(l.starts_with("FAIL") && l.split_whitespace().nth(1) == Some(name)))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn doctor_passes_on_a_working_node() {
    let s = Options::eci("vk-doctor-ok", "simulate", &[])
        .config(NETWORK)
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
    for check in [
        "api",
        "rbac",
        "node",
        "serving-cert",
        "client-ca",
        "cloud",
        "zone",
        "vswitch",
        "security-group",
        "quota",
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("ok") && l.split_whitespace().nth(1) == Some(check)),
            "{check} did not pass: {report}"
        );
    }
    assert!(report.contains("checks passed"), "{report}");
    println!("{report}");
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

#[tokio::test]
async fn doctor_names_the_fix_for_each_broken_network_and_quota_setting() {
    let s = Options::eci("vk-doctor-net", "simulate", &[])
        .config(NETWORK)
        .start_node()
        .await;
    let config = s.vk.config_yaml();
    assert!(config.contains(NETWORK), "{config}");
    // (broken setting, the check that fails, what its fix must say)
    let cases = [
        (
            NETWORK.replace("cn-hangzhou-j", "cn-hangzhou-z"),
            "zone",
            "fix: set zone_id to one of cn-hangzhou-j, cn-hangzhou-k",
        ),
        (
            NETWORK.replace("vsw-vk-demo-j", "vsw-missing"),
            "vswitch",
            "fix: set vswitch_id to an existing vSwitch of the cluster's VPC",
        ),
        (
            // ECI's comma-separated list: each vSwitch is checked.
            NETWORK.replace("vsw-vk-demo-j", "vsw-vk-demo-j,vsw-gone"),
            "vswitch",
            "fix: set vswitch_id to an existing vSwitch of the cluster's VPC",
        ),
        (
            NETWORK.replace("vsw-vk-demo-j", "vsw-vk-demo-k"),
            "vswitch",
            "fix: set zone_id: cn-hangzhou-k (the vSwitch's zone)",
        ),
        (
            NETWORK.replace("sg-vk-demo", "sg-vk-other-vpc"),
            "security-group",
            "fix: set security_group_id to a security group of vpc-vk-demo",
        ),
        (
            format!("{NETWORK}  capacity:\n    cpu_millis: 2000000\n"),
            "quota",
            "fix: set eci.capacity.cpu_millis to 1000000 or less",
        ),
    ];
    for (network, check, fix) in cases {
        let out = s.vk.doctor_with_config(&config.replace(NETWORK, &network));
        let report = stdout(&out);
        assert!(!out.status.success(), "{check}: {report}");
        let failed = failed_check(&report, check);
        assert!(failed.contains(fix), "{check}: {fix}\n{report}");
    }
    // The quota case names the figures.
    let out = s.vk.doctor_with_config(&config.replace(
        NETWORK,
        &format!("{NETWORK}  capacity:\n    cpu_millis: 2000000\n"),
    ));
    let quota = failed_check(&stdout(&out), "quota");
    assert!(
        quota.contains("1000 vCPUs") && quota.contains("below the 2000 vCPUs"),
        "{quota}"
    );
}
