//! A GitLab Runner job on eci, aci and fargate nodes: the runner's job pod
//! (`manifests/examples/gitlab-job-pod.yaml`) driven the way its Kubernetes executor drives it
//! (`e2e/gitlab-runner`, with client-go over SPDY): each stage's script saved by an exec,
//! started by an attach with stdin only that writes one line to the build container's shell,
//! its output and exit code read back from the log file through an exec in the helper
//! container. None of the three clouds can write to a container's stdin; vk carries the attach
//! through exec into a pipe on it. The shell survives every attach (its stdin never ends), and
//! the stages' output also reaches `kubectl logs`.

use std::process::Command;
use std::time::Duration;

use e2e::harness::Options;
use e2e::jenkins::text;
use e2e::vk::health_get;
use e2e::{cluster, kubectl_command, repo_root};

const POD: &str = "runner-t3st-project-42-concurrent-0";

/// `e2e/gitlab-runner/build.sh`: the driver, built once into the cache.
fn gitlab_job() -> String {
    let out = Command::new(repo_root().join("e2e/gitlab-runner/build.sh"))
        .output()
        .expect("running e2e/gitlab-runner/build.sh");
    assert!(
        out.status.success(),
        "building gitlab-job: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

async fn a_job_runs_its_stages_through_attach(options: Options) {
    let driver = gitlab_job();
    let health = e2e::vk::free_port();
    let s = options
        .serving_cert()
        .config(&format!("health_port: {health}\n"))
        .start()
        .await;
    s.example_pod_ready("gitlab-job-pod.yaml", POD, Duration::from_secs(120))
        .await;

    let dir = std::env::temp_dir().join(format!("vk-gitlab-{}", s.ns.name));
    std::fs::create_dir_all(&dir).expect("making the stages' dir");
    let stages = [
        (
            "get_sources",
            "mkdir -p \"$CI_PROJECT_DIR\"\ncd \"$CI_PROJECT_DIR\"\necho hello > README\necho \"fetched into $(pwd)\"\n",
        ),
        (
            "step_script",
            "cd \"$CI_PROJECT_DIR\"\ncat README\necho \"job $CI_JOB_ID\"\necho to-stderr >&2\ntest -t 0 && echo terminal || echo no-terminal\n",
        ),
        ("failing_script", "echo failing\nexit 3\necho not-reached\n"),
    ];
    let mut args = vec![
        cluster().kubeconfig.to_string_lossy().to_string(),
        s.ns.name.clone(),
        POD.to_string(),
        "/scripts-42-1001".to_string(),
        "/logs-42-1001".to_string(),
    ];
    for (name, commands) in stages {
        let file = dir.join(name);
        std::fs::write(&file, commands).expect("writing a stage");
        args.push(format!("{name}={}", file.display()));
    }
    // The serving certificate may take a moment to reach vk: retry the first run.
    let mut out = Command::new(&driver).args(&args).output().unwrap();
    for _ in 0..10 {
        if out.status.success() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        out = Command::new(&driver).args(&args).output().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let job = text(&out.stdout);
    eprintln!("the job as the runner would log it:\n{job}");
    assert!(
        out.status.success(),
        "gitlab-job failed: {}\n{job}",
        text(&out.stderr)
    );
    let want = [
        "stage get_sources exited 0",
        "  | fetched into /builds/group/app",
        "stage step_script exited 0",
        "  | hello",
        "  | job 1001",
        "  | to-stderr",
        "  | no-terminal",
        "stage failing_script exited 3",
        "  | failing",
    ];
    let mut lines = job.lines();
    for w in want {
        assert!(
            lines.any(|l| l == w),
            "{w:?} missing or out of order in:\n{job}"
        );
    }
    assert!(!job.contains("not-reached"), "{job}");

    // The shell took every stage on one stdin that never ended: still running, not restarted.
    s.assert_containers_running(POD).await;
    // What the stages wrote through `tee` is the build container's output too.
    let logs = kubectl_command(&["-n", &s.ns.name, "logs", POD, "-c", "build"])
        .output()
        .unwrap();
    assert!(
        text(&logs.stdout).contains("job 1001"),
        "{}",
        text(&logs.stdout)
    );
    // One attach per stage went through vk.
    let metrics = health_get(health, "/metrics").await;
    let attaches = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vk_streaming_sessions_total{kind=\"attach\"} "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(attaches >= 3, "attach sessions: {attaches}\n{metrics}");
}

#[tokio::test]
async fn a_gitlab_runner_job_runs_its_stages_through_attach_on_an_eci_node() {
    a_job_runs_its_stages_through_attach(Options::eci("vk-gitlab-eci", "process", &[])).await;
}

#[tokio::test]
async fn a_gitlab_runner_job_runs_its_stages_through_attach_on_an_aci_node() {
    a_job_runs_its_stages_through_attach(Options::aci("vk-gitlab-aci", "process", &[])).await;
}

#[tokio::test]
async fn a_gitlab_runner_job_runs_its_stages_through_attach_on_a_fargate_node() {
    a_job_runs_its_stages_through_attach(Options::fargate("vk-gitlab-fargate", "process", &[]))
        .await;
}

/// `kubectl attach` without -i: what the container writes from then on.
async fn kubectl_attach_follows_the_output(options: Options) {
    let s = options.serving_cert().start().await;
    let mut pod = e2e::pods::pod_for_node("ticker", &s.vk.node, &["main"], &[]);
    pod.spec.as_mut().unwrap().containers[0].command = Some(vec![
        "sh".into(),
        "-c".into(),
        "i=0; while :; do i=$((i + 1)); echo tick-$i; sleep 0.2; done".into(),
    ]);
    s.run_pod_within(&pod, Duration::from_secs(120)).await;
    let mut attach = kubectl_command(&["-n", &s.ns.name, "attach", "ticker", "-c", "main"]);
    attach
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = tokio::process::Command::from(attach).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let got = tokio::time::timeout(Duration::from_secs(60), async move {
        use tokio::io::AsyncBufReadExt as _;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let mut ticks = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("tick-") {
                ticks.push(line);
                if ticks.len() == 3 {
                    break;
                }
            }
        }
        ticks
    })
    .await;
    let _ = child.kill().await;
    let ticks = got.expect("three ticks through kubectl attach within 60 s");
    assert_eq!(ticks.len(), 3, "{ticks:?}");
    // Consecutive: the output as the container writes it, from the attach on.
    let n: Vec<u64> = ticks
        .iter()
        .filter_map(|t| t.strip_prefix("tick-")?.parse().ok())
        .collect();
    assert_eq!(n.len(), 3, "{ticks:?}");
    assert!(n[1] == n[0] + 1 && n[2] == n[1] + 1, "{ticks:?}");
}

#[tokio::test]
async fn kubectl_attach_follows_the_containers_output_on_an_eci_node() {
    kubectl_attach_follows_the_output(Options::eci("vk-attach-eci", "process", &[])).await;
}

#[tokio::test]
async fn kubectl_attach_follows_the_containers_output_on_a_fargate_node() {
    kubectl_attach_follows_the_output(Options::fargate("vk-attach-fargate", "process", &[])).await;
}
