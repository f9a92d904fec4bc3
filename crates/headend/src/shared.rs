//! A host shared between the tokio drivers and the code that runs PANA (which installs and
//! revokes sessions), plus the timer task that drives key expiry.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand_core::{CryptoRng, RngCore};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::c1222_host::C1222Host;

/// A [`C1222Host`] behind a mutex, cloneable into several drivers. Every call through
/// [`with`](Self::with) wakes the timer task so a changed deadline is seen at once.
///
/// The drivers take `now` from `tokio::time::Instant` (converted to `std::time::Instant`),
/// so tests can run them under `tokio::time::pause` with virtual time.
pub struct SharedHost<R> {
    inner: Arc<Mutex<C1222Host<R>>>,
    wake: Arc<Notify>,
}

impl<R> Clone for SharedHost<R> {
    fn clone(&self) -> Self {
        SharedHost {
            inner: Arc::clone(&self.inner),
            wake: Arc::clone(&self.wake),
        }
    }
}

impl<R> core::fmt::Debug for SharedHost<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedHost").finish_non_exhaustive()
    }
}

impl<R: RngCore + CryptoRng + Send + 'static> SharedHost<R> {
    /// Shares `host`.
    pub fn new(host: C1222Host<R>) -> Self {
        SharedHost {
            inner: Arc::new(Mutex::new(host)),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Runs `f` on the host (never across an `.await`).
    pub fn with<T>(&self, f: impl FnOnce(&mut C1222Host<R>) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let out = f(&mut guard);
        drop(guard);
        self.wake.notify_one();
        out
    }

    /// Spawns the task that calls `handle_timeout` at the host's deadlines, until `shutdown`
    /// turns true or its sender is dropped.
    pub fn spawn_timers(&self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let deadline = {
                    let guard = me.inner.lock().unwrap_or_else(PoisonError::into_inner);
                    guard.poll_timeout()
                };
                let sleep = match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()),
                    None => tokio::time::sleep(Duration::from_secs(3600)),
                };
                tokio::select! {
                    () = sleep => {
                        let mut guard = me.inner.lock().unwrap_or_else(PoisonError::into_inner);
                        guard.handle_timeout(tokio::time::Instant::now().into_std());
                    }
                    () = me.wake.notified() => {}
                    r = shutdown.changed() => {
                        if r.is_err() || *shutdown.borrow() {
                            break;
                        }
                    }
                }
            }
        })
    }
}
