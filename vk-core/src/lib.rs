//! vk-core: everything a virtual kubelet does that does not depend on the cloud behind it.
//!
//! - [`provider`]: the trait a backend implements and the neutral model it speaks;
//! - [`node`]: the Node object, its status and heartbeat Lease;
//! - [`pods`]: the pods bound to this node, resolved, run through the provider, and mirrored back;
//! - [`kubelet`]: the kubelet HTTPS API (:10250) that kube-apiserver calls for logs and stats.
//! - [`leader`]: leader election on a Lease, for replicas of vk that share their nodes.

pub mod cli;
pub mod fuzz;
pub mod kubelet;
pub mod leader;
pub mod metrics;
pub mod node;
pub mod pod_runtime;
pub mod pods;
pub mod probe;
pub mod provider;
pub mod stream;
