//! `scalewatch demo`: start an instrumented shop with planted breaking points, walk it up a
//! load ramp on loopback, and show where and why it stops scaling, from outside (the
//! client's curve and its USL fit) and from inside (the service's own capacity model and
//! its ranking of every lock, pool and shard).

mod background;
mod service;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use scalewatch_capacity::{CapacityModel, REPORT_PATH};
use scalewatch_otlp::{Telemetry, TelemetryBuilder};

use crate::error::CliError;
use crate::progress::Progress;
use crate::ramp::engine::{Failure, Observer, Step, Target};
use crate::ramp::http::{client, send, HttpClient};
use crate::ramp::{ramp, PlanArgs};
use crate::report::Report;
use service::{DemoService, PRODUCTS};

/// Arguments of `scalewatch demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Where the demo service listens; loopback only.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    listen: SocketAddr,
    #[command(flatten)]
    plan: PlanArgs,
}

/// The traffic mix of the shop's users: 40% checkouts, 40% product pages with Zipf
/// popularity, 20% recommendations.
#[derive(Clone)]
struct Shoppers {
    client: HttpClient,
    base: String,
    popularity: Arc<Zipf>,
}

impl Target for Shoppers {
    async fn call(&self) -> Result<(), Failure> {
        let path = match fastrand::u8(0..10) {
            0..=3 => format!("/checkout/{}", fastrand::u32(..)),
            4..=7 => format!("/items/{}", self.popularity.sample(fastrand::f64())),
            _ => format!("/recommendations/{}", fastrand::u16(..)),
        };
        let request = Request::get(format!("{}{path}", self.base))
            .body(Full::new(Bytes::new()))
            .map_err(|e| Failure::Transport(e.to_string()))?;
        send(&self.client, request).await.map(drop)
    }
}

/// Ranks 0..n drawn with probability ∝ 1/(rank+1)^s, by inverting a precomputed CDF.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Self {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                total += (k as f64).powf(-s);
                total
            })
            .collect();
        for c in &mut cdf {
            *c /= total;
        }
        Self { cdf }
    }

    /// The rank for a uniform `u` in [0, 1).
    fn sample(&self, u: f64) -> u64 {
        self.cdf.partition_point(|&c| c <= u) as u64
    }
}

/// Shows progress and closes the capacity model's windows at the ramp's pace: the
/// warm-up of each step is dropped, then every tick is one window.
struct Sampling {
    progress: Progress,
    model: CapacityModel,
}

impl Observer for Sampling {
    fn step_started(&mut self, index: usize, users: u32) {
        self.progress.step_started(index, users);
    }
    fn measuring(&mut self) {
        self.model.skip();
    }
    fn tick(&mut self, index: usize, so_far: &Step) {
        self.model.sample();
        self.progress.tick(index, so_far);
    }
    fn step_finished(&mut self, index: usize, step: &Step) {
        self.progress.step_finished(index, step);
    }
}

/// The demo's telemetry: OTLP when an endpoint is configured, otherwise none (the report
/// says it all, and a console exporter would write over the progress bar).
fn telemetry() -> Result<Telemetry, CliError> {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("OTEL_"))
        .collect();
    let has = |name: &str| vars.iter().any(|(k, v)| k == name && !v.is_empty());
    let endpoint = has("OTEL_EXPORTER_OTLP_ENDPOINT") || has("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
    if !endpoint && !has("OTEL_METRICS_EXPORTER") {
        vars.push(("OTEL_METRICS_EXPORTER".to_owned(), "none".to_owned()));
        vars.push(("OTEL_TRACES_EXPORTER".to_owned(), "none".to_owned()));
    }
    TelemetryBuilder::from_vars(vars)
        .service_name("scalewatch-demo")
        .build()
        .map_err(|e| CliError::Demo(format!("telemetry: {e}")))
}

/// Runs `scalewatch demo`.
pub(crate) fn run(args: &DemoArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let plan = args.plan.plan()?;
    if !args.listen.ip().is_loopback() {
        return Err(CliError::Usage(format!(
            "--listen {}: the demo listens on loopback only (127.0.0.1 or ::1)",
            args.listen
        )));
    }
    let telemetry = telemetry()?;
    if let Some(endpoint) = &telemetry.config().prometheus {
        eprintln!("scalewatch demo: Prometheus metrics on {endpoint}");
    }
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("scalewatch-demo")
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let shop = DemoService::start(&server_runtime, &telemetry.meter(), args.listen)?;
    let base = format!("http://{}", shop.addr);
    eprintln!(
        "scalewatch demo: a shop on {base} with a global lock, a hot shard and a small pool; ramping {} to {} users over {}",
        plan.levels.first().copied().unwrap_or_default(),
        plan.levels.last().copied().unwrap_or_default(),
        humantime::format_duration(plan.total()),
    );

    let load_runtime = crate::ramp::load_runtime()?;
    let result = load_runtime.block_on(async {
        let shoppers = Shoppers {
            client: client(),
            base: base.clone(),
            popularity: Arc::new(Zipf::new(PRODUCTS, 1.1)),
        };
        let mut sampling = Sampling {
            progress: Progress::new(&plan),
            model: shop.model.clone(),
        };
        let steps = ramp(&plan, &shoppers, &mut sampling).await;
        sampling.progress.finish();
        let steps = steps?;
        shop.model.refit();
        // Read the report the way `ramp` reads any instrumented service's: over HTTP.
        let report_url = format!("{base}{REPORT_PATH}");
        let server = crate::ramp::fetch_server_report(
            report_url
                .parse()
                .map_err(|_| CliError::Demo(format!("`{report_url}` is not a URL")))?,
        )
        .await;
        Ok::<_, CliError>(Report::new(
            "demo",
            base.clone(),
            plan.clone(),
            steps,
            server,
        ))
    });
    shop.stop(&server_runtime);
    if let Err(e) = telemetry.shutdown() {
        eprintln!("warning: telemetry did not shut down cleanly: {e}");
    }
    let report = result?;
    if report.server.report.is_none() {
        return Err(CliError::Demo(format!(
            "the shop's own report could not be read: {}",
            report.server.note.as_deref().unwrap_or("no reason given")
        )));
    }
    crate::report::emit(&report, args.plan.out.as_deref(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_ranks_follow_their_weights() {
        let zipf = Zipf::new(1000, 1.1);
        assert_eq!(zipf.sample(0.0), 0);
        assert_eq!(zipf.sample(0.999_999_999), 999);
        let top_share = zipf.cdf[0];
        let draws = 100_000;
        let top = (0..draws)
            .filter(|i| zipf.sample((f64::from(*i) + 0.5) / f64::from(draws)) == 0)
            .count();
        assert!((top as f64 / f64::from(draws) - top_share).abs() < 1e-3);
        assert!(top_share > 0.1 && top_share < 0.3, "{top_share}");
    }
}
