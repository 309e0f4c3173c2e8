//! A real OTLP collector for end-to-end tests: the `rotel` agent, installed from PyPI into a
//! virtualenv under the workspace's `target/` directory on first use.

use std::io::{self, BufRead as _, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{OtlpAddrs, OtlpListener};

/// The PyPI requirement installed (the wheel ships the `rotel-agent` binary, which reports
/// itself as `rotel 0.0.1-alpha10`).
pub const ROTEL_REQUIREMENT: &str = "rotel==0.0.1a15";
/// Environment variable naming an existing `rotel-agent` binary to use instead of installing.
pub const ROTEL_BIN_ENV: &str = "SCALEWATCH_ROTEL_BIN";
/// Environment variable naming the Python interpreter used to create the virtualenv
/// (default `python3`).
pub const ROTEL_PYTHON_ENV: &str = "SCALEWATCH_ROTEL_PYTHON";

const START_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Why the collector harness could not do what was asked. Every message says what to run.
///
/// `Debug` prints the same message as `Display`, so `expect()` in a test shows it.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The workspace `target/` directory could not be found.
    #[error("cannot find the workspace target directory above {start}: set CARGO_TARGET_DIR")]
    NoTargetDir {
        /// Where the search started.
        start: PathBuf,
    },
    /// A file system operation failed.
    #[error("{what} failed: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An install command could not be run at all.
    #[error(
        "cannot run `{command}`: {source}; install Python 3 with venv and pip \
         (`apt-get install python3 python3-venv`) or set {ROTEL_PYTHON_ENV} to an interpreter, \
         or set {ROTEL_BIN_ENV} to a rotel-agent binary"
    )]
    InstallSpawn {
        /// The command line.
        command: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An install command failed.
    #[error(
        "`{command}` failed ({status}); run it by hand to see why (PyPI must be reachable), \
         or set {ROTEL_BIN_ENV} to a rotel-agent binary. Its output:\n{output}"
    )]
    InstallFailed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its stdout and stderr.
        output: String,
    },
    /// The wheel installed but its binary was not where expected.
    #[error(
        "installed {ROTEL_REQUIREMENT} into {venv} but found no rotel/rotel-agent under its \
         site-packages; the wheel layout changed: inspect it and update the harness"
    )]
    BinaryNotInWheel {
        /// The virtualenv.
        venv: PathBuf,
    },
    /// No free loopback port could be bound.
    #[error("cannot bind a free loopback port: {0}")]
    Ports(#[source] io::Error),
    /// The agent could not be spawned.
    #[error("cannot spawn `{command}`: {source}; delete {binary} to force a reinstall")]
    Spawn {
        /// The command line.
        command: String,
        /// The binary.
        binary: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The agent exited while starting.
    #[error(
        "rotel-agent exited during start-up ({status}); command `{command}`; its output:\n{output}"
    )]
    Exited {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed.
        output: String,
    },
    /// The agent did not open its ports in time.
    #[error(
        "rotel-agent did not listen on {endpoints} within {timeout:?}; command `{command}`; \
         its output:\n{output}"
    )]
    NotListening {
        /// The gRPC and HTTP addresses.
        endpoints: String,
        /// How long it was given.
        timeout: Duration,
        /// The command line.
        command: String,
        /// What it printed.
        output: String,
    },
    /// [`Rotel::wait_for_output`] timed out.
    #[error("rotel output did not match within {timeout:?}; output so far:\n{output}")]
    OutputTimeout {
        /// How long it waited.
        timeout: Duration,
        /// What it printed.
        output: String,
    },
}

impl std::fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

/// Options for [`Rotel::start_with`].
#[derive(Debug, Clone, Default)]
pub struct RotelConfig {
    /// Forward everything received to this OTLP/gRPC endpoint (`--exporter otlp
    /// --otlp-exporter-endpoint ...`), for example a [`FakeReceiver`](crate::FakeReceiver)'s
    /// `grpc_endpoint()`. `None` (the default) uses `--exporter blackhole`.
    pub forward_to: Option<String>,
    /// More command-line arguments appended after the harness's own.
    pub extra_args: Vec<String>,
}

/// A running `rotel-agent` OTLP collector on two free loopback ports, printing everything it
/// receives, with its output captured.
///
/// [`Rotel::start`] installs the agent on first use: it creates a virtualenv at
/// `<target>/rotel-venv` (`<target>` is `$CARGO_TARGET_DIR`, else the workspace's `target/`)
/// and runs `pip install rotel==0.0.1a15` into it (about 2 s with a warm pip cache), then links
/// the wheel's `rotel/rotel-agent` binary as `<venv>/bin/rotel-agent`. The venv is built under
/// a temporary name and renamed into place, so concurrent installs never leave a broken one.
/// Set `SCALEWATCH_ROTEL_BIN` to use another binary. Starting takes about 20 ms.
///
/// The agent runs as `rotel-agent start --otlp-grpc-endpoint 127.0.0.1:G --otlp-http-endpoint
/// 127.0.0.1:H --exporter blackhole --debug-log metrics --debug-log traces --debug-log logs
/// --debug-log-verbosity detailed` with `NO_COLOR=1`. What to search for in
/// [`output`](Self::output):
///
/// - a metric: its name appears verbatim as `-> Name: <metric name>` (followed by
///   `-> Description:`, `-> Unit:`, `-> DataType: Sum|Gauge|Histogram` and the data points with
///   `-> <key>: Str(<value>)` attributes and `Value: <n>` / `Count: <n>` lines);
/// - a span: its name appears verbatim as `Name           : <span name>` inside a `Span #N`
///   block, with `Attributes:` lines `-> <key>: Str(<value>)`;
/// - the batch header lines are `ResourceMetrics #N` / `ResourceSpans #N`, and resource
///   attributes appear as `-> service.name: Str(<name>)`.
///
/// The agent batches for up to 200 ms before printing, so use
/// [`wait_for_output`](Self::wait_for_output).
///
/// ```no_run
/// use std::time::Duration;
/// use scalewatch_test_support::Rotel;
///
/// let rotel = Rotel::start().expect("rotel collector");
/// // ... export a metric named `requests` to rotel.grpc_endpoint() ...
/// rotel
///     .wait_for_output(|out| out.contains("Name: requests"), Duration::from_secs(10))
///     .expect("rotel printed the metric");
/// ```
#[derive(Debug)]
pub struct Rotel {
    binary: PathBuf,
    addrs: OtlpAddrs,
    run_dir: PathBuf,
    config: RotelConfig,
    output: Arc<Mutex<String>>,
    child: Option<Child>,
    readers: Vec<JoinHandle<()>>,
}

impl Rotel {
    /// Installs the agent if needed and starts it with the default [`RotelConfig`]
    /// (black-hole exporter, everything printed), waiting (at most 30 s) until both ports
    /// accept connections.
    ///
    /// # Errors
    /// When the agent cannot be installed or started; the message says why and what to run.
    pub fn start() -> Result<Rotel, HarnessError> {
        Self::start_with(RotelConfig::default())
    }

    /// [`start`](Self::start) with options.
    ///
    /// # Errors
    /// When the agent cannot be installed or started; the message says why and what to run.
    pub fn start_with(config: RotelConfig) -> Result<Rotel, HarnessError> {
        let binary = ensure_installed()?;
        let addrs = free_ports()?;
        static RUN: AtomicU64 = AtomicU64::new(0);
        let run_dir = target_dir()?.join("rotel-run").join(format!(
            "{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&run_dir)
            .map_err(io_err(format!("creating {}", run_dir.display())))?;
        let mut rotel = Rotel {
            binary,
            addrs,
            run_dir,
            config,
            output: Arc::new(Mutex::new(String::new())),
            child: None,
            readers: Vec::new(),
        };
        rotel.spawn()?;
        Ok(rotel)
    }

    /// The agent binary in use.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Everything the agent printed on stdout and stderr so far, across restarts, with ANSI
    /// escapes removed.
    pub fn output(&self) -> String {
        lock(&self.output).clone()
    }

    /// Polls [`output`](Self::output) every 20 ms until `pred` holds, and returns it.
    ///
    /// # Errors
    /// [`HarnessError::OutputTimeout`] with the output so far.
    pub fn wait_for_output(
        &self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            let output = self.output();
            if pred(&output) {
                return Ok(output);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::OutputTimeout { timeout, output });
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Whether the agent process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Kills the agent (SIGKILL, as a crash would) and waits for it; the ports close. Does
    /// nothing when it is already stopped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// Stops the agent if running and starts it again on the same ports, waiting until it
    /// listens. The output buffer is kept (a `--- scalewatch-test-support: restart ---` line
    /// marks the restart).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        lock(&self.output).push_str("--- scalewatch-test-support: restart ---\n");
        self.spawn()
    }

    fn command_line(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "start".into(),
            "--otlp-grpc-endpoint".into(),
            self.addrs.grpc.to_string(),
            "--otlp-http-endpoint".into(),
            self.addrs.http.to_string(),
        ];
        match &self.config.forward_to {
            Some(endpoint) => args.extend([
                "--exporter".into(),
                "otlp".into(),
                "--otlp-exporter-endpoint".into(),
                endpoint.clone(),
            ]),
            None => args.extend(["--exporter".into(), "blackhole".into()]),
        }
        for signal in ["metrics", "traces", "logs"] {
            args.extend(["--debug-log".into(), signal.into()]);
        }
        args.extend([
            "--debug-log-verbosity".into(),
            "detailed".into(),
            "--pid-file".into(),
            self.run_dir.join("rotel.pid").display().to_string(),
            "--log-file".into(),
            self.run_dir.join("rotel.log").display().to_string(),
        ]);
        args.extend(self.config.extra_args.iter().cloned());
        args
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let args = self.command_line();
        let command = format!("{} {}", self.binary.display(), args.join(" "));
        let mut child = Command::new(&self.binary)
            .args(&args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                command: command.clone(),
                binary: self.binary.clone(),
                source,
            })?;
        if let Some(stdout) = child.stdout.take() {
            self.readers.push(capture(stdout, self.output.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            self.readers.push(capture(stderr, self.output.clone()));
        }
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.stop();
                return Err(HarnessError::Exited {
                    command,
                    status,
                    output: self.output(),
                });
            }
            let up = |addr| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
            if up(self.addrs.grpc) && up(self.addrs.http) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(HarnessError::NotListening {
                    endpoints: format!("{} (gRPC) and {} (HTTP)", self.addrs.grpc, self.addrs.http),
                    timeout: START_TIMEOUT,
                    command,
                    output: self.output(),
                });
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

impl OtlpListener for Rotel {
    fn addrs(&self) -> OtlpAddrs {
        self.addrs
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

fn lock(output: &Mutex<String>) -> MutexGuard<'_, String> {
    output.lock().unwrap_or_else(|e| e.into_inner())
}

fn capture(stream: impl Read + Send + 'static, output: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = strip_ansi(&String::from_utf8_lossy(&line));
                    let mut out = lock(&output);
                    out.push_str(&text);
                    if !text.ends_with('\n') {
                        out.push('\n');
                    }
                }
            }
        }
    })
}

/// Removes ANSI CSI escape sequences (colours) from `text`.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn free_ports() -> Result<OtlpAddrs, HarnessError> {
    // Both listeners are held until both ports are known, so the two differ.
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(HarnessError::Ports)?;
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(HarnessError::Ports)?;
    Ok(OtlpAddrs {
        grpc: a.local_addr().map_err(HarnessError::Ports)?,
        http: b.local_addr().map_err(HarnessError::Ports)?,
    })
}

/// The directory the harness installs into: `$CARGO_TARGET_DIR` when set, else `target/`
/// under the workspace root (the nearest ancestor of this crate whose `Cargo.toml` has a
/// `[workspace]` table).
///
/// # Errors
/// [`HarnessError::NoTargetDir`] when no workspace root is found.
pub fn target_dir() -> Result<PathBuf, HarnessError> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if dir.is_absolute() {
            return Ok(dir);
        }
        return Ok(workspace_root()?.join(dir));
    }
    Ok(workspace_root()?.join("target"))
}

fn workspace_root() -> Result<PathBuf, HarnessError> {
    let start = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|text| text.lines().any(|l| l.trim() == "[workspace]"))
        })
        .map(Path::to_path_buf)
        .ok_or_else(|| HarnessError::NoTargetDir {
            start: start.clone(),
        })
}

/// Returns the `rotel-agent` binary, installing it first if needed (see [`Rotel`]).
///
/// # Errors
/// When it cannot be installed; the message says why and what to run.
pub fn ensure_installed() -> Result<PathBuf, HarnessError> {
    if let Some(bin) = std::env::var_os(ROTEL_BIN_ENV).filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    // One installer per process; other processes are handled by the atomic rename.
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());

    let target = target_dir()?;
    let venv = target.join("rotel-venv");
    let binary = venv.join("bin").join("rotel-agent");
    if binary.is_file() {
        return Ok(binary);
    }
    std::fs::create_dir_all(&target).map_err(io_err(format!("creating {}", target.display())))?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let staging = target.join(format!("rotel-venv.tmp-{}-{nanos}", std::process::id()));
    let result = build_venv(&staging).and_then(|()| publish(&staging, &venv, &binary));
    if staging.exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result.map(|()| binary)
}

fn run(command: &mut Command) -> Result<(), HarnessError> {
    let line = format!("{command:?}").replace('"', "");
    let out =
        command
            .stdin(Stdio::null())
            .output()
            .map_err(|source| HarnessError::InstallSpawn {
                command: line.clone(),
                source,
            })?;
    if out.status.success() {
        return Ok(());
    }
    Err(HarnessError::InstallFailed {
        command: line,
        status: out.status,
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

fn build_venv(staging: &Path) -> Result<(), HarnessError> {
    let python = std::env::var_os(ROTEL_PYTHON_ENV)
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into());
    run(Command::new(python).arg("-m").arg("venv").arg(staging))?;
    run(Command::new(staging.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
        ])
        .arg(ROTEL_REQUIREMENT))?;
    // The wheel puts the binary in site-packages/rotel/rotel-agent.
    let lib = staging.join("lib");
    let entries = std::fs::read_dir(&lib).map_err(io_err(format!("listing {}", lib.display())))?;
    let relative = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .map(|py| {
            Path::new("..")
                .join("lib")
                .join(py)
                .join("site-packages")
                .join("rotel")
                .join("rotel-agent")
        })
        .find(|rel| staging.join("bin").join(rel).is_file())
        .ok_or_else(|| HarnessError::BinaryNotInWheel {
            venv: staging.to_path_buf(),
        })?;
    let link = staging.join("bin").join("rotel-agent");
    std::os::unix::fs::symlink(&relative, &link)
        .map_err(io_err(format!("linking {}", link.display())))?;
    run(Command::new(&link).arg("--version"))
}

fn publish(staging: &Path, venv: &Path, binary: &Path) -> Result<(), HarnessError> {
    for attempt in 0..2 {
        match std::fs::rename(staging, venv) {
            Ok(()) => return Ok(()),
            // Another process finished first: use its venv.
            Err(_) if binary.is_file() => return Ok(()),
            // A broken venv (no binary) is in the way: remove it and try again.
            Err(_) if attempt == 0 && venv.exists() => {
                std::fs::remove_dir_all(venv)
                    .map_err(io_err(format!("removing broken {}", venv.display())))?;
            }
            Err(source) => {
                return Err(HarnessError::Io {
                    what: format!("renaming {} to {}", staging.display(), venv.display()),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Whether rotel's detailed debug output `output` shows a metric named `name` (a descriptor
/// line `     -> Name: <name>`).
pub fn rotel_printed_metric(output: &str, name: &str) -> bool {
    output
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-> Name:"))
        .any(|n| n.trim() == name)
}

/// Whether rotel's detailed debug output `output` shows a span named `name` (a line
/// `    Name           : <name>`).
pub fn rotel_printed_span(output: &str, name: &str) -> bool {
    output
        .lines()
        .filter_map(|l| l.split_once(':'))
        .any(|(key, value)| key.trim() == "Name" && value.trim() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colours() {
        assert_eq!(
            strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m x"),
            "2026  INFO x"
        );
    }

    #[test]
    fn finds_a_target_dir() {
        let dir = target_dir().expect("target dir");
        assert!(dir.is_absolute(), "{}", dir.display());
    }
}
