//! `DescribeContainerGroupEvents`: each listed group's most recent events (at most 50 are kept
//! per group) in Kubernetes' event shape, with the listing filters of
//! `DescribeContainerGroups` plus `EventSource` and `SinceSecond`. Every event of the
//! simulator is the service's own (`EciService`); none comes from a Kubernetes agent.

use jiff::Timestamp;
use serde::Serialize;

use super::error::ApiError;
use super::face::Face;
use super::placement::PlacementFilter;
use super::record::record;
use super::render;
use crate::engine::group::{Event, Group};
use eci::wire::params::{ParamError, Params};
use eci::wire::request::DescribeContainerGroups;
use eci::wire::tags;

const SOURCES: &[&str] = &["EciService", "K8sAgent"];
const SOURCE: &str = "EciService";
/// `Limit`'s default and most: groups per answer.
const MAX_GROUPS: u32 = 200;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventsAnswer {
    pub request_id: String,
    pub total_count: u64,
    pub data: Vec<GroupEvents>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupEvents {
    pub container_group_id: String,
    pub name: String,
    pub namespace: String,
    #[serde(rename = "uuid")]
    pub uuid: String,
    pub annotations: String,
    pub events: Vec<EventView>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventView {
    pub count: u32,
    #[serde(rename = "Type")]
    pub kind: String,
    pub reason: String,
    pub message: String,
    pub first_timestamp: String,
    pub last_timestamp: String,
    pub metadata: Metadata,
    /// The service's spelling.
    #[serde(rename = "involvedObject")]
    pub involved_object: InvolvedObject,
    pub source: Source,
    pub reporting_component: String,
    pub reporting_instance: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvolvedObject {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub api_version: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Source {
    pub component: String,
    pub host: String,
}

/// The request beyond the shared listing filters.
struct EventQuery {
    source: Option<String>,
    since: Option<Timestamp>,
}

impl EventQuery {
    fn decode(p: &Params) -> Result<Self, ParamError> {
        let source = p.string("EventSource");
        if let Some(s) = &source
            && !SOURCES.contains(&s.as_str())
        {
            return Err(ParamError::invalid(
                "EventSource",
                format!("{s:?} is not one of {}", SOURCES.join(", ")),
            ));
        }
        let since = p.parse::<u64>("SinceSecond")?.and_then(|s| {
            Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_secs(
                    i64::try_from(s).unwrap_or(i64::MAX),
                ))
                .ok()
        });
        Ok(Self { source, since })
    }

    fn keeps(&self, e: &Event) -> bool {
        self.source.as_deref().is_none_or(|s| s == SOURCE)
            && self.since.is_none_or(|since| {
                render::time(e.last)
                    .parse::<Timestamp>()
                    .is_ok_and(|at| at >= since)
            })
    }
}

fn render(g: &Group, q: &EventQuery) -> GroupEvents {
    let tag = |k: &str| {
        record(g)
            .request
            .tags
            .iter()
            .find(|t| t.key == k)
            .map(|t| t.value.clone())
            .unwrap_or_default()
    };
    let (pod, namespace, uid) = (
        tag(tags::POD_NAME),
        tag(tags::NAMESPACE),
        tag(tags::POD_UID),
    );
    let involved = || InvolvedObject {
        kind: "Pod".into(),
        name: if pod.is_empty() {
            g.spec.name.clone()
        } else {
            pod.clone()
        },
        namespace: namespace.clone(),
        uid: uid.clone(),
        api_version: "v1".into(),
    };
    GroupEvents {
        container_group_id: g.id().to_string(),
        name: pod.clone(),
        namespace: namespace.clone(),
        uuid: uid.clone(),
        annotations: "{}".into(),
        events: g
            .events
            .iter()
            .filter(|e| q.keeps(e))
            .map(|e| EventView {
                count: e.count,
                kind: e.kind.clone(),
                reason: e.reason.clone(),
                message: e.message.clone(),
                first_timestamp: render::time(e.first),
                last_timestamp: render::time(e.last),
                metadata: Metadata {
                    name: e.name.clone(),
                    namespace: namespace.clone(),
                },
                involved_object: involved(),
                source: Source {
                    component: SOURCE.into(),
                    host: g.ip.clone(),
                },
                reporting_component: SOURCE.into(),
                reporting_instance: g.id().to_string(),
            })
            .collect(),
    }
}

impl Face {
    pub fn describe_events(&self, p: &Params) -> Result<EventsAnswer, ApiError> {
        let listing = DescribeContainerGroups::decode(p)?;
        let placement = PlacementFilter::decode(p)?;
        let q = EventQuery::decode(p).map_err(ApiError::from)?;
        let (seqs, _, total) = self.page(&listing, &placement, None, MAX_GROUPS)?;
        let state = self.engine().state();
        Ok(EventsAnswer {
            request_id: String::new(),
            total_count: total,
            data: seqs
                .iter()
                .filter_map(|s| state.by_seq(*s))
                .map(|g| render(g, &q))
                .collect(),
        })
    }
}
