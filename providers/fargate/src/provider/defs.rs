//! The node's task definitions: one per pod shape (family `vk-<node>-<hash>`), registered on
//! first use, reused, deregistered when unused (see the parent module).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use vk_core::provider::ProviderError;

use crate::client::{Api, AwsClient};
use crate::mapping::PodTask;
use crate::wire::ecs_taskdef::{
    ListTaskDefinitionsRequest, ListTaskDefinitionsResponse, TaskDefinitionRequest,
    TaskDefinitionResponse,
};

#[derive(Default)]
struct Family {
    /// The ACTIVE revision in use.
    arn: Option<String>,
    /// Creates between choosing this family and their RunTask's answer.
    users: usize,
    /// Serialises the family's registration.
    register: Arc<tokio::sync::Mutex<()>>,
}

pub(super) struct Defs {
    prefix: String,
    families: Arc<Mutex<HashMap<String, Family>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A create using a family; dropping it ends the use.
pub(super) struct Use {
    families: Arc<Mutex<HashMap<String, Family>>>,
    family: String,
}

impl Drop for Use {
    fn drop(&mut self) {
        if let Some(f) = lock(&self.families).get_mut(&self.family) {
            f.users = f.users.saturating_sub(1);
        }
    }
}

fn family_of(arn: &str) -> &str {
    let name = arn.rsplit_once(":task-definition/").map_or(arn, |(_, n)| n);
    name.rsplit_once(':').map_or(name, |(f, _)| f)
}

impl Defs {
    pub(super) fn new(prefix: String) -> Self {
        Self {
            prefix,
            families: Arc::default(),
        }
    }

    pub(super) fn start_use(&self, family: &str) -> Use {
        lock(&self.families)
            .entry(family.to_string())
            .or_default()
            .users += 1;
        Use {
            families: self.families.clone(),
            family: family.to_string(),
        }
    }

    /// Drop a revision ECS no longer runs (deregistered behind our back).
    pub(super) fn forget(&self, family: &str) {
        if let Some(f) = lock(&self.families).get_mut(family) {
            f.arn = None;
        }
    }

    /// The ARN of the task's definition, registered if this node has none of its shape.
    pub(super) async fn arn(
        &self,
        client: &AwsClient,
        task: &PodTask,
    ) -> Result<String, ProviderError> {
        let register = {
            let mut families = lock(&self.families);
            let f = families.entry(task.family.clone()).or_default();
            if let Some(arn) = &f.arn {
                return Ok(arn.clone());
            }
            f.register.clone()
        };
        let _one = register.lock().await;
        if let Some(arn) = lock(&self.families)
            .get(&task.family)
            .and_then(|f| f.arn.clone())
        {
            return Ok(arn);
        }
        let answer: TaskDefinitionResponse = client
            .call(Api::Ecs, "RegisterTaskDefinition", &task.definition)
            .await?;
        let arn = answer
            .task_definition
            .map(|d| d.task_definition_arn)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                ProviderError::Transient(
                    "ECS answered RegisterTaskDefinition without a definition".into(),
                )
            })?;
        tracing::info!(family = %task.family, %arn, "task definition registered");
        lock(&self.families)
            .entry(task.family.clone())
            .or_default()
            .arn = Some(arn.clone());
        Ok(arn)
    }

    /// Deregister what no live task uses and no create is about to; on the `first` sweep,
    /// also the node's ACTIVE definitions left from before the start.
    pub(super) async fn sweep(&self, client: &AwsClient, in_use: &HashSet<String>, first: bool) {
        let mut unused: Vec<String> = Vec::new();
        {
            let mut families = lock(&self.families);
            for (name, f) in families.iter_mut() {
                if f.users == 0
                    && !in_use.contains(name)
                    && let Some(arn) = f.arn.take()
                {
                    unused.push(arn);
                }
            }
            families.retain(|_, f| f.users > 0 || f.arn.is_some());
        }
        if first {
            match self.active(client).await {
                Ok(arns) => {
                    let mut families = lock(&self.families);
                    for arn in arns {
                        let family = family_of(&arn).to_string();
                        let used = in_use.contains(&family);
                        let f = families.get(&family);
                        let ours = f.is_some_and(|f| f.arn.as_deref() == Some(arn.as_str()));
                        if ours || unused.contains(&arn) {
                            continue;
                        }
                        if used && f.is_none_or(|f| f.arn.is_none()) {
                            // A live task runs it: reuse it for its shape.
                            families.entry(family).or_default().arn = Some(arn);
                        } else if !used && f.is_none_or(|f| f.users == 0) {
                            unused.push(arn);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listing the node's task definitions failed; stale ones stay registered")
                }
            }
        }
        for arn in unused {
            let result: Result<TaskDefinitionResponse, _> = client
                .call(
                    Api::Ecs,
                    "DeregisterTaskDefinition",
                    &TaskDefinitionRequest {
                        task_definition: arn.clone(),
                        include: Vec::new(),
                    },
                )
                .await;
            match result {
                Ok(_) => tracing::info!(%arn, "unused task definition deregistered"),
                Err(e) => {
                    tracing::warn!(%arn, error = %e, "deregistering an unused task definition failed")
                }
            }
        }
    }

    async fn active(&self, client: &AwsClient) -> Result<Vec<String>, crate::client::FargateError> {
        let mut arns = Vec::new();
        let mut token = None;
        loop {
            let page: ListTaskDefinitionsResponse = client
                .call(
                    Api::Ecs,
                    "ListTaskDefinitions",
                    &ListTaskDefinitionsRequest {
                        // ECS's familyPrefix is a whole family: filter here instead.
                        family_prefix: None,
                        status: Some("ACTIVE".into()),
                        next_token: token,
                        ..Default::default()
                    },
                )
                .await?;
            arns.extend(
                page.task_definition_arns
                    .into_iter()
                    .filter(|a| family_of(a).starts_with(&self.prefix)),
            );
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(arns),
            }
        }
    }
}
