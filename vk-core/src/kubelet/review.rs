//! The API server as the [`Reviewer`]: a TokenReview per unknown bearer token, a
//! SubjectAccessReview per undecided (user, verb, subresource). Needs RBAC `create` on
//! `tokenreviews` and `subjectaccessreviews` (the `system:auth-delegator` ClusterRole).

use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::auth::{AuthError, ClientIdentity, KubeletAuth, NodeAccess, Reviewer};

/// Who reviews the kubelet API's requests under `auth`: the API server (TokenReview and
/// SubjectAccessReview), a given reviewer, or nobody.
pub(crate) fn reviewer_for(auth: KubeletAuth) -> Option<std::sync::Arc<dyn Reviewer>> {
    match auth {
        KubeletAuth::Webhook { client } => Some(std::sync::Arc::new(KubeReviewer::new(client))),
        KubeletAuth::Reviewer(reviewer) => Some(reviewer),
        KubeletAuth::DisabledForDev => None,
    }
}

pub struct KubeReviewer {
    client: kube::Client,
}

impl KubeReviewer {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Reviewer for KubeReviewer {
    async fn review_token(&self, token: &str) -> Result<Option<ClientIdentity>, AuthError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        let Some(status) = reviewed.status else {
            return Ok(None);
        };
        if status.authenticated != Some(true) {
            return Ok(None);
        }
        let Some(user) = status.user else {
            return Ok(None);
        };
        Ok(user
            .username
            .filter(|name| !name.is_empty())
            .map(|name| ClientIdentity {
                user: name,
                groups: user.groups.unwrap_or_default(),
                uid: user.uid,
                extra: user.extra.unwrap_or_default(),
            }))
    }

    async fn review_access(
        &self,
        who: &ClientIdentity,
        access: &NodeAccess,
    ) -> Result<bool, AuthError> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(who.user.clone()),
                groups: Some(who.groups.clone()),
                uid: who.uid.clone(),
                extra: (!who.extra.is_empty()).then(|| who.extra.clone()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(access.verb.to_string()),
                    group: Some(String::new()),
                    version: Some("v1".to_string()),
                    resource: Some("nodes".to_string()),
                    subresource: Some(access.subresource.to_string()),
                    name: Some(access.node_name.clone()),
                    ..ResourceAttributes::default()
                }),
                non_resource_attributes: None,
            },
            ..SubjectAccessReview::default()
        };
        let reviewed = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await?;
        Ok(reviewed.status.is_some_and(|s| s.allowed))
    }
}
