//! The `Provider` over ECS.
//!
//! Status comes from ONE listing of the node's tasks per interval: ListTasks by `startedBy`
//! (running and stopped, all pages), then DescribeTasks with their tags in batches of 100
//! (a STOPPED task is described once: it never changes again); tasks tagged with another node
//! are left out. Nothing polls per pod.
//!
//! A pod's task is found by its tags (`vk-pod-uid`, ...), kept in an index the listing
//! refreshes. Creating a pod first makes sure the index was read once since start (so a
//! restarted vk adopts the tasks it started before instead of running them again); RunTask
//! carries `clientToken` = `vk-<pod uid>`, so a retried call answers the task of the first.
//! Orphans (tasks of this node whose pod is gone) are stopped by vk-core's sweep through
//! [`Provider::delete`]; a deleted pod's stopped task is left out of later listings.
//!
//! Task definitions ([`defs`]): one per pod shape, registered on first use and reused;
//! deregistered once no task of the node that is not STOPPED uses it and no create is about
//! to; on the first listing after start, the node's definitions that nothing uses any more are
//! deregistered too.

mod defs;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt as _;
use tokio::time::Instant;
use vk_core::provider::http::{Http, Tls};
use vk_core::provider::{
    ExecIo, ExecOutcome, InstanceStatus, LogOptions, LogStream, NodeCapacity, PodRef, PodStats,
    Provider, ProviderCondition, ProviderError, ResolvedPod, StatusSource,
};

use crate::client::{Api, AwsClient, FargateError, Pacing};
use crate::config::FargateConfig;
use crate::credentials::{self, Env};
use crate::logs;
use crate::mapping::{self, tags};
use crate::status::instance_status;
use crate::wire::Tag;
use crate::wire::ecs_task::{
    DescribeTasksRequest, ExecuteCommandRequest, ExecuteCommandResponse, ListTasksRequest,
    ListTasksResponse, MAX_DESCRIBE_TASKS, RunTaskRequest, Session, StopTaskRequest,
    StopTaskResponse, Task, TasksResponse,
};
use crate::wire::ecs_taskdef::{TaskDefinitionRequest, TaskDefinitionResponse};
use defs::Defs;
use vk_core::provider::credential_cache::Wording;

/// The tag naming a task's init containers (comma-separated), for its status.
const INIT_TAG: &str = "vk-init";
/// A task RunTask answered is kept this long while listings do not show it yet.
const FRESH: Duration = Duration::from_secs(120);

/// What the provider knows of a pod's task.
#[derive(Clone, Debug)]
struct Known {
    task: Task,
    pod: PodRef,
    init: Vec<String>,
    /// When RunTask answered it (None: from a listing).
    started: Option<Instant>,
}

pub struct FargateProvider {
    client: Arc<AwsClient>,
    tls: Tls,
    config: FargateConfig,
    started_by: String,
    /// Pod UID -> its task.
    tasks: Arc<Mutex<HashMap<String, Known>>>,
    /// Pods deleted, whose stopped tasks listings leave out.
    deleted: Mutex<HashMap<String, Instant>>,
    /// STOPPED tasks as last described, by ARN (they never change again).
    stopped: Mutex<HashMap<String, Task>>,
    defs: Defs,
    /// A listing ran since start.
    indexed: AtomicBool,
    index_lock: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn tag<'a>(task: &'a Task, key: &str) -> Option<&'a str> {
    task.tags
        .iter()
        .find(|t| t.key == key)
        .and_then(|t| t.value.as_deref())
}

/// RunTask's answer to a client token sent before with other parameters.
fn token_reused(e: &FargateError) -> bool {
    let m = e.message().to_ascii_lowercase();
    m.contains("token") && (m.contains("different") || m.contains("already"))
}

fn family_of(arn: &str) -> Option<&str> {
    let name = arn.rsplit_once(":task-definition/").map_or(arn, |(_, n)| n);
    Some(name.rsplit_once(':').map_or(name, |(f, _)| f))
}

impl FargateProvider {
    /// Check the configuration and build the client; no call is made until the first use.
    pub fn new(config: FargateConfig) -> Result<Self, ProviderError> {
        Self::with_env(config, &credentials::process_env)
    }

    /// [`Self::new`] with the credentials read from `env` instead of the process's.
    pub fn with_env(config: FargateConfig, env: Env<'_>) -> Result<Self, ProviderError> {
        let invalid = |m: String| ProviderError::invalid("FargateConfig", m);
        config.check().map_err(invalid)?;
        let tls = Tls::new(config.extra_ca_file.as_deref()).map_err(invalid)?;
        let http = Http::new(
            &tls,
            Duration::from_millis(config.request_timeout_ms.max(1)),
        );
        let keys = credentials::resolve(&config.credentials, &config.region, env, &http)
            .map_err(|e| invalid(e.to_string()))?;
        let client = AwsClient::new(
            http,
            &config.ecs_url(),
            &config.logs_url(),
            &config.region,
            keys,
            Pacing {
                retry: config.retry,
                run_task: config.run_task_rate,
                task_launch: config.task_launch_rate,
                ecs: config.ecs_rate,
                logs: config.logs_rate,
            },
        );
        Ok(Self {
            client: Arc::new(client),
            tls,
            started_by: mapping::started_by(&config.node_name),
            defs: Defs::new(mapping::family_prefix(&config.node_name)),
            config,
            tasks: Arc::default(),
            deleted: Mutex::default(),
            stopped: Mutex::default(),
            indexed: AtomicBool::new(false),
            index_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Another node's provider over the same client: one set of keys and one set of rate
    /// buckets, as Fargate's rates are per account and region. `config` names the node; its
    /// endpoints, credentials and rates are the first provider's.
    pub fn sharing(&self, config: FargateConfig) -> Result<Self, ProviderError> {
        config
            .check()
            .map_err(|m| ProviderError::invalid("FargateConfig", m))?;
        Ok(Self {
            client: self.client.clone(),
            tls: self.tls.clone(),
            started_by: mapping::started_by(&config.node_name),
            defs: Defs::new(mapping::family_prefix(&config.node_name)),
            config,
            tasks: Arc::default(),
            deleted: Mutex::default(),
            stopped: Mutex::default(),
            indexed: AtomicBool::new(false),
            index_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn client(&self) -> &Arc<AwsClient> {
        &self.client
    }

    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    fn pod_of(&self, task: &Task) -> Option<PodRef> {
        if tag(task, tags::NODE) != Some(self.config.node_name.as_str()) {
            return None;
        }
        Some(PodRef {
            uid: tag(task, tags::POD_UID)?.to_string(),
            namespace: tag(task, tags::NAMESPACE)?.to_string(),
            name: tag(task, tags::POD_NAME)?.to_string(),
        })
    }

    /// Every task ARN of the node with `desired` status, all pages.
    async fn task_arns(&self, desired: &str) -> Result<Vec<String>, FargateError> {
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let page: ListTasksResponse = self
                .client
                .call(
                    Api::Ecs,
                    "ListTasks",
                    &ListTasksRequest {
                        cluster: Some(self.config.cluster.clone()),
                        started_by: Some(self.started_by.clone()),
                        desired_status: Some(desired.into()),
                        next_token: token,
                        max_results: Some(100),
                        ..Default::default()
                    },
                )
                .await?;
            arns.extend(page.task_arns);
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(arns),
            }
        }
    }

    /// DescribeTasks with tags, 100 at a time.
    async fn describe(&self, arns: &[String]) -> Result<Vec<Task>, FargateError> {
        let mut tasks = Vec::with_capacity(arns.len());
        for batch in arns.chunks(MAX_DESCRIBE_TASKS) {
            let answer: TasksResponse = self
                .client
                .call(
                    Api::Ecs,
                    "DescribeTasks",
                    &DescribeTasksRequest {
                        cluster: Some(self.config.cluster.clone()),
                        tasks: batch.to_vec(),
                        include: vec!["TAGS".into()],
                    },
                )
                .await?;
            tasks.extend(answer.tasks);
        }
        Ok(tasks)
    }

    /// One listing: the index refreshed, unused task definitions deregistered.
    async fn refresh(&self) -> Result<(), FargateError> {
        let mut arns = self.task_arns("RUNNING").await?;
        let mut seen: HashSet<String> = arns.iter().cloned().collect();
        for arn in self.task_arns("STOPPED").await? {
            if seen.insert(arn.clone()) {
                arns.push(arn);
            }
        }
        // A STOPPED task never changes again: described once, then kept until ECS forgets it.
        let (mut described, unknown): (Vec<Task>, Vec<String>) = {
            let mut stopped = lock(&self.stopped);
            let listed: HashSet<&String> = arns.iter().collect();
            stopped.retain(|arn, _| listed.contains(arn));
            let mut known = Vec::new();
            let mut unknown = Vec::new();
            for arn in &arns {
                match stopped.get(arn) {
                    Some(t) => known.push(t.clone()),
                    None => unknown.push(arn.clone()),
                }
            }
            (known, unknown)
        };
        let fresh_tasks = self.describe(&unknown).await?;
        {
            let mut stopped = lock(&self.stopped);
            for t in &fresh_tasks {
                if t.last_status.as_deref() == Some("STOPPED") {
                    stopped.insert(t.task_arn.clone(), t.clone());
                }
            }
        }
        described.extend(fresh_tasks);
        let deleted: HashSet<String> = {
            let mut d = lock(&self.deleted);
            d.retain(|_, at| at.elapsed() < Duration::from_secs(3 * 3600));
            d.keys().cloned().collect()
        };
        let mut fresh: HashMap<String, Known> = HashMap::new();
        for task in described {
            let Some(pod) = self.pod_of(&task) else {
                continue;
            };
            if deleted.contains(&pod.uid) {
                continue;
            }
            let live = |t: &Task| t.last_status.as_deref() != Some("STOPPED");
            if let Some(have) = fresh.get(&pod.uid) {
                // One task per pod is the rule; if ever two, the live and newer one counts.
                let better = (live(&task), task.created_at.unwrap_or(0.0))
                    > (live(&have.task), have.task.created_at.unwrap_or(0.0));
                if !better {
                    continue;
                }
            }
            let init = tag(&task, INIT_TAG)
                .map(|v| {
                    v.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            fresh.insert(
                pod.uid.clone(),
                Known {
                    task,
                    pod,
                    init,
                    started: None,
                },
            );
        }
        let in_use: HashSet<String> = {
            let mut tasks = lock(&self.tasks);
            for (uid, known) in tasks.iter() {
                if !fresh.contains_key(uid)
                    && !deleted.contains(uid)
                    && known.started.is_some_and(|s| s.elapsed() < FRESH)
                {
                    fresh.insert(uid.clone(), known.clone());
                }
            }
            *tasks = fresh;
            tasks
                .values()
                .filter(|k| k.task.last_status.as_deref() != Some("STOPPED"))
                .filter_map(|k| {
                    family_of(k.task.task_definition_arn.as_deref()?).map(str::to_string)
                })
                .collect()
        };
        let first = !self.indexed.swap(true, Ordering::SeqCst);
        self.defs.sweep(&self.client, &in_use, first).await;
        Ok(())
    }

    /// The index, read at least once since start.
    async fn ensure_indexed(&self) -> Result<(), ProviderError> {
        if self.indexed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let _one = self.index_lock.lock().await;
        if self.indexed.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.refresh().await.map_err(ProviderError::from)
    }

    /// The pod name of every task of the node that has not STOPPED, one entry per task
    /// (duplicates included): what tests and operators check "one task per pod" with.
    pub async fn live_tasks(&self) -> Result<Vec<String>, ProviderError> {
        let mut arns = self.task_arns("RUNNING").await?;
        arns.extend(self.task_arns("STOPPED").await?);
        arns.sort();
        arns.dedup();
        Ok(self
            .describe(&arns)
            .await?
            .iter()
            .filter(|t| t.last_status.as_deref() != Some("STOPPED"))
            .filter_map(|t| self.pod_of(t).map(|p| p.name))
            .collect())
    }

    fn known(&self, uid: &str) -> Option<Known> {
        lock(&self.tasks).get(uid).cloned()
    }

    async fn task_of(&self, pod: &PodRef) -> Result<Known, ProviderError> {
        self.ensure_indexed().await?;
        self.known(&pod.uid)
            .ok_or_else(|| ProviderError::NotFound(format!("no ECS task for pod {pod}")))
    }

    async fn run_task(&self, run: &RunTaskRequest) -> Result<TasksResponse, FargateError> {
        self.client.call(Api::Ecs, "RunTask", run).await
    }

    /// The container's working directory, from its task definition (None: the image's, or
    /// the definition could not be read).
    pub(crate) async fn work_dir(&self, pod: &PodRef, container: &str) -> Option<String> {
        let arn = self.known(&pod.uid)?.task.task_definition_arn?;
        let answer: Result<TaskDefinitionResponse, FargateError> = self
            .client
            .call(
                Api::Ecs,
                "DescribeTaskDefinition",
                &TaskDefinitionRequest {
                    task_definition: arn,
                    include: Vec::new(),
                },
            )
            .await;
        answer
            .ok()?
            .task_definition?
            .container_definitions
            .into_iter()
            .find(|c| c.name.as_deref() == Some(container))?
            .working_directory
    }

    /// The Session Manager session of an ExecuteCommand into `container` of the pod's task.
    pub async fn execute_command(
        &self,
        pod: &PodRef,
        container: &str,
    ) -> Result<Session, ProviderError> {
        let known = self.task_of(pod).await?;
        if !known.task.containers.iter().any(|c| c.name == container) {
            return Err(ProviderError::NotFound(format!(
                "container {container} of pod {pod}"
            )));
        }
        let answer: ExecuteCommandResponse = self
            .client
            .call(
                Api::Ecs,
                "ExecuteCommand",
                &ExecuteCommandRequest {
                    cluster: Some(self.config.cluster.clone()),
                    container: Some(container.to_string()),
                    command: "/bin/sh".into(),
                    interactive: true,
                    task: known.task.task_arn.clone(),
                },
            )
            .await
            .map_err(|e| match e.code() {
                Some("TargetNotConnectedException") | Some("InvalidParameterException") => {
                    ProviderError::invalid(
                        "ContainerNotRunning",
                        format!("container {container} of pod {pod}: {e}"),
                    )
                }
                _ => e.into(),
            })?;
        answer.session.ok_or_else(|| {
            ProviderError::Transient("ECS answered ExecuteCommand without a session".into())
        })
    }
}

/// Exec over a Session Manager session ([`crate::exec`]: the data channel and the shell
/// protocol that gives exit codes, stdin's end and stderr).
async fn exec_session(
    session: &Session,
    tls: &Tls,
    argv: &[String],
    dir: Option<&str>,
    io: ExecIo,
    ready_timeout: Duration,
) -> ExecOutcome {
    crate::exec::run(session, tls, argv, dir, io, ready_timeout).await
}

#[async_trait]
impl Provider for FargateProvider {
    fn name(&self) -> &str {
        "fargate"
    }

    async fn create(&self, pod: &ResolvedPod) -> Result<(), ProviderError> {
        let task = mapping::pod_task(pod, &self.config)?;
        self.ensure_indexed().await?;
        if let Some(known) = self.known(&pod.pod.uid) {
            tracing::debug!(pod = %pod.pod, task = %known.task.task_arn, "the pod's ECS task exists; adopted");
            return Ok(());
        }
        let mut run = task.run.clone();
        let init: Vec<String> = pod.init_containers.iter().map(|c| c.name.clone()).collect();
        if !init.is_empty() {
            let value: String = init.join(",").chars().take(256).collect();
            run.tags.push(Tag {
                key: INIT_TAG.into(),
                value: Some(value),
            });
        }
        let _user = self.defs.start_use(&task.family);
        let mut attempts = 0;
        let answer = loop {
            attempts += 1;
            run.task_definition = self.defs.arn(&self.client, &task).await?;
            match self.run_task(&run).await {
                Ok(a) => break a,
                Err(e)
                    if attempts == 1
                        && (e.message().contains("inactive")
                            || e.message().contains("TaskDefinition not found")) =>
                {
                    self.defs.forget(&task.family);
                }
                Err(e) if token_reused(&e) => {
                    // A token used before with other parameters (a restart re-resolved the
                    // pod): the task exists; find it.
                    self.refresh().await?;
                    if self.known(&pod.pod.uid).is_some() {
                        return Ok(());
                    }
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            }
        };
        let Some(started) = answer.tasks.into_iter().next() else {
            let why: Vec<String> = answer
                .failures
                .iter()
                .map(|f| f.reason.clone().unwrap_or_default())
                .collect();
            return Err(ProviderError::Transient(format!(
                "ECS started no task: {}",
                why.join("; ")
            )));
        };
        tracing::info!(pod = %pod.pod, task = %started.task_arn, family = %task.family, cpu = task.size.cpu, memory = task.size.memory_mib, "ECS task started");
        lock(&self.tasks).insert(
            pod.pod.uid.clone(),
            Known {
                task: started,
                pod: pod.pod.clone(),
                init,
                started: Some(Instant::now()),
            },
        );
        Ok(())
    }

    /// A running task cannot be changed: its containers keep the files and environment they
    /// started with.
    async fn update(&self, _pod: &ResolvedPod) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn delete(&self, pod: &PodRef, grace: Duration) -> Result<(), ProviderError> {
        self.ensure_indexed().await?;
        let known = self.known(&pod.uid);
        lock(&self.deleted).insert(pod.uid.clone(), Instant::now());
        let Some(known) = known else {
            return Ok(());
        };
        lock(&self.tasks).remove(&pod.uid);
        if known.task.last_status.as_deref() == Some("STOPPED") {
            return Ok(());
        }
        let stopped: Result<StopTaskResponse, FargateError> = self
            .client
            .call(
                Api::Ecs,
                "StopTask",
                &StopTaskRequest {
                    cluster: Some(self.config.cluster.clone()),
                    task: known.task.task_arn.clone(),
                    reason: Some(format!("pod {pod} deleted")),
                },
            )
            .await;
        match stopped {
            Ok(_) => {
                tracing::info!(%pod, task = %known.task.task_arn, ?grace, "ECS task stopped")
            }
            Err(e) if e.code() == Some("InvalidParameterException") => {}
            Err(e) => {
                lock(&self.deleted).remove(&pod.uid);
                lock(&self.tasks).insert(pod.uid.clone(), known);
                return Err(e.into());
            }
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<InstanceStatus>, ProviderError> {
        {
            let _one = self.index_lock.lock().await;
            self.refresh().await?;
        }
        Ok(lock(&self.tasks)
            .values()
            .map(|k| instance_status(k.pod.clone(), &k.task, &k.init))
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
                "an ECS task never restarts a container: there is no previous one".into(),
            ));
        }
        let known = self.task_of(pod).await?;
        if !known.task.containers.is_empty()
            && !known.task.containers.iter().any(|c| c.name == container)
        {
            return Err(ProviderError::NotFound(format!(
                "container {container} of pod {pod}"
            )));
        }
        let source = logs::Source::new(
            &self.config.log_group,
            &self.config.log_stream_prefix,
            container,
            &known.task.task_arn,
        );
        if opts.follow {
            let tasks = self.tasks.clone();
            let (uid, name) = (pod.uid.clone(), container.to_string());
            let finished: logs::Finished = Arc::new(move || {
                let tasks = lock(&tasks);
                let Some(k) = tasks.get(&uid) else {
                    return true;
                };
                k.task.last_status.as_deref() == Some("STOPPED")
                    || k.task
                        .containers
                        .iter()
                        .any(|c| c.name == name && c.last_status.as_deref() == Some("STOPPED"))
            });
            return Ok(logs::follow(
                self.client.clone(),
                source,
                opts.clone(),
                Duration::from_millis(self.config.log_poll_interval_ms.max(50)),
                finished,
            ));
        }
        let mut text = logs::read(&self.client, &source, opts).await?;
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
        vec![self.client.credentials().condition(&Wording {
            what: "the AWS credentials",
            current: "the current keys stay",
            none_left: "no valid keys are left",
        })]
    }

    /// One signed read (the first task of the cluster); a throttled answer comes from a
    /// reachable ECS that took the signature, so it counts as up.
    async fn ping(&self) -> Result<(), ProviderError> {
        let result: Result<ListTasksResponse, FargateError> = self
            .client
            .call(
                Api::Ecs,
                "ListTasks",
                &ListTasksRequest {
                    cluster: Some(self.config.cluster.clone()),
                    max_results: Some(1),
                    ..Default::default()
                },
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_throttled() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// ECS's task API has no usage figures (they are in CloudWatch Container Insights).
    async fn stats(&self) -> Result<Vec<PodStats>, ProviderError> {
        Ok(Vec::new())
    }

    /// ExecuteCommand (`/bin/sh`, interactive) into the container, then the command over the
    /// Session Manager session.
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
        let session = self.execute_command(pod, container).await?;
        let dir = self.work_dir(pod, container).await;
        let ready = Duration::from_millis(self.config.exec_ready_timeout_ms.max(1));
        Ok(exec_session(&session, &self.tls, &command, dir.as_deref(), io, ready).await)
    }

    /// ECS has no attach: the client's stdin goes through an exec into the pipe vk put on the
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_token_and_task_definition_families_are_recognised() {
        let api = |message: &str| FargateError::Api {
            op: "RunTask".into(),
            status: 400,
            code: "InvalidParameterException".into(),
            message: message.into(),
        };
        assert!(token_reused(&api(
            "The client token was used before with different parameters."
        )));
        assert!(!token_reused(&api("clientToken: 1 to 64 characters.")));
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:1:task-definition/vk-n-abc:3"),
            Some("vk-n-abc")
        );
        assert_eq!(family_of("vk-n-abc:3"), Some("vk-n-abc"));
    }
}
