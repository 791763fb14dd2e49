//! `e2e/cluster up` heals a cluster whose component died instead of starting afresh: after a
//! SIGKILL of kube-apiserver, then of etcd, `up` starts just that component again, and the
//! objects, the CA and the API address are the ones from before. `e2e/cluster restart` does the
//! kill and the start in one step; a state missing a key is started afresh, with the reason.
//! On a cluster of the test's own (the shared one stays up).

use e2e::own_cluster::OwnCluster;

fn ok(cluster: &OwnCluster, args: &[&str]) -> String {
    let out = cluster.kubectl(args);
    assert!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What must survive a component's restart: the object's uid and data, the CA, the server URL.
struct Kept {
    uid: String,
    ca: Vec<u8>,
    server: String,
}

fn kept(cluster: &OwnCluster) -> Kept {
    Kept {
        uid: ok(
            cluster,
            &[
                "get",
                "configmap",
                "survivor",
                "-o",
                "jsonpath={.metadata.uid}",
            ],
        ),
        ca: std::fs::read(cluster.state.join("pki/ca.crt")).expect("reading the CA"),
        server: ok(
            cluster,
            &[
                "config",
                "view",
                "-o",
                "jsonpath={.clusters[0].cluster.server}",
            ],
        ),
    }
}

fn assert_kept(cluster: &OwnCluster, before: &Kept, after: &str) {
    assert_eq!(ok(cluster, &["get", "--raw", "/readyz"]), "ok", "{after}");
    let now = kept(cluster);
    assert_eq!(now.uid, before.uid, "{after}: the ConfigMap is another one");
    assert!(now.ca == before.ca, "{after}: the CA changed");
    assert_eq!(
        now.server, before.server,
        "{after}: the API address changed"
    );
    assert_eq!(
        ok(
            cluster,
            &[
                "get",
                "configmap",
                "survivor",
                "-o",
                "jsonpath={.data.word}"
            ]
        ),
        "still-here",
        "{after}"
    );
}

#[test]
fn up_restarts_a_dead_apiserver_or_etcd_with_data_ca_and_ports_kept() {
    let cluster = OwnCluster::start("vk-e2e-restart");
    ok(
        &cluster,
        &[
            "create",
            "configmap",
            "survivor",
            "--from-literal=word=still-here",
        ],
    );
    let before = kept(&cluster);

    for component in ["kube-apiserver", "etcd"] {
        let old = cluster.pid(component);
        let others: Vec<(&str, i32)> = ["etcd", "kube-apiserver", "kube-controller-manager"]
            .into_iter()
            .filter(|c| *c != component)
            .map(|c| (c, cluster.pid(c)))
            .collect();
        cluster.kill(component);
        let said = cluster.up();
        assert!(
            said.contains(&format!("restarted {component} ")),
            "up after {component} died: {said}"
        );
        assert!(!said.contains("afresh"), "up wiped the cluster: {said}");
        assert_ne!(
            cluster.pid(component),
            old,
            "{component} is not a new process"
        );
        for (c, pid) in others {
            assert_eq!(cluster.pid(c), pid, "{c} was restarted too");
        }
        let after = format!("after {component} was killed and `up` ran");
        assert_kept(&cluster, &before, &after);
        // Writes work too (etcd's data dir is writable again, the apiserver's watch cache is back).
        let name = format!("after-{component}");
        ok(&cluster, &["create", "configmap", &name]);
    }

    let old = cluster.pid("kube-apiserver");
    let said = cluster.restart("apiserver");
    assert!(said.contains("restarted kube-apiserver"), "{said}");
    assert_ne!(cluster.pid("kube-apiserver"), old);
    assert_kept(&cluster, &before, "after `e2e/cluster restart apiserver`");

    let said = cluster.up();
    assert!(said.contains("already up"), "up on a whole cluster: {said}");

    // A state it cannot heal is started afresh, and `up` says why.
    std::fs::remove_file(cluster.state.join("pki/sa.key")).expect("removing the SA key");
    let said = cluster.up();
    assert!(
        said.contains("starting afresh") && said.contains("pki/sa.key is missing"),
        "up on a state without its SA key: {said}"
    );
    let fresh = std::fs::read(cluster.state.join("pki/ca.crt")).expect("reading the new CA");
    assert!(fresh != before.ca, "a fresh start kept the old CA");
    let out = cluster.kubectl(&["get", "configmap", "survivor"]);
    assert!(
        !out.status.success(),
        "the fresh cluster has the old objects"
    );
}
