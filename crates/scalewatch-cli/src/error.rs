//! The error type shared by all subcommands.

use std::path::PathBuf;

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The input file could not be opened or read.
    #[error("cannot read {path}; check that the file exists and is readable", path = .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CSV is malformed (for example a row with a different number of
    /// fields than the header).
    #[error(
        "line {line}: malformed csv; every row needs as many comma-separated fields as the header"
    )]
    Csv {
        line: u64,
        #[source]
        source: csv::Error,
    },
    /// A column the `--columns` flag asks for is not in the header.
    #[error("line {line}: no column named `{column}` in the header (found: {found}); rename the column or pick others with --columns")]
    MissingColumn {
        line: u64,
        column: &'static str,
        found: String,
    },
    /// A field is not a number.
    #[error("line {line}: `{value}` in column `{column}` is not a number")]
    NotANumber {
        line: u64,
        column: &'static str,
        value: String,
        #[source]
        source: std::num::ParseFloatError,
    },
    /// A field is a number but not a positive finite one.
    #[error("line {line}: {column} must be a positive finite number, found {value}; drop or fix that row")]
    NotPositive {
        line: u64,
        column: &'static str,
        value: f64,
    },
    /// The data cannot support a fit.
    #[error("{context}: cannot fit the universal scalability law")]
    Fit {
        context: String,
        #[source]
        source: scalewatch_usl::FitError,
    },
    /// Writing the report failed.
    #[error("cannot write the report")]
    Output(#[source] std::io::Error),
    /// An argument is invalid (checked beyond what the parser does).
    #[error("{0}")]
    Usage(String),
    /// The load ramp could not go on.
    #[error("the ramp stopped")]
    Ramp(#[source] crate::ramp::engine::RampError),
    /// The target could not be reached.
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String },
    /// A runtime or socket the command needs could not be set up.
    #[error("cannot start the load generator or the demo service")]
    Runtime(#[source] std::io::Error),
    /// The demo service could not be built.
    #[error("cannot build the demo service: {0}")]
    Demo(String),
    /// A file of `--out` could not be written.
    #[error("cannot write {path}", path = .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// 2 for usage and input errors (bad files, bad values, too little
    /// data), 1 for data that is well-formed but does not follow the model,
    /// and for output failures.
    pub(crate) fn exit_code(&self) -> u8 {
        use scalewatch_usl::FitError;
        match self {
            CliError::Read { .. }
            | CliError::Csv { .. }
            | CliError::MissingColumn { .. }
            | CliError::NotANumber { .. }
            | CliError::NotPositive { .. }
            | CliError::Usage(_) => 2,
            CliError::Fit { source, .. } => match source {
                FitError::NonFinite { .. }
                | FitError::NonPositive { .. }
                | FitError::TooFewLevels { .. }
                | FitError::TooFewPoints { .. }
                | FitError::InvalidConfidenceLevel { .. } => 2,
                _ => 1,
            },
            CliError::Output(_)
            | CliError::Ramp(_)
            | CliError::Connect { .. }
            | CliError::Runtime(_)
            | CliError::Demo(_)
            | CliError::Write { .. } => 1,
        }
    }
}
