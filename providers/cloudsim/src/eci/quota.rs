//! Quota Center's `ListProductQuotas` (2020-05-10) for ECI: the account's regional vCPU quota,
//! configurable (`quota_center:` in the cloud's config), with the vCPUs of the groups that
//! hold resources now as its usage.

use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::engine::Engine;
use eci::wire::api::errors;
use eci::wire::network::{ListProductQuotasResponse, ProductQuota, VCPU_QUOTA_CODE};
use eci::wire::params::Params;

pub const LIST_PRODUCT_QUOTAS: &str = "ListProductQuotas";

/// The vCPUs of the groups holding resources now (not finished or failed to schedule).
pub fn used_vcpu(engine: &Engine) -> f64 {
    engine
        .state()
        .groups()
        .filter(|g| !g.is_terminal())
        .map(|g| g.cpu)
        .fold(0.0, |sum, cpu| sum + cpu)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuotaCenterConfig {
    /// ECI's vCPU quota in the region.
    pub eci_vcpu: f64,
    /// Its code (what `vk doctor` asks for).
    pub vcpu_quota_code: String,
}

impl Default for QuotaCenterConfig {
    /// As much as one node advertises by default (`eci.capacity.cpu_millis`, 1000 vCPUs).
    fn default() -> Self {
        Self {
            eci_vcpu: 1000.0,
            vcpu_quota_code: VCPU_QUOTA_CODE.into(),
        }
    }
}

/// The eci quotas matching the request's `ProductCode`, `QuotaActionCode` and `regionId`
/// dimension; `used_vcpu` is the usage reported.
pub fn list_product_quotas(
    config: &QuotaCenterConfig,
    region_id: &str,
    used_vcpu: f64,
    p: &Params,
) -> Result<String, ApiError> {
    let product = p.required("ProductCode")?;
    let code = p.get("QuotaActionCode");
    let mut region_filter = None;
    for (_, dimension) in p.members("Dimensions")? {
        if dimension.get("Key") == Some("regionId") {
            region_filter = dimension.string("Value");
        }
    }
    let quotas: Vec<ProductQuota> = (product == "eci"
        && code.is_none_or(|c| c == config.vcpu_quota_code)
        && region_filter.as_deref().is_none_or(|r| r == region_id))
    .then(|| ProductQuota {
        product_code: "eci".into(),
        quota_action_code: config.vcpu_quota_code.clone(),
        quota_name: "vCPUs of pay-as-you-go elastic container instances in the region".into(),
        quota_unit: "vCPU".into(),
        total_quota: config.eci_vcpu,
        total_usage: used_vcpu,
        dimensions: [("regionId".to_string(), region_id.to_string())].into(),
    })
    .into_iter()
    .collect();
    serde_json::to_string(&ListProductQuotasResponse {
        request_id: String::new(),
        total_count: quotas.len() as u64,
        max_results: 30,
        next_token: String::new(),
        quotas,
    })
    .map_err(|e| ApiError::new(errors::INTERNAL_ERROR, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vcpu_quota_is_listed_for_eci_in_the_region_only() {
        let config = QuotaCenterConfig::default();
        let mut p = Params::new();
        p.push("ProductCode", "eci")
            .push("Dimensions.1.Key", "regionId")
            .push("Dimensions.1.Value", "cn-hangzhou");
        let body = list_product_quotas(&config, "cn-hangzhou", 4.0, &p).unwrap();
        let answer: ListProductQuotasResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(answer.quotas[0].total_quota, 1000.0);
        assert_eq!(answer.quotas[0].total_usage, 4.0);
        p.set("Dimensions.1.Value", "cn-beijing");
        let body = list_product_quotas(&config, "cn-hangzhou", 0.0, &p).unwrap();
        let answer: ListProductQuotasResponse = serde_json::from_str(&body).unwrap();
        assert!(answer.quotas.is_empty());
        assert!(list_product_quotas(&config, "cn-hangzhou", 0.0, &Params::new()).is_err());
    }
}
