//! Exec with exit codes over a terminal-only exec: a transport that runs ONE program on a
//! terminal and carries keystrokes in and what the terminal shows out, with no exit code, no
//! stderr channel and no end of stdin of its own (ACI's exec WebSocket, ECS's Session Manager
//! data channel). vk execs `/bin/sh` there and drives it with a small protocol, all of it in
//! POSIX sh; [`run`] is the driver, written over [`TerminalInput`] / [`TerminalOutput`] so each
//! provider only adapts its transport.
//!
//! 1. Line 1 is typed on the terminal as it is (the terminal echoes it; everything before the
//!    first marker is dropped). It checks for `stty`, `base64`, `mkfifo` and `mktemp`; without
//!    them it prints the `N` marker and exits, and vk fails the exec with a clear error (an
//!    image without a shell never answers at all: the exec then fails after a timeout with the
//!    same explanation). With them it turns the terminal raw and silent (`stty raw -echo`),
//!    prints the `R` marker and starts a NON-interactive `/bin/sh -c` (no job control, whose
//!    failures abort an interactive shell's line in some sandboxes) that reads ONE more line
//!    and `eval`s it; the outer shell exits after it.
//!    Markers are written as two halves in line 1, so the terminal's echo never contains one.
//! 2. Line 2 (sent after `R`, raw: no line length limit) is the script for the command, its
//!    argv shell-quoted:
//!    - without a TTY: stdin arrives as base64 lines (one per chunk the client sent), decoded
//!      line by line into a FIFO the command reads, so a chunk reaches the command as soon as
//!      it is typed and a line `.` closes the command's stdin (EOF). stdout goes to the raw
//!      terminal untouched; stderr is read line by line and printed as `E` markers, which vk
//!      sends to the client's stderr. The exit status is printed as the `X` marker, then the
//!      shell exits.
//!    - with a TTY (`kubectl exec -t`): the terminal is set back to `stty sane`, the command
//!      runs on it with the client's keystrokes as they are (stdout and stderr are the one
//!      terminal, as a TTY exec on a kubelet has them), then the terminal is made raw again
//!      and the `X` marker gives the status.
//! 3. vk strips every marker from the output: the exit code goes to kubectl.
//!
//! What is and is not possible:
//! - exit codes: yes, the command's own status (a command killed by a signal reads as 128+n,
//!   as sh reports it);
//! - stderr apart from stdout without a TTY: yes but per LINE (a partial last line is sent
//!   when the command ends), and the order between a stdout and a stderr line written at
//!   nearly the same time may differ from the command's;
//! - stdin and its EOF: yes; binary stdin works (base64), binary stdout too (raw terminal);
//! - resizing: passed to the transport as the client resizes ([`TerminalInput::resize`]);
//!   a transport that cannot resize after the start ignores it;
//! - the image needs `/bin/sh`, `stty`, `base64`, `mkfifo` and `mktemp` (busybox has them
//!   all); without them the exec fails with a message saying so, never a wrong result;
//! - output that ends in a prefix of the marker (`~vk…`) is held back until more output
//!   shows it is not one, or until the end.

use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;

use super::{ExecIo, ExecOutcome, TermSize};

use std::fmt::Write as _;

use base64::Engine as _;
use rand::RngExt as _;

/// Every marker starts with this; the rest is a random nonce per exec.
pub const MARKER_PREFIX: &str = "~vk";

/// The markers of one exec session.
#[derive(Clone, Debug)]
pub struct Markers {
    nonce: String,
}

impl Markers {
    pub fn random() -> Self {
        let nonce = format!("{:016x}", rand::rng().random::<u64>());
        Self { nonce }
    }

    /// The marker itself: `~vk<nonce>:`.
    pub fn marker(&self) -> String {
        format!("{MARKER_PREFIX}{}:", self.nonce)
    }

    /// Line 1 (typed with echo on; ends with a newline).
    pub fn line1(&self) -> String {
        let (a, b) = self.nonce.split_at(8);
        let half = |kind: char| format!("'{MARKER_PREFIX}{a}' '{b}:{kind}'");
        format!(
            "if command -v stty >/dev/null 2>&1 && command -v base64 >/dev/null 2>&1 && command -v mkfifo >/dev/null 2>&1 && command -v mktemp >/dev/null 2>&1; then stty raw -echo; printf '%s%s\\n' {}; /bin/sh -c 'IFS= read -r vk_s; eval \"$vk_s\"'; exit; else printf '%s%s\\n' {}; exit 1; fi\n",
            half('R'),
            half('N'),
        )
    }

    /// Line 2: the script that runs `argv` (in `dir`, the container's working directory, as
    /// the kubelet's exec does).
    pub fn line2(&self, argv: &[String], tty: bool, dir: Option<&str>) -> String {
        let m = self.marker();
        let cmd = argv
            .iter()
            .map(|a| quote_in_line(a))
            .collect::<Vec<_>>()
            .join(" ");
        let mut s = String::new();
        let _ = write!(s, "M='{m}'; ");
        if argv.iter().any(|a| a.contains('\n')) {
            // The shell reads this script as one line: a newline in a word comes from $vk_nl.
            s.push_str("vk_nl=$(printf '\\nx'); vk_nl=${vk_nl%x}; ");
        }
        if let Some(dir) = dir {
            let _ = write!(s, "cd {} 2>/dev/null; ", quote(dir));
        }
        if tty {
            let _ = write!(
                s,
                "stty sane; printf '%sB\\n' \"$M\"; {cmd}; vk_rc=$?; stty raw -echo; printf '%sX:%s\\n' \"$M\" \"$vk_rc\"; exit"
            );
        } else {
            let _ = write!(
                s,
                "exec 5<&0; vk_d=$(mktemp -d) && mkfifo \"$vk_d/i\" || {{ printf '%sX:126\\n' \"$M\"; exit; }}; \
                 while IFS= read -r vk_l; do [ \"$vk_l\" = . ] && break; printf '%s' \"$vk_l\" | base64 -d; done <&5 >\"$vk_d/i\" 5<&- & vk_p=$!; \
                 printf '%sB\\n' \"$M\"; exec 3>&1; \
                 vk_rc=$( {{ {{ {cmd} <\"$vk_d/i\" 2>&1 1>&3 3>&- 4>&- 5<&-; echo $? >&4; }} | \
                 while IFS= read -r vk_e || [ -n \"$vk_e\" ]; do printf '%sE:%s\\n' \"$M\" \"$vk_e\"; done 1>&3 3>&- 4>&-; }} 4>&1 ); \
                 kill $vk_p 2>/dev/null; rm -rf \"$vk_d\"; printf '%sX:%s\\n' \"$M\" \"$vk_rc\"; exit"
            );
        }
        s.push('\n');
        s
    }
}

/// A word for sh: single-quoted, `'` written as `'\''`.
pub fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// [`quote`] for a script that must stay on one line: each newline of `word` is `$vk_nl`
/// (set by the script), the rest single-quoted.
fn quote_in_line(word: &str) -> String {
    word.split('\n')
        .map(quote)
        .collect::<Vec<_>>()
        .join("\"$vk_nl\"")
}

/// One chunk of the client's stdin as a line for the decoder.
pub fn stdin_line(chunk: &[u8]) -> String {
    let mut line = base64::engine::general_purpose::STANDARD.encode(chunk);
    line.push('\n');
    line
}

/// The line that ends the command's stdin.
pub const STDIN_EOF: &str = ".\n";

/// What the output stream says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The shell has the tools and waits for line 2.
    Ready,
    /// The tools are missing.
    NoTools,
    /// The command starts: forward stdin from now on.
    Begin,
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The command's exit status.
    Exit(i32),
}

/// Splits the terminal's output into [`Event`]s.
#[derive(Debug)]
pub struct Parser {
    marker: Vec<u8>,
    pending: Vec<u8>,
    /// Output is the command's only between `B` and `X`; before, it is the prompt and echo.
    running: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Parser {
    pub fn new(markers: &Markers) -> Self {
        Self {
            marker: markers.marker().into_bytes(),
            pending: Vec::new(),
            running: false,
        }
    }

    /// Feed output; the events it completes, in order.
    pub fn feed(&mut self, data: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            match find(&self.pending, &self.marker) {
                Some(at) => {
                    let Some(nl) = self.pending[at..].iter().position(|b| *b == b'\n') else {
                        // The marker's line is not complete yet: emit what is before it.
                        self.emit(at, &mut out);
                        return out;
                    };
                    let line: Vec<u8> = self.pending[at + self.marker.len()..at + nl].to_vec();
                    self.emit(at, &mut out);
                    // `emit` dropped what was before the marker: its line starts the buffer now.
                    self.pending.drain(..=nl);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line).to_vec();
                    match line.split_first() {
                        Some((b'R', _)) => out.push(Event::Ready),
                        Some((b'N', _)) => out.push(Event::NoTools),
                        Some((b'B', _)) => {
                            self.running = true;
                            out.push(Event::Begin)
                        }
                        Some((b'E', rest)) => {
                            let mut text = rest.strip_prefix(b":").unwrap_or(rest).to_vec();
                            text.push(b'\n');
                            out.push(Event::Stderr(text))
                        }
                        Some((b'X', rest)) => {
                            self.running = false;
                            let code =
                                String::from_utf8_lossy(rest.strip_prefix(b":").unwrap_or(rest))
                                    .trim()
                                    .parse()
                                    .unwrap_or(-1);
                            out.push(Event::Exit(code))
                        }
                        _ => {}
                    }
                }
                None => {
                    // Keep a tail that could still become the marker.
                    let keep = (1..self.marker.len().min(self.pending.len() + 1))
                        .rev()
                        .find(|n| self.pending.ends_with(&self.marker[..*n]))
                        .unwrap_or(0);
                    let cut = self.pending.len() - keep;
                    self.emit(cut, &mut out);
                    return out;
                }
            }
        }
    }

    /// Send the first `n` pending bytes as stdout (when running) and drop them.
    fn emit(&mut self, n: usize, out: &mut Vec<Event>) {
        let bytes: Vec<u8> = self.pending.drain(..n).collect();
        if self.running && !bytes.is_empty() {
            out.push(Event::Stdout(bytes));
        }
    }

    /// The end of the stream: what is held back.
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        let n = self.pending.len();
        self.emit(n, &mut out);
        out
    }
}

/// The typing direction of a terminal session.
#[async_trait]
pub trait TerminalInput: Send + 'static {
    /// Type `data` on the terminal.
    async fn send(&mut self, data: Vec<u8>) -> Result<(), String>;
    /// The client's terminal has this size now (a transport that cannot resize ignores it).
    async fn resize(&mut self, size: TermSize) -> Result<(), String>;
}

/// The reading direction of a terminal session.
#[async_trait]
pub trait TerminalOutput: Send {
    /// What the terminal shows next; `None` once the session ended.
    async fn recv(&mut self) -> Option<Vec<u8>>;
}

enum Typed {
    Data(Vec<u8>),
    Resize(TermSize),
}

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

async fn deliver(to: &mut Option<Writer>, data: &[u8]) -> std::io::Result<()> {
    if let Some(to) = to {
        to.write_all(data).await?;
        to.flush().await?;
    }
    Ok(())
}

struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Run `argv` in `dir` on a terminal session of `/bin/sh` (its two directions); the exit
/// code, or why there is none. `ready_timeout` bounds the wait for the shell's first answer;
/// `needs` says what the image must have (the error when the protocol cannot start).
pub async fn run(
    input: impl TerminalInput,
    mut output: impl TerminalOutput,
    argv: &[String],
    dir: Option<&str>,
    io: ExecIo,
    ready_timeout: Duration,
    needs: &str,
) -> ExecOutcome {
    let ExecIo {
        stdin,
        mut stdout,
        mut stderr,
        tty,
        resize,
    } = io;
    let markers = Markers::random();
    let mut parser = Parser::new(&markers);
    // One task types: the protocol's lines, stdin, resizes, in the order they were queued.
    let (typed, mut queue) = mpsc::channel::<Typed>(16);
    let typist = tokio::spawn(async move {
        let mut input = input;
        while let Some(t) = queue.recv().await {
            let sent = match t {
                Typed::Data(d) => input.send(d).await,
                Typed::Resize(s) => input.resize(s).await,
            };
            if sent.is_err() {
                break;
            }
        }
    });
    let mut tasks = AbortOnDrop(vec![typist.abort_handle()]);
    if let Some(mut resize) = resize {
        let typed = typed.clone();
        let sizes = tokio::spawn(async move {
            while let Some(size) = resize.recv().await {
                if typed.send(Typed::Resize(size)).await.is_err() {
                    break;
                }
            }
        });
        tasks.0.push(sizes.abort_handle());
    }
    if typed
        .send(Typed::Data(markers.line1().into_bytes()))
        .await
        .is_err()
    {
        return ExecOutcome::Error("the exec session closed at once".into());
    }
    // The handshake: Ready, then Begin after line 2.
    let deadline = tokio::time::Instant::now() + ready_timeout;
    let mut seen = Vec::new();
    let mut begun = false;
    // What came in the same chunk after Begin: the command's first output.
    let mut early = Vec::new();
    while !begun {
        let data = match tokio::time::timeout_at(deadline, output.recv()).await {
            Err(_) => {
                let said = String::from_utf8_lossy(&seen)
                    .chars()
                    .rev()
                    .take(200)
                    .collect::<String>();
                let said: String = said.chars().rev().collect();
                return ExecOutcome::Error(format!(
                    "{needs} (no answer from the shell within {ready_timeout:?}; it printed: {:?})",
                    said.trim()
                ));
            }
            Ok(None) => {
                return ExecOutcome::Error(format!(
                    "{needs} (the session ended before the shell answered)"
                ));
            }
            Ok(Some(data)) => data,
        };
        if seen.len() < 64 * 1024 {
            seen.extend_from_slice(&data);
        }
        for event in parser.feed(&data) {
            match event {
                Event::Ready => {
                    let line2 = markers.line2(argv, tty, dir).into_bytes();
                    if typed.send(Typed::Data(line2)).await.is_err() {
                        return ExecOutcome::Error("the exec session closed".into());
                    }
                }
                Event::NoTools => return ExecOutcome::Error(needs.into()),
                Event::Begin => begun = true,
                other if begun => early.push(other),
                _ => {}
            }
        }
    }
    // stdin: base64 lines and the EOF line, or (TTY) the keystrokes as they are.
    let feed = tokio::spawn(async move {
        if let Some(mut stdin) = stdin {
            let mut buf = vec![0u8; 3 * 1024];
            loop {
                let n = match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let data = if tty {
                    buf[..n].to_vec()
                } else {
                    stdin_line(&buf[..n]).into_bytes()
                };
                if typed.send(Typed::Data(data)).await.is_err() {
                    return;
                }
            }
        }
        if !tty {
            let _ = typed.send(Typed::Data(STDIN_EOF.as_bytes().to_vec())).await;
        }
        // Keep the queue open: the session ends with the command, not with stdin.
        std::future::pending::<()>().await
    });
    tasks.0.push(feed.abort_handle());
    let mut outcome = None;
    'read: while outcome.is_none() {
        let (events, ended) = if !early.is_empty() {
            (std::mem::take(&mut early), false)
        } else {
            match output.recv().await {
                None => (parser.finish(), true),
                Some(data) => (parser.feed(&data), false),
            }
        };
        for event in events {
            let written = match event {
                Event::Stdout(b) => deliver(&mut stdout, &b).await,
                Event::Stderr(b) if stderr.is_some() => deliver(&mut stderr, &b).await,
                Event::Stderr(b) => deliver(&mut stdout, &b).await,
                Event::Exit(code) => {
                    outcome = Some(ExecOutcome::Exited(code));
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(e) = written {
                outcome = Some(ExecOutcome::Error(format!("client went away: {e}")));
                break 'read;
            }
        }
        if ended && outcome.is_none() {
            outcome = Some(ExecOutcome::Error(
                "the exec session ended before the command's exit code arrived".into(),
            ));
        }
    }
    drop(tasks);
    for writer in [stdout.as_mut(), stderr.as_mut()].into_iter().flatten() {
        let _ = writer.shutdown().await;
    }
    outcome.unwrap_or_else(|| ExecOutcome::Error("the exec session ended".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A word with newlines (GitLab Runner's multi-line `sh -c` script) stays one word on
    /// line 2's one line, and a real shell gets it back whole.
    #[test]
    fn line_two_is_one_line_and_keeps_a_words_newlines() {
        let m = Markers::random();
        let script = "for s in a b; do\n\techo \"$s's\"\ndone\n";
        let line = m.line2(&["sh".into(), "-c".into(), script.into()], true, None);
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        let cmd = line
            .split("stty sane; printf '%sB\\n' \"$M\"; ")
            .nth(1)
            .and_then(|rest| rest.split("; vk_rc=$?").next())
            .expect("the command in line 2");
        let prelude = "vk_nl=$(printf '\\nx'); vk_nl=${vk_nl%x}; ";
        assert!(line.contains(prelude), "{line:?}");
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{prelude}{cmd}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a's\nb's\n");
    }

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(stdin_line(b"hi\n"), "aGkK\n");
    }

    #[test]
    fn the_echo_of_line_one_never_holds_a_marker() {
        let m = Markers::random();
        assert!(!m.line1().contains(&m.marker()));
        assert!(
            m.line1().len() < 1024,
            "canonical mode takes up to 4095 bytes"
        );
        let l2 = m.line2(
            &["sh".into(), "-c".into(), "echo 'x'".into()],
            false,
            Some("/w d"),
        );
        assert!(l2.contains("cd '/w d' 2>/dev/null; "), "{l2}");
        assert!(l2.contains(r"'echo '\''x'\'''"), "{l2}");
    }

    #[test]
    fn the_parser_splits_markers_across_chunks() {
        let m = Markers::random();
        let mk = m.marker();
        let mut p = Parser::new(&m);
        let text = format!(
            "$ echo {}\r\n{mk}R\n{mk}B\nout1\n{mk}E:err line\npartial~v{mk}X:3\n",
            "junk"
        );
        let mut events = Vec::new();
        for chunk in text.as_bytes().chunks(5) {
            events.extend(p.feed(chunk));
        }
        events.extend(p.finish());
        let mut stdout = Vec::new();
        let mut rest = Vec::new();
        for e in events {
            match e {
                Event::Stdout(b) => stdout.extend(b),
                other => rest.push(other),
            }
        }
        assert_eq!(String::from_utf8_lossy(&stdout), "out1\npartial~v");
        assert_eq!(
            rest,
            vec![
                Event::Ready,
                Event::Begin,
                Event::Stderr(b"err line\n".to_vec()),
                Event::Exit(3)
            ]
        );
    }

    #[test]
    fn output_ending_in_a_marker_prefix_is_held_then_flushed() {
        let m = Markers::random();
        let mut p = Parser::new(&m);
        p.feed(format!("{}B\n", m.marker()).as_bytes());
        assert_eq!(
            p.feed(b"prompt ~vk"),
            vec![Event::Stdout(b"prompt ".to_vec())]
        );
        assert_eq!(p.feed(b"!"), vec![Event::Stdout(b"~vk!".to_vec())]);
        assert_eq!(p.feed(b"~v"), vec![]);
        assert_eq!(p.finish(), vec![Event::Stdout(b"~v".to_vec())]);
    }

    /// A terminal that plays the shell's side of the protocol: it answers line 1 with `R`,
    /// line 2 with `B`, echoes stdin lines back decoded, and at the EOF line prints a stderr
    /// line and the exit status. It records the sizes it was given and when.
    struct FakeShell {
        out: mpsc::Sender<Vec<u8>>,
        marker: Option<String>,
        log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl TerminalInput for FakeShell {
        async fn send(&mut self, data: Vec<u8>) -> Result<(), String> {
            let text = String::from_utf8(data).map_err(|e| e.to_string())?;
            let say = |s: String| self.out.send(s.into_bytes());
            if self.marker.is_none() {
                // Line 1: the nonce is in its two quoted halves.
                let at = text.find("'~vk").ok_or("no marker in line 1")?;
                let rest = &text[at + 1..];
                let (a, rest) = rest.split_once("' '").ok_or("no second half")?;
                let (b, _) = rest.split_once(":R'").ok_or("no R marker")?;
                let m = format!("{a}{b}:");
                self.log.lock().unwrap().push("line1".into());
                say(format!("$ {text}{m}R\n"))
                    .await
                    .map_err(|e| e.to_string())?;
                self.marker = Some(m);
                return Ok(());
            }
            let m = self.marker.clone().unwrap_or_default();
            if text.starts_with("M=") {
                self.log.lock().unwrap().push("line2".into());
                return say(format!("{m}B\n")).await.map_err(|e| e.to_string());
            }
            if text == STDIN_EOF {
                say(format!("{m}E:warning\n{m}X:7\n"))
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(());
            }
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(text.trim_end())
                .map_err(|e| e.to_string())?;
            self.out.send(decoded).await.map_err(|e| e.to_string())
        }

        async fn resize(&mut self, size: TermSize) -> Result<(), String> {
            self.log
                .lock()
                .unwrap()
                .push(format!("{}x{}", size.width, size.height));
            Ok(())
        }
    }

    struct FakeScreen(mpsc::Receiver<Vec<u8>>);

    #[async_trait]
    impl TerminalOutput for FakeScreen {
        async fn recv(&mut self) -> Option<Vec<u8>> {
            self.0.recv().await
        }
    }

    #[tokio::test]
    async fn the_driver_types_the_protocol_passes_sizes_through_and_returns_the_status() {
        use tokio::io::AsyncReadExt as _;
        let (out, screen) = mpsc::channel(16);
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let shell = FakeShell {
            out,
            marker: None,
            log: log.clone(),
        };
        let (sizes, resize) = mpsc::channel(4);
        sizes
            .send(TermSize {
                width: 80,
                height: 24,
            })
            .await
            .unwrap();
        let (stdout_w, mut stdout) = tokio::io::duplex(1024);
        let (stderr_w, mut stderr) = tokio::io::duplex(1024);
        let io = ExecIo {
            stdin: Some(Box::new(&b"typed input"[..])),
            stdout: Some(Box::new(stdout_w)),
            stderr: Some(Box::new(stderr_w)),
            tty: false,
            resize: Some(resize),
        };
        let outcome = run(
            shell,
            FakeScreen(screen),
            &["cat".into()],
            None,
            io,
            Duration::from_secs(5),
            "needs",
        )
        .await;
        assert_eq!(outcome, ExecOutcome::Exited(7));
        let mut text = String::new();
        stdout.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "typed input");
        let mut text = String::new();
        stderr.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "warning\n");
        let log = log.lock().unwrap().clone();
        assert!(log.contains(&"80x24".to_string()), "{log:?}");
        assert!(log.contains(&"line2".to_string()), "{log:?}");
        drop(sizes);
    }

    #[tokio::test]
    async fn a_shell_that_never_answers_fails_with_what_the_image_needs() {
        let (out, screen) = mpsc::channel(16);
        struct Deaf(#[allow(dead_code)] mpsc::Sender<Vec<u8>>);
        #[async_trait]
        impl TerminalInput for Deaf {
            async fn send(&mut self, _: Vec<u8>) -> Result<(), String> {
                Ok(())
            }
            async fn resize(&mut self, _: TermSize) -> Result<(), String> {
                Ok(())
            }
        }
        let outcome = run(
            Deaf(out),
            FakeScreen(screen),
            &["true".into()],
            None,
            ExecIo::empty(),
            Duration::from_millis(100),
            "the image needs sh",
        )
        .await;
        let ExecOutcome::Error(e) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(e.starts_with("the image needs sh (no answer"), "{e}");
    }
}
