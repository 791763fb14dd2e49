//! ACI's API as it is on the wire, and nothing else: Azure Resource Manager's
//! `Microsoft.ContainerInstance` shapes at api-version [`API_VERSION`] (the container group and
//! its containers, `group` and `container`; volumes, `volume`), the answers of the other
//! operations (`ops`: list pages, logs, exec/attach, the asynchronous operation status,
//! usages, capabilities), ARM's error body (`error`), the resource paths and header names
//! (`paths`, and the constants below), and the tokens from Azure AD and the instance metadata
//! service (`aad`).
//!
//! Answers are read leniently: every field is optional or defaulted and unknown fields are
//! ignored, so a newer service (or a simulator) adding fields never breaks a reader. Enumerated
//! values (states, policies) are plain strings with their documented values as constants, so
//! a value this crate does not know is kept, not rejected.

pub mod aad;
pub mod container;
pub mod error;
pub mod group;
pub mod ops;
pub mod paths;
pub mod volume;

pub use aad::{AadError, AadToken, ImdsToken, OpenIdConfiguration, TokenRequest};
pub use container::{
    Capabilities, Container, ContainerEvent, ContainerPort, ContainerProperties, ContainerState,
    EnvironmentVariable, ExecProbe, GpuResource, HttpGetProbe, HttpHeader, InitContainer,
    InitContainerProperties, InstanceView, Probe, ResourceRequirements, Resources, SecurityContext,
};
pub use error::{ArmError, ErrorBody};
pub use group::{
    ContainerGroup, ContainerGroupProperties, DnsConfig, GroupIdentity, GroupInstanceView,
    ImageRegistryCredential, IpAddress, SubnetId, TagsPatch,
};
pub use ops::{
    AsyncOperation, Capability, CapabilityList, ContainerAttachResponse, ContainerExecRequest,
    ContainerExecResponse, ContainerGroupList, ListPage, Logs, TerminalSize, Usage, UsageList,
    operation_status,
};
pub use volume::{AzureFileVolume, EmptyDir, GitRepoVolume, Volume, VolumeMount};

/// The api-version vk speaks (the one azure-mgmt-containerinstance 10.1.0 speaks).
pub const API_VERSION: &str = "2023-05-01";

/// Stable api-versions of `Microsoft.ContainerInstance` whose shapes are the same for what vk
/// uses (previews left out); a server may accept any of these.
pub const STABLE_API_VERSIONS: &[&str] = &[
    "2021-09-01",
    "2021-10-01",
    "2022-09-01",
    "2023-05-01",
    "2025-09-01",
];

/// ARM's resource type of a container group.
pub const GROUP_TYPE: &str = "Microsoft.ContainerInstance/containerGroups";

/// The scope of a token for Azure Resource Manager.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// The resource (audience) of ARM tokens, as IMDS takes it.
pub const ARM_RESOURCE: &str = "https://management.azure.com/";
/// The public cloud's ARM endpoint.
pub const ARM_ENDPOINT: &str = "https://management.azure.com";
/// The public cloud's Azure AD authority host.
pub const AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// Header names ARM uses.
pub mod headers {
    /// Absolute URL of the operation status of an asynchronous PUT/DELETE/POST.
    pub const AZURE_ASYNC_OPERATION: &str = "azure-asyncoperation";
    /// Absolute URL to poll (202 answers).
    pub const LOCATION: &str = "location";
    /// Seconds to wait before the next call or poll.
    pub const RETRY_AFTER: &str = "retry-after";
    /// Writes (PUT/PATCH/DELETE/POST) left in the subscription's current window.
    pub const REMAINING_WRITES: &str = "x-ms-ratelimit-remaining-subscription-writes";
    /// Reads (GET) left in the subscription's current window.
    pub const REMAINING_READS: &str = "x-ms-ratelimit-remaining-subscription-reads";
    /// ARM's id of the request (on every answer).
    pub const REQUEST_ID: &str = "x-ms-request-id";
    /// The correlation id of a request (echoed, or made up by ARM).
    pub const CORRELATION_REQUEST_ID: &str = "x-ms-correlation-request-id";
    /// The client's own id of a request (echoed).
    pub const CLIENT_REQUEST_ID: &str = "x-ms-client-request-id";
    /// The challenge of a 401 answer.
    pub const WWW_AUTHENTICATE: &str = "www-authenticate";
    /// IMDS requires this header with the value `true`.
    pub const METADATA: &str = "metadata";
}

/// Provisioning states of a container group (`properties.provisioningState`).
pub mod provisioning_state {
    pub const PENDING: &str = "Pending";
    pub const CREATING: &str = "Creating";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const FAILED: &str = "Failed";
    pub const DELETING: &str = "Deleting";
    pub const UPDATING: &str = "Updating";
    pub const CANCELED: &str = "Canceled";
    pub const UNHEALTHY: &str = "Unhealthy";
    pub const REPAIRING: &str = "Repairing";
    pub const NOT_ACCESSIBLE: &str = "NotAccessible";
    pub const NOT_SPECIFIED: &str = "NotSpecified";

    /// Whether ARM will not move the group out of this state by itself.
    pub fn is_terminal(state: &str) -> bool {
        matches!(state, SUCCEEDED | FAILED | CANCELED)
    }
}

/// States of a group's instance view (`properties.instanceView.state`).
pub mod group_state {
    pub const PENDING: &str = "Pending";
    pub const RUNNING: &str = "Running";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const FAILED: &str = "Failed";
    pub const STOPPED: &str = "Stopped";
}

/// States of a container (`instanceView.currentState.state`).
pub mod container_state {
    pub const WAITING: &str = "Waiting";
    pub const RUNNING: &str = "Running";
    pub const TERMINATED: &str = "Terminated";
}

/// Names of the events ACI reports on containers.
pub mod event_name {
    pub const PULLING: &str = "Pulling";
    pub const PULLED: &str = "Pulled";
    pub const CREATED: &str = "Created";
    pub const STARTED: &str = "Started";
    pub const KILLING: &str = "Killing";
    pub const FAILED: &str = "Failed";
    pub const BACK_OFF: &str = "BackOff";
}

/// `properties.restartPolicy`.
pub mod restart_policy {
    pub const ALWAYS: &str = "Always";
    pub const ON_FAILURE: &str = "OnFailure";
    pub const NEVER: &str = "Never";
}

/// `properties.osType`.
pub mod os_type {
    pub const LINUX: &str = "Linux";
    pub const WINDOWS: &str = "Windows";
}

/// `properties.sku`.
pub mod sku {
    pub const STANDARD: &str = "Standard";
    pub const DEDICATED: &str = "Dedicated";
    pub const CONFIDENTIAL: &str = "Confidential";
}

/// `properties.priority`.
pub mod priority {
    pub const REGULAR: &str = "Regular";
    pub const SPOT: &str = "Spot";
}

/// `ipAddress.type`.
pub mod ip_address_type {
    pub const PUBLIC: &str = "Public";
    pub const PRIVATE: &str = "Private";
}

/// Protocols of ports.
pub mod protocol {
    pub const TCP: &str = "TCP";
    pub const UDP: &str = "UDP";
}

/// ARM error codes the container instance service and ARM answer with.
pub mod codes {
    pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFound";
    pub const RESOURCE_GROUP_NOT_FOUND: &str = "ResourceGroupNotFound";
    pub const SUBSCRIPTION_NOT_FOUND: &str = "SubscriptionNotFound";
    pub const CONTAINER_GROUP_NOT_FOUND: &str = "ContainerGroupNotFound";
    pub const CONTAINER_NOT_FOUND: &str = "ContainerNotFound";
    pub const INVALID_REQUEST_CONTENT: &str = "InvalidRequestContent";
    pub const INVALID_API_VERSION: &str = "InvalidApiVersionParameter";
    pub const MISSING_API_VERSION: &str = "MissingApiVersionParameter";
    pub const INVALID_RESOURCE_NAME: &str = "InvalidResourceName";
    pub const INVALID_CONTAINER_GROUP_NAME: &str = "InvalidContainerGroupName";
    pub const INVALID_CONTAINER_NAME: &str = "InvalidContainerName";
    pub const DUPLICATE_CONTAINER_NAME: &str = "DuplicateContainerName";
    pub const INVALID_IMAGE: &str = "InvalidImage";
    pub const INVALID_RESTART_POLICY: &str = "InvalidRestartPolicy";
    pub const INVALID_OS_TYPE: &str = "InvalidOsType";
    pub const INVALID_VOLUME: &str = "InvalidVolume";
    pub const INVALID_VOLUME_MOUNT: &str = "InvalidVolumeMount";
    pub const INVALID_CONTAINER_RESOURCE: &str = "InvalidContainerResourceRequest";
    pub const INVALID_CPU_REQUEST: &str = "InvalidCpuRequest";
    pub const INVALID_MEMORY_REQUEST: &str = "InvalidMemoryRequest";
    pub const RESOURCE_REQUESTS_EXCEEDED: &str = "ResourceRequestsExceeded";
    /// A container's limit below its request.
    pub const RESOURCE_LIMITS_LESS_THAN_REQUESTS: &str = "ResourceLimitsLessThanRequests";
    /// A container's limit above the whole group's request.
    pub const LIMIT_GREATER_THAN_GROUP_REQUEST: &str =
        "ContainerLimitGreaterThanContainerGroupTotalRequest";
    pub const INACCESSIBLE_IMAGE: &str = "InaccessibleImage";
    pub const CONTAINER_GROUP_UPDATE_NOT_SUPPORTED: &str = "ContainerGroupUpdateNotSupported";
    pub const INVALID_EXEC_COMMAND: &str = "InvalidExecCommand";
    pub const CONTAINER_GROUP_QUOTA_REACHED: &str = "ContainerGroupQuotaReached";
    pub const STANDARD_CORES_QUOTA_REACHED: &str = "StandardCoresQuotaReached";
    pub const CONTAINER_GROUP_TRANSITIONING: &str = "ContainerGroupTransitioning";
    pub const CONTAINER_GROUP_NOT_RUNNING: &str = "ContainerGroupNotRunning";
    pub const CONTAINER_NOT_RUNNING: &str = "ContainerNotRunning";
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
    pub const INTERNAL_SERVER_ERROR: &str = "InternalServerError";
    pub const TOO_MANY_REQUESTS: &str = "TooManyRequests";
    pub const SUBSCRIPTION_REQUESTS_THROTTLED: &str = "SubscriptionRequestsThrottled";
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    pub const INVALID_AUTHENTICATION_TOKEN: &str = "InvalidAuthenticationToken";
    pub const EXPIRED_AUTHENTICATION_TOKEN: &str = "ExpiredAuthenticationToken";
    pub const AUTHORIZATION_FAILED: &str = "AuthorizationFailed";
    pub const INVALID_AUTHENTICATION_TOKEN_AUDIENCE: &str = "InvalidAuthenticationTokenAudience";
}

#[cfg(test)]
mod tests;
