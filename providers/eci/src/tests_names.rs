//! A group's names inside its `process` sandboxes, driven by the ECI provider over HTTP: the
//! pod's resolver becomes `/etc/resolv.conf`, its hostname the sandbox's hostname and
//! `/etc/hosts` line, its host aliases the hosts file's last block. Needs `bwrap`.

use futures::TryStreamExt as _;
use vk_core::provider::{
    ContainerSpec, DnsOption, HostAlias, InstancePhase, LogOptions, PodDns, Provider, ResolvedPod,
    RestartPolicy, Volume, VolumeFile, VolumeMount, VolumeSource,
};

use crate::EciProvider;
use crate::pod::tags;
use crate::tests_support::{pod, process_cloud, provider, wait_for};
use crate::wire::request::DescribeContainerGroups;

const SCRIPT: &str = "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; hostname; \
                      echo $HOSTNAME; cat /etc/app/x";

fn printer() -> ContainerSpec {
    ContainerSpec {
        name: "print".into(),
        image: "busybox:1.36".into(),
        command: vec!["/bin/sh".into(), "-c".into()],
        args: vec![SCRIPT.into()],
        // A volume below /etc: the sandbox's /etc is then built entry by entry.
        volume_mounts: vec![VolumeMount {
            volume: "app".into(),
            mount_path: "/etc/app".into(),
            read_only: true,
            sub_path: None,
        }],
        ..Default::default()
    }
}

fn named_pod(uid: &str) -> ResolvedPod {
    let mut p = pod(uid, RestartPolicy::Never, vec![printer()]);
    p.volumes = vec![Volume {
        name: "app".into(),
        source: VolumeSource::Files(vec![VolumeFile {
            path: "x".into(),
            content: b"volume\n".to_vec(),
            mode: 0o644,
        }]),
    }];
    p
}

/// Runs the pod to completion and returns its output split at `---`.
async fn run(provider: &EciProvider, p: &ResolvedPod) -> Vec<String> {
    provider.create(p).await.expect("create");
    let done = wait_for(provider, &p.pod.uid, "Succeeded", |s| {
        matches!(s.phase, InstancePhase::Succeeded | InstancePhase::Failed)
    })
    .await;
    let chunks: Vec<bytes::Bytes> = provider
        .logs(&p.pod, "print", &LogOptions::default())
        .await
        .expect("logs")
        .try_collect()
        .await
        .expect("log stream");
    let out = String::from_utf8(chunks.concat()).expect("utf-8");
    assert_eq!(done.phase, InstancePhase::Succeeded, "{out}");
    out.split("---\n").map(str::to_string).collect()
}

#[tokio::test]
async fn resolver_hostname_and_host_aliases_reach_the_sandbox() {
    let work = std::env::temp_dir().join(format!("vk-cloud-test-names-{}", std::process::id()));
    let cloud = process_cloud(work.clone()).await;
    let provider = provider(&cloud, "node-n");

    let mut p = named_pod("names-1");
    p.hostname = "agent".into();
    p.fqdn = Some("agent.builds.default.svc.cluster.local".into());
    p.dns = Some(PodDns {
        on_cloud_resolver: false,
        nameservers: vec!["10.96.0.10".into()],
        searches: vec![
            "default.svc.cluster.local".into(),
            "svc.cluster.local".into(),
            "cluster.local".into(),
        ],
        options: vec![DnsOption {
            name: "ndots".into(),
            value: Some("5".into()),
        }],
    });
    p.host_aliases = vec![HostAlias {
        ip: "10.1.2.3".into(),
        hostnames: vec!["registry.local".into(), "cache.local".into()],
    }];
    let parts = run(&provider, &p).await;
    assert_eq!(
        parts[0],
        "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
    );
    let hosts = &parts[1];
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"),
        "{hosts}"
    );
    let ip_line = hosts
        .lines()
        .find(|l| l.ends_with("\tagent"))
        .unwrap_or_else(|| panic!("no line for the pod's hostname: {hosts}"));
    assert!(
        ip_line
            .split('\t')
            .next()
            .unwrap()
            .parse::<std::net::IpAddr>()
            .is_ok()
    );
    assert!(
        hosts.ends_with(
            "\n# Entries added by HostAliases.\n10.1.2.3\tregistry.local\tcache.local\n"
        ),
        "{hosts}"
    );
    assert_eq!(parts[2], "agent\nagent\nvolume\n");
    // DescribeContainerGroups echoes what the group was created with.
    let described = provider
        .client()
        .send(&DescribeContainerGroups::default())
        .await
        .expect("describe")
        .container_groups;
    let group = described
        .iter()
        .find(|g| g.tag(tags::POD_UID) == Some("names-1"))
        .expect("the group");
    let dns = group.dns_config.as_ref().expect("DnsConfig");
    assert_eq!(dns.name_servers, ["10.96.0.10"]);
    assert_eq!(dns.searches.len(), 3);
    assert_eq!(dns.options[0].name, "ndots");
    assert_eq!(dns.options[0].value.as_deref(), Some("5"));
    assert_eq!(group.host_aliases[0].ip, "10.1.2.3");
    assert_eq!(
        group.host_aliases[0].hostnames,
        ["registry.local", "cache.local"]
    );

    // setHostnameAsFQDN: the kernel hostname is the FQDN, listed with its first label.
    let mut p = named_pod("names-2");
    p.hostname = "agent".into();
    p.fqdn = Some("agent.builds.default.svc.cluster.local".into());
    p.hostname_as_fqdn = true;
    let parts = run(&provider, &p).await;
    assert!(
        parts[1].contains("\tagent.builds.default.svc.cluster.local\tagent\n"),
        "{}",
        parts[1]
    );
    assert_eq!(
        parts[2],
        "agent.builds.default.svc.cluster.local\nagent.builds.default.svc.cluster.local\nvolume\n"
    );

    // No resolver of its own (dnsPolicy Default): the machine's file.
    let p = named_pod("names-3");
    let parts = run(&provider, &p).await;
    let machine = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert_eq!(parts[0], machine);
    let _ = std::fs::remove_dir_all(&work);
}
