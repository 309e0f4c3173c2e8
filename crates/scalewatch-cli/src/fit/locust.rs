//! Locust's stats history, `PREFIX_stats_history.csv` (written by `locust --csv PREFIX`):
//! one row a second, with the user count and the run's cumulative request and failure
//! counts. Every stretch of consecutive rows at one user count is one level; its
//! throughput is the successful requests between the stretch's first and last row divided
//! by the seconds between them, so the ramp between levels never counts.

/// The columns that make a CSV Locust's stats history.
pub(super) const HISTORY_COLUMNS: [&str; 4] =
    ["Timestamp", "User Count", "Name", "Total Request Count"];

/// One level of a Locust run: a user count held over two rows or more.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Level {
    /// Concurrent users (Locust's closed-loop concurrency).
    pub users: u32,
    /// Successful requests per second over the level.
    pub throughput: f64,
    /// Successful requests counted over the level.
    pub requests: u64,
    /// Seconds between the level's first and last row.
    pub seconds: f64,
    /// The 1-based lines of the level's first and last row.
    pub first_line: u64,
    pub last_line: u64,
}

/// One `Aggregated` row.
struct Row {
    line: u64,
    timestamp: f64,
    users: u32,
    requests: u64,
    failures: u64,
}

/// The levels of a history, in the order they were run.
pub(super) fn levels(input: &[u8]) -> Result<Vec<Level>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| format!("not a readable CSV ({e})"))?
        .clone();
    let index = |column: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(column));
    let mut columns = [0; 4];
    for (slot, column) in columns.iter_mut().zip(HISTORY_COLUMNS) {
        *slot = index(column).ok_or_else(|| {
            format!(
                "no `{column}` column: expected Locust's stats history (PREFIX_stats_history.csv from `locust --csv PREFIX`), whose header has {}",
                HISTORY_COLUMNS.join(", ")
            )
        })?;
    }
    let [timestamp, users, name, requests] = columns;
    let failures = index("Total Failure Count");
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("malformed CSV ({e})"))?;
        let line = record.position().map_or(0, |p| p.line());
        if record.get(name) != Some("Aggregated") {
            continue;
        }
        let field = |i: usize, column: &str| {
            record
                .get(i)
                .ok_or_else(|| format!("line {line}: no `{column}` field"))
        };
        let number = |i: usize, column: &str| -> Result<f64, String> {
            let raw = field(i, column)?;
            raw.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("line {line}: `{raw}` in column `{column}` is not a count"))
        };
        let count = |i: usize, column: &str| -> Result<u64, String> {
            let raw = field(i, column)?;
            raw.parse::<u64>()
                .map_err(|_| format!("line {line}: `{raw}` in column `{column}` is not a count"))
        };
        rows.push(Row {
            line,
            timestamp: number(timestamp, "Timestamp")?,
            users: u32::try_from(count(users, "User Count")?)
                .map_err(|_| format!("line {line}: too many users"))?,
            requests: count(requests, "Total Request Count")?,
            failures: match failures {
                Some(i) => count(i, "Total Failure Count")?,
                None => 0,
            },
        });
    }
    let mut levels = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let users = rows[start].users;
        let end = rows[start..]
            .iter()
            .position(|r| r.users != users)
            .map_or(rows.len(), |n| start + n);
        let (first, last) = (&rows[start], &rows[end - 1]);
        let seconds = last.timestamp - first.timestamp;
        let ok = |r: &Row| r.requests.saturating_sub(r.failures);
        let requests = ok(last).saturating_sub(ok(first));
        if users > 0 && seconds > 0.0 && requests > 0 {
            levels.push(Level {
                users,
                throughput: requests as f64 / seconds,
                requests,
                seconds,
                first_line: first.line,
                last_line: last.line,
            });
        }
        start = end;
    }
    if levels.is_empty() {
        return Err(format!(
            "{} `Aggregated` rows, but no user count held over two of them with requests served: run each level for several seconds",
            rows.len()
        ));
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HEADER: &str = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size\n";

    fn row(t: u64, users: u32, name: &str, total: u64, failed: u64) -> String {
        format!("{t},{users},,{name},0.0,0.0,3,4,4,5,7,12,26,28,43,43,43,{total},{failed},3,4.38,1.2,42.8,474.0\n")
    }

    #[test]
    fn each_user_count_held_is_a_level() {
        let mut csv = String::from(HEADER);
        csv += &row(100, 0, "Aggregated", 0, 0);
        csv += &row(101, 2, "Aggregated", 100, 0);
        csv += &row(101, 2, "GET /", 100, 0);
        csv += &row(102, 2, "Aggregated", 300, 0);
        csv += &row(104, 2, "Aggregated", 700, 10);
        csv += &row(105, 4, "Aggregated", 1000, 10);
        csv += &row(107, 4, "Aggregated", 1800, 10);
        csv += &row(108, 8, "Aggregated", 2000, 10);
        let levels = levels(csv.as_bytes()).unwrap();
        assert_eq!(levels.len(), 2, "{levels:?}");
        assert_eq!(levels[0].users, 2);
        // (700 - 10 - 100) successes over 3 s.
        assert_eq!(levels[0].requests, 590);
        assert!((levels[0].throughput - 590.0 / 3.0).abs() < 1e-9);
        assert_eq!((levels[0].first_line, levels[0].last_line), (3, 6));
        assert_eq!(levels[1].users, 4);
        assert!((levels[1].throughput - 400.0).abs() < 1e-9);
    }

    #[test]
    fn a_history_too_short_or_foreign_says_so() {
        let mut csv = String::from(HEADER);
        csv += &row(100, 2, "Aggregated", 10, 0);
        let err = levels(csv.as_bytes()).unwrap_err();
        assert!(err.contains("no user count held"), "{err}");
        let err = levels(b"concurrency,throughput\n1,2\n").unwrap_err();
        assert!(err.contains("no `Timestamp` column"), "{err}");
        let mut csv = String::from(HEADER);
        csv += &row(100, 2, "Aggregated", 10, 0).replace(",10,0,", ",many,0,");
        let err = levels(csv.as_bytes()).unwrap_err();
        assert!(err.contains("line 2: `many`"), "{err}");
    }
}
