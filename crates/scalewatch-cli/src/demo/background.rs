//! The shop's back office, so that the demo exercises every family of signals a dashboard
//! shows, not only the request path: the tokio runtime that serves the shop as a tier, an
//! `orders` queue that every checkout feeds and a fulfilment worker drains, and a `restock`
//! job that runs every second against a window. None of them is a planted limit: they
//! stay far from saturation, and the capacity model does not rank them.

use std::time::Duration;

use opentelemetry::metrics::Meter;
use scalewatch_runtime::{Job, RuntimeTier};
use scalewatch_state::{QueueBuilder, Receiver, Sender};

use crate::error::CliError;

/// Orders the queue holds; a checkout that finds it full drops its order event.
const ORDERS_CAPACITY: usize = 1024;
/// Fulfilling one order.
const FULFIL: Duration = Duration::from_millis(1);
/// How often the restock job runs, and the window it is allowed.
const RESTOCK_EVERY: Duration = Duration::from_secs(1);
const RESTOCK_WINDOW: Duration = Duration::from_millis(500);
/// One restock run.
const RESTOCK: Duration = Duration::from_millis(40);

/// The back office's instruments and tasks; the tasks stop when it is dropped.
pub(crate) struct BackOffice {
    /// Where checkouts put their order events.
    pub orders: Sender<u64>,
    _runtime: RuntimeTier,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl BackOffice {
    /// Starts the fulfilment worker and the restock job on `runtime`, and measures
    /// `runtime` itself as the tier `shop`.
    pub(crate) fn start(
        runtime: &tokio::runtime::Runtime,
        meter: &Meter,
    ) -> Result<Self, CliError> {
        let demo_error = |e: &dyn std::fmt::Display| CliError::Demo(e.to_string());
        let tier = RuntimeTier::builder(runtime.handle().clone())
            .name("shop")
            .build(meter)
            .map_err(|e| demo_error(&e))?;
        let (orders, received) = QueueBuilder::new("orders")
            .channel(ORDERS_CAPACITY, meter)
            .map_err(|e| demo_error(&e))?;
        let restock = Job::builder("restock", RESTOCK_WINDOW)
            .build(meter)
            .map_err(|e| demo_error(&e))?;
        let tasks = vec![
            runtime.spawn(fulfil(received)),
            runtime.spawn(async move {
                let mut every = tokio::time::interval(RESTOCK_EVERY);
                loop {
                    every.tick().await;
                    restock.instrument(tokio::time::sleep(RESTOCK)).await;
                }
            }),
        ];
        Ok(Self {
            orders,
            _runtime: tier,
            tasks,
        })
    }
}

impl Drop for BackOffice {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Takes orders off the queue one at a time until every sender is gone.
async fn fulfil(mut orders: Receiver<u64>) {
    while orders.recv().await.is_some() {
        tokio::time::sleep(FULFIL).await;
    }
}
