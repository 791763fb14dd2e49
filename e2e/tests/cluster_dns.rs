//! The test cluster's DNS is real: CoreDNS, started by `e2e/cluster`, answers for the
//! cluster's Services over UDP and TCP at the address pods are to use as their nameserver, and
//! `kube-system/kube-dns` exists as in a kubeadm cluster.

use std::time::Duration;

use e2e::dns::{self, Answer, NXDOMAIN, Transport};
use e2e::{TestNamespace, client, cluster, wait_for};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, PostParams};

fn dns_server() -> String {
    cluster().dns.clone().unwrap_or_else(|| {
        panic!(
            "the cluster has no DNS: start it with e2e/cluster up (or set VK_E2E_CLUSTER_DNS); \
             `e2e/cluster env dns` says why"
        )
    })
}

async fn resolve(name: &str, transport: Transport) -> Answer {
    let (server, name) = (dns_server(), name.to_string());
    tokio::task::spawn_blocking(move || dns::query_a(&server, &name, transport))
        .await
        .expect("the DNS query task")
        .unwrap_or_else(|e| panic!("asking the cluster DNS: {e:#}"))
}

fn service(name: &str) -> Service {
    e2e::pods::service(name, &[("http", 8080)])
}

#[tokio::test]
async fn service_name_resolves_to_its_cluster_ip_over_udp_and_tcp() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "dns").await;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let svc = services
        .create(&PostParams::default(), &service("jenkins"))
        .await
        .expect("creating the Service");
    let ip = e2e::pods::cluster_ip(&svc);
    let fqdn = format!("jenkins.{}.svc.cluster.local", ns.name);

    // CoreDNS learns of the Service through its watch, a moment after it is created.
    wait_for(&format!("{fqdn} -> {ip}"), Duration::from_secs(30), || {
        let fqdn = fqdn.clone();
        let ip = ip.clone();
        async move {
            let a = resolve(&fqdn, Transport::Udp).await;
            a.rcode == 0 && a.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>() == [ip]
        }
    })
    .await;
    let tcp = resolve(&fqdn, Transport::Tcp).await;
    assert_eq!(tcp.rcode, 0);
    assert_eq!(
        tcp.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        [ip]
    );

    // Gone from the API, gone from DNS.
    services
        .delete("jenkins", &DeleteParams::default())
        .await
        .expect("deleting the Service");
    wait_for(
        &format!("{fqdn} -> NXDOMAIN"),
        Duration::from_secs(30),
        || {
            let fqdn = fqdn.clone();
            async move { resolve(&fqdn, Transport::Udp).await.rcode == NXDOMAIN }
        },
    )
    .await;
}

#[tokio::test]
async fn unknown_name_in_the_cluster_domain_is_nxdomain() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "dns-nx").await;
    let a = resolve(
        &format!("nothing-here.{}.svc.cluster.local", ns.name),
        Transport::Udp,
    )
    .await;
    assert_eq!(a.rcode, NXDOMAIN);
    assert!(a.addrs.is_empty());
}

#[tokio::test]
async fn kube_dns_service_is_there_as_in_a_kubeadm_cluster() {
    let client = client().await;
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let svc = services
        .get("kube-dns")
        .await
        .expect("kube-system/kube-dns exists");
    let labels = svc.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("k8s-app").map(String::as_str), Some("kube-dns"));
    let ports: Vec<(String, String, i32)> = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            (
                p.name.unwrap_or_default(),
                p.protocol.unwrap_or_default(),
                p.port,
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            ("dns".to_string(), "UDP".to_string(), 53),
            ("dns-tcp".to_string(), "TCP".to_string(), 53)
        ]
    );

    // The cluster DNS answers for itself and for the API server's Service.
    let own = resolve("kube-dns.kube-system.svc.cluster.local", Transport::Udp).await;
    assert_eq!(
        own.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        [e2e::pods::cluster_ip(&svc)]
    );
    let api = Api::<Service>::namespaced(client.clone(), "default")
        .get("kubernetes")
        .await
        .expect("default/kubernetes exists");
    let kubernetes = resolve("kubernetes.default.svc.cluster.local", Transport::Tcp).await;
    assert_eq!(
        kubernetes
            .addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
        [e2e::pods::cluster_ip(&api)]
    );
}
