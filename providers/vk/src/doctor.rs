//! `vk doctor`: what an operator runs, with vk's own config, when the virtual node does not
//! work. Each check says what it found and, when it fails, what to do; the report's exit code is
//! non-zero when anything failed. Nothing here changes the cluster or the cloud.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, ListParams, PostParams};
use vk_core::node::{LEASE_DURATION_SECONDS, LEASE_NAMESPACE};
use vk_core::provider::Provider;

use crate::doctor_cloud::EciAccount;
use crate::node_set::CloudPlacement;
pub use crate::outcome::Outcome;

/// One API permission vk needs: (API group, resource, verb, namespace or cluster-wide), as
/// `manifests/base/rbac.yaml` grants them (a test keeps the two equal).
pub const PERMISSIONS: &[(&str, &str, &str, Option<&str>)] = &[
    ("", "nodes", "get", None),
    ("", "nodes", "list", None),
    ("", "nodes", "watch", None),
    ("", "nodes", "create", None),
    ("", "nodes", "patch", None),
    ("", "nodes/status", "patch", None),
    ("", "pods", "list", None),
    ("", "pods", "watch", None),
    ("", "pods", "delete", None),
    ("", "pods/status", "patch", None),
    ("events.k8s.io", "events", "create", None),
    ("events.k8s.io", "events", "patch", None),
    ("", "secrets", "get", None),
    ("", "secrets", "list", None),
    ("", "secrets", "watch", None),
    ("", "configmaps", "get", None),
    ("", "configmaps", "list", None),
    ("", "configmaps", "watch", None),
    ("", "services", "get", None),
    ("", "services", "list", None),
    ("", "services", "watch", None),
    ("", "serviceaccounts/token", "create", None),
    (
        "certificates.k8s.io",
        "certificatesigningrequests",
        "get",
        None,
    ),
    (
        "certificates.k8s.io",
        "certificatesigningrequests",
        "list",
        None,
    ),
    (
        "certificates.k8s.io",
        "certificatesigningrequests",
        "watch",
        None,
    ),
    (
        "certificates.k8s.io",
        "certificatesigningrequests",
        "create",
        None,
    ),
    ("authentication.k8s.io", "tokenreviews", "create", None),
    (
        "authorization.k8s.io",
        "subjectaccessreviews",
        "create",
        None,
    ),
    ("eci.alibabacloud.com", "imagecaches", "get", None),
    ("eci.alibabacloud.com", "imagecaches", "list", None),
    ("eci.alibabacloud.com", "imagecaches", "watch", None),
    ("eci.alibabacloud.com", "imagecaches", "patch", None),
    ("eci.alibabacloud.com", "imagecaches", "create", None),
    ("eci.alibabacloud.com", "imagecaches", "delete", None),
    ("eci.alibabacloud.com", "imagecaches/status", "patch", None),
    (
        "coordination.k8s.io",
        "leases",
        "get",
        Some(LEASE_NAMESPACE),
    ),
    (
        "coordination.k8s.io",
        "leases",
        "create",
        Some(LEASE_NAMESPACE),
    ),
    (
        "coordination.k8s.io",
        "leases",
        "update",
        Some(LEASE_NAMESPACE),
    ),
];

/// With leader election on, also these, in the leader Lease's namespace (`manifests/base`
/// grants them in vk-system).
pub const LEADER_PERMISSIONS: &[(&str, &str, &str)] = &[
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub outcome: Outcome,
}

/// Every check, in the order they ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.checks
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Fail { .. }))
    }

    fn push(&mut self, name: &'static str, outcome: Outcome) {
        self.checks.push(Check { name, outcome });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            match &c.outcome {
                Outcome::Ok(found) => writeln!(f, "ok    {:<14} {found}", c.name)?,
                Outcome::Warn { found, fix } => {
                    writeln!(f, "warn  {:<14} {found}", c.name)?;
                    writeln!(f, "      {:<14} fix: {fix}", "")?;
                }
                Outcome::Fail { found, fix } => {
                    writeln!(f, "FAIL  {:<14} {found}", c.name)?;
                    writeln!(f, "      {:<14} fix: {fix}", "")?;
                }
            }
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail { .. }))
            .count();
        if failed == 0 {
            write!(f, "all {} checks passed", self.checks.len())
        } else {
            write!(f, "{failed} of {} checks failed", self.checks.len())
        }
    }
}

/// One virtual node of the config: its name, provider and cloud placement.
pub struct DoctorNode {
    pub name: String,
    pub provider: Arc<dyn Provider>,
    pub placement: CloudPlacement,
}

/// What the checks look at: vk's Kubernetes client (its own identity), its nodes, their
/// providers, and (eci) the cloud account.
pub struct Doctor {
    pub client: kube::Client,
    pub nodes: Vec<DoctorNode>,
    /// `csr` mode: the serving certificate comes from a kubelet-serving CSR.
    pub serving_cert_from_csr: bool,
    /// eci: the account's network and quota are checked too.
    pub cloud: Option<EciAccount>,
    /// With leader election: the namespace of the leader Lease.
    pub leader_namespace: Option<String>,
}

impl Doctor {
    pub async fn run(&self) -> Report {
        let mut report = Report::default();
        let reachable = self.api(&mut report).await;
        if reachable {
            report.push("rbac", self.rbac().await);
            for node in &self.nodes {
                report.push("node", self.node(&node.name).await);
                if self.serving_cert_from_csr {
                    report.push("serving-cert", self.serving_cert(&node.name).await);
                }
            }
            report.push("client-ca", self.client_ca().await);
        }
        // The nodes share one account: its credentials are checked once.
        let Some(first) = self.nodes.first() else {
            return report;
        };
        let cloud = self.cloud(first.provider.as_ref()).await;
        let cloud_ok = matches!(cloud, Outcome::Ok(_));
        report.push("cloud", cloud);
        if let (Some(account), true) = (&self.cloud, cloud_ok) {
            for node in &self.nodes {
                for (name, outcome) in account.network(&node.name, &node.placement).await {
                    report.push(name, outcome);
                }
            }
            let advertised = self
                .nodes
                .iter()
                .map(|n| n.provider.capacity().cpu_millis)
                .sum();
            report.push("quota", account.quota(advertised, self.nodes.len()).await);
        }
        report
    }

    async fn api(&self, report: &mut Report) -> bool {
        match self.client.apiserver_version().await {
            Ok(v) => {
                report.push(
                    "api",
                    Outcome::Ok(format!("the API server answers ({})", v.git_version)),
                );
                true
            }
            Err(e) => {
                report.push(
                    "api",
                    Outcome::Fail {
                        found: format!("the API server cannot be reached: {e}"),
                        fix: "check --kubeconfig (or the in-cluster ServiceAccount) and that the API server's address is reachable from here".into(),
                    },
                );
                false
            }
        }
    }

    async fn rbac(&self) -> Outcome {
        let reviews: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
        let mut denied = Vec::new();
        let leader = self
            .leader_namespace
            .as_deref()
            .map_or(&[][..], |_| LEADER_PERMISSIONS);
        let permissions: Vec<_> = PERMISSIONS
            .iter()
            .copied()
            .chain(
                leader
                    .iter()
                    .map(|(g, r, v)| (*g, *r, *v, self.leader_namespace.as_deref())),
            )
            .collect();
        for (group, resource, verb, namespace) in &permissions {
            let (resource, subresource) = match resource.split_once('/') {
                Some((r, s)) => (r, Some(s.to_string())),
                None => (*resource, None),
            };
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(group.to_string()),
                        resource: Some(resource.to_string()),
                        subresource: subresource.clone(),
                        verb: Some(verb.to_string()),
                        namespace: namespace.map(str::to_string),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let allowed = match reviews.create(&PostParams::default(), &review).await {
                Ok(r) => r.status.is_some_and(|s| s.allowed),
                Err(e) => {
                    return Outcome::Fail {
                        found: format!("SelfSubjectAccessReview failed: {e}"),
                        fix: "vk's identity must be able to create selfsubjectaccessreviews (every authenticated user can by default)".into(),
                    };
                }
            };
            if !allowed {
                let what = match &subresource {
                    Some(s) => format!("{resource}/{s}"),
                    None => resource.to_string(),
                };
                let group = if group.is_empty() { "core" } else { group };
                let scope = namespace.map_or(String::new(), |n| format!(" in {n}"));
                denied.push(format!("{verb} {what} ({group}){scope}"));
            }
        }
        if denied.is_empty() {
            Outcome::Ok(format!(
                "all {} permissions vk needs are granted",
                permissions.len()
            ))
        } else {
            Outcome::Fail {
                found: format!("denied: {}", denied.join(", ")),
                fix: "apply manifests/base/rbac.yaml (or the Helm chart with rbac.create=true) for the ServiceAccount vk runs as".into(),
            }
        }
    }

    async fn node(&self, name: &str) -> Outcome {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node = match nodes.get_opt(name).await {
            Ok(Some(node)) => node,
            Ok(None) => {
                return Outcome::Warn {
                    found: format!("node {name} is not registered"),
                    fix: "start `vk run` with this config: it registers the node".into(),
                };
            }
            Err(e) => {
                return Outcome::Fail {
                    found: format!("reading node {name}: {e}"),
                    fix: "see the rbac check".into(),
                };
            }
        };
        let ready = node
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| (c.status, c.message.unwrap_or_default()));
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let renewed = leases
            .get_opt(name)
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec)
            .and_then(|s| s.renew_time)
            .map(|t| Timestamp::now().duration_since(t.0).as_secs());
        match (ready, renewed) {
            (Some((status, _)), Some(age)) if status == "True" && age <= i64::from(LEASE_DURATION_SECONDS) => {
                Outcome::Ok(format!("node {name} is Ready, its Lease renewed {age}s ago"))
            }
            (_, None) => Outcome::Fail {
                found: format!("node {name} has no Lease in {LEASE_NAMESPACE}"),
                fix: "is `vk run` running for this node? Its log says why the Lease cannot be written".into(),
            },
            (ready, Some(age)) => Outcome::Fail {
                found: format!(
                    "node {name} is {} and its Lease was last renewed {age}s ago",
                    ready.map_or("without a Ready condition".to_string(), |(s, m)| format!("Ready={s} ({m})"))
                ),
                fix: "is `vk run` running for this node and able to reach the API server? Its log says why the heartbeat stopped".into(),
            },
        }
    }

    async fn serving_cert(&self, node: &str) -> Outcome {
        let csrs: Api<CertificateSigningRequest> = Api::all(self.client.clone());
        let prefix = format!("vk-serving-{node}-");
        let list = match csrs.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(e) => {
                return Outcome::Fail {
                    found: format!("listing CertificateSigningRequests: {e}"),
                    fix: "see the rbac check".into(),
                };
            }
        };
        let mut ours: Vec<_> = list
            .items
            .into_iter()
            .filter(|c| {
                c.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .collect();
        ours.sort_by_key(|c| c.metadata.creation_timestamp.clone().map(|t| t.0));
        let Some(newest) = ours.pop() else {
            return Outcome::Warn {
                found: format!("no kubelet-serving CSR for {node} yet"),
                fix: "`vk run` submits one at start (or uses the key and certificate kept in --cert-dir)".into(),
            };
        };
        let name = newest.metadata.name.unwrap_or_default();
        let status = newest.status.unwrap_or_default();
        let conditions = status.conditions.unwrap_or_default();
        if let Some(denied) = conditions
            .iter()
            .find(|c| c.type_ == "Denied" || c.type_ == "Failed")
        {
            return Outcome::Fail {
                found: format!(
                    "CSR {name} is {}: {}",
                    denied.type_,
                    denied.message.clone().unwrap_or_default()
                ),
                fix: format!(
                    "kubectl delete csr {name}; restart vk so it submits a new one, then approve it"
                ),
            };
        }
        if !conditions.iter().any(|c| c.type_ == "Approved") {
            return Outcome::Fail {
                found: format!(
                    "CSR {name} waits for approval: kubectl logs/exec cannot reach the node"
                ),
                fix: format!("kubectl certificate approve {name}"),
            };
        }
        if status.certificate.is_none() {
            return Outcome::Fail {
                found: format!("CSR {name} is approved but no certificate was issued"),
                fix: "the kubernetes.io/kubelet-serving signer runs in kube-controller-manager (--cluster-signing-cert-file/--cluster-signing-key-file); check it runs".into(),
            };
        }
        Outcome::Ok(format!("CSR {name} approved and issued"))
    }

    async fn client_ca(&self) -> Outcome {
        let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), "kube-system");
        match maps.get_opt("extension-apiserver-authentication").await {
            Ok(Some(m)) if m.data.as_ref().is_some_and(|d| d.contains_key("client-ca-file")) => {
                Outcome::Ok("the API server's client CA is readable (kube-system/extension-apiserver-authentication)".into())
            }
            Ok(_) => Outcome::Fail {
                found: "kube-system/extension-apiserver-authentication has no client-ca-file".into(),
                fix: "give vk the CA of the API server's kubelet-client certificate with --client-ca-file".into(),
            },
            Err(e) => Outcome::Fail {
                found: format!("reading kube-system/extension-apiserver-authentication: {e}"),
                fix: "bind the Role extension-apiserver-authentication-reader in kube-system to vk's ServiceAccount (manifests/base/rbac.yaml does), or set --client-ca-file".into(),
            },
        }
    }

    async fn cloud(&self, provider: &dyn Provider) -> Outcome {
        let ping = provider.ping().await;
        let provider = provider.name().to_string();
        match ping {
            Ok(()) => Outcome::Ok(format!(
                "the {provider} provider reaches its cloud with its credentials"
            )),
            Err(e) => {
                let text = e.to_string();
                let fix = if provider == "aci" {
                    aci_fix(&text)
                } else if provider == "fargate" {
                    fargate_fix(&text)
                } else if text.contains("SignatureDoesNotMatch")
                    || text.contains("InvalidAccessKeyId")
                {
                    "the AccessKey pair is wrong: check access_key_id and the secret (VK_ECI_ACCESS_KEY_SECRET, or the Secret the chart reads)".to_string()
                } else if text.contains("Forbidden") || text.contains("NoPermission") {
                    "the cloud identity lacks ECI permissions: grant it AliyunECIFullAccess or the actions vk uses".to_string()
                } else {
                    format!("check the {provider} endpoint and that this machine reaches it")
                };
                Outcome::Fail {
                    // One line: a signature error echoes a multi-line string to sign.
                    found: format!(
                        "the {provider} provider's cloud call failed: {}",
                        text.split_whitespace().collect::<Vec<_>>().join(" ")
                    ),
                    fix,
                }
            }
        }
    }
}

/// What to do about a failed ARM call of the aci provider, from ARM's or Azure AD's code.
fn aci_fix(text: &str) -> String {
    if text.contains("AADSTS")
        || text.contains("invalid_client")
        || text.contains("getting an Azure token")
    {
        "the Azure identity is refused or unreachable: check aci.credentials (tenant_id, client_id, the secret or the federated token file; AZURE_* variables) and the authority host".into()
    } else if text.contains("AuthorizationFailed") || text.contains("HTTP 403") {
        "vk's Azure identity lacks permissions: assign it the Contributor role (or a role with Microsoft.ContainerInstance/containerGroups/*) on the resource group".into()
    } else if text.contains("ResourceGroupNotFound") {
        "create the resource group, or set aci.resource_group to an existing one".into()
    } else if text.contains("SubscriptionNotFound") {
        "set aci.subscription_id to the subscription of the resource group".into()
    } else {
        "check aci.endpoint (and aci.extra_ca_file for a private CA) and that this machine reaches it".into()
    }
}

/// What to do about a failed ECS call of the fargate provider, from AWS's code.
fn fargate_fix(text: &str) -> String {
    if text.contains("getting AWS credentials") || text.contains("AWS credentials (") {
        "no usable AWS keys: check fargate.credentials (source, role_arn and the web identity token file for IRSA; AWS_* variables) and that STS, the Pod Identity agent or IMDS is reachable".into()
    } else if text.contains("UnrecognizedClient")
        || text.contains("InvalidSignature")
        || text.contains("ExpiredToken")
    {
        "AWS refuses the keys: check the access key (or the role vk assumes) and this machine's clock".into()
    } else if text.contains("AccessDenied") {
        "vk's AWS identity lacks ECS permissions: allow ecs:ListTasks, DescribeTasks, RunTask, StopTask, RegisterTaskDefinition, DeregisterTaskDefinition, ListTaskDefinitions, ExecuteCommand, iam:PassRole on the task roles and logs:GetLogEvents".into()
    } else if text.contains("ClusterNotFound") {
        "create the ECS cluster, or set fargate.cluster to an existing one (in fargate.region)"
            .into()
    } else {
        "check fargate.region and fargate.ecs_endpoint (and fargate.extra_ca_file for a private CA) and that this machine reaches it".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_failures_get_aws_fixes() {
        assert!(
            fargate_fix("RunTask: HTTP 400 ClusterNotFoundException: x")
                .contains("fargate.cluster")
        );
        assert!(fargate_fix("HTTP 400 AccessDeniedException: x").contains("iam:PassRole"));
        assert!(fargate_fix("HTTP 400 ExpiredTokenException").contains("clock"));
        assert!(
            fargate_fix("getting AWS credentials (irsa) failed: x").contains("fargate.credentials")
        );
        assert!(fargate_fix("connection refused").contains("fargate.ecs_endpoint"));
    }

    #[test]
    fn aci_failures_get_azure_fixes() {
        assert!(aci_fix("HTTP 400: invalid_client: AADSTS7000215").contains("aci.credentials"));
        assert!(aci_fix("HTTP 403 AuthorizationFailed: x").contains("Contributor"));
        assert!(aci_fix("HTTP 404 ResourceGroupNotFound").contains("aci.resource_group"));
        assert!(aci_fix("connection refused").contains("aci.endpoint"));
    }

    /// The permissions checked (with leader election in vk-system) are exactly those
    /// `manifests/base/rbac.yaml` grants.
    #[test]
    fn the_checked_permissions_are_the_base_rbac() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../manifests/base/rbac.yaml"
        );
        let text = std::fs::read_to_string(path).expect("rbac.yaml");
        let mut granted = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: serde_json::Value = serde::Deserialize::deserialize(doc).expect("yaml");
            let kind = v["kind"].as_str().unwrap_or_default();
            if kind != "ClusterRole" && kind != "Role" {
                continue;
            }
            let namespace = v["metadata"]["namespace"].as_str().map(str::to_string);
            for rule in v["rules"].as_array().into_iter().flatten() {
                for group in rule["apiGroups"].as_array().into_iter().flatten() {
                    for resource in rule["resources"].as_array().into_iter().flatten() {
                        for verb in rule["verbs"].as_array().into_iter().flatten() {
                            granted.push((
                                group.as_str().unwrap_or_default().to_string(),
                                resource.as_str().unwrap_or_default().to_string(),
                                verb.as_str().unwrap_or_default().to_string(),
                                namespace.clone(),
                            ));
                        }
                    }
                }
            }
        }
        let mut checked: Vec<_> = PERMISSIONS
            .iter()
            .map(|(g, r, v, n)| {
                (
                    g.to_string(),
                    r.to_string(),
                    v.to_string(),
                    n.map(str::to_string),
                )
            })
            .chain(LEADER_PERMISSIONS.iter().map(|(g, r, v)| {
                (
                    g.to_string(),
                    r.to_string(),
                    v.to_string(),
                    Some("vk-system".to_string()),
                )
            }))
            .collect();
        granted.sort();
        checked.sort();
        assert_eq!(checked, granted);
    }

    #[test]
    fn the_report_names_each_fix_and_fails_on_any_failure() {
        let mut report = Report::default();
        report.push("api", Outcome::Ok("answers".into()));
        assert!(!report.failed());
        report.push(
            "serving-cert",
            Outcome::Fail {
                found: "CSR x waits".into(),
                fix: "kubectl certificate approve x".into(),
            },
        );
        assert!(report.failed());
        let text = report.to_string();
        assert!(text.contains("FAIL  serving-cert"), "{text}");
        assert!(
            text.contains("fix: kubectl certificate approve x"),
            "{text}"
        );
        assert!(text.ends_with("1 of 2 checks failed"), "{text}");
    }
}
