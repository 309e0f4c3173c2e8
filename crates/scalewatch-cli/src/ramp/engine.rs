//! The closed-loop load generator.
//!
//! At each step, `users` tasks each send a request, wait for its answer, and send the next
//! one: the offered concurrency is exactly `users`, which is the N of the Universal
//! Scalability Law. A step first warms up (connections open, queues fill), then measures
//! for the rest of its time; only answers that arrive while measuring count. At the end of
//! a step the users stop sending and the step waits for their last answers (each bounded
//! by the request timeout), so no step's requests spill into the next.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
// tokio's clock, so that tests can run the ramp in paused time.
use tokio::time::Instant;

/// Why one request did not succeed, as counted in a step's `errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The target answered with an HTTP status outside 2xx.
    Status(u16),
    /// The target answered with a gRPC status other than OK.
    Grpc(tonic::Code),
    /// No answer within the request timeout.
    Timeout,
    /// The connection failed or broke; the message says how.
    Transport(String),
}

impl Failure {
    /// The category counted in a step's `errors`.
    fn category(&self) -> String {
        match self {
            Failure::Status(code) => format!("http {code}"),
            Failure::Grpc(code) => format!("grpc {code:?}"),
            Failure::Timeout => "timeout".to_owned(),
            Failure::Transport(_) => "transport".to_owned(),
        }
    }

    /// A one-line description for error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Failure::Transport(message) => format!("transport error: {message}"),
            other => other.category(),
        }
    }
}

/// Something to send requests to.
pub(crate) trait Target: Clone + Send + Sync + 'static {
    /// Sends one request and waits for the whole answer.
    fn call(&self) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// How the ramp climbs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Plan {
    /// Concurrent users of each step, in order.
    pub levels: Vec<u32>,
    /// How long each step lasts, warm-up included.
    #[serde(with = "seconds")]
    pub step: Duration,
    /// The first part of each step, whose answers are not measured.
    #[serde(with = "seconds")]
    pub warmup: Duration,
    /// Longest wait for one answer before it counts as a timeout.
    #[serde(with = "seconds")]
    pub timeout: Duration,
}

impl Plan {
    /// The measured part of each step.
    pub(crate) fn measured(&self) -> Duration {
        self.step.saturating_sub(self.warmup)
    }

    /// The time the whole ramp takes, without the waits for the last answers of a step.
    pub(crate) fn total(&self) -> Duration {
        self.step * u32::try_from(self.levels.len()).unwrap_or(u32::MAX)
    }
}

/// The measurements of one step. Times are in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Step {
    /// Concurrent users (the offered concurrency N).
    pub users: u32,
    /// The measured time.
    pub seconds: f64,
    /// Successful answers while measuring.
    pub ok: u64,
    /// Failed requests while measuring.
    pub failed: u64,
    /// Failed requests by category (`http 503`, `grpc Unavailable`, `timeout`, `transport`).
    pub errors: BTreeMap<String, u64>,
    /// Successful answers per second (X).
    pub throughput: f64,
    /// Mean latency of the successful answers (R).
    pub mean_latency: f64,
    /// Median latency.
    pub p50: f64,
    /// 90th percentile latency.
    pub p90: f64,
    /// 99th percentile latency.
    pub p99: f64,
    /// Slowest successful answer.
    pub max: f64,
    /// The first failure's description, to say what went wrong.
    pub first_error: Option<String>,
}

/// What the ramp reports while it runs.
pub(crate) trait Observer {
    /// A step starts its warm-up with `users` users.
    fn step_started(&mut self, _index: usize, _users: u32) {}
    /// The warm-up is over: measuring starts now.
    fn measuring(&mut self) {}
    /// Every tick while measuring: the step so far.
    fn tick(&mut self, _index: usize, _so_far: &Step) {}
    /// A step is over.
    fn step_finished(&mut self, _index: usize, _step: &Step) {}
}

/// Why a ramp stopped early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RampError {
    /// Every request of a step failed: the target is down or refuses the requests.
    #[error("every request at {users} users failed ({failed} of them); the first: {first}")]
    AllFailed {
        users: u32,
        failed: u64,
        first: String,
    },
    /// Nothing came back within a step.
    #[error("no answer arrived during the {seconds:.1} s measured at {users} users; give the steps more time (--duration) or a longer --timeout")]
    NoAnswer { users: u32, seconds: f64 },
}

/// Runs `plan` against `target`, reporting to `observer` every `tick` while measuring.
pub(crate) async fn run<T: Target>(
    plan: &Plan,
    target: &T,
    tick: Duration,
    observer: &mut dyn Observer,
) -> Result<Vec<Step>, RampError> {
    let mut steps = Vec::with_capacity(plan.levels.len());
    for (index, &users) in plan.levels.iter().enumerate() {
        observer.step_started(index, users);
        let live = Arc::new(Live::new(users));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..users)
            .map(|_| {
                tokio::spawn(user(
                    target.clone(),
                    plan.timeout,
                    live.clone(),
                    stop.clone(),
                ))
            })
            .collect();

        tokio::time::sleep(plan.warmup).await;
        live.start();
        observer.measuring();
        let end = Instant::now() + plan.measured();
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            tokio::time::sleep(tick.min(end - now)).await;
            observer.tick(index, &live.snapshot());
        }
        let step = live.finish();

        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            // A user task only ends by returning; a panic in it would be a bug here, and
            // the measurements taken so far stay valid.
            let _ = task.await;
        }
        observer.step_finished(index, &step);
        if step.ok == 0 {
            return Err(match step.first_error.clone() {
                Some(first) => RampError::AllFailed {
                    users,
                    failed: step.failed,
                    first,
                },
                None => RampError::NoAnswer {
                    users,
                    seconds: step.seconds,
                },
            });
        }
        steps.push(step);
    }
    Ok(steps)
}

/// One closed-loop user: send, wait, record, repeat until told to stop.
async fn user<T: Target>(target: T, timeout: Duration, live: Arc<Live>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(timeout, target.call()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure::Timeout),
        };
        live.record(started.elapsed(), outcome);
    }
}

/// The step being measured, shared by its users.
struct Live {
    users: u32,
    state: Mutex<State>,
}

struct State {
    measuring_since: Option<Instant>,
    latencies: Histogram<u64>,
    latency_sum: Duration,
    failed: u64,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
}

/// Latencies are recorded in microseconds, 1 µs to 1 hour, 3 significant digits.
const MAX_LATENCY_MICROS: u64 = 3_600_000_000;

impl Live {
    fn new(users: u32) -> Self {
        let latencies = Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3)
            .unwrap_or_else(|_| unreachable!("the bounds are valid constants"));
        Self {
            users,
            state: Mutex::new(State {
                measuring_since: None,
                latencies,
                latency_sum: Duration::ZERO,
                failed: 0,
                errors: BTreeMap::new(),
                first_error: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(&self) {
        self.lock().measuring_since = Some(Instant::now());
    }

    fn record(&self, latency: Duration, outcome: Result<(), Failure>) {
        let mut state = self.lock();
        if state.measuring_since.is_none() {
            return;
        }
        match outcome {
            Ok(()) => {
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                state
                    .latencies
                    .saturating_record(micros.clamp(1, MAX_LATENCY_MICROS));
                state.latency_sum += latency;
            }
            Err(failure) => {
                state.failed += 1;
                *state.errors.entry(failure.category()).or_default() += 1;
                if state.first_error.is_none() {
                    state.first_error = Some(failure.describe());
                }
            }
        }
    }

    /// The step so far.
    fn snapshot(&self) -> Step {
        let state = self.lock();
        let seconds = state
            .measuring_since
            .map_or(0.0, |since| since.elapsed().as_secs_f64());
        let h = &state.latencies;
        let ok = h.len();
        let quantile = |q: f64| micros_to_seconds(h.value_at_quantile(q));
        Step {
            users: self.users,
            seconds,
            ok,
            failed: state.failed,
            errors: state.errors.clone(),
            throughput: if seconds > 0.0 {
                ok as f64 / seconds
            } else {
                0.0
            },
            mean_latency: if ok > 0 {
                state.latency_sum.as_secs_f64() / ok as f64
            } else {
                0.0
            },
            p50: quantile(0.5),
            p90: quantile(0.9),
            p99: quantile(0.99),
            max: micros_to_seconds(h.max()),
            first_error: state.first_error.clone(),
        }
    }

    /// Ends the measurement: answers that arrive later are not counted.
    fn finish(&self) -> Step {
        let step = self.snapshot();
        self.lock().measuring_since = None;
        step
    }
}

fn micros_to_seconds(micros: u64) -> f64 {
    micros as f64 / 1e6
}

/// Durations as seconds in JSON.
mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// A target that answers after a fixed delay and fails every `fail_every`th call.
    #[derive(Clone)]
    struct Scripted {
        delay: Duration,
        fail_every: u64,
        calls: Arc<AtomicU64>,
    }

    impl Target for Scripted {
        async fn call(&self) -> Result<(), Failure> {
            let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
            tokio::time::sleep(self.delay).await;
            if self.fail_every > 0 && n.is_multiple_of(self.fail_every) {
                Err(Failure::Status(503))
            } else {
                Ok(())
            }
        }
    }

    #[derive(Default)]
    struct Recorder {
        events: Vec<String>,
    }

    impl Observer for Recorder {
        fn step_started(&mut self, index: usize, users: u32) {
            self.events.push(format!("start {index} {users}"));
        }
        fn measuring(&mut self) {
            self.events.push("measuring".into());
        }
        fn step_finished(&mut self, index: usize, step: &Step) {
            self.events.push(format!("finish {index} {}", step.users));
        }
    }

    fn plan(levels: Vec<u32>) -> Plan {
        Plan {
            levels,
            step: Duration::from_millis(300),
            warmup: Duration::from_millis(100),
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn closed_loop_users_make_throughput_follow_concurrency() {
        let target = Scripted {
            delay: Duration::from_millis(10),
            fail_every: 0,
            calls: Arc::default(),
        };
        let mut recorder = Recorder::default();
        let steps = run(
            &plan(vec![1, 4]),
            &target,
            Duration::from_millis(50),
            &mut recorder,
        )
        .await
        .unwrap();
        // Paused time: every call takes exactly 10 ms, so one user makes 100/s.
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].ok, 20);
        assert!((steps[0].throughput - 100.0).abs() < 1.0);
        assert_eq!(steps[1].ok, 80);
        assert!((steps[1].throughput - 400.0).abs() < 4.0);
        assert!((steps[1].mean_latency - 0.010).abs() < 1e-4);
        assert!((steps[1].p99 - 0.010).abs() < 1e-4);
        assert_eq!(
            recorder.events,
            [
                "start 0 1",
                "measuring",
                "finish 0 1",
                "start 1 4",
                "measuring",
                "finish 1 4"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_counted_by_category_and_a_dead_target_stops_the_ramp() {
        let flaky = Scripted {
            delay: Duration::from_millis(10),
            fail_every: 4,
            calls: Arc::default(),
        };
        let steps = run(
            &plan(vec![2]),
            &flaky,
            Duration::from_millis(50),
            &mut Recorder::default(),
        )
        .await
        .unwrap();
        let step = &steps[0];
        assert_eq!(step.ok + step.failed, 40);
        assert_eq!(step.errors["http 503"], step.failed);
        assert_eq!(step.failed, 10);
        assert_eq!(step.first_error.as_deref(), Some("http 503"));

        let dead = Scripted {
            delay: Duration::from_millis(10),
            fail_every: 1,
            calls: Arc::default(),
        };
        let err = run(
            &plan(vec![1, 2]),
            &dead,
            Duration::from_millis(50),
            &mut Recorder::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, RampError::AllFailed { users: 1, .. }),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_slower_than_the_timeout_counts_timeouts() {
        let slow = Scripted {
            delay: Duration::from_secs(60),
            fail_every: 0,
            calls: Arc::default(),
        };
        let mut plan = plan(vec![1]);
        plan.timeout = Duration::from_millis(50);
        let err = run(
            &plan,
            &slow,
            Duration::from_millis(50),
            &mut Recorder::default(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("timeout"), "{err}");
    }
}
