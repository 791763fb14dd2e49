//! Requests and limits: per container, the pod's effective request (what the scheduler
//! counts), and the downward API's `resourceFieldRef`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, Pod, PodSpec, ResourceFieldSelector, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use super::ResolveError;
use super::quantity::{Quantity, QuantityError};
use crate::provider::{ContainerSpec, Resources, RestartPolicy};

type ResourceList = BTreeMap<String, ApiQuantity>;

fn lookup<'a>(list: Option<&'a ResourceList>, name: &str) -> Option<&'a str> {
    list.and_then(|l| l.get(name)).map(|q| q.0.as_str())
}

/// The request, or the limit when no request is set (the API server's defaulting: a container
/// with only a limit requests that limit).
fn request_or_limit<'a>(r: Option<&'a ResourceRequirements>, name: &str) -> Option<&'a str> {
    lookup(r.and_then(|r| r.requests.as_ref()), name)
        .or_else(|| lookup(r.and_then(|r| r.limits.as_ref()), name))
}

/// The limit, or the request when no limit is set (see [`resource_field_value`]).
fn limit_or_request<'a>(r: Option<&'a ResourceRequirements>, name: &str) -> Option<&'a str> {
    lookup(r.and_then(|r| r.limits.as_ref()), name)
        .or_else(|| lookup(r.and_then(|r| r.requests.as_ref()), name))
}

fn invalid(what: &str, field: &str, err: QuantityError) -> ResolveError {
    ResolveError::Invalid(format!("{what}: {field}: {err}"))
}

fn millis(what: &str, field: &str, q: Option<&str>) -> Result<Option<u64>, ResolveError> {
    q.map(|q| {
        Quantity::parse(q)
            .and_then(|q| q.ceil_millis())
            .map_err(|e| invalid(what, field, e.of(q)))
    })
    .transpose()
}

fn bytes(what: &str, field: &str, q: Option<&str>) -> Result<Option<u64>, ResolveError> {
    q.map(|q| {
        Quantity::parse(q)
            .and_then(|q| q.ceil_units())
            .map_err(|e| invalid(what, field, e.of(q)))
    })
    .transpose()
}

/// A container's requests and limits in millicores and bytes. Requests default to limits.
pub(super) fn container_resources(container: &Container) -> Result<Resources, ResolveError> {
    let what = format!("container {:?}", container.name);
    let r = container.resources.as_ref();
    let limits = r.and_then(|r| r.limits.as_ref());
    let requests = r.and_then(|r| r.requests.as_ref());
    let cpu_limit_millis = millis(&what, "resources.limits.cpu", lookup(limits, "cpu"))?;
    let memory_limit_bytes = bytes(&what, "resources.limits.memory", lookup(limits, "memory"))?;
    Ok(Resources {
        cpu_request_millis: millis(&what, "resources.requests.cpu", lookup(requests, "cpu"))?
            .or(cpu_limit_millis),
        cpu_limit_millis,
        memory_request_bytes: bytes(
            &what,
            "resources.requests.memory",
            lookup(requests, "memory"),
        )?
        .or(memory_limit_bytes),
        memory_limit_bytes,
    })
}

/// The pod's effective request as the scheduler and kubelet count it
/// (`k8s.io/component-helpers/resource.PodRequests`, KEP-753 sidecar rule):
///
/// - app containers and sidecars (init containers with `restartPolicy: Always`) run together,
///   so their requests add up;
/// - a regular init container runs alone next to the sidecars started before it, so it needs
///   its own request plus theirs;
/// - the pod needs the larger of the two, per resource;
/// - pod-level `spec.resources` requests (KEP-2837) replace the container sum when set;
/// - `spec.overhead` is added on top.
pub(super) fn effective(
    spec: &PodSpec,
    init_containers: &[ContainerSpec],
    containers: &[ContainerSpec],
) -> Result<(u64, u64), ResolveError> {
    let req = |c: &ContainerSpec| {
        (
            c.resources.cpu_request_millis.unwrap_or(0),
            c.resources.memory_request_bytes.unwrap_or(0),
        )
    };
    let (mut cpu, mut memory) = containers
        .iter()
        .map(req)
        .fold((0u64, 0u64), |(a, b), (c, m)| {
            (a.saturating_add(c), b.saturating_add(m))
        });
    let (mut sidecar_cpu, mut sidecar_memory) = (0u64, 0u64);
    let (mut init_cpu, mut init_memory) = (0u64, 0u64);
    for c in init_containers {
        let (c_cpu, c_memory) = req(c);
        let (use_cpu, use_memory) = if c.restart_policy == Some(RestartPolicy::Always) {
            cpu = cpu.saturating_add(c_cpu);
            memory = memory.saturating_add(c_memory);
            sidecar_cpu = sidecar_cpu.saturating_add(c_cpu);
            sidecar_memory = sidecar_memory.saturating_add(c_memory);
            (sidecar_cpu, sidecar_memory)
        } else {
            (
                c_cpu.saturating_add(sidecar_cpu),
                c_memory.saturating_add(sidecar_memory),
            )
        };
        init_cpu = init_cpu.max(use_cpu);
        init_memory = init_memory.max(use_memory);
    }
    cpu = cpu.max(init_cpu);
    memory = memory.max(init_memory);

    let pod_level = spec.resources.as_ref();
    if let Some(c) = millis(
        "pod",
        "spec.resources cpu request",
        request_or_limit(pod_level, "cpu"),
    )? {
        cpu = c;
    }
    if let Some(m) = bytes(
        "pod",
        "spec.resources memory request",
        request_or_limit(pod_level, "memory"),
    )? {
        memory = m;
    }
    let overhead = spec.overhead.as_ref();
    cpu = cpu
        .saturating_add(millis("pod", "spec.overhead cpu", lookup(overhead, "cpu"))?.unwrap_or(0));
    memory = memory.saturating_add(
        bytes("pod", "spec.overhead memory", lookup(overhead, "memory"))?.unwrap_or(0),
    );
    Ok((cpu, memory))
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

fn ceil_div(a: u64, b: u64) -> u64 {
    a / b + u64::from(!a.is_multiple_of(b))
}

/// The value of a `resourceFieldRef` (`resource.ExtractContainerResourceValue`): the quantity
/// divided by the divisor (default `1`), rounded up — CPU in whole millicores first, like
/// `MilliValue()`, everything else in whole units.
///
/// `container` is the container the environment variable belongs to; `containerName`, when
/// set, picks another one (a volume file must always name it).
///
/// When the limit asked for is unset the kubelet substitutes the node's allocatable capacity;
/// a virtual node's capacity says nothing about the instance the pod gets, so this uses the
/// container's request instead (which is what serverless providers size the instance from),
/// and `0` when neither is set. A request that is unset falls back to the limit, as the API
/// server's defaulting would have done.
pub(super) fn resource_field_value(
    pod: &Pod,
    container: Option<&Container>,
    sel: &ResourceFieldSelector,
) -> Result<String, ResolveError> {
    let what = format!("resourceFieldRef {:?}", sel.resource);
    let container = match sel.container_name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => find_container(pod, name).ok_or_else(|| {
            ResolveError::Invalid(format!("{what}: container {name:?} not found in the pod"))
        })?,
        None => container
            .ok_or_else(|| ResolveError::Invalid(format!("{what}: containerName is required")))?,
    };
    let divisor = match sel.divisor.as_ref() {
        Some(d) => Quantity::parse(&d.0)
            .map_err(|e| ResolveError::Invalid(format!("{what}: divisor: {e}")))?,
        None => Quantity::one(),
    };
    let divisor = if divisor.is_zero() {
        Quantity::one()
    } else {
        divisor
    };
    if divisor.is_negative() {
        return Err(ResolveError::Invalid(format!(
            "{what}: divisor must not be negative"
        )));
    }
    let r = container.resources.as_ref();
    let (kind, name) = sel.resource.split_once('.').ok_or_else(|| {
        ResolveError::Invalid(format!("unsupported container resource: {}", sel.resource))
    })?;
    let supported =
        matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-");
    let quantity = match kind {
        "limits" if supported => limit_or_request(r, name),
        "requests" if supported => request_or_limit(r, name),
        _ => {
            return Err(ResolveError::Invalid(format!(
                "unsupported container resource: {}",
                sel.resource
            )));
        }
    };
    let field = format!("container {:?}", container.name);
    let value = if name == "cpu" {
        let value = millis(&field, &sel.resource, quantity)?.unwrap_or(0);
        let per = divisor
            .ceil_millis()
            .map_err(|e| ResolveError::Invalid(format!("{what}: divisor {e}")))?;
        ceil_div(value, per.max(1))
    } else {
        let value = bytes(&field, &sel.resource, quantity)?.unwrap_or(0);
        let per = divisor
            .ceil_units()
            .map_err(|e| ResolveError::Invalid(format!("{what}: divisor {e}")))?;
        ceil_div(value, per.max(1))
    };
    Ok(value.to_string())
}
