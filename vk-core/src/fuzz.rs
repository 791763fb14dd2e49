//! What the project's fuzz tests share: a seeded generator and a budget.
//!
//! Each fuzz test runs a fixed number of cases from a fixed seed under `cargo test` (so the
//! suite is quick and repeatable); with `VK_FUZZ_SECONDS=N` it runs for N seconds from a seed of
//! the clock instead, and `VK_FUZZ_SEED=S` replays one seed. The seed is printed with the
//! figures, so a failure found in a long run can be replayed in a short one.

use std::time::{Duration, Instant};

/// A small xorshift generator: deterministic from its seed, no dependencies, good enough to
/// pick mutations.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True once in `n` calls, on average.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// How long a fuzz test runs, and from which seed.
#[derive(Debug)]
pub struct Budget {
    pub seed: u64,
    cases: u64,
    until: Option<Instant>,
    done: u64,
}

impl Budget {
    /// `cases` cases from a fixed seed, or what `VK_FUZZ_SECONDS` / `VK_FUZZ_SEED` ask for.
    pub fn from_env(cases: u64) -> Budget {
        let seconds: Option<u64> = std::env::var("VK_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok());
        let seed = std::env::var("VK_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| match seconds {
                Some(_) => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1),
                None => 0x5eed_1234_abcd_0001,
            });
        Budget {
            seed,
            cases,
            until: seconds.map(|s| Instant::now() + Duration::from_secs(s)),
            done: 0,
        }
    }

    pub fn rng(&self) -> Rng {
        Rng::new(self.seed)
    }

    /// Counts one case; false once the budget is spent.
    pub fn another(&mut self) -> bool {
        let more = match self.until {
            Some(until) => self.done == 0 || Instant::now() < until,
            None => self.done < self.cases,
        };
        if more {
            self.done += 1;
        }
        more
    }

    /// Cases run so far.
    pub fn done(&self) -> u64 {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_the_same_numbers() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert!(
            Rng::new(0).next_u64() != 0,
            "a zero seed does not stick at zero"
        );
    }

    #[test]
    fn a_case_budget_counts_down() {
        let mut budget = Budget {
            seed: 1,
            cases: 3,
            until: None,
            done: 0,
        };
        let mut n = 0;
        while budget.another() {
            n += 1;
        }
        assert_eq!((n, budget.done()), (3, 3));
    }
}
