//! What a pod cost: when it ends (its instance stopped, or it was deleted while running), the
//! cloud's billed size × the billed time × a price from a price table. vk records it on the
//! pod (annotation [`ANNOTATION`]), as an Event and as metrics by namespace, so CI teams can be
//! charged for their builds.
//!
//! The default table is ECI's published pay-as-you-go price ("ECI instance billing", Alibaba
//! Cloud help center: vCPU 0.000049 CNY per second, memory 0.00000613 CNY per GiB per second;
//! cost = (vCPUs × vCPU price + GiB × memory price) × seconds). Spot instances are priced at
//! `spot_factor` × on-demand (1.0 unless configured: the market price is not known here).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::provider::Billing;

/// The pod annotation that holds the cost (JSON, [`Cost`]).
pub const ANNOTATION: &str = "virtual-kubelet.io/cost";
/// The pod's Event reason.
pub const REASON: &str = "Cost";

/// Prices per region (`cost.prices` in the config file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriceTable {
    pub currency: String,
    /// The first entry whose `region` is the instance's, else the first `*`.
    pub prices: Vec<RegionPrice>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegionPrice {
    /// A region id, or `*` for any.
    pub region: String,
    pub vcpu_second: f64,
    pub gib_second: f64,
    /// A spot instance costs this share of the on-demand price.
    pub spot_factor: f64,
    /// A whole instance's price per second by its type (`ecs.c6.large`), before the vCPU and
    /// memory prices.
    pub instance_types: BTreeMap<String, f64>,
}

impl Default for RegionPrice {
    fn default() -> Self {
        Self {
            region: "*".into(),
            vcpu_second: 0.000049,
            gib_second: 0.00000613,
            spot_factor: 1.0,
            instance_types: BTreeMap::new(),
        }
    }
}

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            currency: "CNY".into(),
            prices: vec![RegionPrice::default()],
        }
    }
}

impl PriceTable {
    fn for_region(&self, region: &str) -> Option<&RegionPrice> {
        self.prices
            .iter()
            .find(|p| p.region == region)
            .or_else(|| self.prices.iter().find(|p| p.region == "*"))
    }

    /// Problems that make the table unusable (negative or non-finite prices).
    pub fn validate(&self) -> Result<(), String> {
        for p in &self.prices {
            let prices = [p.vcpu_second, p.gib_second, p.spot_factor]
                .into_iter()
                .chain(p.instance_types.values().copied());
            if prices.into_iter().any(|v| !v.is_finite() || v < 0.0) {
                return Err(format!(
                    "cost.prices for region {:?}: prices must be finite and not negative",
                    p.region
                ));
            }
        }
        Ok(())
    }
}

/// One pod's cost, as the annotation holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    /// Billed seconds (from the cloud's billing start to the instance's end).
    pub seconds: f64,
    pub vcpu: f64,
    pub memory_gib: f64,
    pub vcpu_seconds: f64,
    pub gib_seconds: f64,
    pub instance_type: String,
    pub spot: bool,
    pub region: String,
    /// Per second: the instance type's price, or vCPUs × vCPU price + GiB × memory price;
    /// times the spot factor for a spot instance.
    pub price_per_second: f64,
    pub price: f64,
    pub currency: String,
}

impl Cost {
    /// The cost of an instance billed as `billing`, ended at `ended` unless the cloud says when.
    /// `None` when billing never began or the table has no price for the region.
    pub fn of(billing: &Billing, ended: Timestamp, table: &PriceTable) -> Option<Self> {
        let started = billing.started_at?;
        let ended = billing.ended_at.unwrap_or(ended);
        let seconds = ended.duration_since(started).as_secs_f64().max(0.0);
        let vcpu = billing.vcpu_milli as f64 / 1000.0;
        let memory_gib = billing.memory_mib as f64 / 1024.0;
        let prices = table.for_region(&billing.region)?;
        let on_demand = prices
            .instance_types
            .get(&billing.instance_type)
            .copied()
            .unwrap_or(vcpu * prices.vcpu_second + memory_gib * prices.gib_second);
        let price_per_second = if billing.spot {
            on_demand * prices.spot_factor
        } else {
            on_demand
        };
        Some(Self {
            seconds,
            vcpu,
            memory_gib,
            vcpu_seconds: vcpu * seconds,
            gib_seconds: memory_gib * seconds,
            instance_type: billing.instance_type.clone(),
            spot: billing.spot,
            region: billing.region.clone(),
            price_per_second,
            price: price_per_second * seconds,
            currency: table.currency.clone(),
        })
    }

    /// The Event's message.
    pub fn message(&self) -> String {
        format!(
            "Billed {} vCPU / {} GiB ({}{}) for {:.1}s: {:.1} vCPU-seconds, {:.1} GiB-seconds, {:.6} {}",
            self.vcpu,
            self.memory_gib,
            self.instance_type,
            if self.spot { ", spot" } else { "" },
            self.seconds,
            self.vcpu_seconds,
            self.gib_seconds,
            self.price,
            self.currency
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn billing(spot: bool, ended: Option<i64>) -> Billing {
        Billing {
            vcpu_milli: 2000,
            memory_mib: 4096,
            instance_type: "2.0-4.0Gi".into(),
            spot,
            region: "cn-hangzhou".into(),
            started_at: Some(Timestamp::from_second(1_000).unwrap()),
            ended_at: ended.map(|s| Timestamp::from_second(s).unwrap()),
        }
    }

    #[test]
    fn cost_is_billed_time_times_size_times_price() {
        let table = PriceTable::default();
        let c = Cost::of(
            &billing(false, Some(1_100)),
            Timestamp::from_second(5_000).unwrap(),
            &table,
        )
        .unwrap();
        assert_eq!(c.seconds, 100.0);
        assert_eq!(c.vcpu_seconds, 200.0);
        assert_eq!(c.gib_seconds, 400.0);
        let expected = 100.0 * (2.0 * 0.000049 + 4.0 * 0.00000613);
        assert!((c.price - expected).abs() < 1e-12, "{}", c.price);
        assert_eq!(c.currency, "CNY");
        assert!(c.message().contains("for 100.0s"), "{}", c.message());
    }

    #[test]
    fn a_running_instance_is_billed_until_the_pods_end_and_spot_and_regions_apply() {
        let table = PriceTable {
            currency: "USD".into(),
            prices: vec![
                RegionPrice {
                    region: "cn-hangzhou".into(),
                    vcpu_second: 0.00001,
                    gib_second: 0.0,
                    spot_factor: 0.25,
                    instance_types: BTreeMap::from([("ecs.c6.large".into(), 0.001)]),
                },
                RegionPrice::default(),
            ],
        };
        let c = Cost::of(
            &billing(true, None),
            Timestamp::from_second(1_010).unwrap(),
            &table,
        )
        .unwrap();
        assert_eq!(c.seconds, 10.0);
        assert!((c.price - 10.0 * 2.0 * 0.00001 * 0.25).abs() < 1e-15);
        let mut typed = billing(false, Some(1_010));
        typed.instance_type = "ecs.c6.large".into();
        let c = Cost::of(&typed, Timestamp::now(), &table).unwrap();
        assert!((c.price - 0.01).abs() < 1e-12);
        // Another region takes the `*` entry.
        let mut other = billing(false, Some(1_001));
        other.region = "us-west-1".into();
        let c = Cost::of(&other, Timestamp::now(), &table).unwrap();
        assert!((c.price - (2.0 * 0.000049 + 4.0 * 0.00000613)).abs() < 1e-12);
    }

    #[test]
    fn nothing_is_billed_before_billing_began_or_without_a_price() {
        let mut b = billing(false, None);
        b.started_at = None;
        assert!(Cost::of(&b, Timestamp::now(), &PriceTable::default()).is_none());
        let table = PriceTable {
            currency: "CNY".into(),
            prices: vec![RegionPrice {
                region: "cn-beijing".into(),
                ..Default::default()
            }],
        };
        assert!(Cost::of(&billing(false, Some(1_001)), Timestamp::now(), &table).is_none());
        let bad = PriceTable {
            currency: "CNY".into(),
            prices: vec![RegionPrice {
                vcpu_second: -1.0,
                ..Default::default()
            }],
        };
        assert!(bad.validate().is_err());
        assert!(PriceTable::default().validate().is_ok());
    }

    #[test]
    fn the_annotation_round_trips() {
        let c = Cost::of(
            &billing(false, Some(1_060)),
            Timestamp::now(),
            &PriceTable::default(),
        )
        .unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"vcpuSeconds\":120.0"), "{json}");
        let back: Cost = serde_json::from_str(&json).unwrap();
        assert_eq!((back.seconds, back.vcpu_seconds), (60.0, 120.0));
        assert!((back.price - c.price).abs() <= c.price * 1e-12);
        assert_eq!(back.instance_type, "2.0-4.0Gi");
    }
}
