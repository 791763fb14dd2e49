//! Reconciles take turns in the order they were asked for.
//!
//! kube-runtime's controller can cap the reconciles in flight, but once it is at the cap it
//! parks the waiting objects in a hash set and takes them out in hash order: in a burst larger
//! than the workers can serve at once, a pod bound first may wait until the last one is done
//! (measured: a 1000-pod burst's p99 was a second and a half above what its throughput
//! explains). So the controller runs without a cap and every reconcile first waits here for a
//! turn: `workers` turns at once, handed out first come, first served (tokio's semaphore is
//! fair), which is the order the pod watch and the triggers asked in.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The reconciles' turns. Cheap to share.
pub(super) struct Turns {
    permits: Arc<Semaphore>,
}

/// A turn; the next waiter's comes when it is dropped.
pub(super) type Turn = OwnedSemaphorePermit;

impl Turns {
    /// `workers` turns at once; 0: no cap.
    pub fn new(workers: u16) -> Self {
        let turns = match workers {
            0 => Semaphore::MAX_PERMITS,
            n => usize::from(n),
        };
        Self {
            permits: Arc::new(Semaphore::new(turns)),
        }
    }

    /// Wait for a turn, behind every call that began waiting before this one. `None` once
    /// [`Self::close`]d: the controller is stopping and the waiting reconciles are dropped
    /// (the turns already handed out run to their end).
    pub async fn take(&self) -> Option<Turn> {
        self.permits.clone().acquire_owned().await.ok()
    }

    /// Hand out no more turns; every waiter's `take` returns `None`.
    pub fn close(&self) {
        self.permits.close();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// `n` tasks ask for a turn in order `0..n` (each asks only after the one before is
    /// waiting), hold it `hold`, and note when they got it.
    async fn ask_in_order(turns: Arc<Turns>, n: usize, hold: Duration) -> Vec<usize> {
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..n {
            let (turns, order) = (turns.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let Some(_turn) = turns.take().await else {
                    return;
                };
                order.lock().unwrap().push(i);
                tokio::time::sleep(hold).await;
            }));
            // Let it start waiting before the next one asks.
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(order).unwrap().into_inner().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn turns_are_handed_out_first_come_first_served() {
        let turns = Arc::new(Turns::new(4));
        let order = ask_in_order(turns, 200, Duration::from_millis(10)).await;
        assert_eq!(order, (0..200).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_than_the_workers_hold_a_turn_at_once() {
        let turns = Arc::new(Turns::new(3));
        let (now, most) = (Arc::new(Mutex::new(0usize)), Arc::new(Mutex::new(0usize)));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (turns, now, most) = (turns.clone(), now.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let _turn = turns.take().await.unwrap();
                {
                    let mut now = now.lock().unwrap();
                    *now += 1;
                    let mut most = most.lock().unwrap();
                    *most = (*most).max(*now);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                *now.lock().unwrap() -= 1;
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*most.lock().unwrap(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn once_closed_the_waiters_get_no_turn_and_the_holders_keep_theirs() {
        let turns = Arc::new(Turns::new(1));
        let held = turns.take().await.expect("a turn while open");
        let waiter = {
            let turns = turns.clone();
            tokio::spawn(async move { turns.take().await.is_some() })
        };
        tokio::task::yield_now().await;
        turns.close();
        assert!(!waiter.await.unwrap(), "a waiter got a turn after close");
        drop(held);
        assert!(turns.take().await.is_none());
    }

    #[tokio::test]
    async fn zero_workers_means_no_cap() {
        let turns = Turns::new(0);
        let held: Vec<_> = futures::future::join_all((0..1000).map(|_| turns.take())).await;
        assert!(held.iter().all(Option::is_some));
    }
}
