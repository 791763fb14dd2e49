//! `kubectl attach` for clouds that have exec but no attach to a container's stdin (ECI,
//! Fargate; ACI's own attach carries output only).
//!
//! A kubelet hands an attach client the main process's stdin and output. These clouds keep a
//! `stdin: true` container's stdin open, if at all, with no call to write to it, so a provider
//! starts such a container (no terminal, a command in the pod spec) through `/bin/sh` with its
//! stdin on a named pipe in the container, [`STDIN_PIPE`], which the process holds open both
//! ways (it never sees an end of input, as under a kubelet with `stdinOnce: false`):
//! [`command_and_args`]. An [`attach`] then writes the client's stdin into that pipe through one
//! exec (`cat`), and sends the container's log from now on as its output. That is what GitLab
//! Runner's Kubernetes executor needs: it attaches with stdin only and writes each stage's
//! command line to the build container's shell.
//!
//! Limits: the output is the container's log (stdout and stderr together, on stdout, as often
//! as the provider's log follows); no terminal (`-t`) and no resize; `stdinOnce` is not
//! honoured (the pipe stays open after a client detaches); the image needs `/bin/sh`, `mkfifo`
//! and `cat`, and a writable `/tmp` (else the container runs unwrapped and an attach says why).

use std::future::Future;

use futures::StreamExt as _;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};

use super::{
    ContainerSpec, ExecIo, ExecOutcome, LogOptions, LogStream, PodRef, Provider, ProviderError,
};

/// Where a wrapped container's stdin pipe is, in its own filesystem.
pub const STDIN_PIPE: &str = "/tmp/.vk-stdin";

/// Run by `/bin/sh -c` with the pipe as `$0` and the container's command and args as `"$@"`:
/// makes the pipe (or finds it after a restart) and runs the command with its stdin on it,
/// opened read-write so that it never ends; without a pipe the command runs as given.
const WRAPPER: &str = "if mkfifo -m 600 \"$0\" 2>/dev/null || [ -p \"$0\" ]; then exec \"$@\" <>\"$0\"; fi; \
echo \"vk: no stdin pipe at $0 (mkfifo failed): kubectl attach cannot reach this container\" >&2; exec \"$@\"";

/// Exit code of the stdin writer when the container has no pipe.
const NO_PIPE: i32 = 97;

/// The command and args the cloud gets for container `c`: wrapped when an attach may write to
/// its stdin (`attachable`: one of the pod's containers, not an init container; stdin open, no
/// terminal, and a command to wrap: without one the image's entrypoint is unknown here), else
/// as given.
pub fn command_and_args(c: &ContainerSpec, attachable: bool) -> (Vec<String>, Vec<String>) {
    if !attachable || !c.stdin || c.tty || c.command.is_empty() {
        return (c.command.clone(), c.args.clone());
    }
    let wrapper = ["/bin/sh", "-c", WRAPPER, STDIN_PIPE]
        .map(String::from)
        .to_vec();
    (wrapper, c.command.iter().chain(&c.args).cloned().collect())
}

/// The exec that carries an attach client's stdin into the pipe.
pub fn stdin_writer() -> Vec<String> {
    [
        "/bin/sh",
        "-c",
        "[ -p \"$0\" ] || exit 97; exec cat >\"$0\"",
        STDIN_PIPE,
    ]
    .map(String::from)
    .to_vec()
}

/// Why an attach cannot reach a container: with a terminal, or a container vk did not wrap.
pub fn refusal(container: &str, pod: &PodRef, tty: bool) -> ProviderError {
    let why = if tty {
        "this cloud has no attach to a terminal, and vk's stand-in (a pipe on the container's stdin) has none; attach without -t, or use exec"
    } else {
        "it has no stdin pipe vk can write to: vk gives one to containers with `stdin: true`, no `tty` and a `command` (the image needs /bin/sh, mkfifo, cat and a writable /tmp)"
    };
    ProviderError::invalid(
        "AttachNotPossible",
        format!("cannot attach to container {container} of pod {pod}: {why}"),
    )
}

/// Attach through exec and logs: the client's stdin into the pipe, the container's log from
/// now on to its stdout (stderr stays empty: the log has both).
pub async fn attach<P: Provider + ?Sized>(
    provider: &P,
    pod: &PodRef,
    container: &str,
    io: ExecIo,
) -> Result<ExecOutcome, ProviderError> {
    if io.tty {
        return Err(refusal(container, pod, true));
    }
    let ExecIo { stdin, stdout, .. } = io;
    let output = match stdout {
        Some(out) => {
            let log = provider.logs(pod, container, &output_options()).await?;
            Some(async move {
                copy_output(log, out).await;
                ExecOutcome::Exited(0)
            })
        }
        None => None,
    };
    with_stdin(provider, pod, container, stdin, output).await
}

/// An attach's two halves side by side: the client's `stdin` into the pipe through one exec,
/// and `output`, which copies the container's output to the client (the followed log, or the
/// cloud's own output attach). With output the attach lasts until it ends (the container
/// stopped, the client went away), a stdin that ends first leaving it running, as under a
/// kubelet; with stdin only it ends with the stdin. A container without a pipe is refused with
/// the reason once the writer reports it.
pub async fn with_stdin<P, F>(
    provider: &P,
    pod: &PodRef,
    container: &str,
    stdin: Option<Box<dyn AsyncRead + Send + Unpin>>,
    output: Option<F>,
) -> Result<ExecOutcome, ProviderError>
where
    P: Provider + ?Sized,
    F: Future<Output = ExecOutcome>,
{
    let input = async {
        let Some(stdin) = stdin else {
            return Ok(ExecOutcome::Exited(0));
        };
        let io = ExecIo {
            stdin: Some(stdin),
            ..ExecIo::empty()
        };
        let ended = provider.exec(pod, container, stdin_writer(), io).await?;
        writer_result(ended, container, pod)
    };
    let Some(output) = output else {
        return input.await;
    };
    tokio::pin!(input, output);
    tokio::select! {
        ended = &mut input => {
            ended?;
            Ok(output.await)
        }
        ended = &mut output => Ok(ended),
    }
}

/// The log options of an attach's output: what the container writes from now on.
fn output_options() -> LogOptions {
    LogOptions {
        tail_lines: None,
        limit_bytes: None,
        timestamps: false,
        follow: true,
        previous: false,
        since: Some(jiff::Timestamp::now()),
    }
}

/// Copies the followed log to the client until it ends (the container stopped) or the client
/// goes away.
async fn copy_output(mut log: LogStream, mut out: Box<dyn AsyncWrite + Send + Unpin>) {
    while let Some(chunk) = log.next().await {
        let Ok(chunk) = chunk else { break };
        if out.write_all(&chunk).await.is_err() || out.flush().await.is_err() {
            break;
        }
    }
}

/// How the stdin writer ended, as the attach's result.
fn writer_result(
    outcome: ExecOutcome,
    container: &str,
    pod: &PodRef,
) -> Result<ExecOutcome, ProviderError> {
    match outcome {
        ExecOutcome::Exited(NO_PIPE) => Err(refusal(container, pod, false)),
        // The kubelet reports success for an attach that ended, whatever the process did.
        ExecOutcome::Exited(_) => Ok(ExecOutcome::Exited(0)),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn spec(stdin: bool, tty: bool, command: &[String], args: &[String]) -> ContainerSpec {
        ContainerSpec {
            stdin,
            tty,
            command: command.to_vec(),
            args: args.to_vec(),
            ..ContainerSpec::default()
        }
    }

    #[test]
    fn only_a_stdin_container_without_a_terminal_and_with_a_command_is_wrapped() {
        let cmd = s(&["sh", "-c", "exec sh"]);
        let args = s(&["x"]);
        assert_eq!(
            command_and_args(&spec(false, false, &cmd, &args), true),
            (cmd.clone(), args.clone())
        );
        assert_eq!(
            command_and_args(&spec(true, true, &cmd, &args), true),
            (cmd.clone(), args.clone())
        );
        assert_eq!(
            command_and_args(&spec(true, false, &[], &args), true),
            (vec![], args.clone())
        );
        // An init container's stdin is not one an attach writes to.
        assert_eq!(
            command_and_args(&spec(true, false, &cmd, &args), false),
            (cmd.clone(), args.clone())
        );
        let (command, wrapped_args) = command_and_args(&spec(true, false, &cmd, &args), true);
        assert_eq!(command[..2], s(&["/bin/sh", "-c"]));
        assert_eq!(command[3], STDIN_PIPE);
        assert_eq!(wrapped_args, s(&["sh", "-c", "exec sh", "x"]));
    }

    /// The wrapper and the writer, run by a real shell: a line written into the pipe reaches
    /// the wrapped command's stdin, and the command sees no end of input between writers.
    #[tokio::test]
    async fn a_line_written_by_the_writer_reaches_the_wrapped_shell() {
        let dir = std::env::temp_dir().join(format!(
            "vk-eci-attach-{}-{}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pipe = dir.join("pipe").to_string_lossy().to_string();
        let out = dir.join("out").to_string_lossy().to_string();
        let script = format!("read a; read b; echo \"$a $b\" > {out}");
        let (command, args) =
            command_and_args(&spec(true, false, &s(&["sh", "-c", &script]), &[]), true);
        let mut argv: Vec<String> = command.into_iter().chain(args).collect();
        argv[3] = pipe.clone();
        let mut main = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let write = |line: &'static str| {
            let mut w = stdin_writer();
            w[3] = pipe.clone();
            async move {
                for _ in 0..100 {
                    if std::path::Path::new(&w[3]).exists() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let mut child = tokio::process::Command::new(&w[0])
                    .args(&w[1..])
                    .stdin(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut stdin = child.stdin.take().unwrap();
                stdin.write_all(line.as_bytes()).await.unwrap();
                drop(stdin);
                child.wait().await.unwrap().code()
            }
        };
        // Two writers one after the other: the first one's end is no end for the shell.
        assert_eq!(write("first\n").await, Some(0));
        assert_eq!(write("second\n").await, Some(0));
        let status = tokio::time::timeout(Duration::from_secs(10), main.wait())
            .await
            .expect("the wrapped shell read both lines")
            .unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "first second\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_writer_says_when_there_is_no_pipe() {
        let mut w = stdin_writer();
        w[3] = "/nonexistent/pipe".into();
        let code = tokio::process::Command::new(&w[0])
            .args(&w[1..])
            .stdin(std::process::Stdio::null())
            .status()
            .await
            .unwrap()
            .code();
        assert_eq!(code, Some(NO_PIPE));
        let pod = PodRef {
            namespace: "ns".into(),
            name: "p".into(),
            uid: "u".into(),
        };
        let err = writer_result(ExecOutcome::Exited(NO_PIPE), "build", &pod).unwrap_err();
        assert!(err.message().contains("no stdin pipe"), "{}", err.message());
    }
}
