//! The task actions besides RunTask: DescribeTasks (unknown tasks in `failures`, reason
//! `MISSING`), StopTask (the containers get SIGTERM, the kill after their stopTimeout; the
//! task stays described with stopCode UserInitiated), ListTasks (by cluster, family,
//! startedBy, desired status; paged), the tagging calls on tasks and task definitions, and
//! ExecuteCommand (its session is served by `super::ssm`).

use fargate::wire::Tag;
use fargate::wire::ecs_task::{
    DescribeTasksRequest, ExecuteCommandRequest, Failure, ListTagsForResourceRequest,
    ListTagsForResourceResponse, ListTasksRequest, ListTasksResponse, MAX_DESCRIBE_TASKS,
    StopTaskRequest, StopTaskResponse, TagResourceRequest, TasksResponse, UntagResourceRequest,
    stop_code,
};

use super::error::ApiError;
use super::face::Face;
use super::paging;
use super::render;
use super::run::cluster_arn;
use super::taskdefs;

/// A task id from its ARN or the id itself, when the task is in cluster `cluster_arn`.
fn task_id(face: &Face, reference: &str, cluster_arn: &str) -> Option<String> {
    let id = reference.rsplit('/').next().unwrap_or(reference);
    if reference.contains(":task/") {
        let cluster = cluster_arn.rsplit('/').next().unwrap_or_default();
        if !reference.ends_with(&format!("task/{cluster}/{id}")) {
            return None;
        }
    }
    let task = render::task(face, id, false)?;
    (task.cluster_arn.as_deref() == Some(cluster_arn)).then(|| id.to_string())
}

fn include_tags(include: &[String]) -> Result<bool, ApiError> {
    for i in include {
        if i != "TAGS" {
            return Err(ApiError::invalid(format!("include: {i:?} is not TAGS.")));
        }
    }
    Ok(!include.is_empty())
}

pub fn describe(face: &Face, req: &DescribeTasksRequest) -> Result<TasksResponse, ApiError> {
    let cluster = cluster_arn(face, req.cluster.as_deref())?;
    if req.tasks.is_empty() {
        return Err(ApiError::invalid("Tasks cannot be empty."));
    }
    if req.tasks.len() > MAX_DESCRIBE_TASKS {
        return Err(ApiError::invalid(format!(
            "tasks: at most {MAX_DESCRIBE_TASKS} per call."
        )));
    }
    let tags = include_tags(&req.include)?;
    let mut answer = TasksResponse::default();
    for reference in &req.tasks {
        match task_id(face, reference, &cluster).and_then(|id| render::task(face, &id, tags)) {
            Some(task) => answer.tasks.push(task),
            None => answer.failures.push(Failure {
                arn: Some(if reference.starts_with("arn:") {
                    reference.clone()
                } else {
                    let name = cluster.rsplit('/').next().unwrap_or_default();
                    face.config()
                        .arn("ecs", &format!("task/{name}/{reference}"))
                }),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(answer)
}

pub fn stop(face: &Face, req: &StopTaskRequest) -> Result<StopTaskResponse, ApiError> {
    let cluster = cluster_arn(face, req.cluster.as_deref())?;
    if req.reason.as_deref().is_some_and(|r| r.len() > 255) {
        return Err(ApiError::invalid("reason: at most 255 characters."));
    }
    let id = task_id(face, &req.task, &cluster)
        .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    face.set_stop(
        &id,
        stop_code::USER_INITIATED,
        req.reason.as_deref().unwrap_or("Task stopped by user"),
    );
    face.engine().stop(&id)?;
    Ok(StopTaskResponse {
        task: render::task(face, &id, false),
    })
}

pub fn list(face: &Face, req: &ListTasksRequest) -> Result<ListTasksResponse, ApiError> {
    let cluster = cluster_arn(face, req.cluster.as_deref())?;
    let desired = req.desired_status.as_deref().unwrap_or("RUNNING");
    if !matches!(desired, "RUNNING" | "PENDING" | "STOPPED") {
        return Err(ApiError::invalid(format!(
            "desiredStatus: {desired:?} is not RUNNING, PENDING or STOPPED."
        )));
    }
    if req
        .launch_type
        .as_deref()
        .is_some_and(|l| !matches!(l, "EC2" | "FARGATE" | "EXTERNAL"))
    {
        return Err(ApiError::invalid(
            "launchType: not EC2, FARGATE or EXTERNAL.",
        ));
    }
    let wanted_launch = req.launch_type.as_deref().is_none_or(|l| l == "FARGATE");
    let arns: Vec<String> = render::listing(face)
        .into_iter()
        .filter(|(_, c, family, by, status)| {
            wanted_launch
                && req.service_name.is_none()
                && *c == cluster
                && *status == desired
                && req.family.as_deref().is_none_or(|f| f == family)
                && req
                    .started_by
                    .as_deref()
                    .is_none_or(|s| Some(s) == by.as_deref())
        })
        .map(|(id, c, ..)| {
            let name = c.rsplit('/').next().unwrap_or_default().to_string();
            face.config().arn("ecs", &format!("task/{name}/{id}"))
        })
        .collect();
    let (task_arns, next_token) =
        paging::page(arns, req.next_token.as_deref(), req.max_results, 100)?;
    Ok(ListTasksResponse {
        task_arns,
        next_token,
    })
}

/// Apply `f` to the tags of the task or task definition `arn`.
fn with_tags<R>(face: &Face, arn: &str, f: impl FnOnce(&mut Vec<Tag>) -> R) -> Result<R, ApiError> {
    let not_found = || ApiError::invalid(format!("resourceArn: {arn:?} was not found."));
    if arn.contains(":task-definition/") {
        let mut defs = face.taskdefs();
        return defs.tags_mut(arn).map(f).ok_or_else(not_found);
    }
    if let Some((_, rest)) = arn.split_once(":task/")
        && let Some((cluster, id)) = rest.rsplit_once('/')
    {
        let cluster_arn = face.config().arn("ecs", &format!("cluster/{cluster}"));
        if task_id(face, arn, &cluster_arn).is_some() {
            return Ok(face.with_meta(id, |m| f(&mut m.tags)));
        }
    }
    Err(not_found())
}

pub fn tag(face: &Face, req: &TagResourceRequest) -> Result<(), ApiError> {
    taskdefs::check_tags(&req.tags)?;
    with_tags(face, &req.resource_arn, |tags| {
        for t in &req.tags {
            tags.retain(|old| old.key != t.key);
            tags.push(t.clone());
        }
        if tags.len() > 50 {
            return Err(ApiError::invalid("tags: at most 50 tags per resource."));
        }
        Ok(())
    })?
}

pub fn untag(face: &Face, req: &UntagResourceRequest) -> Result<(), ApiError> {
    with_tags(face, &req.resource_arn, |tags| {
        tags.retain(|t| !req.tag_keys.contains(&t.key));
    })
}

pub fn list_tags(
    face: &Face,
    req: &ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, ApiError> {
    Ok(ListTagsForResourceResponse {
        tags: with_tags(face, &req.resource_arn, |tags| tags.clone())?,
    })
}

/// The task must exist and have execute command enabled; then [`super::ssm::open`] files a
/// session whose stream URL is on `base` (`ws://HOST`).
pub fn execute_command(
    face: &Face,
    req: &ExecuteCommandRequest,
    base: &str,
) -> Result<fargate::wire::ecs_task::ExecuteCommandResponse, ApiError> {
    let cluster = cluster_arn(face, req.cluster.as_deref())?;
    let id = task_id(face, &req.task, &cluster)
        .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    let task = render::task(face, &id, false)
        .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
    if task.enable_execute_command != Some(true) {
        return Err(ApiError::invalid(
            "The execute command failed because execute command was not enabled when the task was run or the execute command agent isn't running. Wait and try again or run a new task with execute command enabled and try again.",
        ));
    }
    super::ssm::open(face, req, &id, &task, base)
}
