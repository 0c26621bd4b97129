//! What happens while no server connection is linked: waiting, cancel, Terminate, the tail
//! of a failed COPY.

use qcp_codec::encode;
use qcp_codec::TransactionStatus::Idle;

use super::harness::{done, error_code, msg, query, tags, Harness, Seen};

#[test]
fn a_request_waits_when_every_backend_is_busy_and_runs_once_one_is_free() {
    let mut h = Harness::new(true, 0, 4096, 16);
    h.client(&query("SELECT 1"));
    assert_eq!(h.seen, [Seen::Waiting]);
    assert!(h.take_server().is_empty());
    h.backend_freed(7);
    assert_eq!(h.take_server(), query("SELECT 1"));
    h.server(&done("SELECT 1", Idle));
    assert_eq!(h.seen, [Seen::Waiting, Seen::Linked(7), Seen::Released(7)]);
}

#[test]
fn a_simple_query_cancelled_while_waiting_gets_57014_and_the_session_goes_on() {
    let mut h = Harness::new(true, 0, 4096, 16);
    h.client(&query("SELECT 1"));
    h.cancel_waiting();
    let answer = h.take_client();
    assert_eq!(error_code(&answer).as_deref(), Some("57014"));
    assert_eq!(tags(&answer), ['E', 'Z']);
    assert!(!h.ended);
    // The next request waits for a backend like any other.
    h.client(&query("SELECT 2"));
    assert_eq!(h.seen, [Seen::Waiting, Seen::Waiting]);
}

#[test]
fn an_extended_request_cancelled_while_waiting_skips_to_its_sync() {
    let mut h = Harness::new(true, 0, 4096, 16);
    h.client(&msg(|o| encode::parse(o, "", "SELECT 1", &[]).unwrap()));
    h.cancel_waiting();
    let error = h.take_client();
    assert_eq!(tags(&error), ['E'], "ReadyForQuery only at the Sync");
    h.client(&msg(|o| encode::bind(o, "", "", &[], &[], &[]).unwrap()));
    h.client(&msg(|o| encode::execute(o, "", 0).unwrap()));
    assert!(h.take_client().is_empty(), "dropped, as the server would");
    h.client(&msg(encode::sync));
    assert_eq!(tags(&h.take_client()), ['Z']);
    assert_eq!(h.seen, [Seen::Waiting], "nothing reached a server");
}

#[test]
fn terminate_ends_the_session_without_a_server() {
    let mut h = Harness::smart();
    h.client(&msg(encode::terminate));
    assert_eq!(h.seen, [Seen::ClientGone]);
}

#[test]
fn terminate_after_a_query_is_acted_on_once_the_query_is_sent() {
    let mut h = Harness::session_mode();
    let mut bytes = query("SELECT 1");
    encode::terminate(&mut bytes);
    h.client(&bytes);
    assert_eq!(h.take_server(), query("SELECT 1"));
    assert_eq!(h.seen, [Seen::Linked(1), Seen::ClientGone]);
    assert!(!h.session.link_is_clean(), "the query is still running");
    assert!(h.session.link_busy());
}

#[test]
fn the_tail_of_a_failed_copy_is_dropped_without_a_server() {
    let mut h = Harness::smart();
    h.client(&msg(|o| encode::copy_data(o, b"late row\n").unwrap()));
    h.client(&msg(encode::copy_done));
    assert!(h.seen.is_empty(), "no backend for a late COPY tail");
    assert!(h.take_client().is_empty());
    assert_eq!(h.chunks_held(), 0);
}

#[test]
fn a_client_that_closes_is_gone() {
    let mut h = Harness::smart();
    h.client_closed = true;
    h.run();
    assert_eq!(h.seen, [Seen::ClientGone]);
}
