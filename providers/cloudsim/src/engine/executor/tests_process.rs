//! The `process` executor with real sandboxes: containers whose main is a timer, exec'd into
//! through their holder; attach to a main process. Needs bwrap and nsenter (util-linux).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::engine::catalog::ImageEntry;
use crate::engine::executor::process::{Current, ProcessConfig, ProcessExecutor, check_bwrap};
use crate::engine::executor::simulate::{SimulateConfig, SimulateExecutor};
use crate::engine::executor::{
    ExecStreams, Executor, ExecutorError, Exit, GroupSpec, Output, RunContext,
};
use crate::engine::logstore::LogStore;
use crate::engine::spec::{ContainerSpec, Main, SimulatedMain};
use crate::test_support::{processes_with, wait_until};

/// An executor working below a fresh directory, removed when the test's guard drops.
async fn executor(test: &str) -> (Arc<ProcessExecutor>, WorkDir) {
    if let Err(e) = check_bwrap(std::path::Path::new("bwrap")).await {
        panic!("{e}");
    }
    let dir = std::env::temp_dir().join(format!("vk-exec-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exec = ProcessExecutor::new(ProcessConfig {
        work_dir: Some(dir.clone()),
        ..Default::default()
    });
    (Arc::new(exec), WorkDir(dir))
}

struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn group(id: &str) -> Arc<GroupSpec> {
    Arc::new(GroupSpec {
        id: id.into(),
        name: format!("pod-{id}"),
        volumes: vec![],
        ip: "127.0.0.1".into(),
        names: Default::default(),
        share_process_namespace: false,
    })
}

fn timer(name: &str, run: Option<Duration>) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        main: Main::Simulated(SimulatedMain {
            run,
            exit_code: 0,
            log_interval: Some(Duration::from_millis(100)),
        }),
        ..Default::default()
    }
}

fn command(name: &str, argv: &[&str]) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        command: argv.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    }
}

/// Starts a run of `container` on its own task.
fn start(
    exec: &Arc<ProcessExecutor>,
    group: &Arc<GroupSpec>,
    container: &ContainerSpec,
) -> (tokio::task::JoinHandle<Exit>, Arc<LogStore>) {
    let log = Arc::new(LogStore::new(1000));
    let ctx = RunContext {
        group: group.clone(),
        container: container.clone().into(),
        image: ImageEntry::default(),
        log: log.clone(),
        restart_count: 0,
        elapsed: std::time::Duration::ZERO,
    };
    let exec = exec.clone();
    (tokio::spawn(async move { exec.run(ctx).await }), log)
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// `sh -c script` in the container; its output as text and its exit code.
async fn sh(
    exec: &ProcessExecutor,
    group: &GroupSpec,
    container: &ContainerSpec,
    script: &str,
) -> (String, i32) {
    let out = exec
        .exec(group, container, &argv(&["sh", "-c", script]))
        .await
        .expect("exec");
    (
        String::from_utf8_lossy(&out.output).into_owned(),
        out.exit_code,
    )
}

/// An interactive exec of `words` without stdin; its result and its stdout.
async fn interactive(
    exec: &ProcessExecutor,
    group: &GroupSpec,
    container: &ContainerSpec,
    words: &[&str],
) -> (Result<i32, ExecutorError>, String) {
    let (output, mut out_rx) = mpsc::channel(16);
    let (_resize, resize) = mpsc::channel(1);
    let streams = ExecStreams {
        stdin: None,
        output,
        tty: false,
        resize,
    };
    let read = async {
        let mut out = String::new();
        while let Some((on, chunk)) = out_rx.recv().await {
            if on == Output::Stdout {
                out.push_str(&String::from_utf8_lossy(&chunk));
            }
        }
        out
    };
    let command = argv(words);
    tokio::join!(
        exec.exec_interactive(group, container, &command, streams),
        read
    )
}

/// How many clients listen to the main process's stdout.
fn listeners(exec: &ProcessExecutor, group: &str, container: &str) -> usize {
    match exec.current(group, container) {
        Some(Current::Process { main, .. }) => main.stdout.receiver_count(),
        _ => 0,
    }
}

/// The bwrap of the run's holder, if it has one.
fn holder_of(exec: &ProcessExecutor, group: &str, container: &str) -> Option<u32> {
    match exec.current(group, container)? {
        Current::Timer(holder) => holder.started(),
        Current::Process { .. } => None,
    }
}

/// Starts a background job `sleep <marker>` in the container and checks it runs.
async fn background_sleep(
    exec: &ProcessExecutor,
    group: &GroupSpec,
    container: &ContainerSpec,
    marker: &str,
) {
    let (out, code) = sh(
        exec,
        group,
        container,
        &format!("sleep {marker} >/dev/null 2>&1 & echo started"),
    )
    .await;
    assert_eq!((out.as_str(), code), ("started\n", 0));
    wait_until("the background job runs", || {
        !processes_with(&format!("sleep\0{marker}")).is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_container_gets_a_sandbox_on_its_first_exec_and_loses_it_with_its_run() {
    let (exec, _dir) = executor("timer").await;
    let group = group("timer-1");
    let app = timer("app", Some(Duration::from_secs(5)));
    exec.prepare(&group).await.unwrap();
    let (run, log) = start(&exec, &group, &app);
    wait_until("the timer runs", || {
        exec.current(&group.id, "app").is_some()
    })
    .await;
    // Nothing runs, nothing is made, for a container nobody execs into.
    assert_eq!(holder_of(&exec, &group.id, "app"), None);
    assert!(!exec.root_dir(&group.id, "app").exists());

    let out = exec
        .exec(&group, &app, &argv(&["echo", "hello"]))
        .await
        .unwrap();
    assert_eq!((out.output.as_slice(), out.exit_code), (&b"hello\n"[..], 0));
    let holder = holder_of(&exec, &group.id, "app").expect("a holder");

    // A second exec joins the same sandbox: the job the first one leaves is there.
    let marker = "98712";
    background_sleep(&exec, &group, &app, marker).await;
    assert_eq!(holder_of(&exec, &group.id, "app"), Some(holder));
    let (out, code) = sh(&exec, &group, &app, "pwd; hostname; pgrep -x sleep | wc -l").await;
    assert_eq!((out.as_str(), code), ("/\npod-timer-1\n1\n", 0));

    // An interactive exec joins it too.
    let (code, out) = interactive(
        &exec,
        &group,
        &app,
        &["sh", "-c", "echo streamed; pgrep -x sleep"],
    )
    .await;
    assert_eq!(code.unwrap(), 0, "{out}");
    assert!(out.starts_with("streamed\n"), "{out}");
    assert_eq!(holder_of(&exec, &group.id, "app"), Some(holder));

    // The timer exits as planned; its holder goes, and the job with it.
    assert_eq!(run.await.unwrap(), Exit::code(0));
    assert!(log.select(None, None).len() > 2);
    wait_until("the background job ends", || {
        processes_with(&format!("sleep\0{marker}")).is_empty()
    })
    .await;
    assert!(exec.current(&group.id, "app").is_none());
    wait_until("the holder ends", || {
        !std::path::Path::new(&format!("/proc/{holder}")).exists()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_containers_jobs_end_when_its_run_is_dropped_or_its_group_removed() {
    let (exec, _dir) = executor("timer-drop").await;
    let group = group("timer-2");
    let app = timer("app", None);
    exec.prepare(&group).await.unwrap();

    // The run is dropped (the engine stops it).
    let (run, _log) = start(&exec, &group, &app);
    wait_until("the timer runs", || {
        exec.current(&group.id, "app").is_some()
    })
    .await;
    let marker = "98713";
    background_sleep(&exec, &group, &app, marker).await;
    run.abort();
    wait_until("the background job ends", || {
        processes_with(&format!("sleep\0{marker}")).is_empty()
    })
    .await;
    assert!(exec.current(&group.id, "app").is_none());

    // The next run gets a new sandbox, which the group's removal ends.
    let (run, _log) = start(&exec, &group, &app);
    wait_until("the timer runs again", || {
        exec.current(&group.id, "app").is_some()
    })
    .await;
    let marker = "98714";
    background_sleep(&exec, &group, &app, marker).await;
    exec.remove(&group.id).await;
    wait_until("the background job ends", || {
        processes_with(&format!("sleep\0{marker}")).is_empty()
    })
    .await;
    run.abort();
}

/// An attached client's ends.
struct Client {
    /// `None` once the client's stdin ended.
    stdin: Option<mpsc::Sender<Bytes>>,
    output: mpsc::Receiver<(Output, Bytes)>,
    resize: mpsc::Sender<(u16, u16)>,
    done: tokio::task::JoinHandle<Result<(), ExecutorError>>,
}

fn attach(exec: &Arc<ProcessExecutor>, group: &Arc<GroupSpec>, c: &ContainerSpec) -> Client {
    let (stdin, stdin_rx) = mpsc::channel(8);
    let (output_tx, output) = mpsc::channel(64);
    let (resize, resize_rx) = mpsc::channel(8);
    let streams = ExecStreams {
        stdin: Some(stdin_rx),
        output: output_tx,
        tty: c.tty,
        resize: resize_rx,
    };
    let (exec, group, c) = (exec.clone(), group.clone(), c.clone());
    let done = tokio::spawn(async move { exec.attach(&group, &c, streams).await });
    Client {
        stdin: Some(stdin),
        output,
        resize,
        done,
    }
}

impl Client {
    async fn write(&self, text: &'static str) {
        let stdin = self.stdin.as_ref().expect("the client's stdin is open");
        stdin.send(Bytes::from(text)).await.unwrap();
    }

    /// Reads output until `want` has come on `channel`; everything read from that stream.
    async fn read_until(&mut self, channel: Output, want: &str) -> String {
        let mut got = String::new();
        let read = async {
            while let Some((on, chunk)) = self.output.recv().await {
                if on == channel {
                    got.push_str(&String::from_utf8_lossy(&chunk));
                    if got.contains(want) {
                        return;
                    }
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .is_err()
        {
            panic!("{want:?} never came on {channel:?}; got {got:?}");
        }
        got
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_gets_the_output_from_then_on_and_writes_to_stdin() {
    let (exec, _dir) = executor("attach").await;
    let group = group("attach-1");
    let mut cat = command("cat", &["cat"]);
    cat.stdin = true;
    exec.prepare(&group).await.unwrap();
    let (run, log) = start(&exec, &group, &cat);

    let mut first = attach(&exec, &group, &cat);
    first.write("one\n").await;
    assert_eq!(first.read_until(Output::Stdout, "one\n").await, "one\n");

    // A later client gets only what comes after it attached.
    let mut second = attach(&exec, &group, &cat);
    wait_until("the second client listens", || {
        listeners(&exec, &group.id, "cat") == 2
    })
    .await;
    first.write("two\n").await;
    assert_eq!(second.read_until(Output::Stdout, "two\n").await, "two\n");
    assert_eq!(first.read_until(Output::Stdout, "two\n").await, "two\n");

    // The first client's stdin ends: the process's stays open for the second one.
    first.stdin = None;
    second.write("three\n").await;
    assert_eq!(
        second.read_until(Output::Stdout, "three\n").await,
        "three\n"
    );
    assert_eq!(first.read_until(Output::Stdout, "three\n").await, "three\n");
    assert!(!run.is_finished());

    // A client going away ends its attach, not the process.
    drop(first.output);
    tokio::time::timeout(Duration::from_secs(10), first.done)
        .await
        .expect("the attach ends")
        .unwrap()
        .unwrap();
    assert!(!run.is_finished());
    let lines: Vec<String> = log.select(None, None).into_iter().map(|l| l.1).collect();
    assert_eq!(lines, ["one", "two", "three"]);

    // The process ending ends the attach.
    run.abort();
    tokio::time::timeout(Duration::from_secs(10), second.done)
        .await
        .expect("the attach ends")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_keeps_stderr_apart_without_a_terminal_and_resizes_one() {
    let (exec, _dir) = executor("attach-streams").await;
    let group = group("attach-2");
    let script = "while read x; do echo out-$x; echo err-$x >&2; done";
    let mut pipes = command("pipes", &["sh", "-c", script]);
    pipes.stdin = true;
    let mut tty = command("tty", &["sh", "-c", "while read x; do stty size; done"]);
    tty.stdin = true;
    tty.tty = true;
    exec.prepare(&group).await.unwrap();
    let (pipes_run, _) = start(&exec, &group, &pipes);
    let (tty_run, _) = start(&exec, &group, &tty);

    let mut client = attach(&exec, &group, &pipes);
    client.write("a\n").await;
    // Each stream is read in turn: chunks of the other are kept aside by the channel order.
    let mut out = String::new();
    let mut err = String::new();
    while !(out.contains("out-a\n") && err.contains("err-a\n")) {
        let (on, chunk) = tokio::time::timeout(Duration::from_secs(10), client.output.recv())
            .await
            .expect("output")
            .expect("the attach runs");
        let text = String::from_utf8_lossy(&chunk);
        match on {
            Output::Stdout => out.push_str(&text),
            Output::Stderr => err.push_str(&text),
        }
    }
    assert_eq!((out.as_str(), err.as_str()), ("out-a\n", "err-a\n"));

    let mut client = attach(&exec, &group, &tty);
    client.resize.send((100, 40)).await.unwrap();
    // The size applies beside the input: ask until the terminal has it. Everything the
    // terminal says (the echoed input too) is stdout.
    let mut seen = String::new();
    for _ in 0..50 {
        client.write("x\n").await;
        let read = async {
            while let Some((on, chunk)) = client.output.recv().await {
                assert_eq!(on, Output::Stdout);
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains("40 100") {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(200), read).await;
        if seen.contains("40 100") {
            break;
        }
    }
    assert!(seen.contains("40 100"), "{seen:?}");
    pipes_run.abort();
    tty_run.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_needs_a_main_process() {
    let (exec, _dir) = executor("attach-timer").await;
    let group = group("attach-3");
    let app = timer("app", None);
    exec.prepare(&group).await.unwrap();
    let (run, _) = start(&exec, &group, &app);
    wait_until("the timer runs", || {
        exec.current(&group.id, "app").is_some()
    })
    .await;
    let client = attach(&exec, &group, &app);
    let err = client.done.await.unwrap().unwrap_err();
    assert!(matches!(&err, ExecutorError::NoMainProcess(name) if name == "app"));
    assert!(err.to_string().contains("no main process"), "{err}");
    run.abort();

    // The simulate executor has no processes at all.
    let simulate = SimulateExecutor::new(SimulateConfig::default());
    let (_stdin, stdin_rx) = mpsc::channel(1);
    let (output, _out) = mpsc::channel(1);
    let (_resize, resize_rx) = mpsc::channel(1);
    let streams = ExecStreams {
        stdin: Some(stdin_rx),
        output,
        tty: false,
        resize: resize_rx,
    };
    let err = simulate.attach(&group, &app, streams).await.unwrap_err();
    assert!(
        matches!(err, ExecutorError::CannotAttach("simulate")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_container_in_a_shared_pid_namespace_is_exec_able_and_measured() {
    let (exec, _dir) = executor("timer-shared").await;
    let mut shared = (*group("timer-4")).clone();
    shared.share_process_namespace = true;
    let group = Arc::new(shared);
    let app = timer("app", None);
    exec.prepare(&group).await.unwrap();
    let (run, _) = start(&exec, &group, &app);
    wait_until("the timer runs", || {
        exec.current(&group.id, "app").is_some()
    })
    .await;
    // The holder runs in the group's PID namespace (its pause process's).
    let (out, code) = sh(&exec, &group, &app, "echo in; hostname").await;
    assert_eq!((out.as_str(), code), ("in\npod-timer-4\n", 0));
    assert!(holder_of(&exec, &group.id, "app").is_some());

    // A timer has the simulate executor's figures.
    let running = crate::engine::executor::RunningContainer {
        group_id: group.id.clone(),
        spec: app.clone(),
        started: jiff::Timestamp::now(),
    };
    let usage = exec.usage(&[running]).await;
    assert!(
        usage[0].is_some_and(|u| u.working_set_bytes > 0),
        "{usage:?}"
    );
    run.abort();
    exec.remove(&group.id).await;
}
