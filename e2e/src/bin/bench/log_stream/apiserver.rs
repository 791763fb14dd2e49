//! `--apiserver`: `kubectl logs -f` through kube-apiserver to the kubelet API of a virtual node
//! served from this process, set up as `vk run` sets itself up: the node controller registers
//! the Node (InternalIP and kubelet port), the serving certificate comes from a
//! kubelet-serving CSR, client certificates must chain to the API server's client CA, and
//! requests are authorized by SubjectAccessReview.

use std::io::Read as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use certs::{ServingCert, ServingCertConfig, ServingCertMode};
use e2e::pods::{pod_for_node, wait_node_ready};
use e2e::{TestNamespace, client, cluster, unique};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vk_core::kubelet::{KubeletAuth, KubeletServer};
use vk_core::node::{NodeConfig, NodeController};

use super::generator::Generator;
use super::rss::{self, Sampler, Watched};
use super::{CONTAINER, Options, POD, print_throughput, store_with};

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    let client = client().await;
    let cluster = cluster();
    let node = unique("bench-logs");
    let ip: IpAddr = cluster.node_ip.parse().context("the cluster's node IP")?;
    let listener = TcpListener::bind((ip, 0)).await?;
    let port = listener.local_addr()?.port();
    let provider = Arc::new(Generator::new(opts.bytes, opts.chunk_bytes));
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();

    let mut config = NodeConfig::new(&node, &cluster.node_ip, "bench");
    config.kubelet_port = port;
    tokio::spawn(NodeController::new(client.clone(), config, provider.clone()).run(cancel.clone()));
    let cert_dir = std::env::temp_dir().join(format!("{node}-certs"));
    let serving = ServingCert::start(
        client.clone(),
        ServingCertConfig {
            node_name: node.clone(),
            ips: vec![ip],
            hostnames: vec![node.clone()],
            dir: cert_dir.clone(),
            mode: ServingCertMode::Csr { auto_approve: true },
            requested_duration: None,
        },
        cancel.clone(),
    )
    .await
    .context("the kubelet serving certificate")?;
    let client_ca = certs::cluster_client_ca(client.clone()).await?;
    let tls = certs::kubelet_server_config(serving.resolver(), Some(&client_ca))?;
    let nodes: Api<Node> = Api::all(client.clone());
    wait_node_ready(&nodes, &node, "True", Duration::from_secs(60)).await;

    let ns = TestNamespace::new(&client, "bench-logs").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let mut pod = pod_for_node(POD, &node, &[CONTAINER], &[]);
    if let Some(spec) = pod.spec.as_mut() {
        // Bound directly: no scheduler round, and no pod controller runs here.
        spec.node_name = Some(node.clone());
    }
    let pod = pods.create(&PostParams::default(), &pod).await?;
    let server = KubeletServer::new(
        &node,
        provider,
        store_with(pod),
        KubeletAuth::Webhook {
            client: client.clone(),
        },
    );
    tokio::spawn(server.serve(listener, Arc::new(tls), cancel.clone()));

    let mut kubectl = Command::new(&cluster.kubectl)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(["-n", &ns.name, "logs", "-f", POD, "-c", CONTAINER])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting kubectl")?;
    let started = Instant::now();
    let mut watched = vec![
        Watched::own("vk (bench)"),
        Watched::pid("kubectl", kubectl.id()),
    ];
    if let Some(pid) = apiserver_pid() {
        watched.push(Watched::pid("kube-apiserver", pid));
    }
    let progress = Arc::new(AtomicU64::new(0));
    let sampler = Sampler::start(watched, progress.clone());
    let mut stdout = kubectl.stdout.take().context("kubectl's stdout")?;
    let counter = progress.clone();
    let reader = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 1 << 20];
        let (mut total, mut first) = (0u64, None);
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => return Ok((total, first)),
                Ok(n) => {
                    first.get_or_insert_with(|| started.elapsed());
                    total += n as u64;
                    counter.store(total, Ordering::Relaxed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    });
    let (bytes, first_byte) = reader.await??;
    let elapsed = started.elapsed();
    let (labels, samples) = sampler.finish();
    let output = kubectl.wait_with_output()?;

    let _ = nodes.delete(&node, &DeleteParams::default()).await;
    let _ = std::fs::remove_dir_all(&cert_dir);
    if !output.status.success() || bytes != opts.bytes {
        bail!(
            "kubectl logs -f read {bytes} of {} bytes and {}: {}",
            opts.bytes,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    println!();
    println!(
        "through kube-apiserver: kubectl logs -f (node {node} at {ip}:{port}, webhook authz, \
         CSR-issued serving certificate)"
    );
    print_throughput(bytes, elapsed, first_byte);
    println!("  (elapsed from starting kubectl to its end of output)");
    println!("  memory, every 100 ms:");
    rss::print_report(&labels, &samples, opts.bytes);
    Ok(())
}

/// The API server's pid when this project's scripts started the cluster.
fn apiserver_pid() -> Option<u32> {
    let state = cluster().state.as_ref()?;
    let pid = std::fs::read_to_string(state.join("pids/kube-apiserver.pid")).ok()?;
    pid.trim().parse().ok()
}
