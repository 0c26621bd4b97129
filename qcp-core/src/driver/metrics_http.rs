//! `GET /metrics` for Prometheus, over plain HTTP/1.x, on a thread of its own (`qcp-metrics`).
//!
//! One blocking thread answers one connection at a time: a scrape comes every few seconds and
//! is short, so there is no pool of threads to run out of and no async runtime. httparse reads
//! the request head; the answers are complete responses with `Content-Length` and
//! `Connection: close`. A connection gets [`REQUEST_DEADLINE`] in all to send its request head
//! (a client that trickles bytes cannot hold the thread longer), at most [`MAX_REQUEST_HEAD`]
//! bytes of it; garbage gets 400, a slow client 408, and the thread goes on with the next
//! connection. Nothing here runs on the hot path: the render closure runs once per scrape.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

/// What `GET /metrics` answers: called once per scrape, on the `qcp-metrics` thread.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// The `Content-Type` of a `/metrics` answer (the Prometheus text format, 0.0.4).
pub const CONTENT_TYPE: &str = crate::metrics::CONTENT_TYPE;

/// Time a connection has, from its accept, to send its whole request head.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// Largest request head read (a scrape's is a few hundred bytes); beyond it, 431.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Time for writing an answer to a client that does not read it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// After answering, time to wait for the client to close (see [`close_gently`]).
const LINGER: Duration = Duration::from_millis(250);

/// Pause after a failed accept (e.g. out of file descriptors), so the thread does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Headers read in a request head; more get 431.
const MAX_HEADERS: usize = 64;

/// The limits of one server (tests shorten the deadline).
#[derive(Clone, Copy, Debug)]
struct Limits {
    request_deadline: Duration,
    write_timeout: Duration,
}

/// The running `/metrics` endpoint. [`MetricsServer::stop`] ends it; dropping it asks the
/// thread to end without waiting for it.
#[derive(Debug)]
#[must_use = "dropping the MetricsServer stops it"]
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Serves `GET /metrics` (and `HEAD`) on `listener`, bound by the caller, from a new thread
/// named `qcp-metrics`. `render` runs once per scrape; if it panics the scrape gets 500 and
/// the endpoint lives on. Other paths get 404, other methods on `/metrics` 405.
pub fn serve(listener: TcpListener, render: Render) -> io::Result<MetricsServer> {
    serve_with(
        listener,
        render,
        Limits {
            request_deadline: REQUEST_DEADLINE,
            write_timeout: WRITE_TIMEOUT,
        },
    )
}

fn serve_with(listener: TcpListener, render: Render, limits: Limits) -> io::Result<MetricsServer> {
    let local_addr = listener.local_addr()?;
    // The caller may have bound it non-blocking; this thread blocks in accept.
    listener.set_nonblocking(false)?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("qcp-metrics".into())
        .spawn(move || accept_loop(&listener, render.as_ref(), limits, &thread_stop))?;
    Ok(MetricsServer {
        local_addr,
        stop,
        thread: Some(thread),
    })
}

impl MetricsServer {
    /// The address it listens on (useful when it was bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits for the thread to end (at most [`REQUEST_DEADLINE`] and a
    /// write if it is answering a client). The listening socket is closed when it returns.
    pub fn stop(mut self) {
        let thread = self.thread.take();
        if self.request_stop() {
            if let Some(thread) = thread {
                if thread.join().is_err() {
                    warn!("the metrics thread had panicked");
                }
            }
        }
    }

    /// Sets the stop flag and wakes the thread out of `accept` with a connection of our own.
    /// False if it was already set, or if the thread could not be woken (it then ends at its
    /// next connection).
    fn request_stop(&self) -> bool {
        if self.stop.swap(true, Ordering::AcqRel) {
            return false;
        }
        let mut wake = self.local_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        match TcpStream::connect_timeout(&wake, Duration::from_secs(1)) {
            Ok(_) => true,
            Err(error) => {
                warn!(%error, address = %wake, "could not wake the metrics thread to stop it");
                false
            }
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.request_stop();
    }
}

fn accept_loop(
    listener: &TcpListener,
    render: &(dyn Fn() -> String + Send + Sync),
    limits: Limits,
    stop: &AtomicBool,
) {
    // One buffer for the life of the thread.
    let mut head = vec![0u8; MAX_REQUEST_HEAD];
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Acquire) {
            debug!("metrics endpoint stopped");
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                if let Err(error) = answer(stream, &mut head, render, limits) {
                    debug!(%peer, %error, "metrics: connection ended badly");
                }
            }
            Err(error) => match error.kind() {
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => {}
                _ => {
                    warn!(%error, "metrics: accept failed");
                    std::thread::sleep(ACCEPT_BACKOFF);
                }
            },
        }
    }
}

/// What to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reply {
    Metrics { with_body: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
    Timeout,
    TooLarge,
}

/// Reads one request head and answers it; the connection is closed afterwards.
fn answer(
    mut stream: TcpStream,
    head: &mut [u8],
    render: &(dyn Fn() -> String + Send + Sync),
    limits: Limits,
) -> io::Result<()> {
    stream.set_write_timeout(Some(limits.write_timeout))?;
    // Accepted sockets may inherit O_NONBLOCK on some systems; this thread blocks.
    stream.set_nonblocking(false)?;
    let Some(reply) = read_request(&mut stream, head, limits)? else {
        // The client left before sending a whole request: nobody to answer.
        return Ok(());
    };
    match reply {
        Reply::Metrics { with_body } => {
            let body = std::panic::catch_unwind(std::panic::AssertUnwindSafe(render));
            match body {
                Ok(body) => respond(&mut stream, "200 OK", CONTENT_TYPE, "", &body, with_body)?,
                Err(_) => {
                    warn!("metrics: rendering panicked; the scrape got 500");
                    plain(&mut stream, "500 Internal Server Error", "")?;
                }
            }
        }
        Reply::NotFound => plain(&mut stream, "404 Not Found", "")?,
        Reply::MethodNotAllowed => plain(
            &mut stream,
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n",
        )?,
        Reply::BadRequest => plain(&mut stream, "400 Bad Request", "")?,
        Reply::Timeout => plain(&mut stream, "408 Request Timeout", "")?,
        Reply::TooLarge => plain(&mut stream, "431 Request Header Fields Too Large", "")?,
    }
    close_gently(&mut stream, head);
    Ok(())
}

/// Reads until the request head is complete, wrong, too large or late. `None` when the
/// client closed first.
fn read_request(
    stream: &mut TcpStream,
    head: &mut [u8],
    limits: Limits,
) -> io::Result<Option<Reply>> {
    let deadline = Instant::now() + limits.request_deadline;
    let mut filled = 0usize;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Some(Reply::Timeout));
        }
        stream.set_read_timeout(Some(left))?;
        let Some(free) = head.get_mut(filled..).filter(|free| !free.is_empty()) else {
            return Ok(Some(Reply::TooLarge));
        };
        match stream.read(free) {
            Ok(0) => return Ok(None),
            Ok(n) => filled = filled.saturating_add(n),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(Some(Reply::Timeout))
            }
            Err(error) => return Err(error),
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(head.get(..filled).unwrap_or_default()) {
            Ok(httparse::Status::Complete(_)) => {
                return Ok(Some(route(request.method, request.path)))
            }
            Ok(httparse::Status::Partial) => continue,
            Err(httparse::Error::TooManyHeaders) => return Ok(Some(Reply::TooLarge)),
            Err(_) => return Ok(Some(Reply::BadRequest)),
        }
    }
}

fn route(method: Option<&str>, path: Option<&str>) -> Reply {
    let path = path.unwrap_or_default();
    let path = path.split_once('?').map_or(path, |(path, _query)| path);
    if path != "/metrics" {
        return Reply::NotFound;
    }
    match method {
        Some("GET") => Reply::Metrics { with_body: true },
        Some("HEAD") => Reply::Metrics { with_body: false },
        _ => Reply::MethodNotAllowed,
    }
}

/// A short answer whose body is its status line's reason.
fn plain(stream: &mut TcpStream, status: &str, extra_headers: &str) -> io::Result<()> {
    let reason = status
        .split_once(' ')
        .map_or(status, |(_code, reason)| reason);
    let body = format!("{reason}\n");
    respond(
        stream,
        status,
        "text/plain; charset=utf-8",
        extra_headers,
        &body,
        true,
    )
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    extra_headers: &str,
    body: &str,
    with_body: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra_headers}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

/// Ends our side and reads what the client still sends until it closes (briefly): closing a
/// socket with unread bytes makes the kernel send a reset, which can destroy the answer
/// before the client has read it (a request with a body, or garbage after the head).
fn close_gently(stream: &mut TcpStream, scratch: &mut [u8]) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut drained = 0usize;
    while drained < 64 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained = drained.saturating_add(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    const BODY: &str = "# HELP x_total A test counter.\n# TYPE x_total counter\nx_total 1\n";

    struct Answer {
        status: String,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// Sends `request` as is and reads the whole answer.
    fn exchange(addr: SocketAddr, request: &[u8]) -> Answer {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request).unwrap();
        read_answer(&mut stream)
    }

    fn read_answer(stream: &mut TcpStream) -> Answer {
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().to_owned();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        Answer {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    fn get(addr: SocketAddr, path: &str) -> Answer {
        exchange(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: qcp\r\nUser-Agent: test\r\n\r\n").as_bytes(),
        )
    }

    fn start(limits: Limits) -> (MetricsServer, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let render: Render = Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            BODY.to_owned()
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        (serve_with(listener, render, limits).unwrap(), calls)
    }

    fn quick() -> Limits {
        Limits {
            request_deadline: Duration::from_millis(300),
            write_timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn get_metrics_answers_the_rendered_text() {
        let (server, calls) = start(quick());
        let answer = get(server.local_addr(), "/metrics");
        assert_eq!(answer.status, "HTTP/1.1 200 OK");
        assert_eq!(
            answer.header("Content-Type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        assert_eq!(
            answer.header("Content-Length"),
            Some(BODY.len().to_string().as_str())
        );
        assert_eq!(answer.header("Connection"), Some("close"));
        assert_eq!(answer.body, BODY);
        // A query string is ignored; HEAD gets the head only.
        assert_eq!(get(server.local_addr(), "/metrics?x=1").body, BODY);
        let head = exchange(server.local_addr(), b"HEAD /metrics HTTP/1.0\r\n\r\n");
        assert_eq!(head.status, "HTTP/1.1 200 OK");
        assert_eq!(
            head.header("Content-Length"),
            Some(BODY.len().to_string().as_str())
        );
        assert_eq!(head.body, "");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "one render per scrape");
        server.stop();
    }

    #[test]
    fn other_paths_and_methods_are_refused() {
        let (server, calls) = start(quick());
        let addr = server.local_addr();
        let answer = get(addr, "/");
        assert_eq!(answer.status, "HTTP/1.1 404 Not Found");
        assert_eq!(get(addr, "/metrics/x").status, "HTTP/1.1 404 Not Found");
        let post = exchange(
            addr,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        );
        assert_eq!(post.status, "HTTP/1.1 405 Method Not Allowed");
        assert_eq!(post.header("Allow"), Some("GET, HEAD"));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(get(addr, "/metrics").body, BODY);
        server.stop();
    }

    #[test]
    fn garbage_gets_400_and_the_server_lives_on() {
        let (server, _) = start(quick());
        let addr = server.local_addr();
        let tls_hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n";
        assert_eq!(exchange(addr, tls_hello).status, "HTTP/1.1 400 Bad Request");
        assert_eq!(
            exchange(addr, b"GET /metrics HTTP/9.9\r\n\r\n").status,
            "HTTP/1.1 400 Bad Request"
        );
        // Too long a head, then too many headers.
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_REQUEST_HEAD));
        assert_eq!(
            exchange(addr, &long).status,
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        let many = format!("GET /metrics HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(100));
        assert_eq!(
            exchange(addr, many.as_bytes()).status,
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        // A client that connects and leaves at once.
        drop(TcpStream::connect(addr).unwrap());
        let answer = get(addr, "/metrics");
        assert_eq!(answer.status, "HTTP/1.1 200 OK");
        assert_eq!(answer.body, BODY);
        server.stop();
    }

    #[test]
    fn slow_clients_time_out_and_do_not_block_the_endpoint_for_long() {
        let limits = quick();
        let (server, _) = start(limits);
        let addr = server.local_addr();

        // Silent: sends nothing, gets 408 after the deadline.
        let mut silent = TcpStream::connect(addr).unwrap();
        silent
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let started = Instant::now();
        // Queued behind the silent one, then served.
        let answer = get(addr, "/metrics");
        assert_eq!(answer.body, BODY);
        assert_eq!(
            read_answer(&mut silent).status,
            "HTTP/1.1 408 Request Timeout"
        );
        assert!(started.elapsed() < limits.request_deadline * 10);

        // Trickling: a byte every 50 ms, a head that never ends. The deadline is for the
        // whole head, not for each read: the 408 comes while the client is still sending.
        let mut trickle = TcpStream::connect(addr).unwrap();
        trickle
            .write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
            .unwrap();
        trickle.set_nonblocking(true).unwrap();
        let started = Instant::now();
        let mut answered = false;
        while started.elapsed() < Duration::from_secs(3) {
            if trickle.peek(&mut [0u8; 1]).is_ok() {
                answered = true;
                break;
            }
            if trickle.write_all(b"a").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            answered,
            "the server kept waiting for a client that trickles"
        );
        trickle.set_nonblocking(false).unwrap();
        trickle
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(
            read_answer(&mut trickle).status,
            "HTTP/1.1 408 Request Timeout"
        );
        assert_eq!(get(addr, "/metrics").status, "HTTP/1.1 200 OK");
        server.stop();
    }

    #[test]
    fn a_panicking_render_gets_500_and_the_server_lives_on() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let render: Render = Arc::new(move || {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("first scrape fails");
            }
            BODY.to_owned()
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = serve_with(listener, render, quick()).unwrap();
        let addr = server.local_addr();
        assert_eq!(
            get(addr, "/metrics").status,
            "HTTP/1.1 500 Internal Server Error"
        );
        assert_eq!(get(addr, "/metrics").body, BODY);
        server.stop();
    }

    #[test]
    fn the_thread_is_named_and_stop_closes_the_listener() {
        let seen = Arc::new(std::sync::Mutex::new(None));
        let name = Arc::clone(&seen);
        let render: Render = Arc::new(move || {
            *name.lock().unwrap() = std::thread::current().name().map(str::to_owned);
            BODY.to_owned()
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = serve(listener, render).unwrap();
        let addr = server.local_addr();
        assert_eq!(get(addr, "/metrics").body, BODY);
        assert_eq!(seen.lock().unwrap().as_deref(), Some("qcp-metrics"));
        server.stop();
        assert_eq!(
            TcpStream::connect(addr).unwrap_err().kind(),
            io::ErrorKind::ConnectionRefused
        );
    }
}
