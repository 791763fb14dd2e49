//! ECI's API as it is on the wire, and nothing else: the RPC parameters and their encoding
//! (`params`), the typed requests of the actions vk uses (`request` and its `request_*` parts),
//! the listing and exec requests (`query`), the JSON answers and the error body (`api`), and the
//! two request signatures (`sign`, `sign_acs3`). The cloud simulator decodes and answers with
//! these types and nothing else of this crate; its sizing, quotas, rate limits and signature
//! checks are its own, so a mistake in the client's rules is caught by the simulator.

pub mod action;
pub mod api;
pub mod exec;
pub mod metrics;
pub mod network;
pub mod params;
pub mod query;
pub mod request;
pub mod request_image_cache;
pub mod request_lifecycle;
pub mod request_names;
pub mod request_probes;
pub mod request_security;
pub mod sign;
pub mod sign_acs3;
pub mod sts;
pub mod tags;
