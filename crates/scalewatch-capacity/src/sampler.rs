//! The optional background sampler: a thread that calls
//! [`CapacityModel::sample`](crate::CapacityModel::sample) at a fixed interval.

use crate::model::CapacityModel;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// The background sampler could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// A zero interval would sample in a busy loop.
    #[error("sampling interval is zero: use a few seconds, longer than the tier's latencies")]
    ZeroInterval,
    /// The operating system refused the thread.
    #[error("could not start the sampler thread")]
    Thread(#[source] std::io::Error),
}

/// How long dropping a [`Sampler`] waits for its thread to end: a resource source that
/// blocks must not hang the drop; the thread then ends by itself once the source returns.
const DROP_WAIT: Duration = Duration::from_secs(1);

/// Handle to the background sampler started by
/// [`CapacityModel::spawn_sampler`]. Dropping it stops the thread: the drop waits at most
/// about a second for it to end (never on an async runtime's thread, where it does not
/// wait at all), and a thread stuck in a resource source that blocks ends on its own when
/// the source returns. [`stop`](Self::stop) waits for the thread however long it takes.
#[derive(Debug)]
#[must_use = "the sampler stops when this handle is dropped"]
pub struct Sampler {
    stop: Option<mpsc::Sender<()>>,
    /// Disconnected when the thread ends.
    done: Option<mpsc::Receiver<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Stops the sampler and waits for its thread, however long its current sample takes.
    pub fn stop(mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // Disconnecting the channel wakes the thread at once.
        drop(self.stop.take());
        let Some(thread) = self.thread.take() else {
            return;
        };
        let on_runtime = tokio_runtime_here();
        let on_itself = thread.thread().id() == std::thread::current().id();
        if on_runtime || on_itself {
            return; // detached: it ends by itself
        }
        let ended = self.done.take().is_some_and(|done| {
            matches!(
                done.recv_timeout(DROP_WAIT),
                Err(RecvTimeoutError::Disconnected)
            )
        });
        if ended {
            let _ = thread.join();
        }
    }
}

/// Whether the current thread runs an async runtime's tasks, where no drop may block.
/// Without a dependency on tokio, the thread's name is the signal tokio gives
/// (`tokio-runtime-worker`, or a name chosen by the application: those threads are not
/// recognised, and the drop then waits at most [`DROP_WAIT`]).
fn tokio_runtime_here() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("tokio-runtime-worker"))
}

impl CapacityModel {
    /// Starts a thread (`scalewatch-capacity`) that calls [`sample`](Self::sample) every
    /// `interval` until the returned handle drops or every clone of the model is gone.
    /// The thread holds no strong reference to the model.
    pub fn spawn_sampler(&self, interval: Duration) -> Result<Sampler, SpawnError> {
        if interval.is_zero() {
            return Err(SpawnError::ZeroInterval);
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let (ended, done) = mpsc::channel::<()>();
        let weak = self.downgrade();
        let thread = std::thread::Builder::new()
            .name("scalewatch-capacity".into())
            .spawn(move || {
                // Dropped when the thread ends, which the handle's drop waits for.
                let _ended = ended;
                loop {
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => match CapacityModel::upgrade(&weak) {
                            Some(model) => model.sample(),
                            None => return,
                        },
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .map_err(SpawnError::Thread)?;
        Ok(Sampler {
            stop: Some(stop),
            done: Some(done),
            thread: Some(thread),
        })
    }
}
