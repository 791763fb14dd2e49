//! The container group operations: create or replace (PUT, asynchronous), get, tags (PATCH),
//! delete (asynchronous), the lists of a resource group and of a subscription (paged), and
//! restart, stop and start. A group lives in the engine while it runs; a stopped one only in
//! the face (`AciFace::stopped`), as ACI keeps it without resources.

use std::sync::Arc;

use super::answer::Answer;
use super::error::AciError;
use super::face::{AciFace, Stopped};
use super::lro::Waits;
use super::record::Record;
use super::throttle::Kind;
use super::{render, to_engine, validate};
use aci::wire::{ContainerGroup, ContainerGroupList, TagsPatch, codes, headers};

/// Where a request is: the face's base URL, the subscription and resource group.
pub struct Scope<'a> {
    pub base: &'a str,
    pub subscription: &'a str,
    pub resource_group: &'a str,
}

impl Scope<'_> {
    fn operation_url(&self, face: &AciFace, op: &str) -> String {
        format!(
            "{}/subscriptions/{}/providers/Microsoft.ContainerInstance/locations/{}/operations/{op}?api-version={}",
            self.base,
            self.subscription,
            face.config().location,
            aci::wire::API_VERSION
        )
    }

    /// An asynchronous answer: `Azure-AsyncOperation` and a short `Retry-After`.
    fn asynchronous(&self, face: &AciFace, answer: Answer, waits: Waits) -> Answer {
        let op = face.ops.start(self.subscription, waits);
        answer
            .header(
                headers::AZURE_ASYNC_OPERATION,
                self.operation_url(face, &op),
            )
            .header(headers::RETRY_AFTER, "1")
    }
}

/// The group `name` as a GET answers it, or 404.
pub fn render_one(
    face: &AciFace,
    scope: &Scope<'_>,
    name: &str,
) -> Result<ContainerGroup, AciError> {
    let id = Record::engine_id(scope.subscription, scope.resource_group, name);
    {
        let state = face.engine().state();
        if let Some(g) = state.get(&id)
            && let Some(record) = g.face::<Record>()
        {
            return Ok(render::group(record, Some(g), face.engine().now()));
        }
    }
    match face.stopped_map().get(&id) {
        Some(s) => Ok(render::group(&s.record, None, s.at)),
        None => Err(AciError::group_not_found(scope.resource_group, name)),
    }
}

/// Every group of the subscription (of one resource group with `rg`), by name.
fn all(face: &AciFace, subscription: &str, rg: Option<&str>) -> Vec<ContainerGroup> {
    let mut groups: Vec<ContainerGroup> = {
        let state = face.engine().state();
        state
            .groups()
            .filter_map(|g| {
                g.face::<Record>()
                    .filter(|r| r.is_in(subscription, rg))
                    .map(|r| render::group(r, Some(g), face.engine().now()))
            })
            .collect()
    };
    groups.extend(
        face.stopped_map()
            .values()
            .filter(|s| s.record.is_in(subscription, rg))
            .map(|s| render::group(&s.record, None, s.at)),
    );
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    if !face.config().list_instance_views {
        // As ACI's lists: provisioning states, but no instance views (a GET has them).
        for g in &mut groups {
            g.properties.instance_view = None;
            for c in &mut g.properties.containers {
                c.properties.instance_view = None;
            }
            for c in &mut g.properties.init_containers {
                c.properties.instance_view = None;
            }
        }
    }
    groups
}

/// A page of a list; `skip` from `$skipToken`, `path` the list's own path for `nextLink`.
pub fn list(
    face: &AciFace,
    base: &str,
    path: &str,
    subscription: &str,
    rg: Option<&str>,
    skip: usize,
) -> Answer {
    let groups = all(face, subscription, rg);
    let size = face.config().page_size.max(1);
    let next = skip.saturating_add(size);
    let page = ContainerGroupList {
        value: groups.iter().skip(skip).take(size).cloned().collect(),
        next_link: (next < groups.len()).then(|| {
            format!(
                "{base}{path}?api-version={}&%24skipToken={next}",
                aci::wire::API_VERSION
            )
        }),
    };
    Answer::json(200, &page)
}

/// What of a PUT body a replace compares: everything but tags and read-only parts.
fn comparable(group: &ContainerGroup) -> ContainerGroup {
    let mut g = group.clone();
    g.tags.clear();
    g.id = None;
    g.name = None;
    g.kind = None;
    g.properties.provisioning_state = None;
    g.properties.instance_view = None;
    for c in &mut g.properties.containers {
        c.properties.instance_view = None;
    }
    for c in &mut g.properties.init_containers {
        c.properties.instance_view = None;
    }
    g
}

pub async fn put(face: &AciFace, scope: &Scope<'_>, name: &str, body: &[u8]) -> Answer {
    match create(face, scope, name, body).await {
        Ok(answer) => answer,
        Err(e) => e.into(),
    }
}

async fn create(
    face: &AciFace,
    scope: &Scope<'_>,
    name: &str,
    body: &[u8],
) -> Result<Answer, AciError> {
    let group: ContainerGroup = serde_json::from_slice(body).map_err(|e| {
        AciError::invalid_content(format!(
            "The request content was invalid and could not be deserialized: '{e}'."
        ))
    })?;
    let (cpu, memory) =
        validate::check(face.config(), &face.engine().config().catalog, name, &group)?;
    let _one_at_a_time = face.create_lock.lock().await;
    let id = Record::engine_id(scope.subscription, scope.resource_group, name);
    let existing = {
        let state = face.engine().state();
        match state.get(&id) {
            Some(g) if g.status == crate::engine::Phase::Terminating => {
                return Err(AciError::new(
                    409,
                    codes::CONTAINER_GROUP_TRANSITIONING,
                    format!(
                        "The container group '{name}' is being deleted. Please retry once the deletion completed."
                    ),
                ));
            }
            Some(g) => g.face.clone().downcast::<Record>().ok(),
            None => None,
        }
    };
    let mut replaced = false;
    if let Some(old) = existing {
        if comparable(&old.spec) == comparable(&group) {
            // The same group again: only its tags change (an idempotent create).
            old.set_tags(group.tags.clone());
            let rendered = render_one(face, scope, name)?;
            return Ok(scope.asynchronous(face, Answer::json(200, &rendered), Waits::Runs(id)));
        }
        face.engine().remove(&id);
        replaced = true;
    }
    replaced |= face.stopped_map().remove(&id).is_some();
    if !replaced {
        face.throttle
            .aci(&face.config().quotas, scope.subscription, Kind::Create)?;
        check_quota(face, scope.subscription, cpu)?;
    }
    let record = Arc::new(Record {
        subscription: scope.subscription.to_string(),
        resource_group: scope.resource_group.to_string(),
        name: name.to_string(),
        location: face.config().location.clone(),
        tags: std::sync::Mutex::new(group.tags.clone()),
        spec: group,
        cpu,
        memory_gb: memory,
        created: face.engine().now(),
    });
    face.engine()
        .create(to_engine::new_group(record))
        .map_err(|e| AciError::engine(e, scope.resource_group, name))?;
    let rendered = render_one(face, scope, name)?;
    let status = if replaced { 200 } else { 201 };
    Ok(scope.asynchronous(face, Answer::json(status, &rendered), Waits::Runs(id)))
}

/// The subscription's container group and core quotas of the region.
fn check_quota(face: &AciFace, subscription: &str, cpu: f64) -> Result<(), AciError> {
    let quotas = &face.config().quotas;
    let (count, cores) = usage(face, subscription);
    if count >= quotas.container_groups as usize {
        return Err(AciError::new(
            409,
            codes::CONTAINER_GROUP_QUOTA_REACHED,
            format!(
                "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'ContainerGroups' exceeded in region '{}'. Limit: '{}', Usage: '{count}' Requested: '1'.",
                face.config().location,
                quotas.container_groups
            ),
        ));
    }
    if cores + cpu > f64::from(quotas.standard_cores) + 1e-9 {
        return Err(AciError::new(
            409,
            codes::STANDARD_CORES_QUOTA_REACHED,
            format!(
                "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'StandardCores' exceeded in region '{}'. Limit: '{}', Usage: '{cores}' Requested: '{cpu}'.",
                face.config().location,
                quotas.standard_cores
            ),
        ));
    }
    Ok(())
}

/// The subscription's groups (stopped ones included) and the vCPUs of those not over.
pub fn usage(face: &AciFace, subscription: &str) -> (usize, f64) {
    let state = face.engine().state();
    let mut count = 0;
    let mut cores = 0.0;
    for g in state.groups() {
        if let Some(r) = g.face::<Record>()
            && r.is_in(subscription, None)
        {
            count += 1;
            if !g.is_terminal() {
                cores += r.cpu;
            }
        }
    }
    drop(state);
    count += face
        .stopped_map()
        .values()
        .filter(|s| s.record.is_in(subscription, None))
        .count();
    (count, cores)
}

pub fn get(face: &AciFace, scope: &Scope<'_>, name: &str) -> Answer {
    match render_one(face, scope, name) {
        Ok(group) => Answer::json(200, &group),
        Err(e) => e.into(),
    }
}

pub fn patch(face: &AciFace, scope: &Scope<'_>, name: &str, body: &[u8]) -> Answer {
    let patch: TagsPatch = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => {
            return AciError::invalid_content(format!(
                "The request content was invalid and could not be deserialized: '{e}'."
            ))
            .into();
        }
    };
    let id = Record::engine_id(scope.subscription, scope.resource_group, name);
    let live = face
        .engine()
        .state()
        .get(&id)
        .and_then(|g| g.face.clone().downcast::<Record>().ok());
    let record = live.or_else(|| face.stopped_map().get(&id).map(|s| s.record.clone()));
    match record {
        Some(r) => {
            r.set_tags(patch.tags);
            get(face, scope, name)
        }
        None => AciError::group_not_found(scope.resource_group, name).into(),
    }
}

pub fn delete(face: &AciFace, scope: &Scope<'_>, name: &str) -> Answer {
    let id = Record::engine_id(scope.subscription, scope.resource_group, name);
    let group = match render_one(face, scope, name) {
        Ok(g) => g,
        // ARM: deleting what is not there is a success without content.
        Err(_) => return Answer::empty(204),
    };
    if let Err(e) = face
        .throttle
        .aci(&face.config().quotas, scope.subscription, Kind::Delete)
    {
        return e.into();
    }
    if face.stopped_map().remove(&id).is_some() {
        return Answer::json(200, &group);
    }
    if let Err(e) = face.engine().delete(&id) {
        return AciError::engine(e, scope.resource_group, name).into();
    }
    let mut group = group;
    group.properties.provisioning_state = Some(aci::wire::provisioning_state::DELETING.into());
    scope.asynchronous(face, Answer::json(202, &group), Waits::Gone(id))
}

/// `POST …/restart`, `…/stop`, `…/start`.
pub fn action(face: &AciFace, scope: &Scope<'_>, name: &str, action: &str) -> Answer {
    let id = Record::engine_id(scope.subscription, scope.resource_group, name);
    let live = face
        .engine()
        .state()
        .get(&id)
        .map(|g| (g.is_terminal(), g.face.clone().downcast::<Record>().ok()));
    let stopped = face.stopped_map().get(&id).cloned();
    match (action, live, stopped) {
        (_, None, None) => AciError::group_not_found(scope.resource_group, name).into(),
        ("stop", Some((_, record)), _) => {
            face.engine().remove(&id);
            if let Some(record) = record {
                face.stopped_map().insert(
                    id,
                    Stopped {
                        record,
                        at: face.engine().now(),
                    },
                );
            }
            Answer::empty(204)
        }
        ("stop", None, Some(_)) => Answer::empty(204),
        ("restart", Some((false, _)), _) => match face.engine().restart(&id) {
            Ok(()) => scope.asynchronous(face, Answer::empty(204), Waits::Runs(id)),
            Err(e) => AciError::engine(e, scope.resource_group, name).into(),
        },
        ("start", Some((false, _)), _) => {
            scope.asynchronous(face, Answer::empty(202), Waits::Runs(id))
        }
        // A group that ended, or was stopped, runs again from its definition.
        ("restart" | "start", Some((true, Some(record))), _)
        | ("restart" | "start", None, Some(Stopped { record, .. })) => {
            face.engine().remove(&id);
            face.stopped_map().remove(&id);
            let status = if action == "restart" { 204 } else { 202 };
            match face.engine().create(to_engine::new_group(record)) {
                Ok(_) => scope.asynchronous(face, Answer::empty(status), Waits::Runs(id)),
                Err(e) => AciError::engine(e, scope.resource_group, name).into(),
            }
        }
        _ => AciError::new(
            404,
            "InvalidResourceType",
            format!("The action '{action}' is not supported on container groups."),
        )
        .into(),
    }
}
