//! The log of one container run: timestamped lines (stdout and stderr interleaved as they
//! arrived), capped so a chatty container stays small. DescribeContainerLog selects from it.

use std::collections::VecDeque;
use std::sync::Mutex;

use jiff::Timestamp;

/// A line longer than this is split, as container runtimes do.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug)]
pub struct LogStore {
    lines: Mutex<VecDeque<(Timestamp, String)>>,
    max_lines: usize,
}

impl LogStore {
    pub fn new(max_lines: usize) -> Self {
        Self {
            lines: Mutex::new(VecDeque::new()),
            max_lines: max_lines.max(1),
        }
    }

    pub fn push(&self, line: &str) {
        self.push_at(Timestamp::now(), line);
    }

    pub fn push_at(&self, at: Timestamp, line: &str) {
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut rest = line;
        loop {
            let mut cut = rest.len().min(MAX_LINE);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            lines.push_back((at, rest[..cut].to_string()));
            if lines.len() > self.max_lines {
                lines.pop_front();
            }
            rest = &rest[cut..];
            if rest.is_empty() {
                break;
            }
        }
    }

    /// The lines at or after `since`, the last `tail` of them.
    pub fn select(
        &self,
        since: Option<Timestamp>,
        tail: Option<usize>,
    ) -> Vec<(Timestamp, String)> {
        let lines = self
            .lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let selected: Vec<_> = lines
            .iter()
            .filter(|(at, _)| since.is_none_or(|s| *at >= s))
            .cloned()
            .collect();
        match tail {
            Some(n) if n < selected.len() => selected[selected.len() - n..].to_vec(),
            _ => selected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    #[test]
    fn select_since_and_tail_and_cap() {
        let store = LogStore::new(3);
        for i in 0..4 {
            store.push_at(ts(i), &format!("l{i}"));
        }
        let all: Vec<String> = store.select(None, None).into_iter().map(|l| l.1).collect();
        assert_eq!(all, ["l1", "l2", "l3"]);
        let since: Vec<String> = store
            .select(Some(ts(2)), None)
            .into_iter()
            .map(|l| l.1)
            .collect();
        assert_eq!(since, ["l2", "l3"]);
        assert_eq!(store.select(None, Some(1))[0].1, "l3");
        assert!(store.select(None, Some(0)).is_empty());
    }

    #[test]
    fn long_lines_are_split() {
        let store = LogStore::new(10);
        store.push(&"é".repeat(MAX_LINE));
        let lines = store.select(None, None);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|(_, l)| l.len() <= MAX_LINE));
    }
}
