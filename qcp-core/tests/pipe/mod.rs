//! Byte-level helpers for the Smart-mode tests: a logged-in raw client (on top of
//! [`crate::support::Wire`]) whose answers are [`crate::raw::Msg`]s, a builder for pipelined
//! frontend messages (qcp_codec's encoders), and small readers for what PostgreSQL answers.
//!
//! Test files using it declare `mod support; mod raw; mod pipe;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use qcp_codec::encode;
use qcp_codec::frontend::Target;

use crate::raw::{ErrorFields, Msg};
use crate::support::{parse_data_row, Qcp, Wire, DATABASE, SCRAM_USER};

/// Bound for every wait on a condition in the Smart-mode tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// A raw client logged in through qcp (SCRAM test user, test database).
pub struct Conn {
    pub wire: Wire,
}

impl Conn {
    /// Logs in through `qcp` with extra start-up parameters.
    pub async fn open_with(qcp: &Qcp, extra: &[(&str, &str)]) -> Conn {
        Conn {
            wire: Wire::login_to(qcp, extra).await,
        }
    }

    /// Logs in through `qcp`.
    pub async fn open(qcp: &Qcp) -> Conn {
        Self::open_with(qcp, &[]).await
    }

    /// Logs in through `qcp` with a tiny socket receive buffer (a slow reader).
    pub async fn open_small_buffer(qcp: &Qcp) -> Conn {
        let params = [("user", SCRAM_USER.0), ("database", DATABASE)];
        let wire = Wire::login(qcp.addr, SCRAM_USER.1, &params, Some(4096))
            .await
            .unwrap_or_else(|e| panic!("login through qcp failed: {e:?}"));
        Conn { wire }
    }

    /// The (pid, secret) qcp gave this client for cancel requests.
    pub fn key(&self) -> (i32, Vec<u8>) {
        (self.wire.pid, self.wire.secret.clone())
    }

    /// Writes `bytes` in one write.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.wire.send(bytes).await;
    }

    /// The next message, or `None` once qcp closed the connection.
    pub async fn recv(&mut self) -> Option<Msg> {
        self.wire.recv().await.map(|(tag, body)| Msg { tag, body })
    }

    /// The next message; fails the test if the connection closed.
    pub async fn next(&mut self) -> Msg {
        self.recv()
            .await
            .expect("qcp closed the connection unexpectedly")
    }

    /// The next message if one arrives within `limit` (`Some(None)` = closed). Cancel-safe:
    /// nothing is lost when the limit passes.
    pub async fn next_within(&mut self, limit: Duration) -> Option<Option<Msg>> {
        tokio::time::timeout(limit, self.recv()).await.ok()
    }

    /// Asserts that nothing at all arrives for `window` (for "must still be waiting" checks,
    /// where there is no event to wait for).
    pub async fn assert_silent(&mut self, window: Duration, what: &str) {
        if let Some(got) = self.next_within(window).await {
            panic!("{what}: expected nothing for {window:?}, got {got:?}");
        }
    }

    /// Messages up to and including the next ReadyForQuery.
    pub async fn until_ready(&mut self) -> Vec<Msg> {
        let mut messages = Vec::new();
        loop {
            let msg = self.next().await;
            let done = msg.tag == b'Z';
            messages.push(msg);
            if done {
                return messages;
            }
            assert!(messages.len() < 2_000_000, "no ReadyForQuery in sight");
        }
    }

    /// Messages up to and including the message with tag `tag`.
    pub async fn until_tag(&mut self, tag: u8) -> Vec<Msg> {
        let mut messages = Vec::new();
        loop {
            let msg = self.next().await;
            let done = msg.tag == tag;
            messages.push(msg);
            if done {
                return messages;
            }
        }
    }

    /// Everything until qcp closes the connection.
    pub async fn until_closed(&mut self) -> Vec<Msg> {
        let mut messages = Vec::new();
        while let Some(msg) = self.recv().await {
            messages.push(msg);
            assert!(messages.len() < 100_000, "qcp keeps talking");
        }
        messages
    }

    /// Runs a simple query; returns its messages up to ReadyForQuery.
    pub async fn query(&mut self, sql: &str) -> Vec<Msg> {
        self.send(&Batch::new().query(sql).bytes).await;
        self.until_ready().await
    }

    /// Runs a simple query that must succeed and end idle; returns its rows.
    pub async fn rows(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        let messages = self.query(sql).await;
        assert_eq!(errors(&messages), vec![], "{sql}");
        assert_eq!(ready_status(&messages), b'I', "{sql}");
        rows(&messages)
    }

    /// First column of the first row of a query that must succeed.
    pub async fn value(&mut self, sql: &str) -> String {
        let rows = self.rows(sql).await;
        rows.first()
            .and_then(|r| r.first().cloned().flatten())
            .unwrap_or_else(|| panic!("{sql}: no value in {rows:?}"))
    }

    /// The backend the client's next transaction runs on.
    pub async fn backend_pid(&mut self) -> i32 {
        self.value("SELECT pg_backend_pid()")
            .await
            .parse()
            .expect("a pid")
    }
}

/// Frontend messages to send in one write.
#[derive(Default, Clone)]
pub struct Batch {
    pub bytes: Vec<u8>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn query(mut self, sql: &str) -> Batch {
        encode::query(&mut self.bytes, sql).expect("encode Query");
        self
    }

    pub fn parse(mut self, name: &str, sql: &str, types: &[u32]) -> Batch {
        encode::parse(&mut self.bytes, name, sql, types).expect("encode Parse");
        self
    }

    /// Bind with text parameters (`None` = NULL) and text results.
    pub fn bind(mut self, portal: &str, statement: &str, params: &[Option<&str>]) -> Batch {
        let values: Vec<Option<&[u8]>> = params.iter().map(|p| p.map(str::as_bytes)).collect();
        encode::bind(&mut self.bytes, portal, statement, &[], &values, &[]).expect("encode Bind");
        self
    }

    pub fn describe_statement(mut self, name: &str) -> Batch {
        encode::describe(&mut self.bytes, Target::Statement, name).expect("encode Describe");
        self
    }

    pub fn describe_portal(mut self, name: &str) -> Batch {
        encode::describe(&mut self.bytes, Target::Portal, name).expect("encode Describe");
        self
    }

    pub fn execute(mut self, portal: &str, max_rows: i32) -> Batch {
        encode::execute(&mut self.bytes, portal, max_rows).expect("encode Execute");
        self
    }

    pub fn close_portal(mut self, name: &str) -> Batch {
        encode::close(&mut self.bytes, Target::Portal, name).expect("encode Close");
        self
    }

    pub fn sync(mut self) -> Batch {
        encode::sync(&mut self.bytes);
        self
    }

    pub fn flush(mut self) -> Batch {
        encode::flush(&mut self.bytes);
        self
    }

    pub fn copy_data(mut self, data: &[u8]) -> Batch {
        encode::copy_data(&mut self.bytes, data).expect("encode CopyData");
        self
    }

    pub fn copy_done(mut self) -> Batch {
        encode::copy_done(&mut self.bytes);
        self
    }

    pub fn copy_fail(mut self, reason: &str) -> Batch {
        encode::copy_fail(&mut self.bytes, reason).expect("encode CopyFail");
        self
    }

    /// FunctionCall with text arguments and a text result.
    pub fn function_call(mut self, oid: u32, args: &[Option<&str>]) -> Batch {
        let values: Vec<Option<&[u8]>> = args.iter().map(|a| a.map(str::as_bytes)).collect();
        encode::function_call(&mut self.bytes, oid, &[], &values, 0).expect("encode FunctionCall");
        self
    }

    pub fn terminate(mut self) -> Batch {
        encode::terminate(&mut self.bytes);
        self
    }

    /// One unnamed Parse/Bind/Execute/Sync batch of `sql` with text parameters.
    pub fn extended(self, sql: &str, params: &[Option<&str>]) -> Batch {
        self.parse("", sql, &[])
            .bind("", "", params)
            .execute("", 0)
            .sync()
    }
}

/// Asynchronous messages (ParameterStatus, Notice, Notification) answer no request.
fn is_async(tag: u8) -> bool {
    matches!(tag, b'S' | b'N' | b'A')
}

/// The tags of `messages` as a string (asynchronous messages left out): "12DCZ".
pub fn tags(messages: &[Msg]) -> String {
    messages
        .iter()
        .filter(|m| !is_async(m.tag))
        .map(|m| m.tag as char)
        .collect()
}

/// Splits `messages` after each ReadyForQuery.
pub fn per_ready(messages: &[Msg]) -> Vec<Vec<Msg>> {
    let mut groups = vec![Vec::new()];
    for msg in messages {
        groups.last_mut().unwrap().push(msg.clone());
        if msg.tag == b'Z' {
            groups.push(Vec::new());
        }
    }
    if groups.last().is_some_and(Vec::is_empty) {
        groups.pop();
    }
    groups
}

/// The status byte of the last ReadyForQuery in `messages`.
pub fn ready_status(messages: &[Msg]) -> u8 {
    messages
        .iter()
        .rev()
        .find(|m| m.tag == b'Z')
        .map(|m| m.body[0])
        .unwrap_or_else(|| panic!("no ReadyForQuery in {messages:?}"))
}

/// Every DataRow's columns as text.
pub fn rows(messages: &[Msg]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter(|m| m.tag == b'D')
        .map(|m| parse_data_row(&m.body))
        .collect()
}

/// The first column of every DataRow.
pub fn first_column(messages: &[Msg]) -> Vec<String> {
    rows(messages)
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect()
}

/// CommandComplete tags ("SELECT 1", "COPY 3", ...).
pub fn command_tags(messages: &[Msg]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.tag == b'C')
        .map(|m| {
            let end = m.body.iter().position(|b| *b == 0).unwrap_or(m.body.len());
            String::from_utf8_lossy(&m.body[..end]).into_owned()
        })
        .collect()
}

/// Every ErrorResponse's fields.
pub fn errors(messages: &[Msg]) -> Vec<ErrorFields> {
    messages
        .iter()
        .filter(|m| m.tag == b'E')
        .map(Msg::error)
        .collect()
}

/// SQLSTATEs of every ErrorResponse.
pub fn error_codes(messages: &[Msg]) -> Vec<String> {
    errors(messages).into_iter().map(|e| e.code).collect()
}

/// The value of a FunctionCallResponse (`V`) as text.
pub fn function_result(messages: &[Msg]) -> Option<String> {
    let msg = messages
        .iter()
        .find(|m| m.tag == b'V')
        .unwrap_or_else(|| panic!("no FunctionCallResponse in {messages:?}"));
    let len = i32::from_be_bytes(msg.body[..4].try_into().unwrap());
    (len >= 0).then(|| String::from_utf8_lossy(&msg.body[4..4 + len as usize]).into_owned())
}

/// The latest ParameterStatus value for `name` among `messages`.
pub fn parameter_status(messages: &[Msg], name: &str) -> Option<String> {
    messages
        .iter()
        .filter(|m| m.tag == b'S')
        .filter_map(|m| {
            let mut parts = m.body.split(|b| *b == 0);
            let key = String::from_utf8_lossy(parts.next()?).into_owned();
            let value = String::from_utf8_lossy(parts.next()?).into_owned();
            (key == name).then_some(value)
        })
        .next_back()
}

// ------------------------------------------------------------------------------------------
// qcp's state.
// ------------------------------------------------------------------------------------------

/// Clients qcp reports holding a server connection.
pub fn active(qcp: &Qcp) -> u64 {
    qcp.status_view().active
}

/// Waits until `n` clients wait in line for the test pool.
pub async fn wait_queued(qcp: &Qcp, n: u64) {
    crate::support::wait_until(
        &format!("{n} client(s) wait for the test pool"),
        WAIT,
        || async { qcp.status_view().test_pool().2 == n },
    )
    .await;
}

/// Waits until no client holds a server connection.
pub async fn wait_all_released(qcp: &Qcp) {
    crate::support::wait_until("every server connection is released", WAIT, || async {
        qcp.status_view().active == 0
    })
    .await;
}

// ------------------------------------------------------------------------------------------
// The server's side, seen by the superuser straight from PostgreSQL.
// ------------------------------------------------------------------------------------------

/// Waits until backend `pid` is busy in wait event `event` (e.g. "PgSleep").
pub async fn wait_running(admin: &tokio_postgres::Client, pid: i32, event: &str) {
    crate::support::wait_until(
        &format!("backend {pid} is active in {event}"),
        WAIT,
        || async {
            crate::support::backend_state(admin, pid)
                .await
                .is_some_and(|(state, wait)| state == "active" && wait == event)
        },
    )
    .await;
}

/// Waits until backend `pid` sits idle (outside any transaction) or is gone.
pub async fn wait_idle_or_gone(admin: &tokio_postgres::Client, pid: i32) {
    crate::support::wait_until(&format!("backend {pid} is idle or gone"), WAIT, || async {
        crate::support::backend_state(admin, pid)
            .await
            .is_none_or(|(state, _)| state == "idle")
    })
    .await;
}

/// Sends a CancelRequest for (`pid`, `secret`) to qcp and waits until qcp closes it.
pub async fn cancel(addr: SocketAddr, key: &(i32, Vec<u8>)) {
    crate::support::send_cancel(addr, key.0, &key.1).await;
}

// ------------------------------------------------------------------------------------------
// Named prepared statements.
// ------------------------------------------------------------------------------------------

impl Batch {
    /// Close('S', `name`).
    pub fn close_statement(mut self, name: &str) -> Batch {
        encode::close(&mut self.bytes, Target::Statement, name).expect("encode Close");
        self
    }
}

impl Conn {
    /// Sends `batch` (which must end with its only Sync or Query) and returns the answer up to
    /// ReadyForQuery.
    pub async fn exchange(&mut self, batch: Batch) -> Vec<Msg> {
        self.send(&batch.bytes).await;
        self.until_ready().await
    }
}

/// The parameter type OIDs of the ParameterDescription (`t`) among `messages`.
pub fn parameter_types(messages: &[Msg]) -> Vec<u32> {
    let msg = messages
        .iter()
        .find(|m| m.tag == b't')
        .unwrap_or_else(|| panic!("no ParameterDescription in {messages:?}"));
    let count = u16::from_be_bytes([msg.body[0], msg.body[1]]) as usize;
    (0..count)
        .map(|i| u32::from_be_bytes(msg.body[2 + 4 * i..6 + 4 * i].try_into().unwrap()))
        .collect()
}

/// The number of fields of the RowDescription (`T`) among `messages`.
pub fn row_fields(messages: &[Msg]) -> usize {
    let msg = messages
        .iter()
        .find(|m| m.tag == b'T')
        .unwrap_or_else(|| panic!("no RowDescription in {messages:?}"));
    u16::from_be_bytes([msg.body[0], msg.body[1]]) as usize
}
