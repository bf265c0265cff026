//! Test failpoints: a test pauses one request at a named step of a write (keyed, e.g. by
//! a group id, so tests running side by side never meet each other's points) and releases
//! it when it has made the other side of a race happen. This forces the interleaving of
//! a race instead of hoping for it.
//!
//! A pause is an `await`, not a blocked thread: the paused request's worker goes on
//! serving others. Disarmed (always, outside tests), a point costs one atomic load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::oneshot;

static ARMED: AtomicBool = AtomicBool::new(false);
static POINTS: Mutex<Vec<Armed>> = Mutex::new(Vec::new());

struct Armed {
    name: &'static str,
    key: String,
    reached: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

/// The step `name` of the write keyed `key`: pauses there once if a test armed it.
pub async fn point(name: &'static str, key: &(impl AsRef<str> + ?Sized)) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    let key = key.as_ref();
    let armed = {
        let mut points = POINTS.lock().unwrap_or_else(|p| p.into_inner());
        points
            .iter()
            .position(|p| p.name == name && p.key == key)
            .map(|i| points.swap_remove(i))
    };
    if let Some(armed) = armed {
        let _ = armed.reached.send(());
        let _ = armed.release.await;
    }
}

/// A paused step, as the test holds it.
pub struct Pause {
    reached: Option<oneshot::Receiver<()>>,
    release: Option<oneshot::Sender<()>>,
}

impl Pause {
    /// Arms the step `name` of the write keyed `key`: the next request to reach it waits
    /// there until [`Pause::release`] (or until this is dropped).
    pub fn arm(name: &'static str, key: &(impl AsRef<str> + ?Sized)) -> Self {
        let key = key.as_ref();
        let (reached_tx, reached_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        POINTS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Armed {
                name,
                key: key.to_owned(),
                reached: reached_tx,
                release: release_rx,
            });
        ARMED.store(true, Ordering::Relaxed);
        Self {
            reached: Some(reached_rx),
            release: Some(release_tx),
        }
    }

    /// Waits until a request is paused at the step; `false` if none came.
    pub async fn reached(&mut self) -> bool {
        match self.reached.take() {
            Some(rx) => rx.await.is_ok(),
            None => true,
        }
    }

    /// Lets the paused request go on.
    pub fn release(&mut self) {
        if let Some(tx) = self.release.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Pause {
    fn drop(&mut self) {
        self.release();
    }
}
