//! The first packet of a connection, read before it gets any arena memory or a login slot.
//!
//! A client that connects and then sends its start-up packet slowly, or never finishes it,
//! would otherwise hold an arena chunk and one of the login slots until
//! `timeouts.client_login`; a crowd of them would keep everyone else from logging in. Here the
//! packet is read into a buffer of its own size (at most the start-up limit, 10,000 bytes),
//! growing only as bytes arrive; the buffers of packets larger than [`SMALL_PACKET`] together
//! stay within a byte budget (the [`PreLoginBudget`]), so a crowd costs at most the budget,
//! 1 KB per connection and its sockets.
//!
//! Only the first packet is read this way: a start-up packet, an SSLRequest or
//! GSSENCRequest, or a CancelRequest, all length-prefixed (with what little the client sent
//! right after it without waiting, which the login must see). A connection that starts with a
//! TLS record (direct TLS, first byte 0x16) hands over its first bytes at once: the TLS
//! handshake reads the rest.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::AsyncReadExt;

use super::socket::Socket;

/// The first byte of a TLS record carrying a handshake.
const TLS_HANDSHAKE: u8 = 0x16;

/// Packets up to this size (every real client's start-up packet) do not count against the
/// budget: they cost at most this much per connection, and connections are bounded by
/// `limits.max_client_connections`. So a crowd sending large packets slowly can spend the
/// budget, but never keep an ordinary client from logging in.
pub const SMALL_PACKET: u32 = 1024;

/// What came in.
pub enum FirstPacket<'a> {
    /// The bytes to start the login with: a whole packet, or the first bytes of something
    /// the login will refuse or hand to TLS (a bad length, a TLS record). They stay counted
    /// against the budget until dropped (once copied into the login's chunk).
    Ready(Held<'a>),
    /// The client closed before sending a whole packet.
    Closed,
    /// The budget for packets in progress is spent.
    OverBudget,
}

/// Bytes of first packets being read, across every connection, and the most there may be.
#[derive(Debug)]
pub struct PreLoginBudget {
    used: AtomicUsize,
    limit: usize,
}

impl PreLoginBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        PreLoginBudget {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Bytes held right now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, n: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = used.checked_add(n).filter(|&next| next <= self.limit) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Reads the first packet of `socket`, at most `max_len` bytes long (longer is left for
/// the login to refuse), its bytes counted against `budget` while they are held here.
pub async fn read_first_packet<'a>(
    socket: &Socket,
    max_len: u32,
    budget: &'a PreLoginBudget,
) -> std::io::Result<FirstPacket<'a>> {
    let mut held = Held {
        bytes: Vec::new(),
        counted: 0,
        counting: false,
        budget,
    };
    // The length (or a TLS record's first bytes): four bytes, read without a budget check
    // (they live on the stack until they are known to be a packet's start).
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        let n = (&mut &*socket).read(&mut head[got..]).await?;
        if n == 0 {
            return Ok(FirstPacket::Closed);
        }
        got += n;
        if head[0] == TLS_HANDSHAKE {
            held.bytes.extend_from_slice(&head[..got]);
            return Ok(FirstPacket::Ready(held));
        }
    }
    let len = u32::from_be_bytes(head);
    if !(8..=max_len).contains(&len) {
        held.bytes.extend_from_slice(&head);
        return Ok(FirstPacket::Ready(held));
    }
    held.counting = len > SMALL_PACKET;
    if !held.grow(&head) {
        return Ok(FirstPacket::OverBudget);
    }
    let len = len as usize;
    let mut scratch = [0u8; 512];
    while held.bytes.len() < len {
        let want = (len - held.bytes.len()).min(scratch.len());
        let n = (&mut &*socket).read(&mut scratch[..want]).await?;
        if n == 0 {
            return Ok(FirstPacket::Closed);
        }
        if !held.grow(&scratch[..n]) {
            return Ok(FirstPacket::OverBudget);
        }
    }
    // Whatever the client sent after the packet without waiting for an answer is taken
    // too (up to a small bound, the rest stays in the socket): the login must see it, to
    // refuse clear-text bytes sent after an SSLRequest before qcp answered it.
    let mut extra = [0u8; 256];
    if let Ok(n) = super::socket::try_read(socket, &mut extra) {
        if n > 0 && !held.grow(&extra[..n]) {
            return Ok(FirstPacket::OverBudget);
        }
    }
    Ok(FirstPacket::Ready(held))
}

/// Bytes read before the login, counted against the budget until dropped.
pub struct Held<'a> {
    bytes: Vec<u8>,
    /// How many of them the budget counts (a lone header it does not).
    counted: usize,
    /// Whether they count at all (a large packet's do, a small one's not).
    counting: bool,
    budget: &'a PreLoginBudget,
}

impl Held<'_> {
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn grow(&mut self, more: &[u8]) -> bool {
        if self.counting {
            if !self.budget.take(more.len()) {
                return false;
            }
            self.counted += more.len();
        }
        self.bytes.extend_from_slice(more);
        true
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.counted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = PreLoginBudget::new(10);
        assert!(budget.take(6));
        assert!(!budget.take(5), "over the limit");
        assert!(budget.take(4));
        budget.give_back(10);
        assert_eq!(budget.used(), 0);
        {
            let mut held = Held {
                bytes: Vec::new(),
                counted: 0,
                counting: true,
                budget: &budget,
            };
            assert!(held.grow(b"abcdefgh"));
            assert_eq!(budget.used(), 8);
            assert!(!held.grow(b"ijk"), "11 bytes would be over");
        }
        assert_eq!(budget.used(), 0, "dropped: given back");
    }
}
