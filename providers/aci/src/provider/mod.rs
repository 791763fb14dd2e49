//! The `Provider` over ACI.
//!
//! Status comes from ONE paged list of the resource group's container groups per interval,
//! filtered by the node tag (vk-core diffs the answers). ARM's list may leave out instance
//! views; then at most `detail_reads_per_list` groups are read with a GET per listing — those
//! never read first, then those whose provisioning state changed, then the longest unread —
//! and a group whose containers have all terminated for good is never read again. Nothing
//! polls per pod.
//!
//! A pod's group name derives from the pod ([`pod::group_name`]): create, delete, logs and
//! exec need no lookup, a retried create replaces the same group, and after a restart the
//! groups are found again by their tags (orphans are deleted by vk-core's sweep through
//! [`Provider::delete`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt as _;
use hyper::Method;
use vk_core::provider::{
    ExecIo, ExecOutcome, InstanceEvent, InstanceStatus, LogOptions, LogStream, NodeCapacity,
    PodRef, PodStats, Provider, ProviderCondition, ProviderError, ResolvedPod, StatusSource,
};

use crate::client::{ArmClient, Kind};
use crate::config::AciConfig;
use crate::credentials_chain;
use crate::exec;
use crate::http::{Http, Tls};
use crate::logs;
use crate::mapping::Warning;
use crate::pod::{self, Placement, tags};
use crate::status::instance_status;
use vk_core::provider::credential_cache::Wording;
mod groups;
mod streams;

use crate::wire::{ContainerGroup, paths};
use groups::{Detail, WorkDirs};
use streams::first_size;

/// Tag holding a hash of the group's file volumes (see `refresh_volumes`).
const FILES_TAG: &str = "vk-files";

pub struct AciProvider {
    client: Arc<ArmClient>,
    tls: Tls,
    config: AciConfig,
    placement: Placement,
    warnings: Mutex<HashMap<String, (jiff::Timestamp, Vec<Warning>)>>,
    details: Mutex<HashMap<String, Detail>>,
    /// Group name -> the files tag, as the last listing had them.
    listed: Mutex<HashMap<String, Option<String>>>,
    work_dirs: Mutex<WorkDirs>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AciProvider {
    /// Check the configuration and build the client; no call is made until the first use.
    pub fn new(config: AciConfig) -> Result<Self, ProviderError> {
        Self::with_env(config, &credentials_chain::process_env)
    }

    /// [`Self::new`] with the credential chain reading `env` instead of the process's.
    pub fn with_env(
        config: AciConfig,
        env: credentials_chain::Env<'_>,
    ) -> Result<Self, ProviderError> {
        let invalid = |m: String| ProviderError::invalid("AciConfig", m);
        config.check().map_err(invalid)?;
        let tls = Tls::new(config.extra_ca_file.as_deref()).map_err(invalid)?;
        let http = Http::new(
            &tls,
            Duration::from_millis(config.request_timeout_ms.max(1)),
        );
        let tokens = credentials_chain::resolve(&config.credentials, env, &http)
            .map_err(|e| invalid(e.to_string()))?;
        let client = ArmClient::new(
            http,
            &config.endpoint,
            &config.subscription_id,
            &config.resource_group,
            tokens,
            config.pacing(),
        )
        .map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            client: Arc::new(client),
            tls,
            placement: Placement {
                location: config.location.clone(),
                subnet_id: config.subnet_id.clone(),
                public_ip: config.public_ip,
                limits: config.limits,
            },
            config,
            warnings: Mutex::default(),
            details: Mutex::default(),
            listed: Mutex::default(),
            work_dirs: Mutex::default(),
        })
    }

    /// Another node's provider over the same client: one token and one set of rate limits
    /// for the subscription, as ARM's and ACI's limits are per subscription.
    pub fn sharing(&self, config: AciConfig) -> Result<Self, ProviderError> {
        config
            .check()
            .map_err(|m| ProviderError::invalid("AciConfig", m))?;
        Ok(Self {
            client: self.client.clone(),
            tls: self.tls.clone(),
            placement: Placement {
                location: config.location.clone(),
                subnet_id: config.subnet_id.clone(),
                public_ip: config.public_ip,
                limits: config.limits,
            },
            config,
            warnings: Mutex::default(),
            details: Mutex::default(),
            listed: Mutex::default(),
            work_dirs: Mutex::default(),
        })
    }

    pub fn client(&self) -> &Arc<ArmClient> {
        &self.client
    }

    /// The group name of a pod.
    pub fn group_name(pod: &PodRef) -> String {
        pod::group_name(&pod.namespace, &pod.name, &pod.uid)
    }

    fn status_of(&self, pod: PodRef, group: &ContainerGroup) -> InstanceStatus {
        let mut status = instance_status(pod, group);
        if let Some((at, list)) = lock(&self.warnings).get(&status.pod.uid) {
            status.events.extend(list.iter().map(|w| InstanceEvent {
                container: w.container.clone(),
                warning: true,
                reason: w.reason.clone(),
                message: w.message.clone(),
                count: 1,
                first_seen: *at,
                last_seen: *at,
            }));
        }
        status
    }

    /// The group body for a pod, with the files tag.
    fn body(
        &self,
        pod: &ResolvedPod,
        warnings: &mut Vec<Warning>,
    ) -> Result<ContainerGroup, ProviderError> {
        let mut group =
            pod::container_group(pod, &self.config.node_name, &self.placement, warnings)?;
        let files = serde_json::to_vec(&group.properties.volumes).unwrap_or_default();
        let hash = files.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        group.tags.insert(FILES_TAG.into(), format!("{hash:016x}"));
        Ok(group)
    }

    async fn put(
        &self,
        name: &str,
        group: &ContainerGroup,
        kind: Kind,
    ) -> Result<(), ProviderError> {
        let url = self.client.url(&self.client.group_path(name), &[]);
        let (answer, _) = self
            .client
            .json::<ContainerGroup>(Method::PUT, &url, Some(group), kind)
            .await?;
        tracing::info!(group = %name, state = ?answer.properties.provisioning_state, "ACI container group put");
        Ok(())
    }
}

#[async_trait]
impl Provider for AciProvider {
    fn name(&self) -> &str {
        "aci"
    }

    async fn create(&self, pod: &ResolvedPod) -> Result<(), ProviderError> {
        let name = Self::group_name(&pod.pod);
        if lock(&self.listed).contains_key(&name) {
            return Ok(());
        }
        let mut warnings = Vec::new();
        let group = self.body(pod, &mut warnings)?;
        if !warnings.is_empty() {
            lock(&self.warnings).insert(pod.pod.uid.clone(), (jiff::Timestamp::now(), warnings));
        }
        // An earlier create whose answer was lost, or a restart: adopt the group, never
        // replace it (a PUT of a running group with new tokens would restart its containers).
        if let Some(existing) = self.get_group(&name).await?
            && existing.tags.get(tags::POD_UID) == Some(&pod.pod.uid)
        {
            tracing::info!(pod = %pod.pod, group = %name, "adopted the existing ACI container group");
            return Ok(());
        }
        self.put(&name, &group, Kind::GroupWrite).await
    }

    /// With `refresh_volumes`, re-PUT a group whose file volumes changed (ACI restarts its
    /// containers then); without it, a running group keeps the files it started with.
    async fn update(&self, pod: &ResolvedPod) -> Result<(), ProviderError> {
        if !self.config.refresh_volumes {
            return Ok(());
        }
        let name = Self::group_name(&pod.pod);
        let group = self.body(pod, &mut Vec::new())?;
        let known = lock(&self.listed).get(&name).cloned();
        match known {
            None => Ok(()),
            Some(tag) if tag.as_ref() == group.tags.get(FILES_TAG) => Ok(()),
            Some(_) => self.put(&name, &group, Kind::Write).await,
        }
    }

    async fn delete(&self, pod: &PodRef, grace: Duration) -> Result<(), ProviderError> {
        let name = Self::group_name(pod);
        let url = self.client.url(&self.client.group_path(&name), &[]);
        match self
            .client
            .call(Method::DELETE, &url, None, Kind::GroupWrite)
            .await
        {
            Ok(_) => tracing::info!(%pod, group = %name, ?grace, "ACI container group deleted"),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        lock(&self.warnings).remove(&pod.uid);
        lock(&self.details).remove(&name);
        lock(&self.listed).remove(&name);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<InstanceStatus>, ProviderError> {
        let mut groups: Vec<ContainerGroup> = self
            .all_groups()
            .await?
            .into_iter()
            .filter(|g| {
                g.tags.get(tags::NODE) == Some(&self.config.node_name) && Self::pod_of(g).is_some()
            })
            .collect();
        let names: HashSet<String> = groups.iter().filter_map(|g| g.name.clone()).collect();
        lock(&self.details).retain(|name, _| names.contains(name));
        *lock(&self.listed) = groups
            .iter()
            .filter_map(|g| Some((g.name.clone()?, g.tags.get(FILES_TAG).cloned())))
            .collect();
        self.note_work_dirs(&groups);
        self.fill_views(&mut groups).await;
        Ok(groups
            .iter()
            .filter_map(|g| Some(self.status_of(Self::pod_of(g)?, g)))
            .collect())
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
        if opts.previous {
            return Err(ProviderError::Unsupported(
                "ACI keeps no log of a container's previous instance".into(),
            ));
        }
        let name = Self::group_name(pod);
        if opts.follow {
            return Ok(logs::follow(
                self.client.clone(),
                name,
                container.to_string(),
                opts.clone(),
                Duration::from_millis(self.config.log_poll_interval_ms.max(50)),
                self.config.follow_tail,
            ));
        }
        let content = logs::read(&self.client, &name, container, opts.tail_lines).await?;
        let mut text = logs::shape(&content, opts);
        opts.cut_to_limit(&mut text);
        let content = Bytes::from(text);
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

    fn node_conditions(&self) -> Vec<ProviderCondition> {
        vec![self.client.tokens().condition(&Wording {
            what: "the Azure credentials",
            current: "the current token stays",
            none_left: "no valid token is left",
        })]
    }

    /// One authenticated read (the resource group's groups, first page); a throttled answer
    /// comes from a reachable ARM that took the token, so it counts as up.
    async fn ping(&self) -> Result<(), ProviderError> {
        let path = paths::groups_in_resource_group(
            &self.client.subscription_id,
            &self.client.resource_group,
        );
        let url = self.client.url(&path, &[]);
        match self.client.call(Method::GET, &url, None, Kind::Read).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_throttled() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// ACI's container API has no usage figures (they are in Azure Monitor): none reported.
    async fn stats(&self) -> Result<Vec<PodStats>, ProviderError> {
        Ok(Vec::new())
    }

    /// See [`vk_core::provider::terminal_exec`]: `/bin/sh` is exec'd and runs `command`, whose exit code
    /// comes back.
    async fn exec(
        &self,
        pod: &PodRef,
        container: &str,
        command: Vec<String>,
        mut io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        if command.is_empty() {
            return Err(ProviderError::invalid(
                "EmptyCommand",
                "you must specify at least one command for the container",
            ));
        }
        let size = if io.tty {
            first_size(&mut io).await
        } else {
            None
        };
        let ws = self.socket(pod, container, false, size).await?;
        let ready = Duration::from_millis(self.config.exec_ready_timeout_ms.max(1));
        let dir = self.work_dir(&Self::group_name(pod), container);
        Ok(exec::run(ws, &command, dir.as_deref(), io, ready).await)
    }

    /// ACI's attach streams the container's output; the client's stdin, which ACI's attach
    /// does not carry, goes through an exec into the pipe vk put on the container's stdin
    /// ([`vk_core::provider::stdin_pipe`]). With stdin only (GitLab Runner) there is no
    /// output to stream and the attach ends with the stdin.
    async fn attach(
        &self,
        pod: &PodRef,
        container: &str,
        io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        let ExecIo {
            stdin,
            stdout,
            stderr,
            tty,
            resize,
        } = io;
        let output = if stdout.is_none() && stderr.is_none() {
            None
        } else {
            let ws = self.socket(pod, container, true, None).await?;
            let io = ExecIo {
                stdin: None,
                stdout,
                stderr,
                tty,
                resize,
            };
            Some(exec::attach(ws, io))
        };
        vk_core::provider::stdin_pipe::with_stdin(self, pod, container, stdin, output).await
    }
}
