//! Group commit: many writers, few flushes.
//!
//! A writer marks itself *in flight* ([`GroupCommit::enter`]) while its transaction runs, and
//! after the transaction has committed calls [`GroupCommit::wait_durable`]. If no flush is
//! running or about to start it becomes the *leader*: it first waits, at most
//! [`MAX_GATHER`], for the writers still in flight to commit (so they ride on this flush
//! instead of the next one), then starts flush generation `g` and, when it returns, wakes
//! everyone. A writer that arrives while a flush is already running cannot know whether that
//! flush started before or after its own write, so it waits for the next generation; the first
//! such waiter to find no flush running leads it. Thus a writer returns only after a flush that
//! started after its write has completed. The outcome returned is that of the latest completed
//! flush at or after the writer's generation: a flush that succeeded made everything written
//! before it started durable.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The longest a leader waits for in-flight writers before it flushes.
pub const MAX_GATHER: Duration = Duration::from_millis(1);

#[derive(Default)]
struct State {
    /// Flush generations started so far.
    started: u64,
    /// Flush generations completed so far.
    completed: u64,
    /// A leader has claimed the next generation (gathering or flushing).
    leading: bool,
    /// Writers whose transaction is running.
    in_flight: usize,
    /// A leader is waiting for `in_flight` to drop.
    gathering: bool,
    /// Error of the latest completed flush, if it failed.
    last_error: Option<sled::Error>,
}

/// Shares flushes among concurrent writers.
#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    changed: Condvar,
}

/// Marks a writer in flight until dropped.
pub(crate) struct InFlight<'a>(&'a GroupCommit);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.in_flight -= 1;
        if st.gathering && st.in_flight == 0 {
            drop(st);
            self.0.changed.notify_all();
        }
    }
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is counters updated under the lock; it is valid even if a thread panicked
        // while holding it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the caller as a writer whose transaction is running.
    pub(crate) fn enter(&self) -> InFlight<'_> {
        self.lock().in_flight += 1;
        InFlight(self)
    }

    /// Returns once a call of `flush` that started after this call began has completed, with
    /// its outcome. `flush` is called by at most one thread at a time.
    pub(crate) fn wait_durable(&self, flush: impl Fn() -> sled::Result<()>) -> sled::Result<()> {
        let mut st = self.lock();
        // The first generation to start from now on covers this writer.
        let target = st.started + 1;
        loop {
            if st.completed >= target {
                return match &st.last_error {
                    Some(e) => Err(e.clone()),
                    None => Ok(()),
                };
            }
            if !st.leading {
                st.leading = true;
                let deadline = Instant::now() + MAX_GATHER;
                while st.in_flight > 0 {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    st.gathering = true;
                    st = self
                        .changed
                        .wait_timeout(st, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                st.gathering = false;
                st.started += 1;
                let generation = st.started;
                drop(st);
                let outcome = flush();
                let mut st = self.lock();
                st.completed = generation;
                st.leading = false;
                st.last_error = outcome.as_ref().err().cloned();
                drop(st);
                self.changed.notify_all();
                return outcome;
            }
            st = self
                .changed
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Flushes completed so far (for tests).
    #[cfg(test)]
    pub(crate) fn flushes(&self) -> u64 {
        self.lock().completed
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// Every writer's write precedes the start of a flush that completed before it returned,
    /// and concurrent writers share flushes.
    #[test]
    fn writers_share_flushes_and_each_is_covered() {
        let gc = Arc::new(GroupCommit::default());
        // `written` counts writes; a flush records how many writes it covers when it starts.
        let written = Arc::new(AtomicU64::new(0));
        let durable = Arc::new(AtomicU64::new(0));
        let flushes = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gc, written, durable, flushes) = (
                    gc.clone(),
                    written.clone(),
                    durable.clone(),
                    flushes.clone(),
                );
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let mine = {
                            let _in = gc.enter();
                            written.fetch_add(1, Ordering::SeqCst) + 1
                        };
                        gc.wait_durable(|| {
                            let covers = written.load(Ordering::SeqCst);
                            std::thread::sleep(Duration::from_micros(200));
                            durable.fetch_max(covers, Ordering::SeqCst);
                            flushes.fetch_add(1, Ordering::SeqCst);
                            Ok(())
                        })
                        .unwrap();
                        // Writes are numbered in order, so "write `mine` is durable" means the
                        // durable watermark reached at least `mine`.
                        assert!(durable.load(Ordering::SeqCst) >= mine);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = flushes.load(Ordering::SeqCst);
        assert_eq!(n, gc.flushes());
        assert!(
            n < 800,
            "8 writers × 200 writes took {n} flushes: too little was shared"
        );
    }

    #[test]
    fn a_leader_does_not_wait_forever_for_a_stuck_writer() {
        let gc = GroupCommit::default();
        let _stuck = gc.enter();
        let started = Instant::now();
        gc.wait_durable(|| Ok(())).unwrap();
        assert!(started.elapsed() >= MAX_GATHER);
    }

    #[test]
    fn a_failed_flush_fails_its_writers() {
        let gc = GroupCommit::default();
        let err = gc
            .wait_durable(|| Err(sled::Error::Unsupported("no".into())))
            .unwrap_err();
        assert!(matches!(err, sled::Error::Unsupported(_)));
        gc.wait_durable(|| Ok(())).unwrap();
    }
}
