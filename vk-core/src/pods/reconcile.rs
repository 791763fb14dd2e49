//! The reconcile of one pod, top to bottom: read what is known ([`Facts`]), [`decide`], apply
//! the [`Decision`] and keep the pod's record. Timing and metrics are around it
//! ([`super::measure`]); the decision itself is pure ([`super::decide`]).

use std::time::{Duration, Instant};

use crate::pods::queue::Action;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::ResourceExt;
use kube::runtime::events::EventType;

use super::context::PodContext;
use super::deadline;
use super::decide::{
    Decision, Facts, Now, REPORT_WAIT, Update, decide, interim_wait, mirror_wake, requeue,
    tokens_valid_for, until,
};
use super::error::PodError;
use super::instance_events::{
    container_field_path, newly_failing, newly_refused_ephemeral, newly_started,
};
use super::pod_api::{delete_pod, patch_status, pod_ref};
use super::record::Written;
use super::report::{CreateOutcome, CreateReport, Report, StatusWrite};
use super::resolve::{ResolveError, resolve_pod, resolve_pod_with_warnings};
use super::status::{
    EPHEMERAL_MESSAGE, EPHEMERAL_UNSUPPORTED, desired_status, failed_status, is_terminal_phase,
    owned_part, pod_phase, refused_status, waiting_status,
};
use crate::provider::{ErrorClass, InstanceStatus};

impl PodContext {
    /// One reconcile of `pod` (the API's copy as [`PodContext::current`] gives it); what it
    /// did that is measured goes into `report`.
    pub(super) async fn reconcile_pod(
        &self,
        pod: &Pod,
        report: &mut Report,
    ) -> Result<Action, PodError> {
        let r = pod_ref(pod);
        let mounts_tokens = tokens_valid_for(pod, self.config.token_refresh_interval).is_some();
        loop {
            let (facts, instance) = self.records.read(&r.uid, |record| {
                let facts = Facts::of(pod, record, mounts_tokens, Now::read());
                (facts, record.and_then(|rec| rec.instance.clone()))
            });
            let decision = decide(&facts);
            report.decisions.push(decision);
            match decision.reads_references() {
                Some(true) => self.watched.add_pod(&r.namespace, &r.uid),
                Some(false) => self.watched.remove_pod(&r.uid),
                None => {}
            }
            match decision {
                Decision::StopInstance { grace } => {
                    self.stop_instance(pod, grace).await?;
                    // Decide again with what the provider reported meanwhile.
                }
                Decision::DeleteFromApi { still_running } => {
                    self.deletion_handled(pod);
                    if still_running {
                        tracing::warn!(pod = %r, "grace period over while the instance still runs; deleting the pod anyway");
                    }
                    delete_pod(&self.client, pod).await?;
                    return Ok(Action::await_change());
                }
                Decision::AwaitStop { after } => {
                    self.deletion_handled(pod);
                    return Ok(Action::requeue(after));
                }
                Decision::Leave => return Ok(Action::await_change()),
                Decision::StopForDeadline { grace } => {
                    return self.deadline_exceeded(pod, grace, report).await;
                }
                Decision::Mirror { update } => {
                    let Some(instance) = instance else {
                        // Facts and instance are read together; this cannot be.
                        return Ok(requeue(pod, None, Timestamp::now()));
                    };
                    return self.mirror(pod, &instance, update, report).await;
                }
                Decision::InstanceLost => return self.instance_lost(pod, report).await,
                Decision::AwaitReport { after } => {
                    return self.show_progress(pod, None, after, report).await;
                }
                Decision::Create => return self.create(pod, report).await,
            }
        }
    }

    /// The pod is being deleted: tell the provider to stop its instance, once.
    async fn stop_instance(&self, pod: &Pod, grace: Duration) -> Result<(), PodError> {
        let r = pod_ref(pod);
        self.deletion_handled(pod);
        self.event(
            pod,
            EventType::Normal,
            "Killing",
            format!("Stopping the pod's {} instance", self.provider.name()),
        );
        if let Err(e) = self.provider.delete(&r, grace).await {
            self.records.update(&r.uid, |rec| rec.delete_sent = false);
            return Err(e.into());
        }
        // Billed until now unless the cloud says it ended before.
        self.record_cost(pod, Timestamp::now()).await;
        Ok(())
    }

    /// The deletion was looked at: an instance reported later is not stopped by this pod's
    /// reconcile (the pod's removal from the API deletes it).
    fn deletion_handled(&self, pod: &Pod) {
        let uid = pod.uid().unwrap_or_default();
        self.records.update(&uid, |rec| rec.delete_sent = true);
    }

    /// The pod ran longer than its `activeDeadlineSeconds`: stop the instance and fail the pod,
    /// which stays in the API (as with the kubelet) until it is deleted.
    async fn deadline_exceeded(
        &self,
        pod: &Pod,
        grace: Duration,
        report: &mut Report,
    ) -> Result<Action, PodError> {
        let r = pod_ref(pod);
        tracing::info!(pod = %r, "active deadline exceeded; stopping the instance");
        self.event(
            pod,
            EventType::Normal,
            deadline::REASON,
            deadline::MESSAGE.to_string(),
        );
        // Also when no status was reported yet: a polled provider may not have listed it.
        self.provider.delete(&r, grace).await?;
        let status = failed_status(
            pod,
            deadline::REASON,
            deadline::MESSAGE,
            &self.config.node_ip,
            Timestamp::now(),
        );
        self.write_status(pod, status, report).await?;
        self.watched.remove_pod(&r.uid);
        Ok(Action::await_change())
    }

    /// The instance exists: hand it what changed, then mirror its status.
    async fn mirror(
        &self,
        pod: &Pod,
        instance: &InstanceStatus,
        update: Option<Update>,
        report: &mut Report,
    ) -> Result<Action, PodError> {
        let r = pod_ref(pod);
        let generation = pod.metadata.generation.unwrap_or_default();
        match update {
            Some(update) => {
                if update.files {
                    self.records
                        .update(&r.uid, |rec| rec.mounted_changed = false);
                }
                match self.send_update(pod).await {
                    Ok(()) => {
                        tracing::debug!(pod = %r, ?update, "instance updated");
                        self.records
                            .update(&r.uid, |rec| rec.generation_sent = Some(generation));
                    }
                    // Like a kubelet whose volume refresh fails: the instance keeps the files
                    // it has; the next change of the object (or token refresh) tries again.
                    Err(PodError::Resolve(ResolveError::MissingReference(message))) => {
                        self.event(
                            pod,
                            EventType::Warning,
                            "FailedMount",
                            format!(
                                "Refreshing the pod's files failed; the instance keeps their previous content: {message}"
                            ),
                        );
                        if tokens_valid_for(pod, self.config.token_refresh_interval).is_some() {
                            let retry = Timestamp::now()
                                .checked_add(Duration::from_secs(30))
                                .unwrap_or_else(|_| Timestamp::now());
                            self.records
                                .update(&r.uid, |rec| rec.tokens_due = Some(retry));
                        }
                    }
                    Err(e) => {
                        if update.files {
                            self.records
                                .update(&r.uid, |rec| rec.mounted_changed = true);
                        }
                        return Err(e);
                    }
                }
            }
            None => {
                self.records
                    .update(&r.uid, |rec| rec.generation_sent = Some(generation));
            }
        }
        let status = desired_status(
            pod,
            Some(instance),
            self.provider.name(),
            &self.config.node_ip,
            "ContainerCreating",
            Timestamp::now(),
        );
        if let Some(wait) = interim_wait(status.phase.as_deref(), self.created_ago(&r.uid)) {
            return Ok(requeue(pod, Some(wait), Timestamp::now()));
        }
        self.started_events(pod, &status);
        self.container_events(pod, instance);
        self.write_status(pod, status, report).await?;
        let now = Timestamp::now();
        let tokens_due_in = self
            .records
            .read(&r.uid, |rec| rec.and_then(|rec| rec.tokens_due))
            .map(|at| until(at, now));
        Ok(requeue(pod, Some(mirror_wake(tokens_due_in)), now))
    }

    /// Resolve the pod again and hand it to the provider (new images, re-issued tokens,
    /// changed configMap/secret files).
    async fn send_update(&self, pod: &Pod) -> Result<(), PodError> {
        let resolved = resolve_pod(
            pod,
            &self.config.node_name,
            &self.config.node_ip,
            &self.watched,
        )
        .await?;
        self.provider.update(&resolved).await?;
        self.schedule_token_refresh(pod, &resolved.pod.uid);
        Ok(())
    }

    /// The pod ran and its instance is gone: Failed, as nothing would run it again.
    async fn instance_lost(&self, pod: &Pod, report: &mut Report) -> Result<Action, PodError> {
        let message = format!(
            "the pod's {} instance no longer exists (deleted outside Kubernetes, or lost by the cloud)",
            self.provider.name()
        );
        tracing::warn!(pod = %pod_ref(pod), "{message}; marking the pod Failed");
        self.event(
            pod,
            EventType::Warning,
            "ProviderInstanceLost",
            message.clone(),
        );
        let status = failed_status(
            pod,
            "ProviderInstanceLost",
            &message,
            &self.config.node_ip,
            Timestamp::now(),
        );
        self.write_status(pod, status, report).await?;
        Ok(Action::await_change())
    }

    /// Resolve the pod and create its instance (idempotent by UID).
    async fn create(&self, pod: &Pod, report: &mut Report) -> Result<Action, PodError> {
        let r = pod_ref(pod);
        let began = Instant::now();
        let (resolved, warnings) = match resolve_pod_with_warnings(
            pod,
            &self.config.node_name,
            &self.config.node_ip,
            &self.watched,
        )
        .await
        {
            Ok(resolved) => resolved,
            Err(ResolveError::MissingReference(message)) => {
                self.event(
                    pod,
                    EventType::Warning,
                    "Failed",
                    format!("Error: {message}"),
                );
                let status = waiting_status(
                    pod,
                    "CreateContainerConfigError",
                    &message,
                    &self.config.node_ip,
                    Timestamp::now(),
                );
                self.write_status(pod, status, report).await?;
                // A watched secret or configMap wakes the pod when it appears; the fallback
                // covers what is not watched (a service account).
                return Ok(requeue(
                    pod,
                    Some(Duration::from_secs(30)),
                    Timestamp::now(),
                ));
            }
            Err(ResolveError::Unsupported { reason, message }) => {
                return self.refuse(pod, &reason, &message, report).await;
            }
            Err(ResolveError::Invalid(message)) => {
                return self.refuse(pod, "InvalidPodSpec", &message, report).await;
            }
            Err(e @ ResolveError::Api(_)) => return Err(e.into()),
        };
        let resolved_in = began.elapsed();
        let result = self.provider.create(&resolved).await;
        report.create = Some(CreateReport {
            began,
            resolve: resolved_in,
            call: began.elapsed().saturating_sub(resolved_in),
            outcome: CreateOutcome::of(&result),
        });
        match result {
            Ok(()) => {}
            Err(e) if e.class() == ErrorClass::InvalidSpec => {
                let reason = e.reason().unwrap_or("InvalidSpec");
                return self.refuse(pod, reason, e.message(), report).await;
            }
            Err(e) => {
                self.event(
                    pod,
                    EventType::Warning,
                    "ProviderCreateFailed",
                    format!(
                        "Creating the {} instance failed, retrying: {e}",
                        self.provider.name()
                    ),
                );
                return Err(e.into());
            }
        }
        let generation = pod.metadata.generation.unwrap_or_default();
        let first = self.records.update(&r.uid, |rec| {
            rec.generation_sent.replace(generation).is_none()
        });
        self.schedule_token_refresh(pod, &r.uid);
        // A create repeated after REPORT_WAIT (idempotent by UID) is not news for the user.
        if first {
            // What the kubelet would have warned about while still running the pod (a missing
            // image pull secret, skipped envFrom keys), once per pod.
            for warning in warnings {
                tracing::warn!(pod = %r, reason = %warning.reason, "{}", warning.message);
                self.event(pod, EventType::Warning, &warning.reason, warning.message);
            }
            self.event(
                pod,
                EventType::Normal,
                "ProviderCreated",
                format!("Created the pod's {} instance", self.provider.name()),
            );
        }
        self.records
            .update(&r.uid, |rec| rec.created = Some(Instant::now()));
        let instance = self.first_report(&r.uid).await;
        // Until the provider's first report arrives, the pod shows that it is being created.
        self.show_progress(pod, instance.as_ref(), REPORT_WAIT, report)
            .await
    }

    /// A spec the provider can never run: an Event, and the status [`refused_status`] gives.
    async fn refuse(
        &self,
        pod: &Pod,
        reason: &str,
        message: &str,
        report: &mut Report,
    ) -> Result<Action, PodError> {
        self.event(pod, EventType::Warning, reason, message.to_string());
        let now = Timestamp::now();
        let status = refused_status(pod, reason, message, &self.config.node_ip, now);
        self.write_status(pod, status, report).await?;
        Ok(requeue(pod, None, Timestamp::now()))
    }

    /// Write what the pod shows while its instance starts, unless it is held back; the next
    /// reconcile is due when the hold ends, or after `then`.
    async fn show_progress(
        &self,
        pod: &Pod,
        instance: Option<&InstanceStatus>,
        then: Duration,
        report: &mut Report,
    ) -> Result<Action, PodError> {
        let uid = pod.uid().unwrap_or_default();
        let status = desired_status(
            pod,
            instance,
            self.provider.name(),
            &self.config.node_ip,
            "ContainerCreating",
            Timestamp::now(),
        );
        if let Some(wait) = interim_wait(status.phase.as_deref(), self.created_ago(&uid)) {
            return Ok(requeue(pod, Some(wait), Timestamp::now()));
        }
        self.started_events(pod, &status);
        self.write_status(pod, status, report).await?;
        Ok(requeue(pod, Some(then), Timestamp::now()))
    }

    /// Write the status the controller owns, unless the API holds it already.
    async fn write_status(
        &self,
        pod: &Pod,
        status: PodStatus,
        report: &mut Report,
    ) -> Result<(), PodError> {
        let current = pod.status.clone().unwrap_or_default();
        if owned_part(&current) == owned_part(&status) {
            return Ok(());
        }
        let uid = pod.uid().unwrap_or_default();
        let phase = status.phase.clone().unwrap_or_default();
        let sent = status.clone();
        let began = Instant::now();
        let urgent = self.events.urgent();
        let result = patch_status(&self.client, pod, status).await;
        drop(urgent);
        let became_running = phase == "Running" && pod_phase(pod) != Some("Running");
        let ended = is_terminal_phase(Some(&phase));
        report.status_writes.push(StatusWrite {
            took: began.elapsed(),
            at: Instant::now(),
            ok: result.is_ok(),
            became_running,
            phase,
        });
        match result {
            Ok(answer) => {
                if let Some(version) = answer.resource_version() {
                    let status = answer.status.unwrap_or(sent);
                    self.records
                        .update(&uid, |rec| rec.written = Some(Written { version, status }));
                }
                if became_running {
                    self.start_timeline(pod);
                }
                if ended {
                    self.record_cost(pod, Timestamp::now()).await;
                }
                Ok(())
            }
            Err(e) => {
                self.records.update_existing(&uid, |rec| rec.written = None);
                Err(e.into())
            }
        }
    }

    fn schedule_token_refresh(&self, pod: &Pod, uid: &str) {
        if let Some(after) = tokens_valid_for(pod, self.config.token_refresh_interval) {
            let at = Timestamp::now()
                .checked_add(after)
                .unwrap_or_else(|_| Timestamp::now());
            self.records.update(uid, |rec| rec.tokens_due = Some(at));
        }
    }

    /// How long ago this process created the pod's instance.
    fn created_ago(&self, uid: &str) -> Option<Duration> {
        self.records
            .read(uid, |rec| rec.and_then(|rec| rec.created))
            .map(|at| at.elapsed())
    }

    /// The provider's container events (`Unhealthy`, `Killing`) not recorded yet.
    fn container_events(&self, pod: &Pod, instance: &InstanceStatus) {
        let uid = pod.uid().unwrap_or_default();
        let fresh = self.records.update(&uid, |rec| {
            rec.seen_events
                .fresh(self.started, &instance.events)
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        });
        for e in fresh {
            let field_path = e.container.as_deref().map(|c| container_field_path(pod, c));
            let type_ = if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            self.event_at(pod, field_path, type_, &e.reason, e.message);
        }
    }

    /// `Started` for each container that runs now and did not in the API's last status.
    fn started_events(&self, pod: &Pod, desired: &PodStatus) {
        for (name, reason, message) in newly_failing(pod, desired) {
            self.event_at(
                pod,
                Some(container_field_path(pod, &name)),
                EventType::Warning,
                reason,
                message,
            );
        }
        for name in newly_refused_ephemeral(pod, desired) {
            self.event_at(
                pod,
                Some(format!("spec.ephemeralContainers{{{name}}}")),
                EventType::Warning,
                EPHEMERAL_UNSUPPORTED,
                format!("Ephemeral container {name} cannot start: {EPHEMERAL_MESSAGE}"),
            );
        }
        for name in newly_started(pod, desired) {
            self.event_at(
                pod,
                Some(container_field_path(pod, &name)),
                EventType::Normal,
                "Started",
                format!("Started container {name}"),
            );
        }
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
