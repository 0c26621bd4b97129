//! Connected clients: their cancel keys, the server connection a cancel must reach, and the
//! wakers that let a shutdown reach every client task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use std::time::{Duration, SystemTime};

use futures::channel::oneshot;
use futures::task::AtomicWaker;
use rand::Rng;

/// Where a cancel request for a client must go: the backend its query runs on. Made once per
/// server connection and shared (`Arc`) with each client that links to it, so linking copies
/// nothing.
#[derive(Debug)]
pub struct CancelTarget {
    /// Where the server connection was made (a TCP address or a Unix-domain socket).
    pub address: super::io::Remote,
    /// The backend's process id...
    pub pid: i32,
    /// ...and cancel secret.
    pub secret: Vec<u8>,
    /// Counts the cancels on their way to this backend.
    pub gate: CancelGate,
    /// What SHOW SERVERS says about the connection.
    pub info: ServerInfo,
}

/// What SHOW SERVERS shows of a server connection: fixed when it is opened, but for the
/// few figures updated when it changes hands (once per transaction at most, on a line only
/// the thread that holds the connection writes).
#[derive(Debug)]
pub struct ServerInfo {
    /// qcp's id for it.
    pub id: u64,
    /// The user it is logged in as, and the database.
    pub user: String,
    /// The database.
    pub database: String,
    /// qcp's end of the connection.
    pub local: (String, u16),
    /// When it was opened.
    pub connected: SystemTime,
    /// TLS version and cipher (empty in clear text).
    pub tls: String,
    /// When it was last linked to a client, µs since the instance started.
    pub linked_at: AtomicU64,
    /// Named statements prepared on it, as of when it was last given back.
    pub prepared: AtomicU32,
}

/// Cancels in flight towards one server connection. While one is on its way, the connection
/// must not be handed to another client: the cancel could land on that client's query.
#[derive(Debug, Default)]
pub struct CancelGate {
    state: Mutex<(usize, Vec<oneshot::Sender<()>>)>,
}

impl CancelGate {
    /// A cancel is being sent.
    pub fn enter(&self) {
        self.lock().0 += 1;
    }

    /// A cancel was delivered (or given up); wakes those waiting once none is left.
    pub fn leave(&self) {
        let waiters = {
            let mut state = self.lock();
            state.0 = state.0.saturating_sub(1);
            if state.0 > 0 {
                return;
            }
            std::mem::take(&mut state.1)
        };
        for waiter in waiters {
            let _ = waiter.send(());
        }
    }

    /// True when no cancel is in flight.
    pub fn is_idle(&self) -> bool {
        self.lock().0 == 0
    }

    /// Completes when no cancel is in flight (at once in the usual case), or after `limit`.
    pub async fn wait_idle(&self, limit: Duration) {
        let receiver = {
            let mut state = self.lock();
            if state.0 == 0 {
                return;
            }
            let (sender, receiver) = oneshot::channel();
            state.1.push(sender);
            receiver
        };
        let _ = super::io::timeout(limit, receiver).await;
    }

    fn lock(&self) -> MutexGuard<'_, (usize, Vec<oneshot::Sender<()>>)> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What SHOW CLIENTS shows of a client that does not change while it is connected.
#[derive(Debug)]
pub struct ClientInfo {
    /// The user it logged in as.
    pub user: String,
    /// The database it asked for.
    pub database: String,
    /// Its address and port (`unix`, 0 for a Unix-domain socket).
    pub peer: (String, u16),
    /// qcp's address and port it connected to.
    pub local: (String, u16),
    /// When it connected.
    pub connected: SystemTime,
    /// Its start-up `application_name`.
    pub application_name: String,
    /// TLS version and cipher (empty in clear text).
    pub tls: String,
}

/// One connected client, as seen by cancel requests, shutdown and the admin console.
#[derive(Debug)]
pub struct ClientHandle {
    /// qcp's id for the client (never reused while the process runs).
    pub id: u64,
    /// The process id qcp gave the client in its BackendKeyData.
    pub pid: i32,
    /// The cancel secret qcp gave the client.
    pub secret: Vec<u8>,
    target: Mutex<Option<Arc<CancelTarget>>>,
    /// Woken when the client task must look at shared state (shutdown).
    pub waker: AtomicWaker,
    /// Set by a cancel request for a client that is waiting for a server connection.
    cancel_requested: AtomicBool,
    /// The client is queued for a server connection (a cancel then answers it).
    waiting: AtomicBool,
    /// KILL or KILL_CLIENT: the client is to be closed at once.
    killed: AtomicBool,
    /// Who it is, for the console.
    pub info: ClientInfo,
    /// When it started waiting for a server connection, µs since the instance started.
    pub waiting_since: AtomicU64,
    /// When it last sent a request, µs since the instance started.
    pub request_at: AtomicU64,
    /// Its named prepared statements, as of its last transaction.
    pub prepared: AtomicU32,
}

impl ClientHandle {
    /// KILL: the client's task is woken and closes the client with 57P01, whatever it does.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    /// True once [`ClientHandle::kill`] was called.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// The backend a cancel should reach now, if the client holds one.
    pub fn target(&self) -> Option<Arc<CancelTarget>> {
        self.lock().clone()
    }

    /// Records the backend the client is linked to (or `None` when it gives it back). Once
    /// this returns `None`, no new cancel can start towards the old backend; those already
    /// started are counted in its [`CancelGate`].
    pub fn set_target(&self, target: Option<Arc<CancelTarget>>) {
        *self.lock() = target;
    }

    /// The backend to cancel, with the cancel already counted in its gate (the caller must
    /// call `gate.leave()` when done). Done under the same lock as [`Self::set_target`], so
    /// a client that gives its backend back either sees this cancel counted or prevents it.
    pub fn begin_cancel(&self) -> Option<Arc<CancelTarget>> {
        let target = self.lock();
        let target = target.as_ref()?;
        target.gate.enter();
        Some(Arc::clone(target))
    }

    /// A cancel for a client that holds no backend: if it is queued for one, its wait ends
    /// with 57014; if it is idle, the cancel is ignored, as PostgreSQL ignores a cancel for
    /// an idle backend.
    pub fn request_cancel(&self) -> bool {
        if !self.waiting.load(Ordering::SeqCst) {
            return false;
        }
        self.cancel_requested.store(true, Ordering::SeqCst);
        self.waker.wake();
        true
    }

    /// True while the client is queued for a server connection.
    pub fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Marks the client as queued for a server connection (or not any more); leaving the
    /// queue drops a cancel that came too late to matter.
    pub fn set_waiting(&self, waiting: bool) {
        self.waiting.store(waiting, Ordering::SeqCst);
        if !waiting {
            self.cancel_requested.store(false, Ordering::SeqCst);
        }
    }

    /// Takes a cancel that arrived for this (waiting) client, if one did.
    pub fn take_cancel(&self) -> bool {
        self.cancel_requested.swap(false, Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Arc<CancelTarget>>> {
        self.target
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Every connected client, by the process id qcp gave it.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: Mutex<HashMap<i32, Arc<ClientHandle>>>,
    /// The last id given to a client (or a server connection: one sequence for both, so
    /// SHOW CLIENTS and SHOW SERVERS never show the same id for two things).
    ids: AtomicU64,
}

impl ClientRegistry {
    /// Registers a client under a fresh random process id with a random secret of
    /// `secret_len` bytes (4 for protocol 3.0, up to 256 for 3.2).
    pub fn register(&self, secret_len: usize, info: ClientInfo) -> Arc<ClientHandle> {
        let mut rng = rand::thread_rng();
        let mut clients = self.lock();
        let pid = loop {
            // Positive, like a real process id (some tools treat the pid as signed).
            let pid = rng.gen_range(1..i32::MAX);
            if !clients.contains_key(&pid) {
                break pid;
            }
        };
        let mut secret = vec![0u8; secret_len];
        rng.fill(secret.as_mut_slice());
        let handle = Arc::new(ClientHandle {
            id: self.next_id(),
            pid,
            secret,
            target: Mutex::new(None),
            waker: AtomicWaker::new(),
            cancel_requested: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            info,
            waiting_since: AtomicU64::new(0),
            request_at: AtomicU64::new(0),
            prepared: AtomicU32::new(0),
        });
        clients.insert(pid, Arc::clone(&handle));
        handle
    }

    /// A fresh id for a client or a server connection.
    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    }

    /// Every connected client.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.lock().values().cloned().collect()
    }

    /// Removes a client.
    pub fn unregister(&self, pid: i32) {
        self.lock().remove(&pid);
    }

    /// The client with this process id, if its secret matches (constant-time comparison).
    pub fn find(&self, pid: i32, secret: &[u8]) -> Option<Arc<ClientHandle>> {
        let handle = self.lock().get(&pid).cloned()?;
        crate::auth::constant_time_eq(&handle.secret, secret).then_some(handle)
    }

    /// Wakes every client task (on shutdown).
    pub fn wake_all(&self) {
        for handle in self.lock().values() {
            handle.waker.wake();
        }
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no client is connected.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i32, Arc<ClientHandle>>> {
        self.clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
