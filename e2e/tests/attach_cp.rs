//! `kubectl exec -it` with a terminal and a resize, `kubectl attach` (with and without `-i`)
//! and `kubectl cp` in both directions, through the API server (SPDY/3.1 to vk's kubelet API
//! on v1.35) with the mock provider, whose processes are real local processes.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use e2e::harness::{Options, TestBed};
use e2e::pods::pod_for_node;
use e2e::{cluster, kubectl, unique};

/// `ticker` prints a line every 200 ms; `echo` echoes its stdin (`stdin: true`).
const TICKER: &str = "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done";
const ECHO: &str = "while read line; do echo \"got: $line\"; done";
/// `term` (`tty: true`) prints its terminal size whenever it changes.
const TERM: &str = "trap 'stty size' WINCH; while :; do sleep 0.1; done";

/// A vk with its serving certificate and a running pod `shell` with containers `main` (no
/// main process), `ticker`, `echo` and `term` (real main processes).
async fn setup(prefix: &str) -> TestBed {
    setup_with(prefix, "").await
}

/// [`setup`], with `extra` appended to vk's config file.
async fn setup_with(prefix: &str, extra: &str) -> TestBed {
    let s = Options::mock(prefix)
        .config(extra)
        .serving_cert()
        .start()
        .await;
    let mut pod = pod_for_node(
        "shell",
        &s.vk.node,
        &["main", "ticker", "echo", "term"],
        &[
            ("mock.vk.io/process.ticker", TICKER),
            ("mock.vk.io/process.echo", ECHO),
            ("mock.vk.io/process.term", TERM),
        ],
    );
    let containers = &mut pod.spec.as_mut().unwrap().containers;
    containers[2].stdin = Some(true);
    containers[3].stdin = Some(true);
    containers[3].tty = Some(true);
    s.run_pod(&pod).await;
    s
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

fn kubectl_cmd(s: &TestBed, args: &[&str]) -> Command {
    e2e::kubectl_command(&[&["-n", s.ns.name.as_str()], args].concat())
}

/// Lines of a child's stdout, read on a thread so a test can wait for one with a deadline.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line satisfying `want`; every line seen, for the failure message.
fn wait_line(rx: &mpsc::Receiver<String>, want: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = want(&line);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(_) => panic!("the expected line never came; seen: {seen:?}"),
        }
    }
}

async fn container_running(s: &TestBed, name: &str) -> bool {
    let pod = s.pods.get("shell").await.unwrap();
    let status = pod.status.unwrap();
    let container = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap();
    container.restart_count == 0 && container.state.and_then(|st| st.running).is_some()
}

/// Runs `argv` on a pseudo-terminal of 30 rows and 100 columns (python3's pty module plays
/// the user's terminal). Once the output has `$TRIGGER` (default `ready`), the terminal
/// becomes 40 x 120 and the program gets SIGWINCH, as a terminal emulator does; once it has
/// `$STOP_AT`, the program is killed. Prints what the program wrote, then `EXIT:<code>`.
const ON_A_TERMINAL: &str = r#"
import fcntl, os, select, signal, struct, sys, termios, time
def size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
master, slave = os.openpty()
size(slave, 30, 100)
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.execvp(sys.argv[1], sys.argv[1:])
os.close(slave)
trigger = os.environ.get("TRIGGER", "ready").encode()
stop_at = os.environ.get("STOP_AT", "").encode()
out, resized, deadline = b"", False, time.time() + 60
while time.time() < deadline:
    ready, _, _ = select.select([master], [], [], 0.2)
    if not ready:
        continue
    try:
        chunk = os.read(master, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if not resized and trigger in out:
        resized = True
        size(master, 40, 120)
        os.kill(pid, signal.SIGWINCH)
    if stop_at and stop_at in out[out.find(trigger) + len(trigger):]:
        os.kill(pid, signal.SIGKILL)
        break
else:
    os.kill(pid, signal.SIGKILL)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace"))
sys.stdout.write("\nEXIT:%d\n" % os.waitstatus_to_exitcode(status))
"#;

#[tokio::test]
async fn kubectl_exec_it_gets_a_terminal_of_the_users_size_and_its_resizes() {
    let s = setup("vk-tty").await;
    let c = cluster();
    let kubeconfig = c.kubeconfig.to_string_lossy().to_string();
    let kubectl_bin = c.kubectl.to_string_lossy().to_string();
    let script = "tty; stty size; trap 'stty size; exit 5' WINCH; echo ready; \
                  while :; do sleep 0.1; done";
    let out = Command::new("python3")
        .args(["-c", ON_A_TERMINAL])
        .args([
            &kubectl_bin,
            "--kubeconfig",
            &kubeconfig,
            "-n",
            &s.ns.name,
            "exec",
            "-it",
            "shell",
            "-c",
            "main",
            "--",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    let printed = text(&out.stdout).replace('\r', "");
    let lines: Vec<&str> = printed.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("/dev/pts/")),
        "{printed:?} {}",
        text(&out.stderr)
    );
    let first = lines.iter().position(|l| *l == "30 100");
    let resized = lines.iter().position(|l| *l == "40 120");
    assert!(
        first.is_some() && resized.is_some() && first < resized,
        "{printed:?}"
    );
    assert!(lines.contains(&"EXIT:5"), "{printed:?}");
}

#[tokio::test]
async fn kubectl_attach_it_resizes_the_containers_terminal() {
    let s = setup("vk-attach-tty").await;
    let c = cluster();
    let kubeconfig = c.kubeconfig.to_string_lossy().to_string();
    let kubectl_bin = c.kubectl.to_string_lossy().to_string();
    let out = Command::new("python3")
        .args(["-c", ON_A_TERMINAL])
        .args([
            &kubectl_bin,
            "--kubeconfig",
            &kubeconfig,
            "-n",
            &s.ns.name,
            "attach",
            "-it",
            "shell",
            "-c",
            "term",
        ])
        // kubectl's first size (30 x 100) reaches the process, then the resize (40 x 120).
        .env("TRIGGER", "30 100")
        .env("STOP_AT", "40 120")
        .output()
        .unwrap();
    let printed = text(&out.stdout).replace('\r', "");
    let lines: Vec<&str> = printed.lines().collect();
    let first = lines.iter().position(|l| *l == "30 100");
    let resized = lines.iter().position(|l| *l == "40 120");
    assert!(
        first.is_some() && resized.is_some() && first < resized,
        "{printed:?} {}",
        text(&out.stderr)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(container_running(&s, "term").await, "term stopped");
}

#[tokio::test]
async fn kubectl_attach_sees_the_output_sends_stdin_and_detaching_leaves_the_container() {
    let s = setup("vk-attach").await;

    // Output of a running process.
    let mut child = kubectl_cmd(&s, &["attach", "shell", "-c", "ticker"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut child);
    let first = wait_line(&rx, |l| l.starts_with("tick "));
    let n: u64 = first.last().unwrap()["tick ".len()..].parse().unwrap();
    wait_line(&rx, |l| l == format!("tick {}", n + 1));
    child.kill().unwrap();
    let _ = child.wait();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(container_running(&s, "ticker").await, "ticker stopped");
    let logs = kubectl(&["-n", &s.ns.name, "logs", "shell", "-c", "ticker"]);
    let logs = text(&logs.stdout);
    assert!(
        logs.contains(&format!("tick {}\n", n + 3)),
        "the process went on after the detach: {logs}"
    );

    // stdin to the process, its echo back; twice, so the process outlived the first client.
    for word in ["hello", "again"] {
        let mut child = kubectl_cmd(&s, &["attach", "-i", "shell", "-c", "echo"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let rx = lines_of(&mut child);
        let mut stdin = child.stdin.take().unwrap();
        // kubectl may join after our first line: say it until the echo comes.
        let deadline = Instant::now() + Duration::from_secs(30);
        let want = format!("got: {word}");
        loop {
            stdin.write_all(format!("{word}\n").as_bytes()).unwrap();
            stdin.flush().unwrap();
            if rx
                .recv_timeout(Duration::from_millis(500))
                .is_ok_and(|l| l == want)
            {
                break;
            }
            assert!(Instant::now() < deadline, "no echo of {word}");
        }
        child.kill().unwrap();
        let _ = child.wait();
    }
    assert!(container_running(&s, "echo").await, "echo stopped");
    let logs = text(&kubectl(&["-n", &s.ns.name, "logs", "shell", "-c", "echo"]).stdout);
    assert!(
        logs.contains("got: hello\n") && logs.contains("got: again\n"),
        "{logs}"
    );
    // A container without a main process says how to give it one.
    let out = kubectl(&["-n", &s.ns.name, "attach", "shell", "-c", "main"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("error attaching to container") && err.contains("mock.vk.io/process.main"),
        "{err}"
    );
}

#[tokio::test]
async fn kubectl_cp_copies_10_mb_both_ways_byte_for_byte() {
    let s = setup("vk-cp").await;
    let dir = std::env::temp_dir().join(unique("vk-e2e-cp"));
    std::fs::create_dir_all(&dir).unwrap();
    let local = dir.join("random.bin");
    let mut data = vec![0u8; 10 * 1024 * 1024];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for chunk in data.chunks_mut(8) {
        // xorshift64: incompressible enough that tar moves every byte.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(&local, &data).unwrap();
    let ok = |out: Output, what: &str| {
        assert!(
            out.status.success(),
            "{what}: {} {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    };

    // Into the pod: a relative path is in the container's working directory (its root here).
    let local_str = local.to_string_lossy().to_string();
    let remote = format!("{}/shell:in/data.bin", s.ns.name);
    ok(
        kubectl(&[
            "-n", &s.ns.name, "exec", "shell", "-c", "main", "--", "mkdir", "-p", "in",
        ]),
        "mkdir",
    );
    let started = Instant::now();
    ok(
        kubectl(&["cp", &local_str, &remote, "-c", "main"]),
        "kubectl cp to the pod",
    );
    eprintln!("kubectl cp of 10 MiB into the pod: {:?}", started.elapsed());
    let sums = ok(
        kubectl(&[
            "-n",
            &s.ns.name,
            "exec",
            "shell",
            "-c",
            "main",
            "--",
            "sh",
            "-c",
            "wc -c < in/data.bin; pwd",
        ]),
        "checking the copy",
    );
    let printed = text(&sums.stdout);
    let mut lines = printed.lines();
    assert_eq!(lines.next().map(str::trim), Some("10485760"), "{printed}");

    // And back.
    let back = dir.join("back.bin");
    let started = Instant::now();
    ok(
        kubectl(&["cp", &remote, &back.to_string_lossy(), "-c", "main"]),
        "kubectl cp from the pod",
    );
    eprintln!(
        "kubectl cp of 10 MiB out of the pod: {:?}",
        started.elapsed()
    );
    let mut copied = Vec::new();
    std::fs::File::open(&back)
        .unwrap()
        .read_to_end(&mut copied)
        .unwrap();
    assert_eq!(copied.len(), data.len());
    assert!(copied == data, "the copy differs");

    // An absolute path works too.
    let workdir = lines
        .next()
        .unwrap()
        .trim()
        .trim_end_matches('/')
        .to_string();
    let absolute = format!("{}/shell:{workdir}/in/data.bin", s.ns.name);
    let again = dir.join("again.bin");
    ok(
        kubectl(&["cp", &absolute, &again.to_string_lossy(), "-c", "main"]),
        "kubectl cp of an absolute path",
    );
    assert!(std::fs::read(&again).unwrap() == data, "the copy differs");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Over the node's bound a session is refused at once with the reason, and the slot comes
/// back when a session ends.
#[tokio::test]
async fn sessions_over_the_node_bound_fail_fast_with_the_reason() {
    let s = setup_with("vk-bound", "kubelet:\n  max_streaming_sessions: 1\n").await;
    let mut held = kubectl_cmd(&s, &["exec", "-i", "shell", "-c", "main", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_of(&mut held);
    let mut stdin = held.stdin.take().unwrap();
    stdin.write_all(b"holding\n").unwrap();
    stdin.flush().unwrap();
    wait_line(&rx, |l| l == "holding");

    let refused = kubectl(&[
        "-n", &s.ns.name, "exec", "shell", "-c", "main", "--", "true",
    ]);
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains("too many exec/attach sessions") && err.contains("limit 1"),
        "{err}"
    );

    drop(stdin);
    assert!(held.wait().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = kubectl(&[
            "-n", &s.ns.name, "exec", "shell", "-c", "main", "--", "true",
        ]);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot never came back: {}",
            text(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
