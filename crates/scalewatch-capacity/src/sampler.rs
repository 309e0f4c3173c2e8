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

/// Handle to the background sampler started by
/// [`CapacityModel::spawn_sampler`]. Dropping it (or calling [`stop`](Self::stop)) stops
/// the thread and waits for it: at most the end of one sample.
#[derive(Debug)]
#[must_use = "the sampler stops when this handle is dropped"]
pub struct Sampler {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Stops the sampler and waits for its thread.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // Disconnecting the channel wakes the thread at once.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
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
        let weak = self.downgrade();
        let thread = std::thread::Builder::new()
            .name("scalewatch-capacity".into())
            .spawn(move || loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => match CapacityModel::upgrade(&weak) {
                        Some(model) => model.sample(),
                        None => return,
                    },
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            })
            .map_err(SpawnError::Thread)?;
        Ok(Sampler {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}
