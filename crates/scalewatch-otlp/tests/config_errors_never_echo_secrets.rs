//! Configuration errors name the variable at fault but never echo a secret: endpoint URLs
//! with credentials in their userinfo are shown as `***`, header values not at all. The
//! same holds for the `Debug` of a valid configuration.
#![allow(clippy::unwrap_used)]

use scalewatch_otlp::{Config, ConfigError, InitError, TelemetryBuilder};

const SENTINEL: &str = "s3cr3t-SENTINEL";

const ENDPOINTS: [&str; 3] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

fn config(vars: &[(&str, String)]) -> Result<Config, ConfigError> {
    Config::from_lookup(|k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    })
}

fn build(vars: &[(&str, String)]) -> Result<scalewatch_otlp::Telemetry, InitError> {
    TelemetryBuilder::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone()))).build()
}

/// Fails if the sentinel is anywhere in the error's message, its causes or its `Debug`.
fn assert_no_secret(err: &dyn std::error::Error, context: &str) {
    let mut shown = format!("{err}\n{err:?}");
    let mut source = err.source();
    while let Some(cause) = source {
        shown.push_str(&format!("\n{cause}\n{cause:?}"));
        source = cause.source();
    }
    assert!(!shown.contains(SENTINEL), "{context}: {shown}");
}

#[test]
fn invalid_endpoints_with_credentials_name_the_variable_not_the_password() {
    let invalid = [
        format!("http://user:{SENTINEL}@"),
        format!("ftp://user:{SENTINEL}@collector:4317"),
        format!("user:{SENTINEL}@collector:4317"),
        format!("http://user:{SENTINEL}@collector:4317:99/"),
        format!("http://user:{SENTINEL}@coll ector:4318/"),
        format!("http://user:{SENTINEL}@collector:port/"),
        format!("http://user:pa/ss-{SENTINEL}@collector:4318/"),
        format!("http//user:{SENTINEL}@collector:4318/"),
    ];
    for var in ENDPOINTS {
        for value in &invalid {
            let context = format!("{var}={value}");
            let err = config(&[(var, value.clone())]).unwrap_err();
            assert_eq!(err.variable, var, "{context}");
            assert!(
                err.to_string().starts_with(&format!("invalid {var}: ")),
                "{context}: {err}"
            );
            assert_no_secret(&err, &context);

            let err = build(&[(var, value.clone())]).unwrap_err();
            assert!(matches!(err, InitError::Config(_)), "{context}: {err}");
            assert_no_secret(&err, &context);
        }
    }
    // What is left of the URL still says which one it was.
    let err = config(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("ftp://user:{SENTINEL}@collector:4317"),
    )])
    .unwrap_err();
    assert!(err.reason.contains("ftp://***@collector:4317"), "{err}");
}

#[test]
fn invalid_headers_never_echo_their_values() {
    for value in [
        format!("authorization Bearer {SENTINEL}"),
        format!("authorization=Bearer%20{SENTINEL}%ff"),
        format!("={SENTINEL}"),
        format!("x-tenant=a,{SENTINEL}"),
    ] {
        let context = format!("OTEL_EXPORTER_OTLP_HEADERS={value}");
        let err = config(&[("OTEL_EXPORTER_OTLP_HEADERS", value.clone())]).unwrap_err();
        assert_eq!(err.variable, "OTEL_EXPORTER_OTLP_HEADERS", "{context}");
        assert_no_secret(&err, &context);
        let err = build(&[("OTEL_EXPORTER_OTLP_HEADERS", value)]).unwrap_err();
        assert_no_secret(&err, &context);
    }
    // Well-formed, but a value no HTTP header can carry (a line break): the error names the
    // header, not its value.
    let err = build(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4318".to_owned(),
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("x-api-key={SENTINEL}%0A"),
        ),
    ])
    .unwrap_err();
    assert!(matches!(err, InitError::Header(_)), "{err}");
    assert!(err.to_string().contains("x-api-key"), "{err}");
    assert_no_secret(&err, "a header value with a line break");
}

#[test]
fn a_valid_configuration_shows_neither_credentials_nor_header_values() {
    let config = config(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://user:{SENTINEL}@collector"),
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("http://user:{SENTINEL}@@traces:4318/v1/traces"),
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("authorization=Bearer%20{SENTINEL}"),
        ),
    ])
    .unwrap();
    // The configuration keeps what it was given, to use it.
    assert!(config.metrics_endpoint.contains(SENTINEL));
    let debug = format!("{config:?}");
    assert!(!debug.contains(SENTINEL), "{debug}");
    assert!(debug.contains("http://***@collector/v1/metrics"), "{debug}");
    assert!(
        debug.contains("http://***@traces:4318/v1/traces"),
        "{debug}"
    );
}
