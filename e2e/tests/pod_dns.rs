//! A pod's names and service links on an `eci` virtual node backed by `vk-cloud --executor
//! process`, read from inside its containers with `kubectl exec`: `/etc/resolv.conf` as the
//! kubelet writes it for `ClusterFirst` (vk given `cluster_dns`), `Default` (the machine's
//! own) and `None` + `dnsConfig`; `hostAliases` and the pod's IP line in `/etc/hosts`; the
//! pod's `hostname`; the service link variables of a Service of the pod's namespace, and none
//! with `enableServiceLinks: false`.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::harness::{Options, TestBed};
use e2e::pods::{pod_for_node, wait_phase};
use k8s_openapi::api::core::v1::{HostAlias, Pod, PodDNSConfig, PodDNSConfigOption, Service};
use kube::api::{Api, PostParams};

const CLUSTER_DNS: &str = "10.96.0.10";

fn exec(s: &TestBed, pod: &str, command: &[&str]) -> String {
    let out = e2e::kubectl(
        &[
            &["-n", s.ns.name.as_str(), "exec", pod, "-c", "main", "--"],
            command,
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "exec {command:?} in {pod}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `env` of the pod's container as a map.
fn env(s: &TestBed, pod: &str) -> BTreeMap<String, String> {
    exec(s, pod, &["env"])
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pod(
    s: &TestBed,
    name: &str,
    edit: impl FnOnce(&mut k8s_openapi::api::core::v1::PodSpec),
) -> Pod {
    let mut pod = pod_for_node(name, &s.vk.node, &["main"], &[]);
    if let Some(spec) = pod.spec.as_mut() {
        edit(spec);
    }
    pod
}

#[tokio::test]
async fn resolv_conf_hosts_hostname_and_service_links_as_under_a_kubelet() {
    let s = Options::eci("vk-dns", "process", &[])
        .config(&format!("cluster_dns: [{CLUSTER_DNS}]\n"))
        .serving_cert()
        .start()
        .await;
    let ns = s.ns.name.clone();

    // A Service of the namespace, made before the pods (the kubelet's variables are fixed
    // when a container starts).
    let services: Api<Service> = Api::namespaced(s.client.clone(), &ns);
    let service = services
        .create(
            &PostParams::default(),
            &e2e::pods::service("jenkins-agent", &[("http", 8080), ("agent", 50000)]),
        )
        .await
        .expect("creating the Service");
    let cluster_ip = e2e::pods::cluster_ip(&service);

    let cluster_first = pod(&s, "cluster-first", |spec| {
        spec.hostname = Some("agent".into());
        spec.host_aliases = Some(vec![HostAlias {
            ip: "10.1.2.3".into(),
            hostnames: Some(vec!["registry.local".into(), "cache.local".into()]),
        }]);
    });
    let default = pod(&s, "default-dns", |spec| {
        spec.dns_policy = Some("Default".into());
        spec.enable_service_links = Some(false);
    });
    let none = pod(&s, "none-dns", |spec| {
        spec.dns_policy = Some("None".into());
        spec.dns_config = Some(PodDNSConfig {
            nameservers: Some(vec!["1.2.3.4".into()]),
            searches: Some(vec![
                "ns1.svc.cluster-domain.example".into(),
                "my.dns.search.suffix".into(),
            ]),
            options: Some(vec![
                PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                },
                PodDNSConfigOption {
                    name: Some("edns0".into()),
                    value: None,
                },
            ]),
        });
    });
    for p in [&cluster_first, &default, &none] {
        s.pods
            .create(&PostParams::default(), p)
            .await
            .expect("creating a pod");
    }
    let timeout = Duration::from_secs(120);
    let running = wait_phase(&s.pods, "cluster-first", "Running", timeout).await;
    wait_phase(&s.pods, "default-dns", "Running", timeout).await;
    wait_phase(&s.pods, "none-dns", "Running", timeout).await;

    // ClusterFirst: the cluster DNS server, the namespace's search path, ndots:5.
    assert_eq!(
        exec(&s, "cluster-first", &["cat", "/etc/resolv.conf"]),
        format!(
            "search {ns}.svc.cluster.local svc.cluster.local cluster.local\nnameserver {CLUSTER_DNS}\noptions ndots:5\n"
        )
    );
    // The managed hosts file: the pod's IP with its hostname, then the host aliases.
    let hosts = exec(&s, "cluster-first", &["cat", "/etc/hosts"]);
    let pod_ip = running
        .status
        .and_then(|st| st.pod_ip)
        .expect("the pod has an IP");
    assert!(
        hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"),
        "{hosts}"
    );
    assert!(hosts.contains(&format!("\n{pod_ip}\tagent\n")), "{hosts}");
    assert!(
        hosts.ends_with(
            "\n# Entries added by HostAliases.\n10.1.2.3\tregistry.local\tcache.local\n"
        ),
        "{hosts}"
    );
    assert_eq!(exec(&s, "cluster-first", &["hostname"]), "agent\n");
    // Service links, named as the kubelet names them.
    let vars = env(&s, "cluster-first");
    for (name, value) in [
        ("JENKINS_AGENT_SERVICE_HOST", cluster_ip.clone()),
        ("JENKINS_AGENT_SERVICE_PORT", "8080".into()),
        ("JENKINS_AGENT_SERVICE_PORT_HTTP", "8080".into()),
        ("JENKINS_AGENT_SERVICE_PORT_AGENT", "50000".into()),
        ("JENKINS_AGENT_PORT", format!("tcp://{cluster_ip}:8080")),
        (
            "JENKINS_AGENT_PORT_50000_TCP",
            format!("tcp://{cluster_ip}:50000"),
        ),
        ("JENKINS_AGENT_PORT_50000_TCP_PROTO", "tcp".into()),
        ("JENKINS_AGENT_PORT_50000_TCP_PORT", "50000".into()),
        ("JENKINS_AGENT_PORT_50000_TCP_ADDR", cluster_ip.clone()),
    ] {
        assert_eq!(vars.get(name), Some(&value), "{name} in {vars:#?}");
    }

    // Default: the resolver of the machine the sandbox runs on; no service links, but the
    // API server's variables stay.
    let machine = std::fs::read_to_string("/etc/resolv.conf").expect("the machine's resolv.conf");
    assert_eq!(
        exec(&s, "default-dns", &["cat", "/etc/resolv.conf"]),
        machine
    );
    let vars = env(&s, "default-dns");
    assert!(
        !vars.contains_key("JENKINS_AGENT_SERVICE_HOST"),
        "{vars:#?}"
    );
    assert!(!vars.contains_key("JENKINS_AGENT_PORT"), "{vars:#?}");
    assert!(vars.contains_key("KUBERNETES_SERVICE_HOST"), "{vars:#?}");
    assert_eq!(exec(&s, "default-dns", &["hostname"]), "default-dns\n");

    // None + dnsConfig: nothing but the pod's configuration.
    assert_eq!(
        exec(&s, "none-dns", &["cat", "/etc/resolv.conf"]),
        "search ns1.svc.cluster-domain.example my.dns.search.suffix\nnameserver 1.2.3.4\noptions ndots:2 edns0\n"
    );
}

/// Without `cluster_dns`, vk takes the ClusterIP of `kube-system/kube-dns`; a cluster without
/// that Service leaves `ClusterFirst` pods on the machine's resolver with a
/// `MissingClusterDNS` warning, as a kubelet without `--cluster-dns` does.
#[tokio::test]
async fn cluster_dns_comes_from_kube_dns_or_falls_back_with_a_warning() {
    let s = Options::eci("vk-kubedns", "process", &[])
        .without_cluster_dns()
        .serving_cert()
        .start()
        .await;
    let ns = s.ns.name.clone();
    let kube_dns = Api::<Service>::namespaced(s.client.clone(), "kube-system")
        .get_opt("kube-dns")
        .await
        .expect("reading kube-system/kube-dns")
        .and_then(|svc| svc.spec)
        .and_then(|spec| spec.cluster_ip)
        .filter(|ip| ip != "None");
    s.run_pod_within(&pod(&s, "first", |_| {}), Duration::from_secs(120))
        .await;
    let resolv = exec(&s, "first", &["cat", "/etc/resolv.conf"]);
    match kube_dns {
        Some(ip) => assert_eq!(
            resolv,
            format!(
                "search {ns}.svc.cluster.local svc.cluster.local cluster.local\nnameserver {ip}\noptions ndots:5\n"
            )
        ),
        None => {
            let machine = std::fs::read_to_string("/etc/resolv.conf").expect("resolv.conf");
            assert_eq!(resolv, machine);
            let events: Api<k8s_openapi::api::core::v1::Event> =
                Api::namespaced(s.client.clone(), &ns);
            e2e::pods::wait_events(&events, "first", &["MissingClusterDNS"]).await;
        }
    }
}

/// Names really resolve inside an eci build container: vk gives `ClusterFirst` pods the
/// cluster's DNS (CoreDNS started by `e2e/cluster`, watching the API), so a Service's name
/// and its short form (through the search path) give its ClusterIP, as the agent needs for
/// `jenkins.<ns>.svc.cluster.local`.
#[tokio::test]
async fn service_names_resolve_through_the_cluster_dns_in_a_container() {
    let dns = e2e::cluster()
        .dns
        .clone()
        .expect("the local cluster runs CoreDNS (e2e/cluster env dns)");
    let s = Options::eci("vk-getent", "process", &[])
        .serving_cert()
        .start()
        .await;
    let ns = s.ns.name.clone();
    let services: Api<Service> = Api::namespaced(s.client.clone(), &ns);
    let service = services
        .create(
            &PostParams::default(),
            &e2e::pods::service("jenkins", &[("http", 8080)]),
        )
        .await
        .expect("creating the Service");
    let cluster_ip = e2e::pods::cluster_ip(&service);
    s.run_pod_within(&pod(&s, "resolver", |_| {}), Duration::from_secs(120))
        .await;
    let resolv = exec(&s, "resolver", &["cat", "/etc/resolv.conf"]);
    assert!(resolv.contains(&format!("nameserver {dns}\n")), "{resolv}");

    let fqdn = format!("jenkins.{ns}.svc.cluster.local");
    for name in [fqdn.as_str(), "jenkins"] {
        let mut answer = String::new();
        // CoreDNS sees the new Service through its watch within moments.
        for _ in 0..60 {
            let out = e2e::kubectl(&[
                "-n", &ns, "exec", "resolver", "-c", "main", "--", "getent", "hosts", name,
            ]);
            answer = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut fields = answer.split_whitespace();
        assert_eq!(
            fields.next(),
            Some(cluster_ip.as_str()),
            "{name}: {answer:?}"
        );
        assert_eq!(fields.next(), Some(fqdn.as_str()), "{name}: {answer:?}");
    }
}
