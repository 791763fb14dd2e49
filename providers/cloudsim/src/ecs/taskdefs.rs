//! Task definitions: families of numbered revisions, each `ACTIVE` until deregistered
//! (`INACTIVE`, still described, no longer run). Registration checks what ECS checks for
//! Fargate: `awsvpc`, a size from Fargate's table, containers with names and images,
//! awslogs options (a stream prefix, an execution role).

use std::collections::BTreeMap;
use std::sync::Arc;

use fargate::wire::Tag;
use fargate::wire::ecs_taskdef::{
    AWSLOGS, AWSLOGS_GROUP, AWSLOGS_REGION, AWSLOGS_STREAM_PREFIX, ListTaskDefinitionsRequest,
    ListTaskDefinitionsResponse, MAX_EPHEMERAL_GIB, RegisterTaskDefinitionRequest, TaskDefinition,
    dependency_condition,
};

use super::config::EcsConfig;
use super::error::ApiError;
use super::paging;
use super::sizes;

pub const ACTIVE: &str = "ACTIVE";
pub const INACTIVE: &str = "INACTIVE";
pub const FARGATE: &str = "FARGATE";

/// A registered revision and its tags.
pub struct Registered {
    pub def: Arc<TaskDefinition>,
    pub tags: Vec<Tag>,
}

#[derive(Default)]
pub struct TaskDefs {
    /// Family -> revisions (revision n at n - 1).
    families: BTreeMap<String, Vec<Registered>>,
}

fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Tags: at most 50, keys 1–128 characters, values at most 256.
pub fn check_tags(tags: &[Tag]) -> Result<(), ApiError> {
    if tags.len() > 50 {
        return Err(ApiError::invalid("tags: at most 50 tags per resource."));
    }
    for t in tags {
        if t.key.is_empty() || t.key.len() > 128 {
            return Err(ApiError::invalid(format!(
                "tags.key: {:?} must be 1 to 128 characters.",
                t.key
            )));
        }
        if t.value.as_deref().is_some_and(|v| v.len() > 256) {
            return Err(ApiError::invalid(format!(
                "tags.value of {:?}: at most 256 characters.",
                t.key
            )));
        }
    }
    Ok(())
}

/// The task size in CPU units and MiB, checked against Fargate's table.
pub fn fargate_size(cpu: Option<&str>, memory: Option<&str>) -> Result<(u32, u32), ApiError> {
    let cpu_text = cpu.ok_or_else(|| {
        ApiError::client("Fargate requires that 'cpu' be defined at the task level.")
    })?;
    let memory_text = memory.ok_or_else(|| {
        ApiError::client("Fargate requires that 'memory' be defined at the task level.")
    })?;
    let cpu = sizes::parse_cpu(cpu_text)
        .ok_or_else(|| ApiError::client("Invalid 'cpu' setting for task."))?;
    let memory = sizes::parse_memory(memory_text)
        .ok_or_else(|| ApiError::client("Invalid 'memory' setting for task."))?;
    if sizes::memory_choices(cpu).is_empty() {
        return Err(ApiError::client("Invalid 'cpu' setting for task."));
    }
    if !sizes::is_valid(cpu, memory) {
        return Err(ApiError::client(format!(
            "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See the Amazon ECS documentation for the valid values."
        )));
    }
    Ok((cpu, memory))
}

fn check(req: &RegisterTaskDefinitionRequest, config: &EcsConfig) -> Result<(u32, u32), ApiError> {
    if !valid_name(&req.family, 255) {
        return Err(ApiError::client(format!(
            "family: {:?} must be 1 to 255 letters, digits, hyphens and underscores.",
            req.family
        )));
    }
    if req.container_definitions.is_empty() {
        return Err(ApiError::client("Container list cannot be empty."));
    }
    if !req.requires_compatibilities.iter().any(|c| c == FARGATE) {
        return Err(ApiError::client(
            "requiresCompatibilities: this cloud runs Fargate tasks only; include FARGATE.",
        ));
    }
    if req.network_mode.as_deref() != Some("awsvpc") {
        return Err(ApiError::client(
            "Fargate only supports network mode 'awsvpc'.",
        ));
    }
    let (cpu, memory) = fargate_size(req.cpu.as_deref(), req.memory.as_deref())?;
    check_tags(&req.tags)?;
    if let Some(e) = req.ephemeral_storage
        && !(21..=MAX_EPHEMERAL_GIB).contains(&e.size_in_gib)
    {
        return Err(ApiError::client(format!(
            "ephemeralStorage.sizeInGiB: {} is not from 21 to {MAX_EPHEMERAL_GIB}.",
            e.size_in_gib
        )));
    }
    check_dependencies(req)?;
    let mut names = std::collections::HashSet::new();
    for (i, c) in req.container_definitions.iter().enumerate() {
        let name = c.name.as_deref().unwrap_or_default();
        if !valid_name(name, 255) {
            return Err(ApiError::client(format!(
                "containerDefinitions[{i}].name should be 1 to 255 letters, digits, hyphens and underscores."
            )));
        }
        if !names.insert(name) {
            return Err(ApiError::client(format!(
                "Duplicate container name {name:?} in containerDefinitions."
            )));
        }
        if c.image.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::client(format!(
                "Container.image should not be null or empty (container {name:?})."
            )));
        }
        if c.memory.is_some_and(|m| m <= 0 || m as u32 > memory) {
            return Err(ApiError::client(format!(
                "Invalid 'memory' setting for container '{name}'."
            )));
        }
        if c.cpu.is_some_and(|u| u < 0 || u as u32 > cpu) {
            return Err(ApiError::client(format!(
                "Invalid 'cpu' setting for container '{name}'."
            )));
        }
        if c.stop_timeout.is_some_and(|t| !(0..=120).contains(&t)) {
            return Err(ApiError::client(format!(
                "containerDefinitions[{i}].stopTimeout: at most 120 seconds on Fargate."
            )));
        }
        if let Some(log) = &c.log_configuration {
            if log.log_driver != AWSLOGS {
                return Err(ApiError::client(format!(
                    "Log driver {} is not supported by this cloud (awslogs is).",
                    log.log_driver
                )));
            }
            for option in [AWSLOGS_GROUP, AWSLOGS_REGION, AWSLOGS_STREAM_PREFIX] {
                if log.options.get(option).is_none_or(|v| v.is_empty()) {
                    return Err(ApiError::client(format!(
                        "Log driver awslogs option '{option}' should not be null or empty."
                    )));
                }
            }
            if log.options.get(AWSLOGS_REGION) != Some(&config.region) {
                return Err(ApiError::client(format!(
                    "Log driver awslogs option 'awslogs-region': this cloud serves {}.",
                    config.region
                )));
            }
            if req.execution_role_arn.is_none() {
                return Err(ApiError::client(
                    "Fargate requires task definition to have execution role ARN to support log driver awslogs.",
                ));
            }
        }
    }
    Ok((cpu, memory))
}

/// `dependsOn`: known containers other than itself, known conditions; COMPLETE and SUCCESS
/// only on non-essential containers (ECS's rule: an essential one ending stops the task).
fn check_dependencies(req: &RegisterTaskDefinitionRequest) -> Result<(), ApiError> {
    let defs = &req.container_definitions;
    for c in defs {
        let name = c.name.as_deref().unwrap_or_default();
        for d in &c.depends_on {
            let Some(target) = defs
                .iter()
                .find(|t| t.name.as_deref() == Some(d.container_name.as_str()))
            else {
                return Err(ApiError::client(format!(
                    "Container {name:?} depends on {:?}, which is not in containerDefinitions.",
                    d.container_name
                )));
            };
            if d.container_name == name {
                return Err(ApiError::client(format!(
                    "Container {name:?} cannot depend on itself."
                )));
            }
            if !dependency_condition::ALL.contains(&d.condition.as_str()) {
                return Err(ApiError::client(format!(
                    "dependsOn.condition: {:?} is not START, COMPLETE, SUCCESS or HEALTHY.",
                    d.condition
                )));
            }
            let ends = [
                dependency_condition::COMPLETE,
                dependency_condition::SUCCESS,
            ];
            if ends.contains(&d.condition.as_str()) && target.is_essential() {
                return Err(ApiError::client(format!(
                    "Container {:?} is essential; a {} dependency needs a non-essential container.",
                    d.container_name, d.condition
                )));
            }
        }
    }
    Ok(())
}

impl TaskDefs {
    pub fn register(
        &mut self,
        req: RegisterTaskDefinitionRequest,
        config: &EcsConfig,
        now: f64,
    ) -> Result<&Registered, ApiError> {
        let (cpu, memory) = check(&req, config)?;
        let revisions = self.families.entry(req.family.clone()).or_default();
        let revision = revisions.len() as i32 + 1;
        let def = TaskDefinition {
            task_definition_arn: config
                .arn("ecs", &format!("task-definition/{}:{revision}", req.family)),
            family: req.family,
            revision,
            status: ACTIVE.into(),
            container_definitions: req.container_definitions,
            cpu: Some(cpu.to_string()),
            memory: Some(memory.to_string()),
            network_mode: req.network_mode,
            requires_compatibilities: req.requires_compatibilities,
            compatibilities: vec!["EC2".into(), FARGATE.into()],
            execution_role_arn: req.execution_role_arn,
            task_role_arn: req.task_role_arn,
            volumes: req.volumes,
            ephemeral_storage: req.ephemeral_storage,
            registered_at: Some(now),
            deregistered_at: None,
        };
        revisions.push(Registered {
            def: Arc::new(def),
            tags: req.tags,
        });
        Ok(revisions.last().expect("just pushed"))
    }

    /// `family:revision`, its ARN, or (`latest_ok`) a bare family: its latest ACTIVE revision.
    pub fn find(
        &self,
        reference: &str,
        latest_ok: bool,
        config: &EcsConfig,
    ) -> Option<&Registered> {
        let name = match reference.split_once(":task-definition/") {
            Some((prefix, name)) => {
                (prefix == config.arn("ecs", "").trim_end_matches(':')).then_some(name)?
            }
            None => reference,
        };
        let revisions = |family: &str| self.families.get(family);
        match name.rsplit_once(':') {
            Some((family, rev)) => {
                let rev: usize = rev.parse().ok()?;
                revisions(family)?.get(rev.checked_sub(1)?)
            }
            None if latest_ok => revisions(name)?
                .iter()
                .rev()
                .find(|r| r.def.status == ACTIVE),
            None => None,
        }
    }

    fn find_mut(&mut self, arn: &str) -> Option<&mut Registered> {
        self.families
            .values_mut()
            .flatten()
            .find(|r| r.def.task_definition_arn == arn)
    }

    pub fn deregister(
        &mut self,
        reference: &str,
        config: &EcsConfig,
        now: f64,
    ) -> Result<Arc<TaskDefinition>, ApiError> {
        if !reference.contains(':') {
            return Err(ApiError::client(
                "taskDefinition: name the revision to deregister (family:revision or its ARN).",
            ));
        }
        let arn = self
            .find(reference, false, config)
            .ok_or_else(|| ApiError::client("The specified task definition does not exist."))?
            .def
            .task_definition_arn
            .clone();
        let r = self.find_mut(&arn).expect("found above");
        if r.def.status == ACTIVE {
            let mut def = (*r.def).clone();
            def.status = INACTIVE.into();
            def.deregistered_at = Some(now);
            r.def = Arc::new(def);
        }
        Ok(r.def.clone())
    }

    /// The tags of a revision, to change.
    pub fn tags_mut(&mut self, arn: &str) -> Option<&mut Vec<Tag>> {
        self.find_mut(arn).map(|r| &mut r.tags)
    }

    pub fn list(
        &self,
        req: &ListTaskDefinitionsRequest,
    ) -> Result<ListTaskDefinitionsResponse, ApiError> {
        let status = req.status.as_deref().unwrap_or(ACTIVE);
        if status != ACTIVE && status != INACTIVE && status != "DELETE_IN_PROGRESS" {
            return Err(ApiError::invalid(format!(
                "status: {status:?} is not ACTIVE, INACTIVE or DELETE_IN_PROGRESS."
            )));
        }
        let descending = match req.sort.as_deref() {
            None | Some("ASC") => false,
            Some("DESC") => true,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "sort: {other:?} is not ASC or DESC."
                )));
            }
        };
        let mut arns: Vec<String> = self
            .families
            .iter()
            .filter(|(family, _)| req.family_prefix.as_deref().is_none_or(|f| f == *family))
            .flat_map(|(_, revisions)| revisions)
            .filter(|r| r.def.status == status)
            .map(|r| r.def.task_definition_arn.clone())
            .collect();
        if descending {
            arns.reverse();
        }
        let (task_definition_arns, next_token) =
            paging::page(arns, req.next_token.as_deref(), req.max_results, 100)?;
        Ok(ListTaskDefinitionsResponse {
            task_definition_arns,
            next_token,
        })
    }
}
