//! A request whose handler panics while its future lives on the unwinding stack (a
//! `block_on`, a future pinned in a sync function) has its guard dropped *during* the
//! unwinding. Should recording then panic too (here: an OpenTelemetry meter whose duration
//! histograms panic on every record), the process would abort; the guards contain it, keep their counts
//! exact and give their admission permit back. Server and client layers alike.
//!
//! An abort kills the whole test binary, so these tests have one of their own.
#![allow(clippy::unwrap_used)]

use opentelemetry::metrics::{
    BoundSyncInstrument, Histogram, HistogramBuilder, InstrumentProvider, Meter, SyncInstrument,
};
use opentelemetry::KeyValue;
use scalewatch_core::Tier;
use scalewatch_tower::{ClientTierLayer, ServerTierLayer};
use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tower::{Layer, Service};

const HANDLER_PANIC: &str = "handler panic";
const SDK_PANIC: &str = "sdk panic";

/// An instrument whose every measurement panics (bound or not), or that records nothing.
#[derive(Clone, Copy)]
struct Instrument {
    panics: bool,
}

impl Instrument {
    fn record(self) {
        if self.panics {
            std::panic::panic_any(SDK_PANIC);
        }
    }
}

impl<T> SyncInstrument<T> for Instrument {
    fn measure(&self, _: T, _: &[KeyValue]) {
        self.record();
    }

    fn bind(&self, _: &[KeyValue]) -> Box<dyn BoundSyncInstrument<T> + Send + Sync> {
        Box::new(*self)
    }
}

impl<T> BoundSyncInstrument<T> for Instrument {
    fn measure(&self, _: T) {
        self.record();
    }
}

/// A meter whose request-duration histograms (what a guard records when it drops) panic
/// on every record; every other instrument records nothing.
struct PanickingProvider;

impl InstrumentProvider for PanickingProvider {
    fn f64_histogram(&self, builder: HistogramBuilder<'_, Histogram<f64>>) -> Histogram<f64> {
        let panics = builder.name.ends_with(".request.duration");
        Histogram::new(Arc::new(Instrument { panics }))
    }
}

fn panicking_meter() -> Meter {
    Meter::new(Arc::new(PanickingProvider))
}

fn quiet_panics() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload().downcast_ref::<&str>();
        if payload != Some(&HANDLER_PANIC) && payload != Some(&SDK_PANIC) {
            default_hook(info);
        }
    }));
}

fn payload(panic: Box<dyn Any + Send>) -> &'static str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .unwrap_or("another panic")
}

/// A service whose future panics when first polled.
fn panicking_handler<B>() -> impl Service<
    http::Request<B>,
    Response = http::Response<String>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<String>, Infallible>>,
> + Clone {
    tower::service_fn(|_req: http::Request<B>| async {
        if std::hint::black_box(true) {
            std::panic::panic_any(HANDLER_PANIC);
        }
        Ok(http::Response::new(String::new()))
    })
}

/// Calls `service` and polls the future once, pinned on this stack: the handler's panic
/// unwinds through this frame and drops the future (and its guard) on the way.
fn call_on_the_stack<S>(service: &mut S, uri: &str) -> &'static str
where
    S: Service<http::Request<String>>,
{
    let request = http::Request::get(uri).body(String::new()).unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut future = pin!(service.call(request));
        let mut cx = Context::from_waker(Waker::noop());
        matches!(future.as_mut().poll(&mut cx), Poll::Pending)
    }));
    match result {
        Ok(true) => "pending",
        Ok(false) => "answered",
        Err(panic) => payload(panic),
    }
}

/// Three calls in a row through a layer with a limit of 1, each panicking in the handler
/// while its guard's recording panics too: each reaches the handler (with the permit
/// leaked, the second would wait in the queue, "pending"), and the tier is left empty.
fn three_calls_reach_the_handler<S>(service: &mut S, tier: &Tier, uri: &str)
where
    S: Service<http::Request<String>>,
{
    for round in 0..3 {
        assert_eq!(
            call_on_the_stack(service, uri),
            HANDLER_PANIC,
            "round {round}"
        );
        assert_eq!((tier.in_flight(), tier.queued()), (0, 0), "round {round}");
    }
}

#[test]
fn server_guards_contain_a_recording_panic_while_unwinding() {
    quiet_panics();
    let layer = ServerTierLayer::builder()
        .tier_name("api")
        .concurrency_limit(1)
        .build(&panicking_meter())
        .unwrap();
    let mut service = layer.layer(panicking_handler());
    three_calls_reach_the_handler(&mut service, layer.tier(), "http://api.internal/x");
}

#[test]
fn client_guards_contain_a_recording_panic_while_unwinding() {
    quiet_panics();
    let layer = ClientTierLayer::builder()
        .tier_name("outbound")
        .concurrency_limit(1)
        .build(&panicking_meter())
        .unwrap();
    let mut service = layer.layer(panicking_handler());
    three_calls_reach_the_handler(&mut service, layer.tier(), "http://users.internal:8080/x");
}

#[test]
fn outside_unwinding_a_recording_panic_is_an_ordinary_panic() {
    // The check above can fail: the same meter does panic when the guard records outside
    // an unwinding (here when the response, with its guard, is dropped).
    quiet_panics();
    let layer = ServerTierLayer::builder()
        .tier_name("plain")
        .build(&panicking_meter())
        .unwrap();
    let mut service = layer.layer(tower::service_fn(|_req: http::Request<String>| async {
        Ok::<_, Infallible>(http::Response::new(String::from("body")))
    }));
    let request = http::Request::new(String::new());
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut future = pin!(service.call(request));
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(Ok(response)) = future.as_mut().poll(&mut cx) else {
            unreachable!("the service answers at once");
        };
        drop(response);
    }));
    assert_eq!(result.map_err(payload).err(), Some(SDK_PANIC));
    assert_eq!(layer.tier().in_flight(), 0, "counted before recording");
}
