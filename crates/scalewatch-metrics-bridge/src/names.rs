//! Translating `metrics` names and units into what OpenTelemetry accepts.

use metrics::Unit;

/// The longest instrument name the OpenTelemetry SDK accepts.
const MAX_NAME_LEN: usize = 255;

/// Prefix put in front of names that do not start with an ASCII letter.
const LETTER_PREFIX: &str = "m_";

/// Turns any `metrics` name into a valid OpenTelemetry instrument name.
///
/// OpenTelemetry accepts an ASCII letter followed by ASCII alphanumerics and
/// `_`, `.`, `-`, `/`, at most 255 characters. Every other character becomes
/// `_` (one `_` per character, so `"é"` becomes one `_`), a name that does not
/// start with a letter (including the empty name) gets the prefix `m_`, and the
/// result is cut to 255 characters. Valid names pass through unchanged.
pub(crate) fn sanitize_name(name: &str) -> String {
    let needs_prefix = !name.starts_with(|c: char| c.is_ascii_alphabetic());
    let mut out = String::with_capacity(name.len() + LETTER_PREFIX.len());
    if needs_prefix {
        out.push_str(LETTER_PREFIX);
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/') {
            c
        } else {
            '_'
        }
    }));
    // Every character is ASCII now, so any byte index is a char boundary.
    out.truncate(MAX_NAME_LEN);
    out
}

/// The UCUM code OpenTelemetry expects for a `metrics` unit.
pub(crate) fn ucum(unit: Unit) -> &'static str {
    match unit {
        Unit::Count => "{count}",
        // `metrics` percentages are 0..=100; UCUM `%` is exactly that (`1` would be a 0..=1 ratio).
        Unit::Percent => "%",
        Unit::Seconds => "s",
        Unit::Milliseconds => "ms",
        Unit::Microseconds => "us",
        Unit::Nanoseconds => "ns",
        Unit::Tebibytes => "TiBy",
        Unit::Gibibytes => "GiBy",
        Unit::Mebibytes => "MiBy",
        Unit::Kibibytes => "KiBy",
        Unit::Bytes => "By",
        Unit::TerabitsPerSecond => "Tbit/s",
        Unit::GigabitsPerSecond => "Gbit/s",
        Unit::MegabitsPerSecond => "Mbit/s",
        Unit::KilobitsPerSecond => "kbit/s",
        Unit::BitsPerSecond => "bit/s",
        Unit::CountPerSecond => "{count}/s",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_unchanged() {
        for name in ["http.server.requests", "a", "a-b/c_d.e9", "Z"] {
            assert_eq!(sanitize_name(name), name);
        }
    }

    #[test]
    fn invalid_characters_become_underscores() {
        assert_eq!(sanitize_name("http:requests total"), "http_requests_total");
        assert_eq!(sanitize_name("caf\u{e9}"), "caf_");
        assert_eq!(sanitize_name("a{b}=c"), "a_b__c");
    }

    #[test]
    fn names_not_starting_with_a_letter_get_a_prefix() {
        assert_eq!(sanitize_name("2xx"), "m_2xx");
        assert_eq!(sanitize_name("_private"), "m__private");
        assert_eq!(sanitize_name(""), "m_");
        assert_eq!(sanitize_name("\u{e9}t\u{e9}"), "m__t_");
    }

    #[test]
    fn long_names_are_truncated() {
        let name = "a".repeat(300);
        assert_eq!(sanitize_name(&name).len(), 255);
        let name = format!("9{}", "\u{e9}".repeat(300));
        let out = sanitize_name(&name);
        assert_eq!(out.len(), 255);
        assert!(out.starts_with("m_9_"));
    }

    #[test]
    fn sanitising_is_idempotent() {
        for name in ["", "2xx", "a b", "\u{e9}", "ok.name"] {
            let once = sanitize_name(name);
            assert_eq!(sanitize_name(&once), once);
        }
    }

    #[test]
    fn units_map_to_ucum() {
        assert_eq!(ucum(Unit::Seconds), "s");
        assert_eq!(ucum(Unit::Milliseconds), "ms");
        assert_eq!(ucum(Unit::Microseconds), "us");
        assert_eq!(ucum(Unit::Nanoseconds), "ns");
        assert_eq!(ucum(Unit::Bytes), "By");
        assert_eq!(ucum(Unit::Kibibytes), "KiBy");
        assert_eq!(ucum(Unit::Mebibytes), "MiBy");
        assert_eq!(ucum(Unit::Gibibytes), "GiBy");
        assert_eq!(ucum(Unit::Tebibytes), "TiBy");
        assert_eq!(ucum(Unit::BitsPerSecond), "bit/s");
        assert_eq!(ucum(Unit::KilobitsPerSecond), "kbit/s");
        assert_eq!(ucum(Unit::MegabitsPerSecond), "Mbit/s");
        assert_eq!(ucum(Unit::GigabitsPerSecond), "Gbit/s");
        assert_eq!(ucum(Unit::TerabitsPerSecond), "Tbit/s");
        assert_eq!(ucum(Unit::Count), "{count}");
        assert_eq!(ucum(Unit::CountPerSecond), "{count}/s");
        assert_eq!(ucum(Unit::Percent), "%");
    }
}
