//! The release rule: a Smart-mode server connection goes back to the pool exactly when the
//! server is idle (ReadyForQuery `I`, nothing outstanding, nothing in flight).

use qcp_codec::encode;
use qcp_codec::frontend::Target;
use qcp_codec::TransactionStatus::{Idle, InTransaction};

use super::harness::{cat, done, msg, query, ready, tags, Harness, Seen};
use crate::relay::params::ParamSource;

#[test]
fn a_query_links_a_backend_and_releases_it_at_ready_for_query_idle() {
    let mut h = Harness::smart();
    h.client(&query("SELECT 1"));
    assert_eq!(h.seen, [Seen::Linked(1)]);
    assert_eq!(h.take_server(), query("SELECT 1"), "relayed as sent");
    let answer = done("SELECT 1", Idle);
    h.server(&answer);
    assert_eq!(h.take_client(), answer, "relayed as sent");
    assert_eq!(h.seen, [Seen::Linked(1), Seen::Released(1)]);
    assert_eq!(h.chunks_held(), 0, "an idle client holds no chunk");
}

#[test]
fn a_transaction_keeps_its_backend_until_commit() {
    let mut h = Harness::smart();
    h.client(&query("BEGIN"));
    h.server(&done("BEGIN", InTransaction));
    assert_eq!(h.linked(), Some(1), "inside a transaction");
    h.client(&query("SELECT 1"));
    h.server(&done("SELECT 1", InTransaction));
    assert_eq!(h.linked(), Some(1));
    h.client(&query("COMMIT"));
    assert_eq!(h.linked(), Some(1), "COMMIT not answered yet");
    h.server(&done("COMMIT", Idle));
    assert_eq!(h.linked(), None);
    assert_eq!(h.seen, [Seen::Linked(1), Seen::Released(1)]);
}

#[test]
fn pipelined_queries_release_only_after_the_last_answer() {
    let mut h = Harness::smart();
    h.client(&cat(&[&query("SELECT 1"), &query("SELECT 2")]));
    assert_eq!(tags(&h.take_server()), ['Q', 'Q'], "both in one write");
    h.server(&done("SELECT 1", Idle));
    assert_eq!(
        h.linked(),
        Some(1),
        "the second query is still owed an answer"
    );
    h.server(&done("SELECT 2", Idle));
    assert_eq!(h.linked(), None);
    assert_eq!(tags(&h.take_client()), ['C', 'Z', 'C', 'Z']);
}

#[test]
fn an_answer_split_into_pieces_releases_only_once_whole() {
    let mut h = Harness::smart();
    h.client(&query("SELECT 1"));
    let answer = done("SELECT 1", Idle);
    let (first, rest) = answer.split_at(answer.len() - 3);
    h.server(first);
    assert_eq!(h.linked(), Some(1), "ReadyForQuery not complete yet");
    h.server(rest);
    assert_eq!(h.linked(), None);
    assert_eq!(h.take_client(), answer);
}

#[test]
fn extended_protocol_until_sync_then_released() {
    let mut h = Harness::smart();
    let request = cat(&[
        &msg(|o| encode::parse(o, "", "SELECT 1", &[]).unwrap()),
        &msg(|o| encode::bind(o, "", "", &[], &[], &[]).unwrap()),
        &msg(|o| encode::execute(o, "", 0).unwrap()),
        &msg(encode::sync),
    ]);
    h.client(&request);
    assert_eq!(
        h.take_server(),
        request,
        "unnamed statements pass untouched"
    );
    let answer = cat(&[
        &msg(encode::parse_complete),
        &msg(encode::bind_complete),
        &done("SELECT 1", Idle),
    ]);
    h.server(&answer[..answer.len() - 6]);
    assert_eq!(h.linked(), Some(1), "Sync not answered yet");
    h.server(&answer[answer.len() - 6..]);
    assert_eq!(h.linked(), None);
    assert_eq!(h.take_client(), answer);
}

#[test]
fn flush_without_sync_keeps_the_backend() {
    let mut h = Harness::smart();
    h.client(&cat(&[
        &msg(|o| encode::parse(o, "", "SELECT 1", &[]).unwrap()),
        &msg(|o| encode::describe(o, Target::Statement, "").unwrap()),
        &msg(encode::flush),
    ]));
    h.server(&cat(&[
        &msg(encode::parse_complete),
        &msg(|o| encode::parameter_description(o, &[]).unwrap()),
        &msg(encode::no_data),
    ]));
    assert_eq!(
        h.linked(),
        Some(1),
        "the unnamed statement lives on this backend until Sync"
    );
    h.client(&msg(encode::sync));
    h.server(&ready(Idle));
    assert_eq!(h.linked(), None);
}

#[test]
fn copy_from_stdin_keeps_the_backend_until_the_copy_is_done() {
    let mut h = Harness::smart();
    h.client(&query("COPY t FROM STDIN"));
    h.server(&msg(|o| encode::copy_in_response(o, 0, &[0]).unwrap()));
    h.client(&msg(|o| encode::copy_data(o, b"1\n").unwrap()));
    assert_eq!(h.linked(), Some(1));
    h.client(&msg(encode::copy_done));
    assert_eq!(h.linked(), Some(1), "COPY not acknowledged yet");
    h.server(&done("COPY 1", Idle));
    assert_eq!(h.linked(), None);
    assert_eq!(tags(&h.take_server()), ['Q', 'd', 'c']);
}

#[test]
fn session_mode_keeps_the_backend_after_ready_for_query_idle() {
    let mut h = Harness::session_mode();
    h.client(&query("SELECT 1"));
    h.server(&done("SELECT 1", Idle));
    assert_eq!(h.linked(), Some(1));
    h.client(&query("SELECT 2"));
    h.server(&done("SELECT 2", Idle));
    assert_eq!(h.seen, [Seen::Linked(1)], "linked once, never released");
    assert!(h.session.link_is_clean());
}

#[test]
fn two_transactions_can_use_two_backends() {
    let mut h = Harness::new(true, 2, 4096, 16);
    h.client(&query("SELECT 1"));
    h.server(&done("SELECT 1", Idle));
    // Another client took backend 1 meanwhile: the next transaction gets backend 2.
    let taken = h.pool.pop().unwrap();
    h.client(&query("SELECT 2"));
    h.server(&done("SELECT 2", Idle));
    h.pool.push(taken);
    assert_eq!(
        h.seen,
        [
            Seen::Linked(1),
            Seen::Released(1),
            Seen::Linked(2),
            Seen::Released(2)
        ]
    );
}

#[test]
fn a_parameter_status_becomes_what_the_client_expects() {
    let mut h = Harness::smart();
    h.client(&query("SET TimeZone = 'UTC'"));
    h.server(&cat(&[
        &msg(|o| encode::parameter_status(o, "TimeZone", "UTC").unwrap()),
        &done("SET", Idle),
    ]));
    assert_eq!(h.session.wanted().get("TimeZone"), Some("UTC"));
    assert_eq!(h.pool[0].params.get("TimeZone"), Some("UTC"));
}

#[test]
fn a_server_error_before_a_close_is_remembered() {
    let mut h = Harness::smart();
    h.client(&query("SELECT pg_terminate_backend(pg_backend_pid())"));
    h.server(&msg(|o| {
        encode::error_response(o, &[(b'S', b"FATAL"), (b'C', b"57P01"), (b'M', b"bye")]).unwrap()
    }));
    h.server_closed = true;
    h.run();
    assert!(h.session.last_was_error());
    assert_eq!(h.seen.last(), Some(&Seen::ServerGone));
}

fn error(code: &[u8]) -> Vec<u8> {
    msg(|o| {
        encode::error_response(o, &[(b'S', b"ERROR"), (b'C', code), (b'M', b"failed")]).unwrap()
    })
}

#[test]
fn an_error_in_a_transaction_keeps_the_backend_until_rollback() {
    let mut h = Harness::smart();
    h.client(&query("BEGIN"));
    h.server(&done("BEGIN", InTransaction));
    h.client(&query("SELECT 1/0"));
    h.server(&cat(&[
        &error(b"22012"),
        &ready(qcp_codec::TransactionStatus::Failed),
    ]));
    assert_eq!(
        h.linked(),
        Some(1),
        "a failed transaction is still a transaction"
    );
    h.client(&query("ROLLBACK"));
    h.server(&done("ROLLBACK", Idle));
    assert_eq!(h.linked(), None);
}

#[test]
fn after_an_extended_error_the_server_skips_to_sync_and_the_backend_is_released_there() {
    let mut h = Harness::smart();
    h.client(&cat(&[
        &msg(|o| encode::parse(o, "", "SELECT 1/0", &[]).unwrap()),
        &msg(|o| encode::bind(o, "", "", &[], &[], &[]).unwrap()),
        &msg(|o| encode::execute(o, "", 0).unwrap()),
        &msg(encode::sync),
    ]));
    // The Parse fails: PostgreSQL answers nothing more until the Sync.
    h.server(&error(b"22012"));
    assert_eq!(
        h.linked(),
        Some(1),
        "the Sync is still owed its ReadyForQuery"
    );
    h.server(&ready(Idle));
    assert_eq!(h.linked(), None);
    assert_eq!(tags(&h.take_client()), ['E', 'Z']);
}

#[test]
fn copy_to_stdout_streams_and_releases_at_the_end() {
    let mut h = Harness::smart();
    h.client(&query("COPY t TO STDOUT"));
    h.server(&msg(|o| encode::copy_out_response(o, 0, &[0]).unwrap()));
    for row in 0..3 {
        h.server(&msg(|o| {
            encode::copy_data(o, format!("{row}\n").as_bytes()).unwrap()
        }));
        assert_eq!(h.linked(), Some(1));
    }
    h.server(&cat(&[&msg(encode::copy_done), &done("COPY 3", Idle)]));
    assert_eq!(h.linked(), None);
    assert_eq!(tags(&h.take_client()), ['H', 'd', 'd', 'd', 'c', 'C', 'Z']);
}

#[test]
fn a_copy_the_client_fails_ends_with_the_servers_error_and_a_release() {
    let mut h = Harness::smart();
    h.client(&query("COPY t FROM STDIN"));
    h.server(&msg(|o| encode::copy_in_response(o, 0, &[0]).unwrap()));
    h.client(&msg(|o| encode::copy_fail(o, "no more").unwrap()));
    assert_eq!(h.linked(), Some(1));
    h.server(&cat(&[&error(b"57014"), &ready(Idle)]));
    assert_eq!(h.linked(), None);
    assert_eq!(tags(&h.take_server()), ['Q', 'f']);
}

#[test]
fn a_notice_while_linked_reaches_the_client_without_changing_the_accounting() {
    let mut h = Harness::smart();
    h.client(&query("DO $$ BEGIN RAISE NOTICE 'hi'; END $$"));
    let notice = msg(|o| encode::notice_response(o, &[(b'S', b"NOTICE"), (b'M', b"hi")]).unwrap());
    h.server(&notice);
    assert_eq!(h.linked(), Some(1), "a notice answers nothing");
    h.server(&done("DO", Idle));
    assert_eq!(h.linked(), None);
    assert_eq!(tags(&h.take_client()), ['N', 'C', 'Z']);
}

#[test]
fn a_client_gone_mid_transaction_leaves_a_backend_that_is_not_clean() {
    let mut h = Harness::session_mode();
    h.client(&query("BEGIN"));
    h.server(&done("BEGIN", InTransaction));
    h.client_closed = true;
    h.run();
    assert_eq!(h.seen.last(), Some(&Seen::ClientGone));
    assert!(
        !h.session.link_is_clean(),
        "inside a transaction: closed, never reused"
    );
    assert!(
        !h.session.link_busy(),
        "nothing is running, no cancel needed"
    );
}
