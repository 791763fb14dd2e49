//! One ECI action as a type: its name, its request parameters and the answer it gets. The
//! client sends every action through one path (`EciClient::send`); the simulator decodes the
//! same request types.

use serde::de::DeserializeOwned;

use crate::wire::api::{
    CreateContainerGroupResponse, CreateImageCacheResponse, DescribeContainerGroupStatusResponse,
    DescribeContainerGroupsResponse, DescribeContainerLogResponse, DescribeImageCachesResponse,
    ExecContainerCommandResponse, RequestIdResponse,
};
use crate::wire::metrics::{
    DescribeMultiContainerGroupMetric, DescribeMultiContainerGroupMetricResponse,
};
use crate::wire::params::{ParamError, Params};
use crate::wire::query::{DescribeContainerGroups, DescribeContainerLog, ExecContainerCommand};
use crate::wire::request::{CreateContainerGroup, UpdateContainerGroup};
use crate::wire::request_image_cache::{
    CreateImageCache, DeleteImageCache, DescribeImageCaches, UpdateImageCache,
};

pub trait Action {
    /// The `Action` parameter.
    const NAME: &'static str;
    /// The answer's JSON body.
    type Response: DeserializeOwned;
    /// The request's parameters (the client adds `RegionId` and the signature).
    fn params(&self) -> Params;
}

macro_rules! action {
    ($request:ty, $name:literal, $response:ty) => {
        impl Action for $request {
            const NAME: &'static str = $name;
            type Response = $response;
            fn params(&self) -> Params {
                let mut p = Params::new();
                self.encode(&mut p);
                p
            }
        }
    };
}

action!(
    CreateContainerGroup,
    "CreateContainerGroup",
    CreateContainerGroupResponse
);
action!(
    DescribeContainerGroups,
    "DescribeContainerGroups",
    DescribeContainerGroupsResponse
);
action!(
    DescribeContainerGroupStatus,
    "DescribeContainerGroupStatus",
    DescribeContainerGroupStatusResponse
);
action!(
    UpdateContainerGroup,
    "UpdateContainerGroup",
    RequestIdResponse
);
action!(
    DeleteContainerGroup,
    "DeleteContainerGroup",
    RequestIdResponse
);
action!(
    RestartContainerGroup,
    "RestartContainerGroup",
    RequestIdResponse
);
action!(
    DescribeContainerLog,
    "DescribeContainerLog",
    DescribeContainerLogResponse
);
action!(
    DescribeMultiContainerGroupMetric,
    "DescribeMultiContainerGroupMetric",
    DescribeMultiContainerGroupMetricResponse
);
action!(
    ExecContainerCommand,
    "ExecContainerCommand",
    ExecContainerCommandResponse
);

action!(
    CreateImageCache,
    "CreateImageCache",
    CreateImageCacheResponse
);
action!(
    DescribeImageCaches,
    "DescribeImageCaches",
    DescribeImageCachesResponse
);
action!(UpdateImageCache, "UpdateImageCache", RequestIdResponse);
action!(DeleteImageCache, "DeleteImageCache", RequestIdResponse);

/// `DescribeContainerGroupStatus`: the filters of `DescribeContainerGroups`, a shorter answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DescribeContainerGroupStatus(pub DescribeContainerGroups);

impl DescribeContainerGroupStatus {
    pub fn encode(&self, p: &mut Params) {
        self.0.encode(p);
    }
}

/// An action on one group named by its id: `DeleteContainerGroup`, `RestartContainerGroup`.
macro_rules! by_id {
    ($name:ident) => {
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name {
            pub container_group_id: String,
        }

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self {
                    container_group_id: id.into(),
                }
            }

            pub fn encode(&self, p: &mut Params) {
                p.push("ContainerGroupId", &self.container_group_id);
            }

            pub fn decode(p: &Params) -> Result<Self, ParamError> {
                Ok(Self::new(p.required("ContainerGroupId")?))
            }
        }
    };
}

by_id!(DeleteContainerGroup);
by_id!(RestartContainerGroup);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_names_itself_and_encodes_its_request() {
        let delete = DeleteContainerGroup::new("eci-1");
        assert_eq!(DeleteContainerGroup::NAME, "DeleteContainerGroup");
        assert_eq!(delete.params().get("ContainerGroupId"), Some("eci-1"));
        assert_eq!(
            DeleteContainerGroup::decode(&delete.params()).unwrap(),
            delete
        );
        assert!(RestartContainerGroup::decode(&Params::new()).is_err());
        let status = DescribeContainerGroupStatus(DescribeContainerGroups {
            limit: Some(5),
            ..Default::default()
        });
        assert_eq!(status.params().get("Limit"), Some("5"));
        assert_eq!(
            <DescribeContainerGroupStatus as Action>::NAME,
            "DescribeContainerGroupStatus"
        );
    }
}
