//! The node's groups as ARM lists them: all pages of the resource group, the instance views
//! a listing leaves out read with a capped number of GETs (see the parent module), and the
//! containers' working directories (for exec) from the commands the groups run.

use std::collections::HashMap;

use futures::StreamExt as _;
use hyper::Method;
use tokio::time::Instant;
use vk_core::provider::{PodRef, ProviderError};

use super::{AciProvider, lock};
use crate::client::{AciError, Kind};
use crate::pod::tags;
use crate::wire::{self, ContainerGroup, ContainerGroupList, paths};

pub(super) struct Detail {
    at: Instant,
    provisioning: Option<String>,
    group: ContainerGroup,
    /// Every container terminated and the group will not restart them: never read again.
    settled: bool,
}

impl AciProvider {
    pub(super) fn pod_of(group: &ContainerGroup) -> Option<PodRef> {
        let tag = |k: &str| group.tags.get(k).cloned();
        Some(PodRef {
            uid: tag(tags::POD_UID)?,
            namespace: tag(tags::NAMESPACE)?,
            name: tag(tags::POD_NAME)?,
        })
    }

    /// Every group of the resource group, all pages.
    pub async fn all_groups(&self) -> Result<Vec<ContainerGroup>, ProviderError> {
        let path = paths::groups_in_resource_group(
            &self.client.subscription_id,
            &self.client.resource_group,
        );
        let mut url = self.client.url(&path, &[]);
        let mut groups = Vec::new();
        loop {
            let (page, _) = self
                .client
                .json::<ContainerGroupList>(Method::GET, &url, None::<&()>, Kind::Read)
                .await?;
            groups.extend(page.value);
            match page.next_link.filter(|l| !l.is_empty()) {
                Some(next) => url = next,
                None => return Ok(groups),
            }
        }
    }

    pub(super) async fn get_group(&self, name: &str) -> Result<Option<ContainerGroup>, AciError> {
        let url = self.client.url(&self.client.group_path(name), &[]);
        match self
            .client
            .json::<ContainerGroup>(Method::GET, &url, None::<&()>, Kind::Read)
            .await
        {
            Ok((g, _)) => Ok(Some(g)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn has_view(group: &ContainerGroup) -> bool {
        let p = &group.properties;
        p.instance_view.is_some()
            || p.containers
                .iter()
                .any(|c| c.properties.instance_view.is_some())
    }

    fn settled(group: &ContainerGroup) -> bool {
        let p = &group.properties;
        let state = p.instance_view.as_ref().and_then(|v| v.state.as_deref());
        matches!(
            state,
            Some(
                wire::group_state::SUCCEEDED
                    | wire::group_state::FAILED
                    | wire::group_state::STOPPED
            )
        ) || p.provisioning_state.as_deref().is_some_and(|s| {
            matches!(
                s,
                wire::provisioning_state::FAILED | wire::provisioning_state::CANCELED
            )
        })
    }

    /// Instance views for the listed groups that lack one, under the per-listing budget.
    pub(super) async fn fill_views(&self, groups: &mut [ContainerGroup]) {
        let mut wanted: Vec<(u8, Instant, String)> = Vec::new();
        {
            let details = lock(&self.details);
            for g in groups.iter().filter(|g| !Self::has_view(g)) {
                let name = g.name.clone().unwrap_or_default();
                match details.get(&name) {
                    None => wanted.push((0, Instant::now(), name)),
                    Some(d) if d.settled => {}
                    Some(d) if d.provisioning != g.properties.provisioning_state => {
                        wanted.push((1, d.at, name))
                    }
                    Some(d) => wanted.push((2, d.at, name)),
                }
            }
        }
        wanted.sort();
        wanted.truncate(self.config.detail_reads_per_list);
        let fetched: Vec<(String, Result<Option<ContainerGroup>, AciError>)> =
            futures::stream::iter(wanted)
                .map(|(_, _, name)| async move {
                    let r = self.get_group(&name).await;
                    (name, r)
                })
                .buffer_unordered(4)
                .collect()
                .await;
        let mut details = lock(&self.details);
        for (name, result) in fetched {
            match result {
                Ok(Some(group)) => {
                    details.insert(
                        name,
                        Detail {
                            at: Instant::now(),
                            provisioning: group.properties.provisioning_state.clone(),
                            settled: Self::settled(&group),
                            group,
                        },
                    );
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(group = %name, error = %e, "reading a group's instance view failed; keeping the last one")
                }
            }
        }
        for g in groups.iter_mut().filter(|g| !Self::has_view(g)) {
            if let Some(d) = details.get(g.name.as_deref().unwrap_or_default()) {
                let tags = std::mem::take(&mut g.tags);
                *g = d.group.clone();
                g.tags = tags;
            }
        }
    }

    /// Each container's working directory, from the `cd "$0"` wrapper of
    /// [`crate::mapping`] in the commands the listed groups run.
    pub(super) fn note_work_dirs(&self, groups: &[ContainerGroup]) {
        let mut dirs = lock(&self.work_dirs);
        dirs.clear();
        for g in groups {
            let Some(name) = &g.name else { continue };
            for c in &g.properties.containers {
                if let [sh, dash_c, script, dir, ..] = c.properties.command.as_slice()
                    && sh == "/bin/sh"
                    && dash_c == "-c"
                    && script.starts_with("cd \"$0\" && ")
                {
                    dirs.insert((name.clone(), c.name.clone()), dir.clone());
                }
            }
        }
    }

    /// The container's working directory, when its group was listed with one.
    pub(super) fn work_dir(&self, group: &str, container: &str) -> Option<String> {
        lock(&self.work_dirs)
            .get(&(group.to_string(), container.to_string()))
            .cloned()
    }
}

/// Group name and container -> working directory.
pub(super) type WorkDirs = HashMap<(String, String), String>;
