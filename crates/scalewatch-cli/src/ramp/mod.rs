//! `scalewatch ramp URL`: walk any HTTP endpoint or gRPC method up a load ramp, fit the
//! Universal Scalability Law to what the client sees, and read the target's own report
//! when it serves one.

pub(crate) mod engine;
pub(crate) mod grpc;
pub(crate) mod http;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use ::http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use ::http::uri::{Authority, PathAndQuery, Scheme};
use ::http::{HeaderMap, Method, Uri};
use base64::Engine as _;
use bytes::Bytes;
use scalewatch_capacity::{CapacityReport, REPORT_PATH};
use scalewatch_otlp::redact_url;

use crate::error::CliError;
use crate::progress::Progress;
use crate::report::{Report, ServerView};
use engine::{Plan, Step, Target};

/// Arguments shared by every command that runs a ramp.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PlanArgs {
    /// How long the whole ramp runs (`60s`, `2m`, ...); each step gets an equal share, the
    /// first fifth of which (at least 0.1 s, at most 2 s) warms up unmeasured.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Concurrent users of each step, comma-separated (`1,2,4,8`). The default climbs from
    /// 1 to --max-users by steps of 4/3 and 3/2: 1, 2, 3, 4, 6, 8, 12, 16, ...
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    pub levels: Option<Vec<u32>>,
    /// The top of the default climb.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_users: u32,
    /// Longest wait for one answer (`500ms`, `10s`, ...) before it counts as a timeout;
    /// also the deadline for connecting to a gRPC target and for reading the target's own
    /// report. Must be above 0. Answers are read to their end within it, keeping at most
    /// 1 MiB of one in memory (the rest is counted and dropped).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Also write report.json, curve.svg and report.md into this directory (created if
    /// missing).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The most users one step may have: each is a task with a connection.
const MAX_USERS: u32 = 10_000;
/// The default of `--timeout`, also the deadline of reading the demo's report.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest `--body-file` sent.
const MAX_REQUEST_BODY: u64 = 16 << 20;
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
    /// Credentials in it (`http://user:password@host/`) are sent as HTTP Basic
    /// authentication (an `authorization` header, or metadata with --grpc) unless
    /// --header sets `Authorization`, and are never printed: output shows them as `***`.
    url: String,
    /// Call this unary gRPC method (`/package.Service/Method`) instead of sending HTTP
    /// requests; the request message is --body (protobuf-encoded, empty by default: a
    /// message with every field at its default).
    #[arg(long, value_name = "/PKG.SERVICE/METHOD")]
    grpc: Option<String>,
    /// HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    method: String,
    /// A request header, `Name: value` (repeatable); with --grpc, request metadata. Values
    /// are never printed.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The request body, as text.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// The request body, read from a file (raw bytes).
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// Where the target serves its scalewatch report: a path on the target (read with the
    /// target's credentials), or a full URL (with its own). Read within --timeout.
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
        url: HttpUrl,
        headers: HeaderMap,
    },
    Grpc {
        origin: HttpUrl,
        path: PathAndQuery,
        metadata: HeaderMap,
    },
}

impl RampArgs {
    fn request(&self) -> Result<Request, CliError> {
        let url = HttpUrl::parse(&self.url)?;
        let mut headers = HeaderMap::new();
        for (index, header) in self.headers.iter().enumerate() {
            let (name, value) = parse_header(index, header)?;
            headers.append(name, value);
        }
        if let Some(credentials) = &url.authorization {
            headers
                .entry(AUTHORIZATION)
                .or_insert_with(|| credentials.clone());
        }
        if let Some(method) = &self.grpc {
            let path = parse_grpc_method(method)?;
            return Ok(Request::Grpc {
                origin: url,
                path,
                metadata: headers,
            });
        }
        let method = Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| CliError::Usage(format!("`{}` is not an HTTP method", self.method)))?;
        Ok(Request::Http {
            method,
            url,
            headers,
        })
    }

    fn body(&self) -> Result<Bytes, CliError> {
        match (&self.body, &self.body_file) {
            (Some(text), _) => Ok(Bytes::from(text.clone())),
            (None, Some(path)) => {
                let read_error = |source| CliError::Read {
                    path: path.clone(),
                    source,
                };
                let mut bytes = Vec::new();
                std::fs::File::open(path)
                    .map_err(read_error)?
                    .take(MAX_REQUEST_BODY + 1)
                    .read_to_end(&mut bytes)
                    .map_err(read_error)?;
                if bytes.len() as u64 > MAX_REQUEST_BODY {
                    return Err(CliError::Usage(format!(
                        "--body-file {}: larger than {} MiB; a load ramp sends small requests",
                        path.display(),
                        MAX_REQUEST_BODY >> 20
                    )));
                }
                Ok(Bytes::from(bytes))
            }
            (None, None) => Ok(Bytes::new()),
        }
    }

    /// Where to read the target's own report, if it should be read: a path on the target
    /// goes with the target's credentials, a full URL with its own.
    fn report_url(&self, request: &Request) -> Result<Option<HttpUrl>, CliError> {
        if self.no_server_report {
            return Ok(None);
        }
        let relative = self.server_report.starts_with('/');
        if relative && self.server_report.starts_with("//") {
            return Err(CliError::Usage(
                "--server-report: give a path on the target (/debug/scalewatch) or a full http:// URL"
                    .to_owned(),
            ));
        }
        match request {
            Request::Http { url, .. } if relative => {
                let mut parts = url.uri.clone().into_parts();
                parts.path_and_query = Some(self.server_report.parse().map_err(|_| {
                    CliError::Usage(format!("`{}` is not a URL path", self.server_report))
                })?);
                let uri = Uri::from_parts(parts)
                    .map_err(|e| CliError::Usage(format!("--server-report: {e}")))?;
                Ok(Some(HttpUrl {
                    uri,
                    authorization: url.authorization.clone(),
                }))
            }
            // A gRPC server's report is only read when --server-report names a full URL
            // (the gRPC port does not serve plain HTTP routes).
            Request::Grpc { .. } if relative => Ok(None),
            _ => HttpUrl::parse(&self.server_report).map(Some),
        }
    }
}

/// An absolute `http://` URL with a host, its credentials (userinfo) taken out: they are
/// sent as a header, never as part of the URL, and never printed.
#[derive(Debug, Clone)]
pub(crate) struct HttpUrl {
    /// The URL without userinfo: where requests go.
    pub uri: Uri,
    /// `Basic …` made of the userinfo, when the URL had one.
    pub authorization: Option<HeaderValue>,
}

impl HttpUrl {
    /// Checks `url` and takes its credentials out.
    pub(crate) fn parse(url: &str) -> Result<Self, CliError> {
        let uri: Uri = url.parse().map_err(|e| {
            CliError::Usage(format!(
                "`{shown}` is not a URL: {e}",
                shown = redact_url(url)
            ))
        })?;
        Self::from_uri(uri)
    }

    /// Checks `uri` and takes its credentials out.
    pub(crate) fn from_uri(uri: Uri) -> Result<Self, CliError> {
        let shown = redact_url(&uri.to_string());
        let usage = |why: &str| CliError::Usage(format!("`{shown}`{why}"));
        match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => {}
            Some(s) if *s == Scheme::HTTPS => {
                return Err(usage(
                    ": https is not supported; ramp the service's plain-HTTP port (a load ramp belongs on an internal listener)",
                ))
            }
            _ => {
                return Err(usage(
                    " needs an http:// scheme and a host, for example http://127.0.0.1:3000/",
                ))
            }
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(usage(" has no host"));
        }
        let authority = uri.authority().map_or("", Authority::as_str);
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        // A port that is not a number: often a password with a `/` in it, which ends the
        // authority early (`http://user:pa/ss@host`).
        if let Some((_, port)) = host_port.rsplit_once(':') {
            if !port.is_empty() && !port.contains(']') && port.parse::<u16>().is_err() {
                return Err(usage(
                    " has a port that is not a number (percent-encode `/`, `?` and `#` in credentials)",
                ));
            }
        }
        let Some(authorization) = userinfo.map(basic).transpose()? else {
            return Ok(Self {
                uri,
                authorization: None,
            });
        };
        let host_port: Authority = host_port
            .parse()
            .map_err(|_| usage(" has an invalid host"))?;
        let mut parts = uri.into_parts();
        parts.authority = Some(host_port);
        let uri = Uri::from_parts(parts).map_err(|_| usage(" has an invalid host"))?;
        Ok(Self {
            uri,
            authorization: Some(authorization),
        })
    }

    /// The URL as output shows it: credentials as `***`.
    pub(crate) fn shown(&self) -> String {
        let url = self.uri.to_string();
        match self.authorization {
            Some(_) => url.replacen("://", "://***@", 1),
            None => url,
        }
    }
}

/// `Basic base64(user:password)` of a URL's userinfo, percent-decoded; marked sensitive.
fn basic(userinfo: &str) -> Result<HeaderValue, CliError> {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let mut credentials: Vec<u8> = percent_encoding::percent_decode_str(user).collect();
    credentials.push(b':');
    credentials.extend(percent_encoding::percent_decode_str(password));
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    let mut value = HeaderValue::try_from(format!("Basic {encoded}"))
        .map_err(|_| CliError::Usage("the credentials in the URL cannot be sent".to_owned()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `text` with [`redact_url`] applied to each of its words that holds an `@` (words end at
/// whitespace and quotes), for messages that may quote arguments.
pub(crate) fn redact_words(text: &str) -> String {
    let delimiter = |c: char| c.is_whitespace() || "'\"`".contains(c);
    text.split_inclusive(delimiter)
        .map(|piece| {
            let word = piece.trim_end_matches(delimiter);
            if word.contains('@') {
                format!("{}{}", redact_url(word), &piece[word.len()..])
            } else {
                piece.to_owned()
            }
        })
        .collect()
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

/// `Name: value`. Errors name the header by its position and, once it is valid, its name:
/// never by its value, which may be a secret.
fn parse_header(index: usize, header: &str) -> Result<(HeaderName, HeaderValue), CliError> {
    let wrong = |which: &str, why: &str| CliError::Usage(format!("--header {which}: {why}"));
    let position = format!("#{}", index + 1);
    let (name, value) = header
        .split_once(':')
        .ok_or_else(|| wrong(&position, "write it as `Name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| wrong(&position, "not a valid header name"))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| {
        wrong(
            &format!("{position} (`{name}`)"),
            "not a valid header value (it is not shown)",
        )
    })?;
    Ok((name, value))
}

/// Runs `scalewatch ramp`.
pub(crate) fn run(args: &RampArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let plan = args.plan.plan()?;
    let request = args.request()?;
    let body = args.body()?;
    let report_url = args.report_url(&request)?;
    let runtime = load_runtime()?;
    let report = runtime.block_on(async {
        let (name, steps) = match request {
            Request::Http {
                method,
                url,
                headers,
            } => {
                let target = http::HttpTarget::new(method, url.uri.clone(), headers, body);
                (url.shown(), measure(&plan, &target).await?)
            }
            Request::Grpc {
                origin,
                path,
                metadata,
            } => {
                let shown = origin.shown();
                let endpoint = tonic::transport::Endpoint::from(origin.uri)
                    .connect_timeout(Duration::from_secs(5));
                let channel = match tokio::time::timeout(plan.timeout, endpoint.connect()).await {
                    Ok(Ok(channel)) => channel,
                    Ok(Err(e)) => {
                        return Err(CliError::Connect {
                            target: shown,
                            message: e.to_string(),
                        })
                    }
                    Err(_) => {
                        return Err(CliError::Connect {
                            target: shown,
                            message: format!(
                                "no connection within {} (--timeout)",
                                humantime::format_duration(plan.timeout)
                            ),
                        })
                    }
                };
                let target = grpc::GrpcTarget::new(channel, path.clone(), metadata, body);
                let name = format!("{}{path}", shown.trim_end_matches('/'));
                (name, measure(&plan, &target).await?)
            }
        };
        let server = server_view(report_url, plan.timeout).await;
        Ok::<_, CliError>(Report::new("ramp", name, plan.clone(), steps, server))
    })?;
    crate::report::emit(&report, args.plan.out.as_deref(), out)
}

/// Runs the ramp with progress on stderr.
async fn measure<T: Target>(plan: &Plan, target: &T) -> Result<Vec<Step>, CliError> {
    let mut progress = Progress::new(plan);
    let steps = ramp(plan, target, &mut progress).await;
    progress.finish();
    steps
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

/// The target's report when asked for, else a note saying it was not. A report that could
/// not be read is also noted on stderr.
async fn server_view(url: Option<HttpUrl>, timeout: Duration) -> ServerView {
    let Some(url) = url else {
        return ServerView::not_asked();
    };
    let view = read_server_report(&url, timeout).await;
    if view.report.is_none() {
        eprintln!(
            "note: the target's own report could not be read: {}",
            view.note.as_deref().unwrap_or("no reason given")
        );
    }
    view
}

/// Reads the report at `uri` within the default `--timeout`; a target without one is
/// noted, not an error.
pub(crate) async fn fetch_server_report(uri: Uri) -> ServerView {
    match HttpUrl::from_uri(uri) {
        Ok(url) => read_server_report(&url, DEFAULT_TIMEOUT).await,
        Err(e) => ServerView::unreadable(e.to_string()),
    }
}

/// Reads the target's report within `timeout`, keeping at most [`http::MAX_BODY`] bytes of
/// the answer; a target without one is noted, not an error. Notes show the URL redacted.
async fn read_server_report(url: &HttpUrl, timeout: Duration) -> ServerView {
    let shown = url.shown();
    let client = http::client();
    let fetch = http::get_optional(&client, url.uri.clone(), url.authorization.as_ref());
    let body = match tokio::time::timeout(timeout, fetch).await {
        Ok(Ok(Some(body))) => body,
        Ok(Ok(None)) => {
            return ServerView::unreadable(format!(
                "{shown} not found: the target does not serve a scalewatch report (see scalewatch_capacity::ReportService)"
            ))
        }
        Ok(Err(failure)) => {
            return ServerView::unreadable(format!(
                "could not read {shown}: {}",
                failure.describe()
            ))
        }
        Err(_) => {
            return ServerView::unreadable(format!(
                "could not read {shown}: no complete answer within {} (--timeout)",
                humantime::format_duration(timeout)
            ))
        }
    };
    if body.dropped > 0 {
        return ServerView::unreadable(format!(
            "{shown} answered with {} bytes, more than the {} MiB a report is read up to",
            body.bytes.len() as u64 + body.dropped,
            http::MAX_BODY >> 20
        ));
    }
    match serde_json::from_slice::<CapacityReport>(&body.bytes) {
        Ok(report) => ServerView::read(shown, report),
        Err(e) => ServerView::unreadable(format!(
            "{shown} answered, but not with a scalewatch report: {e}"
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
    fn the_default_timeout_is_the_one_the_demo_reads_its_report_within() {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            plan: PlanArgs,
        }
        let parsed = <Wrapper as clap::Parser>::parse_from(["scalewatch"]);
        assert_eq!(parsed.plan.timeout, DEFAULT_TIMEOUT);
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
        assert!(HttpUrl::parse("http://127.0.0.1:3000/x").is_ok());
        for bad in [
            "127.0.0.1:3000",
            "https://example.com/",
            "ftp://x/",
            "http:///x",
            "not a url",
            "http://127.0.0.1:port/",
        ] {
            assert!(
                matches!(HttpUrl::parse(bad), Err(CliError::Usage(_))),
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
        let (name, value) = parse_header(0, "X-Team:  checkout ").unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("x-team", "checkout")
        );
        assert!(parse_header(0, "no colon").is_err());
        assert!(parse_header(0, "bad name: x").is_err());
        let bad_value = parse_header(1, "Authorization: Bearer s3cr3t\u{7}").unwrap_err();
        let message = bad_value.to_string();
        assert!(message.contains("#2 (`authorization`)"), "{message}");
        assert!(!message.contains("s3cr3t"), "{message}");
    }

    #[test]
    fn credentials_in_a_url_become_basic_authentication_and_are_shown_as_stars() {
        let url = HttpUrl::parse("http://al%40ice:pa%3Ass@127.0.0.1:8080/x?y=1").unwrap();
        assert_eq!(url.uri.to_string(), "http://127.0.0.1:8080/x?y=1");
        assert_eq!(url.shown(), "http://***@127.0.0.1:8080/x?y=1");
        let value = url.authorization.unwrap();
        assert!(value.is_sensitive());
        // base64("al@ice:pa:ss")
        assert_eq!(value.to_str().unwrap(), "Basic YWxAaWNlOnBhOnNz");
        let plain = HttpUrl::parse("http://127.0.0.1:8080/a@b").unwrap();
        assert!(plain.authorization.is_none());
        assert_eq!(plain.shown(), "http://127.0.0.1:8080/a@b");

        for bad in [
            "http://user:s3cr3t@",
            "http://user:s3/cr3t@127.0.0.1/",
            "https://user:s3cr3t@127.0.0.1/",
            "ftp://user:s3cr3t@127.0.0.1/",
            "http://user:s3cr3t@127.0.0.1:80:80/",
            "user:s3cr3t@127.0.0.1",
        ] {
            let message = HttpUrl::parse(bad).unwrap_err().to_string();
            assert!(!message.contains("s3cr3t"), "{bad}: {message}");
        }
    }

    #[test]
    fn redaction_hides_everything_up_to_the_last_at_sign_in_every_word() {
        // `redact_url` itself is tested with it, in scalewatch-otlp.
        assert_eq!(
            redact_words("error: unexpected argument 'http://u:p@h/x' found\n"),
            "error: unexpected argument 'http://***@h/x' found\n"
        );
    }
}
