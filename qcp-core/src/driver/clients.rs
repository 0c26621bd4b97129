//! Connected clients: their cancel keys, the server connection a cancel must reach, and the
//! wakers that let a shutdown reach every client task.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::task::AtomicWaker;
use rand::Rng;

/// Where a cancel request for a client must go: the backend its query runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelTarget {
    /// The server's address.
    pub address: SocketAddr,
    /// The backend's process id...
    pub pid: i32,
    /// ...and cancel secret.
    pub secret: Vec<u8>,
}

/// One connected client, as seen by cancel requests and shutdown.
#[derive(Debug)]
pub struct ClientHandle {
    /// The process id qcp gave the client in its BackendKeyData.
    pub pid: i32,
    /// The cancel secret qcp gave the client.
    pub secret: Vec<u8>,
    target: Mutex<Option<CancelTarget>>,
    /// Woken when the client task must look at shared state (shutdown).
    pub waker: AtomicWaker,
    /// Set by a cancel request for a client that is waiting for a server connection.
    cancel_requested: AtomicBool,
}

impl ClientHandle {
    /// The backend a cancel should reach now, if the client holds one.
    pub fn target(&self) -> Option<CancelTarget> {
        self.lock().clone()
    }

    /// Records the backend the client is linked to (or `None` when it gives it back).
    pub fn set_target(&self, target: Option<CancelTarget>) {
        *self.lock() = target;
    }

    /// Marks a cancel for a client that holds no backend, and wakes its task.
    pub fn request_cancel(&self) {
        self.cancel_requested.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    /// Takes a pending cancel request, if any.
    pub fn take_cancel(&self) -> bool {
        self.cancel_requested.swap(false, Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, Option<CancelTarget>> {
        self.target
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Every connected client, by the process id qcp gave it.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: Mutex<HashMap<i32, Arc<ClientHandle>>>,
}

impl ClientRegistry {
    /// Registers a client under a fresh random process id with a random secret of
    /// `secret_len` bytes (4 for protocol 3.0, up to 256 for 3.2).
    pub fn register(&self, secret_len: usize) -> Arc<ClientHandle> {
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
            pid,
            secret,
            target: Mutex::new(None),
            waker: AtomicWaker::new(),
            cancel_requested: AtomicBool::new(false),
        });
        clients.insert(pid, Arc::clone(&handle));
        handle
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
