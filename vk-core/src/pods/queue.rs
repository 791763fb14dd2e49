//! The pod controller's work queue: first in, first out, each pod in it once, and one
//! reconcile per pod at a time (client-go's workqueue, the queue behind the kubelet's own
//! controllers).
//!
//! Why not kube-runtime's controller: capped at `workers` reconciles, it parks the pods
//! waiting for a worker in a hash set and takes them out in hash order, so in a burst larger
//! than the workers a pod bound first may wait until the last (measured: a 1000-pod burst's
//! p99 was 1.5 s above what its throughput explains); uncapped, it polls every reconcile in
//! flight on each wake-up, which costs a quadratic amount of CPU in such a burst.
//!
//! A pod asked for while queued stays where it is; asked for while its reconcile runs, it is
//! queued again (at the back) when that reconcile is done, so a change is never lost and never
//! reconciled twice at once. Requeues after a delay ([`Timers`]) keep the earliest deadline
//! per pod.
//!
//! A second line goes first: pods whose instance changed ([`WorkQueue::add_urgent`], the
//! provider's status reports). Their reconcile is a status write; without it, on a node whose
//! creates are paced by the cloud's quota (thousands of pods bound at once, each worker
//! waiting for its turn to create), a pod already Running in the cloud waited behind every pod
//! still to be created.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::time::{DelayQueue, delay_queue};

use super::lock::lock;

/// What a reconcile asks of the queue once it is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile the pod again after `after` (sooner if something changes).
    pub fn requeue(after: Duration) -> Self {
        Self {
            requeue_after: Some(after),
        }
    }

    /// Reconcile again only when something changes.
    pub fn await_change() -> Self {
        Self {
            requeue_after: None,
        }
    }

    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// Keys waiting for a worker, in the order they were asked for.
pub(super) struct WorkQueue<K> {
    state: Mutex<State<K>>,
    ready: Notify,
}

struct State<K> {
    fifo: VecDeque<K>,
    /// Served before `fifo`. A key moved here from `fifo` keeps its entry there too: an entry
    /// whose key is no longer queued when it comes up is passed over.
    urgent: VecDeque<K>,
    /// Where each key in the queue or with a worker is.
    marks: HashMap<K, Mark>,
    closed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// In `fifo`.
    Queued,
    /// In `urgent` (and perhaps still in `fifo`, where it was first).
    QueuedUrgent,
    /// Handed to a worker and not done yet.
    Running,
    /// Asked for while running: queued again when done.
    RunningAgain,
    /// Asked for urgently while running: queued again, in the urgent line, when done.
    RunningAgainUrgent,
}

impl Mark {
    /// Waiting in a line for a worker.
    fn queued(self) -> bool {
        matches!(self, Self::Queued | Self::QueuedUrgent)
    }
}

impl<K: Eq + Hash + Clone> Default for WorkQueue<K> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                fifo: VecDeque::new(),
                urgent: VecDeque::new(),
                marks: HashMap::new(),
                closed: false,
            }),
            ready: Notify::new(),
        }
    }
}

impl<K: Eq + Hash + Clone> WorkQueue<K> {
    /// Ask for `key` to be reconciled.
    pub fn add(&self, key: K) {
        let mut state = lock(&self.state);
        if state.closed {
            return;
        }
        match state.marks.get_mut(&key) {
            Some(
                Mark::Queued | Mark::QueuedUrgent | Mark::RunningAgain | Mark::RunningAgainUrgent,
            ) => {}
            Some(mark) => *mark = Mark::RunningAgain,
            None => {
                state.marks.insert(key.clone(), Mark::Queued);
                state.fifo.push_back(key);
                drop(state);
                self.ready.notify_one();
            }
        }
    }

    /// Ask for `key` to be reconciled before the keys [`Self::add`] queued.
    pub fn add_urgent(&self, key: K) {
        let mut state = lock(&self.state);
        if state.closed {
            return;
        }
        match state.marks.get_mut(&key) {
            Some(Mark::QueuedUrgent | Mark::RunningAgainUrgent) => {}
            Some(mark @ (Mark::Running | Mark::RunningAgain)) => *mark = Mark::RunningAgainUrgent,
            Some(Mark::Queued) | None => {
                // Queued already: its entry in the other line is passed over once this one
                // is taken.
                state.marks.insert(key.clone(), Mark::QueuedUrgent);
                state.urgent.push_back(key);
                drop(state);
                self.ready.notify_one();
            }
        }
    }

    /// The key asked for longest ago and not running; the caller must call [`Self::done`]
    /// with it. `None` once closed.
    pub async fn next(&self) -> Option<K> {
        loop {
            // Registered before the queue is looked at, so an `add` in between is not missed.
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = lock(&self.state);
                if state.closed {
                    return None;
                }
                if let Some(key) = state.pop() {
                    state.marks.insert(key.clone(), Mark::Running);
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// The reconcile of `key` is over; if it was asked for meanwhile, it is queued again.
    pub fn done(&self, key: &K) {
        let mut state = lock(&self.state);
        let again = state.marks.remove(key);
        if state.closed {
            return;
        }
        let (line, mark) = match again {
            Some(Mark::RunningAgain) => (&mut state.fifo, Mark::Queued),
            Some(Mark::RunningAgainUrgent) => (&mut state.urgent, Mark::QueuedUrgent),
            _ => return,
        };
        line.push_back(key.clone());
        state.marks.insert(key.clone(), mark);
        drop(state);
        self.ready.notify_one();
    }

    /// Hand out nothing more: waiting workers get `None`, queued keys are dropped.
    pub fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        state.fifo.clear();
        state.urgent.clear();
        state.marks.retain(|_, mark| !mark.queued());
        drop(state);
        self.ready.notify_waiters();
    }

    /// Keys waiting for a worker.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let state = lock(&self.state);
        state.marks.values().filter(|mark| mark.queued()).count()
    }
}

impl<K: Eq + Hash + Clone> State<K> {
    /// The next queued key: the urgent line first; entries of keys no longer queued (taken
    /// through the other line) are dropped on the way.
    fn pop(&mut self) -> Option<K> {
        let marks = &self.marks;
        for line in [&mut self.urgent, &mut self.fifo] {
            while let Some(key) = line.pop_front() {
                if marks.get(&key).is_some_and(|mark| mark.queued()) {
                    return Some(key);
                }
            }
        }
        None
    }
}

/// Requeues after a delay: at each key's deadline it is added to the queue. A key keeps its
/// earliest deadline (a later one asked for meanwhile is dropped, as the reconcile at the
/// earlier one asks again). One task and one timer wheel for all keys: a node holding 10,000
/// running pods has a wake-up pending for each.
pub(super) struct Timers<K> {
    asks: mpsc::UnboundedSender<(K, Instant)>,
}

impl<K: Eq + Hash + Clone + Send + 'static> Timers<K> {
    /// Must run inside a tokio runtime; the task ends when the `Timers` is dropped.
    pub fn new(queue: Arc<WorkQueue<K>>) -> Self {
        let (asks, rx) = mpsc::unbounded_channel();
        tokio::spawn(fire(queue, rx));
        Self { asks }
    }

    /// Add `key` to the queue after `after`.
    pub fn add_after(&self, key: K, after: Duration) {
        let _ = self.asks.send((key, Instant::now() + after));
    }
}

async fn fire<K: Eq + Hash + Clone>(
    queue: Arc<WorkQueue<K>>,
    mut asks: mpsc::UnboundedReceiver<(K, Instant)>,
) {
    let mut wheel = DelayQueue::new();
    let mut due: HashMap<K, delay_queue::Key> = HashMap::new();
    loop {
        tokio::select! {
            ask = asks.recv() => {
                let Some((key, at)) = ask else { return };
                match due.get(&key) {
                    Some(slot) if wheel.deadline(slot) <= at => {}
                    Some(slot) => wheel.reset_at(slot, at),
                    None => {
                        let slot = wheel.insert_at(key.clone(), at);
                        due.insert(key, slot);
                    }
                }
            }
            Some(expired) = std::future::poll_fn(|cx| wheel.poll_expired(cx)) => {
                let key = expired.into_inner();
                due.remove(&key);
                queue.add(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_come_out_in_the_order_they_were_asked_for_and_once_each() {
        let queue = WorkQueue::default();
        for i in (0..100).chain(0..100) {
            queue.add(i);
        }
        assert_eq!(queue.len(), 100);
        let mut order = Vec::new();
        for _ in 0..100 {
            let key = queue.next().await.unwrap();
            order.push(key);
            queue.done(&key);
        }
        assert_eq!(order, (0..100).collect::<Vec<_>>());
        assert_eq!(queue.len(), 0);
    }

    #[tokio::test]
    async fn a_key_asked_for_while_running_is_not_handed_out_twice_and_runs_again_after() {
        let queue = WorkQueue::default();
        queue.add("a");
        queue.add("b");
        let a = queue.next().await.unwrap();
        assert_eq!(a, "a");
        queue.add("a");
        queue.add("a");
        // Only b is free to run while a runs.
        assert_eq!(queue.next().await, Some("b"));
        assert_eq!(queue.len(), 0);
        queue.done(&"b");
        queue.done(&"a");
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.next().await, Some("a"));
        queue.done(&"a");
        assert_eq!(queue.len(), 0);
    }

    #[tokio::test]
    async fn urgent_keys_go_first_once_each_and_keep_their_line_when_asked_while_running() {
        let queue = WorkQueue::default();
        for key in ["a", "b", "c"] {
            queue.add(key);
        }
        // c was queued already: it moves ahead, and is handed out once.
        queue.add_urgent("c");
        queue.add_urgent("d");
        assert_eq!(queue.len(), 4);
        let mut order = Vec::new();
        for _ in 0..4 {
            let key = queue.next().await.unwrap();
            order.push(key);
            queue.done(&key);
        }
        assert_eq!(order, ["c", "d", "a", "b"]);
        assert_eq!(queue.len(), 0);

        // Asked for urgently while it runs: queued again ahead of the others.
        queue.add("x");
        queue.add("y");
        let x = queue.next().await.unwrap();
        assert_eq!(x, "x");
        queue.add("z");
        queue.add_urgent("x");
        queue.add("x");
        queue.done(&"x");
        assert_eq!(queue.next().await, Some("x"));
        queue.done(&"x");
        assert_eq!(queue.next().await, Some("y"));
        queue.done(&"y");
        assert_eq!(queue.next().await, Some("z"));
        queue.done(&"z");
        assert_eq!(queue.len(), 0);
    }

    #[tokio::test]
    async fn waiting_workers_are_woken_by_an_add_and_all_end_on_close() {
        let queue = Arc::new(WorkQueue::<u32>::default());
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    while let Some(key) = queue.next().await {
                        got.push(key);
                        queue.done(&key);
                    }
                    got
                })
            })
            .collect();
        tokio::task::yield_now().await;
        for i in 0..1000 {
            queue.add(i);
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        while queue.len() > 0 {
            tokio::task::yield_now().await;
        }
        queue.close();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.await.unwrap());
        }
        all.sort();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        queue.add(7);
        assert_eq!(queue.next().await, None, "closed: nothing is handed out");
    }

    #[tokio::test(start_paused = true)]
    async fn a_requeue_fires_at_its_deadline_and_the_earliest_deadline_wins() {
        let queue = Arc::new(WorkQueue::default());
        let timers = Timers::new(queue.clone());
        timers.add_after("a", Duration::from_secs(10));
        timers.add_after("a", Duration::from_secs(30));
        timers.add_after("b", Duration::from_secs(20));
        timers.add_after("b", Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(queue.next().await, Some("b"));
        queue.done(&"b");
        assert_eq!(queue.len(), 0);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(queue.next().await, Some("a"));
        queue.done(&"a");
        // The superseded 20 s and 30 s timers fire nothing.
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(queue.len(), 0);
    }
}
