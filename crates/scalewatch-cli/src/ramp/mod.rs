//! `scalewatch ramp URL`: walk any HTTP endpoint or gRPC method up a load ramp, fit the
//! Universal Scalability Law to what the client sees, and read the target's own report
//! when it serves one.

pub(crate) mod engine;
pub(crate) mod grpc;
pub(crate) mod http;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use ::http::header::{HeaderName, HeaderValue};
use ::http::uri::{PathAndQuery, Scheme};
use ::http::{HeaderMap, Method, Uri};
use bytes::Bytes;
use scalewatch_capacity::{CapacityReport, REPORT_PATH};

use crate::error::CliError;
use crate::progress::Progress;
use crate::report::{Report, ServerView};
use engine::{Plan, Target};

/// Arguments shared by every command that runs a ramp.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PlanArgs {
    /// How long the whole ramp runs (`60s`, `2m`, ...); each step gets an equal share, the
    /// first fifth of which warms up unmeasured.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Concurrent users of each step, comma-separated (`1,2,4,8`). The default climbs from
    /// 1 to --max-users by steps of 4/3 and 3/2: 1, 2, 3, 4, 6, 8, 12, 16, ...
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    pub levels: Option<Vec<u32>>,
    /// The top of the default climb.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_users: u32,
    /// Longest wait for one answer before it counts as a timeout.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Also write report.json, curve.svg and report.md into this directory (created if
    /// missing).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The most users one step may have: each is a task with a connection.
const MAX_USERS: u32 = 10_000;
/// The shortest measured part of a step that still says something.
const MIN_STEP: Duration = Duration::from_millis(500);

impl PlanArgs {
    /// Checks the arguments and turns them into a plan.
    pub(crate) fn plan(&self) -> Result<Plan, CliError> {
        let invalid = |message: String| CliError::Usage(message);
        let levels = match &self.levels {
            Some(levels) => levels.clone(),
            None => default_levels(self.max_users),
        };
        if levels.len() < 4 {
            return Err(invalid(format!(
                "a ramp needs at least 4 steps to fit a curve, --levels gives {}",
                levels.len()
            )));
        }
        if let Some(bad) = levels.iter().find(|&&n| n == 0 || n > MAX_USERS) {
            return Err(invalid(format!(
                "{bad} users: every level must be between 1 and {MAX_USERS}"
            )));
        }
        if levels.windows(2).any(|w| w[1] <= w[0]) {
            return Err(invalid(format!(
                "--levels must rise strictly, got {levels:?}"
            )));
        }
        let steps = u32::try_from(levels.len()).unwrap_or(u32::MAX);
        let step = self.duration / steps;
        let warmup = (step / 5).clamp(Duration::from_millis(100), Duration::from_secs(2));
        if step.saturating_sub(warmup) < MIN_STEP {
            return Err(invalid(format!(
                "--duration {} over {} steps leaves {} ms per step; give at least {}",
                humantime::format_duration(self.duration),
                levels.len(),
                step.as_millis(),
                humantime::format_duration((MIN_STEP + Duration::from_millis(100)) * steps),
            )));
        }
        if self.timeout.is_zero() {
            return Err(invalid("--timeout must be above 0".to_owned()));
        }
        Ok(Plan {
            levels,
            step,
            warmup,
            timeout: self.timeout,
        })
    }
}

/// 1, 2, 3, 4, 6, 8, 12, 16, ...: powers of two and the halfway points 3·2ᵏ, up to `max`
/// (which is included).
pub(crate) fn default_levels(max: u32) -> Vec<u32> {
    let mut levels: Vec<u32> = (0..32)
        .flat_map(|k| [1u64 << k, 3u64 << k])
        .filter(|&n| n <= u64::from(max))
        .filter_map(|n| u32::try_from(n).ok())
        .collect();
    levels.push(max);
    levels.sort_unstable();
    levels.dedup();
    levels
}

/// Arguments of `scalewatch ramp`.
#[derive(Debug, clap::Args)]
pub(crate) struct RampArgs {
    /// The target: an `http://` URL, or with --grpc the server's `http://host:port`.
    url: String,
    /// Call this unary gRPC method (`/package.Service/Method`) instead of sending HTTP
    /// requests; the request message is --body (protobuf-encoded, empty by default: a
    /// message with every field at its default).
    #[arg(long, value_name = "/PKG.SERVICE/METHOD")]
    grpc: Option<String>,
    /// HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    method: String,
    /// A request header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The request body, as text.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// The request body, read from a file (raw bytes).
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// Where the target serves its scalewatch report: a path on the target, or a full URL.
    #[arg(long, default_value = REPORT_PATH, value_name = "PATH|URL")]
    server_report: String,
    /// Do not ask the target for its report.
    #[arg(long, conflicts_with = "server_report")]
    no_server_report: bool,
    #[command(flatten)]
    plan: PlanArgs,
}

/// What the ramp sends, checked before anything starts.
enum Request {
    Http {
        method: Method,
        uri: Uri,
        headers: HeaderMap,
    },
    Grpc {
        origin: Uri,
        path: PathAndQuery,
    },
}

impl RampArgs {
    fn request(&self) -> Result<Request, CliError> {
        let uri = parse_http_url(&self.url)?;
        if let Some(method) = &self.grpc {
            let path = parse_grpc_method(method)?;
            return Ok(Request::Grpc { origin: uri, path });
        }
        let method = Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| CliError::Usage(format!("`{}` is not an HTTP method", self.method)))?;
        let mut headers = HeaderMap::new();
        for header in &self.headers {
            let (name, value) = parse_header(header)?;
            headers.append(name, value);
        }
        Ok(Request::Http {
            method,
            uri,
            headers,
        })
    }

    fn body(&self) -> Result<Bytes, CliError> {
        match (&self.body, &self.body_file) {
            (Some(text), _) => Ok(Bytes::from(text.clone())),
            (None, Some(path)) => {
                std::fs::read(path)
                    .map(Bytes::from)
                    .map_err(|source| CliError::Read {
                        path: path.clone(),
                        source,
                    })
            }
            (None, None) => Ok(Bytes::new()),
        }
    }

    /// The URL of the target's own report, if it should be read.
    fn report_uri(&self, target: &Uri) -> Result<Option<Uri>, CliError> {
        if self.no_server_report {
            return Ok(None);
        }
        if self.server_report.starts_with('/') {
            let mut parts = target.clone().into_parts();
            parts.path_and_query = Some(self.server_report.parse().map_err(|_| {
                CliError::Usage(format!("`{}` is not a URL path", self.server_report))
            })?);
            return Uri::from_parts(parts)
                .map(Some)
                .map_err(|e| CliError::Usage(format!("--server-report: {e}")));
        }
        parse_http_url(&self.server_report).map(Some)
    }
}

/// An absolute `http://` URL with a host.
pub(crate) fn parse_http_url(url: &str) -> Result<Uri, CliError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| CliError::Usage(format!("`{url}` is not a URL: {e}")))?;
    match uri.scheme() {
        Some(s) if *s == Scheme::HTTP => {}
        Some(s) if *s == Scheme::HTTPS => {
            return Err(CliError::Usage(format!(
                "`{url}`: https is not supported; ramp the service's plain-HTTP port (a load ramp belongs on an internal listener)"
            )))
        }
        _ => {
            return Err(CliError::Usage(format!(
                "`{url}` needs an http:// scheme and a host, for example http://127.0.0.1:3000/"
            )))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(CliError::Usage(format!("`{url}` has no host")));
    }
    Ok(uri)
}

fn parse_grpc_method(method: &str) -> Result<PathAndQuery, CliError> {
    let wrong = || {
        CliError::Usage(format!(
            "--grpc `{method}`: give the method as /package.Service/Method"
        ))
    };
    let rest = method.strip_prefix('/').ok_or_else(wrong)?;
    let (service, name) = rest.split_once('/').ok_or_else(wrong)?;
    if service.is_empty() || name.is_empty() || name.contains('/') || method.contains('?') {
        return Err(wrong());
    }
    method.parse().map_err(|_| wrong())
}

fn parse_header(header: &str) -> Result<(HeaderName, HeaderValue), CliError> {
    let wrong = |why: &str| CliError::Usage(format!("--header `{header}`: {why}"));
    let (name, value) = header
        .split_once(':')
        .ok_or_else(|| wrong("write it as `Name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| wrong("not a valid header name"))?;
    let value =
        HeaderValue::from_str(value.trim()).map_err(|_| wrong("not a valid header value"))?;
    Ok((name, value))
}

/// Runs `scalewatch ramp`.
pub(crate) fn run(args: &RampArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let plan = args.plan.plan()?;
    let request = args.request()?;
    let body = args.body()?;
    let runtime = load_runtime()?;
    let report = runtime.block_on(async {
        let mut progress = Progress::new(&plan);
        match request {
            Request::Http {
                method,
                uri,
                headers,
            } => {
                let report_uri = args.report_uri(&uri)?;
                let target = http::HttpTarget::new(method, uri.clone(), headers, body);
                let steps = ramp(&plan, &target, &mut progress).await?;
                let server = server_view(report_uri).await;
                Ok::<_, CliError>(Report::new(
                    "ramp",
                    uri.to_string(),
                    plan.clone(),
                    steps,
                    server,
                ))
            }
            Request::Grpc { origin, path } => {
                let report_uri = args.grpc_report_uri()?;
                let channel = tonic::transport::Endpoint::from(origin.clone())
                    .connect_timeout(Duration::from_secs(5))
                    .connect()
                    .await
                    .map_err(|e| CliError::Connect {
                        target: origin.to_string(),
                        message: e.to_string(),
                    })?;
                let target = grpc::GrpcTarget::new(channel, path.clone(), body);
                let steps = ramp(&plan, &target, &mut progress).await?;
                let server = server_view(report_uri).await;
                let name = format!("{}{}", origin.to_string().trim_end_matches('/'), path);
                Ok(Report::new("ramp", name, plan.clone(), steps, server))
            }
        }
    })?;
    crate::report::emit(&report, args.plan.out.as_deref(), out)
}

impl RampArgs {
    /// A gRPC server's report is only read when --server-report names a full URL (the
    /// gRPC port does not serve plain HTTP routes).
    fn grpc_report_uri(&self) -> Result<Option<Uri>, CliError> {
        if self.no_server_report || self.server_report.starts_with('/') {
            return Ok(None);
        }
        parse_http_url(&self.server_report).map(Some)
    }
}

/// The load generator's own runtime: one thread is plenty for a closed loop and leaves the
/// other cores to the target.
pub(crate) fn load_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// How often progress and the demo's windows are refreshed while measuring.
pub(crate) const TICK: Duration = Duration::from_millis(500);

pub(crate) async fn ramp<T: Target>(
    plan: &Plan,
    target: &T,
    observer: &mut dyn engine::Observer,
) -> Result<Vec<engine::Step>, CliError> {
    engine::run(plan, target, TICK, observer)
        .await
        .map_err(CliError::Ramp)
}

/// The target's report when asked for, else a note saying it was not.
async fn server_view(uri: Option<Uri>) -> ServerView {
    match uri {
        Some(uri) => fetch_server_report(uri).await,
        None => ServerView::not_asked(),
    }
}

/// Reads the target's report; a target without one is noted, not an error.
pub(crate) async fn fetch_server_report(uri: Uri) -> ServerView {
    let client = http::client();
    match http::get_optional(&client, uri.clone()).await {
        Ok(Some(body)) => match serde_json::from_slice::<CapacityReport>(&body) {
            Ok(report) => ServerView::read(uri.to_string(), report),
            Err(e) => ServerView::unreadable(format!(
                "{uri} answered, but not with a scalewatch report: {e}"
            )),
        },
        Ok(None) => ServerView::unreadable(format!(
            "{uri} not found: the target does not serve a scalewatch report (see scalewatch_capacity::ReportService)"
        )),
        Err(failure) => ServerView::unreadable(format!(
            "could not read {uri}: {}",
            failure.describe()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_climb_doubles_with_halfway_points_and_ends_at_the_maximum() {
        assert_eq!(
            default_levels(64),
            [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
        );
        assert_eq!(default_levels(10), [1, 2, 3, 4, 6, 8, 10]);
        assert_eq!(default_levels(1), [1]);
    }

    fn args(duration: &str, levels: Option<Vec<u32>>) -> PlanArgs {
        PlanArgs {
            duration: humantime::parse_duration(duration).unwrap(),
            levels,
            max_users: 64,
            timeout: Duration::from_secs(10),
            out: None,
        }
    }

    #[test]
    fn a_plan_splits_the_duration_and_rejects_what_cannot_fit() {
        let plan = args("60s", None).plan().unwrap();
        assert_eq!(plan.levels.len(), 12);
        assert_eq!(plan.step, Duration::from_secs(5));
        assert_eq!(plan.warmup, Duration::from_secs(1));

        let too_short = args("3s", None).plan().unwrap_err().to_string();
        assert!(too_short.contains("per step"), "{too_short}");
        let falling = args("60s", Some(vec![1, 4, 2, 8])).plan().unwrap_err();
        assert!(falling.to_string().contains("rise"), "{falling}");
        let few = args("60s", Some(vec![1, 2])).plan().unwrap_err();
        assert!(few.to_string().contains("at least 4"), "{few}");
        let zero = args("60s", Some(vec![0, 1, 2, 3])).plan().unwrap_err();
        assert!(zero.to_string().contains("between 1"), "{zero}");
    }

    #[test]
    fn urls_methods_and_headers_are_checked() {
        assert!(parse_http_url("http://127.0.0.1:3000/x").is_ok());
        for bad in [
            "127.0.0.1:3000",
            "https://example.com/",
            "ftp://x/",
            "http:///x",
            "not a url",
        ] {
            assert!(
                matches!(parse_http_url(bad), Err(CliError::Usage(_))),
                "{bad}"
            );
        }
        assert_eq!(
            parse_grpc_method("/helloworld.Greeter/SayHello")
                .unwrap()
                .as_str(),
            "/helloworld.Greeter/SayHello"
        );
        for bad in ["Greeter/SayHello", "/Greeter", "/a/b/c", "//x", "/a/"] {
            assert!(parse_grpc_method(bad).is_err(), "{bad}");
        }
        let (name, value) = parse_header("X-Team:  checkout ").unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("x-team", "checkout")
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }
}
