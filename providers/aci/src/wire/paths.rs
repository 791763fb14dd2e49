//! Resource paths of `Microsoft.ContainerInstance` (relative to the ARM endpoint; add
//! `?api-version=`[`super::API_VERSION`]) and the names of their query parameters.

/// The provider namespace.
pub const NAMESPACE: &str = "Microsoft.ContainerInstance";

/// Query parameter names.
pub mod query {
    pub const API_VERSION: &str = "api-version";
    /// Logs: the number of last lines.
    pub const TAIL: &str = "tail";
    /// Logs: prefix each line with its time.
    pub const TIMESTAMPS: &str = "timestamps";
    /// Lists: ARM's continuation token inside `nextLink`.
    pub const SKIP_TOKEN: &str = "$skipToken";
}

/// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups`:
/// the groups of a resource group (GET: list).
pub fn groups_in_resource_group(subscription: &str, resource_group: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{NAMESPACE}/containerGroups"
    )
}

/// `/subscriptions/{sub}/providers/Microsoft.ContainerInstance/containerGroups`: every group of
/// the subscription (GET: list).
pub fn groups_in_subscription(subscription: &str) -> String {
    format!("/subscriptions/{subscription}/providers/{NAMESPACE}/containerGroups")
}

/// One group (PUT, GET, PATCH, DELETE); also its resource id.
pub fn group(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "{}/{name}",
        groups_in_resource_group(subscription, resource_group)
    )
}

/// `POST …/restart` (asynchronous), `…/stop` (synchronous), `…/start` (asynchronous).
pub fn group_action(subscription: &str, resource_group: &str, name: &str, action: &str) -> String {
    format!("{}/{action}", group(subscription, resource_group, name))
}

/// `GET …/containers/{c}/logs`.
pub fn container_logs(
    subscription: &str,
    resource_group: &str,
    name: &str,
    container: &str,
) -> String {
    format!(
        "{}/containers/{container}/logs",
        group(subscription, resource_group, name)
    )
}

/// `POST …/containers/{c}/exec`.
pub fn container_exec(
    subscription: &str,
    resource_group: &str,
    name: &str,
    container: &str,
) -> String {
    format!(
        "{}/containers/{container}/exec",
        group(subscription, resource_group, name)
    )
}

/// `POST …/containers/{c}/attach`.
pub fn container_attach(
    subscription: &str,
    resource_group: &str,
    name: &str,
    container: &str,
) -> String {
    format!(
        "{}/containers/{container}/attach",
        group(subscription, resource_group, name)
    )
}

/// `GET /subscriptions/{sub}/providers/Microsoft.ContainerInstance/locations/{loc}/usages`.
pub fn usages(subscription: &str, location: &str) -> String {
    format!("/subscriptions/{subscription}/providers/{NAMESPACE}/locations/{location}/usages")
}

/// `GET /subscriptions/{sub}/providers/Microsoft.ContainerInstance/locations/{loc}/capabilities`.
pub fn capabilities(subscription: &str, location: &str) -> String {
    format!("/subscriptions/{subscription}/providers/{NAMESPACE}/locations/{location}/capabilities")
}

/// Azure AD's token endpoint under an authority host: `/{tenant}/oauth2/v2.0/token`.
pub fn aad_token(tenant: &str) -> String {
    format!("/{tenant}/oauth2/v2.0/token")
}

/// Azure AD's OpenID configuration of a tenant (MSAL reads it before asking for a token).
pub fn aad_openid_configuration(tenant: &str) -> String {
    format!("/{tenant}/v2.0/.well-known/openid-configuration")
}

/// The instance metadata service's token path (`GET`, header `Metadata: true`, query
/// `api-version=2018-02-01&resource=…`, optionally `client_id=`).
pub const IMDS_TOKEN: &str = "/metadata/identity/oauth2/token";
/// The api-version IMDS's token endpoint is called with.
pub const IMDS_API_VERSION: &str = "2018-02-01";
/// IMDS's fixed address.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";
