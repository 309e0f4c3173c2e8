//! Configuration from the standard `OTEL_*` environment variables, validated up front so a
//! bad value is a clear error naming the variable, not a silent fallback.

use std::fmt;
use std::time::Duration;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over gRPC (`grpc`), usually port 4317.
    Grpc,
    /// OTLP over HTTP with protobuf bodies (`http/protobuf`), usually port 4318.
    HttpProtobuf,
}

impl Protocol {
    /// The value of `OTEL_EXPORTER_OTLP_PROTOCOL` that selects this protocol.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }

    fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://localhost:4317",
            Protocol::HttpProtobuf => "http://localhost:4318",
        }
    }
}

/// Where a signal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// To an OTLP endpoint.
    Otlp,
    /// A compact summary on stderr every interval (metrics only).
    Console,
    /// Nowhere.
    None,
}

/// The spec's default of `OTEL_EXPORTER_PROMETHEUS_HOST`.
pub const DEFAULT_PROMETHEUS_HOST: &str = "localhost";
/// The spec's default of `OTEL_EXPORTER_PROMETHEUS_PORT`.
pub const DEFAULT_PROMETHEUS_PORT: u16 = 9464;
/// The path the Prometheus scrape endpoint serves.
pub const PROMETHEUS_PATH: &str = "/metrics";

/// Where the Prometheus scrape endpoint listens, when `OTEL_METRICS_EXPORTER` lists
/// `prometheus`: `OTEL_EXPORTER_PROMETHEUS_HOST` and `OTEL_EXPORTER_PROMETHEUS_PORT`, served
/// at [`PROMETHEUS_PATH`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusEndpoint {
    /// A host name or an IP address (IPv6 without brackets); default `localhost`.
    pub host: String,
    /// The TCP port, 1 to 65535; default 9464.
    pub port: u16,
}

impl Default for PrometheusEndpoint {
    fn default() -> Self {
        Self {
            host: DEFAULT_PROMETHEUS_HOST.to_owned(),
            port: DEFAULT_PROMETHEUS_PORT,
        }
    }
}

impl fmt::Display for PrometheusEndpoint {
    /// `http://host:port/metrics`, with IPv6 addresses in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}{PROMETHEUS_PATH}", self.host, self.port)
        } else {
            write!(f, "http://{}:{}{PROMETHEUS_PATH}", self.host, self.port)
        }
    }
}

/// A configuration value was invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {variable}: {reason}")]
pub struct ConfigError {
    /// The variable (or builder setting) at fault.
    pub variable: &'static str,
    /// What is wrong and what would be right.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(variable: &'static str, reason: impl Into<String>) -> Self {
        Self {
            variable,
            reason: reason.into(),
        }
    }
}

/// The resolved configuration of a telemetry pipeline.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Where metrics are pushed (OTLP or the console), if anywhere.
    pub metrics: Destination,
    /// Where metrics are served for Prometheus to scrape, when `OTEL_METRICS_EXPORTER` lists
    /// `prometheus` (alone or with `otlp` or `console`).
    pub prometheus: Option<PrometheusEndpoint>,
    /// Where traces go.
    pub traces: Destination,
    /// The transport for OTLP destinations.
    pub protocol: Protocol,
    /// Full URL metrics are exported to (for HTTP, including `/v1/metrics`).
    pub metrics_endpoint: String,
    /// Full URL traces are exported to (for HTTP, including `/v1/traces`).
    pub traces_endpoint: String,
    /// Headers sent with every export (values are secrets: never printed).
    pub headers: Vec<(String, String)>,
    /// `service.name`, when set.
    pub service_name: Option<String>,
    /// Extra resource attributes.
    pub resource_attributes: Vec<(String, String)>,
    /// How often metrics are collected and exported.
    pub export_interval: Duration,
    /// Deadline of one export (retries included).
    pub export_timeout: Duration,
    /// `OTEL_SDK_DISABLED=true`: instruments are no-ops and nothing is exported.
    pub disabled: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<_> = self
            .headers
            .iter()
            .map(|(k, _)| format!("{k}=<redacted>"))
            .collect();
        f.debug_struct("Config")
            .field("metrics", &self.metrics)
            .field("prometheus", &self.prometheus)
            .field("traces", &self.traces)
            .field("protocol", &self.protocol)
            .field("metrics_endpoint", &redact_url(&self.metrics_endpoint))
            .field("traces_endpoint", &redact_url(&self.traces_endpoint))
            .field("headers", &headers)
            .field("service_name", &self.service_name)
            .field("resource_attributes", &self.resource_attributes)
            .field("export_interval", &self.export_interval)
            .field("export_timeout", &self.export_timeout)
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// The spec's default metric export interval.
pub const DEFAULT_EXPORT_INTERVAL: Duration = Duration::from_secs(60);
/// The spec's default export timeout.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `lookup` (for tests and embedding).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let disabled = match get("OTEL_SDK_DISABLED") {
            None => false,
            Some(v) => parse_bool("OTEL_SDK_DISABLED", &v)?,
        };
        let protocol = match get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
            .map(|v| ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", v))
            .or_else(|| {
                get("OTEL_EXPORTER_OTLP_PROTOCOL").map(|v| ("OTEL_EXPORTER_OTLP_PROTOCOL", v))
            }) {
            None => Protocol::HttpProtobuf,
            Some((var, v)) => parse_protocol(var, &v)?,
        };
        let base = get("OTEL_EXPORTER_OTLP_ENDPOINT");
        if let Some(b) = &base {
            validate_url("OTEL_EXPORTER_OTLP_ENDPOINT", b)?;
        }
        let metrics_specific = get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
        if let Some(e) = &metrics_specific {
            validate_url("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", e)?;
        }
        let traces_specific = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        if let Some(e) = &traces_specific {
            validate_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", e)?;
        }
        let endpoint_set = base.is_some();
        let prometheus_host = match get("OTEL_EXPORTER_PROMETHEUS_HOST") {
            None => DEFAULT_PROMETHEUS_HOST.to_owned(),
            Some(v) => parse_host("OTEL_EXPORTER_PROMETHEUS_HOST", &v)?,
        };
        let prometheus_port = match get("OTEL_EXPORTER_PROMETHEUS_PORT") {
            None => DEFAULT_PROMETHEUS_PORT,
            Some(v) => parse_port("OTEL_EXPORTER_PROMETHEUS_PORT", &v)?,
        };
        let (metrics, prometheus) = match get("OTEL_METRICS_EXPORTER") {
            Some(v) => parse_metrics_exporters("OTEL_METRICS_EXPORTER", &v)?,
            None if endpoint_set || metrics_specific.is_some() => (Destination::Otlp, false),
            None => (Destination::Console, false),
        };
        let prometheus = prometheus.then_some(PrometheusEndpoint {
            host: prometheus_host,
            port: prometheus_port,
        });
        let traces = match get("OTEL_TRACES_EXPORTER") {
            Some(v) => parse_destination("OTEL_TRACES_EXPORTER", &v, false)?,
            None if endpoint_set || traces_specific.is_some() => Destination::Otlp,
            None => Destination::None,
        };
        let base = base.unwrap_or_else(|| protocol.default_endpoint().to_owned());
        let headers = match get("OTEL_EXPORTER_OTLP_HEADERS") {
            None => Vec::new(),
            Some(v) => parse_pairs("OTEL_EXPORTER_OTLP_HEADERS", &v, true)?,
        };
        let resource_attributes = match get("OTEL_RESOURCE_ATTRIBUTES") {
            None => Vec::new(),
            Some(v) => parse_pairs("OTEL_RESOURCE_ATTRIBUTES", &v, false)?,
        };
        let export_interval = match get("OTEL_METRIC_EXPORT_INTERVAL") {
            None => DEFAULT_EXPORT_INTERVAL,
            Some(v) => parse_millis("OTEL_METRIC_EXPORT_INTERVAL", &v)?,
        };
        let export_timeout = match get("OTEL_EXPORTER_OTLP_TIMEOUT") {
            None => DEFAULT_EXPORT_TIMEOUT,
            Some(v) => parse_millis("OTEL_EXPORTER_OTLP_TIMEOUT", &v)?,
        };
        Ok(Self {
            metrics,
            prometheus,
            traces,
            protocol,
            metrics_endpoint: metrics_specific
                .unwrap_or_else(|| signal_endpoint(protocol, &base, "metrics")),
            traces_endpoint: traces_specific
                .unwrap_or_else(|| signal_endpoint(protocol, &base, "traces")),
            headers,
            service_name: get("OTEL_SERVICE_NAME"),
            resource_attributes,
            export_interval,
            export_timeout,
            disabled,
        })
    }
}

/// The spec's rule: for HTTP the base endpoint gets `/v1/{signal}` appended; for gRPC it is
/// used as it is.
pub(crate) fn signal_endpoint(protocol: Protocol, base: &str, signal: &str) -> String {
    match protocol {
        Protocol::Grpc => base.to_owned(),
        Protocol::HttpProtobuf => format!("{}/v1/{signal}", base.trim_end_matches('/')),
    }
}

fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(ConfigError::new(
            var,
            format!("`{other}` is not a boolean: use `true` or `false`"),
        )),
    }
}

fn parse_protocol(var: &'static str, v: &str) -> Result<Protocol, ConfigError> {
    match v.trim() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Err(ConfigError::new(
            var,
            "`http/json` is not supported: use `grpc` or `http/protobuf`",
        )),
        other => Err(ConfigError::new(
            var,
            format!("unknown protocol `{other}`: use `grpc` or `http/protobuf`"),
        )),
    }
}

fn parse_destination(
    var: &'static str,
    v: &str,
    console: bool,
) -> Result<Destination, ConfigError> {
    match v.trim() {
        "otlp" => Ok(Destination::Otlp),
        "none" => Ok(Destination::None),
        "console" if console => Ok(Destination::Console),
        other => Err(ConfigError::new(
            var,
            format!(
                "unsupported exporter `{other}`: use `otlp`{} or `none`",
                if console { ", `console`" } else { "" }
            ),
        )),
    }
}

/// `OTEL_METRICS_EXPORTER`: a comma-separated list of `otlp`, `console`, `prometheus`, or
/// `none` alone. At most one of the push exporters (`otlp`, `console`) runs, with or
/// without the Prometheus endpoint.
fn parse_metrics_exporters(var: &'static str, v: &str) -> Result<(Destination, bool), ConfigError> {
    const CHOICES: &str =
        "use `otlp`, `prometheus`, `console`, a list such as `otlp,prometheus`, or `none`";
    let mut push: Option<Destination> = None;
    let mut prometheus = false;
    let mut none = false;
    for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let destination = match item {
            "prometheus" => {
                prometheus = true;
                continue;
            }
            "none" => {
                none = true;
                continue;
            }
            "otlp" => Destination::Otlp,
            "console" => Destination::Console,
            other => {
                return Err(ConfigError::new(
                    var,
                    format!("unsupported exporter `{other}`: {CHOICES}"),
                ))
            }
        };
        match push {
            Some(earlier) if earlier != destination => {
                return Err(ConfigError::new(
                    var,
                    format!(
                        "`{}`: `otlp` and `console` cannot both run; pick one (either may run with `prometheus`)",
                        v.trim()
                    ),
                ))
            }
            _ => push = Some(destination),
        }
    }
    if none {
        if push.is_some() || prometheus {
            return Err(ConfigError::new(
                var,
                format!(
                    "`{}`: `none` cannot be combined with other exporters",
                    v.trim()
                ),
            ));
        }
        return Ok((Destination::None, false));
    }
    match push {
        Some(destination) => Ok((destination, prometheus)),
        None if prometheus => Ok((Destination::None, true)),
        None => Err(ConfigError::new(
            var,
            format!("no exporter given: {CHOICES}"),
        )),
    }
}

/// A host name or IP address to listen on; IPv6 may come in brackets, which are removed.
fn parse_host(var: &'static str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim();
    let bad = |why: &str| ConfigError::new(var, format!("`{v}` {why}"));
    if v.contains("://") || v.contains('/') {
        return Err(bad(
            "is not a host: give a host name or an IP address such as `0.0.0.0`, not a URL",
        ));
    }
    let bare = v
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(v);
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(bare.to_owned());
    }
    if v.contains(':') {
        return Err(bad(
            "is not a host name or IP address (give the port in OTEL_EXPORTER_PROMETHEUS_PORT)",
        ));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let name = v.strip_suffix('.').unwrap_or(v);
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(bad(
            "is not a host name or IP address: use letters, digits, `-` and `.`, e.g. `localhost` or `0.0.0.0`",
        ));
    }
    Ok(v.to_owned())
}

/// A TCP port to listen on, 1 to 65535.
fn parse_port(var: &'static str, v: &str) -> Result<u16, ConfigError> {
    match v.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(ConfigError::new(
            var,
            format!("`{}` is not a port: use a number from 1 to 65535", v.trim()),
        )),
        Ok(port) => Ok(port),
    }
}

fn parse_millis(var: &'static str, v: &str) -> Result<Duration, ConfigError> {
    match v.trim().parse::<u64>() {
        Ok(0) => Err(ConfigError::new(
            var,
            "must be a positive number of milliseconds",
        )),
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => Err(ConfigError::new(
            var,
            format!("`{}` is not a whole number of milliseconds", v.trim()),
        )),
    }
}

/// Checks an endpoint URL. Errors show it with its userinfo (credentials) as `***`.
pub(crate) fn validate_url(var: &'static str, v: &str) -> Result<(), ConfigError> {
    let shown = redact_url(v.trim());
    let uri: http::Uri = v.trim().parse().map_err(|e| {
        ConfigError::new(
            var,
            format!("`{shown}` is not a URL ({e}): use e.g. http://localhost:4317"),
        )
    })?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(ConfigError::new(
                var,
                format!("`{shown}` needs an http:// or https:// scheme"),
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(ConfigError::new(var, format!("`{shown}` has no host")));
    }
    // A port that is not a number: often a password with a `/` in it, which ends the
    // authority early (`http://user:pa/ss@host`) and would send part of it as the host.
    let host_port = uri
        .authority()
        .and_then(|a| a.as_str().rsplit('@').next())
        .unwrap_or_default();
    if let Some((_, port)) = host_port.rsplit_once(':') {
        if !port.is_empty() && !port.contains(']') && port.parse::<u16>().is_err() {
            return Err(ConfigError::new(
                var,
                format!("`{shown}` has a port that is not a number (percent-encode `/`, `?` and `#` in credentials)"),
            ));
        }
    }
    Ok(())
}

/// `url` fit to print, valid or not: everything between the scheme and the last `@` (the
/// userinfo, where URLs carry credentials) becomes `***`. A path with an `@` is shortened
/// too, which a message can afford. What scalewatch shows of any URL it was given, in
/// errors, logs and reports.
///
/// ```
/// assert_eq!(
///     scalewatch_otlp::redact_url("https://user:secret@collector:4318/v1"),
///     "https://***@collector:4318/v1"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return url.to_owned();
    };
    let start = url
        .find("://")
        .filter(|&i| {
            i > 0
                && url[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
        .map_or(0, |i| i + 3);
    if start > at {
        return url.to_owned();
    }
    format!("{}***{}", &url[..start], &url[at..])
}

/// `key=value,key2=value2`, percent-decoded (W3C baggage-like, as the spec says).
/// Values of secret lists (headers) never appear in errors.
fn parse_pairs(
    var: &'static str,
    v: &str,
    secret: bool,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (i, item) in v.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let shown = if secret { "<redacted>" } else { item };
        let Some((k, val)) = item.split_once('=') else {
            return Err(ConfigError::new(
                var,
                format!("entry {} (`{shown}`) is not key=value", i + 1),
            ));
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s.trim())
                .decode_utf8()
                .map(|c| c.into_owned())
        };
        let (Ok(k), Ok(val)) = (decode(k), decode(val)) else {
            return Err(ConfigError::new(
                var,
                format!(
                    "entry {} (`{shown}`) is not valid percent-encoded UTF-8",
                    i + 1
                ),
            ));
        };
        if k.is_empty() {
            return Err(ConfigError::new(
                var,
                format!("entry {} has an empty key", i + 1),
            ));
        }
        out.push((k, val));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn no_endpoint_means_console_metrics_and_no_traces() {
        let c = config(&[]).unwrap();
        assert_eq!(c.metrics, Destination::Console);
        assert_eq!(c.traces, Destination::None);
        assert_eq!(c.export_interval, DEFAULT_EXPORT_INTERVAL);
    }

    #[test]
    fn http_endpoints_get_signal_paths_and_grpc_does_not() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")]).unwrap();
        assert_eq!(c.protocol, Protocol::HttpProtobuf);
        assert_eq!(c.metrics_endpoint, "http://127.0.0.1:4318/v1/metrics");
        assert_eq!(c.traces_endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(c.metrics, Destination::Otlp);
        assert_eq!(c.traces, Destination::Otlp);
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .unwrap();
        assert_eq!(c.metrics_endpoint, "http://127.0.0.1:4317");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "10s"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "0"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "-1"),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
            ("OTEL_SDK_DISABLED", "yes"),
            ("OTEL_METRICS_EXPORTER", "statsd"),
            ("OTEL_METRICS_EXPORTER", "otlp,console"),
            ("OTEL_METRICS_EXPORTER", "none,prometheus"),
            ("OTEL_METRICS_EXPORTER", ","),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "0"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "65536"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "http"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "http://localhost:9464"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "localhost:9464"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "my host"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "-bad-.example"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.variable, var, "{value}");
            assert!(
                err.to_string().starts_with(&format!("invalid {var}: ")),
                "{err}"
            );
        }
    }

    #[test]
    fn prometheus_runs_alone_or_beside_a_push_exporter() {
        let c = config(&[("OTEL_METRICS_EXPORTER", "prometheus")]).unwrap();
        assert_eq!(c.metrics, Destination::None);
        assert_eq!(c.prometheus, Some(PrometheusEndpoint::default()));
        assert_eq!(
            c.prometheus.unwrap().to_string(),
            "http://localhost:9464/metrics"
        );

        let c = config(&[
            ("OTEL_METRICS_EXPORTER", " otlp , prometheus "),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "0.0.0.0"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "9100"),
        ])
        .unwrap();
        assert_eq!(c.metrics, Destination::Otlp);
        let endpoint = c.prometheus.unwrap();
        assert_eq!((endpoint.host.as_str(), endpoint.port), ("0.0.0.0", 9100));

        let c = config(&[
            ("OTEL_METRICS_EXPORTER", "prometheus,console"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "[::1]"),
        ])
        .unwrap();
        assert_eq!(c.metrics, Destination::Console);
        let endpoint = c.prometheus.unwrap();
        assert_eq!(endpoint.host, "::1");
        assert_eq!(endpoint.to_string(), "http://[::1]:9464/metrics");

        for (value, push) in [
            ("none", Destination::None),
            ("otlp", Destination::Otlp),
            ("otlp,otlp", Destination::Otlp),
        ] {
            let c = config(&[("OTEL_METRICS_EXPORTER", value)]).unwrap();
            assert_eq!((c.metrics, c.prometheus), (push, None), "{value}");
        }
        // The endpoint variables alone start nothing.
        let c = config(&[("OTEL_EXPORTER_PROMETHEUS_PORT", "9100")]).unwrap();
        assert_eq!(c.prometheus, None);
    }

    #[test]
    fn prometheus_errors_say_what_would_be_right() {
        let err = config(&[("OTEL_EXPORTER_PROMETHEUS_HOST", "localhost:9464")]).unwrap_err();
        assert!(
            err.reason.contains("OTEL_EXPORTER_PROMETHEUS_PORT"),
            "{err}"
        );
        let err = config(&[("OTEL_EXPORTER_PROMETHEUS_PORT", "99999")]).unwrap_err();
        assert!(err.reason.contains("1 to 65535"), "{err}");
        let err = config(&[("OTEL_METRICS_EXPORTER", "otlp,console")]).unwrap_err();
        assert!(err.reason.contains("pick one"), "{err}");
        let err = config(&[("OTEL_METRICS_EXPORTER", "prometheus,none")]).unwrap_err();
        assert!(err.reason.contains("`none` cannot be combined"), "{err}");
        let err = config(&[("OTEL_METRICS_EXPORTER", "jaeger")]).unwrap_err();
        assert!(err.reason.contains("`otlp,prometheus`"), "{err}");
    }

    #[test]
    fn header_values_are_decoded_and_never_shown() {
        let c = config(&[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20s3cret,x-tenant=a",
        )])
        .unwrap();
        assert_eq!(
            c.headers,
            vec![
                ("authorization".into(), "Bearer s3cret".into()),
                ("x-tenant".into(), "a".into())
            ]
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        let err = config(&[("OTEL_EXPORTER_OTLP_HEADERS", "tokens3cret")]).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn urls_are_shown_without_their_userinfo() {
        // Everything up to the last `@` after the scheme is hidden, parsed or not.
        for (url, shown) in [
            ("http://u:p@h:4318/x", "http://***@h:4318/x"),
            ("http://u:p@h/x", "http://***@h/x"),
            ("http://u:p@ss@h/", "http://***@h/"),
            ("http://u:p@ss@h/x", "http://***@h/x"),
            ("u:p@h", "***@h"),
            ("u:p://x@h", "***@h"),
            ("http://h:4317", "http://h:4317"),
            ("http://h/x", "http://h/x"),
            ("@", "***@"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn endpoints_need_a_numeric_port_when_they_give_one() {
        for ok in [
            "http://user:pass@collector/",
            "http://user:pass@collector:4318",
            "http://[::1]/",
            "http://[::1]:4317",
            "http://collector:/",
        ] {
            assert!(validate_url("V", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://user:pa/ss@collector/",
            "http://collector:port/",
            "http://collector:70000/",
        ] {
            let err = validate_url("V", bad).unwrap_err();
            assert!(err.reason.contains("not a number"), "{err}");
        }
    }

    #[test]
    fn resource_attributes_and_interval_parse() {
        let c = config(&[
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod,team=core%2Fapi",
            ),
            ("OTEL_METRIC_EXPORT_INTERVAL", "5000"),
            ("OTEL_SERVICE_NAME", "checkout"),
        ])
        .unwrap();
        assert_eq!(c.resource_attributes[1], ("team".into(), "core/api".into()));
        assert_eq!(c.export_interval, Duration::from_secs(5));
        assert_eq!(c.service_name.as_deref(), Some("checkout"));
    }
}
