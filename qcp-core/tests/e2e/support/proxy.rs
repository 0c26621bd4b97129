//! A TCP relay between qcp and the test PostgreSQL that counts what qcp sends: for tests
//! that must know how often qcp runs a statement of its own (a parameter sync, say), which
//! neither the client nor the server's views show. qcp must speak to it in clear text
//! (`tls: {mode: disable}`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The relay; it stops accepting when dropped (relayed connections end with their peers).
pub struct CountingProxy {
    pub addr: SocketAddr,
    seen: Arc<AtomicUsize>,
    accept: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Relays to `target`, counting occurrences of `needle` in what clients send.
    pub async fn start(target: SocketAddr, needle: &'static [u8]) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&seen);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(relay(client, target, needle, counter));
            }
        });
        CountingProxy { addr, seen, accept }
    }

    /// Occurrences of the needle so far. Every byte qcp wrote before it read an answer that
    /// came through the relay has been counted: the relay counts before forwarding.
    pub fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(
    client: TcpStream,
    target: SocketAddr,
    needle: &'static [u8],
    seen: Arc<AtomicUsize>,
) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        // The end of the previous read, so that a needle split between reads is found.
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut window = std::mem::take(&mut tail);
            window.extend_from_slice(&buf[..n]);
            let found = window
                .windows(needle.len())
                .filter(|w| *w == needle)
                .count();
            seen.fetch_add(found, Ordering::SeqCst);
            let keep = window.len().min(needle.len() - 1);
            tail = window[window.len() - keep..].to_vec();
            if to_server.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to_server.shutdown().await;
    };
    let down = async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    tokio::join!(up, down);
}
