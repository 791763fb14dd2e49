//! A pod, with what the mock decided for it ([`PodPlan`]), in the simulator engine's terms:
//! the group the engine runs for it. A container with a `mock.vk.io/process.<name>`
//! annotation runs that script as its main process; any other runs a timer with the planned
//! run time and exit code. What the mock does not simulate (security settings, lifecycle
//! hooks; vk-core enforces the active deadline) is left out.

use std::net::Ipv4Addr;
use std::sync::Arc;

use cloudsim::engine::NewGroup;
use cloudsim::engine::group::RestartPolicy as EngineRestart;
use cloudsim::engine::spec::{ContainerSpec, Main, Names, SimulatedMain, VolumeSpec};
use vk_core::provider::{ResolvedPod, RestartPolicy, VolumeSource};

use crate::config::{ContainerPlan, PodPlan};
use crate::render::Record;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The group of `pod`, with engine id `id`; `ip` when it must keep an address it had.
pub(crate) fn group(
    id: &str,
    pod: &ResolvedPod,
    plan: &PodPlan,
    log_interval: std::time::Duration,
    ip: Option<Ipv4Addr>,
) -> NewGroup {
    let containers = |specs: &[vk_core::provider::ContainerSpec], plans: &[ContainerPlan]| {
        specs
            .iter()
            .zip(plans)
            .map(|(c, plan)| container(c, plan, log_interval))
            .collect()
    };
    NewGroup {
        id: id.to_string(),
        name: pod.pod.name.clone(),
        cpu: pod.effective_cpu_millis as f64 / 1000.0,
        memory_gib: pod.effective_memory_bytes as f64 / GIB,
        containers: containers(&pod.containers, &plan.apps),
        init_containers: containers(&pod.init_containers, &plan.init),
        volumes: pod
            .volumes
            .iter()
            .map(|v| match &v.source {
                VolumeSource::EmptyDir { .. } => VolumeSpec::EmptyDir {
                    name: v.name.clone(),
                },
                VolumeSource::Files(files) => VolumeSpec::Files {
                    name: v.name.clone(),
                    files: files.clone(),
                },
            })
            .collect(),
        names: Names::of(pod),
        share_process_namespace: pod.share_process_namespace,
        restart_policy: match pod.restart_policy {
            RestartPolicy::Always => EngineRestart::Always,
            RestartPolicy::OnFailure => EngineRestart::OnFailure,
            RestartPolicy::Never => EngineRestart::Never,
        },
        active_deadline: None,
        // How long a container killed for a probe gets after its SIGTERM (a delete stops
        // everything at once).
        termination_grace: pod.termination_grace_period,
        start_latency: Some(plan.start_latency),
        private_ip: ip,
        image_cache: Default::default(),
        idempotency: None,
        face: Arc::new(Record::new(pod)),
    }
}

/// The pod's file volumes (configMaps, secrets, projections), which an update rewrites.
pub(crate) fn file_volumes(pod: &ResolvedPod) -> Vec<VolumeSpec> {
    pod.volumes
        .iter()
        .filter_map(|v| match &v.source {
            VolumeSource::Files(files) => Some(VolumeSpec::Files {
                name: v.name.clone(),
                files: files.clone(),
            }),
            VolumeSource::EmptyDir { .. } => None,
        })
        .collect()
}

fn container(
    c: &vk_core::provider::ContainerSpec,
    plan: &ContainerPlan,
    log_interval: std::time::Duration,
) -> ContainerSpec {
    let (main, command) = match &plan.process {
        Some(process) => (Main::Command, process.command.clone()),
        None => (
            Main::Simulated(SimulatedMain {
                run: plan.run,
                exit_code: plan.exit_code,
                log_interval: Some(log_interval),
            }),
            c.command.clone(),
        ),
    };
    ContainerSpec {
        name: c.name.clone(),
        main,
        sidecar: plan.sidecar,
        image: c.image.clone(),
        command,
        args: if plan.process.is_some() {
            Vec::new()
        } else {
            c.args.clone()
        },
        working_dir: c.working_dir.clone(),
        env: c.env.clone(),
        mounts: c.volume_mounts.clone(),
        stdin: c.stdin,
        tty: c.tty,
        liveness_probe: c.liveness_probe.clone(),
        readiness_probe: c.readiness_probe.clone(),
        startup_probe: c.startup_probe.clone(),
        ..Default::default()
    }
}
