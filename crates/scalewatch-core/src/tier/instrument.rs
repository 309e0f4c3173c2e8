//! Custom tiers: any async operation ([`Tier::instrument`]) or blocking call
//! ([`Tier::run`]) measured as work in a tier, with admission when the limit is enforced.
//!
//! A work item is counted from admission to completion by an RAII guard, so a future
//! dropped at any point (cancelled while queued, cancelled while running, panicking) leaves
//! `scalewatch.tier.concurrency` and `scalewatch.tier.queued` exact. Its latency stays in
//! the tier's windows (throughput X and latency R for the capacity model): the catalog has
//! no per-tier duration histogram, so none is recorded.
//!
//! The guards only touch the tier's atomics when they drop (no OpenTelemetry call), so
//! dropping one while a panic unwinds can never panic in turn.

use super::{RejectionReason, Tier};
use crate::clock::now_nanos;
use crate::stats::Started;
use pin_project_lite::pin_project;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

#[cfg(feature = "tokio")]
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
#[cfg(feature = "tokio")]
use std::sync::Arc;
#[cfg(feature = "tokio")]
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

#[cfg(feature = "tokio")]
type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// An enforced tier's admission: `limit` permits, and a bounded count of work waiting for
/// one.
#[cfg(feature = "tokio")]
pub(super) struct Gate {
    semaphore: Arc<Semaphore>,
    /// Work waiting for a permit now. Kept apart from the per-thread `queued` cells, which
    /// are summed lazily: the bound needs one exact count, and only work that has to wait
    /// touches it.
    waiting: AtomicUsize,
    max_queued: usize,
}

#[cfg(feature = "tokio")]
impl Gate {
    /// `permits` (at most [`Semaphore::MAX_PERMITS`], checked by the builder) and a queue of
    /// at most `max_queued`.
    pub(super) fn new(permits: usize, max_queued: usize) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(permits)),
            waiting: AtomicUsize::new(0),
            max_queued,
        }
    }

    /// Takes a place in the queue if one is left.
    fn try_enqueue(&self) -> bool {
        self.waiting
            .fetch_update(Relaxed, Relaxed, |n| (n < self.max_queued).then(|| n + 1))
            .is_ok()
    }

    /// Takes a place in the queue whatever its bound (work that cannot be refused).
    fn enqueue(&self) {
        self.waiting.fetch_add(1, Relaxed);
    }

    /// Gives back a place taken by [`Gate::try_enqueue`] or [`Gate::enqueue`].
    fn leave(&self) {
        self.waiting.fetch_sub(1, Relaxed);
    }
}

/// How work meets a tier whose permits are all taken and whose queue is full.
trait Policy {
    /// What the work gets instead of its output when refused.
    type Refusal;

    /// Takes a place in `gate`'s queue, or refuses the work.
    #[cfg(feature = "tokio")]
    fn join_queue(tier: &Tier, gate: &Gate) -> Result<(), Self::Refusal>;
}

/// [`Tier::instrument`] and [`Tier::run`]: the work waits, whatever the queue's bound.
enum Waits {}

impl Policy for Waits {
    type Refusal = Infallible;

    #[cfg(feature = "tokio")]
    fn join_queue(_: &Tier, gate: &Gate) -> Result<(), Infallible> {
        gate.enqueue();
        Ok(())
    }
}

/// [`Tier::try_instrument`] and [`Tier::try_run`]: past the bound the work is refused,
/// and counted in `scalewatch.tier.rejections`.
enum Sheds {}

impl Policy for Sheds {
    type Refusal = RejectionReason;

    #[cfg(feature = "tokio")]
    fn join_queue(tier: &Tier, gate: &Gate) -> Result<(), RejectionReason> {
        if gate.try_enqueue() {
            return Ok(());
        }
        tier.record_rejection(RejectionReason::Overloaded);
        Err(RejectionReason::Overloaded)
    }
}

/// An admitted work item of an [`Instrumented`] future: when it started (`None` for a tier
/// that is not enabled, only gated) and its admission permit. [`Measured`] records the
/// completion, with the tier it already holds, before the permit goes.
#[derive(Debug)]
struct Work {
    started: Option<Started>,
    #[cfg(feature = "tokio")]
    _permit: Option<OwnedSemaphorePermit>,
}

/// A work item waiting for admission, holding its place in the queue; leaves the queue
/// (both counts) when dropped, however it ends.
#[cfg(feature = "tokio")]
struct Waiting {
    tier: Tier,
    since: u64,
    acquire: Acquire,
}

#[cfg(feature = "tokio")]
impl Waiting {
    /// Counts the work as queued; the caller has taken its place in `gate`'s queue.
    fn new(tier: &Tier, since: u64, gate: &Gate) -> Self {
        tier.inner.stats.enqueue();
        Self {
            tier: tier.clone(),
            since,
            acquire: Box::pin(gate.semaphore.clone().acquire_owned()),
        }
    }
}

#[cfg(feature = "tokio")]
impl Drop for Waiting {
    fn drop(&mut self) {
        self.tier.inner.stats.dequeue();
        if let Some(gate) = &self.tier.inner.admission {
            gate.leave();
        }
    }
}

enum Phase {
    /// Not polled yet: the work has not arrived at the tier.
    Idle,
    /// Waiting for a permit.
    #[cfg(feature = "tokio")]
    Queued(Waiting),
    /// Admitted and running.
    Running(Work),
    /// Completed or refused; nothing left to record.
    Done,
}

impl fmt::Debug for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Idle => "idle",
            #[cfg(feature = "tokio")]
            Phase::Queued(_) => "queued",
            Phase::Running(_) => "running",
            Phase::Done => "done",
        })
    }
}

pin_project! {
    /// A future measured as one work item of a [`Tier`]; see [`Tier::instrument`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Instrumented<F> {
        #[pin]
        future: F,
        // `None` when the tier passes work straight through: one check then, on poll and
        // on drop.
        measured: Option<Measured>,
    }
}

pin_project! {
    /// A future measured as one work item of a [`Tier`] that may be refused; see
    /// [`Tier::try_instrument`].
    #[must_use = "futures do nothing unless polled"]
    struct TryInstrumented<F> {
        #[pin]
        future: F,
        measured: Option<Measured>,
    }
}

/// The tier and where the work stands in it.
struct Measured {
    tier: Tier,
    phase: Phase,
}

impl Measured {
    /// The measurement of work for `tier`, or `None` when the tier passes it through.
    #[inline]
    fn of(tier: &Tier) -> Option<Self> {
        (!tier.passes_through()).then(|| Measured {
            tier: tier.clone(),
            phase: Phase::Idle,
        })
    }
}

impl Drop for Measured {
    /// Dropped while running (cancelled, or unwinding from a panic): the work ends here.
    fn drop(&mut self) {
        end(&self.tier, &mut self.phase);
    }
}

/// Ends the work if it is running: records its completion, then releases its permit.
fn end(tier: &Tier, phase: &mut Phase) {
    if let Phase::Running(work) = phase {
        tier.finish(work.started);
    }
    *phase = Phase::Done;
}

impl<F> fmt::Debug for Instrumented<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumented")
            .field("tier", &self.measured.as_ref().map(|m| m.tier.inner.name))
            .field("phase", &self.measured.as_ref().map(|m| &m.phase))
            .finish()
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        match this.measured {
            // Not enabled and not gated: the future runs as if unwrapped.
            None => this.future.poll(cx),
            Some(m) => match ready!(poll_measured::<F, Waits>(
                this.future,
                &m.tier,
                &mut m.phase,
                cx
            )) {
                Ok(output) => Poll::Ready(output),
                Err(never) => match never {},
            },
        }
    }
}

impl<F: Future> Future for TryInstrumented<F> {
    type Output = Result<F::Output, RejectionReason>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.measured {
            None => this.future.poll(cx).map(Ok),
            Some(m) => poll_measured::<F, Sheds>(this.future, &m.tier, &mut m.phase, cx),
        }
    }
}

/// The measured side of [`Instrumented::poll`], out of line so that the pass-through side
/// inlines into its caller.
fn poll_measured<F: Future, P: Policy>(
    mut future: Pin<&mut F>,
    tier: &Tier,
    phase: &mut Phase,
    cx: &mut Context<'_>,
) -> Poll<Result<F::Output, P::Refusal>> {
    loop {
        match phase {
            Phase::Idle => match arrive::<P>(tier) {
                Ok(next) => *phase = next,
                Err(refusal) => {
                    *phase = Phase::Done;
                    return Poll::Ready(Err(refusal));
                }
            },
            #[cfg(feature = "tokio")]
            Phase::Queued(waiting) => {
                let permit = match waiting.acquire.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    // The tier never closes its semaphore; should it ever be closed, the
                    // work runs unadmitted rather than fail.
                    Poll::Ready(result) => result.ok(),
                };
                let now = now_nanos();
                tier.record_queue_time(crate::clock::seconds_between(waiting.since, now));
                // Leaves the queue (dropping the waiting state) as it starts running.
                *phase = Phase::Running(Work {
                    started: tier.start_at(now),
                    _permit: permit,
                });
            }
            Phase::Running(_) => {
                let output = match future.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(output) => output,
                };
                end(tier, phase);
                return Poll::Ready(Ok(output));
            }
            // Polled after completion: allowed to do anything but undefined behaviour;
            // stay pending rather than poll a finished future.
            Phase::Done => return Poll::Pending,
        }
    }
}

/// The work arrives now: admitted at once (no gate, or a free permit), queued, or refused
/// as `P` says when the queue is full.
fn arrive<P: Policy>(tier: &Tier) -> Result<Phase, P::Refusal> {
    let now = now_nanos();
    #[cfg(feature = "tokio")]
    if let Some(gate) = &tier.inner.admission {
        return match gate.semaphore.clone().try_acquire_owned() {
            Ok(permit) => {
                tier.record_queue_time(0.0);
                Ok(Phase::Running(Work {
                    started: tier.start_at(now),
                    _permit: Some(permit),
                }))
            }
            Err(_) => {
                P::join_queue(tier, gate)?;
                Ok(Phase::Queued(Waiting::new(tier, now, gate)))
            }
        };
    }
    Ok(Phase::Running(Work {
        started: tier.start_at(now),
        #[cfg(feature = "tokio")]
        _permit: None,
    }))
}

impl Tier {
    /// Measures `future` as one work item of this tier: it arrives when first polled,
    /// waits for admission when the limit is enforced
    /// (`TierBuilder::enforce_limit`, feature `tokio`),
    /// and counts as in flight until it completes or is dropped.
    ///
    /// It never refuses the work, so it waits for admission however many items already
    /// wait; where that number is not bounded upstream, use [`Tier::try_instrument`],
    /// which refuses work past the tier's queue bound.
    ///
    /// ```
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use scalewatch_core::{Tier, TierKind};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), scalewatch_core::TierError> {
    /// let meter = opentelemetry::global::meter_provider().meter("example");
    /// let cache = Tier::builder("cache", TierKind::Custom).limit(8).build(&meter)?;
    /// let value = cache.instrument(async { 42 }).await;
    /// assert_eq!(value, 42);
    /// assert_eq!(cache.in_flight(), 0);
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn instrument<F: Future>(&self, future: F) -> Instrumented<F> {
        Instrumented {
            future,
            measured: Measured::of(self),
        }
    }

    /// Measures `future` as [`Tier::instrument`] does, except that when every permit of an
    /// enforced tier is taken and its queue is full
    /// (`TierBuilder::max_queued`, feature `tokio`), the
    /// work is refused: the future resolves to [`RejectionReason::Overloaded`] without
    /// running `future`, and the refusal is counted in `scalewatch.tier.rejections`.
    /// A tier that does not enforce its limit never refuses.
    ///
    /// ```
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use scalewatch_core::{RejectionReason, Tier, TierKind};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let meter = opentelemetry::global::meter_provider().meter("example");
    /// // With the `tokio` feature, `.enforce_limit().max_queued(64)` makes the limit a gate
    /// // that refuses work once 64 items wait.
    /// let db = Tier::builder("postgres", TierKind::Custom).limit(16).build(&meter)?;
    /// match db.try_instrument(async { "row" }).await {
    ///     Ok(row) => assert_eq!(row, "row"),
    ///     Err(RejectionReason::Overloaded) => { /* answer "busy, retry later" */ }
    ///     Err(other) => return Err(other.into()),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    #[inline]
    pub fn try_instrument<F: Future>(
        &self,
        future: F,
    ) -> impl Future<Output = Result<F::Output, RejectionReason>> + use<F> {
        TryInstrumented {
            future,
            measured: Measured::of(self),
        }
    }

    /// Not enabled, and no gate to pass: work runs as if this tier were not there.
    #[inline]
    fn passes_through(&self) -> bool {
        !self.inner.enabled && !self.gated()
    }

    /// Whether work waits for admission ([`TierBuilder::enforce_limit`](super::TierBuilder::enforce_limit)).
    #[inline]
    fn gated(&self) -> bool {
        #[cfg(feature = "tokio")]
        let gated = self.inner.admission.is_some();
        #[cfg(not(feature = "tokio"))]
        let gated = false;
        gated
    }

    /// Runs the blocking `work` as one work item of this tier, on this thread. When the
    /// limit is enforced (feature `tokio`), the thread waits for admission first: call it
    /// where blocking is allowed (`spawn_blocking`, a worker thread), never on an async
    /// runtime's worker. A panic in `work` unwinds through the guard, which still records.
    ///
    /// Like [`Tier::instrument`] it never refuses, however many wait; [`Tier::try_run`]
    /// refuses work past the tier's queue bound.
    ///
    /// ```
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use scalewatch_core::{Tier, TierKind};
    ///
    /// let meter = opentelemetry::global::meter_provider().meter("example");
    /// let hashing = Tier::builder("hashing", TierKind::Custom).build(&meter)?;
    /// let digest = hashing.run(|| 6 * 7);
    /// assert_eq!(digest, 42);
    /// # Ok::<(), scalewatch_core::TierError>(())
    /// ```
    #[inline]
    pub fn run<R>(&self, work: impl FnOnce() -> R) -> R {
        match self.run_with::<Waits, R>(work) {
            Ok(output) => output,
            Err(never) => match never {},
        }
    }

    /// Runs the blocking `work` as [`Tier::run`] does, except that when every permit of an
    /// enforced tier is taken and its queue is full, `work` is not run: the call returns
    /// [`RejectionReason::Overloaded`] at once, counted in `scalewatch.tier.rejections`.
    ///
    /// ```
    /// use opentelemetry::metrics::MeterProvider as _;
    /// use scalewatch_core::{Tier, TierKind};
    ///
    /// let meter = opentelemetry::global::meter_provider().meter("example");
    /// let cpu = Tier::builder("resize", TierKind::Custom).limit(4).build(&meter)?;
    /// assert_eq!(cpu.try_run(|| 6 * 7), Ok(42));
    /// # Ok::<(), scalewatch_core::TierError>(())
    /// ```
    #[inline]
    pub fn try_run<R>(&self, work: impl FnOnce() -> R) -> Result<R, RejectionReason> {
        self.run_with::<Sheds, R>(work)
    }

    #[inline]
    fn run_with<P: Policy, R>(&self, work: impl FnOnce() -> R) -> Result<R, P::Refusal> {
        if self.passes_through() {
            return Ok(work());
        }
        #[cfg(feature = "tokio")]
        if let Some(gate) = &self.inner.admission {
            // Declared first, dropped last: the completion is recorded before the permit goes.
            let (_permit, admitted) = self.admit_blocking::<P>(gate)?;
            let _running = Running::start_at(self, admitted);
            return Ok(work());
        }
        let _running = Running::start_at(self, now_nanos());
        Ok(work())
    }

    /// Waits on this thread for a permit; gives it and when it came, or the refusal.
    #[cfg(feature = "tokio")]
    fn admit_blocking<P: Policy>(
        &self,
        gate: &Gate,
    ) -> Result<(Option<OwnedSemaphorePermit>, u64), P::Refusal> {
        let now = now_nanos();
        match gate.semaphore.clone().try_acquire_owned() {
            Ok(permit) => {
                self.record_queue_time(0.0);
                Ok((Some(permit), now))
            }
            Err(_) => {
                P::join_queue(self, gate)?;
                let mut waiting = Waiting::new(self, now, gate);
                let permit = block_on(waiting.acquire.as_mut()).ok();
                drop(waiting);
                let admitted = now_nanos();
                self.record_queue_time(crate::clock::seconds_between(now, admitted));
                Ok((permit, admitted))
            }
        }
    }
}

/// A blocking work item ([`Tier::run`]), counted for the call's length. It borrows the tier
/// where [`InFlight`](super::InFlight) holds a clone, which would cost two more atomic
/// read-modify-writes on the tier's reference count per call.
struct Running<'a> {
    tier: &'a Tier,
    /// `None` for a tier that is not enabled, only gated.
    started: Option<Started>,
}

impl<'a> Running<'a> {
    #[inline]
    fn start_at(tier: &'a Tier, now: u64) -> Self {
        Self {
            tier,
            started: tier.start_at(now),
        }
    }
}

impl Drop for Running<'_> {
    #[inline]
    fn drop(&mut self) {
        self.tier.finish(self.started);
    }
}

/// Drives `future` to completion on this thread, parking between wake-ups.
#[cfg(feature = "tokio")]
fn block_on<F: Future + Unpin>(mut future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = Pin::new(&mut future).poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TierKind;

    fn meter() -> opentelemetry::metrics::Meter {
        opentelemetry::global::meter_provider().meter("test")
    }

    /// A custom tier that enforces a limit of `limit`.
    #[cfg(feature = "tokio")]
    fn enforced(name: &'static str, limit: u64) -> Tier {
        Tier::builder(name, TierKind::Custom)
            .limit(limit)
            .enforce_limit()
            .build(&meter())
            .unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn counts_while_running_and_keeps_latency_in_windows() {
        let tier = Tier::builder("db", TierKind::Custom)
            .limit(4)
            .build(&meter())
            .unwrap();
        let mut cursor = tier.cursor();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let work = tier.instrument(async move { rx.await.is_ok() });
        assert_eq!(tier.in_flight(), 0, "nothing arrives before the first poll");
        let handle = tokio::spawn(work);
        tokio::task::yield_now().await;
        assert_eq!(tier.in_flight(), 1);
        tx.send(()).unwrap();
        assert!(handle.await.unwrap());
        assert_eq!(tier.in_flight(), 0);
        let w = tier.advance(&mut cursor).unwrap();
        assert_eq!(w.completions, 1);
    }

    #[test]
    fn run_records_even_when_the_work_panics() {
        let tier = Tier::builder("hash", TierKind::Custom)
            .build(&meter())
            .unwrap();
        let t = tier.clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            t.run(|| panic!("boom"))
        }));
        assert!(result.is_err());
        assert_eq!(tier.in_flight(), 0);
        assert_eq!(tier.run(|| tier.in_flight()), 1);
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(flavor = "current_thread")]
    async fn enforced_limit_queues_and_cancelled_waiters_leave_the_queue() {
        let tier = Tier::builder("pool", TierKind::Pool)
            .limit(1)
            .enforce_limit()
            .build(&meter())
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn(tier.instrument(async move { rx.await.is_ok() }));
        tokio::task::yield_now().await;
        assert_eq!(tier.in_flight(), 1);
        let second = tokio::spawn(tier.instrument(async { 2 }));
        tokio::task::yield_now().await;
        assert_eq!(tier.queued(), 1);
        assert_eq!(tier.in_flight(), 1);
        second.abort();
        assert!(second.await.is_err());
        assert_eq!(tier.queued(), 0);
        let third = tokio::spawn(tier.instrument(async { 3 }));
        tokio::task::yield_now().await;
        assert_eq!(tier.queued(), 1);
        tx.send(()).unwrap();
        assert!(first.await.unwrap());
        assert_eq!(third.await.unwrap(), 3);
        assert_eq!((tier.in_flight(), tier.queued()), (0, 0));
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn blocking_run_waits_for_a_permit() {
        let tier = enforced("cpu", 1);
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let t = tier.clone();
        let holder = std::thread::spawn(move || {
            t.run(|| {
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
        });
        held_rx.recv().unwrap();
        let t = tier.clone();
        let waiter = std::thread::spawn(move || t.run(|| t.in_flight()));
        while tier.queued() == 0 {
            std::thread::yield_now();
        }
        release_tx.send(()).unwrap();
        holder.join().unwrap();
        assert_eq!(waiter.join().unwrap(), 1);
        assert_eq!((tier.in_flight(), tier.queued()), (0, 0));
    }

    /// The tier's metric names exported by one collection of a real SDK pipeline after
    /// `work` ran on a tier built with `enabled`.
    fn exported_after(enabled: bool, work: impl FnOnce(&Tier)) -> Vec<String> {
        use opentelemetry::metrics::MeterProvider as _;
        use opentelemetry_sdk::metrics::{
            InMemoryMetricExporter, PeriodicReader, SdkMeterProvider,
        };
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let tier = Tier::builder("db", TierKind::Custom)
            .limit(4)
            .enabled(enabled)
            .build(&provider.meter("test"))
            .unwrap();
        work(&tier);
        provider.force_flush().unwrap();
        let mut names: Vec<String> = exporter
            .get_finished_metrics()
            .unwrap()
            .iter()
            .flat_map(|rm| rm.scope_metrics())
            .flat_map(|sm| sm.metrics())
            .map(|m| m.name().to_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn a_tier_that_is_not_enabled_passes_work_through_and_exports_nothing() {
        let work = |tier: &Tier| {
            assert_eq!(tier.run(|| tier.in_flight()), 0, "run is not counted");
            let mut cx = Context::from_waker(std::task::Waker::noop());
            let polled = std::pin::pin!(tier.instrument(async { tier.in_flight() })).poll(&mut cx);
            assert_eq!(polled, Poll::Ready(0), "instrument is not counted");
            let _guard = tier.enter();
            assert_eq!(tier.in_flight(), 0, "enter is not counted");
        };
        assert!(exported_after(false, work).is_empty());
        // The same work on an enabled tier is counted and exported, so the check can fail.
        let counted = |tier: &Tier| {
            assert_eq!(tier.run(|| tier.in_flight()), 1);
        };
        let exported = exported_after(true, counted);
        assert!(
            exported.contains(&"scalewatch.tier.concurrency".to_owned()),
            "{exported:?}"
        );
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn a_tier_that_is_not_enabled_still_enforces_its_limit() {
        let tier = Tier::builder("cpu", TierKind::Custom)
            .limit(1)
            .enforce_limit()
            .enabled(false)
            .build(&meter())
            .unwrap();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut first = Box::pin(tier.instrument(rx));
        assert!(
            first.as_mut().poll(&mut cx).is_pending(),
            "holds the permit"
        );
        let mut second = Box::pin(tier.instrument(async { 2 }));
        assert!(second.as_mut().poll(&mut cx).is_pending(), "waits for it");
        tx.send(()).unwrap();
        assert!(matches!(first.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
        drop(first);
        assert_eq!(second.as_mut().poll(&mut cx), Poll::Ready(2));
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn the_queue_is_bounded_by_default_and_try_refuses_past_it() {
        let tier = enforced("db", 2);
        let bound = 2 * crate::TierBuilder::DEFAULT_QUEUE_PER_PERMIT;
        let mut cx = Context::from_waker(std::task::Waker::noop());
        // Two hold the permits, `bound` wait, and everything past them is refused at once.
        let mut held = Vec::new();
        let mut refused = 0;
        for _ in 0..(2 + bound + 100) {
            let mut work = Box::pin(tier.try_instrument(std::future::pending::<()>()));
            match work.as_mut().poll(&mut cx) {
                Poll::Pending => held.push(work),
                Poll::Ready(Err(RejectionReason::Overloaded)) => refused += 1,
                Poll::Ready(other) => panic!("unexpected {other:?}"),
            }
            assert!(tier.queued() <= bound as i64, "{} queued", tier.queued());
        }
        assert_eq!(refused, 100);
        assert_eq!((tier.in_flight(), tier.queued()), (2, bound as i64));
        // `instrument` cannot refuse: it waits past the bound, in the same queue, and
        // `try_run` is refused without running its work.
        let mut patient = Box::pin(tier.instrument(async { 7 }));
        assert!(patient.as_mut().poll(&mut cx).is_pending());
        assert_eq!(tier.queued(), bound as i64 + 1);
        assert_eq!(
            tier.try_run(|| unreachable!("refused work never runs")),
            Err(RejectionReason::Overloaded)
        );
        // Leaving the queue (cancelled) makes room again.
        drop(held.pop());
        drop(held.pop());
        let mut again = Box::pin(tier.try_instrument(async { 1 }));
        assert!(again.as_mut().poll(&mut cx).is_pending(), "queues again");
        drop(again);
        drop(held);
        assert_eq!(patient.as_mut().poll(&mut cx), Poll::Ready(7));
        drop(patient);
        assert_eq!((tier.in_flight(), tier.queued()), (0, 0));
        let gate = tier.inner.admission.as_ref().unwrap();
        assert_eq!(gate.waiting.load(Relaxed), 0, "every place given back");
        assert_eq!(tier.try_run(|| 5), Ok(5));
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn an_explicit_bound_of_zero_sheds_and_an_unenforced_tier_never_refuses() {
        let shed = Tier::builder("shed", TierKind::Custom)
            .limit(1)
            .enforce_limit()
            .max_queued(0)
            .build(&meter())
            .unwrap();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut holder = Box::pin(shed.try_instrument(std::future::pending::<()>()));
        assert!(holder.as_mut().poll(&mut cx).is_pending());
        let mut next = Box::pin(shed.try_instrument(async { 1 }));
        assert_eq!(
            next.as_mut().poll(&mut cx),
            Poll::Ready(Err(RejectionReason::Overloaded))
        );
        // Polled again after its refusal: stays pending, counts nothing.
        assert!(next.as_mut().poll(&mut cx).is_pending());
        drop(holder);
        assert_eq!((shed.in_flight(), shed.queued()), (0, 0));

        let measured = Tier::builder("measured", TierKind::Custom)
            .limit(1)
            .build(&meter())
            .unwrap();
        let mut first = Box::pin(measured.try_instrument(std::future::pending::<()>()));
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert_eq!(measured.try_run(|| measured.in_flight()), Ok(2));
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn a_queue_bound_needs_an_enforced_limit() {
        let err = Tier::builder("x", TierKind::Custom)
            .limit(3)
            .max_queued(10)
            .build(&meter())
            .unwrap_err();
        assert_eq!(err, crate::TierError::QueueWithoutEnforce("x"));
        assert!(err.to_string().contains("enforce_limit()"), "{err}");
    }

    #[test]
    fn refusals_say_what_to_change() {
        let overloaded = RejectionReason::Overloaded.to_string();
        assert!(overloaded.contains("max_queued"), "{overloaded}");
        let timeout = RejectionReason::Timeout.to_string();
        assert!(timeout.contains("queue timeout"), "{timeout}");
        let boxed: Box<dyn std::error::Error + Send + Sync> = RejectionReason::Overloaded.into();
        assert!(boxed.downcast_ref::<RejectionReason>().is_some());
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn enforcing_needs_a_limit() {
        let err = Tier::builder("x", TierKind::Custom)
            .enforce_limit()
            .build(&meter())
            .unwrap_err();
        assert_eq!(err, crate::TierError::EnforceWithoutLimit("x"));
    }
}
