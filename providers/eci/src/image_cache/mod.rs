//! Image caches: the `ImageCache` custom resource of ACK's virtual node
//! (`eci.alibabacloud.com/v1`, cluster-scoped; fields as
//! <https://alibabacloud.com/help/en/eci/user-guide/kubernetes-imagecache-api> names them), the
//! cloud side of one object ([`sync`]: create with the object's uid as `ClientToken`, describe
//! while the cache is not done, update on a new spec, delete), and the controller that runs it
//! against the API server ([`controller`]); optionally, caches of the most used image sets
//! ([`keep_top`]).

pub mod cloud;
pub mod controller;
pub mod crd;
pub mod keep_top;
pub mod sync;

pub use crd::{ImageCache, ImageCacheSpec, ImageCacheStatus};
