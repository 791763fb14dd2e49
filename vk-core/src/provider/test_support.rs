//! A provider for component tests: records every call, answers the rest plainly.

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{
    ExecIo, ExecOutcome, InstanceStatus, LogOptions, LogStream, NodeCapacity, PodRef, PodStats,
    Provider, ProviderError, ResolvedPod, StatusSource,
};

/// Records every call; `update` fails while `failing_updates` is above zero, `list` while
/// `failing_lists` is (and counts its calls in `lists`).
#[derive(Default)]
pub(crate) struct ScriptedProvider {
    calls: StdMutex<Vec<String>>,
    updates: StdMutex<Vec<ResolvedPod>>,
    pub(crate) failing_updates: AtomicU32,
    pub(crate) failing_lists: AtomicU32,
    /// `list` calls so far.
    pub(crate) lists: AtomicU32,
    /// What `list` answers (nothing unless set).
    pub(crate) listed: StdMutex<Vec<InstanceStatus>>,
    /// Called by `list` before it answers (what happens while a listing is under way).
    #[allow(clippy::type_complexity)]
    pub(crate) while_listing: StdMutex<Option<Box<dyn FnMut() + Send>>>,
}

impl ScriptedProvider {
    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    pub(crate) fn updates(&self) -> Vec<ResolvedPod> {
        self.updates.lock().unwrap().clone()
    }
}

#[async_trait]
impl Provider for ScriptedProvider {
    fn name(&self) -> &str {
        "scripted"
    }
    async fn create(&self, pod: &ResolvedPod) -> Result<(), ProviderError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("create {}", pod.pod));
        Ok(())
    }
    async fn update(&self, pod: &ResolvedPod) -> Result<(), ProviderError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("update {}", pod.pod));
        let failing = self.failing_updates.load(Ordering::SeqCst);
        if failing > 0 {
            self.failing_updates.store(failing - 1, Ordering::SeqCst);
            return Err(ProviderError::Transient("injected".into()));
        }
        self.updates.lock().unwrap().push(pod.clone());
        Ok(())
    }
    async fn delete(&self, pod: &PodRef, grace: Duration) -> Result<(), ProviderError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("delete {pod} grace={}s", grace.as_secs()));
        Ok(())
    }
    async fn list(&self) -> Result<Vec<InstanceStatus>, ProviderError> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        let failing = self.failing_lists.load(Ordering::SeqCst);
        if failing > 0 {
            self.failing_lists.store(failing - 1, Ordering::SeqCst);
            return Err(ProviderError::Transient("injected".into()));
        }
        if let Some(meanwhile) = self.while_listing.lock().unwrap().as_mut() {
            meanwhile();
        }
        Ok(self.listed.lock().unwrap().clone())
    }
    fn status_source(&self) -> StatusSource {
        StatusSource::Poll(Duration::from_secs(3600))
    }
    async fn logs(&self, _: &PodRef, _: &str, _: &LogOptions) -> Result<LogStream, ProviderError> {
        Err(ProviderError::Unsupported("logs".into()))
    }
    fn capacity(&self) -> NodeCapacity {
        NodeCapacity {
            cpu_millis: 1000,
            memory_bytes: 1 << 30,
            pods: 10,
            ephemeral_storage_bytes: 1 << 30,
        }
    }
    async fn ping(&self) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn stats(&self) -> Result<Vec<PodStats>, ProviderError> {
        Ok(Vec::new())
    }

    async fn exec(
        &self,
        _pod: &PodRef,
        _container: &str,
        _command: Vec<String>,
        _io: ExecIo,
    ) -> Result<ExecOutcome, ProviderError> {
        Err(ProviderError::Unsupported(
            "the scripted provider does not exec".into(),
        ))
    }
}
