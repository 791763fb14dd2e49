//! What `vk doctor` asks the account besides ECI's own actions: the zones ECI serves (ECI
//! `DescribeRegions`), the vSwitch (VPC `DescribeVSwitches`, 2016-04-28), the security group
//! (ECS `DescribeSecurityGroups`, 2014-05-26) and the vCPU quota (Quota Center
//! `ListProductQuotas`, 2020-05-10). Request and answer shapes as Alibaba documents them; the
//! cloud simulator answers the same shapes (`crate::wire::network`).

use serde::Deserialize;

use crate::client::{EciClient, EciError, ServiceTarget};
pub use crate::wire::network::{
    DescribeRegionsResponse, DescribeSecurityGroupsResponse, DescribeVSwitchesResponse,
    ECS_VERSION, ListProductQuotasResponse, ProductQuota, QUOTAS_VERSION, Region, SecurityGroup,
    SecurityGroups, VCPU_QUOTA_CODE, VPC_VERSION, VSwitch, VSwitches,
};
use crate::wire::params::Params;

/// Where the other products' APIs are, and which quota is ECI's vCPU quota.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct AccountServices {
    /// Default `https://vpc.<region>.aliyuncs.com`.
    pub vpc_endpoint: Option<String>,
    /// Default `https://ecs.<region>.aliyuncs.com`.
    pub ecs_endpoint: Option<String>,
    /// Default `https://quotas.aliyuncs.com`.
    pub quota_endpoint: Option<String>,
    /// The Quota Center code of ECI's regional vCPU quota (default [`VCPU_QUOTA_CODE`]).
    pub vcpu_quota_code: Option<String>,
}

/// The account's other products, called with the eci client's keys.
pub struct AccountApis {
    vpc: ServiceTarget,
    ecs: ServiceTarget,
    quotas: ServiceTarget,
    vcpu_quota_code: String,
}

impl AccountApis {
    pub fn new(services: &AccountServices, region_id: &str) -> Result<Self, EciError> {
        let or = |v: &Option<String>, default: String| v.clone().unwrap_or(default);
        Ok(Self {
            vpc: ServiceTarget::new(
                &or(
                    &services.vpc_endpoint,
                    format!("https://vpc.{region_id}.aliyuncs.com"),
                ),
                VPC_VERSION,
            )?,
            ecs: ServiceTarget::new(
                &or(
                    &services.ecs_endpoint,
                    format!("https://ecs.{region_id}.aliyuncs.com"),
                ),
                ECS_VERSION,
            )?,
            quotas: ServiceTarget::new(
                &or(
                    &services.quota_endpoint,
                    "https://quotas.aliyuncs.com".into(),
                ),
                QUOTAS_VERSION,
            )?,
            vcpu_quota_code: or(&services.vcpu_quota_code, VCPU_QUOTA_CODE.into()),
        })
    }

    pub fn vcpu_quota_code(&self) -> &str {
        &self.vcpu_quota_code
    }

    /// ECI's regions and zones (`DescribeRegions` of ECI itself), this region's only.
    pub async fn eci_region(&self, client: &EciClient) -> Result<Option<Region>, EciError> {
        let answer: DescribeRegionsResponse = client.call("DescribeRegions", Params::new()).await?;
        Ok(answer
            .regions
            .into_iter()
            .find(|r| r.region_id == client.region_id()))
    }

    pub async fn vswitch(&self, client: &EciClient, id: &str) -> Result<Option<VSwitch>, EciError> {
        let mut p = Params::new();
        p.push("VSwitchId", id).push("PageSize", "50");
        let answer: DescribeVSwitchesResponse =
            client.call_at(&self.vpc, "DescribeVSwitches", p).await?;
        Ok(answer
            .vswitches
            .vswitch
            .into_iter()
            .find(|v| v.vswitch_id == id))
    }

    pub async fn security_group(
        &self,
        client: &EciClient,
        id: &str,
    ) -> Result<Option<SecurityGroup>, EciError> {
        let mut p = Params::new();
        p.push("SecurityGroupIds", format!("[\"{id}\"]"))
            .push("PageSize", "50");
        let answer: DescribeSecurityGroupsResponse = client
            .call_at(&self.ecs, "DescribeSecurityGroups", p)
            .await?;
        Ok(answer
            .security_groups
            .security_group
            .into_iter()
            .find(|g| g.security_group_id == id))
    }

    /// ECI's vCPU quota in this region, if Quota Center has one under the configured code.
    pub async fn vcpu_quota(&self, client: &EciClient) -> Result<Option<ProductQuota>, EciError> {
        let mut p = Params::new();
        p.push("ProductCode", "eci")
            .push("QuotaActionCode", &self.vcpu_quota_code)
            .push("Dimensions.1.Key", "regionId")
            .push("Dimensions.1.Value", client.region_id());
        let answer: ListProductQuotasResponse =
            client.call_at(&self.quotas, "ListProductQuotas", p).await?;
        Ok(answer.quotas.into_iter().find(|q| {
            q.quota_action_code == self.vcpu_quota_code
                && q.dimensions
                    .get("regionId")
                    .is_none_or(|r| r == client.region_id())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_in_alibabas_shapes() {
        let v: DescribeVSwitchesResponse = serde_json::from_str(
            r#"{"RequestId":"r","TotalCount":1,"PageNumber":1,"PageSize":50,"VSwitches":{"VSwitch":[{"VSwitchId":"vsw-1","VpcId":"vpc-1","ZoneId":"cn-hangzhou-j","CidrBlock":"172.16.0.0/24","Status":"Available","AvailableIpAddressCount":250}]}}"#,
        )
        .unwrap();
        assert_eq!(v.vswitches.vswitch[0].vswitch_id, "vsw-1");
        assert_eq!(v.vswitches.vswitch[0].zone_id, "cn-hangzhou-j");
        let g: DescribeSecurityGroupsResponse = serde_json::from_str(
            r#"{"RequestId":"r","RegionId":"cn-hangzhou","SecurityGroups":{"SecurityGroup":[{"SecurityGroupId":"sg-1","VpcId":"vpc-1"}]}}"#,
        )
        .unwrap();
        assert_eq!(g.security_groups.security_group[0].vpc_id, "vpc-1");
        let r: DescribeRegionsResponse = serde_json::from_str(
            r#"{"RequestId":"r","Regions":[{"RegionId":"cn-hangzhou","RegionEndpoint":"eci.aliyuncs.com","Zones":["cn-hangzhou-j"],"RecommendZones":["cn-hangzhou-j"]}]}"#,
        )
        .unwrap();
        assert_eq!(r.regions[0].zones, ["cn-hangzhou-j"]);
        let q: ListProductQuotasResponse = serde_json::from_str(
            r#"{"RequestId":"r","Quotas":[{"ProductCode":"eci","QuotaActionCode":"q_eci_regional_vcpu","TotalQuota":500.0,"TotalUsage":12.0,"Dimensions":{"regionId":"cn-hangzhou"}}]}"#,
        )
        .unwrap();
        assert_eq!(q.quotas[0].total_quota, 500.0);
    }

    /// Both signatures carry each product's own version; the mock cloud checks it.
    #[tokio::test]
    async fn the_other_products_answer_the_mock_clouds_network_and_quota() {
        use crate::{EciProvider, SignatureMethod};
        let cloud = crate::tests_support::cloud(|c| c.quota_center.eci_vcpu = 64.0).await;
        for signature in [SignatureMethod::Acs3, SignatureMethod::HmacSha1] {
            let mut config = crate::tests_support::config(&cloud, "net");
            config.signature = signature;
            let provider = EciProvider::new(config).unwrap();
            let client = provider.client();
            let services = AccountServices {
                vpc_endpoint: Some(cloud.endpoint()),
                ecs_endpoint: Some(cloud.endpoint()),
                quota_endpoint: Some(cloud.endpoint()),
                vcpu_quota_code: None,
            };
            let apis = AccountApis::new(&services, "cn-hangzhou").unwrap();
            let region = apis.eci_region(client).await.unwrap().unwrap();
            assert!(region.zones.contains(&"cn-hangzhou-k".to_string()));
            let v = apis
                .vswitch(client, "vsw-vk-demo-k")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (v.zone_id.as_str(), v.vpc_id.as_str()),
                ("cn-hangzhou-k", "vpc-vk-demo")
            );
            assert_eq!(apis.vswitch(client, "vsw-nope").await.unwrap(), None);
            let g = apis
                .security_group(client, "sg-vk-demo")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(g.vpc_id, "vpc-vk-demo");
            let q = apis.vcpu_quota(client).await.unwrap().unwrap();
            assert_eq!(q.total_quota, 64.0);
        }
        // The ECI version for a VPC action is refused, as the service would.
        let provider = EciProvider::new(crate::tests_support::config(&cloud, "net")).unwrap();
        let e = provider
            .client()
            .call::<DescribeVSwitchesResponse>("DescribeVSwitches", Params::new())
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("InvalidVersion"), "{e}");
    }

    #[test]
    fn endpoints_default_to_the_regions_products() {
        let apis = AccountApis::new(&AccountServices::default(), "cn-shanghai").unwrap();
        assert_eq!(apis.vpc.host_name(), "vpc.cn-shanghai.aliyuncs.com");
        assert_eq!(apis.ecs.host_name(), "ecs.cn-shanghai.aliyuncs.com");
        assert_eq!(apis.quotas.host_name(), "quotas.aliyuncs.com");
        assert_eq!(apis.vcpu_quota_code(), VCPU_QUOTA_CODE);
        let bad = AccountServices {
            vpc_endpoint: Some("vpc.example".into()),
            ..Default::default()
        };
        assert!(AccountApis::new(&bad, "cn-shanghai").is_err());
    }
}
