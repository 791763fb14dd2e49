//! Pseudo-terminals for the real processes of the mock (`exec -t`, containers with
//! `tty: true`) and of the mock cloud's `process` executor (`TTY=true` execs).
//!
//! The command gets the pty's slave side as stdin, stdout and stderr, and as its controlling
//! terminal (it leads a new session), so `tty` names a `/dev/pts/N`, job control and
//! `SIGWINCH` work. This side keeps the master: the client's stdin bytes are written to it
//! raw (the line discipline does echo and line editing, as on a real terminal), whatever the
//! command prints is read from it, and terminal sizes are set on it (`TIOCSWINSZ`, which
//! signals the foreground process group).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::Stdio;

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;
use tokio::net::unix::pipe;
use vk_core::provider::TermSize;

/// The master side of a pseudo-terminal.
#[derive(Debug)]
pub struct PtyMaster {
    fd: OwnedFd,
}

/// Opens a pseudo-terminal: its master and the slave the command will run on.
pub fn open(size: Option<TermSize>) -> io::Result<(PtyMaster, OwnedFd)> {
    // CLOEXEC: no command started later inherits the master (the reader and writer are
    // close-on-exec duplicates too).
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // tokio polls the master; the slave stays blocking for the command.
    rustix::io::ioctl_fionbio(&master, true)?;
    let master = PtyMaster { fd: master };
    if let Some(size) = size {
        master.resize(size)?;
    }
    Ok((master, slave))
}

/// Opens a pseudo-terminal of the devpts instance whose multiplexer is `ptmx` (a container's
/// own `/dev/pts/ptmx`, reached through its root), so that the command inside names its
/// terminal `/dev/pts/N` as a process of that container. The slave is opened from the master
/// (`TIOCGPTPEER`): its name is the container's, not this side's.
pub fn open_in(ptmx: &std::path::Path, size: Option<TermSize>) -> io::Result<(PtyMaster, OwnedFd)> {
    let master = rustix::fs::open(
        ptmx,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::pty::unlockpt(&master)?;
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &master,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )?;
    rustix::io::ioctl_fionbio(&master, true)?;
    let master = PtyMaster { fd: master };
    if let Some(size) = size {
        master.resize(size)?;
    }
    Ok((master, slave))
}

impl PtyMaster {
    /// What the command writes to its terminal. Reading fails with EIO once every holder of
    /// the slave has closed it (the command and its children are gone): that is the end.
    pub fn reader(&self) -> io::Result<pipe::Receiver> {
        pipe::Receiver::from_owned_fd_unchecked(self.fd.try_clone()?)
    }

    /// The command's terminal input.
    pub fn writer(&self) -> io::Result<pipe::Sender> {
        pipe::Sender::from_owned_fd_unchecked(self.fd.try_clone()?)
    }

    /// Sets the terminal size; the kernel sends `SIGWINCH` to the foreground process group.
    pub fn resize(&self, size: TermSize) -> io::Result<()> {
        rustix::termios::tcsetwinsize(
            &self.fd,
            Winsize {
                ws_row: size.height,
                ws_col: size.width,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )?;
        Ok(())
    }
}

/// Runs `cmd` on the slave: as stdin, stdout and stderr, and as the controlling terminal of a
/// new session that the command leads (so its process group is its pid, as with
/// `process_group(0)`, which must not be set as well: `setsid` fails for a group leader).
pub fn run_on(cmd: &mut tokio::process::Command, slave: &OwnedFd) -> io::Result<()> {
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave.try_clone()?));
    // SAFETY: between fork and exec the closure only makes two system calls (setsid and the
    // TIOCSCTTY ioctl on fd 0, which the Stdio above made the slave); it allocates nothing and
    // takes no lock.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            let stdin = BorrowedFd::borrow_raw(0);
            rustix::process::ioctl_tiocsctty(stdin.as_fd())?;
            Ok(())
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_command_runs_on_the_terminal_with_its_size() {
        let (master, slave) = open(Some(TermSize {
            width: 91,
            height: 17,
        }))
        .expect("opens a pty");
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "tty; stty size; read line; echo got:$line"]);
        run_on(&mut cmd, &slave).expect("configures");
        let mut child = cmd.spawn().expect("spawns");
        drop(cmd);
        drop(slave);
        let mut writer = master.writer().expect("writer");
        writer.write_all(b"typed\r").await.expect("writes");
        let mut reader = master.reader().expect("reader");
        let mut out = Vec::new();
        // EIO once the command is gone ends the read.
        let _ = reader.read_to_end(&mut out).await;
        let out = String::from_utf8_lossy(&out).into_owned();
        assert!(child.wait().await.expect("exits").success());
        // The terminal echoes the input whenever it is written, so lines may come in any order.
        assert!(out.lines().any(|l| l.starts_with("/dev/pts/")), "{out:?}");
        assert!(out.lines().any(|l| l == "17 91"), "{out:?}");
        assert!(out.contains("got:typed\r\n"), "{out:?}");
    }
}
