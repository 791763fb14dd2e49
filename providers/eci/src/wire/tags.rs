//! The tags vk puts on every group it creates: the pod it runs and the virtual node it belongs to
//! (listings filter by the node tag; adoption after a restart looks groups up by the pod-UID tag).

pub const POD_UID: &str = "vk-serverless.io/pod-uid";
pub const NAMESPACE: &str = "vk-serverless.io/namespace";
pub const POD_NAME: &str = "vk-serverless.io/pod-name";
pub const NODE: &str = "vk-serverless.io/node";
