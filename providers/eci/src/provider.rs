//! The `Provider` over ECI. Status comes from ONE paginated `DescribeContainerGroups` per
//! interval, filtered by the node tag, for all the node's groups (vk-core diffs the answers);
//! nothing polls per pod. Pod UID -> group id is remembered from creates and listings
//! ([`GroupIds`]), and looked up by the pod-UID tag when unknown (after a restart).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt as _;
use vk_core::provider::{
    ExecIo, ExecOutcome, InstanceEvent, InstanceStatus, LogOptions, LogStream, NodeCapacity,
    PodRef, PodStats, Provider, ProviderCondition, ProviderError, ResolvedPod, StatusSource,
};

use super::EciConfig;
use crate::client::EciClient;
use crate::credentials::CredentialHealth;
use crate::credentials_chain;
use crate::error::EciError;
use crate::exec;
use crate::group_ids::GroupIds;
use crate::logs;
use crate::mapping::instance_status;
use crate::metrics::{self, DescribeMultiContainerGroupMetric, METRIC_TYPE_SUMMARY};
use crate::pod::{self, Placement, tags};
use crate::pod_runtime::RuntimeWarning;
use crate::wire::action::DeleteContainerGroup;
use crate::wire::api::ContainerGroup;
use crate::wire::request::{DescribeContainerGroups, ExecContainerCommand, UpdateContainerGroup};
use vk_core::metrics::ProviderMetrics;

/// The service's page size limit for DescribeContainerGroups.
const PAGE_SIZE: u32 = 20;

pub struct EciProvider {
    client: Arc<EciClient>,
    config: EciConfig,
    placement: Placement,
    groups: GroupIds,
    /// The running groups of the last listing, for `stats`.
    running: Mutex<Option<RunningGroups>>,
    /// Per pod UID: what its create could not give ECI, reported with its status as Warning
    /// events (recorded once).
    /// Per pod UID: what its create could not express, and when the create was made.
    warnings: Mutex<HashMap<String, (jiff::Timestamp, Vec<RuntimeWarning>)>>,
}

/// Group id -> pod of the node's running groups, as a listing found them.
struct RunningGroups {
    at: Instant,
    pods: HashMap<String, PodRef>,
}

impl EciProvider {
    /// Check the configuration and build the client; no call is made until the first use.
    /// The keys come from the config or, without them, the credential chain over the
    /// process's environment ([`credentials_chain`]).
    pub fn new(config: EciConfig) -> Result<Self, ProviderError> {
        Self::with_env(config, &credentials_chain::process_env)
    }

    /// [`Self::new`], counting every cloud call and credential refresh failure into `metrics`.
    pub fn recording(config: EciConfig, metrics: ProviderMetrics) -> Result<Self, ProviderError> {
        Self::build(config, &credentials_chain::process_env, metrics)
    }

    /// [`Self::new`] with the chain reading `env` instead of the process's environment.
    pub fn with_env(
        config: EciConfig,
        env: credentials_chain::Env<'_>,
    ) -> Result<Self, ProviderError> {
        Self::build(config, env, ProviderMetrics::default())
    }

    fn build(
        config: EciConfig,
        env: credentials_chain::Env<'_>,
        metrics: ProviderMetrics,
    ) -> Result<Self, ProviderError> {
        if config.node_name.is_empty() {
            return Err(ProviderError::invalid(
                "EciConfig",
                "node_name is empty: it tags every group so the node finds its own",
            ));
        }
        let credentials = credentials_chain::resolve(&config, env)
            .map_err(|e| ProviderError::invalid("EciConfig", e.to_string()))?;
        let mut client_config = config.client_config();
        client_config.credentials = Some(credentials);
        client_config.metrics = metrics;
        let client = EciClient::new(client_config)
            .map_err(|e| ProviderError::invalid("EciConfig", e.to_string()))?;
        Self::sharing(Arc::new(client), config)
    }

    /// Another node's provider over the same client: one set of credentials and one rate
    /// limit for the whole account, as ECI's quotas are per account (`vk run` with `nodes:`).
    pub fn sharing(client: Arc<EciClient>, config: EciConfig) -> Result<Self, ProviderError> {
        if config.node_name.is_empty() {
            return Err(ProviderError::invalid("EciConfig", "node_name is empty"));
        }
        Ok(Self {
            client,
            placement: Placement {
                zone_id: config.zone_id.clone(),
                security_group_id: config.security_group_id.clone(),
                vswitch_id: config.vswitch_id.clone(),
                image_cache: config.image_cache.clone(),
            },
            config,
            groups: GroupIds::default(),
            running: Mutex::default(),
            warnings: Mutex::default(),
        })
    }

    /// The client, for calls the `Provider` trait has no verb for (exec, restart).
    pub fn client(&self) -> &Arc<EciClient> {
        &self.client
    }

    fn node_tag(&self) -> crate::wire::api::Tag {
        pod::tag(tags::NODE, &self.config.node_name)
    }

    /// The pod a group was made for, from its tags; `None` for groups not made by us.
    fn pod_of(group: &ContainerGroup) -> Option<PodRef> {
        Some(PodRef {
            uid: group.tag(tags::POD_UID)?.to_string(),
            namespace: group.tag(tags::NAMESPACE)?.to_string(),
            name: group.tag(tags::POD_NAME)?.to_string(),
        })
    }

    /// Every group of this node, all pages.
    async fn node_groups(
        &self,
        extra: Option<crate::wire::api::Tag>,
    ) -> Result<Vec<ContainerGroup>, ProviderError> {
        let mut groups = Vec::new();
        self.each_node_group(extra, |g| groups.push(g)).await?;
        Ok(groups)
    }

    /// Every group of this node, handed to `each` page by page and let go: a listing of the
    /// whole node holds one page of the service's answer at a time, not every group's full
    /// description (about 12 KB decoded; 10 000 groups held at once were over 100 MB).
    async fn each_node_group(
        &self,
        extra: Option<crate::wire::api::Tag>,
        mut each: impl FnMut(ContainerGroup) + Send,
    ) -> Result<(), ProviderError> {
        let mut query = DescribeContainerGroups {
            tags: vec![self.node_tag()],
            limit: Some(PAGE_SIZE),
            ..Default::default()
        };
        query.tags.extend(extra);
        let mut listed = 0usize;
        let mut seen = std::collections::HashSet::new();
        loop {
            let page = self.client.send(&query).await?;
            listed += page.container_groups.len();
            page.container_groups.into_iter().for_each(&mut each);
            if page.next_token.is_empty() {
                return Ok(());
            }
            // A token handed out twice would page forever: the listing is broken, say so.
            if !seen.insert(page.next_token.clone()) {
                return Err(EciError::Decode {
                    action: "DescribeContainerGroups".into(),
                    message: format!(
                        "NextToken {:.64} came back again after {listed} groups; the listing does not end",
                        page.next_token,
                    ),
                }
                .into());
            }
            query.next_token = Some(page.next_token);
        }
    }

    /// The group made for this pod, found by its UID tag (one call).
    async fn find(&self, pod: &PodRef) -> Result<Option<ContainerGroup>, ProviderError> {
        let groups = self
            .node_groups(Some(pod::tag(tags::POD_UID, &pod.uid)))
            .await?;
        let group = groups.into_iter().next();
        if let Some(g) = &group {
            self.groups.insert(&pod.uid, &g.container_group_id);
        }
        Ok(group)
    }

    async fn group_id(&self, pod: &PodRef) -> Result<Option<String>, ProviderError> {
        if let Some(id) = self.groups.get(&pod.uid) {
            return Ok(Some(id));
        }
        Ok(self.find(pod).await?.map(|g| g.container_group_id))
    }

    /// A running group of the listing: its id and its pod (for `stats`).
    fn running_entry(group: &ContainerGroup, pod: &PodRef) -> Option<(String, PodRef)> {
        (group.status == crate::wire::api::group_status::RUNNING)
            .then(|| (group.container_group_id.clone(), pod.clone()))
    }

    /// The node's running groups (group id -> pod) as a listing found them just now.
    fn remember_running(&self, pods: HashMap<String, PodRef>) {
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(RunningGroups {
            at: Instant::now(),
            pods,
        });
    }

    /// The node's running groups: from the status poll's last listing when it is recent
    /// (vk-core lists every `status_interval_ms`), else from a listing of our own.
    async fn running_groups(&self) -> Result<HashMap<String, PodRef>, ProviderError> {
        let fresh = Duration::from_millis(self.config.status_interval_ms.max(100) * 2);
        if let Some(known) = &*self.running.lock().unwrap_or_else(|p| p.into_inner())
            && known.at.elapsed() <= fresh
        {
            return Ok(known.pods.clone());
        }
        let mut pods = HashMap::new();
        self.each_node_group(None, |group| {
            if let Some(pod) = Self::pod_of(&group) {
                pods.extend(Self::running_entry(&group, &pod));
            }
        })
        .await?;
        self.remember_running(pods.clone());
        Ok(pods)
    }

    /// The group's status with the pod's create warnings as events, dated at this process's
    /// create so that each is one occurrence (not at the group's `CreationTime`: whole
    /// seconds, which can fall before this process started and be taken as recorded).
    fn status_of(&self, pod: PodRef, group: &ContainerGroup) -> InstanceStatus {
        let mut status = instance_status(pod, group);
        let warnings = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, list)) = warnings.get(&status.pod.uid) {
            let at = *at;
            status.events.extend(list.iter().map(|w| InstanceEvent {
                container: w.container.clone(),
                warning: true,
                reason: w.reason.clone(),
                message: w.message.clone(),
                count: 1,
                first_seen: at,
                last_seen: at,
            }));
        }
        status
    }

    fn not_found(pod: &PodRef) -> ProviderError {
        ProviderError::NotFound(format!(
            "no ECI container group for pod {pod} (uid {})",
            pod.uid
        ))
    }
}

#[async_trait]
impl Provider for EciProvider {
    fn name(&self) -> &str {
        "eci"
    }

    async fn create(&self, pod: &ResolvedPod) -> Result<(), ProviderError> {
        if self.groups.contains(&pod.pod.uid) {
            return Ok(());
        }
        let mut warnings = Vec::new();
        let request = pod::create_request_warning(
            pod,
            &self.config.node_name,
            &self.placement,
            &mut warnings,
        )?;
        if !warnings.is_empty() {
            self.warnings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(pod.pod.uid.clone(), (jiff::Timestamp::now(), warnings));
        }
        let answer = match self.client.send(&request).await {
            Ok(answer) => answer,
            // An earlier create of this pod ran but its answer was lost, and the pod resolves
            // differently now (service-account tokens are re-issued on every resolve): the
            // group it made is the pod's, so adopt it instead of failing the pod.
            Err(e) if e.code() == Some("IdempotentParameterMismatch") => {
                return match self.find(&pod.pod).await? {
                    Some(group) => {
                        tracing::info!(pod = %pod.pod, group = %group.container_group_id, "adopted the ECI container group of an earlier create");
                        Ok(())
                    }
                    None => Err(e.into()),
                };
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(pod = %pod.pod, group = %answer.container_group_id, "ECI container group created");
        self.groups.insert(&pod.pod.uid, &answer.container_group_id);
        // A use of the pod's image set, for keep_top_images (only pods that match caches).
        if let Some(keep) = &self.config.image_cache.keep_top_images
            && request.options.auto_match_image_cache == Some(true)
        {
            keep.record(pod);
        }
        Ok(())
    }

    /// Refresh the contents of the file volumes (tokens, configMaps); ECI cannot change
    /// containers of a running group in place without restarting them.
    async fn update(&self, pod: &ResolvedPod) -> Result<(), ProviderError> {
        let id = self
            .group_id(&pod.pod)
            .await?
            .ok_or_else(|| Self::not_found(&pod.pod))?;
        let volumes: Vec<_> = pod::volumes(pod)
            .into_iter()
            .filter(|v| v.kind() == crate::wire::request::VOLUME_CONFIG_FILE)
            .collect();
        if volumes.is_empty() {
            return Ok(());
        }
        let update = UpdateContainerGroup {
            region_id: String::new(),
            container_group_id: id,
            volumes,
            client_token: None,
        };
        match self.client.send(&update).await {
            Ok(_) => Ok(()),
            // A finished group has nothing left to update.
            Err(e) if e.code() == Some("IncorrectStatus") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, pod: &PodRef, grace: Duration) -> Result<(), ProviderError> {
        let Some(id) = self.group_id(pod).await? else {
            return Ok(());
        };
        match self.client.send(&DeleteContainerGroup::new(&id)).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(%pod, group = %id, ?grace, "ECI container group deleted");
        self.groups.remove(&pod.uid);
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&pod.uid);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<InstanceStatus>, ProviderError> {
        let mut statuses = Vec::new();
        self.list_each(&mut |status| statuses.push(status)).await?;
        Ok(statuses)
    }

    /// Page by page: each page's groups become statuses handed to `each` and are let go.
    async fn list_each(
        &self,
        each: &mut (dyn FnMut(InstanceStatus) + Send),
    ) -> Result<(), ProviderError> {
        let mark = self.groups.begin_listing();
        let mut ids = HashMap::new();
        let mut running = HashMap::new();
        self.each_node_group(None, |group| {
            let Some(pod) = Self::pod_of(&group) else {
                return;
            };
            running.extend(Self::running_entry(&group, &pod));
            ids.insert(pod.uid.clone(), group.container_group_id.clone());
            each(self.status_of(pod, &group));
        })
        .await?;
        self.groups.finish_listing(mark, ids);
        self.remember_running(running);
        Ok(())
    }

    fn status_source(&self) -> StatusSource {
        StatusSource::Poll(Duration::from_millis(
            self.config.status_interval_ms.max(100),
        ))
    }

    async fn logs(
        &self,
        pod: &PodRef,
        container: &str,
        opts: &LogOptions,
    ) -> Result<LogStream, ProviderError> {
        let id = self
            .group_id(pod)
            .await?
            .ok_or_else(|| Self::not_found(pod))?;
        if opts.follow && !opts.previous {
            return Ok(logs::follow(
                self.client.clone(),
                id,
                container.to_string(),
                opts.clone(),
                Duration::from_millis(self.config.log_poll_interval_ms.max(50)),
            ));
        }
        let answer = self
            .client
            .send(&logs::request(&id, container, opts))
            .await?;
        let content = Bytes::from(answer.content);
        Ok(futures::stream::iter((!content.is_empty()).then_some(Ok(content))).boxed())
    }

    fn capacity(&self) -> NodeCapacity {
        let c = &self.config.capacity;
        NodeCapacity {
            cpu_millis: c.cpu_millis,
            memory_bytes: c.memory_bytes,
            pods: c.pods,
            ephemeral_storage_bytes: c.ephemeral_storage_bytes,
        }
    }

    /// `CloudCredentials`: False while fetching new keys fails (the message says how long the
    /// current ones last), True again once a fetch works.
    fn node_conditions(&self) -> Vec<ProviderCondition> {
        let credentials = self.client.credentials();
        vec![credential_condition(
            credentials.source_name(),
            credentials.health(),
        )]
    }

    /// One cheap authenticated call: reachability and credentials both count. A throttled
    /// answer comes from a reachable service that accepted the signature, so it counts as up:
    /// a NotReady node would stop scheduling and, after a while, evict running pods.
    async fn ping(&self) -> Result<(), ProviderError> {
        match self
            .client
            .send(&DescribeContainerGroups {
                tags: vec![self.node_tag()],
                limit: Some(1),
                ..Default::default()
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_throttling() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The latest sample of every running group of the node: one
    /// DescribeMultiContainerGroupMetric per 20 groups (the most one call takes), never one
    /// call per pod.
    async fn stats(&self) -> Result<Vec<PodStats>, ProviderError> {
        let pods = self.running_groups().await?;
        let mut ids: Vec<String> = pods.keys().cloned().collect();
        ids.sort();
        let mut stats = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(metrics::MAX_GROUP_IDS) {
            let request = DescribeMultiContainerGroupMetric {
                region_id: String::new(),
                container_group_ids: chunk.to_vec(),
                metric_type: Some(METRIC_TYPE_SUMMARY.into()),
            };
            let answer = self.client.send(&request).await?;
            stats.extend(metrics::pod_stats(answer.monitor_datas, &pods));
        }
        Ok(stats)
    }

    /// ExecContainerCommand (interactive: `Sync=false`, `TTY` and `Stdin` as the client asked)
    /// hands out a single-use WebSocket URI; the client's streams are carried over it
    /// ([`crate::exec`]) until the command's status brings its exit code. A client that goes
    /// away, or a dropped call, closes the socket and the command is killed.
    async fn exec(
        &self,
        pod: &PodRef,
        container: &str,
        command: Vec<String>,
        io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        if command.is_empty() {
            return Err(ProviderError::invalid(
                "EmptyCommand",
                "you must specify at least one command for the container",
            ));
        }
        let id = self
            .group_id(pod)
            .await?
            .ok_or_else(|| Self::not_found(pod))?;
        let request = ExecContainerCommand {
            region_id: String::new(),
            container_group_id: id.clone(),
            container_name: container.to_string(),
            command,
            tty: io.tty,
            stdin: io.stdin.is_some(),
            sync: false,
        };
        let answer = match self.client.send(&request).await {
            Ok(answer) => answer,
            Err(e) if e.code() == Some("IncorrectStatus") => {
                return Err(ProviderError::invalid(
                    "ContainerNotRunning",
                    format!("cannot exec in container {container} of pod {pod}: {e}"),
                ));
            }
            Err(e) if e.is_not_found() => {
                return Err(ProviderError::NotFound(format!(
                    "container {container} of pod {pod}: {e}"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if answer.web_socket_uri.is_empty() {
            return Ok(ExecOutcome::Error(
                "ExecContainerCommand answered without a WebSocketUri".into(),
            ));
        }
        let timeout = Duration::from_millis(self.config.request_timeout_ms.max(1));
        let ws = match exec::connect(&answer.web_socket_uri, timeout).await {
            Ok(ws) => ws,
            Err(e) => return Ok(ExecOutcome::Error(e.to_string())),
        };
        tracing::debug!(%pod, container, group = %id, "ECI exec session open");
        Ok(exec::bridge(ws, io).await)
    }

    /// ECI has no attach: the client's stdin goes through an exec into the pipe vk put on the
    /// container's stdin, its output is the container's log from now on
    /// ([`vk_core::provider::stdin_pipe`]).
    async fn attach(
        &self,
        pod: &PodRef,
        container: &str,
        io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        vk_core::provider::stdin_pipe::attach(self, pod, container, io).await
    }
}

/// The Node condition for the credentials' health (the error names its source and cause, never
/// a key: [`crate::credentials::CredentialError`] carries none).
fn credential_condition(source: &str, health: CredentialHealth) -> ProviderCondition {
    let (healthy, reason, message) = match health {
        CredentialHealth::Fine => (
            true,
            "CredentialsValid",
            format!("the cloud credentials ({source}) are valid"),
        ),
        CredentialHealth::RefreshFailing {
            error,
            valid_for: Some(left),
        } => (
            false,
            "CredentialRefreshFailed",
            format!(
                "refreshing the cloud credentials failed: {error}; the current keys stay valid for {}s more",
                left.as_secs()
            ),
        ),
        CredentialHealth::RefreshFailing {
            error,
            valid_for: None,
        } => (
            false,
            "CredentialRefreshFailed",
            format!(
                "refreshing the cloud credentials failed: {error}; no valid keys are left, cloud calls fail until a refresh works"
            ),
        ),
    };
    ProviderCondition {
        type_: "CloudCredentials".into(),
        healthy,
        reason: reason.into(),
        message,
    }
}
