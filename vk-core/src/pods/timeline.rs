//! A pod's start, phase by phase: seen by vk (it was scheduled here) → accepted by the cloud
//! → its images ready (pulled, or taken from an image cache) → its containers started →
//! Running. vk's own moments come from its clock; the images and the containers from the
//! cloud's report (its events and container start times), which the cloud dates on its clock
//! and often in whole seconds: each moment is kept between its neighbours, so no phase is
//! negative.

use jiff::{SignedDuration, Timestamp};

use crate::provider::{ContainerState, InstanceStatus};

/// Event reasons a cloud records about images (ECI's, which are the kubelet's plus its cache's).
pub const PULLED: &str = "Pulled";
pub const PULLING: &str = "Pulling";
pub const HIT_IMAGE_CACHE: &str = "SuccessfulHitImageCache";
pub const MISSED_IMAGE_CACHE: &str = "ImageCacheMissed";

/// The pod's Event reason for its start timeline.
pub const REASON: &str = "StartTimeline";

/// How the instance got its images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Images {
    /// From an image cache; the event's message names it. Images the cache did not hold were
    /// pulled, this many.
    CacheHit(u32),
    /// Pulled, this many images.
    Pulled(u32),
    /// The cloud did not say.
    Unknown,
}

impl Images {
    /// The `image_cache` label of the timeline metric.
    pub fn label(&self) -> &'static str {
        match self {
            Self::CacheHit(_) => "hit",
            Self::Pulled(_) => "miss",
            Self::Unknown => "unknown",
        }
    }
}

/// The moments of one pod's start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeline {
    pub seen: Timestamp,
    pub accepted: Option<Timestamp>,
    pub images_ready: Option<Timestamp>,
    pub images: Images,
    pub containers_started: Option<Timestamp>,
    pub running: Timestamp,
}

/// One phase's name (the metric's `phase` label) and length.
pub type Phase = (&'static str, SignedDuration);

impl Timeline {
    /// The timeline of a pod vk saw at `seen`, whose create the cloud accepted at `accepted`,
    /// and that is Running at `running` with this report.
    pub fn of(
        seen: Timestamp,
        accepted: Option<Timestamp>,
        instance: &InstanceStatus,
        running: Timestamp,
    ) -> Self {
        let image_events = instance.events.iter().filter(|e| e.container.is_none());
        let mut images_ready: Option<Timestamp> = None;
        let mut hit = false;
        let mut pulled = 0u32;
        for e in image_events {
            match e.reason.as_str() {
                // The kubelet's words for an image that was there already (a cache's).
                PULLED if e.message.ends_with("already present on machine") => {
                    images_ready = images_ready.max(Some(e.last_seen));
                }
                PULLED => {
                    pulled = pulled.saturating_add(e.count.max(1));
                    images_ready = images_ready.max(Some(e.last_seen));
                }
                HIT_IMAGE_CACHE => {
                    hit = true;
                    images_ready = images_ready.max(Some(e.last_seen));
                }
                _ => {}
            }
        }
        let images = match (hit, pulled) {
            (true, n) => Images::CacheHit(n),
            (false, 0) => Images::Unknown,
            (false, n) => Images::Pulled(n),
        };
        let containers_started = instance
            .init_containers
            .iter()
            .chain(&instance.containers)
            .filter_map(|c| match &c.state {
                ContainerState::Running { started_at } => Some(*started_at),
                ContainerState::Terminated { started_at, .. } => *started_at,
                ContainerState::Waiting { .. } => None,
            })
            .max();
        // Each moment between its neighbours.
        let clamp =
            |t: Option<Timestamp>, low: Timestamp| t.map(|t| t.clamp(low, running.max(low)));
        let accepted = clamp(accepted, seen);
        let after_accepted = accepted.unwrap_or(seen);
        let images_ready = clamp(images_ready, after_accepted);
        let containers_started = clamp(containers_started, images_ready.unwrap_or(after_accepted));
        Self {
            seen,
            accepted,
            images_ready,
            images,
            containers_started,
            running: running.max(seen),
        }
    }

    /// The phases that are known, in order, each from the moment before it.
    pub fn phases(&self) -> Vec<Phase> {
        let mut phases = Vec::with_capacity(4);
        let mut last = self.seen;
        for (name, at) in [
            ("accepted", self.accepted),
            ("images_ready", self.images_ready),
            ("containers_started", self.containers_started),
            ("running", Some(self.running)),
        ] {
            if let Some(at) = at {
                phases.push((name, at.duration_since(last)));
                last = at;
            }
        }
        phases
    }

    /// The Event's message: `Running 36.7s after it was scheduled here: accepted by eci in
    /// 0.2s, images ready 35.2s later (pulled 2 images), containers started 1.1s later,
    /// Running 0.2s later.`
    pub fn message(&self, provider: &str) -> String {
        let total = self.running.duration_since(self.seen);
        let mut parts = Vec::new();
        for (name, took) in self.phases() {
            let took = secs(took);
            parts.push(match name {
                "accepted" => format!("accepted by {provider} in {took}"),
                "images_ready" => format!(
                    "images ready {took} later ({})",
                    match &self.images {
                        Images::CacheHit(0) => "image cache hit".to_string(),
                        Images::CacheHit(1) => "image cache hit, pulled 1 image".to_string(),
                        Images::CacheHit(n) => format!("image cache hit, pulled {n} images"),
                        Images::Pulled(1) => "pulled 1 image".to_string(),
                        Images::Pulled(n) => format!("pulled {n} images"),
                        Images::Unknown => "no pull reported".to_string(),
                    }
                ),
                "containers_started" => format!("containers started {took} later"),
                _ => format!("Running {took} later"),
            });
        }
        format!(
            "Running {} after it was scheduled here: {}",
            secs(total),
            parts.join(", ")
        )
    }
}

fn secs(d: SignedDuration) -> String {
    format!("{:.1}s", d.as_secs_f64().max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ContainerStatus, InstanceEvent, InstancePhase, PodRef};

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000 + ms).unwrap()
    }

    fn event(reason: &str, at: Timestamp, count: u32) -> InstanceEvent {
        InstanceEvent {
            container: None,
            warning: false,
            reason: reason.into(),
            message: String::new(),
            count,
            first_seen: at,
            last_seen: at,
        }
    }

    fn instance(events: Vec<InstanceEvent>, started: Option<Timestamp>) -> InstanceStatus {
        InstanceStatus {
            billing: None,
            pod: PodRef {
                namespace: "ci".into(),
                name: "build".into(),
                uid: "u".into(),
            },
            phase: InstancePhase::Running,
            reason: None,
            message: None,
            pod_ip: None,
            created_at: None,
            init_containers: vec![],
            containers: vec![ContainerStatus {
                name: "app".into(),
                state: match started {
                    Some(started_at) => ContainerState::Running { started_at },
                    None => ContainerState::waiting("ContainerCreating"),
                },
                last_state: None,
                restart_count: 0,
                ready: true,
                started: None,
                container_id: None,
                image: "golang".into(),
                image_id: None,
            }],
            events,
        }
    }

    #[test]
    fn a_pulled_start_has_every_phase_in_order() {
        let report = instance(
            vec![
                event(PULLING, t(500), 2),
                event(PULLED, t(30_000), 1),
                event(PULLED, t(35_400), 1),
            ],
            Some(t(36_500)),
        );
        let tl = Timeline::of(t(0), Some(t(200)), &report, t(36_700));
        assert_eq!(tl.images, Images::Pulled(2));
        let phases: Vec<_> = tl
            .phases()
            .into_iter()
            .map(|(n, d)| (n, d.as_millis()))
            .collect();
        assert_eq!(
            phases,
            vec![
                ("accepted", 200),
                ("images_ready", 35_200),
                ("containers_started", 1_100),
                ("running", 200)
            ]
        );
        assert_eq!(
            tl.message("eci"),
            "Running 36.7s after it was scheduled here: accepted by eci in 0.2s, images ready \
             35.2s later (pulled 2 images), containers started 1.1s later, Running 0.2s later"
        );
    }

    #[test]
    fn a_cache_hit_is_named_and_whole_second_cloud_times_never_make_a_phase_negative() {
        // The cloud dates its events in whole seconds: the hit reads as before the create.
        let mut present = event(PULLED, t(0), 1);
        present.message = "Container image \"golang:1.22\" already present on machine".into();
        let report = instance(
            vec![event(HIT_IMAGE_CACHE, t(0), 1), present],
            Some(t(1_000)),
        );
        let tl = Timeline::of(t(100), Some(t(300)), &report, t(1_400));
        assert_eq!(tl.images, Images::CacheHit(0));
        assert_eq!(tl.images.label(), "hit");
        for (name, took) in tl.phases() {
            assert!(!took.is_negative(), "{name}: {took:?}");
        }
        assert_eq!(tl.images_ready, Some(t(300)));
        assert!(tl.message("eci").contains("(image cache hit)"));
        // A cache holding only some of the images: the rest were pulled.
        let mut events = report.events.clone();
        events.push(event(PULLED, t(2_000), 1));
        let partial = InstanceStatus { events, ..report };
        let tl = Timeline::of(t(100), Some(t(300)), &partial, t(3_400));
        assert_eq!(tl.images, Images::CacheHit(1));
        assert!(
            tl.message("eci")
                .contains("(image cache hit, pulled 1 image)")
        );
    }

    #[test]
    fn without_cloud_reports_only_vks_own_moments_are_phases() {
        let report = instance(vec![], None);
        let tl = Timeline::of(t(0), None, &report, t(900));
        assert_eq!(tl.images, Images::Unknown);
        let names: Vec<_> = tl.phases().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["running"]);
        // A container event (a probe) is not about images.
        let mut probe = event(PULLED, t(10), 1);
        probe.container = Some("app".into());
        let tl = Timeline::of(t(0), None, &instance(vec![probe], None), t(900));
        assert_eq!(tl.images, Images::Unknown);
    }
}
