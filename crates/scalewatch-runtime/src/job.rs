//! [`Job`]: background work that must finish within an allowed window (an hourly batch
//! that must be done in 45 minutes), measured run by run.

use crate::catalog::{self, attr};
use opentelemetry::metrics::{BoundHistogram, Meter};
use opentelemetry::KeyValue;
use pin_project_lite::pin_project;
use scalewatch_core::clock::{now_nanos, seconds_between};
use scalewatch_core::{InFlight, Tier, TierError, TierKind};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A [`Job`] could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobError {
    /// The name was empty.
    #[error("job name is empty: give the job a short static name such as \"nightly-export\"")]
    EmptyName,
    /// A zero window leaves no time to run in.
    #[error("job `{0}` has a zero window: give the time a run is allowed to take")]
    ZeroWindow(&'static str),
    /// The job's tier could not be built.
    #[error(transparent)]
    Tier(#[from] TierError),
}

/// No run has completed yet (not a valid `f64` ratio: a NaN payload).
const NO_RUN: u64 = u64::MAX;

/// A named job with an allowed window. Each run is recorded as `scalewatch.job.duration`
/// and sets `scalewatch.job.window.utilization` (its duration / the window; above 1 means
/// it overran). Runs also count in a tier of kind `job` with the same name, so running
/// jobs show in `scalewatch.tier.concurrency` and in the capacity windows.
///
/// A run is an RAII [`JobRun`]: a run that panics or is cancelled is recorded like any
/// other (the contract has no outcome attribute for jobs, so only its duration).
///
/// ```
/// use opentelemetry::metrics::MeterProvider as _;
/// use scalewatch_runtime::Job;
/// use std::time::Duration;
///
/// let meter = opentelemetry::global::meter_provider().meter("my-service");
/// let export = Job::builder("hourly-export", Duration::from_secs(45 * 60)).build(&meter)?;
/// export.run(|| { /* the batch */ });
/// assert!(export.last_window_utilization().is_some());
/// # Ok::<(), scalewatch_runtime::JobError>(())
/// ```
#[derive(Clone)]
pub struct Job {
    inner: Arc<JobInner>,
}

struct JobInner {
    name: &'static str,
    window: Duration,
    duration: BoundHistogram<f64>,
    tier: Tier,
    /// The last run's window utilization, as `f64` bits; [`NO_RUN`] before the first.
    last_utilization: AtomicU64,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.inner.name)
            .field("window", &self.inner.window)
            .field("running", &self.inner.tier.in_flight())
            .finish()
    }
}

/// Configures a [`Job`].
#[derive(Debug, Clone)]
#[must_use]
pub struct JobBuilder {
    name: &'static str,
    window: Duration,
}

impl JobBuilder {
    /// Validates the configuration and registers the job's instruments on `meter`.
    ///
    /// Build it once and clone the handle: each build registers observers on `meter`
    /// that live as long as its meter provider.
    pub fn build(self, meter: &Meter) -> Result<Job, JobError> {
        if self.name.is_empty() {
            return Err(JobError::EmptyName);
        }
        if self.window.is_zero() {
            return Err(JobError::ZeroWindow(self.name));
        }
        let attrs = [KeyValue::new(attr::JOB_NAME, self.name)];
        let inner = Arc::new(JobInner {
            name: self.name,
            window: self.window,
            duration: catalog::JOB_DURATION.f64_histogram(meter).bind(&attrs),
            tier: Tier::builder(self.name, TierKind::Job).build(meter)?,
            last_utilization: AtomicU64::new(NO_RUN),
        });
        catalog::JOB_WINDOW_UTILIZATION
            .f64_observable_gauge_of(meter, &inner, &attrs, |j| j.last_utilization());
        Ok(Job { inner })
    }
}

impl JobInner {
    fn last_utilization(&self) -> Option<f64> {
        match self.last_utilization.load(Relaxed) {
            NO_RUN => None,
            bits => Some(f64::from_bits(bits)),
        }
    }
}

impl Job {
    /// Starts configuring a job named `name` (static, low-cardinality) whose runs are
    /// allowed to take `window`.
    pub fn builder(name: &'static str, window: Duration) -> JobBuilder {
        JobBuilder { name, window }
    }

    /// The job's name.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// The time a run is allowed to take.
    pub fn window(&self) -> Duration {
        self.inner.window
    }

    /// The job's tier (kind `job`), for reports and capacity models.
    pub fn tier(&self) -> &Tier {
        &self.inner.tier
    }

    /// The last completed run's duration / window, once a run has completed.
    pub fn last_window_utilization(&self) -> Option<f64> {
        self.inner.last_utilization()
    }

    /// Starts a run now; it ends, and is recorded, when the returned guard drops.
    pub fn start(&self) -> JobRun {
        JobRun {
            job: self.clone(),
            work: self.inner.tier.enter(),
        }
    }

    /// Runs the blocking `work` as one run of this job.
    pub fn run<R>(&self, work: impl FnOnce() -> R) -> R {
        let _run = self.start();
        work()
    }

    /// Measures `future` as one run of this job, from its first poll until it completes
    /// or is dropped.
    pub fn instrument<F: Future>(&self, future: F) -> JobFuture<F> {
        JobFuture {
            future,
            job: self.clone(),
            run: None,
            done: false,
        }
    }
}

/// One run of a [`Job`], recorded when dropped (completed, failed, panicked or cancelled).
#[must_use = "the run ends, and is recorded, when this guard drops"]
pub struct JobRun {
    job: Job,
    work: InFlight,
}

impl fmt::Debug for JobRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobRun")
            .field("job", &self.job.inner.name)
            .field("started_at", &self.work.started_at())
            .finish()
    }
}

impl JobRun {
    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        scalewatch_core::clock::duration_between(self.work.started_at(), now_nanos())
    }
}

impl Drop for JobRun {
    fn drop(&mut self) {
        let inner = &self.job.inner;
        let seconds = seconds_between(self.work.started_at(), now_nanos());
        let utilization = seconds / inner.window.as_secs_f64();
        inner.last_utilization.store(utilization.to_bits(), Relaxed);
        // A run that panics drops this guard while it unwinds, when a second panic (from
        // the SDK's recording) would abort the process: contain it there, and give the
        // measurement up. Otherwise record as usual.
        if std::thread::panicking() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                inner.duration.record(seconds);
            }));
        } else {
            inner.duration.record(seconds);
        }
    }
}

pin_project! {
    /// A future measured as one run of a [`Job`]; see [`Job::instrument`].
    #[must_use = "futures do nothing unless polled"]
    pub struct JobFuture<F> {
        #[pin]
        future: F,
        job: Job,
        run: Option<JobRun>,
        done: bool,
    }
}

impl<F> fmt::Debug for JobFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobFuture")
            .field("job", &self.job.inner.name)
            .field("running", &self.run.is_some())
            .finish()
    }
}

impl<F: Future> Future for JobFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if *this.done {
            // Polled after completion: stay pending rather than poll a finished future.
            return Poll::Pending;
        }
        if this.run.is_none() {
            *this.run = Some(this.job.start());
        }
        let output = match this.future.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(output) => output,
        };
        *this.done = true;
        drop(this.run.take());
        Poll::Ready(output)
    }
}

impl scalewatch_core::resource::Saturable for Job {
    /// The job, for `CapacityModel::register`: its last run's duration against its window.
    fn resource(&self) -> scalewatch_core::resource::ResourceSource {
        let job = self.clone();
        scalewatch_core::resource::ResourceSource {
            kind: scalewatch_core::resource::ResourceKind::Job,
            name: self.inner.name.into(),
            read: Arc::new(move || {
                job.last_window_utilization()
                    .map(scalewatch_core::resource::Reading::utilization)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::global;

    #[test]
    fn a_panicking_run_is_still_recorded() {
        let job = Job::builder("batch", Duration::from_secs(1))
            .build(&global::meter("test"))
            .unwrap();
        assert_eq!(job.last_window_utilization(), None);
        let j = job.clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            j.run(|| panic!("failed batch"))
        }));
        assert!(result.is_err());
        assert!(job.last_window_utilization().is_some());
        assert_eq!(job.tier().in_flight(), 0);
    }

    /// A meter whose histograms panic on every record, bound or not.
    fn panicking_meter() -> Meter {
        use opentelemetry::metrics::{
            BoundSyncInstrument, Histogram, HistogramBuilder, InstrumentProvider, SyncInstrument,
        };
        struct Panicking;
        impl SyncInstrument<f64> for Panicking {
            fn measure(&self, _: f64, _: &[KeyValue]) {
                std::panic::panic_any("sdk panic");
            }
            fn bind(&self, _: &[KeyValue]) -> Box<dyn BoundSyncInstrument<f64> + Send + Sync> {
                Box::new(Panicking)
            }
        }
        impl BoundSyncInstrument<f64> for Panicking {
            fn measure(&self, _: f64) {
                std::panic::panic_any("sdk panic");
            }
        }
        struct Provider;
        impl InstrumentProvider for Provider {
            fn f64_histogram(&self, _: HistogramBuilder<'_, Histogram<f64>>) -> Histogram<f64> {
                Histogram::new(Arc::new(Panicking))
            }
        }
        Meter::new(Arc::new(Provider))
    }

    #[test]
    fn a_run_panicking_into_a_panicking_recording_does_not_abort() {
        // Without the guard's containment, the recording's panic during the run's unwinding
        // would abort this test binary.
        let job = Job::builder("fragile", Duration::from_secs(1))
            .build(&panicking_meter())
            .unwrap();
        let j = job.clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            j.run(|| std::panic::panic_any("failed batch"))
        }));
        let payload = result.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"failed batch"));
        assert!(job.last_window_utilization().is_some());
        assert_eq!(job.tier().in_flight(), 0);
        // Outside an unwinding the recording's panic is an ordinary one.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(|| 7)));
        assert_eq!(
            result.unwrap_err().downcast_ref::<&str>(),
            Some(&"sdk panic")
        );
        assert_eq!(job.tier().in_flight(), 0);
    }

    #[test]
    fn configuration_is_validated() {
        assert_eq!(
            Job::builder("", Duration::from_secs(1))
                .build(&global::meter("test"))
                .unwrap_err(),
            JobError::EmptyName
        );
        assert_eq!(
            Job::builder("j", Duration::ZERO)
                .build(&global::meter("test"))
                .unwrap_err(),
            JobError::ZeroWindow("j")
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_async_run_is_recorded() {
        let job = Job::builder("sync", Duration::from_secs(1))
            .build(&global::meter("test"))
            .unwrap();
        let run = tokio::spawn(job.instrument(std::future::pending::<()>()));
        tokio::task::yield_now().await;
        assert_eq!(job.tier().in_flight(), 1);
        run.abort();
        assert!(run.await.is_err());
        assert_eq!(job.tier().in_flight(), 0);
        assert!(job.last_window_utilization().is_some());
        assert_eq!(job.instrument(async { 7 }).await, 7);
    }
}
