//! The contract between vk-core and a backend. Controllers own every Kubernetes semantic;
//! a provider turns a [`ResolvedPod`] into a cloud instance and reports [`InstanceStatus`].

pub mod credential_cache;
mod error;
mod exec;
pub mod http;
mod model;
mod names;
pub mod pacing;
mod poll;
mod runtime;
mod secret;
pub mod stdin_pipe;
pub mod terminal_exec;
#[cfg(test)]
pub(crate) mod test_support;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

pub use error::{BoxError, ErrorClass, ProviderError};
pub use exec::{ExecIo, ExecOutcome, TermSize};
pub use model::*;
pub use names::{DnsOption, HostAlias, PodDns};
pub use poll::StatusPoller;
pub use runtime::{
    ContainerSecurity, Lifecycle, LifecycleHandler, PodSecurity, TerminationMessagePolicy,
};
pub use secret::Secret;

/// How status changes reach vk-core.
pub enum StatusSource {
    /// The provider pushes every change on this channel.
    Push(mpsc::Receiver<StatusEvent>),
    /// The provider cannot push: vk-core calls [`Provider::list`] once per interval for all
    /// instances of the node (never once per pod) and derives the changes.
    Poll(Duration),
}

pub type LogStream = BoxStream<'static, Result<Bytes, ProviderError>>;

/// Bytes in both directions: what a forwarded connection is on either side.
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> ByteStream for T {}

/// The client's side of one forwarded connection (`kubectl port-forward`): reading yields what
/// the client sends until it closes its side (EOF); shutting down the write side tells the
/// client the pod's side closed.
pub type PortForwardStream = Box<dyn ByteStream>;

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// Short name used in labels, taints and container ids (`mock`, `eci`).
    fn name(&self) -> &str;

    /// Start an instance for the pod. Idempotent by pod UID: calling it again for a pod that
    /// already has an instance must not create a second one.
    async fn create(&self, pod: &ResolvedPod) -> Result<(), ProviderError>;

    /// Apply to a running instance what it can change: images, and the contents of its file
    /// volumes (re-issued service-account tokens, edited configMaps and secrets). `pod` is a
    /// complete new resolution; a running container keeps the environment it started with.
    async fn update(&self, pod: &ResolvedPod) -> Result<(), ProviderError>;

    /// Stop and remove the instance. Deleting an unknown instance is not an error.
    async fn delete(&self, pod: &PodRef, grace: Duration) -> Result<(), ProviderError>;

    /// All instances of this node, and only of this node.
    async fn list(&self) -> Result<Vec<InstanceStatus>, ProviderError>;

    /// The same instances as `list`, each handed to `each` as it is read. A provider that
    /// reads its cloud page by page overrides it, so that the status poll of a node with
    /// thousands of pods never holds all their statuses at once; by default, `list`'s answer.
    /// On an error, the instances handed out so far were read; the rest are not known.
    async fn list_each(
        &self,
        each: &mut (dyn FnMut(InstanceStatus) + Send),
    ) -> Result<(), ProviderError> {
        self.list().await?.into_iter().for_each(each);
        Ok(())
    }

    /// Called once at start-up.
    fn status_source(&self) -> StatusSource;

    /// A container's log, streamed; with `follow` the stream stays open while the container runs.
    async fn logs(
        &self,
        pod: &PodRef,
        container: &str,
        opts: &LogOptions,
    ) -> Result<LogStream, ProviderError>;

    /// What the node offers to the scheduler.
    fn capacity(&self) -> NodeCapacity;

    /// Is the backend reachable? A failure turns the node NotReady.
    async fn ping(&self) -> Result<(), ProviderError>;

    /// Conditions of the backend the Node should show besides `Ready`, asked at each status
    /// sync (cheap: no cloud call). A type once reported should stay reported, flipping its
    /// status, since a condition left out of a later sync is not removed from the Node.
    fn node_conditions(&self) -> Vec<ProviderCondition> {
        Vec::new()
    }

    /// Current usage of the node's pods.
    async fn stats(&self) -> Result<Vec<PodStats>, ProviderError>;

    /// Runs `command` in a running container with the client's streams (`kubectl exec`) and
    /// reports how it ended. `Err` means it could not be started: an unknown pod or container
    /// is `NotFound`, a container that is not running is `InvalidSpec`. When the client goes
    /// away (stdin ends and stdout/stderr writes fail, or the future is dropped) the command
    /// must be stopped: nothing may outlive the call.
    async fn exec(
        &self,
        pod: &PodRef,
        container: &str,
        command: Vec<String>,
        io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError>;

    /// Connects `stream` to `port` of the pod's network namespace (`kubectl port-forward`) and
    /// copies both ways until the pod's side closes or the client goes away (reads fail, or the
    /// future is dropped). `Err` when the connection could not be made (nothing listens, an
    /// unknown or stopped pod); its message reaches the client on the error stream.
    /// [`crate::stream::portforward::splice`] does the copying the way the kubelet does.
    async fn port_forward(
        &self,
        pod: &PodRef,
        port: u16,
        stream: PortForwardStream,
    ) -> Result<(), ProviderError> {
        let _ = (port, stream);
        Err(ProviderError::Unsupported(format!(
            "port-forward to pod {pod} is not supported by the {} provider",
            self.name()
        )))
    }

    /// Joins the running container's main process with the client's streams (`kubectl
    /// attach`): the client's stdin goes to the process, its output (stdout, and stderr unless
    /// `io.tty`) comes back, terminal sizes resize its terminal. Returns when the client
    /// detaches (stdin ends or its output writes fail, or the future is dropped) or the process
    /// ends; detaching never stops the container. Errors as for [`Provider::exec`].
    async fn attach(
        &self,
        pod: &PodRef,
        container: &str,
        io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        let _ = (pod, container, io);
        Err(ProviderError::Unsupported(format!(
            "attach is not supported by the {} provider",
            self.name()
        )))
    }
}
