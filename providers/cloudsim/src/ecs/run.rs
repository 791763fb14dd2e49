//! RunTask: the request checked as ECS checks it for Fargate (cluster, launch type, the
//! task definition's revision and state, `awsvpc` subnets, overrides naming real containers,
//! count, token and tag limits, the launch rates), then one engine group per task. A
//! `clientToken` makes the call idempotent: the same token with the same parameters answers
//! the tasks it started, with other parameters it is refused. A container logging to a log
//! group that does not exist (and may not be created) fails the task's start, as the awslogs
//! driver does. Containers that others depend on with condition SUCCESS or COMPLETE run
//! first, as the engine's init containers ([`run_first`]).

use std::sync::Arc;
use std::time::Duration;

use fargate::wire::ecs_task::{
    ContainerOverride, Failure, MAX_RUN_COUNT, RunTaskRequest, TasksResponse, stop_code,
};
use fargate::wire::ecs_taskdef::{
    AWSLOGS_CREATE_GROUP, AWSLOGS_GROUP, AWSLOGS_STREAM_PREFIX, ContainerDefinition,
    dependency_condition,
};
use fargate::wire::error::codes;

use super::error::ApiError;
use super::face::{Face, TaskRecord};
use super::taskdefs::{self, ACTIVE, FARGATE};
use crate::engine::NewGroup;
use crate::engine::executor::ExecutorKind;
use crate::engine::executor::simulate::ENV_RUN_MS;
use crate::engine::spec::{ContainerSpec, EnvVar, Main, Mount, Names, Security, VolumeSpec};

fn hex_id(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// The cluster's ARN, or ECS's error for one that does not exist.
pub fn cluster_arn(face: &Face, cluster: Option<&str>) -> Result<String, ApiError> {
    let config = face.config();
    let name = config.cluster_name(cluster);
    if !config.clusters.iter().any(|c| c == name) {
        return Err(ApiError::new(
            codes::CLUSTER_NOT_FOUND,
            "Cluster not found.",
        ));
    }
    Ok(config.arn("ecs", &format!("cluster/{name}")))
}

fn container(def: &ContainerDefinition, ov: Option<&ContainerOverride>) -> ContainerSpec {
    let mut env: Vec<EnvVar> = def
        .environment
        .iter()
        .chain(ov.map(|o| o.environment.as_slice()).unwrap_or_default())
        .map(|kv| EnvVar {
            name: kv.name.clone().unwrap_or_default(),
            value: kv.value.clone().unwrap_or_default(),
        })
        .collect();
    env.retain(|e| !e.name.is_empty());
    let (uid, gid) = match def
        .user
        .as_deref()
        .map(|u| u.split_once(':').unwrap_or((u, "")))
    {
        Some((u, g)) => (u.parse().ok(), g.parse().ok()),
        None => (None, None),
    };
    ContainerSpec {
        name: def.name.clone().unwrap_or_default(),
        main: Main::Command,
        image: def.image.clone().unwrap_or_default(),
        command: def.entry_point.clone(),
        args: ov
            .and_then(|o| o.command.clone())
            .unwrap_or_else(|| def.command.clone()),
        working_dir: def.working_directory.clone(),
        env,
        mounts: def
            .mount_points
            .iter()
            .map(|m| Mount {
                volume: m.source_volume.clone().unwrap_or_default(),
                mount_path: m.container_path.clone().unwrap_or_default(),
                sub_path: None,
                read_only: m.read_only.unwrap_or(false),
            })
            .collect(),
        stdin: def.interactive.unwrap_or(false),
        tty: def.pseudo_terminal.unwrap_or(false),
        cpu: def.cpu.filter(|c| *c > 0).map(|c| f64::from(c) / 1024.0),
        memory_gib: def.memory.filter(|m| *m > 0).map(|m| f64::from(m) / 1024.0),
        security: Security {
            run_as_user: uid,
            run_as_group: gid,
            read_only_root: def.readonly_root_filesystem.unwrap_or(false),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The containers that run to their end before the others start: non-essential ones that
/// another container depends on with condition SUCCESS or COMPLETE (the engine's init
/// containers; both conditions are taken as SUCCESS: the task fails when one exits non-zero).
pub fn run_first(defs: &[ContainerDefinition]) -> Vec<String> {
    defs.iter()
        .filter(|c| !c.is_essential())
        .filter_map(|c| c.name.clone())
        .filter(|name| {
            defs.iter().any(|other| {
                other.depends_on.iter().any(|d| {
                    &d.container_name == name
                        && [
                            dependency_condition::SUCCESS,
                            dependency_condition::COMPLETE,
                        ]
                        .contains(&d.condition.as_str())
                })
            })
        })
        .collect()
}

fn check(req: &RunTaskRequest) -> Result<(), ApiError> {
    let count = req.count.unwrap_or(1);
    if !(1..=MAX_RUN_COUNT).contains(&count) {
        return Err(ApiError::invalid(format!(
            "count: {count} is not from 1 to {MAX_RUN_COUNT}."
        )));
    }
    if req
        .client_token
        .as_deref()
        .is_some_and(|t| t.is_empty() || t.len() > 64)
    {
        return Err(ApiError::invalid("clientToken: 1 to 64 characters."));
    }
    if req.started_by.as_deref().is_some_and(|s| s.len() > 128) {
        return Err(ApiError::invalid("startedBy: at most 128 characters."));
    }
    taskdefs::check_tags(&req.tags)?;
    let vpc = req
        .network_configuration
        .as_ref()
        .and_then(|n| n.awsvpc_configuration.as_ref())
        .ok_or_else(|| {
            ApiError::invalid(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            )
        })?;
    if vpc.subnets.is_empty() || vpc.subnets.len() > 16 {
        return Err(ApiError::invalid(
            "networkConfiguration.awsvpcConfiguration.subnets: 1 to 16 subnets.",
        ));
    }
    if vpc.security_groups.len() > 5 {
        return Err(ApiError::invalid(
            "networkConfiguration.awsvpcConfiguration.securityGroups: at most 5.",
        ));
    }
    Ok(())
}

pub fn run_task(face: &Face, req: RunTaskRequest) -> Result<TasksResponse, ApiError> {
    let config = face.config();
    let cluster_arn = cluster_arn(face, req.cluster.as_deref())?;
    match req.launch_type.as_deref() {
        Some(FARGATE) => {}
        Some("EC2" | "EXTERNAL") | None => {
            return Ok(TasksResponse {
                tasks: Vec::new(),
                failures: vec![Failure {
                    arn: None,
                    reason: Some("No Container Instances were found in your cluster.".into()),
                    detail: None,
                }],
            });
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "launchType: {other:?} is not EC2, FARGATE or EXTERNAL."
            )));
        }
    }
    let def = face
        .taskdefs()
        .find(&req.task_definition, true, config)
        .map(|r| r.def.clone())
        .ok_or_else(|| ApiError::client("TaskDefinition not found."))?;
    if def.status != ACTIVE {
        return Err(ApiError::client("TaskDefinition is inactive"));
    }
    check(&req)?;
    let overrides = req.overrides.clone().unwrap_or_default();
    for o in &overrides.container_overrides {
        let name = o.name.as_deref().unwrap_or_default();
        if !def
            .container_definitions
            .iter()
            .any(|c| c.name.as_deref() == Some(name))
        {
            return Err(ApiError::invalid(format!(
                "Override for container named {name} is not a container in the TaskDefinition."
            )));
        }
    }
    let (cpu, memory) = taskdefs::fargate_size(
        overrides.cpu.as_deref().or(def.cpu.as_deref()),
        overrides.memory.as_deref().or(def.memory.as_deref()),
    )
    .map_err(|e| ApiError::invalid(format!("overrides: {}", e.message)))?;

    let count = req.count.unwrap_or(1) as usize;
    if !face.rates.run_task.admit() || !(0..count).all(|_| face.rates.task_launch.admit()) {
        return Err(ApiError::throttled());
    }
    // The log groups the awslogs driver writes to: created when the definition allows,
    // otherwise missing ones fail the start.
    let mut missing_group = None;
    for c in &def.container_definitions {
        let Some(log) = &c.log_configuration else {
            continue;
        };
        let Some(group) = log.options.get(AWSLOGS_GROUP) else {
            continue;
        };
        let create = log
            .options
            .get(AWSLOGS_CREATE_GROUP)
            .is_some_and(|v| v == "true");
        let mut logs = face.logs();
        if !logs.has_group(group) {
            if create {
                logs.ensure_group(group, face.engine().now());
            } else {
                missing_group = Some(group.clone());
            }
        }
    }
    let fingerprint = {
        let mut bare = req.clone();
        bare.client_token = None;
        serde_json::to_string(&bare).unwrap_or_default()
    };
    let subnet = req
        .network_configuration
        .as_ref()
        .and_then(|n| n.awsvpc_configuration.as_ref())
        .and_then(|v| v.subnets.first().cloned())
        .unwrap_or_default();
    let essential: Vec<String> = def
        .container_definitions
        .iter()
        .filter(|c| c.is_essential())
        .filter_map(|c| c.name.clone())
        .collect();
    let grace = def
        .container_definitions
        .iter()
        .filter_map(|c| c.stop_timeout)
        .max()
        .unwrap_or(30);
    let cluster_name = config.cluster_name(req.cluster.as_deref()).to_string();
    let mut ids = Vec::new();
    for i in 0..count {
        let id = hex_id(16);
        let record = TaskRecord {
            arn: config.arn("ecs", &format!("task/{cluster_name}/{id}")),
            cluster_arn: cluster_arn.clone(),
            def: def.clone(),
            overrides: req.overrides.clone(),
            started_by: req.started_by.clone(),
            group: Some(
                req.group
                    .clone()
                    .unwrap_or_else(|| format!("family:{}", def.family)),
            ),
            enable_execute_command: req.enable_execute_command.unwrap_or(false),
            essential: essential.clone(),
            container_ids: def
                .container_definitions
                .iter()
                .map(|_| uuid::Uuid::new_v4().to_string())
                .collect(),
            attachment_id: uuid::Uuid::new_v4().to_string(),
            eni_id: format!("eni-{}", hex_id(8)),
            mac: format!(
                "0e:{}:{}:{}:{}:{}",
                hex_id(1),
                hex_id(1),
                hex_id(1),
                hex_id(1),
                hex_id(1)
            ),
            subnet: subnet.clone(),
            cpu,
            memory,
        };
        let firsts = run_first(&def.container_definitions);
        let simulated = matches!(config.executor, ExecutorKind::Simulate);
        let (mut init_containers, mut containers) = (Vec::new(), Vec::new());
        for c in &def.container_definitions {
            let ov = overrides
                .container_overrides
                .iter()
                .find(|o| o.name.is_some() && o.name == c.name);
            let mut spec = container(c, ov);
            if firsts.contains(&spec.name) {
                // A simulated step ends at once unless its environment says otherwise.
                if simulated && !spec.env.iter().any(|e| e.name == ENV_RUN_MS) {
                    spec.env.push(EnvVar {
                        name: ENV_RUN_MS.into(),
                        value: "0".into(),
                    });
                }
                init_containers.push(spec);
            } else {
                containers.push(spec);
            }
        }
        let new = NewGroup {
            id: id.clone(),
            name: id.clone(),
            cpu: f64::from(cpu) / 1024.0,
            memory_gib: f64::from(memory) / 1024.0,
            containers,
            init_containers,
            volumes: def
                .volumes
                .iter()
                .filter_map(|v| v.name.clone())
                .map(|name| VolumeSpec::EmptyDir { name })
                .collect(),
            names: Names::default(),
            share_process_namespace: false,
            restart_policy: crate::engine::RestartPolicy::Never,
            active_deadline: None,
            termination_grace: Some(Duration::from_secs(grace.clamp(0, 120) as u64)),
            start_latency: None,
            image_cache: Default::default(),
            private_ip: None,
            idempotency: req
                .client_token
                .as_ref()
                .map(|t| (format!("{t}#{i}"), fingerprint.clone())),
            face: Arc::new(record),
        };
        let got = face.engine().create(new)?;
        if got == id {
            started(
                face,
                &id,
                &def.container_definitions,
                &req,
                missing_group.as_deref(),
            );
        }
        ids.push(got);
    }
    // A token may answer a task already forgotten (a token lifetime longer than the
    // retention of stopped tasks): that one is a failure.
    let mut answer = TasksResponse::default();
    for id in ids {
        match super::render::task(face, &id, false) {
            Some(task) => answer.tasks.push(task),
            None => answer.failures.push(Failure {
                arn: Some(config.arn("ecs", &format!("task/{cluster_name}/{id}"))),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(answer)
}

/// A new task's tags and log streams, or its failed start.
fn started(
    face: &Face,
    id: &str,
    defs: &[ContainerDefinition],
    req: &RunTaskRequest,
    missing_group: Option<&str>,
) {
    face.with_meta(id, |m| m.tags = req.tags.clone());
    if let Some(group) = missing_group {
        face.set_stop(
            id,
            stop_code::TASK_FAILED_TO_START,
            &format!(
                "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist. (log group {group})"
            ),
        );
        let _ = face.engine().stop(id);
        return;
    }
    let now = face.engine().now();
    for c in defs {
        let (Some(log), Some(name)) = (&c.log_configuration, &c.name) else {
            continue;
        };
        let (Some(group), Some(prefix)) = (
            log.options.get(AWSLOGS_GROUP),
            log.options.get(AWSLOGS_STREAM_PREFIX),
        ) else {
            continue;
        };
        let Ok(Some(store)) = face.engine().log(id, name, false) else {
            continue;
        };
        let stream = format!("{prefix}/{name}/{id}");
        face.logs().attach((id, name), (group, &stream), store, now);
    }
}
