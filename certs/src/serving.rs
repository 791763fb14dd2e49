//! The serving certificate's life: the first one at start-up, then renewal (CSR and
//! self-signed modes) or reloading (files mode) in the background.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable as _};
use jiff::{SignedDuration, Timestamp};
use kube::runtime::events::{Recorder, Reporter};
use rustls::server::ResolvesServerCert;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{ServingCertConfig, ServingCertMode};
use crate::csr::CsrClient;
use crate::material::{CertificateFacts, ServingMaterial, load_pair};
use crate::renewal::{Verdict, assess, renewal_due, sleep_before};
use crate::resolver::ServingCertResolver;
use crate::{CertError, self_signed};

/// How often files mode looks for new files (a Secret volume update, cert-manager renewal).
const FILES_POLL: Duration = Duration::from_secs(30);
/// A certificate issued already due for renewal (a signer that caps lifetimes) must not make
/// the node request certificates in a tight loop.
const MIN_RENEW_INTERVAL: SignedDuration = SignedDuration::from_mins(1);
const RETRY_FIRST: Duration = Duration::from_secs(60);
const RETRY_MAX: Duration = Duration::from_secs(30 * 60);

/// A failed renewal is retried without end: after a minute, doubling up to half an hour.
fn renewal_retries() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(RETRY_FIRST)
        .with_factor(2.0)
        .with_max_delay(RETRY_MAX)
        .without_max_times()
}

/// Every failure but cancellation is worth another try.
fn retryable(err: &CertError) -> bool {
    !matches!(err, CertError::Cancelled)
}

/// The node's kubelet serving certificate, kept current in the background until the
/// cancellation token given to [`ServingCert::start`] fires.
#[derive(Clone, Debug)]
pub struct ServingCert {
    resolver: Arc<ServingCertResolver>,
}

impl ServingCert {
    /// Obtain the first certificate (in CSR mode this may wait for approval until cancelled),
    /// then start rotation or reloading in the background.
    pub async fn start(
        client: kube::Client,
        config: ServingCertConfig,
        cancel: CancellationToken,
    ) -> Result<Self, CertError> {
        config.validate()?;
        let resolver = match config.mode.clone() {
            ServingCertMode::Csr { auto_approve } => {
                let reporter = Reporter {
                    controller: "vk-serverless".into(),
                    instance: Some(config.node_name.clone()),
                };
                let recorder = Recorder::new(client.clone(), reporter);
                let csr = CsrClient::new(client, recorder, &config, auto_approve);
                let (material, due) = match reusable(&csr, &config) {
                    Some(material) => {
                        let due = renewal_due(&material.facts);
                        (material, due)
                    }
                    None => {
                        let material = csr.obtain(&cancel).await?;
                        let due = next_due(&material.facts);
                        (material, due)
                    }
                };
                start_rotation(Renewer::Csr(Box::new(csr)), material, due, cancel)
            }
            ServingCertMode::Files { cert, key } => {
                let material = load_pair(&cert, &key)?;
                report_unfit_file(&cert, &material.facts, &config);
                let resolver = Arc::new(ServingCertResolver::new(material.certified));
                tokio::spawn(watch_files(
                    FileWatch {
                        cert,
                        key,
                        poll: FILES_POLL,
                    },
                    config,
                    resolver.clone(),
                    cancel,
                ));
                resolver
            }
            ServingCertMode::SelfSigned => {
                warn!(
                    node = %config.node_name,
                    "SELF-SIGNED kubelet serving certificate (development only): the apiserver \
                     cannot verify it, so `kubectl logs`/`exec` fail unless the apiserver skips \
                     verification (kubectl logs --insecure-skip-tls-verify-backend); use the CSR \
                     mode or certificate files in any real cluster"
                );
                let material = self_signed::issue(&config)?;
                let due = next_due(&material.facts);
                start_rotation(Renewer::SelfSigned(config), material, due, cancel)
            }
        };
        Ok(Self { resolver })
    }

    /// For the kubelet API's TLS config; always hands out the current certificate.
    pub fn resolver(&self) -> Arc<dyn ResolvesServerCert> {
        self.resolver.clone()
    }

    /// The leaf certificate now served, in PEM.
    pub fn current_pem(&self) -> String {
        self.resolver.current_pem()
    }
}

/// The stored certificate if it may still serve this node; logs why not otherwise.
fn reusable(csr: &CsrClient, config: &ServingCertConfig) -> Option<ServingMaterial> {
    let cert = csr.files.cert();
    let material = match csr.files.load() {
        Ok(Some(material)) => material,
        Ok(None) => {
            info!(dir = %config.dir.display(), "no kubelet serving certificate stored yet; requesting one");
            return None;
        }
        Err(e) => {
            warn!("requesting a new kubelet serving certificate: the stored one is unusable: {e}");
            return None;
        }
    };
    match assess(&material.facts, config, Timestamp::now()) {
        Verdict::Reuse => {
            info!(
                cert = %cert.display(),
                not_after = %material.facts.not_after,
                "reusing the stored kubelet serving certificate"
            );
            Some(material)
        }
        Verdict::Renew(reason) => {
            info!(cert = %cert.display(), "requesting a new kubelet serving certificate: {reason}");
            None
        }
    }
}

/// Where renewed certificates come from.
enum Renewer {
    Csr(Box<CsrClient>),
    SelfSigned(ServingCertConfig),
}

impl Renewer {
    async fn issue(&self, cancel: &CancellationToken) -> Result<ServingMaterial, CertError> {
        match self {
            Self::Csr(csr) => csr.obtain(cancel).await,
            Self::SelfSigned(config) => self_signed::issue(config),
        }
    }
}

fn start_rotation(
    renewer: Renewer,
    material: ServingMaterial,
    due: Timestamp,
    cancel: CancellationToken,
) -> Arc<ServingCertResolver> {
    let resolver = Arc::new(ServingCertResolver::new(material.certified));
    tokio::spawn(rotate(
        renewer,
        resolver.clone(),
        material.facts,
        due,
        cancel,
    ));
    resolver
}

/// Renews at 80% of each certificate's lifetime; the old certificate keeps serving until the
/// new one is in hand, and established connections are never touched.
async fn rotate(
    renewer: Renewer,
    resolver: Arc<ServingCertResolver>,
    mut facts: CertificateFacts,
    mut due: Timestamp,
    cancel: CancellationToken,
) {
    loop {
        let now = Timestamp::now();
        if now < due {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(sleep_before(due, now)) => continue,
            }
        }
        info!(not_after = %facts.not_after, "renewing the kubelet serving certificate");
        let not_after = facts.not_after;
        let renewed = (|| renewer.issue(&cancel))
            .retry(renewal_retries())
            .when(retryable)
            .notify(|e, retry| {
                error!(
                    %not_after,
                    "renewing the kubelet serving certificate failed, retrying in {retry:?}: {e}"
                );
            });
        let renewed = tokio::select! {
            _ = cancel.cancelled() => return,
            renewed = renewed => renewed,
        };
        match renewed {
            Ok(next) => {
                resolver.replace(next.certified);
                facts = next.facts;
                due = next_due(&facts);
                info!(not_after = %facts.not_after, renew_at = %due, "serving the renewed kubelet certificate");
            }
            Err(CertError::Cancelled) => return,
            // Not reached (only cancellation ends the retries); a new round would start.
            Err(e) => {
                error!(not_after = %facts.not_after, "renewing the kubelet serving certificate failed: {e}");
            }
        }
    }
}

/// When to renew a certificate just issued.
fn next_due(facts: &CertificateFacts) -> Timestamp {
    let earliest = Timestamp::now()
        .checked_add(MIN_RENEW_INTERVAL)
        .unwrap_or_else(|_| Timestamp::now());
    renewal_due(facts).max(earliest)
}

/// The two files of files mode and how often to look at them.
pub(crate) struct FileWatch {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub poll: Duration,
}

impl FileWatch {
    fn modified(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        (mtime(&self.cert), mtime(&self.key))
    }
}

/// Reloads the files when either changes. A pair that does not load (one file written, the
/// other not yet) is retried at the next poll while the current certificate keeps serving.
pub(crate) async fn watch_files(
    files: FileWatch,
    config: ServingCertConfig,
    resolver: Arc<ServingCertResolver>,
    cancel: CancellationToken,
) {
    let mut seen = files.modified();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(files.poll) => {}
        }
        let now = files.modified();
        if now == seen {
            continue;
        }
        match load_pair(&files.cert, &files.key) {
            Ok(material) => {
                report_unfit_file(&files.cert, &material.facts, &config);
                resolver.replace(material.certified);
                seen = now;
                info!(
                    cert = %files.cert.display(),
                    not_after = %material.facts.not_after,
                    "reloaded the kubelet serving certificate"
                );
            }
            Err(e) => warn!("keeping the current kubelet serving certificate: {e}"),
        }
    }
}

/// Files mode serves what it is given, but says when the apiserver will refuse it.
fn report_unfit_file(cert: &Path, facts: &CertificateFacts, config: &ServingCertConfig) {
    if let Verdict::Renew(reason) = assess(facts, config, Timestamp::now()) {
        warn!(
            cert = %cert.display(),
            "the kubelet serving certificate may fail the apiserver's verification: {reason}"
        );
    }
}

#[cfg(test)]
#[path = "serving_tests.rs"]
mod tests;
