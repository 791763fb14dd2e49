//! Getting a serving certificate from the cluster's kubelet-serving signer: create the
//! CertificateSigningRequest, tell the operator how to approve it, wait for the certificate.

use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus,
};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::watcher;
use kube::{Api, Resource};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::CertError;
use crate::config::ServingCertConfig;
use crate::material::{CertificateFiles, ServingMaterial};
use crate::renewal::{Verdict, assess};
use crate::request::{KUBELET_SERVING_SIGNER, ServingCsr};

/// How often the operator is reminded of a CSR that waits for approval.
const REMIND_EVERY: Duration = Duration::from_secs(30);
const APPROVE_REASON: &str = "VkAutoApproved";

/// Requests serving certificates for one node and keeps them in its certificate directory.
#[derive(Clone)]
pub(crate) struct CsrClient {
    api: Api<CertificateSigningRequest>,
    recorder: Recorder,
    node: ObjectReference,
    config: ServingCertConfig,
    pub files: CertificateFiles,
    auto_approve: bool,
}

impl CsrClient {
    pub fn new(
        client: kube::Client,
        recorder: Recorder,
        config: &ServingCertConfig,
        auto_approve: bool,
    ) -> Self {
        Self {
            api: Api::all(client),
            recorder,
            node: node_reference(&config.node_name),
            config: config.clone(),
            files: CertificateFiles {
                dir: config.dir.clone(),
            },
            auto_approve,
        }
    }

    /// A new certificate from the signer, stored in the certificate directory. Waits for
    /// approval until `cancel` fires.
    pub async fn obtain(&self, cancel: &CancellationToken) -> Result<ServingMaterial, CertError> {
        let csr = self.pending_csr()?;
        let object = self.submit(&csr).await?;
        // Known up front so the first reminder does not ask for an approval already given.
        let approved = if self.auto_approve {
            self.approve(object).await?;
            true
        } else {
            is_approved(&object)
        };
        let certificate = match self.wait_for_certificate(&csr.name, approved, cancel).await {
            Ok(pem) => pem,
            Err(e) => return Err(self.failed(e).await),
        };
        let material = ServingMaterial::from_pem(
            &certificate,
            &format!(
                "status.certificate of CertificateSigningRequest {}",
                csr.name
            ),
            csr.key_pem.as_bytes(),
            &self.files.pending_key().display().to_string(),
        )?;
        // A request resumed from an earlier run may have been issued long ago, or for names
        // the node no longer has.
        if let Verdict::Renew(reason) = assess(&material.facts, &self.config, Timestamp::now()) {
            let what = format!(
                "the certificate issued for CertificateSigningRequest {}",
                csr.name
            );
            let e = CertError::invalid(what, format!("unusable because {reason}"));
            return Err(self.failed(e).await);
        }
        self.files.promote(&certificate)?;
        info!(
            csr = %csr.name,
            not_after = %material.facts.not_after,
            "kubelet serving certificate issued"
        );
        let note = format!(
            "CertificateSigningRequest {} issued a serving certificate valid until {}",
            csr.name, material.facts.not_after
        );
        self.publish(EventType::Normal, "ServingCertificateIssued", note)
            .await;
        Ok(material)
    }

    /// Tells the operator about a request that gave no usable certificate, and forgets its
    /// key when the request is settled, so the next attempt starts over with a new one.
    async fn failed(&self, e: CertError) -> CertError {
        let settled = matches!(
            e,
            CertError::CsrDenied { .. }
                | CertError::CsrFailed { .. }
                | CertError::CsrDeleted { .. }
                | CertError::InvalidCertificate { .. }
        );
        if settled && let Err(discard) = self.files.discard_pending_key() {
            warn!("{discard}");
        }
        // A shutdown is no failure worth an Event.
        if !matches!(e, CertError::Cancelled) {
            let note = e.to_string();
            self.publish(EventType::Warning, "ServingCertificateFailed", note)
                .await;
        }
        e
    }

    /// The request for the pending key when a previous run left one, else for a fresh key.
    fn pending_csr(&self) -> Result<ServingCsr, CertError> {
        if let Some(pem) = self.files.load_pending_key()? {
            match ServingCsr::new(&self.config, Some(&pem)) {
                Ok(csr) => return Ok(csr),
                Err(e) => warn!(
                    key = %self.files.pending_key().display(),
                    "ignoring an unreadable pending serving key: {e}"
                ),
            }
        }
        let csr = ServingCsr::new(&self.config, None)?;
        self.files.store_pending_key(&csr.key_pem)?;
        Ok(csr)
    }

    async fn submit(&self, csr: &ServingCsr) -> Result<CertificateSigningRequest, CertError> {
        let name = &csr.name;
        match self
            .api
            .create(&PostParams::default(), &csr.object(&self.config))
            .await
        {
            Ok(created) => {
                info!(csr = %name, "created CertificateSigningRequest for the kubelet serving certificate");
                Ok(created)
            }
            // Created by an earlier run with the same pending key: wait for that one.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let existing = self.api.get(name).await.map_err(|e| {
                    CertError::kube(format!("reading CertificateSigningRequest {name}"), e)
                })?;
                if existing.spec.signer_name != KUBELET_SERVING_SIGNER {
                    return Err(CertError::CsrConflict {
                        name: name.clone(),
                        signer: existing.spec.signer_name,
                        key: self.files.pending_key(),
                    });
                }
                info!(csr = %name, "resuming CertificateSigningRequest from an earlier run");
                Ok(existing)
            }
            Err(e) => Err(CertError::kube(
                format!("creating CertificateSigningRequest {name}"),
                e,
            )),
        }
    }

    /// Development shortcut: approve our own request, as `kubectl certificate approve` would.
    async fn approve(&self, mut csr: CertificateSigningRequest) -> Result<(), CertError> {
        let name = csr.metadata.name.clone().unwrap_or_default();
        let status = csr
            .status
            .get_or_insert_with(CertificateSigningRequestStatus::default);
        if condition(status, "Approved").is_some() {
            return Ok(());
        }
        warn!(
            csr = %name,
            "auto-approving the kubelet serving CertificateSigningRequest (development only: \
             the approve permission this needs lets its holder mint a serving certificate for \
             any node)"
        );
        status
            .conditions
            .get_or_insert_with(Vec::new)
            .push(CertificateSigningRequestCondition {
                type_: "Approved".into(),
                status: "True".into(),
                reason: Some(APPROVE_REASON.into()),
                message: Some(
                    "Approved by vk-serverless (serving certificate auto-approval).".into(),
                ),
                last_update_time: Some(Time(Timestamp::now())),
                ..CertificateSigningRequestCondition::default()
            });
        self.api
            .patch_approval(&name, &PatchParams::default(), &Patch::Merge(&csr))
            .await
            .map_err(|e| {
                CertError::kube(format!("approving CertificateSigningRequest {name}"), e)
            })?;
        Ok(())
    }

    async fn wait_for_certificate(
        &self,
        name: &str,
        mut approved: bool,
        cancel: &CancellationToken,
    ) -> Result<Vec<u8>, CertError> {
        let selector = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut events = watcher(self.api.clone(), selector)
            .default_backoff()
            .boxed();
        let mut reminder = tokio::time::interval(REMIND_EVERY);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Err(CertError::Cancelled),
                _ = reminder.tick() => self.remind(name, approved).await,
                event = events.next() => match event {
                    Some(Ok(watcher::Event::Apply(csr) | watcher::Event::InitApply(csr))) => {
                        if let Some(certificate) = issued_certificate(&csr)? {
                            return Ok(certificate);
                        }
                        approved = is_approved(&csr);
                    }
                    Some(Ok(watcher::Event::Delete(_))) => {
                        return Err(CertError::CsrDeleted { name: name.to_owned() });
                    }
                    Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => {}
                    // The backoff paces retries; a lasting outage shows in the reminders.
                    Some(Err(e)) => warn!(csr = %name, "watching the CertificateSigningRequest: {e}"),
                    None => return Err(CertError::CsrDeleted { name: name.to_owned() }),
                },
            }
        }
    }

    async fn remind(&self, name: &str, approved: bool) {
        if approved {
            info!(csr = %name, "CertificateSigningRequest approved; waiting for the kubelet-serving signer to issue the certificate");
            return;
        }
        let note = format!(
            "The kubelet serving certificate waits for approval of CertificateSigningRequest \
             {name}. Run: kubectl certificate approve {name}"
        );
        warn!(csr = %name, "{note}");
        self.publish(EventType::Warning, "ServingCertificatePending", note)
            .await;
    }

    /// Events are for the operator; failing to publish one never stops the certificate flow.
    async fn publish(&self, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "RequestServingCertificate".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &self.node).await {
            warn!(node = %self.config.node_name, "publishing Event {reason}: {e}");
        }
    }
}

/// The Node as kubelets reference it in Events: `uid` set to the node name, which is what
/// `kubectl describe node` looks for next to the real UID.
fn node_reference(node_name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: Some(node_name.into()),
        uid: Some(node_name.into()),
        ..ObjectReference::default()
    }
}

fn is_approved(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .is_some_and(|s| condition(s, "Approved").is_some())
}

fn condition<'a>(
    status: &'a CertificateSigningRequestStatus,
    type_: &str,
) -> Option<&'a CertificateSigningRequestCondition> {
    status
        .conditions
        .iter()
        .flatten()
        // An empty status means True: the field was optional before Kubernetes 1.19.
        .find(|c| c.type_ == type_ && (c.status.is_empty() || c.status == "True"))
}

/// The certificate once issued; an error once the request can no longer succeed.
fn issued_certificate(csr: &CertificateSigningRequest) -> Result<Option<Vec<u8>>, CertError> {
    let name = csr.meta().name.clone().unwrap_or_default();
    let Some(status) = &csr.status else {
        return Ok(None);
    };
    let explain = |c: &CertificateSigningRequestCondition| {
        (
            c.reason.clone().unwrap_or_else(|| "none given".into()),
            c.message.clone().unwrap_or_else(|| "none given".into()),
        )
    };
    if let Some(denied) = condition(status, "Denied") {
        let (reason, message) = explain(denied);
        return Err(CertError::CsrDenied {
            name,
            reason,
            message,
        });
    }
    if let Some(failed) = condition(status, "Failed") {
        let (reason, message) = explain(failed);
        return Err(CertError::CsrFailed {
            name,
            reason,
            message,
        });
    }
    Ok(status
        .certificate
        .as_ref()
        .filter(|c| !c.0.is_empty())
        .map(|c| c.0.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use kube::api::ObjectMeta;

    fn csr(conditions: Vec<(&str, &str)>, certificate: &[u8]) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: ObjectMeta {
                name: Some("vk-serving-n-abc".into()),
                ..ObjectMeta::default()
            },
            status: Some(CertificateSigningRequestStatus {
                certificate: Some(ByteString(certificate.to_vec())),
                conditions: Some(
                    conditions
                        .into_iter()
                        .map(|(type_, status)| CertificateSigningRequestCondition {
                            type_: type_.into(),
                            status: status.into(),
                            reason: Some("SomeReason".into()),
                            message: Some("some message".into()),
                            ..CertificateSigningRequestCondition::default()
                        })
                        .collect(),
                ),
            }),
            ..CertificateSigningRequest::default()
        }
    }

    #[test]
    fn pending_and_approved_without_certificate_keep_waiting() {
        assert_eq!(
            issued_certificate(&CertificateSigningRequest::default()).unwrap(),
            None
        );
        assert_eq!(issued_certificate(&csr(vec![], b"")).unwrap(), None);
        assert_eq!(
            issued_certificate(&csr(vec![("Approved", "True")], b"")).unwrap(),
            None
        );
    }

    #[test]
    fn issued_certificate_is_returned() {
        let got = issued_certificate(&csr(vec![("Approved", "True")], b"PEM")).unwrap();
        assert_eq!(got.as_deref(), Some(&b"PEM"[..]));
    }

    #[test]
    fn denied_and_failed_name_the_reason() {
        let denied = issued_certificate(&csr(vec![("Denied", "True")], b"")).unwrap_err();
        let text = denied.to_string();
        assert!(
            text.contains("vk-serving-n-abc") && text.contains("SomeReason"),
            "{text}"
        );
        assert!(matches!(denied, CertError::CsrDenied { .. }));
        let failed = issued_certificate(&csr(vec![("Approved", "True"), ("Failed", "")], b""));
        assert!(matches!(failed, Err(CertError::CsrFailed { .. })));
        // A condition that is explicitly not true does not settle the request.
        assert_eq!(
            issued_certificate(&csr(vec![("Denied", "False")], b"")).unwrap(),
            None
        );
    }

    #[test]
    fn node_reference_matches_kubectl_describe_node() {
        let node = node_reference("vk-1");
        assert_eq!(node.kind.as_deref(), Some("Node"));
        assert_eq!(node.uid.as_deref(), Some("vk-1"));
        assert_eq!(node.namespace, None);
    }
}
