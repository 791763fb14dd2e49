//! `vk doctor`'s cloud-side checks for eci: each node's zone, vSwitch and security group exist
//! and fit together (the vSwitch in the zone, the security group in the vSwitch's VPC), and the
//! account's ECI vCPU quota covers what the nodes advertise. Read-only calls, each failure
//! with the exact setting to change.

use std::sync::Arc;

use crate::node_set::CloudPlacement;
use crate::outcome::Outcome;
use eci::network::{AccountApis, Region, VSwitch};
use eci::{EciClient, EciConfig, EciError};

/// The account behind the eci provider: its client (keys, rate limits) and the other products.
pub struct EciAccount {
    client: Arc<EciClient>,
    apis: AccountApis,
}

/// One line: a signature error echoes a multi-line string to sign.
fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl EciAccount {
    pub fn new(client: Arc<EciClient>, config: &EciConfig) -> Result<Self, EciError> {
        let apis = AccountApis::new(&config.services, &config.region_id)?;
        Ok(Self { client, apis })
    }

    fn region(&self) -> &str {
        self.client.region_id()
    }

    /// The zone, vSwitch and security group of one node: (check name, outcome) each.
    pub async fn network(&self, node: &str, p: &CloudPlacement) -> Vec<(&'static str, Outcome)> {
        let region = self.region().to_string();
        let mut out = Vec::new();
        if let Some(zone) = &p.zone_id {
            out.push(("zone", self.zone(node, zone).await));
        }
        // ECI takes several vSwitches, comma-separated (it picks one with room).
        let mut vswitch = None;
        match &p.vswitch_id {
            None => out.push((
                "vswitch",
                Outcome::Warn {
                    found: format!("{node}: no vSwitch configured (ECI places each group in a vSwitch of the VPC)"),
                    fix: format!("set eci.vswitch_id to a vSwitch of the cluster's VPC (list: aliyun vpc DescribeVSwitches --RegionId {region} --VpcId <vpc>)"),
                },
            )),
            Some(ids) => {
                for id in ids.split(',').map(str::trim).filter(|id| !id.is_empty()) {
                    let (outcome, found) = self.vswitch(node, id, p.zone_id.as_deref()).await;
                    out.push(("vswitch", outcome));
                    vswitch = vswitch.or(found);
                }
            }
        }
        let outcome = match &p.security_group_id {
            None => Outcome::Warn {
                found: format!("{node}: no security group configured"),
                fix: format!("set eci.security_group_id to a security group of the cluster's VPC (list: aliyun ecs DescribeSecurityGroups --RegionId {region} --VpcId <vpc>)"),
            },
            Some(id) => match self.apis.security_group(&self.client, id).await {
                Err(e) => Outcome::Fail {
                    found: format!("{node}: ECS DescribeSecurityGroups failed: {}", one_line(e)),
                    fix: "grant vk's identity ecs:DescribeSecurityGroups (AliyunECSReadOnlyAccess) and check eci.services.ecs_endpoint".into(),
                },
                Ok(None) => Outcome::Fail {
                    found: format!("{node}: security group {id} does not exist in {region}"),
                    fix: format!("set security_group_id to an existing security group of the vSwitch's VPC (list: aliyun ecs DescribeSecurityGroups --RegionId {region} --VpcId {})", vswitch.as_ref().map_or("<vpc>", |v| v.vpc_id.as_str())),
                },
                Ok(Some(g)) => match &vswitch {
                    Some(v) if v.vpc_id != g.vpc_id => Outcome::Fail {
                        found: format!("{node}: security group {id} is in VPC {}, vSwitch {} in VPC {}", g.vpc_id, v.vswitch_id, v.vpc_id),
                        fix: format!("set security_group_id to a security group of {} (list: aliyun ecs DescribeSecurityGroups --RegionId {region} --VpcId {})", v.vpc_id, v.vpc_id),
                    },
                    _ => Outcome::Ok(format!("{node}: security group {id} in {}", g.vpc_id)),
                },
            },
        };
        out.push(("security-group", outcome));
        out
    }

    /// One vSwitch: it exists, and lies in `zone` when one is configured.
    async fn vswitch(
        &self,
        node: &str,
        id: &str,
        zone: Option<&str>,
    ) -> (Outcome, Option<VSwitch>) {
        let region = self.region();
        match self.apis.vswitch(&self.client, id).await {
            Err(e) => (Outcome::Fail {
                found: format!("{node}: VPC DescribeVSwitches failed: {}", one_line(e)),
                fix: "grant vk's identity vpc:DescribeVSwitches (AliyunVPCReadOnlyAccess) and check eci.services.vpc_endpoint".into(),
            }, None),
            Ok(None) => (Outcome::Fail {
                found: format!("{node}: vSwitch {id} does not exist in {region}"),
                fix: format!("set vswitch_id to an existing vSwitch of the cluster's VPC (list: aliyun vpc DescribeVSwitches --RegionId {region} --VpcId <vpc>)"),
            }, None),
            Ok(Some(v)) => {
                let outcome = match zone {
                    Some(zone) if zone != v.zone_id => Outcome::Fail {
                        found: format!("{node}: vSwitch {id} is in zone {}, not in zone_id {zone}", v.zone_id),
                        fix: format!("set zone_id: {} (the vSwitch's zone), or a vswitch_id of zone {zone}", v.zone_id),
                    },
                    _ => Outcome::Ok(format!(
                        "{node}: vSwitch {id} in zone {} of {} ({} free addresses)",
                        v.zone_id, v.vpc_id, v.available_ip_address_count
                    )),
                };
                (outcome, Some(v))
            }
        }
    }

    async fn zone(&self, node: &str, zone: &str) -> Outcome {
        let region = self.region();
        match self.apis.eci_region(&self.client).await {
            Err(e) => Outcome::Fail {
                found: format!("{node}: ECI DescribeRegions failed: {}", one_line(e)),
                fix: "check the eci endpoint and that vk's identity may call ECI (see the cloud check)".into(),
            },
            Ok(None) => Outcome::Fail {
                found: format!("ECI does not serve region {region}"),
                fix: "set eci.region_id to a region where ECI runs (aliyun eci DescribeRegions)".into(),
            },
            Ok(Some(Region { zones, unavailable_zones, .. })) => {
                if unavailable_zones.iter().any(|z| z == zone) {
                    Outcome::Fail {
                        found: format!("{node}: zone {zone} is unavailable for ECI now"),
                        fix: format!("set zone_id (and its vswitch_id) to another zone: {}", zones.join(", ")),
                    }
                } else if zones.iter().any(|z| z == zone) {
                    Outcome::Ok(format!("{node}: ECI runs in zone {zone}"))
                } else {
                    Outcome::Fail {
                        found: format!("{node}: zone {zone} is not a zone of ECI in {region}"),
                        fix: format!("set zone_id to one of {} (the zone of the node's vSwitch)", zones.join(", ")),
                    }
                }
            }
        }
    }

    /// The account's ECI vCPU quota against `advertised_millis`, the sum of the nodes' CPU.
    pub async fn quota(&self, advertised_millis: u64, nodes: usize) -> Outcome {
        let region = self.region();
        let code = self.apis.vcpu_quota_code();
        let quota = match self.apis.vcpu_quota(&self.client).await {
            Err(e) => {
                return Outcome::Fail {
                    found: format!("Quota Center ListProductQuotas failed: {}", one_line(e)),
                    fix: "grant vk's identity quotas:ListProductQuotas (AliyunQuotasReadOnlyAccess) and check eci.services.quota_endpoint".into(),
                };
            }
            Ok(None) => {
                return Outcome::Warn {
                    found: format!("Quota Center has no eci quota {code} in {region}"),
                    fix: "set eci.services.vcpu_quota_code to the code of ECI's vCPU quota (Quota Center console, product eci)".into(),
                };
            }
            Ok(Some(q)) => q,
        };
        let advertised = advertised_millis as f64 / 1000.0;
        if quota.total_quota < advertised {
            let per_node = (quota.total_quota * 1000.0 / nodes.max(1) as f64).floor() as u64;
            Outcome::Fail {
                found: format!(
                    "the account's ECI vCPU quota in {region} is {} vCPUs ({} in use), below the {advertised} vCPUs the node(s) advertise",
                    quota.total_quota, quota.total_usage
                ),
                fix: format!(
                    "set eci.capacity.cpu_millis to {per_node} or less (per node), or ask for a larger quota in Quota Center (product eci, quota {code})"
                ),
            }
        } else {
            Outcome::Ok(format!(
                "ECI vCPU quota in {region}: {} ({} in use) covers the {advertised} vCPUs advertised",
                quota.total_quota, quota.total_usage
            ))
        }
    }
}
