//! Memory while the log is read: VmRSS and VmHWM of the watched processes every 100 ms, on a
//! plain thread so a busy runtime cannot delay the samples.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_millis(100);

/// A process whose memory is sampled.
pub struct Watched {
    pub label: String,
    status: PathBuf,
}

impl Watched {
    /// This process: the kubelet server (and, in the loopback run, the client too).
    pub fn own(label: &str) -> Self {
        Self {
            label: label.into(),
            status: PathBuf::from("/proc/self/status"),
        }
    }

    pub fn pid(label: &str, pid: u32) -> Self {
        Self {
            label: label.into(),
            status: PathBuf::from(format!("/proc/{pid}/status")),
        }
    }
}

/// Resident and peak resident memory in KiB, as /proc/PID/status reports them.
#[derive(Clone, Copy, Debug)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub struct Sample {
    pub at: Duration,
    /// Log bytes the reader had received when the sample was taken.
    pub bytes: u64,
    /// One entry per watched process, `None` once it is gone.
    pub mem: Vec<Option<Mem>>,
}

fn read_mem(status: &PathBuf) -> Option<Mem> {
    let text = std::fs::read_to_string(status).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some(Mem {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sample>>,
    pub labels: Vec<String>,
}

impl Sampler {
    /// Samples at once (the 0% point), then every 100 ms until [`Sampler::finish`].
    pub fn start(watched: Vec<Watched>, progress: Arc<AtomicU64>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let labels = watched.iter().map(|w| w.label.clone()).collect();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let take = || Sample {
                at: start.elapsed(),
                bytes: progress.load(Ordering::Relaxed),
                mem: watched.iter().map(|w| read_mem(&w.status)).collect(),
            };
            let mut samples = vec![take()];
            let mut next = start + INTERVAL;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                next += INTERVAL;
                samples.push(take());
            }
            // The 100% point: after the reader saw the end.
            samples.push(take());
            samples
        });
        Self {
            stop,
            thread,
            labels,
        }
    }

    pub fn finish(self) -> (Vec<String>, Vec<Sample>) {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.join().unwrap_or_default();
        (self.labels, samples)
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The memory at 0, 25, 50, 75 and 100% of `total` read, then each process's largest sampled
/// RSS and its VmHWM (the kernel's peak since the process started).
pub fn print_report(labels: &[String], samples: &[Sample], total: u64) {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        println!("  no memory samples");
        return;
    };
    for pct in [0u64, 25, 50, 75, 100] {
        let sample = match pct {
            0 => first,
            100 => last,
            _ => {
                let target = total / 100 * pct;
                samples.iter().find(|s| s.bytes >= target).unwrap_or(last)
            }
        };
        let mem: Vec<String> = labels
            .iter()
            .zip(&sample.mem)
            .map(|(label, mem)| match mem {
                Some(m) => format!("{label} RSS {:>6.1} MiB", mib(m.rss_kib)),
                None => format!("{label} RSS      - (exited)"),
            })
            .collect();
        println!(
            "  {pct:>3}%  read {:>7.1} MiB  t={:>6.2}s  {}",
            sample.bytes as f64 / (1 << 20) as f64,
            sample.at.as_secs_f64(),
            mem.join("  ")
        );
    }
    for (i, label) in labels.iter().enumerate() {
        let sampled: Vec<Mem> = samples.iter().filter_map(|s| s.mem[i]).collect();
        let (Some(min), Some(max), Some(hwm)) = (
            sampled.iter().map(|m| m.rss_kib).min(),
            sampled.iter().map(|m| m.rss_kib).max(),
            sampled.iter().map(|m| m.hwm_kib).max(),
        ) else {
            continue;
        };
        println!(
            "  {label}: sampled RSS min {:.1} MiB, max {:.1} MiB over {} samples; peak RSS (VmHWM) {:.1} MiB",
            mib(min),
            mib(max),
            sampled.len(),
            mib(hwm)
        );
    }
}
