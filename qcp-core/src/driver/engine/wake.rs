//! Wakers that bring a client back to its engine thread: the pool's grant, the arena's
//! chunk, a cancel or a shutdown calls `wake`, which queues the client's token in its
//! thread's inbox (and wakes that thread when the call comes from elsewhere).

use std::cell::Cell;
use std::sync::Arc;
use std::task::{Wake, Waker};

use super::Loop;

thread_local! {
    /// The index of the engine thread running on this OS thread, if any.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Marks this OS thread as engine thread `index`.
pub fn enter(index: usize) {
    CURRENT.with(|current| current.set(Some(index)));
}

/// True when called on engine thread `index` itself.
pub fn on_loop(index: usize) -> bool {
    CURRENT.with(|current| current.get() == Some(index))
}

/// Wakes one client of one engine thread.
struct TokenWaker {
    home: Arc<Loop>,
    token: usize,
}

impl Wake for TokenWaker {
    fn wake(self: Arc<Self>) {
        self.home.wake_token(self.token);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.home.wake_token(self.token);
    }
}

/// A waker for client `token` of `home` (made once per client).
pub fn for_client(home: &Arc<Loop>, token: usize) -> Waker {
    Waker::from(Arc::new(TokenWaker {
        home: Arc::clone(home),
        token,
    }))
}
