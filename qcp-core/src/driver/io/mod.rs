//! Sockets, timeouts and buffered message reading for the login phases.
//!
//! Sockets are async-io `Async<TcpStream>` or `Async<UnixStream>` (the reactor async-std
//! itself runs on): besides reads and writes they can wait for readiness *without a buffer*,
//! which is what lets an idle client hold no arena chunk. [`Socket`] is either; the engine
//! reads and writes the inner stream directly (one `match` per call, nothing else).

use std::future::Future;
use std::io;
use std::time::Duration;

use async_io::Timer;
use futures::future::{select, Either};

mod first_packet;
mod inbox;
mod listener;
mod socket;
mod stream;
mod tls;

pub use first_packet::{read_first_packet, FirstPacket, PreLoginBudget};
pub use inbox::{Inbox, ReadError};
pub use listener::Listener;
pub use socket::*;
pub use stream::Stream;

/// The operation did not finish in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut;

/// Runs `future` for at most `limit`; a zero limit means no limit.
pub async fn timeout<F: Future>(limit: Duration, future: F) -> Result<F::Output, TimedOut> {
    if limit.is_zero() {
        return Ok(future.await);
    }
    let future = std::pin::pin!(future);
    let timer = std::pin::pin!(Timer::after(limit));
    match select(future, timer).await {
        Either::Left((output, _)) => Ok(output),
        Either::Right(_) => Err(TimedOut),
    }
}

/// Sleeps for `duration`.
pub async fn sleep(duration: Duration) {
    Timer::after(duration).await;
}

/// Runs a connect attempt for at most `limit` (0 = no limit); running out is an I/O error.
pub(super) async fn within<T>(
    limit: Duration,
    attempt: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match timeout(limit, attempt).await {
        Ok(result) => result,
        Err(TimedOut) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {} s", limit.as_secs_f64()),
        )),
    }
}
