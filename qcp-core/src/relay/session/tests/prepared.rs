//! Smart mode's named prepared statements: renamed on the way to the server, prepared again
//! on a backend that lacks them (reply hidden), answered by qcp where no server is needed.

use qcp_codec::TransactionStatus::Idle;
use qcp_codec::{encode, Header, Tag, HEADER_LEN};

use super::harness::{cat, done, error_code, msg, query, ready, tags, Harness, Seen};

pub(super) fn parse(name: &str, sql: &str) -> Vec<u8> {
    msg(|o| encode::parse(o, name, sql, &[]).unwrap())
}

pub(super) fn bind(statement: &str) -> Vec<u8> {
    msg(|o| encode::bind(o, "", statement, &[], &[], &[]).unwrap())
}

pub(super) fn execute() -> Vec<u8> {
    msg(|o| encode::execute(o, "", 0).unwrap())
}

pub(super) fn sync() -> Vec<u8> {
    msg(encode::sync)
}

/// The statement names of the Parse and Bind messages in `bytes`, in order.
pub(super) fn statement_names(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = bytes;
    while let Ok(Some(header)) = Header::parse(rest) {
        let body = &rest[HEADER_LEN..header.frame_len()];
        let mut fields = body.split(|&b| b == 0);
        let name = match header.tag {
            Tag::PARSE => fields.next(),
            Tag::BIND => fields.nth(1),
            _ => None,
        };
        if let Some(name) = name {
            names.push(String::from_utf8_lossy(name).into_owned());
        }
        rest = &rest[header.frame_len()..];
    }
    names
}

/// Prepares `s1` on backend 1 and runs it once; leaves the session idle.
fn prepared_once(h: &mut Harness) {
    h.client(&cat(&[&parse("s1", "SELECT 1"), &sync()]));
    let sent = h.take_server();
    assert_eq!(tags(&sent), ['P', 'S']);
    assert_eq!(
        statement_names(&sent),
        ["qcp_1"],
        "renamed to its internal name"
    );
    h.server(&cat(&[&msg(encode::parse_complete), &ready(Idle)]));
    assert_eq!(tags(&h.take_client()), ['1', 'Z']);
    assert_eq!(h.linked(), None);
}

#[test]
fn a_named_parse_is_renamed_and_its_answer_reaches_the_client() {
    let mut h = Harness::smart();
    prepared_once(&mut h);
    h.client(&cat(&[&bind("s1"), &execute(), &sync()]));
    let sent = h.take_server();
    assert_eq!(tags(&sent), ['B', 'E', 'S'], "backend 1 has it already");
    assert_eq!(statement_names(&sent), ["qcp_1"]);
}

#[test]
fn a_backend_without_the_statement_gets_it_prepared_first_and_the_reply_is_hidden() {
    let mut h = Harness::new(true, 2, 4096, 16);
    prepared_once(&mut h);
    // Another client holds backend 1 now: this client's Bind goes to backend 2.
    let busy = h.pool.pop().unwrap();
    assert_eq!(busy.io, 1);
    h.client(&cat(&[&bind("s1"), &execute(), &sync()]));
    assert_eq!(h.linked(), Some(2));
    let sent = h.take_server();
    assert_eq!(tags(&sent), ['P', 'B', 'E', 'S']);
    assert_eq!(statement_names(&sent), ["qcp_1", "qcp_1"]);
    h.server(&cat(&[
        &msg(encode::parse_complete),
        &msg(encode::bind_complete),
        &done("SELECT 1", Idle),
    ]));
    assert_eq!(
        tags(&h.take_client()),
        ['2', 'C', 'Z'],
        "the ParseComplete of qcp's own Parse is not the client's"
    );
    h.pool.push(busy);
}

#[test]
fn a_parse_of_a_known_text_followed_by_sync_is_answered_without_a_server() {
    let mut h = Harness::smart();
    prepared_once(&mut h);
    h.client(&cat(&[&parse("s2", "SELECT 1"), &sync()]));
    assert_eq!(tags(&h.take_client()), ['1', 'Z']);
    assert!(h.take_server().is_empty());
    assert_eq!(
        h.seen,
        [Seen::Linked(1), Seen::Released(1)],
        "no link for the second Parse"
    );
}

#[test]
fn deallocate_of_a_protocol_statement_is_answered_by_qcp() {
    let mut h = Harness::smart();
    prepared_once(&mut h);
    h.client(&query("DEALLOCATE s1"));
    let answer = h.take_client();
    assert_eq!(tags(&answer), ['C', 'Z']);
    assert!(h.take_server().is_empty());
    // The name is free again: a Bind of it is refused as PostgreSQL refuses it.
    h.client(&cat(&[&bind("s1"), &execute(), &sync()]));
    let sent = h.take_server();
    assert_eq!(
        tags(&sent),
        ['D', 'E', 'S'],
        "a stand-in the server fails in-band"
    );
    h.server(&cat(&[
        &msg(|o| {
            encode::error_response(
                o,
                &[(b'S', b"ERROR"), (b'C', b"26000"), (b'M', b"qcp_0 missing")],
            )
            .unwrap()
        }),
        &ready(Idle),
    ]));
    let answer = h.take_client();
    assert_eq!(tags(&answer), ['E', 'Z']);
    assert_eq!(error_code(&answer).as_deref(), Some("26000"));
    assert!(
        String::from_utf8_lossy(&answer).contains("\"s1\""),
        "the error names the client's statement"
    );
}

#[test]
fn a_parse_of_a_name_in_use_gets_42p05_in_band() {
    let mut h = Harness::smart();
    prepared_once(&mut h);
    h.client(&cat(&[&parse("s1", "SELECT 2"), &sync()]));
    let sent = h.take_server();
    // The sentinel statement is prepared, then the client's text under the sentinel's name,
    // which the server refuses (and skips to Sync) exactly as it would the client's Parse.
    assert_eq!(tags(&sent), ['P', 'P', 'S']);
    assert_eq!(statement_names(&sent), ["qcp_sentinel", "qcp_sentinel"]);
    h.server(&cat(&[
        &msg(encode::parse_complete),
        &msg(|o| {
            encode::error_response(
                o,
                &[
                    (b'S', b"ERROR"),
                    (b'C', b"42P05"),
                    (b'M', b"prepared statement \"qcp_sentinel\" already exists"),
                ],
            )
            .unwrap()
        }),
        &ready(Idle),
    ]));
    let answer = h.take_client();
    assert_eq!(
        tags(&answer),
        ['E', 'Z'],
        "qcp's own Parse answer is hidden"
    );
    assert_eq!(error_code(&answer).as_deref(), Some("42P05"));
    assert!(String::from_utf8_lossy(&answer).contains("\"s1\""));
}

#[test]
fn session_mode_passes_statement_names_untouched() {
    let mut h = Harness::session_mode();
    let request = cat(&[&parse("s1", "SELECT 1"), &bind("s1"), &execute(), &sync()]);
    h.client(&request);
    assert_eq!(h.take_server(), request);
}

#[test]
fn a_parse_larger_than_a_chunk_is_gathered_and_renamed() {
    let mut h = Harness::new(true, 1, 128, 8);
    let sql = format!("SELECT '{}'", "z".repeat(500));
    h.client(&cat(&[&parse("big", &sql), &sync()]));
    let sent = h.take_server();
    assert_eq!(tags(&sent), ['P', 'S']);
    assert_eq!(statement_names(&sent), ["qcp_1"]);
    assert!(String::from_utf8_lossy(&sent).contains(&sql));
}
