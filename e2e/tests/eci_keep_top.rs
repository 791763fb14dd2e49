//! `keep_top_images`' reconcile step against a real control plane: the wanted image sets
//! become `ImageCache` objects labelled `app.kubernetes.io/managed-by: vk`, a managed object's
//! spec is set back, managed objects that fell out are deleted, and objects without the label
//! are never touched (not even one under a name vk would use). No vk runs here, so no
//! controller adds its finalizer and deletes are immediate.

use std::collections::BTreeMap;

use e2e::{kubectl_ok, repo_root};
use eci::image_cache::keep_top::{self, KeepTopConfig, MANAGED_BY, Tally};
use eci::image_cache::{ImageCache, ImageCacheSpec};
use kube::ResourceExt as _;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

fn set(images: &[&str]) -> Vec<String> {
    images.iter().map(|s| s.to_string()).collect()
}

fn tally(images: &[&str], uses: u64) -> Tally {
    Tally {
        images: set(images),
        uses,
        last: uses,
    }
}

#[tokio::test]
async fn keep_top_makes_the_cluster_hold_exactly_the_wanted_sets() {
    let crd = repo_root().join("manifests/crds/imagecache.yaml");
    kubectl_ok(&["apply", "-f", crd.to_str().unwrap()]);
    kubectl_ok(&[
        "wait",
        "--for=condition=established",
        "--timeout=60s",
        "crd/imagecaches.eci.alibabacloud.com",
    ]);
    let api: Api<ImageCache> = Api::all(e2e::client().await);
    let config: KeepTopConfig =
        serde_yaml::from_str("count: 2\nwindow_minutes: 10\nbudget_gib: 100\n").unwrap();
    let labels: BTreeMap<String, String> = [("team".to_string(), "a".to_string())].into();
    let list = ListParams::default().labels(&format!("{MANAGED_BY}=vk,team=a"));
    let (a, b, c) = (
        set(&["nginx:1.25"]),
        set(&["busybox:1.36", "redis:7"]),
        set(&["python:3.12"]),
    );

    // Someone's own cache, and someone's object under the name vk would give set c.
    let own = ImageCache::new(
        "team-own",
        ImageCacheSpec {
            images: set(&["nginx:1.25"]),
            ..Default::default()
        },
    );
    api.create(&PostParams::default(), &own).await.unwrap();
    let squatter = ImageCache::new(
        &keep_top::object_name(&c),
        ImageCacheSpec {
            images: set(&["alpine:3"]),
            ..Default::default()
        },
    );
    api.create(&PostParams::default(), &squatter).await.unwrap();

    // 1. Two sets wanted: both made, labelled, with the configured size.
    let wanted = vec![
        tally(&["nginx:1.25"], 5),
        tally(&["busybox:1.36", "redis:7"], 3),
    ];
    keep_top::reconcile_once(&api, &list, &wanted, &config, &labels, false)
        .await
        .unwrap();
    let held = api.list(&list).await.unwrap().items;
    let mut names: Vec<String> = held.iter().map(|o| o.name_any()).collect();
    names.sort();
    let mut expected = vec![keep_top::object_name(&a), keep_top::object_name(&b)];
    expected.sort();
    assert_eq!(names, expected);
    for o in &held {
        assert_eq!(o.labels().get(MANAGED_BY).map(String::as_str), Some("vk"));
        assert_eq!(o.labels().get("team").map(String::as_str), Some("a"));
        assert_eq!(o.spec.image_cache_size, Some(20));
    }
    let made_a = api.get(&keep_top::object_name(&a)).await.unwrap();
    assert_eq!(made_a.spec.images, a);

    // 2. A managed object edited by hand is set back.
    api.patch(
        &keep_top::object_name(&a),
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "spec": { "imageCacheSize": 40 } })),
    )
    .await
    .unwrap();
    keep_top::reconcile_once(&api, &list, &wanted, &config, &labels, false)
        .await
        .unwrap();
    let again = api.get(&keep_top::object_name(&a)).await.unwrap();
    assert_eq!(again.spec.image_cache_size, Some(20));
    assert_eq!(again.uid(), made_a.uid(), "set back, not made again");

    // 3. Before a whole window nothing is deleted; after it, a set that fell out is.
    let wanted = vec![tally(&["busybox:1.36", "redis:7"], 4)];
    keep_top::reconcile_once(&api, &list, &wanted, &config, &labels, false)
        .await
        .unwrap();
    assert!(
        api.get_opt(&keep_top::object_name(&a))
            .await
            .unwrap()
            .is_some()
    );
    keep_top::reconcile_once(&api, &list, &wanted, &config, &labels, true)
        .await
        .unwrap();
    assert!(
        api.get_opt(&keep_top::object_name(&a))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        api.get_opt(&keep_top::object_name(&b))
            .await
            .unwrap()
            .is_some()
    );

    // 4. A set whose name is taken by an object without the label: not an error, and that
    //    object is left as it was; K=0 then removes every managed object, only those.
    let wanted = vec![tally(&["python:3.12"], 9)];
    keep_top::reconcile_once(&api, &list, &wanted, &config, &labels, true)
        .await
        .unwrap();
    let still = api.get(&keep_top::object_name(&c)).await.unwrap();
    assert_eq!(still.spec.images, set(&["alpine:3"]));
    assert!(still.labels().get(MANAGED_BY).is_none());
    keep_top::reconcile_once(&api, &list, &[], &config, &labels, true)
        .await
        .unwrap();
    assert!(api.list(&list).await.unwrap().items.is_empty());
    assert!(api.get_opt("team-own").await.unwrap().is_some());
    assert!(
        api.get_opt(&keep_top::object_name(&c))
            .await
            .unwrap()
            .is_some()
    );
}
