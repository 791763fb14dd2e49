//! Conformance: Alibaba's official Python SDKs, with their default settings, against
//! `vk-cloud serve`. The current SDK (`alibabacloud-eci20180808` on
//! `alibabacloud-tea-openapi`) signs with ACS3-HMAC-SHA256; the older one
//! (`aliyun-python-sdk-eci` on `aliyun-python-sdk-core`) with the RPC signature 1.0
//! (HMAC-SHA1). Between them: every action the eci provider uses and the ones the simulator
//! adds (events, one group's metric, regions, batch delete), DryRun, the restart rules, the
//! listing filters, bad parameters, an unknown action and a wrong secret on both signatures;
//! the image cache actions (create with a ClientToken, Ready, update, delete) and a group that
//! starts from a cache by `ImageSnapshotId`.
//! Each answer must parse into the SDK's models, and the Describe answers must carry every
//! field of those models that ECI always sends (the script lists the ones it leaves out, and
//! why). No Kubernetes cluster needed.

use std::process::Command;

use e2e::cloud::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, MockCloud};

/// Pinned, the SDKs and the libraries that sign and parse for them.
const SDKS: &[&str] = &[
    "alibabacloud-eci20180808==2.1.0",
    "alibabacloud-tea-openapi==0.4.6",
    "alibabacloud-openapi-util==0.2.4",
    "alibabacloud-tea-util==0.3.15",
    "alibabacloud-tea==0.4.3",
    "alibabacloud-credentials==1.0.12",
    "aliyun-python-sdk-eci==1.3.3",
    "aliyun-python-sdk-core==2.16.1",
];

const SCRIPT: &str = include_str!("../conformance/eci_sdk.py");

#[test]
fn official_sdks_drive_the_mock_cloud() {
    let python = e2e::python::venv("alibaba-eci-sdks", SDKS);
    let cloud = MockCloud::start("simulate", &[]);
    let endpoint = cloud.endpoint.trim_start_matches("http://");
    let out = Command::new(&python)
        .args(["-c", SCRIPT, endpoint, ACCESS_KEY_ID, ACCESS_KEY_SECRET])
        .output()
        .expect("running the SDK script");
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
            "CreateContainerGroup DryRun",
            "CreateContainerGroup",
            "DescribeContainerGroups",
            "DescribeContainerGroups filters",
            "DescribeContainerGroupStatus",
            "DescribeContainerGroupStatus (v2 signature)",
            "ExecContainerCommand",
            "DescribeContainerLog",
            "DescribeContainerGroupEvents",
            "DescribeContainerGroupMetric",
            "DescribeRegions",
            "UpdateContainerGroup",
            "RestartContainerGroup",
            "bad parameters",
            "wrong secret (ACS3)",
            "wrong secret (HMAC-SHA1, current SDK)",
            "every action (HMAC-SHA1)",
            "CreateContainerGroup (HMAC-SHA1)",
            "unknown action",
            "wrong secret (HMAC-SHA1)",
            "DeleteContainerGroups",
            "DeleteContainerGroup",
            "CreateImageCache",
            "DescribeImageCaches",
            "UpdateImageCache",
            "CreateContainerGroup ImageSnapshotId",
            "DeleteImageCache",
        ],
        "{stdout}\n{stderr}"
    );
}
