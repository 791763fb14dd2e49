//! CPU time and resident memory of a process tree, read from `/proc` (Linux): what the
//! `process` executor reports as a container's usage. A container is its bwrap process and
//! everything below it.

use std::collections::HashMap;
use std::path::Path;

/// `/proc/<pid>/stat` counts CPU time in USER_HZ ticks, which Linux fixes at 100 per second
/// on every architecture it exports the figure for.
const NANOS_PER_TICK: u64 = 10_000_000;

/// The usage of a tree of processes at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeUsage {
    /// CPU time (user + system) of the live processes and of the children they have reaped.
    pub cpu_ns: u64,
    /// Sum of the processes' resident sets (shared pages count once per process).
    pub rss_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Proc {
    ppid: u32,
    ticks: u64,
}

/// One pass over `/proc`: every process's parent and CPU ticks.
pub struct ProcTable {
    root: std::path::PathBuf,
    procs: HashMap<u32, Proc>,
    children: HashMap<u32, Vec<u32>>,
}

impl ProcTable {
    pub fn read() -> Self {
        Self::read_from(Path::new("/proc"))
    }

    fn read_from(root: &Path) -> Self {
        let mut procs = HashMap::new();
        if let Ok(entries) = std::fs::read_dir(root) {
            for entry in entries.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                // A process may exit between the listing and the read: it is simply absent.
                if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
                    && let Some(p) = parse_stat(&stat)
                {
                    procs.insert(pid, p);
                }
            }
        }
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for (pid, p) in &procs {
            children.entry(p.ppid).or_default().push(*pid);
        }
        Self {
            root: root.to_path_buf(),
            procs,
            children,
        }
    }

    /// `root` and its descendants; `None` when `root` is gone.
    pub fn tree(&self, root: u32) -> Option<TreeUsage> {
        self.procs.get(&root)?;
        let mut usage = TreeUsage::default();
        let mut stack = vec![root];
        while let Some(pid) = stack.pop() {
            let Some(p) = self.procs.get(&pid) else {
                continue;
            };
            usage.cpu_ns = usage
                .cpu_ns
                .saturating_add(p.ticks.saturating_mul(NANOS_PER_TICK));
            usage.rss_bytes = usage.rss_bytes.saturating_add(self.rss_bytes(pid));
            stack.extend(self.children.get(&pid).into_iter().flatten());
        }
        Some(usage)
    }

    fn rss_bytes(&self, pid: u32) -> u64 {
        std::fs::read_to_string(self.root.join(pid.to_string()).join("status"))
            .ok()
            .and_then(|s| parse_vm_rss(&s))
            .unwrap_or(0)
    }
}

/// Parent and utime + stime + cutime + cstime of one `/proc/<pid>/stat` line. The command
/// name is in parentheses and may itself hold spaces and parentheses: fields are counted
/// after its last `)`.
fn parse_stat(stat: &str) -> Option<Proc> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let field = |i: usize| fields.get(i)?.parse::<i64>().ok();
    let ticks = [11, 12, 13, 14]
        .into_iter()
        .map(|i| field(i).map(|t| t.max(0) as u64))
        .sum::<Option<u64>>()?;
    Some(Proc {
        ppid: u32::try_from(field(1)?).ok()?,
        ticks,
    })
}

/// `VmRSS:  1234 kB` of `/proc/<pid>/status`, in bytes (kernel threads have none).
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let line = "4242 (a (b) c) S 7 4242 4242 0 -1 4194560 300 0 0 0 25 5 3 2 20 0 1 0 100 1000 50 18446744073709551615\n";
        assert_eq!(parse_stat(line), Some(Proc { ppid: 7, ticks: 35 }));
        assert_eq!(parse_stat("1 (init) S"), None);
        assert_eq!(
            parse_vm_rss("Name:\tx\nVmRSS:\t    2048 kB\n"),
            Some(2 << 20)
        );
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn a_tree_sums_this_process_and_its_children() {
        let me = std::process::id();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let table = ProcTable::read();
        let mine = table.tree(me).expect("this process is in /proc");
        assert!(mine.cpu_ns >= table.procs[&me].ticks * NANOS_PER_TICK);
        // The child is in the tree: its resident set counts toward it.
        let child_rss = table
            .tree(child.id())
            .expect("the child is in /proc")
            .rss_bytes;
        assert!(child_rss > 0);
        assert!(mine.rss_bytes > child_rss);
        assert_eq!(table.tree(u32::MAX), None);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
