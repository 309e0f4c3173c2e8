//! Random sequences of acquisitions, releases, failed tries and cancelled waits, over
//! several tokio locks and a semaphore, against a reference model of what the statistics
//! must say: acquisitions by mode and contention, waiters now, nothing leaked.
#![allow(clippy::unwrap_used)] // tests may unwrap

use proptest::prelude::*;
use scalewatch_sync::tokio::{RwLock, Semaphore};
use scalewatch_sync::LockMetrics;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Clone)]
enum Op {
    /// Start a write (exclusive) acquisition of lock `0..2`, polled once.
    Write(usize),
    /// Start a read (shared) acquisition of lock `0..2`, polled once.
    Read(usize),
    /// Start a semaphore acquisition, polled once.
    Permit,
    /// Drop the oldest pending or held item `i` (a cancel when pending, a release when held).
    Drop(usize),
    /// Poll every pending wait once.
    PollAll,
    /// A `try_write` of lock `0..2` that is released at once.
    TryWrite(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2usize).prop_map(Op::Write),
        (0..2usize).prop_map(Op::Read),
        Just(Op::Permit),
        (0..16usize).prop_map(Op::Drop),
        Just(Op::PollAll),
        (0..2usize).prop_map(Op::TryWrite),
    ]
}

/// Anything held: a guard or a permit.
trait Held {}
impl<T> Held for T {}

type Pending<'a> = Pin<Box<dyn Future<Output = Box<dyn Held + 'a>> + 'a>>;

enum Item<'a> {
    Pending {
        lock: usize,
        fut: Pending<'a>,
        contended_mode: usize,
    },
    HeldGuard(#[allow(dead_code)] Box<dyn Held + 'a>),
}

/// Polls a new acquisition once: held (uncontended) or pending (contended, a waiter).
fn start<'a>(
    cx: &mut Context<'_>,
    mut fut: Pending<'a>,
    lock: usize,
    mode: usize,
    model: &mut Model,
) -> Item<'a> {
    match fut.as_mut().poll(cx) {
        Poll::Ready(g) => {
            model.acquired[lock][mode][0] += 1;
            Item::HeldGuard(g)
        }
        Poll::Pending => {
            model.waiters[lock] += 1;
            Item::Pending {
                lock,
                fut,
                contended_mode: mode,
            }
        }
    }
}

/// The reference model: per lock name, [exclusive, shared] × [uncontended, contended].
#[derive(Default, Debug, PartialEq)]
struct Model {
    acquired: [[[u64; 2]; 2]; 3],
    waiters: [i64; 3],
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn statistics_follow_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let meter = opentelemetry::metrics::MeterProvider::meter(
            &opentelemetry_sdk::metrics::SdkMeterProvider::builder().build(), "model");
        let locks = LockMetrics::builder().hold_sample_every(3).build(&meter).unwrap();
        let names = ["a", "b", "s"];
        let rw = [RwLock::new("a", (), &locks), RwLock::new("b", (), &locks)];
        let sem = Semaphore::new("s", 2, &locks);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut items: Vec<Item<'_>> = Vec::new();
        let mut model = Model::default();

        for op in ops {
            match op {
                Op::Write(i) => {
                    let r = &rw[i];
                    let it = start(&mut cx, Box::pin(async move { Box::new(r.write().await) as Box<dyn Held> }), i, 0, &mut model);
                    items.push(it);
                }
                Op::Read(i) => {
                    let r = &rw[i];
                    let it = start(&mut cx, Box::pin(async move { Box::new(r.read().await) as Box<dyn Held> }), i, 1, &mut model);
                    items.push(it);
                }
                Op::Permit => {
                    let s = &sem;
                    let it = start(&mut cx, Box::pin(async move { Box::new(s.acquire().await.unwrap()) as Box<dyn Held> }), 2, 1, &mut model);
                    items.push(it);
                }
                Op::Drop(k) => {
                    if !items.is_empty() {
                        let item = items.remove(k % items.len());
                        if let Item::Pending { lock, .. } = &item {
                            model.waiters[*lock] -= 1;
                        }
                        drop(item);
                    }
                }
                Op::PollAll => {
                    for item in items.iter_mut() {
                        if let Item::Pending { lock, fut, contended_mode } = item {
                            if let Poll::Ready(g) = fut.as_mut().poll(&mut cx) {
                                model.waiters[*lock] -= 1;
                                model.acquired[*lock][*contended_mode][1] += 1;
                                *item = Item::HeldGuard(g);
                            }
                        }
                    }
                }
                Op::TryWrite(i) => {
                    if let Ok(g) = rw[i].try_write() {
                        model.acquired[i][0][0] += 1;
                        drop(g);
                    }
                }
            }
            for (n, name) in names.iter().enumerate() {
                let c = locks.counts(name).unwrap();
                prop_assert_eq!(c.waiters, model.waiters[n], "waiters of {}", name);
                prop_assert_eq!(
                    [[c.exclusive_uncontended, c.exclusive_contended], [c.shared_uncontended, c.shared_contended]],
                    model.acquired[n], "acquisitions of {}", name);
            }
        }
        // Dropping everything cancels the waits still pending and releases the guards.
        drop(items);
        for name in names {
            prop_assert_eq!(locks.counts(name).unwrap().waiters, 0);
        }
    }
}
