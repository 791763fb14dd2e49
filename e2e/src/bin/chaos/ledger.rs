//! The soak's ledger: every pod against what its spec implies, the groups the cloud made for
//! it, the Warning events, the outages and their recovery times; printed and written as JSON.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use serde::Serialize;

/// What a pod's spec and the soak's doings imply for its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Exit 0: Succeeded.
    Succeeded,
    /// Exit non-zero: Failed with that code.
    Failed(i32),
    /// Its group vanished from the cloud while it ran: Failed (ProviderInstanceLost), never
    /// run again.
    InstanceLost,
    /// Deleted while it started: gone, no group left.
    GoneWhileStarting,
    /// Deleted while it ran: gone, no group left.
    GoneWhileRunning,
}

/// One pod's line.
#[derive(Clone, Debug, Serialize)]
pub struct PodLine {
    pub name: String,
    pub uid: String,
    pub expect: Expect,
    pub final_phase: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// Its end seen this long after its create plus its run time (startup, outages).
    pub end_late_s: Option<f64>,
    pub groups_created: usize,
    pub groups_left: usize,
    pub deleted_by_soak: bool,
    pub still_in_api: bool,
    pub stuck: bool,
}

/// One outage and how long the node took to be back.
#[derive(Clone, Debug, Serialize)]
pub struct Outage {
    pub kind: String,
    /// When it began, from the start of the soak.
    pub at_s: f64,
    /// How long the fault lasted (until the component was back).
    pub lasted_s: f64,
    /// From its end until the node was Ready with its lease renewed (`None`: not within 180 s).
    pub node_ready_after_s: Option<f64>,
    /// From its end until a pod started running or ended.
    pub pods_progressing_after_s: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub pods_created: usize,
    pub ran_to_the_end: usize,
    pub succeeded_as_expected: usize,
    pub failed_with_their_exit_code: usize,
    pub failed_after_their_group_vanished: usize,
    pub deleted_while_starting: usize,
    pub deleted_while_running: usize,
    pub groups_created: usize,
    /// Pods by the number of groups the cloud made for them.
    pub pods_by_groups_created: BTreeMap<usize, usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Ledger {
    pub seed: u64,
    pub minutes: f64,
    pub wall_s: f64,
    pub counts: Counts,
    /// A pod that ended otherwise than its spec implies.
    pub wrong_end: Vec<String>,
    /// A pod gone without the soak deleting it, or one that should have run with no group.
    pub lost: Vec<String>,
    /// More than one group made for one pod.
    pub duplicated: Vec<String>,
    /// Groups left in the cloud after every pod was deleted (or made for no pod of the soak).
    pub leaked: Vec<String>,
    /// No end within 150 s of when its container should have ended, or never gone.
    pub stuck: Vec<String>,
    pub end_late_s_p50: f64,
    pub end_late_s_p99: f64,
    pub end_late_s_max: f64,
    pub warning_events_by_reason: BTreeMap<String, usize>,
    pub vk_restarts_survived: usize,
    pub outages: Vec<Outage>,
    pub passed: bool,
    pub pods: Vec<PodLine>,
}

/// `12.3`, or `-` for what did not happen.
pub fn secs(s: Option<f64>) -> String {
    s.map(|s| format!("{s:.1}")).unwrap_or_else(|| "-".into())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

impl Ledger {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        seed: u64,
        minutes: f64,
        wall_s: f64,
        pods: Vec<PodLine>,
        strays: Vec<String>,
        warning_events_by_reason: BTreeMap<String, usize>,
        vk_restarts_survived: usize,
        outages: Vec<Outage>,
    ) -> Ledger {
        let mut counts = Counts {
            pods_created: pods.len(),
            ..Default::default()
        };
        let (mut wrong_end, mut lost, mut duplicated, mut leaked, mut stuck) =
            (Vec::new(), Vec::new(), Vec::new(), strays, Vec::new());
        let mut late = Vec::new();
        for p in &pods {
            let who = format!("{} ({})", p.name, p.uid);
            counts.groups_created += p.groups_created;
            *counts
                .pods_by_groups_created
                .entry(p.groups_created)
                .or_default() += 1;
            if p.groups_created > 1 {
                duplicated.push(format!("{who}: {} groups", p.groups_created));
            }
            if p.groups_left > 0 {
                leaked.push(format!("{who}: {} group(s) left", p.groups_left));
            }
            if p.still_in_api {
                stuck.push(format!("{who}: still in the API after its delete"));
            }
            if !p.deleted_by_soak {
                lost.push(format!("{who}: never deleted by the soak"));
            }
            let phase = p.final_phase.as_deref();
            match &p.expect {
                Expect::GoneWhileStarting => counts.deleted_while_starting += 1,
                Expect::GoneWhileRunning => counts.deleted_while_running += 1,
                expect => {
                    counts.ran_to_the_end += 1;
                    if let Some(l) = p.end_late_s {
                        late.push(l);
                    }
                    if p.stuck || phase.is_none() {
                        stuck.push(format!("{who}: no end within 150 s of its container's"));
                        continue;
                    }
                    if p.groups_created == 0 {
                        lost.push(format!("{who}: ended {phase:?} with no group made"));
                    }
                    let right = match expect {
                        Expect::Succeeded => phase == Some("Succeeded") && p.exit_code == Some(0),
                        Expect::Failed(code) => {
                            phase == Some("Failed") && p.exit_code == Some(*code)
                        }
                        _ => {
                            phase == Some("Failed")
                                && p.reason.as_deref() == Some("ProviderInstanceLost")
                        }
                    };
                    if right {
                        match expect {
                            Expect::Succeeded => counts.succeeded_as_expected += 1,
                            Expect::Failed(_) => counts.failed_with_their_exit_code += 1,
                            _ => counts.failed_after_their_group_vanished += 1,
                        }
                    } else {
                        wrong_end.push(format!(
                            "{who}: expected {expect:?}, ended {phase:?} exit {:?} reason {:?}",
                            p.exit_code, p.reason
                        ));
                    }
                }
            }
        }
        late.sort_by(f64::total_cmp);
        let recovered = outages
            .iter()
            .all(|o| o.node_ready_after_s.is_some() && o.pods_progressing_after_s.is_some());
        let passed = wrong_end.is_empty()
            && lost.is_empty()
            && duplicated.is_empty()
            && leaked.is_empty()
            && stuck.is_empty()
            && recovered
            && !pods.is_empty();
        Ledger {
            seed,
            minutes,
            wall_s,
            counts,
            wrong_end,
            lost,
            duplicated,
            leaked,
            stuck,
            end_late_s_p50: percentile(&late, 0.5),
            end_late_s_p99: percentile(&late, 0.99),
            end_late_s_max: late.last().copied().unwrap_or(0.0),
            warning_events_by_reason,
            vk_restarts_survived,
            outages,
            passed,
            pods,
        }
    }

    pub fn print(&self) {
        let c = &self.counts;
        println!(
            "chaos soak: seed {}, {} min of pods and outages ({:.0} s in all)",
            self.seed, self.minutes, self.wall_s
        );
        println!(
            "pods created: {} ({} ran to their end, {} deleted while starting, {} deleted while running)",
            c.pods_created, c.ran_to_the_end, c.deleted_while_starting, c.deleted_while_running
        );
        println!(
            "ends as their spec implies: {} Succeeded (exit 0), {} Failed with their exit code, {} Failed after their group vanished (ProviderInstanceLost)",
            c.succeeded_as_expected,
            c.failed_with_their_exit_code,
            c.failed_after_their_group_vanished
        );
        println!(
            "groups the cloud made: {} ({})",
            c.groups_created,
            c.pods_by_groups_created
                .iter()
                .map(|(groups, pods)| format!("{pods} pods with {groups}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let list = |what: &str, items: &[String]| {
            println!("{what}: {}", items.len());
            for item in items {
                println!("  {item}");
            }
        };
        list("wrong ends", &self.wrong_end);
        list("lost", &self.lost);
        list("duplicated", &self.duplicated);
        list("leaked", &self.leaked);
        list("stuck", &self.stuck);
        println!(
            "end seen after create + run time: p50 {:.1} s, p99 {:.1} s, max {:.1} s",
            self.end_late_s_p50, self.end_late_s_p99, self.end_late_s_max
        );
        println!(
            "Warning events by reason: {}",
            if self.warning_events_by_reason.is_empty() {
                "none".to_string()
            } else {
                self.warning_events_by_reason
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        println!("vk restarts survived: {}", self.vk_restarts_survived);
        println!("outages (s: when, how long, node Ready after, pods progressing after):");
        for o in &self.outages {
            println!(
                "  {:>6.1}  {:<48} {:>5.1}  {:>5}  {:>5}",
                o.at_s,
                o.kind,
                o.lasted_s,
                secs(o.node_ready_after_s),
                secs(o.pods_progressing_after_s)
            );
        }
        println!("{}", if self.passed { "PASSED" } else { "FAILED" });
    }
}

/// Warning events of the soak's namespace and its node, counted by reason.
pub async fn warning_events(
    client: &kube::Client,
    namespace: &str,
    node: &str,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut add = |items: Vec<Event>| {
        for e in items {
            if e.type_.as_deref() == Some("Warning") {
                *counts.entry(e.reason.unwrap_or_default()).or_insert(0usize) +=
                    e.count.unwrap_or(1).max(1) as usize;
            }
        }
    };
    let ns: Api<Event> = Api::namespaced(client.clone(), namespace);
    if let Ok(list) = ns.list(&ListParams::default()).await {
        add(list.items);
    }
    let all: Api<Event> = Api::all(client.clone());
    let about_node = ListParams::default().fields(&format!("involvedObject.name={node}"));
    if let Ok(list) = all.list(&about_node).await {
        add(list.items);
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, expect: Expect, phase: Option<&str>, code: Option<i32>) -> PodLine {
        PodLine {
            name: name.into(),
            uid: format!("uid-{name}"),
            expect,
            final_phase: phase.map(str::to_string),
            exit_code: code,
            reason: None,
            end_late_s: Some(1.0),
            groups_created: 1,
            groups_left: 0,
            deleted_by_soak: true,
            still_in_api: false,
            stuck: false,
        }
    }

    fn ledger(pods: Vec<PodLine>, strays: Vec<String>) -> Ledger {
        Ledger::new(1, 3.0, 200.0, pods, strays, BTreeMap::new(), 2, Vec::new())
    }

    #[test]
    fn every_pod_as_its_spec_implies_passes() {
        let mut lost = line("c", Expect::InstanceLost, Some("Failed"), Some(137));
        lost.reason = Some("ProviderInstanceLost".into());
        let mut starting = line("d", Expect::GoneWhileStarting, None, None);
        starting.groups_created = 0;
        let l = ledger(
            vec![
                line("a", Expect::Succeeded, Some("Succeeded"), Some(0)),
                line("b", Expect::Failed(42), Some("Failed"), Some(42)),
                lost,
                starting,
                line("e", Expect::GoneWhileRunning, Some("Failed"), Some(137)),
            ],
            Vec::new(),
        );
        assert!(l.passed, "{l:?}");
        assert_eq!(l.counts.succeeded_as_expected, 1);
        assert_eq!(l.counts.failed_with_their_exit_code, 1);
        assert_eq!(l.counts.failed_after_their_group_vanished, 1);
        assert_eq!(l.counts.pods_by_groups_created[&0], 1);
    }

    #[test]
    fn wrong_ends_duplicates_leaks_losses_and_stuck_pods_fail() {
        let mut twice = line("twice", Expect::Succeeded, Some("Succeeded"), Some(0));
        twice.groups_created = 2;
        let mut left = line("left", Expect::GoneWhileRunning, None, None);
        left.groups_left = 1;
        let mut never = line("never", Expect::Succeeded, Some("Succeeded"), Some(0));
        never.groups_created = 0;
        let cases = [
            (
                line("wrong", Expect::Failed(1), Some("Succeeded"), Some(0)),
                "wrong_end",
            ),
            (twice, "duplicated"),
            (left, "leaked"),
            (never, "lost"),
            (line("stuck", Expect::Failed(2), None, None), "stuck"),
        ];
        for (pod, what) in cases {
            let l = ledger(vec![pod], Vec::new());
            assert!(!l.passed, "{what}: {l:?}");
            let found = match what {
                "wrong_end" => &l.wrong_end,
                "duplicated" => &l.duplicated,
                "leaked" => &l.leaked,
                "lost" => &l.lost,
                _ => &l.stuck,
            };
            assert_eq!(found.len(), 1, "{what}: {l:?}");
        }
        let l = ledger(
            vec![line("a", Expect::Succeeded, Some("Succeeded"), Some(0))],
            vec!["eci-x (a group for no pod)".into()],
        );
        assert!(!l.passed && l.leaked.len() == 1);
    }
}
