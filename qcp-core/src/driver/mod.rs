//! The only code that talks to the async runtime: listening, spawning one task per client,
//! timers, the control socket and shutdown. Everything it calls below `driver/` is
//! synchronous; moving to another runtime (async-std is no longer developed; smol is its
//! successor) means changing this folder only.

mod actions;
mod auth_query;
mod cancel;
mod clients;
mod console;
mod control;
mod db_controls;
mod engine;
mod io;
mod link;
mod login;
mod metrics_http;
mod reload;
mod server;
mod shared;
mod signals;
mod snapshot;
mod spelling;
mod status;
mod sync;
mod wait_timer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{select, Either};
use tracing::{info, info_span, warn, Instrument};

use crate::arena::Priority;
use crate::config::{Config, Endpoint};
use crate::errors::{sqlstate, PgError, Refusal};
use crate::stats::LoginOutcome;
use io::{
    read_first_packet, timeout, write_all, FirstPacket, Inbox, Listener, Peer, Socket, Stream,
};
use shared::Shared;

pub use io::LocalAddr;
pub use reload::{LogHook, ReloadReport};
pub use signals::stop_on_signals;

/// Why qcp could not start.
#[derive(Debug)]
pub enum StartError {
    /// The listening address could not be bound (`address` is the socket file's path for a
    /// Unix-domain socket).
    Listen {
        address: String,
        error: std::io::Error,
    },
    /// The control socket could not be created.
    ControlSocket { path: String, error: std::io::Error },
    /// The engine threads could not be started.
    Engine { error: std::io::Error },
    /// A certificate or key could not be used.
    Tls(crate::tls::TlsError),
    /// `hba_file` could not be read or parsed.
    Hba(String),
    /// The signal handlers could not be installed.
    Signals(std::io::Error),
    /// `metrics_address` could not be bound.
    Metrics {
        address: SocketAddr,
        error: std::io::Error,
    },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Listen { address, error } if address.starts_with('/') => {
                use std::io::ErrorKind;
                let fix = match error.kind() {
                    ErrorKind::AddrInUse => "stop the program using it or choose another path",
                    ErrorKind::AlreadyExists => "remove that file or choose another path",
                    ErrorKind::NotFound => "create the directory first or choose another path",
                    ErrorKind::PermissionDenied => {
                        "let qcp's user write to the directory or choose another path"
                    }
                    _ => "choose another path",
                };
                write!(
                    f,
                    "cannot listen on the Unix socket {address} (listening_address): {error}; {fix}"
                )
            }
            StartError::Listen { address, error } => write!(
                f,
                "cannot listen on {address} (listening_address): {error}; choose a free address or stop the program using it"
            ),
            StartError::ControlSocket { path, error } => write!(
                f,
                "cannot create the control socket {path} (control_socket): {error}; choose a writable path"
            ),
            StartError::Engine { error } => write!(
                f,
                "cannot start the relay threads (worker_threads): {error}; lower worker_threads or raise the process's limits"
            ),
            StartError::Tls(error) => write!(f, "cannot set up TLS: {error}"),
            StartError::Hba(error) => write!(f, "cannot read the access rules (hba_file): {error}"),
            StartError::Signals(error) => write!(f, "cannot watch for stop signals: {error}"),
            StartError::Metrics { address, error } => write!(
                f,
                "cannot serve metrics on {address} (metrics_address): {error}; choose a free address or leave the setting out"
            ),
        }
    }
}

impl std::error::Error for StartError {}

/// A running qcp instance.
pub struct Instance {
    shared: Arc<Shared>,
    stopped: async_std::channel::Receiver<()>,
    /// The `/metrics` endpoint (stopped when the instance is dropped).
    metrics: Option<metrics_http::MetricsServer>,
}

impl Instance {
    /// The TCP address clients connect to (useful when `listening_address` had port 0);
    /// `None` when qcp listens on a Unix-domain socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.shared.local_addr {
            LocalAddr::Tcp(address) => Some(*address),
            LocalAddr::Unix(_) => None,
        }
    }

    /// Where clients connect: a TCP address or a Unix-domain socket's path.
    pub fn listening_address(&self) -> &LocalAddr {
        &self.shared.local_addr
    }

    /// Where `/metrics` is served (with the port the system chose when `metrics_address`
    /// had port 0); `None` when it is off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.local_addr())
    }

    /// What the admin console and `/metrics` would show now.
    pub fn snapshot(&self) -> crate::stats::Snapshot {
        snapshot::take(&self.shared)
    }

    /// Starts a graceful shutdown, as `qcp-ctrl quit` does.
    pub fn shutdown(&self) {
        self.shared.begin_shutdown();
    }

    /// The text `qcp-ctrl status` shows.
    pub fn status(&self) -> String {
        status::render(&self.shared)
    }

    /// Blocks until the instance has stopped. The calling thread only sleeps: it does not
    /// join in polling sockets, which would hand wake-ups between threads.
    pub fn wait(self) {
        let _ = self.stopped.recv_blocking();
        if let Some(metrics) = self.metrics {
            metrics.stop();
        }
    }

    /// Arranges for SIGINT and SIGTERM to shut this instance down gracefully, and for SIGHUP
    /// to read the TLS certificates and keys and the `hba_file` again.
    pub fn stop_on_signals(&self) -> std::io::Result<()> {
        stop_on_signals(Arc::clone(&self.shared))
    }

    /// Records the configuration file the instance was started from: `reload` (and
    /// SIGHUP, `qcp-ctrl reload`, the console's RELOAD) reads it again.
    pub fn set_config_file(&self, path: impl Into<std::path::PathBuf>) {
        self.shared.set_config_file(path.into());
    }

    /// Sets what puts reloaded logging settings in force (the program that installed the
    /// log subscriber knows how).
    pub fn set_log_hook(&self, hook: Arc<LogHook>) {
        self.shared.set_log_hook(hook);
    }

    /// Reads the configuration file again and puts it in force; an invalid file changes
    /// nothing, and the error says what to fix.
    pub fn reload(&self) -> Result<ReloadReport, String> {
        async_std::task::block_on(reload::reload(&self.shared, "Instance::reload"))
    }

    /// Reads the `hba_file` again (SIGHUP does this too): new logins are checked against
    /// the new rules. On an error the previous rules stay.
    pub fn reload_hba(&self) -> Result<(), String> {
        self.shared.reload_hba()
    }

    /// Reads the TLS certificates and keys again (what SIGHUP does): new connections use
    /// them, existing ones keep theirs. On an error the previous ones stay in use.
    pub fn reload_tls(&self) -> Result<(), crate::tls::TlsError> {
        self.shared.reload_tls()
    }
}

/// What the `qcp` program adds to an instance before it serves anyone (in-process uses, such
/// as tests, leave these out).
#[derive(Default)]
pub struct StartOptions {
    /// The file the configuration came from, which a reload reads again.
    pub config_file: Option<std::path::PathBuf>,
    /// What puts reloaded logging settings in force.
    pub log_hook: Option<Arc<LogHook>>,
    /// Whether SIGINT, SIGTERM and SIGHUP are this instance's (see `stop_on_signals`).
    pub handle_signals: bool,
}

/// Allocates the arena, binds the listening address and the control socket, and starts
/// serving. Returns once qcp accepts clients.
pub fn start(config: Config) -> Result<Instance, StartError> {
    start_with(config, StartOptions::default())
}

/// [`start`] with `options` in place before the first client or control command is
/// served (so a SIGHUP or a reload can never find them missing).
pub fn start_with(config: Config, options: StartOptions) -> Result<Instance, StartError> {
    set_worker_threads(config.worker_threads);
    let tls = crate::tls::TlsSetup::load(&config).map_err(StartError::Tls)?;
    let hba = config.load_hba().map_err(StartError::Hba)?;
    async_std::task::block_on(async move {
        let address = config.listening_address.clone();
        let listen_error = |error| StartError::Listen {
            address: address.clone(),
            error,
        };
        let endpoint = Endpoint::parse(&address, true).map_err(|message| {
            listen_error(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                message,
            ))
        })?;
        let listen_error = |error| StartError::Listen {
            address: match &endpoint {
                Endpoint::Unix(path) => path.display().to_string(),
                Endpoint::Tcp(_) => address.clone(),
            },
            error,
        };
        let listener = Listener::bind(&endpoint, config.unix_socket_mode)
            .await
            .map_err(listen_error)?;
        let local_addr = listener.local_addr().map_err(listen_error)?;
        let control_path = config.control_socket.clone();
        let control =
            control::bind(&control_path)
                .await
                .map_err(|error| StartError::ControlSocket {
                    path: control_path.display().to_string(),
                    error,
                })?;
        let metrics = match config.metrics_address {
            Some(address) => Some(
                std::net::TcpListener::bind(address)
                    .map_err(|error| StartError::Metrics { address, error })?,
            ),
            None => None,
        };
        let shared = Shared::new(config, tls, hba, local_addr);
        if let Some(path) = options.config_file {
            shared.set_config_file(path);
        }
        if let Some(hook) = options.log_hook {
            shared.set_log_hook(hook);
        }
        if options.handle_signals {
            stop_on_signals(Arc::clone(&shared)).map_err(StartError::Signals)?;
        }
        let metrics = match metrics {
            Some(listener) => Some(serve_metrics(&shared, listener)?),
            None => None,
        };
        let engine = engine::Engine::start(&shared, shared.config().worker_threads)
            .map_err(|error| StartError::Engine { error })?;
        info!(
            address = %shared.local_addr,
            mode = ?shared.config().relay_mode,
            arena = %crate::config::format_size(shared.config().arena.total_size()),
            "qcp started"
        );
        let (stopped_tx, stopped_rx) = async_std::channel::bounded(1);
        spawn(control::serve(control, Arc::clone(&shared)));
        spawn(reap_idle_servers(Arc::clone(&shared)));
        spawn(wait_timer::run(Arc::clone(&shared)));
        spawn(tick_averages(Arc::clone(&shared)));
        spawn(supervise(
            Arc::clone(&shared),
            engine,
            listener,
            control_path,
            stopped_tx,
        ));
        Ok(Instance {
            shared,
            stopped: stopped_rx,
            metrics,
        })
    })
}

/// Serves `/metrics` on its own thread.
fn serve_metrics(
    shared: &Arc<Shared>,
    listener: std::net::TcpListener,
) -> Result<metrics_http::MetricsServer, StartError> {
    let address = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    // Weak: the endpoint must not keep a stopped instance's state alive.
    let weak = Arc::downgrade(shared);
    let render = Arc::new(move || match weak.upgrade() {
        Some(shared) => crate::metrics::render(&snapshot::take(&shared)),
        None => String::new(),
    });
    let server = metrics_http::serve(listener, render)
        .map_err(|error| StartError::Metrics { address, error })?;
    info!(%address, "serving metrics at /metrics");
    Ok(server)
}

/// Ends a statistics period every `stats_period`: the console's averages compare each
/// pool's totals with the previous period's.
async fn tick_averages(shared: Arc<Shared>) {
    let mut shutdown = std::pin::pin!(shared.shutdown_requested());
    loop {
        let totals = shared
            .pools()
            .into_iter()
            .map(|entry| (entry.pool.key().clone(), entry.counters.totals()));
        shared
            .averages
            .tick(Instant::now(), totals.collect::<Vec<_>>());
        // Read each time: a reload may change it (from the next period on).
        let sleep = std::pin::pin!(io::sleep(shared.config().stats_period));
        if let Either::Right(_) = select(sleep, shutdown.as_mut()).await {
            return;
        }
    }
}

/// Spawns a task that runs on its own; nobody waits for its result.
pub(crate) fn spawn<F: Future<Output = ()> + Send + 'static>(future: F) {
    // async-std detaches a task when its handle is dropped.
    drop(async_std::task::spawn(future));
}

/// Accepts clients until a shutdown begins, then waits for them to leave (up to the grace
/// period), closes idle server connections and signals that the instance stopped.
async fn supervise(
    shared: Arc<Shared>,
    engine: Arc<engine::Engine>,
    listener: Listener,
    control_path: std::path::PathBuf,
    stopped: async_std::channel::Sender<()>,
) {
    let (tasks_tx, tasks_rx) = async_std::channel::bounded::<()>(1);
    let mut shutdown = std::pin::pin!(shared.shutdown_requested());
    loop {
        let accept = std::pin::pin!(listener.accept());
        match select(accept, shutdown.as_mut()).await {
            Either::Left((Ok((socket, peer)), _)) => {
                let guard = tasks_tx.clone();
                let shared = Arc::clone(&shared);
                let engine = Arc::clone(&engine);
                spawn(serve_client(shared, engine, socket, peer, guard));
            }
            Either::Left((Err(error), _)) => {
                // Usually out of file descriptors: back off briefly instead of spinning.
                warn!(%error, "accept failed");
                io::sleep(Duration::from_millis(100)).await;
            }
            Either::Right(_) => break,
        }
    }
    // A Unix-domain socket's file goes with it.
    drop(listener);
    drop(tasks_tx);
    info!("shutting down: no longer accepting clients; waiting for clients to finish");
    let grace = shared.config().timeouts.shutdown;
    // A zero grace period closes the remaining clients at once (not "wait forever").
    let finished = if shared.waits_for_clients() {
        // SHUTDOWN WAIT_FOR_CLIENTS: each client leaves when it wants (a later SHUTDOWN
        // forces them out).
        let forced = std::pin::pin!(shared.forced_requested());
        matches!(
            select(std::pin::pin!(tasks_rx.recv()), forced).await,
            Either::Left(_)
        )
    } else {
        !grace.is_zero() && timeout(grace, tasks_rx.recv()).await.is_ok()
    };
    if !finished && !shared.clients.is_empty() {
        warn!(
            remaining = shared.clients.len(),
            "shutdown grace period over; closing the remaining clients"
        );
        shared.force_close();
        // They only need to write a last error and close their sockets.
        let _ = timeout(Duration::from_secs(2), tasks_rx.recv()).await;
    }
    for entry in shared.pools() {
        drop(entry.pool.drain_idle());
    }
    shared.wait_timer.stop();
    let _ = std::fs::remove_file(&control_path);
    info!("qcp stopped");
    let _ = stopped.send(()).await;
}

/// One client connection, from its first byte to its login; then the engine drives it
/// (`guard` goes with it, and is dropped when its session ends).
async fn serve_client(
    shared: Arc<Shared>,
    engine: Arc<engine::Engine>,
    socket: Socket,
    peer: Peer,
    guard: async_std::channel::Sender<()>,
) {
    let span =
        info_span!("client", %peer, user = tracing::field::Empty, database = tracing::field::Empty);
    let client_span = span.clone();
    async move {
        info!("client connected");
        let limit = shared.config().limits.max_client_connections;
        // A login in progress counts as a client (it is one, a moment from now), so a flood
        // of slow logins cannot take qcp past the limit. A client is counted twice only
        // while its greeting is being written: at the limit, that errs on refusing.
        let logging_in = LoggingIn::new(&shared.stats);
        if shared.clients.len() + logging_in.others() >= limit {
            Shared::count(&shared.stats.refused);
            shared.stats.login_ended(LoginOutcome::TooMany);
            shared.stats.error_sent(sqlstate::TOO_MANY_CONNECTIONS);
            warn!(limit, "refused client: max_client_connections reached");
            let error = PgError::fatal(sqlstate::TOO_MANY_CONNECTIONS, "sorry, too many clients already")
                .with_hint("raise limits.max_client_connections in qcp's config");
            let _ = write_all(&socket, &error.to_bytes()).await;
            return;
        }
        // No arena memory and no login slot until the first packet is whole: a client that
        // trickles it, or stops half way, costs only a small buffer within a shared budget
        // (boxed: an established client's task keeps no room for it).
        let login_timeout = shared.config().timeouts.client_login;
        let read = Box::pin(read_first_packet(&socket, shared.limits().startup, &shared.pre_login));
        let first = match timeout(login_timeout, read).await {
            Ok(Ok(FirstPacket::Ready(first))) => first,
            Ok(Ok(FirstPacket::OverBudget)) => {
                Shared::count(&shared.stats.refused);
                shared.stats.login_ended(LoginOutcome::TooMany);
                shared.stats.error_sent(sqlstate::TOO_MANY_CONNECTIONS);
                warn!("refused client: too many half-sent start-up packets");
                let error = too_many_logins();
                let _ = write_all(&socket, &error.to_bytes()).await;
                return;
            }
            // Stopped in the middle of its first packet for timeouts.client_login: closed
            // without a word, as PostgreSQL closes at its authentication_timeout.
            Err(_) => {
                shared.stats.login_ended(LoginOutcome::Protocol);
                info!("client did not send its start-up packet within timeouts.client_login");
                return;
            }
            // Gone: nobody to tell.
            Ok(Ok(FirstPacket::Closed)) | Ok(Err(_)) => return,
        };
        // A login holds a chunk until it ends: at most a quarter of the arena goes to logins,
        // so a crowd of clients that never finish logging in cannot starve established ones.
        let query_wait = shared.config().timeouts.query_wait;
        let Ok(login_slot) = timeout(query_wait, shared.login_slots.acquire_arc()).await else {
            Shared::count(&shared.stats.refused);
            shared.stats.login_ended(LoginOutcome::TooMany);
            shared.stats.error_sent(sqlstate::TOO_MANY_CONNECTIONS);
            warn!("refused client: too many logins in progress");
            let error = too_many_logins();
            let _ = write_all(&socket, &error.to_bytes()).await;
            return;
        };
        let Ok(mut inbox) = Inbox::acquire(&shared.arena, Priority::New, shared.config().timeouts.query_wait).await else {
            Shared::count(&shared.stats.arena_timeouts);
            warn!("refused client: arena exhausted");
            let error = login::arena_exhausted();
            shared.stats.login_ended(LoginOutcome::Other);
            shared.stats.error_sent(error.code);
            let _ = write_all(&socket, &error.to_bytes()).await;
            return;
        };
        if inbox.prefill(first.bytes()).is_err() {
            let error = login::startup_too_large(first.bytes().len());
            shared.stats.login_ended(LoginOutcome::Protocol);
            shared.stats.error_sent(error.code);
            let _ = write_all(&socket, &error.to_bytes()).await;
            return;
        }
        drop(first);
        let started = Instant::now();
        // Boxed: the login's state is large and only lives during the login, while this
        // task lives as long as the client; keeping it inline would cost every idle client.
        let mut stream = Stream::plain(socket);
        let login = Box::pin(login::start(&shared, &mut stream, &peer, inbox));
        let opening = match timeout(login_timeout, login).await {
            Ok(result) => result,
            Err(_) => Err(login_too_slow().into()),
        };
        // The login is over (its chunk, if it logged in, is the session's now).
        drop(login_slot);
        drop(logging_in);
        match &opening {
            Ok(login::Opening::Cancel { .. }) => {}
            Ok(_) => shared.stats.login_ended(LoginOutcome::Ok),
            Err(refusal) => {
                shared.stats.login_ended(shared::login_outcome(refusal));
                shared.stats.refusal_sent(refusal);
            }
        }
        match opening {
            // Boxed, like the login: a cancel's state is large, and an idle client's task
            // would otherwise keep room for it.
            Ok(login::Opening::Cancel { pid, secret }) => Box::pin(cancel::handle(&shared, pid, &secret)).await,
            Ok(login::Opening::Console(console)) => Box::pin(console::serve(&shared, &mut stream, *console)).await,
            // login::start recorded the user and database in this span.
            Ok(login::Opening::Client(login)) => engine.adopt(engine::Adopted {
                stream,
                login,
                guard,
                span: client_span,
            }),
            // Nobody to tell and nothing wrong on qcp's side (psql does this to ask for a
            // password, probes do it all the time): not worth a warning.
            Err(Refusal::Silent) => info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "client left during login"
            ),
            // PostgreSQL only logs these (port scanners, clients that give up at once).
            Err(Refusal::Hangup(reason)) => {
                Shared::count(&shared.stats.refused);
                info!(reason, "closed a client's connection without a reply");
            }
            Err(refusal) => {
                Shared::count(&shared.stats.refused);
                warn!(elapsed_ms = started.elapsed().as_millis() as u64, reason = %refusal, "refused client");
                if let Some(message) = refusal.message() {
                    let _ = timeout(Duration::from_secs(1), stream.write_all(&message)).await;
                    stream.goodbye(&[]);
                }
            }
        }
    }
    .instrument(span)
    .await
}

/// The refusal of a login that took longer than `timeouts.client_login`.
fn login_too_slow() -> PgError {
    PgError::fatal(
        sqlstate::PROTOCOL_VIOLATION,
        "client did not complete its login in time",
    )
    .with_hint("raise timeouts.client_login in qcp's config")
}

/// The refusal of a login when logins in progress already hold their share of memory.
fn too_many_logins() -> PgError {
    PgError::fatal(sqlstate::TOO_MANY_CONNECTIONS, "too many clients are logging in at once")
        .with_hint("retry; if slow or unfinished logins crowd qcp, lower timeouts.client_login, or raise arena.chunks_count (logins may use a quarter of the arena)")
}

/// Counts a client as logging in for as long as it lives.
struct LoggingIn<'a> {
    stats: &'a shared::Stats,
    /// Logins in progress when this one began (itself not included).
    others: usize,
}

impl<'a> LoggingIn<'a> {
    fn new(stats: &'a shared::Stats) -> Self {
        let others = stats
            .logging_in
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        LoggingIn {
            stats,
            others: usize::try_from(others).unwrap_or(usize::MAX),
        }
    }

    /// Other logins in progress when this one began.
    fn others(&self) -> usize {
        self.others
    }
}

impl Drop for LoggingIn<'_> {
    fn drop(&mut self) {
        self.stats
            .logging_in
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Sizes async-std's thread pool to `worker_threads` (the first call in a process wins; the
/// `ASYNC_STD_THREAD_COUNT` environment variable still takes precedence, as in async-std).
fn set_worker_threads(threads: usize) {
    async_global_executor::init_with_config(
        async_global_executor::GlobalExecutorConfig::default()
            .with_env_var("ASYNC_STD_THREAD_COUNT")
            .with_min_threads(threads)
            .with_max_threads(threads)
            .with_thread_name_fn(|| "qcp-worker".to_owned()),
    );
}

/// Closes server connections idle longer than `timeouts.server_idle` or older than
/// `timeouts.server_lifetime`, once a second.
async fn reap_idle_servers(shared: Arc<Shared>) {
    while !shared.is_shutting_down() {
        io::sleep(Duration::from_secs(1)).await;
        let now = Instant::now();
        for entry in shared.pools() {
            let expired = entry.pool.reap(
                now,
                shared.config().timeouts.server_idle,
                shared.config().timeouts.server_lifetime,
            );
            for conn in expired {
                conn.close();
            }
        }
    }
}
