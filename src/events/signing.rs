//! The threads that sign security event tokens (DESIGN 22; docs/decisions.md, Security event tokens).
//!
//! Signing is CPU work (RS256 with a 2048-bit key: about a millisecond a SET). On the
//! runtime's blocking pool it competed with the relay and the SCIM requests for the same
//! cores at the same priority, and pushing 600 SETs a second raised the relay's p99 several
//! times over (docs/benchmarks.md). Here it runs on a fixed number of threads
//! (`SCIMBUS_SET_SIGNING_THREADS`) that lower their own scheduling priority
//! (`SCIMBUS_SET_SIGNING_NICE`): they take what the machine has spare, at full speed on an
//! idle machine, and yield to the relay and the requests on a busy one.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, mpsc};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of low-priority threads. Jobs run in the order they were queued.
#[derive(Debug)]
pub struct SigningPool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

/// The pool's threads are gone (they could not be started).
#[derive(Debug, thiserror::Error)]
#[error("the signing threads are not running")]
pub struct Stopped;

impl SigningPool {
    /// Starts `threads` threads (at least one) at niceness `nice` (0: the process's own).
    pub fn start(threads: usize, nice: u8) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("scimbus-sign-{n}"))
                .spawn(move || {
                    lower_priority(nice);
                    loop {
                        // The lock is released before the job runs: the others take the next.
                        let job = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // A panicking job drops its answer (its caller sees `Stopped`); the
                        // thread stays for the next.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })?;
        }
        Ok(Self {
            jobs: Mutex::new(sender),
        })
    }

    /// Runs `work` on one of the pool's threads and waits for its answer without holding
    /// an async worker.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Stopped>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(work());
        });
        self.jobs
            .lock()
            .map_err(|_| Stopped)?
            .send(job)
            .map_err(|_| Stopped)?;
        answered.await.map_err(|_| Stopped)
    }
}

/// Lowers the calling thread's scheduling priority to `nice` (on Linux the nice value is
/// the thread's own). A refusal is logged and the thread runs at the process's priority.
fn lower_priority(nice: u8) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let thread = rustix::thread::gettid();
        if let Err(error) = rustix::process::setpriority_process(Some(thread), i32::from(nice)) {
            tracing::warn!(%error, nice, "could not lower the signing thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    tracing::debug!(nice, "thread priorities are only lowered on Linux");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's nice value, from its `/proc` stat line (field 19).
    fn own_nice() -> Option<i64> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        // The command name may hold spaces: fields are counted after its closing ')'.
        let rest = stat.rsplit_once(')')?.1;
        rest.split_whitespace().nth(16)?.parse().ok()
    }

    #[tokio::test]
    async fn jobs_run_on_threads_of_lowered_priority_and_answer_in_order() {
        let pool = SigningPool::start(2, 10).unwrap();
        let here = own_nice();
        let there = pool.run(own_nice).await.unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(here, Some(0), "the test itself runs at the usual priority");
            assert_eq!(there, Some(10), "the pool's thread runs at nice 10");
        }
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.is_some_and(|n| n.starts_with("scimbus-sign-")));
        let answers =
            futures_util::future::join_all((0..50).map(|i| pool.run(move || i * 2))).await;
        let answers: Vec<i32> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(answers, (0..50).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_thread_stays() {
        let pool = SigningPool::start(1, 0).unwrap();
        let failed = pool.run(|| -> u8 { panic!("a bad key") }).await;
        assert!(failed.is_err());
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }
}
