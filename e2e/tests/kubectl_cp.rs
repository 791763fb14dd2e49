//! `kubectl cp` on the cloud nodes: kubectl execs `tar` with stdin (into the pod) or stdout (out
//! of it), which vk carries over the cloud's exec like any other; 1 MiB, byte for byte. Out of
//! the pod only on eci: aci and fargate exec through a terminal session, whose output does not
//! carry binary data intact (a README limit).

use std::time::Duration;

use e2e::harness::Options;
use e2e::jenkins::text;
use e2e::pods::pod_for_node;
use e2e::{kubectl, unique};

/// Into the pod, and with `back` out of it again.
async fn cp(options: Options, back: bool) {
    let s = options.serving_cert().start().await;
    let mut pod = pod_for_node("shell", &s.vk.node, &["main"], &[]);
    pod.spec.as_mut().unwrap().containers[0].command =
        Some(vec!["sh".into(), "-c".into(), "sleep 3600".into()]);
    s.run_pod_within(&pod, Duration::from_secs(120)).await;

    let dir = std::env::temp_dir().join(unique("vk-e2e-eci-cp"));
    std::fs::create_dir_all(&dir).unwrap();
    let local = dir.join("data.bin");
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..1024 * 1024)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    std::fs::write(&local, &data).unwrap();
    let remote = format!("{}/shell:/tmp/data.bin", s.ns.name);
    // The serving certificate may take a moment to reach vk.
    let mut out = kubectl(&["cp", &local.to_string_lossy(), &remote, "-c", "main"]);
    for _ in 0..15 {
        if out.status.success() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        out = kubectl(&["cp", &local.to_string_lossy(), &remote, "-c", "main"]);
    }
    assert!(
        out.status.success(),
        "kubectl cp into the pod: {}",
        text(&out.stderr)
    );
    let size = kubectl(&[
        "-n",
        &s.ns.name,
        "exec",
        "shell",
        "-c",
        "main",
        "--",
        "wc",
        "-c",
        "/tmp/data.bin",
    ]);
    assert!(
        text(&size.stdout).starts_with("1048576"),
        "{}",
        text(&size.stdout)
    );

    if !back {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let back = dir.join("back.bin");
    let out = kubectl(&["cp", &remote, &back.to_string_lossy(), "-c", "main"]);
    assert!(
        out.status.success(),
        "kubectl cp out of the pod: {}",
        text(&out.stderr)
    );
    let copied = std::fs::read(&back).expect("the copy back");
    assert!(
        copied == data,
        "the copy back differs ({} bytes)",
        copied.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn kubectl_cp_copies_both_ways_byte_for_byte_on_an_eci_node() {
    cp(Options::eci("vk-cp-eci", "process", &[]), true).await;
}

#[tokio::test]
async fn kubectl_cp_copies_into_the_pod_on_an_aci_node() {
    cp(Options::aci("vk-cp-aci", "process", &[]), false).await;
}

#[tokio::test]
async fn kubectl_cp_copies_into_the_pod_on_a_fargate_node() {
    cp(Options::fargate("vk-cp-fargate", "process", &[]), false).await;
}
