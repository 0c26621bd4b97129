//! The relay engine: event-loop threads that drive every logged-in client.
//!
//! async-std's reactor registers sockets one-shot, so every wait for readiness re-arms the
//! socket with `epoll_ctl`, and each time a worker sleeps it adds a timer and an eventfd
//! round trip: about six system calls per transaction beyond the reads and writes. The
//! engine registers each socket once, edge-triggered (`mio`), keeps what the kernel said
//! about its readiness, and forgets it only when a read or write finds the socket empty or
//! full. A transaction then costs its reads and writes and, when the loop has nothing else
//! to do, one `epoll_wait`.
//!
//! async-std keeps what is not per transaction: accepting, logins, opening server
//! connections, parameter syncs, cancel requests, the pool's timers, control and shutdown.
//! A client comes here once logged in ([`Engine::adopt`]) and never goes back; a server
//! connection is registered with the thread of the first client that uses it and stays
//! registered while it idles in the pool, so its readiness says whether it spoke or closed
//! (no health check per checkout). Work goes between the two sides as [`Command`]s.

mod client;

/// A logged-in client on an engine thread (for SHOW MEM's sizes).
pub type ClientState = client::Client;
mod event_loop;
mod wake;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::os::fd::AsRawFd;

use super::io::Stream;
use super::login::LoggedIn;
use super::server::ServerConn;
use super::shared::Shared;
use super::sync::SyncError;
use crate::relay::params::ClientParams;
use client::LinkFailure;

/// A logged-in client handed to the engine.
pub struct Adopted {
    /// Its connection (the socket still registered, dormant, with async-std's reactor).
    pub stream: Stream,
    /// What its login left.
    pub login: Box<LoggedIn>,
    /// Dropped when the client's session ends (the shutdown waits for every one).
    pub guard: async_std::channel::Sender<()>,
    /// Its tracing span (peer, user, database).
    pub span: tracing::Span,
}

/// What the async side tells an engine thread.
pub enum Command {
    /// Drive this new client from now on.
    Adopt(Box<Adopted>),
    /// The server connection opened for client `token` (session `serial`), or why not.
    Opened {
        token: usize,
        serial: u64,
        result: Result<Box<ServerConn>, LinkFailure>,
    },
    /// The parameter sync of a connection for client `token` ended.
    Synced {
        token: usize,
        serial: u64,
        conn: Box<ServerConn>,
        wanted: Box<ClientParams>,
        result: Result<Vec<u8>, SyncError>,
    },
    /// A server connection registered with this thread was closed elsewhere: free its
    /// token.
    Forget(usize),
}

/// The part of an engine thread other threads reach: its registry, its waker and its inbox.
pub struct Loop {
    /// Which thread this is (server connections remember their home).
    pub index: usize,
    registry: Registry,
    waker: mio::Waker,
    inbox: Mutex<Inbox>,
}

/// What waits for an engine thread to pick it up.
#[derive(Default)]
struct Inbox {
    commands: Vec<Command>,
    /// Clients whose waker fired (a pool grant, an arena chunk, a cancel, a shutdown).
    woken: Vec<usize>,
}

/// Token of the loop's own waker.
const WAKER: Token = Token(usize::MAX);

impl Loop {
    /// Queues `command` and wakes the thread.
    pub fn send(&self, command: Command) {
        self.lock().commands.push(command);
        self.wake_thread();
    }

    /// Queues `command` without waking the thread (it is read at the next turn of the loop;
    /// for book-keeping that nothing waits on).
    pub fn post(&self, command: Command) {
        self.lock().commands.push(command);
    }

    fn wake_token(&self, token: usize) {
        self.lock().woken.push(token);
        // On the engine thread itself the inbox is read before the loop sleeps again.
        if !wake::on_loop(self.index) {
            self.wake_thread();
        }
    }

    fn wake_thread(&self) {
        if let Err(error) = self.waker.wake() {
            tracing::error!(%error, "cannot wake an engine thread");
        }
    }

    fn take_inbox(&self) -> Inbox {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `socket` with this thread, edge-triggered, for reading and writing.
    fn register(&self, socket: &impl AsRawFd, token: usize) -> std::io::Result<()> {
        let fd = socket.as_raw_fd();
        self.registry.register(
            &mut SourceFd(&fd),
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    /// Takes `socket` off this thread's registry.
    fn deregister(&self, socket: &impl AsRawFd) {
        let fd = socket.as_raw_fd();
        let _ = self.registry.deregister(&mut SourceFd(&fd));
    }
}

/// Where a server connection is registered: its home thread and token there.
pub struct Registration {
    /// The home thread.
    pub home: Arc<Loop>,
    /// Its token on that thread.
    pub token: usize,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Closing the socket takes it off the kernel's list; the thread's slot is freed when
        // it next looks at its inbox.
        self.home.post(Command::Forget(self.token));
    }
}

/// The engine threads of one instance.
pub struct Engine {
    loops: Vec<Arc<Loop>>,
    next: AtomicUsize,
}

impl Engine {
    /// Starts `threads` engine threads.
    pub fn start(shared: &Arc<Shared>, threads: usize) -> std::io::Result<Arc<Engine>> {
        let mut loops = Vec::new();
        for index in 0..threads.max(1) {
            let poll = mio::Poll::new()?;
            let waker = mio::Waker::new(poll.registry(), WAKER)?;
            let registry = poll.registry().try_clone()?;
            let shared_loop = Arc::new(Loop {
                index,
                registry,
                waker,
                inbox: Mutex::new(Inbox::default()),
            });
            let thread_loop = Arc::clone(&shared_loop);
            let thread_shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name(format!("qcp-relay-{index}"))
                .spawn(move || {
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        event_loop::run(poll, thread_loop, thread_shared)
                    }));
                    if outcome.is_err() {
                        // Its clients would hang with nobody to serve them: better that the
                        // service manager restarts qcp than that it lives on half dead.
                        tracing::error!("a relay thread panicked; qcp exits");
                        std::process::exit(70);
                    }
                })?;
            loops.push(shared_loop);
        }
        Ok(Arc::new(Engine {
            loops,
            next: AtomicUsize::new(0),
        }))
    }

    /// Hands a logged-in client to an engine thread (round robin).
    pub fn adopt(&self, adopted: Adopted) {
        let next = self.next.fetch_add(1, Ordering::Relaxed);
        if let Some(target) = self.loops.get(next % self.loops.len().max(1)) {
            target.send(Command::Adopt(Box::new(adopted)));
        }
    }
}
