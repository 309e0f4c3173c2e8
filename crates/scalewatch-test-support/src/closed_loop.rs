//! Closed-loop load over HTTP on loopback, measured in windows of a fixed length, and a
//! current-thread runtime on a thread of its own for a server whose runtime is measured.
//!
//! A [`ClosedLoop`] runs levels of load: at each, a number of users each send a GET, wait
//! for its answer, wait a think time and send the next, while a [`Schedule`] closes the
//! level's windows and calls back at each close ([`Close`]): first the level's transition
//! (to be dropped: the change of load falls in it), then each measured window. The
//! callback is where a test closes its model's windows, e.g. with a capacity model's
//! `skip` and `sample`.
//!
//! A [`RuntimeThread`] serves an app (or runs any task) on a current-thread runtime of a
//! thread of its own, so that its one worker is what a test measures or saturates, and
//! stops it when dropped. [`http_client`] and [`fetch`] are the users' client and request,
//! for a test's own client stack; [`blocking`] runs a precise sleep, or a blocking lock
//! held for one, on the blocking pool.
//!
//! Every loop is bounded: the users stop when the level's windows are closed, and in any
//! case at its planned length plus a margin, and a level's requests must be answered by
//! then.
//!
//! ```no_run
//! use scalewatch_test_support::closed_loop::{Close, ClosedLoop, RuntimeThread};
//!
//! # #[tokio::main]
//! # async fn main() {
//! let app = axum::Router::new().route("/work", axum::routing::get(|| async { "ok" }));
//! let (_server, addr) = RuntimeThread::serve(app);
//! let load = ClosedLoop::new(addr, &["/work"], |close| match close {
//!     Close::Transition => { /* drop the window */ }
//!     Close::Window(_) => { /* read the window */ }
//! });
//! load.hold(&[(1, 40), (2, 10)]).await;
//! load.ramp(16).await;
//! # }
//! ```

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::time::Instant;

/// How long a level's users may run past its planned length when nothing stops them, and
/// how long a runtime thread's blocking tasks are waited for when it stops.
const MARGIN: Duration = Duration::from_secs(30);

/// One close of a level's windows, in the order they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// The end of the level's first window, its settling time: the change of load falls
    /// in it, so a model drops it.
    Transition,
    /// The end of the level's measured window number `n`, from 0.
    Window(usize),
}

/// When a level's windows close: one settling window, then `windows` measured ones of
/// length `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The length of the settling window, closed with [`Close::Transition`].
    pub settle: Duration,
    /// The length of each measured window.
    pub window: Duration,
    /// How many measured windows a level has.
    pub windows: usize,
}

impl Default for Schedule {
    /// Windows of 0.5 s, a settling window as long, and three measured windows a level.
    fn default() -> Self {
        Self::new(Duration::from_millis(500), 3)
    }
}

impl Schedule {
    /// `windows` measured windows of `window`, after a settling window as long.
    pub const fn new(window: Duration, windows: usize) -> Self {
        Self {
            settle: window,
            window,
            windows,
        }
    }

    /// The same windows after a settling window of `settle`.
    pub const fn settle(self, settle: Duration) -> Self {
        Self { settle, ..self }
    }

    /// How long a level lasts: its settling window and its measured ones.
    pub fn length(&self) -> Duration {
        let windows = u32::try_from(self.windows).unwrap_or(u32::MAX);
        self.settle
            .saturating_add(self.window.saturating_mul(windows))
    }

    /// Waits out the settling window and calls `on_close(Close::Transition)`, then waits
    /// out each measured window and calls `on_close(Close::Window(n))` at its end.
    pub async fn run(&self, mut on_close: impl FnMut(Close)) {
        tokio::time::sleep(self.settle).await;
        on_close(Close::Transition);
        for n in 0..self.windows {
            tokio::time::sleep(self.window).await;
            on_close(Close::Window(n));
        }
    }
}

/// The HTTP/1 client a [`ClosedLoop`]'s users send with; [`http_client`] makes one, to
/// wrap in a client stack.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A new [`HttpClient`] (connections kept alive and reused).
pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends one GET of `path` on `addr` through `client` (an [`HttpClient`], or a client
/// stack around one) and reads the answer to its end; returns the answer's status.
///
/// # Panics
/// If the call fails or the answer's body cannot be read.
pub async fn fetch<S, B>(client: S, addr: SocketAddr, path: &str) -> http::StatusCode
where
    S: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<B>>,
    S::Error: fmt::Debug,
    B: axum::body::HttpBody,
    B::Error: fmt::Debug,
{
    let request = http::Request::get(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .expect("a GET request");
    let response = tower::ServiceExt::oneshot(client, request)
        .await
        .expect("an answer");
    let status = response.status();
    response
        .into_body()
        .collect()
        .await
        .expect("the answer's body");
    status
}

/// Runs `work` on the runtime's blocking pool and returns what it returns: for a precise
/// sleep (the timer's millisecond steps would make it depend on the load), or a blocking
/// lock held for one.
///
/// # Panics
/// If `work` panics.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("the blocking work completes")
}

/// Levels of closed-loop load over HTTP on one address: each user sends a GET, waits for
/// its answer (which must be 200), waits the level's think time and sends the next. The
/// users take the paths in turn, from one cycle shared by all users and all levels, so a
/// mix of paths holds at any number of users. Each level's windows close on a
/// [`Schedule`] (by default [`Schedule::default`]) with a call to the callback.
#[derive(Clone)]
pub struct ClosedLoop {
    addr: SocketAddr,
    paths: Arc<[String]>,
    next: Arc<AtomicUsize>,
    on_close: Arc<dyn Fn(Close) + Send + Sync>,
    schedule: Schedule,
}

impl fmt::Debug for ClosedLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClosedLoop")
            .field("addr", &self.addr)
            .field("paths", &self.paths)
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

impl ClosedLoop {
    /// Load on `addr` over `paths` (taken in turn), calling `on_close` at each close of a
    /// level's windows.
    ///
    /// # Panics
    /// If `paths` is empty.
    pub fn new(
        addr: SocketAddr,
        paths: &[&str],
        on_close: impl Fn(Close) + Send + Sync + 'static,
    ) -> Self {
        assert!(!paths.is_empty(), "a closed loop needs a path to request");
        Self {
            addr,
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            next: Arc::default(),
            on_close: Arc::new(on_close),
            schedule: Schedule::default(),
        }
    }

    /// The same load with each level's windows closed on `schedule`.
    pub fn schedule(self, schedule: Schedule) -> Self {
        Self { schedule, ..self }
    }

    /// One level: `users` closed-loop users, each waiting `think` between an answer and
    /// its next request, for one [`Schedule`]; the users stop when its last window is
    /// closed.
    ///
    /// # Panics
    /// If a request fails, is answered with another status than 200 or is not answered
    /// within the level's length plus 30 s.
    pub async fn run(&self, users: usize, think: Duration) {
        let client = http_client();
        let stop = Arc::new(AtomicBool::new(false));
        // Bounded whatever happens.
        let deadline = Instant::now() + self.schedule.length() + MARGIN;
        let tasks: Vec<_> = (0..users)
            .map(|_| {
                let (client, stop) = (client.clone(), stop.clone());
                let (addr, paths, next) = (self.addr, self.paths.clone(), self.next.clone());
                tokio::spawn(async move {
                    while !stop.load(Relaxed) && Instant::now() < deadline {
                        let path = &paths[next.fetch_add(1, Relaxed) % paths.len()];
                        let status = tokio::time::timeout_at(deadline, fetch(&client, addr, path))
                            .await
                            .unwrap_or_else(|_| panic!("GET {path}: no answer by the deadline"));
                        assert_eq!(status, 200, "GET {path}");
                        if !think.is_zero() {
                            tokio::time::sleep(think).await;
                        }
                    }
                })
            })
            .collect();
        self.schedule.run(|close| (self.on_close)(close)).await;
        stop.store(true, Relaxed);
        for task in tasks {
            task.await.expect("every request of the level is answered");
        }
    }

    /// One level after another, each given as (users, think time in milliseconds).
    ///
    /// # Panics
    /// As [`run`](Self::run).
    pub async fn hold(&self, levels: &[(usize, u64)]) {
        for &(users, think) in levels {
            self.run(users, Duration::from_millis(think)).await;
        }
    }

    /// Levels of 1, 2, 4, ... users up to `top`, with no think time: a ramp past
    /// saturation.
    ///
    /// # Panics
    /// As [`run`](Self::run).
    pub async fn ramp(&self, top: usize) {
        let mut users = 1;
        while users <= top {
            self.run(users, Duration::ZERO).await;
            users *= 2;
        }
    }
}

/// A current-thread runtime (every driver enabled) on a thread of its own, running one
/// task until the task ends, [`stop`](Self::stop) is called or it is dropped: a server
/// whose one worker a test measures or saturates, apart from the test's own runtime.
pub struct RuntimeThread {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for RuntimeThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeThread")
            .field("running", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

impl RuntimeThread {
    /// Builds the runtime and runs `task()` on it, on a new thread. When the runtime
    /// stops, its blocking tasks are waited for 30 s at most.
    ///
    /// # Panics
    /// If the runtime or its thread cannot be created.
    pub fn start<F, Fut>(task: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("runtime-thread".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        () = task() => {}
                        _ = stopped => {}
                    }
                });
                runtime.shutdown_timeout(MARGIN);
            })
            .expect("a thread for the runtime");
        Self {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Serves `app` on an ephemeral loopback port from a new runtime thread; returns the
    /// thread and the address.
    ///
    /// # Panics
    /// If the port cannot be bound, or as [`start`](Self::start).
    pub fn serve(app: axum::Router) -> (Self, SocketAddr) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("local addr");
        let thread = Self::start(move || async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            let _ = axum::serve(listener, app).await;
        });
        (thread, addr)
    }

    /// The runtime's handle: to observe it (e.g. its worker's busy time) or spawn on it.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Stops the task and waits for the thread to end.
    ///
    /// # Panics
    /// With the task's panic, if it panicked.
    pub fn stop(mut self) {
        if let Err(panic) = self.halt() {
            std::panic::resume_unwind(panic);
        }
    }

    fn halt(&mut self) -> std::thread::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.thread.take().map_or(Ok(()), JoinHandle::join)
    }
}

impl Drop for RuntimeThread {
    /// Stops the task and waits for the thread to end (a panic of the task is dropped).
    fn drop(&mut self) {
        let _ = self.halt();
    }
}
