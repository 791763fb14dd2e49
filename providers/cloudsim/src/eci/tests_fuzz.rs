//! The ECI face fuzzed with bad parameters: every action (and unknown ones) called with valid
//! requests mutated at random (keys dropped, doubled or renumbered, values replaced by
//! junk: empty, huge, negative, out of range, not numbers, not JSON, control characters).
//! Whatever comes in, the face answers in ECI's error shape with a 4xx, or succeeds; never a
//! panic and never a 5xx (the simulator injects those only on purpose).
//!
//! `cargo test` runs a few thousand calls from a fixed seed; `VK_FUZZ_SECONDS=600` runs that
//! long from a seed of the clock (printed, and `VK_FUZZ_SEED` replays one).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::api::dispatch;
use super::config::MockCloudConfig;
use super::error::error_body;
use super::face::Face;
use crate::engine::executor::simulate::SimulateExecutor;
use eci::wire::params::Params;

/// Every action the face serves, and a few it does not.
const ACTIONS: &[&str] = &[
    "CreateContainerGroup",
    "DescribeContainerGroups",
    "DescribeContainerGroupStatus",
    "DescribeContainerGroupEvents",
    "DescribeContainerGroupMetric",
    "DescribeMultiContainerGroupMetric",
    "DescribeContainerLog",
    "DeleteContainerGroup",
    "DeleteContainerGroups",
    "RestartContainerGroup",
    "UpdateContainerGroup",
    "ExecContainerCommand",
    "DescribeRegions",
    "DescribeVSwitches",
    "DescribeSecurityGroups",
    "DescribeZones",
    "DescribeAccountAttributes",
    "",
    "createcontainergroup",
    "DescribeContainerGroups\u{0}",
];

/// Requests the face accepts, to mutate.
const VALID: &[&[(&str, &str)]] = &[
    &[
        ("ContainerGroupName", "fuzz"),
        ("Container.1.Name", "main"),
        ("Container.1.Image", "busybox"),
        ("Container.1.Command.1", "sleep"),
        ("Container.1.Arg.1", "10"),
        ("Container.1.Cpu", "0.5"),
        ("Container.1.Memory", "1"),
        ("Container.1.EnvironmentVar.1.Key", "MOCKCLOUD_RUN_MS"),
        ("Container.1.EnvironmentVar.1.Value", "forever"),
        ("Container.1.VolumeMount.1.Name", "ws"),
        ("Container.1.VolumeMount.1.MountPath", "/ws"),
        ("Container.1.Port.1.Port", "8080"),
        ("Container.1.Port.1.Protocol", "TCP"),
        ("Container.1.ReadinessProbe.TcpSocket.Port", "8080"),
        ("Container.1.ReadinessProbe.PeriodSeconds", "5"),
        ("InitContainer.1.Name", "init"),
        ("InitContainer.1.Image", "busybox"),
        ("Volume.1.Name", "ws"),
        ("Volume.1.Type", "EmptyDirVolume"),
        ("Volume.2.Name", "cfg"),
        ("Volume.2.Type", "ConfigFileVolume"),
        (
            "Volume.2.ConfigFileVolume.ConfigFileToPath.1.Path",
            "a.conf",
        ),
        (
            "Volume.2.ConfigFileVolume.ConfigFileToPath.1.Content",
            "aGVsbG8=",
        ),
        ("Cpu", "1"),
        ("Memory", "2"),
        ("RestartPolicy", "Never"),
        ("Tag.1.Key", "vk.io/pod-uid"),
        ("Tag.1.Value", "u-1"),
        ("ClientToken", "tok-1"),
        ("ActiveDeadlineSeconds", "600"),
        ("TerminationGracePeriodSeconds", "5"),
        ("DnsPolicy", "None"),
        ("DnsConfig.NameServer.1", "10.0.0.10"),
        ("HostAliase.1.Ip", "10.0.0.1"),
        ("HostAliase.1.Hostname.1", "svc"),
    ],
    &[
        ("ContainerGroupIds", "[\"eci-0\"]"),
        ("Limit", "20"),
        ("NextToken", ""),
        ("Tag.1.Key", "vk.io/node"),
        ("Tag.1.Value", "n"),
        ("SinceSecond", "10"),
        ("Status", "Running"),
    ],
    &[
        ("ContainerGroupId", "eci-0"),
        ("ContainerName", "main"),
        ("Tail", "10"),
        ("StartTime", "2024-01-01T00:00:00Z"),
        ("Command", "[\"echo\",\"hi\"]"),
        ("Sync", "true"),
        ("TTY", "false"),
        ("Stdin", "false"),
        ("Period", "60"),
    ],
];

/// Values that are wrong in every way a parser can get wrong.
const JUNK: &[&str] = &[
    "",
    " ",
    "-1",
    "0",
    "-0",
    "1e309",
    "NaN",
    "inf",
    "99999999999999999999999999",
    "18446744073709551616",
    "2147483648",
    "0.0000000001",
    "true",
    "maybe",
    "[",
    "[]",
    "[\"\"]",
    "{}",
    "null",
    "[1,2,3]",
    "[\"a\",",
    "\u{0}",
    "\u{202e}evil",
    "é",
    "../../etc/passwd",
    "eci-does-not-exist",
    "2024-13-45T99:99:99Z",
    "====",
];

use crate::test_support::FuzzRng as Rng;

/// A junk value: one of the list, a huge one, or a number gone wrong.
fn junk(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => "x".repeat(1 + rng.below(200_000)),
        1 => format!("-{}", rng.next_u64()),
        2 => format!("{}", rng.next_u64()),
        _ => rng.pick(JUNK).to_string(),
    }
}

/// A valid request with a few random mutations.
fn mutate(rng: &mut Rng) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = rng
        .pick(VALID)
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for _ in 0..1 + rng.below(4) {
        if pairs.is_empty() {
            break;
        }
        let i = rng.below(pairs.len());
        match rng.below(6) {
            0 => {
                pairs.remove(i);
            }
            1 => {
                let pair = pairs[i].clone();
                pairs.push(pair);
            }
            2 => {
                // Another index: 0, huge, negative or not a number.
                let index = rng.pick(&["0", "-1", "999999999", "1a", "", "4294967296"]);
                let key = pairs[i].0.replacen(".1.", &format!(".{index}."), 1);
                pairs[i].0 = key;
            }
            3 => pairs[i].0 = junk(rng),
            _ => pairs[i].1 = junk(rng),
        }
    }
    pairs
}

fn face() -> Face {
    let config = MockCloudConfig {
        schedule_latency_ms: 0,
        provision_latency_ms: 0,
        latency_jitter_ms: 0,
        ..Default::default()
    };
    Face::new(config, Arc::new(SimulateExecutor::new(Default::default())))
}

/// One call; a message saying what was wrong with its answer, if anything was.
async fn check(face: &Face, action: &str, pairs: &[(String, String)]) -> Result<(), String> {
    let mut p = Params::new();
    p.push("RegionId", "cn-hangzhou");
    for (k, v) in pairs {
        p.push(k.as_str(), v.as_str());
    }
    match dispatch(face, action, &p, "localhost").await {
        Ok(body) => serde_json::from_str::<Value>(&body)
            .map(|_| ())
            .map_err(|e| format!("a success that is not JSON ({e}): {body:.200}")),
        Err(e) if e.status >= 500 => Err(format!("{} {}: {:.300}", e.status, e.code, e.message)),
        Err(e) => {
            let body: Value = serde_json::from_str(&error_body(&e, "req-1", "localhost"))
                .map_err(|err| format!("an error body that is not JSON: {err}"))?;
            let shaped = ["Code", "Message", "RequestId", "HostId", "Recommend"]
                .iter()
                .all(|k| body[k].is_string());
            if !shaped || e.code.is_empty() || !(400..500).contains(&e.status) {
                return Err(format!("not ECI's error shape: {} {body}", e.status));
            }
            Ok(())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_get_ecis_error_shape_never_a_panic_or_a_5xx() {
    let seconds: Option<u64> = std::env::var("VK_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let seed = std::env::var("VK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| match seconds {
            Some(_) => {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
                    | 1
            }
            None => 0x5eed_1234_abcd_0001,
        });
    let until = Instant::now() + Duration::from_secs(seconds.unwrap_or(0));
    let mut rng = Rng(seed);
    let face = face();
    let mut calls = 0u64;
    let mut failures = Vec::new();
    loop {
        let action = *rng.pick(ACTIONS);
        let pairs = mutate(&mut rng);
        if let Err(why) = check(&face, action, &pairs).await {
            failures.push(format!("{action} {pairs:.400?}: {why}"));
        }
        calls += 1;
        let done = match seconds {
            Some(_) => Instant::now() >= until,
            None => calls >= 3000,
        };
        if done || failures.len() >= 10 {
            break;
        }
    }
    eprintln!(
        "[fuzz] the ECI face: {calls} calls, seed {seed}, {} groups made, {} bad answers",
        face.engine().len(),
        failures.len()
    );
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n"));
}
