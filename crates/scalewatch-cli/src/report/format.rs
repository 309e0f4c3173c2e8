//! How numbers read in the reports: rates with thousands separators, latencies in the unit
//! that keeps them short, shares as percentages.

/// `12.3/s`, `1,234/s`.
pub(crate) fn rate(per_second: f64) -> String {
    if !per_second.is_finite() {
        return "-".to_owned();
    }
    if per_second < 100.0 {
        format!("{per_second:.1}/s")
    } else {
        format!("{}/s", thousands(per_second.round()))
    }
}

/// `850 µs`, `12.3 ms`, `1.20 s`: as the console reporter prints them.
pub(crate) use scalewatch_otlp::format_seconds as latency;

/// `42%`.
pub(crate) fn percent(share: f64) -> String {
    if share.is_finite() {
        format!("{:.0}%", share * 100.0)
    } else {
        "-".to_owned()
    }
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0.0 && digits != "0" {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_short() {
        assert_eq!(rate(12.34), "12.3/s");
        assert_eq!(rate(1234.4), "1,234/s");
        assert_eq!(rate(f64::NAN), "-");
        assert_eq!(latency(0.000_85), "850 µs");
        assert_eq!(latency(0.012_34), "12.3 ms");
        assert_eq!(latency(1.2), "1.20 s");
        assert_eq!(percent(0.421), "42%");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-1000.0), "-1,000");
        assert_eq!(thousands(999.0), "999");
    }
}
