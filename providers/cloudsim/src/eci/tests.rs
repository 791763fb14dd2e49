//! The ECI face's behaviours, driven through the action dispatcher with the service's
//! parameters: DryRun, restart rules, the listing filters, the actions added for the SDKs,
//! the echoed create parameters and the names in parameter errors.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::api::dispatch;
use super::config::MockCloudConfig;
use super::error::ApiError;
use super::face::Face;
use crate::engine::executor::simulate::SimulateExecutor;
use eci::wire::params::Params;

fn engine(provision_latency_ms: u64) -> Face {
    let config = MockCloudConfig {
        schedule_latency_ms: 10,
        provision_latency_ms,
        latency_jitter_ms: 0,
        ..Default::default()
    };
    Face::new(config, Arc::new(SimulateExecutor::new(Default::default())))
}

fn params(pairs: &[(&str, &str)]) -> Params {
    let mut p = Params::new();
    p.push("RegionId", "cn-hangzhou");
    for (k, v) in pairs {
        p.push(*k, *v);
    }
    p
}

async fn call(e: &Face, action: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiError> {
    let body = dispatch(e, action, &params(pairs), "localhost").await?;
    Ok(serde_json::from_str(&body).unwrap())
}

const GROUP: &[(&str, &str)] = &[
    ("ContainerGroupName", "face"),
    ("Container.1.Name", "main"),
    ("Container.1.Image", "busybox"),
    ("Container.1.EnvironmentVar.1.Key", "MOCKCLOUD_RUN_MS"),
    ("Container.1.EnvironmentVar.1.Value", "forever"),
];

async fn create(e: &Face, extra: &[(&str, &str)]) -> String {
    let pairs: Vec<_> = GROUP.iter().chain(extra).copied().collect();
    let body = call(e, "CreateContainerGroup", &pairs).await.unwrap();
    body["ContainerGroupId"].as_str().unwrap().to_string()
}

async fn describe(e: &Face, id: &str, extra: &[(&str, &str)]) -> Value {
    let ids = format!("[\"{id}\"]");
    let mut pairs = vec![("ContainerGroupIds", ids.as_str())];
    pairs.extend_from_slice(extra);
    let body = call(e, "DescribeContainerGroups", &pairs).await.unwrap();
    body["ContainerGroups"][0].clone()
}

async fn wait_status(e: &Face, id: &str, status: &str) {
    for _ in 0..200 {
        if describe(e, id, &[]).await["Status"] == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} never {status}");
}

#[tokio::test]
async fn dry_run_checks_everything_and_creates_nothing() {
    let e = engine(10);
    let mut pairs = GROUP.to_vec();
    pairs.push(("DryRun", "true"));
    let err = call(&e, "CreateContainerGroup", &pairs).await.unwrap_err();
    assert_eq!((err.code, err.status), ("DryRunOperation", 400));
    assert!(e.engine().is_empty());
    // A check that fails answers as the real create would.
    pairs.push(("Cpu", "128"));
    let err = call(&e, "CreateContainerGroup", &pairs).await.unwrap_err();
    assert_eq!(err.code, "InvalidParameter");
    let mut bad = GROUP.to_vec();
    bad.extend([("DryRun", "true"), ("SpotStrategy", "Cheap")]);
    let err = call(&e, "CreateContainerGroup", &bad).await.unwrap_err();
    assert_eq!(err.code, "InvalidParameter");
    assert!(err.message.contains("\"SpotStrategy\""), "{}", err.message);
    assert!(e.engine().is_empty());
}

#[tokio::test]
async fn restart_is_allowed_while_pending_and_running_only() {
    // A provision that takes a minute: the group stays Pending.
    let e = engine(60_000);
    let id = create(&e, &[]).await;
    wait_status(&e, &id, "Pending").await;
    call(&e, "RestartContainerGroup", &[("ContainerGroupId", &id)])
        .await
        .unwrap();
    assert_eq!(describe(&e, &id, &[]).await["Status"], "Restarting");

    let e = engine(10);
    let id = create(&e, &[]).await;
    wait_status(&e, &id, "Running").await;
    call(&e, "RestartContainerGroup", &[("ContainerGroupId", &id)])
        .await
        .unwrap();
    wait_status(&e, &id, "Running").await;
    e.engine().expire(std::slice::from_ref(&id));
    let err = call(&e, "RestartContainerGroup", &[("ContainerGroupId", &id)])
        .await
        .unwrap_err();
    assert_eq!(err.code, "IncorrectStatus");
}

#[tokio::test]
async fn listing_filters_on_placement_and_leaves_events_out_when_asked() {
    let e = engine(10);
    let a = create(&e, &[("ZoneId", "cn-hangzhou-b"), ("VSwitchId", "vsw-b")]).await;
    let b = create(&e, &[("ZoneId", "cn-hangzhou-c")]).await;
    let list = |pairs: &'static [(&'static str, &'static str)]| {
        let e = e.clone();
        async move {
            let body = call(&e, "DescribeContainerGroups", pairs).await.unwrap();
            body["ContainerGroups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["ContainerGroupId"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(&[("ZoneId", "cn-hangzhou-b")]).await,
        std::slice::from_ref(&a)
    );
    assert_eq!(
        list(&[("ZoneId", "cn-hangzhou-c")]).await,
        std::slice::from_ref(&b)
    );
    assert_eq!(
        list(&[("VSwitchId", "vsw-b")]).await,
        std::slice::from_ref(&a)
    );
    assert!(list(&[("SecurityGroupId", "sg-other")]).await.is_empty());
    assert_eq!(list(&[]).await.len(), 2);
    assert!(describe(&e, &a, &[]).await["Events"].is_array());
    assert!(
        describe(&e, &a, &[("WithEvent", "false")])
            .await
            .get("Events")
            .is_none()
    );
    let err = call(&e, "DescribeContainerGroups", &[("WithEvent", "maybe")])
        .await
        .unwrap_err();
    assert!(err.message.contains("\"WithEvent\""), "{}", err.message);
}

#[tokio::test]
async fn create_parameters_are_echoed_with_the_network_eci_reports() {
    let e = engine(10);
    let id = create(
        &e,
        &[
            ("RamRoleName", "builder"),
            ("SpotStrategy", "SpotWithPriceLimit"),
            ("SpotPriceLimit", "0.5"),
            ("AutoCreateEip", "true"),
            ("Ipv6AddressCount", "1"),
            ("SecurityGroupId", "sg-1"),
            ("VSwitchId", "vsw-1,vsw-2"),
            ("Cpu", "1.5"),
            ("Memory", "3"),
            ("Container.1.Gpu", "1"),
            ("Container.1.Stdin", "true"),
            ("Container.1.Tty", "true"),
            ("Container.1.EnvironmentVarHide", "true"),
            ("Container.1.VolumeMount.1.Name", "ws"),
            ("Container.1.VolumeMount.1.MountPath", "/ws"),
            ("Container.1.VolumeMount.1.ReadOnly", "None"),
            ("Container.1.ReadinessProbe.TcpSocket.Port", "8080"),
            ("Volume.1.Name", "ws"),
            ("Volume.1.Type", "EmptyDirVolume"),
            ("PrivateIpAddress", "192.168.7.7"),
        ],
    )
    .await;
    wait_status(&e, &id, "Running").await;
    let mut again = GROUP.to_vec();
    again.push(("PrivateIpAddress", "192.168.7.7"));
    let err = call(&e, "CreateContainerGroup", &again).await.unwrap_err();
    assert_eq!(err.code, "InvalidPrivateIpAddress.Duplicated");
    again.push(("DryRun", "true"));
    let err = call(&e, "CreateContainerGroup", &again).await.unwrap_err();
    assert_eq!(err.code, "InvalidPrivateIpAddress.Duplicated");
    let g = describe(&e, &id, &[]).await;
    assert_eq!(g["RamRoleName"], "builder");
    assert_eq!(g["SpotStrategy"], "SpotWithPriceLimit");
    assert_eq!(g["SpotPriceLimit"], 0.5);
    // 1.5 vCPU / 3 GiB is billed as the next specification up.
    assert_eq!(g["InstanceType"], "2.0-4.0Gi");
    assert_eq!(
        (g["Cpu"].as_f64(), g["Memory"].as_f64()),
        (Some(2.0), Some(4.0))
    );
    assert_eq!(g["SecurityGroupId"], "sg-1");
    assert_eq!(g["VSwitchId"], "vsw-1");
    assert_eq!(g["IntranetIp"], "192.168.7.7");
    assert!(g["VpcId"].as_str().unwrap().starts_with("vpc-"));
    assert!(g["EniInstanceId"].as_str().unwrap().starts_with("eni-"));
    assert!(g["InternetIp"].as_str().unwrap().starts_with("47."));
    assert!(g["Ipv6Address"].as_str().unwrap().contains(':'));
    let c = &g["Containers"][0];
    assert_eq!(
        (c["Gpu"].as_u64(), &c["Stdin"], &c["Tty"]),
        (Some(1), &Value::Bool(true), &Value::Bool(true))
    );
    assert_eq!(c["EnvironmentVars"], Value::Array(vec![]));
    assert_eq!(c["VolumeMounts"][0]["ReadOnly"], false);
    assert_eq!(c["ReadinessProbe"]["TcpSocket"]["Port"], 8080);
    assert_eq!(c["ReadinessProbe"]["PeriodSeconds"], 10);
    assert_eq!(g["Volumes"][0]["Type"], "EmptyDirVolume");

    let status = call(&e, "DescribeContainerGroupStatus", &[]).await.unwrap();
    let pod = &status["Data"][0]["PodStatus"];
    assert_eq!(pod["HostIp"], pod["PodIp"]);
    assert_eq!(pod["PodIps"][0]["Ip"], pod["PodIp"]);
    assert_eq!(pod["QosClass"], "BestEffort");
    let ready = pod["Conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .unwrap();
    assert_eq!(ready["status"], "True");
}

#[tokio::test]
async fn parameter_errors_name_the_exact_parameter() {
    let e = engine(10);
    let mut pairs = GROUP.to_vec();
    pairs.extend([
        ("Container.1.VolumeMount.1.Name", "ws"),
        ("Container.1.VolumeMount.1.MountPath", "/ws"),
        ("Container.1.VolumeMount.1.ReadOnly", "perhaps"),
        ("Volume.1.Name", "ws"),
        ("Volume.1.Type", "EmptyDirVolume"),
    ]);
    let err = call(&e, "CreateContainerGroup", &pairs).await.unwrap_err();
    assert_eq!(err.code, "InvalidParameter");
    assert!(
        err.message
            .contains("\"Container.1.VolumeMount.1.ReadOnly\""),
        "{}",
        err.message
    );
    let named = |extra: &'static [(&'static str, &'static str)]| {
        let e = e.clone();
        async move {
            let mut pairs = GROUP.to_vec();
            pairs.extend_from_slice(extra);
            call(&e, "CreateContainerGroup", &pairs)
                .await
                .unwrap_err()
                .message
        }
    };
    let message = named(&[
        ("InitContainer.1.Name", "init"),
        ("InitContainer.1.Image", "busybox"),
        ("InitContainer.1.VolumeMount.1.Name", "nowhere"),
        ("InitContainer.1.VolumeMount.1.MountPath", "/x"),
    ])
    .await;
    assert!(
        message.contains("\"InitContainer.1.VolumeMount.1.Name\""),
        "{message}"
    );
    let message = named(&[("Container.1.Port.1.Port", "http")]).await;
    assert!(message.contains("\"Container.1.Port.1.Port\""), "{message}");
    let message = named(&[
        ("Container.2.Name", "main"),
        ("Container.2.Image", "busybox"),
    ])
    .await;
    assert!(message.contains("\"Container.2.Name\""), "{message}");
    let err = call(&e, "NoSuchAction", &[]).await.unwrap_err();
    assert_eq!(err.code, "InvalidAction.NotFound");
}

#[tokio::test]
async fn events_metric_regions_and_batch_delete() {
    let e = engine(10);
    let a = create(&e, &[]).await;
    let b = create(&e, &[]).await;
    wait_status(&e, &a, "Running").await;
    let ids = format!("[\"{a}\"]");
    let events = call(
        &e,
        "DescribeContainerGroupEvents",
        &[("ContainerGroupIds", &ids)],
    )
    .await
    .unwrap();
    assert_eq!(events["TotalCount"], 1);
    let first = &events["Data"][0]["Events"][0];
    assert_eq!(first["Reason"], "Created");
    assert_eq!(first["involvedObject"]["Kind"], "Pod");
    let none = call(
        &e,
        "DescribeContainerGroupEvents",
        &[("ContainerGroupIds", &ids), ("EventSource", "K8sAgent")],
    )
    .await
    .unwrap();
    assert_eq!(none["Data"][0]["Events"], Value::Array(vec![]));

    let metric = call(
        &e,
        "DescribeContainerGroupMetric",
        &[("ContainerGroupId", &a)],
    )
    .await
    .unwrap();
    assert_eq!(metric["ContainerGroupId"], a.as_str());
    assert!(metric["Records"][0]["CPU"]["Limit"].as_u64().unwrap() > 0);
    assert_eq!(
        metric["Records"][0]["Network"]["Interfaces"][0]["Name"],
        "eth0"
    );
    for bad in [
        ("Period", "3600"),
        ("StartTime", "2001-01-01T00:00:00Z"),
        ("EndTime", "yesterday"),
    ] {
        let err = call(
            &e,
            "DescribeContainerGroupMetric",
            &[("ContainerGroupId", &a), bad],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, "InvalidParameter", "{bad:?}");
    }
    let err = call(
        &e,
        "DescribeContainerGroupMetric",
        &[("ContainerGroupId", "eci-none")],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InvalidContainerGroup.NotFound");

    let regions = call(&e, "DescribeRegions", &[]).await.unwrap();
    assert_eq!(regions["Regions"][0]["RegionId"], "cn-hangzhou");

    let both = format!("[\"{a}\",\"{b}\",\"eci-none\"]");
    let err = call(&e, "DeleteContainerGroups", &[("ContainerGroupIds", &both)])
        .await
        .unwrap_err();
    assert_eq!(err.code, "InvalidContainerGroup.NotFound");
    assert_eq!(e.engine().len(), 2);
    let both = format!("[\"{a}\",\"{b}\"]");
    call(&e, "DeleteContainerGroups", &[("ContainerGroupIds", &both)])
        .await
        .unwrap();
    assert!(e.engine().is_empty());
}

#[tokio::test]
async fn config_files_are_echoed_as_last_updated_and_must_be_base64() {
    let e = engine(10);
    let volumes = [
        ("Volume.1.Name", "cache"),
        ("Volume.1.Type", "EmptyDirVolume"),
        ("Volume.1.EmptyDirVolume.Medium", "Memory"),
        ("Volume.2.Name", "cfg"),
        ("Volume.2.Type", "ConfigFileVolume"),
        (
            "Volume.2.ConfigFileVolume.ConfigFileToPath.1.Path",
            "a.conf",
        ),
        (
            "Volume.2.ConfigFileVolume.ConfigFileToPath.1.Content",
            "b25l",
        ),
    ];
    let id = create(&e, &volumes).await;
    let g = describe(&e, &id, &[]).await;
    assert_eq!(g["Volumes"][0]["EmptyDirVolumeMedium"], "Memory");
    let files = &g["Volumes"][1]["ConfigFileVolumeConfigFileToPaths"];
    assert_eq!(files[0]["Content"], "b25l");

    let update = |content: &'static str| {
        let e = e.clone();
        let id = id.clone();
        async move {
            let pairs = [
                ("ContainerGroupId", id.as_str()),
                ("Volume.1.Name", "cfg"),
                ("Volume.1.Type", "ConfigFileVolume"),
                (
                    "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Path",
                    "a.conf",
                ),
                (
                    "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content",
                    content,
                ),
            ];
            call(&e, "UpdateContainerGroup", &pairs).await
        }
    };
    update("dHdv").await.unwrap();
    let g = describe(&e, &id, &[]).await;
    let files = &g["Volumes"][1]["ConfigFileVolumeConfigFileToPaths"];
    assert_eq!(files[0]["Content"], "dHdv");
    assert_eq!(g["Volumes"][0]["EmptyDirVolumeMedium"], "Memory");

    let err = update("not base64!").await.unwrap_err();
    assert_eq!(err.code, "InvalidParameter");
    assert!(
        err.message
            .contains("\"Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content\""),
        "{}",
        err.message
    );
    let bad_file = [
        ("Volume.1.Name", "cfg"),
        ("Volume.1.Type", "ConfigFileVolume"),
        (
            "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Path",
            "a.conf",
        ),
        ("Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content", "%%"),
    ];
    let mut bad: Vec<_> = GROUP.iter().chain(&bad_file).copied().collect();
    let err = call(&e, "CreateContainerGroup", &bad).await.unwrap_err();
    assert_eq!(err.code, "InvalidParameter");
    bad.push(("DryRun", "true"));
    let err = call(&e, "CreateContainerGroup", &bad).await.unwrap_err();
    assert_eq!(err.code, "InvalidParameter");
}
