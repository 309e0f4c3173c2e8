//! `scalewatch`: the scalewatch command line.
//!
//! Subcommands live in one module each (`demo`, `ramp`, `fit`) and share the error
//! type in `error.rs`; `ramp::engine` is the load generator both ramps use, and
//! `report` renders what they find as text, JSON, SVG and Markdown. `main` parses the arguments, runs the subcommand,
//! and on failure prints the error with its chain of causes to stderr and
//! exits non-zero (2 for usage and input errors, 1 otherwise).

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod error;
mod fit;
mod progress;
mod ramp;
mod report;

/// Make a service's scaling behaviour observable.
#[derive(Debug, Parser)]
#[command(name = "scalewatch", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a demo shop with planted breaking points (a global lock, a hot shard, a
    /// small pool), walk it up a load ramp on loopback, and report where and why it stops
    /// scaling. About a minute by default.
    Demo(demo::DemoArgs),
    /// Walk any HTTP endpoint or gRPC method up a load ramp and report where it stops
    /// scaling; reads the target's own scalewatch report when it serves one.
    Ramp(ramp::RampArgs),
    /// Fit the Universal Scalability Law to load-test measurements (a CSV file, Locust's
    /// `--csv` stats history or oha's JSON output) and report contention, coherency and
    /// the peak.
    Fit(fit::FitArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version.
        Err(err) if !err.use_stderr() => err.exit(),
        // Usage errors exit with 2, as clap's own do; clap quotes stray arguments, so
        // credentials in URLs among them are shown as `***`.
        Err(err) => {
            eprint!("{}", ramp::redact_words(&err.render().to_string()));
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match &cli.command {
        Command::Demo(args) => demo::run(args, &mut out),
        Command::Ramp(args) => ramp::run(args, &mut out),
        Command::Fit(args) => fit::run(args, &mut out),
    };
    let result = result.and_then(|()| out.flush().map_err(error::CliError::Output));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut message = format!("error: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!("\n  caused by: {cause}"));
                source = cause.source();
            }
            eprintln!("{message}");
            ExitCode::from(err.exit_code())
        }
    }
}
