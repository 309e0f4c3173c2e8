//! oha's JSON output (`oha --output-format json`, `-j` in versions before 1.5): one run at
//! one concurrency. oha does not write the concurrency it ran with, so it comes from
//! Little's law: N = X · R, the requests per second times their mean latency, which for a
//! closed loop of `-c N` connections is N less the client's own time between requests.

use serde_json::Value;

/// The figures of one run the fit needs.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Run {
    /// `summary.requestsPerSec`: requests completed (successful or not) per second.
    pub requests_per_sec: f64,
    /// `summary.average`: mean latency, seconds.
    pub average: f64,
    /// `summary.successRate`, 0..1 (1 when absent).
    pub success_rate: f64,
}

impl Run {
    /// Requests in flight on average, by Little's law.
    pub(super) fn concurrency(&self) -> f64 {
        self.requests_per_sec * self.average
    }

    /// Successful requests per second.
    pub(super) fn throughput(&self) -> f64 {
        self.requests_per_sec * self.success_rate
    }
}

/// Reads one run.
pub(super) fn run(input: &[u8]) -> Result<Run, String> {
    let json: Value = serde_json::from_slice(input).map_err(|e| {
        format!("not JSON ({e}); expected oha's output, written with `oha --output-format json`")
    })?;
    let summary = json.get("summary").ok_or(
        "JSON without a `summary` object: expected oha's output, written with `oha --output-format json`",
    )?;
    let number = |field: &str| -> Result<Option<f64>, String> {
        match summary.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| format!("`summary.{field}` is `{v}`, not a number")),
        }
    };
    let required = |field: &str| -> Result<f64, String> {
        number(field)?.ok_or_else(|| {
            format!("no `summary.{field}`: expected oha's JSON output (`oha --output-format json`)")
        })
    };
    let run = Run {
        requests_per_sec: required("requestsPerSec")?,
        average: required("average")?,
        success_rate: number("successRate")?.unwrap_or(1.0),
    };
    if !(run.requests_per_sec > 0.0 && run.average > 0.0 && run.success_rate > 0.0) {
        return Err(format!(
            "a run without successful requests (requestsPerSec {}, average {}, successRate {}): nothing to fit",
            run.requests_per_sec, run.average, run.success_rate
        ));
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn littles_law_gives_the_concurrency() {
        let run = run(br#"{"summary":{"successRate":0.5,"total":2.0,"slowest":0.1,"fastest":0.01,"average":0.02,"requestsPerSec":400.0,"totalData":0,"sizePerRequest":0,"sizePerSec":0.0}}"#).unwrap();
        assert!((run.concurrency() - 8.0).abs() < 1e-12);
        assert!((run.throughput() - 200.0).abs() < 1e-12);
    }

    #[test]
    fn other_json_says_what_was_expected() {
        let err = run(b"{\"requests\": 3}").unwrap_err();
        assert!(err.contains("`summary`"), "{err}");
        let err = run(br#"{"summary":{"average":0.1}}"#).unwrap_err();
        assert!(err.contains("summary.requestsPerSec"), "{err}");
        let err = run(br#"{"summary":{"average":null,"requestsPerSec":0.0,"successRate":0.0}}"#)
            .unwrap_err();
        assert!(err.contains("no `summary.average`"), "{err}");
        let err = run(b"concurrency,throughput").unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
    }
}
