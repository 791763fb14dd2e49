use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use vk_core::provider::ContainerSpec;

fn set(images: &[&str]) -> Vec<String> {
    images.iter().map(|s| s.to_string()).collect()
}

fn tally(images: &[&str], uses: u64, last: u64) -> Tally {
    Tally {
        images: set(images),
        uses,
        last,
    }
}

fn names(tallies: &[Tally]) -> Vec<Vec<String>> {
    tallies.iter().map(|t| t.images.clone()).collect()
}

fn config(yaml: &str) -> KeepTopConfig {
    serde_yaml::from_str(yaml).unwrap()
}

#[test]
fn ranks_by_uses_then_by_the_most_recent_use() {
    let tallies = vec![
        tally(&["a:1"], 3, 10),
        tally(&["b:1"], 5, 1),
        tally(&["c:1"], 3, 12),
        tally(&["d:1"], 1, 20),
    ];
    let top = select(tallies.clone(), 3);
    assert_eq!(
        names(&top),
        vec![set(&["b:1"]), set(&["c:1"]), set(&["a:1"])]
    );
    // The order of the input does not matter.
    let mut reversed = tallies;
    reversed.reverse();
    assert_eq!(select(reversed, 3), top);
    // Fewer sets than the limit: all of them.
    assert_eq!(select(vec![tally(&["a:1"], 1, 1)], 5).len(), 1);
    // A set too large for one cache is no candidate.
    let big = Tally {
        images: (0..=MAX_IMAGES).map(|i| format!("img:{i}")).collect(),
        uses: 100,
        last: 100,
    };
    assert_eq!(
        names(&select(vec![big, tally(&["a:1"], 1, 1)], 5)),
        vec![set(&["a:1"])]
    );
}

#[test]
fn zero_count_keeps_nothing() {
    let c = config("count: 0\nwindow_minutes: 60\nbudget_gib: 1000\n");
    assert_eq!(c.limit(), 0);
    assert!(select(vec![tally(&["a:1"], 9, 9)], c.limit()).is_empty());
}

#[test]
fn the_budget_caps_the_number_of_caches() {
    let c = config("count: 10\nwindow_minutes: 60\nbudget_gib: 100\ncache_size_gib: 40\n");
    assert_eq!(c.limit(), 2, "100 GiB holds two caches of 40 GiB");
    let c = config("count: 3\nwindow_minutes: 60\nbudget_gib: 1000\n");
    assert_eq!(c.cache_size_gib, 20, "the default size");
    assert_eq!(c.limit(), 3, "count is the cap when the budget holds more");
    let c = config("count: 3\nwindow_minutes: 60\nbudget_gib: 19\n");
    assert_eq!(c.limit(), 0, "no room for one cache");
    let tallies = (1..=5)
        .map(|i| Tally {
            images: vec![format!("img:{i}")],
            uses: i,
            last: i,
        })
        .collect();
    let c = config("count: 4\nwindow_minutes: 60\nbudget_gib: 60\n");
    assert_eq!(
        names(&select(tallies, c.limit())),
        vec![set(&["img:5"]), set(&["img:4"]), set(&["img:3"])]
    );
}

#[test]
fn config_is_checked_when_read() {
    assert!(
        serde_yaml::from_str::<KeepTopConfig>("count: 1\nwindow_minutes: 0\nbudget_gib: 20\n")
            .is_err()
    );
    let err = serde_yaml::from_str::<KeepTopConfig>(
        "count: 1\nwindow_minutes: 5\nbudget_gib: 20\ncache_size_gib: 10\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("cache_size_gib"), "{err}");
    assert!(serde_yaml::from_str::<KeepTopConfig>("count: 1\nwindow_minutes: 5\n").is_err());
    assert!(
        serde_yaml::from_str::<KeepTopConfig>(
            "count: 1\nwindow_minutes: 5\nbudget_gib: 20\nsize: 20\n"
        )
        .is_err()
    );
}

#[test]
fn uses_older_than_the_window_expire() {
    let usage = Usage::default();
    let window = 10;
    usage.record_at(set(&["old:1"]), 0, window);
    usage.record_at(set(&["old:1"]), 0, window);
    usage.record_at(set(&["new:1"]), 5, window);
    // Minute 9: both are within the last ten minutes (0..=9).
    let mut at9 = usage.tallies_at(9, window);
    at9.sort_by(|a, b| a.images.cmp(&b.images));
    assert_eq!(
        at9.iter().map(|t| t.uses).collect::<Vec<_>>(),
        vec![1, 2],
        "{at9:?}"
    );
    // Minute 10: minute 0 has left the window.
    let at10 = usage.tallies_at(10, window);
    assert_eq!(names(&at10), vec![set(&["new:1"])]);
    assert_eq!(usage.buckets(), 1, "the expired bucket is dropped");
    // Recording drops old buckets too: memory is bounded by the window.
    for minute in 0..100 {
        usage.record_at(set(&["x:1"]), 100 + minute, window);
    }
    assert_eq!(usage.buckets(), 10);
    assert!(usage.tallies_at(300, window).is_empty());
}

#[test]
fn ties_go_to_the_set_used_last_even_within_a_minute() {
    let usage = Usage::default();
    usage.record_at(set(&["a:1"]), 3, 60);
    usage.record_at(set(&["b:1"]), 3, 60);
    usage.record_at(set(&["b:1"]), 4, 60);
    usage.record_at(set(&["a:1"]), 4, 60);
    let top = select(usage.tallies_at(4, 60), 1);
    assert_eq!(names(&top), vec![set(&["a:1"])]);
    usage.record_at(set(&["b:1"]), 4, 60);
    let top = select(usage.tallies_at(4, 60), 1);
    assert_eq!(top, vec![tally(&["b:1"], 3, 5)]);
}

#[test]
fn a_pods_image_set_is_normalised_sorted_and_without_repeats() {
    let pod = ResolvedPod {
        init_containers: vec![ContainerSpec {
            image: "docker.io/library/busybox".into(),
            ..Default::default()
        }],
        containers: vec![
            ContainerSpec {
                image: "registry.example.com:5000/team/app:v2".into(),
                ..Default::default()
            },
            ContainerSpec {
                image: "nginx:1.25".into(),
                ..Default::default()
            },
            ContainerSpec {
                image: "busybox:latest".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    assert_eq!(
        image_set(&pod),
        set(&[
            "busybox:latest",
            "nginx:1.25",
            "registry.example.com:5000/team/app:v2"
        ])
    );
    assert_eq!(
        normalise("example.com/a@sha256:ab"),
        "example.com/a@sha256:ab"
    );
    assert_eq!(
        normalise("index.docker.io/bitnami/redis"),
        "bitnami/redis:latest"
    );
}

#[tokio::test(start_paused = true)]
async fn record_counts_in_minutes_of_the_clock_and_clones_share_the_counts() {
    let c = config("count: 2\nwindow_minutes: 5\nbudget_gib: 100\n");
    let shared = c.clone();
    let pod = ResolvedPod {
        containers: vec![ContainerSpec {
            image: "nginx".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    c.record(&pod);
    tokio::time::advance(Duration::from_secs(120)).await;
    shared.record(&pod);
    let now = c.usage.minute();
    assert_eq!(now, 2);
    assert_eq!(
        shared.usage.tallies_at(now, 5),
        vec![tally(&["nginx:latest"], 2, 2)]
    );
    tokio::time::advance(Duration::from_secs(4 * 60)).await;
    let now = c.usage.minute();
    assert_eq!(c.usage.tallies_at(now, 5)[0].uses, 1, "minute 0 expired");
    // A pod without images counts nothing.
    c.record(&ResolvedPod::default());
    assert_eq!(c.usage.tallies_at(now, 5).len(), 1);
}

#[test]
fn names_are_stable_short_hashes_of_the_set() {
    let a = object_name(&set(&["busybox:latest", "nginx:1.25"]));
    assert_eq!(a, object_name(&set(&["busybox:latest", "nginx:1.25"])));
    assert_ne!(a, object_name(&set(&["busybox:latest"])));
    assert!(
        a.starts_with("vk-top-") && a.len() == "vk-top-".len() + 10,
        "{a}"
    );
    assert!(a[7..].bytes().all(|b| b.is_ascii_hexdigit()));
}

fn managed(images: &[&str], size: u32) -> ImageCache {
    let mut o = ImageCache::new(&object_name(&set(images)), wanted_spec(&set(images), size));
    o.metadata.labels = Some([(MANAGED_BY.to_string(), MANAGED_BY_VK.to_string())].into());
    o
}

#[test]
fn plan_creates_the_missing_deletes_the_fallen_and_leaves_others_alone() {
    let wanted = vec![tally(&["a:1"], 5, 5), tally(&["b:1"], 4, 4)];
    let mut users = ImageCache::new("team-cache", wanted_spec(&set(&["z:1"]), 20));
    users.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
    // Someone else's object under the name vk would use: not managed, never changed.
    let squatter = ImageCache::new(&object_name(&set(&["b:1"])), ImageCacheSpec::default());
    let mut going = managed(&["gone:1"], 20);
    going.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
    let existing = vec![
        managed(&["a:1"], 40),
        managed(&["old:1"], 20),
        users,
        squatter,
        going,
    ];
    let labels: BTreeMap<String, String> = [("team".to_string(), "a".to_string())].into();
    let p = plan(&wanted, &existing, 20, &labels, true);
    assert!(p.create.is_empty(), "b's name is taken: {:?}", p.create);
    assert_eq!(
        p.respec,
        vec![(object_name(&set(&["a:1"])), wanted_spec(&set(&["a:1"]), 20))]
    );
    assert_eq!(p.delete, vec![object_name(&set(&["old:1"]))]);

    // Nothing yet: both are made, labelled for the controller's selector too.
    let p = plan(&wanted, &[], 20, &labels, true);
    assert_eq!(p.create.len(), 2);
    let first = &p.create[0];
    assert_eq!(first.name(), object_name(&set(&["a:1"])));
    assert_eq!(first.spec.images, set(&["a:1"]));
    assert_eq!(first.spec.image_cache_size, Some(20));
    assert_eq!(first.labels().get(MANAGED_BY).unwrap(), "vk");
    assert_eq!(first.labels().get("team").unwrap(), "a");

    // Before a whole window has been watched nothing is deleted; K=0 then empties the set.
    let old = vec![managed(&["old:1"], 20)];
    assert_eq!(
        plan(&[], &old, 20, &BTreeMap::new(), false),
        Plan::default()
    );
    assert_eq!(
        plan(&[], &old, 20, &BTreeMap::new(), true).delete,
        vec![object_name(&set(&["old:1"]))]
    );
}

#[test]
fn selectors_of_equality_terms_become_labels() {
    assert_eq!(selector_labels(None), Some(BTreeMap::new()));
    let labels = selector_labels(Some("team=a, env==prod")).unwrap();
    assert_eq!(labels.get("team").unwrap(), "a");
    assert_eq!(labels.get("env").unwrap(), "prod");
    assert_eq!(selector_labels(Some("team!=a")), None);
    assert_eq!(selector_labels(Some("env in (a,b)")), None);
    assert_eq!(selector_labels(Some("team")), None);
    assert_eq!(selector_labels(Some("!team")), None);
}

#[tokio::test]
async fn the_providers_of_all_nodes_count_into_one_usage() {
    use crate::tests_support::{cloud, config as node_config, pod, sim_container};
    use crate::{EciProvider, annotations::IMAGE_CACHE};
    use vk_core::provider::{Provider, RestartPolicy};

    let cloud = cloud(|_| {}).await;
    let mut a_config = node_config(&cloud, "node-a");
    let keep = config("count: 2\nwindow_minutes: 30\nbudget_gib: 100\n");
    a_config.image_cache.keep_top_images = Some(keep.clone());
    let mut b_config = a_config.clone();
    b_config.node_name = "node-b".into();
    let a = EciProvider::new(a_config).unwrap();
    let b = EciProvider::sharing(a.client().clone(), b_config).unwrap();

    let app = |uid: &str, image: &str| {
        let mut c = sim_container("app", "forever", 0);
        c.image = image.into();
        pod(uid, RestartPolicy::Always, vec![c])
    };
    a.create(&app("p1", "nginx:1.25")).await.unwrap();
    b.create(&app("p2", "docker.io/library/nginx:1.25"))
        .await
        .unwrap();
    b.create(&app("p3", "redis:7")).await.unwrap();
    // A second create of the same pod is not a second use.
    a.create(&app("p1", "nginx:1.25")).await.unwrap();
    // A pod that does not match caches would not use one.
    let mut off = app("p4", "redis:7");
    off.annotations.insert(IMAGE_CACHE.into(), "false".into());
    a.create(&off).await.unwrap();

    let now = keep.usage.minute();
    let top = select(keep.usage.tallies_at(now, 30), keep.limit());
    assert_eq!(
        top.iter()
            .map(|t| (t.images.clone(), t.uses))
            .collect::<Vec<_>>(),
        vec![(set(&["nginx:1.25"]), 2), (set(&["redis:7"]), 1)]
    );
}
