//! A minimal DNS client for the tests: one `A` question to a given server over UDP or TCP,
//! the answer's response code and addresses. The host's resolver (`getent`) cannot be pointed
//! at the cluster DNS, and none of the workspace's crates speaks DNS.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use anyhow::{Context, bail, ensure};

/// NXDOMAIN: the name does not exist.
pub const NXDOMAIN: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The response code (0 NOERROR, 3 NXDOMAIN, ...).
    pub rcode: u8,
    /// The `A` records of the answer section.
    pub addrs: Vec<Ipv4Addr>,
}

/// Ask `server` (port 53) for the `A` records of `name`.
pub fn query_a(server: &str, name: &str, transport: Transport) -> anyhow::Result<Answer> {
    let addr: SocketAddr = format!("{server}:53")
        .parse()
        .with_context(|| format!("DNS server address {server}"))?;
    let id: u16 = rand::random();
    let query = encode_query(id, name)?;
    let timeout = Duration::from_secs(5);
    let reply = match transport {
        Transport::Udp => {
            let sock = UdpSocket::bind("0.0.0.0:0")?;
            sock.set_read_timeout(Some(timeout))?;
            sock.send_to(&query, addr)?;
            let mut buf = vec![0u8; 4096];
            let n = sock.recv(&mut buf).context("no UDP answer")?;
            buf.truncate(n);
            buf
        }
        Transport::Tcp => {
            // RFC 1035 4.2.2: each message is preceded by its length in two bytes.
            let mut conn = TcpStream::connect_timeout(&addr, timeout)?;
            conn.set_read_timeout(Some(timeout))?;
            let len = u16::try_from(query.len())?;
            conn.write_all(&len.to_be_bytes())?;
            conn.write_all(&query)?;
            let mut len = [0u8; 2];
            conn.read_exact(&mut len).context("no TCP answer")?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            conn.read_exact(&mut buf)?;
            buf
        }
    };
    decode_answer(id, &reply)
}

fn encode_query(id: u16, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    // Flags: a standard query with recursion desired; one question, no other records.
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        ensure!(
            !label.is_empty() && label.len() < 64,
            "bad label in {name:?}"
        );
        q.push(u8::try_from(label.len())?);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    // QTYPE A, QCLASS IN.
    q.extend_from_slice(&[0, 1, 0, 1]);
    Ok(q)
}

fn decode_answer(id: u16, msg: &[u8]) -> anyhow::Result<Answer> {
    ensure!(msg.len() >= 12, "short DNS message ({} bytes)", msg.len());
    let u16_at = |i: usize| -> anyhow::Result<u16> {
        match msg.get(i..i + 2) {
            Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
            None => bail!("DNS message cut at byte {i}"),
        }
    };
    ensure!(u16_at(0)? == id, "answer to another query");
    ensure!(msg[2] & 0x80 != 0, "not a response");
    let rcode = msg[3] & 0x0f;
    let (questions, answers) = (u16_at(4)?, u16_at(6)?);
    let mut pos = 12;
    for _ in 0..questions {
        pos = skip_name(msg, pos)? + 4;
    }
    let mut addrs = Vec::new();
    for _ in 0..answers {
        pos = skip_name(msg, pos)?;
        let (rtype, rdlen) = (u16_at(pos)?, usize::from(u16_at(pos + 8)?));
        let rdata = msg
            .get(pos + 10..pos + 10 + rdlen)
            .context("DNS record cut short")?;
        if rtype == 1 && rdlen == 4 {
            addrs.push(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]));
        }
        pos += 10 + rdlen;
    }
    Ok(Answer { rcode, addrs })
}

/// The position after the name starting at `pos` (labels, ended by a zero or a pointer).
fn skip_name(msg: &[u8], mut pos: usize) -> anyhow::Result<usize> {
    loop {
        let len = *msg.get(pos).context("DNS name cut short")?;
        match len {
            0 => return Ok(pos + 1),
            l if l & 0xc0 == 0xc0 => return Ok(pos + 2),
            l => pos += 1 + usize::from(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_the_question_in_labels() {
        let q = encode_query(7, "a.bc.").unwrap();
        assert_eq!(
            q,
            [
                0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 2, b'b', b'c', 0, 0, 1, 0, 1
            ]
        );
        assert!(encode_query(7, "a..b").is_err());
    }

    #[test]
    fn answer_yields_a_records_through_name_pointers() {
        let mut msg = encode_query(9, "x.y").unwrap();
        msg[2] |= 0x80;
        msg[7] = 2; // two answers: an A record and a CNAME, both named by a pointer
        msg.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 7]);
        msg.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 5, 0, 2, 0xc0, 12]);
        let a = decode_answer(9, &msg).unwrap();
        assert_eq!(a.rcode, 0);
        assert_eq!(a.addrs, vec![Ipv4Addr::new(10, 0, 0, 7)]);
        assert!(decode_answer(8, &msg).is_err());
        assert!(decode_answer(9, &msg[..msg.len() - 3]).is_err());
    }
}
