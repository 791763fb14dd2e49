//! One virtual node per test: `vk run` with the least-privilege ServiceAccount identity, its
//! node Ready, optionally its kubelet-serving certificate approved and served, and a namespace
//! for the test's pods. On drop, vk stops BEFORE its node is deleted (a running vk registers a
//! deleted node again), and the mock cloud, if any, stops after vk.
//!
//! ```text
//! let s = Options::mock("vk-exec").serving_cert().start().await;
//! s.run_pod(&pod_for_node("shell", &s.vk.node, &["main"], &[])).await;
//! ```

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};

use crate::aci_cloud::AciCloud;
use crate::cloud::MockCloud;
use crate::fargate_cloud::FargateCloud;
use crate::pods::{mock_config, wait_node_ready, wait_phase};
use crate::vk::{Vk, approve_serving_csr, service_account_kubeconfig};
use crate::{TestNamespace, client, cluster, kubectl, unique, wait_for};

enum Provider {
    Mock,
    /// The `eci` provider against a `vk-cloud serve` with this executor and these flags.
    Eci {
        executor: String,
        cloud_flags: Vec<String>,
    },
    /// The `aci` provider against the simulator's ACI face with this executor and flags.
    Aci {
        executor: String,
        cloud_flags: Vec<String>,
    },
    /// The `fargate` provider against the simulator's ECS face with this executor and flags.
    Fargate {
        executor: String,
        cloud_flags: Vec<String>,
    },
}

/// What differs between the tests' virtual nodes.
pub struct Options {
    prefix: String,
    provider: Provider,
    config: String,
    serving_cert: bool,
    state_file: bool,
    ready_timeout: Duration,
    cluster_dns: bool,
    vk_env: Vec<(String, String)>,
    cloud_env: Vec<(String, String)>,
    static_keys: bool,
}

impl Options {
    /// vk with the mock provider; node and namespace names start with `prefix`.
    pub fn mock(prefix: &str) -> Options {
        Options {
            prefix: prefix.into(),
            provider: Provider::Mock,
            config: String::new(),
            serving_cert: false,
            state_file: false,
            ready_timeout: Duration::from_secs(60),
            cluster_dns: true,
            vk_env: Vec::new(),
            cloud_env: Vec::new(),
            static_keys: true,
        }
    }

    /// vk with the eci provider against a mock ECI cloud started for the test (`executor`
    /// `process` or `simulate`, `cloud_flags` passed to `vk-cloud serve`).
    pub fn eci(prefix: &str, executor: &str, cloud_flags: &[&str]) -> Options {
        Options {
            provider: Provider::Eci {
                executor: executor.into(),
                cloud_flags: cloud_flags.iter().map(|f| f.to_string()).collect(),
            },
            ..Options::mock(prefix)
        }
    }

    /// vk with the aci provider against the simulator's ACI face started for the test.
    pub fn aci(prefix: &str, executor: &str, cloud_flags: &[&str]) -> Options {
        Options {
            provider: Provider::Aci {
                executor: executor.into(),
                cloud_flags: cloud_flags.iter().map(|f| f.to_string()).collect(),
            },
            ..Options::mock(prefix)
        }
    }

    /// vk with the fargate provider against the simulator's ECS face started for the test.
    pub fn fargate(prefix: &str, executor: &str, cloud_flags: &[&str]) -> Options {
        Options {
            provider: Provider::Fargate {
                executor: executor.into(),
                cloud_flags: cloud_flags.iter().map(|f| f.to_string()).collect(),
            },
            ..Options::mock(prefix)
        }
    }

    /// Lines appended to vk's config file after the provider's section: indented lines extend
    /// that section (`  ping_fail_file: ...`), others are top-level settings.
    pub fn config(mut self, yaml: &str) -> Options {
        self.config.push_str(yaml);
        self
    }

    /// Approve vk's kubelet-serving CSR and wait until the API server reaches vk's kubelet
    /// API with the issued certificate (exec, logs, port-forward, node proxy need it).
    pub fn serving_cert(mut self) -> Options {
        self.serving_cert = true;
        self
    }

    /// The mock provider persists its view of "the cloud" to [`VirtualNode::state_file`].
    pub fn state_file(mut self) -> Options {
        self.state_file = true;
        self
    }

    /// vk is not told the cluster's DNS address (by default it is, when the local cluster runs
    /// CoreDNS: the `kube-dns` Service's ClusterIP is not reachable here, there is no
    /// kube-proxy), so it reads `kube-system/kube-dns` itself.
    pub fn without_cluster_dns(mut self) -> Options {
        self.cluster_dns = false;
        self
    }

    /// Extra environment variables of vk (e.g. `ALIBABA_CLOUD_*`, or `RUST_LOG`).
    pub fn vk_env(mut self, vars: &[(&str, &str)]) -> Options {
        self.vk_env
            .extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// eci: extra environment variables of the mock cloud (e.g. `RUST_LOG`); its log then goes
    /// to a file of its own ([`MockCloud::logs`]) instead of the test's stderr.
    pub fn cloud_env(mut self, vars: &[(&str, &str)]) -> Options {
        self.cloud_env
            .extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// eci: no AccessKey in vk's config, so the credential chain picks the source; the STS and
    /// metadata addresses point at the mock cloud.
    pub fn without_static_keys(mut self) -> Options {
        self.static_keys = false;
        self
    }

    /// How long the node may take to turn Ready (60 s unless set).
    pub fn ready_timeout(mut self, timeout: Duration) -> Options {
        self.ready_timeout = timeout;
        self
    }

    /// The virtual node alone, without a namespace.
    pub async fn start_node(self) -> VirtualNode {
        let client = client().await;
        let kubeconfig = service_account_kubeconfig(&client).await;
        let node = unique(&self.prefix);
        let state_file = self
            .state_file
            .then(|| std::env::temp_dir().join(format!("{node}.cloud.json")));
        let mut aci_cloud = None;
        let mut fargate_cloud = None;
        let mut vk_env = self.vk_env.clone();
        // A test that scrapes /metrics names its own health port.
        let health = if self.config.contains("health_port:") {
            ""
        } else {
            "health_port: 0\n"
        };
        let (cloud, config) = match &self.provider {
            Provider::Fargate {
                executor,
                cloud_flags,
            } => {
                let flags: Vec<&str> = cloud_flags.iter().map(String::as_str).collect();
                let cloud = FargateCloud::start(executor, &flags);
                let config = format!(
                    "provider: fargate\n{health}{}{}",
                    cloud.fargate_config(),
                    self.config
                );
                vk_env.extend(FargateCloud::env());
                fargate_cloud = Some(cloud);
                (None, config)
            }
            Provider::Aci {
                executor,
                cloud_flags,
            } => {
                let flags: Vec<&str> = cloud_flags.iter().map(String::as_str).collect();
                let cloud = AciCloud::start(executor, &flags);
                let config = format!(
                    "provider: aci\n{health}{}{}",
                    cloud.aci_config(),
                    self.config
                );
                aci_cloud = Some(cloud);
                (None, config)
            }
            Provider::Mock => {
                let state = state_file
                    .as_ref()
                    .map(|f| format!("  state_file: {}\n", f.display()))
                    .unwrap_or_default();
                (None, mock_config(&format!("{state}{}", self.config)))
            }
            Provider::Eci {
                executor,
                cloud_flags,
            } => {
                let flags: Vec<&str> = cloud_flags.iter().map(String::as_str).collect();
                let cloud = if self.cloud_env.is_empty() {
                    MockCloud::start(executor, &flags)
                } else {
                    MockCloud::start_logged(executor, &flags, &self.cloud_env)
                };
                let section = if self.static_keys {
                    cloud.eci_config()
                } else {
                    cloud.eci_config_keyless()
                };
                let config = format!("provider: eci\n{health}{section}{}", self.config);
                (Some(cloud), config)
            }
        };
        let mut config = config;
        if let Some(dns) = cluster().dns.as_ref().filter(|_| self.cluster_dns)
            && !self.config.contains("cluster_dns:")
        {
            config.push_str(&format!("cluster_dns: [{dns}]\n"));
        }
        let vk = Vk::start_with_env(&kubeconfig, &node, &config, vk_env);
        let nodes: Api<Node> = Api::all(client.clone());
        // From here on, a panic still stops vk and deletes the node.
        let started = VirtualNode {
            client,
            nodes,
            vk,
            cloud,
            aci_cloud,
            fargate_cloud,
            state_file,
        };
        if self.serving_cert {
            approve_serving_csr(&started.client, &node).await;
        }
        wait_node_ready(&started.nodes, &node, "True", self.ready_timeout).await;
        if self.serving_cert {
            // The issued certificate may still be on its way to vk.
            let path = format!("/api/v1/nodes/{node}/proxy/healthz");
            wait_for(
                "the API server to reach vk's kubelet API",
                Duration::from_secs(30),
                || async { kubectl(&["get", "--raw", &path]).status.success() },
            )
            .await;
        }
        started
    }

    /// The virtual node and a fresh namespace for the test's pods.
    pub async fn start(self) -> TestBed {
        let prefix = self.prefix.clone();
        let node = self.start_node().await;
        let ns = TestNamespace::new(&node.client, &prefix).await;
        let pods = Api::namespaced(node.client.clone(), &ns.name);
        TestBed { node, ns, pods }
    }
}

/// A running vk and the node it registered (`vk.node`).
pub struct VirtualNode {
    pub client: kube::Client,
    pub nodes: Api<Node>,
    /// The vk process: kill, terminate, restart, logs.
    pub vk: Vk,
    cloud: Option<MockCloud>,
    aci_cloud: Option<AciCloud>,
    fargate_cloud: Option<FargateCloud>,
    state_file: Option<PathBuf>,
}

impl VirtualNode {
    /// The mock ECI cloud vk talks to; only for [`Options::eci`].
    pub fn cloud(&self) -> &MockCloud {
        self.cloud
            .as_ref()
            .expect("a virtual node started with Options::eci")
    }

    /// The simulator's ACI face vk talks to; only for [`Options::aci`].
    pub fn aci_cloud(&self) -> &AciCloud {
        self.aci_cloud
            .as_ref()
            .expect("a virtual node started with Options::aci")
    }

    /// The simulator's ECS face vk talks to; only for [`Options::fargate`].
    pub fn fargate_cloud(&self) -> &FargateCloud {
        self.fargate_cloud
            .as_ref()
            .expect("a virtual node started with Options::fargate")
    }

    /// Where the mock provider persists its state; only with [`Options::state_file`].
    pub fn state_file(&self) -> &Path {
        self.state_file
            .as_deref()
            .expect("a virtual node started with Options::state_file")
    }
}

impl Drop for VirtualNode {
    fn drop(&mut self) {
        // vk first, or it registers the deleted node again; the cloud (a field) goes after.
        self.vk.kill();
        let _ = kubectl(&["delete", "node", &self.vk.node, "--wait=false"]);
    }
}

/// A virtual node and a namespace for the test's pods. Derefs to its [`VirtualNode`].
pub struct TestBed {
    node: VirtualNode,
    pub ns: TestNamespace,
    pub pods: Api<Pod>,
}

impl TestBed {
    /// Create the pod of `manifests/examples/<file>` as a user applies it, with the examples'
    /// registry secret, pinned to this test's node (other tests' virtual nodes share the
    /// cluster). Does not wait.
    pub async fn create_example_pod(&self, file: &str) -> Pod {
        let secret: k8s_openapi::api::core::v1::Secret =
            crate::example("registry-credentials.yaml");
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(self.client.clone(), &self.ns.name)
            .create(&PostParams::default(), &secret)
            .await
            .expect("creating the registry secret");
        let mut pod: Pod = crate::example(file);
        if let Some(spec) = pod.spec.as_mut() {
            spec.node_selector
                .get_or_insert_with(Default::default)
                .insert("kubernetes.io/hostname".into(), self.vk.node.clone());
        }
        self.pods
            .create(&PostParams::default(), &pod)
            .await
            .expect("creating the example pod")
    }

    /// [`TestBed::create_example_pod`], then wait until the pod `name` is Ready, as the CI
    /// systems that make such pods do (Jenkins, GitLab Runner).
    pub async fn example_pod_ready(&self, file: &str, name: &str, timeout: Duration) {
        self.create_example_pod(file).await;
        wait_for(&format!("pod {name} to be Ready"), timeout, || async {
            self.pods
                .get(name)
                .await
                .ok()
                .is_some_and(|p| crate::jenkins::ready(&p))
        })
        .await;
    }

    /// Every container of the pod `name` is running and none restarted.
    pub async fn assert_containers_running(&self, name: &str) {
        let pod = self.pods.get(name).await.expect("reading the pod");
        let statuses = pod.status.and_then(|s| s.container_statuses);
        for c in statuses.unwrap_or_default() {
            let running = c.state.as_ref().is_some_and(|st| st.running.is_some());
            assert!(running, "{} is not running: {:?}", c.name, c.state);
            assert_eq!(c.restart_count, 0, "{} restarted", c.name);
        }
    }

    /// Create `pod` in the test namespace and wait until it is Running (60 s).
    pub async fn run_pod(&self, pod: &Pod) -> Pod {
        self.run_pod_within(pod, Duration::from_secs(60)).await
    }

    /// [`TestBed::run_pod`] with another timeout.
    pub async fn run_pod_within(&self, pod: &Pod, timeout: Duration) -> Pod {
        let name = pod.metadata.name.clone().expect("the pod has a name");
        self.pods
            .create(&PostParams::default(), pod)
            .await
            .unwrap_or_else(|e| panic!("creating pod {name}: {e}"));
        wait_phase(&self.pods, &name, "Running", timeout).await
    }
}

impl Deref for TestBed {
    type Target = VirtualNode;
    fn deref(&self) -> &VirtualNode {
        &self.node
    }
}

impl DerefMut for TestBed {
    fn deref_mut(&mut self) -> &mut VirtualNode {
        &mut self.node
    }
}
