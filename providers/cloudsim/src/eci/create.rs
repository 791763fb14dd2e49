//! `CreateContainerGroup` into the engine: the billed size (`specs`), the containers, volumes
//! and names (`to_engine`), the restart policy, deadline and grace period in the engine's terms, an `eci-` id, the ClientToken with the
//! request's fingerprint, and the request itself kept as the group's face record, which
//! `render`, `placement` and the listing filters read back.

use std::sync::Arc;
use std::time::Duration;

use rand::RngExt as _;

use super::create_extras::GroupExtras;
use super::error::ApiError;
use super::face::Face;
use super::record::Record;
use super::specs::group_size;
use super::to_engine;
use crate::engine::{NewGroup, RestartPolicy};
use eci::wire::request::CreateContainerGroup;

fn random_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("eci-{tail}")
}

/// `RestartPolicy`: `Always` unless told otherwise.
fn restart_policy(policy: Option<&str>) -> RestartPolicy {
    match policy {
        Some("Never") => RestartPolicy::Never,
        Some("OnFailure") => RestartPolicy::OnFailure,
        _ => RestartPolicy::Always,
    }
}

/// `TerminationGracePeriodSeconds`; a negative one is the default.
fn grace(seconds: Option<i64>) -> Option<Duration> {
    seconds
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs)
}

/// `ActiveDeadlineSeconds`; a negative one is over at once.
fn deadline(seconds: Option<i64>) -> Option<Duration> {
    seconds.map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
}

/// The engine's request for an ECI create.
fn new_group(
    req: CreateContainerGroup,
    extras: GroupExtras,
    params: Vec<(String, String)>,
) -> Result<NewGroup, ApiError> {
    let (cpu, memory_gib) = group_size(&req)?;
    let idempotency = req
        .client_token
        .clone()
        .map(|token| (token, format!("{req:?}{extras:?}")));
    Ok(NewGroup {
        id: random_id(),
        name: req.container_group_name.clone(),
        cpu,
        memory_gib,
        containers: req.containers.iter().map(to_engine::container).collect(),
        init_containers: req
            .init_containers
            .iter()
            .map(to_engine::container)
            .collect(),
        volumes: to_engine::volumes(&req.volumes)?,
        names: to_engine::names(&req.names),
        share_process_namespace: req.share_process_namespace,
        restart_policy: restart_policy(req.restart_policy.as_deref()),
        active_deadline: deadline(req.active_deadline_seconds),
        termination_grace: grace(req.termination_grace_period_seconds),
        start_latency: None,
        image_cache: Default::default(),
        private_ip: extras.private_ip,
        idempotency,
        face: Arc::new(Record {
            request: req,
            extras,
            params,
        }),
    })
}

impl Face {
    pub fn create(&self, req: CreateContainerGroup) -> Result<String, ApiError> {
        self.create_with(req, GroupExtras::default())
    }

    /// Create with the parameters only the simulator decodes.
    pub fn create_with(
        &self,
        req: CreateContainerGroup,
        extras: GroupExtras,
    ) -> Result<String, ApiError> {
        let mut params = eci::wire::params::Params::new();
        req.encode(&mut params);
        self.create_from(req, extras, &params)
    }

    /// Create from a request decoded from `params` (kept, without their signature, in the
    /// group's record); each group made (not a token's answer) is counted (`persist`).
    pub fn create_from(
        &self,
        req: CreateContainerGroup,
        extras: GroupExtras,
        params: &eci::wire::params::Params,
    ) -> Result<String, ApiError> {
        let tags = req
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect();
        let name = req.container_group_name.clone();
        let cache = self.cache_for(
            &req,
            extras.image_snapshot_id.as_deref(),
            extras.auto_match_image_cache,
            extras.auto_create_image_cache,
            true,
        )?;
        let mut new = new_group(req, extras, super::persist::kept_params(params))?;
        new.image_cache = cache;
        let fresh = new.id.clone();
        let id = self.engine().create(new)?;
        if id == fresh {
            self.ledger().count(self.engine(), &id, &name, tags);
        }
        Ok(id)
    }

    /// Every group this face made (not a ClientToken's repeat), and whether it still exists.
    pub fn creates(&self) -> super::persist::CreatesReport {
        self.ledger().report(self.engine(), self.quota_refused())
    }

    /// Write the state file, when there is one (`persist`).
    pub fn save_state(&self) {
        self.ledger().save(self.engine(), self.image_caches());
    }

    /// Read the state file back, when there is one: how many groups were put back.
    pub fn restore_state(&self) -> Result<usize, String> {
        self.ledger()
            .restore(self.engine(), self.image_caches(), |g| {
                let (req, extras, params) = super::persist::saved_request(g)?;
                new_group(req, extras, params).map_err(|e| e.message)
            })
    }

    /// Everything a create checks, without creating: `DryRun=true`.
    pub fn check_create(
        &self,
        req: &CreateContainerGroup,
        extras: &GroupExtras,
    ) -> Result<(), ApiError> {
        group_size(req)?;
        to_engine::volumes(&req.volumes)?;
        self.cache_for(
            req,
            extras.image_snapshot_id.as_deref(),
            extras.auto_match_image_cache,
            extras.auto_create_image_cache,
            false,
        )?;
        Ok(self.engine().check_create(extras.private_ip)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grace_period_defaults_to_the_engines() {
        assert_eq!(grace(None), None);
        assert_eq!(grace(Some(5)), Some(Duration::from_secs(5)));
        assert_eq!(grace(Some(-1)), None);
        assert_eq!(deadline(Some(-1)), Some(Duration::ZERO));
    }

    #[test]
    fn restart_policies_default_to_always() {
        assert_eq!(restart_policy(None), RestartPolicy::Always);
        assert_eq!(restart_policy(Some("Never")), RestartPolicy::Never);
        assert_eq!(restart_policy(Some("OnFailure")), RestartPolicy::OnFailure);
    }
}
