//! The load generator of the end-to-end throughput comparison (budget B2,
//! `benches/end_to_end_throughput.sh`): `CONNECTIONS` keep-alive HTTP/1.1 connections, each
//! sending `GET URL` again as soon as the answer is in, on one thread; prints the
//! successful answers per second over `SECONDS` after a one-second warm-up.
//!
//! `throughput_load URL CONNECTIONS SECONDS`

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, connections, seconds] = args.as_slice() else {
        return Err("usage: throughput_load URL CONNECTIONS SECONDS".into());
    };
    let uri: http::Uri = url.parse()?;
    let connections: usize = connections.parse()?;
    let seconds: f64 = seconds.parse()?;
    if connections == 0 || seconds.is_nan() || seconds <= 0.0 {
        return Err("CONNECTIONS and SECONDS must be above 0".into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let per_second = runtime.block_on(async {
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .build_http();
        // Wait (at most 10 s) until the server answers.
        let ready = Instant::now();
        while client.get(uri.clone()).await.is_err() {
            if ready.elapsed() > Duration::from_secs(10) {
                return Err(format!("{uri} does not answer"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (counting, stop, ok) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                let (client, uri) = (client.clone(), uri.clone());
                let (counting, stop, ok) = (counting.clone(), stop.clone(), ok.clone());
                tokio::spawn(async move {
                    while !stop.load(Relaxed) {
                        let Ok(response) = client.get(uri.clone()).await else {
                            continue;
                        };
                        let good = response.status().is_success();
                        if response.into_body().collect().await.is_ok()
                            && good
                            && counting.load(Relaxed)
                        {
                            ok.fetch_add(1, Relaxed);
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        counting.store(true, Relaxed);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        let answered = ok.load(Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        stop.store(true, Relaxed);
        for task in tasks {
            let _ = task.await;
        }
        Ok(answered as f64 / elapsed)
    })?;
    println!("{per_second:.0}");
    Ok(())
}
