//! The scripted provider and the pod the component tests run against.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStatus, Pod, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use tokio::sync::{mpsc, watch};

use super::NODE;
use crate::provider::{
    ContainerStats, ExecIo, ExecOutcome, InstancePhase, InstanceStatus, LogOptions, LogStream,
    NodeCapacity, PodRef, PodStats, Provider, ProviderError, ResolvedPod, StatusSource,
};

/// When the test pod started; log line `i` is written `i` seconds later.
fn t0() -> Timestamp {
    "2024-05-01T10:00:00Z".parse().unwrap()
}

/// A provider whose logs are scripted: five timestamped lines, or with `follow` whatever the
/// test sends on [`TestProvider::follow`]'s channel.
pub(super) struct TestProvider {
    pub calls: Mutex<Vec<(PodRef, String, LogOptions)>>,
    follow_feed: Mutex<Option<mpsc::Receiver<Bytes>>>,
    /// Set when a follow stream is dropped.
    pub dropped: Arc<watch::Sender<bool>>,
    /// Returned by the next `logs` call instead of a stream.
    pub log_error: Mutex<Option<ProviderError>>,
    pub stats_error: Mutex<Option<ProviderError>>,
}

impl TestProvider {
    pub(super) fn new() -> Self {
        Self {
            calls: Mutex::default(),
            follow_feed: Mutex::default(),
            dropped: Arc::new(watch::channel(false).0),
            log_error: Mutex::default(),
            stats_error: Mutex::default(),
        }
    }

    /// The sender behind the next `follow` stream; dropping it ends that stream.
    pub fn follow(&self) -> mpsc::Sender<Bytes> {
        let (tx, rx) = mpsc::channel(16);
        *self.follow_feed.lock().unwrap() = Some(rx);
        tx
    }

    pub fn last_call(&self) -> (PodRef, String, LogOptions) {
        self.calls.lock().unwrap().last().cloned().unwrap()
    }
}

struct DropFlag(Arc<watch::Sender<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

pub(super) fn build_ref() -> PodRef {
    PodRef {
        namespace: "ci".into(),
        name: "build".into(),
        uid: "uid-build".into(),
    }
}

#[async_trait]
impl Provider for TestProvider {
    fn name(&self) -> &str {
        "test"
    }

    async fn create(&self, _: &ResolvedPod) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn update(&self, _: &ResolvedPod) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn delete(&self, _: &PodRef, _: Duration) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn list(&self) -> Result<Vec<InstanceStatus>, ProviderError> {
        Ok(vec![InstanceStatus {
            billing: None,
            pod: build_ref(),
            phase: InstancePhase::Running,
            reason: None,
            message: None,
            pod_ip: None,
            created_at: None,
            init_containers: vec![],
            containers: vec![],
            events: vec![],
        }])
    }

    fn status_source(&self) -> StatusSource {
        StatusSource::Poll(Duration::from_secs(60))
    }

    async fn logs(
        &self,
        pod: &PodRef,
        container: &str,
        opts: &LogOptions,
    ) -> Result<LogStream, ProviderError> {
        self.calls
            .lock()
            .unwrap()
            .push((pod.clone(), container.to_string(), opts.clone()));
        if let Some(err) = self.log_error.lock().unwrap().take() {
            return Err(err);
        }
        if opts.follow {
            // Without a feed set up (the fuzz test's requests), a follow ends at once.
            let Some(rx) = self.follow_feed.lock().unwrap().take() else {
                return Ok(futures::stream::empty().boxed());
            };
            let flag = DropFlag(self.dropped.clone());
            let lines = futures::stream::unfold((rx, flag), |(mut rx, flag)| async move {
                let line = rx.recv().await?;
                Some((Ok(line), (rx, flag)))
            });
            return Ok(lines.boxed());
        }
        // Deliberately ignores limit_bytes: the server must cut.
        let mut lines: Vec<Bytes> = (1..=5i64)
            .filter_map(|i| {
                let at = t0().checked_add(jiff::SignedDuration::from_secs(i)).ok()?;
                if opts.since.is_some_and(|since| at < since) {
                    return None;
                }
                let prefix = if opts.timestamps {
                    format!("{at} ")
                } else {
                    String::new()
                };
                Some(Bytes::from(format!("{prefix}line {i}\n")))
            })
            .collect();
        if let Some(tail) = opts.tail_lines {
            let keep = usize::try_from(tail).unwrap().min(lines.len());
            lines.drain(..lines.len() - keep);
        }
        Ok(futures::stream::iter(lines.into_iter().map(Ok)).boxed())
    }

    fn capacity(&self) -> NodeCapacity {
        NodeCapacity {
            cpu_millis: 8000,
            memory_bytes: 32 << 30,
            pods: 100,
            ephemeral_storage_bytes: 100 << 30,
        }
    }

    async fn ping(&self) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Echoes the command line on stdout, then stdin; exits with the length of the command.
    async fn exec(
        &self,
        _pod: &PodRef,
        _container: &str,
        command: Vec<String>,
        mut io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        use tokio::io::AsyncWriteExt;
        if let Some(out) = io.stdout.as_mut() {
            let line = format!("{}\n", command.join(" "));
            let echoed = async {
                out.write_all(line.as_bytes()).await?;
                if let Some(stdin) = io.stdin.as_mut() {
                    tokio::io::copy(stdin, out).await?;
                }
                out.shutdown().await
            };
            // A client that went away (or a connection closed under it) ends the command.
            if let Err(err) = echoed.await {
                return Ok(ExecOutcome::Error(err.to_string()));
            }
        }
        Ok(ExecOutcome::Exited(i32::try_from(command.len()).unwrap()))
    }

    async fn stats(&self) -> Result<Vec<PodStats>, ProviderError> {
        if let Some(err) = self.stats_error.lock().unwrap().take() {
            return Err(err);
        }
        let container = |name: &str, millicores: u64, seconds: u64, mib: u64| ContainerStats {
            name: name.into(),
            cpu_usage_nano_cores: millicores * 1_000_000,
            cpu_usage_core_nano_seconds: seconds * 1_000_000_000,
            memory_working_set_bytes: mib << 20,
        };
        Ok(vec![
            PodStats {
                pod: Some(build_ref()),
                containers: vec![container("app", 5, 3, 10), container("sidecar", 1, 1, 6)],
            },
            // An instance without a pod: counted for the node only.
            PodStats {
                pod: None,
                containers: vec![container("stray", 2, 2, 4)],
            },
        ])
    }
}

/// The pod `ci/build`: containers `app` (running since t0 + 5s) and `sidecar`, init `setup`.
fn build_pod() -> Pod {
    let container = |name: &str| Container {
        name: name.into(),
        image: Some("busybox".into()),
        ..Container::default()
    };
    let started = t0()
        .checked_add(jiff::SignedDuration::from_secs(5))
        .unwrap();
    Pod {
        metadata: ObjectMeta {
            namespace: Some("ci".into()),
            name: Some("build".into()),
            uid: Some("uid-build".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some(NODE.into()),
            containers: vec![container("app"), container("sidecar")],
            init_containers: Some(vec![container("setup")]),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            start_time: Some(Time(t0())),
            container_statuses: Some(vec![ContainerStatus {
                name: "app".into(),
                state: Some(ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(Time(started)),
                    }),
                    ..ContainerState::default()
                }),
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        }),
    }
}

pub(super) fn store_with_build_pod() -> Store<Pod> {
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Apply(build_pod()));
    reader
}
