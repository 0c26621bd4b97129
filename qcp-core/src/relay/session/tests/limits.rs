//! Limits and hostile input: chunks smaller than the messages, one byte per read or write,
//! an exhausted arena, bad headers.

use qcp_codec::TransactionStatus::Idle;
use qcp_codec::{encode, Tag};

use super::harness::{cat, done, msg, query, Harness, Seen};
use crate::relay::session::Peer;

#[test]
fn a_query_larger_than_a_chunk_streams_through() {
    let mut h = Harness::new(true, 1, 64, 4);
    let sql = format!("SELECT '{}'", "x".repeat(1000));
    h.client(&query(&sql));
    assert_eq!(h.take_server(), query(&sql));
    let row = msg(|o| encode::data_row(o, &[Some("y".repeat(2000).as_bytes())]).unwrap());
    let answer = cat(&[&row, &done("SELECT 1", Idle)]);
    h.server(&answer);
    assert_eq!(h.take_client(), answer);
    assert_eq!(h.seen, [Seen::Linked(1), Seen::Released(1)]);
    assert_eq!(h.chunks_held(), 0);
}

#[test]
fn one_byte_at_a_time_changes_nothing() {
    let mut h = Harness::smart();
    h.io_limit = 1;
    let request = cat(&[&query("BEGIN"), &query("SELECT 1"), &query("COMMIT")]);
    h.client(&request);
    assert_eq!(h.take_server(), request);
    let answer = cat(&[
        &done("BEGIN", qcp_codec::TransactionStatus::InTransaction),
        &done("SELECT 1", qcp_codec::TransactionStatus::InTransaction),
        &done("COMMIT", Idle),
    ]);
    h.server(&answer);
    assert_eq!(h.take_client(), answer);
    assert_eq!(h.seen, [Seen::Linked(1), Seen::Released(1)]);
}

#[test]
fn an_exhausted_arena_makes_the_client_wait_for_a_chunk() {
    let mut h = Harness::new(true, 1, 256, 1);
    let held = h.arena.try_acquire(crate::arena::Priority::Linked).unwrap();
    h.client(&query("SELECT 1"));
    assert_eq!(h.seen, [Seen::NeedChunk(Peer::Client)]);
    // The driver waits for the arena and hands the chunk over.
    drop(held);
    let chunk = h.arena.try_acquire(h.session.priority()).unwrap();
    h.session.give_chunk(Peer::Client, chunk);
    h.run();
    assert_eq!(h.take_server(), query("SELECT 1"));
}

#[test]
fn a_header_with_a_bad_length_is_a_protocol_violation() {
    let mut h = Harness::smart();
    h.client(&[Tag::QUERY.0, 0, 0, 0, 2]);
    assert_eq!(h.seen, [Seen::ClientError("08P01")]);
}

#[test]
fn a_server_header_with_a_bad_length_ends_the_session() {
    let mut h = Harness::smart();
    h.client(&query("SELECT 1"));
    h.server(&[b'D', 0, 0, 0, 1]);
    assert_eq!(h.seen, [Seen::Linked(1), Seen::ServerError]);
}
