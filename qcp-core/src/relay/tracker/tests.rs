//! Request/answer scenarios, written as the byte tags each side sends (see docs/protocol.md,
//! "Requests and their answers").

use super::*;

/// Feeds `client` tags, then `server` tags (with `Z` followed by its status char), and
/// returns the tracker.
fn run(tracker: &mut Tracker, client: &str, server: &str) {
    for tag in client.bytes() {
        tracker.client_message(Tag(tag)).expect("within limits");
    }
    let mut bytes = server.bytes();
    while let Some(tag) = bytes.next() {
        let status = if tag == b'Z' { bytes.next() } else { None };
        tracker.server_message(Tag(tag), status);
    }
}

fn tracker() -> Tracker {
    Tracker::new()
}

#[test]
fn simple_query_is_idle_after_its_ready_for_query() {
    let mut t = tracker();
    run(&mut t, "Q", "");
    assert!(!t.is_idle());
    run(&mut t, "", "TDDC");
    assert!(!t.is_idle(), "results are not the end");
    run(&mut t, "", "ZI");
    assert!(t.is_idle());
}

#[test]
fn two_pipelined_queries_release_only_after_the_second() {
    let mut t = tracker();
    run(&mut t, "QQ", "TDCZI");
    assert!(
        !t.is_idle(),
        "scenario 1: the first ReadyForQuery(I) is not the end"
    );
    run(&mut t, "", "TDCZI");
    assert!(t.is_idle());
}

#[test]
fn three_pipelined_extended_batches() {
    let mut t = tracker();
    run(
        &mut t,
        "PBDES PBDES PBDES".replace(' ', "").as_str(),
        "12TDCZI12TDCZI",
    );
    assert!(!t.is_idle(), "scenario 2: two of three batches answered");
    run(&mut t, "", "12TDCZI");
    assert!(t.is_idle());
}

#[test]
fn error_mid_pipeline_skips_to_the_next_sync_only() {
    let mut t = tracker();
    // Batch 1 fails at Bind; batch 2 was already sent.
    run(&mut t, "PBESPBES", "1E");
    assert_eq!(
        t.pending(),
        5,
        "Bind and Execute of batch 1 dropped, its Sync kept"
    );
    run(&mut t, "", "ZI");
    assert!(!t.is_idle(), "scenario 3: batch 2 still outstanding");
    run(&mut t, "", "12CZI");
    assert!(t.is_idle());
}

#[test]
fn error_before_the_client_sent_its_sync() {
    let mut t = tracker();
    // Execute fails, the client flushes, waits, then sends more and finally Sync.
    run(&mut t, "PBEH", "12E");
    assert!(!t.is_idle(), "scenario 4: the server waits for Sync");
    // The server discards these; they must not be expected.
    run(&mut t, "BE", "");
    run(&mut t, "S", "");
    assert_eq!(t.pending(), 1);
    run(&mut t, "", "ZI");
    assert!(t.is_idle());
}

#[test]
fn flush_without_sync_keeps_the_connection() {
    let mut t = tracker();
    run(&mut t, "PDH", "1tn");
    assert_eq!(t.pending(), 0, "every reply has arrived...");
    assert!(
        !t.is_idle(),
        "scenario 5: ...but the unnamed statement lives here until Sync"
    );
    run(&mut t, "BE", "2C");
    assert!(
        !t.is_idle(),
        "scenario 6: the implicit transaction is open until Sync"
    );
    run(&mut t, "S", "ZI");
    assert!(t.is_idle());
}

#[test]
fn explicit_transaction_stays_pinned_until_commit() {
    let mut t = tracker();
    run(&mut t, "Q", "CZT");
    assert!(!t.is_idle(), "scenario 7: inside BEGIN");
    run(&mut t, "Q", "CZT");
    assert!(!t.is_idle());
    run(&mut t, "Q", "CZI");
    assert!(t.is_idle());
}

#[test]
fn failed_transaction_stays_pinned_until_rollback() {
    let mut t = tracker();
    run(&mut t, "Q", "CZT");
    run(&mut t, "Q", "EZE");
    assert!(!t.is_idle(), "scenario 8: failed transaction block");
    assert_eq!(t.status(), TransactionStatus::Failed);
    run(&mut t, "Q", "CZI");
    assert!(t.is_idle());
}

#[test]
fn simple_copy_in() {
    let mut t = tracker();
    run(&mut t, "Q", "G");
    assert!(!t.is_idle());
    run(&mut t, "dddc", "CZI");
    assert!(t.is_idle(), "scenario 12");
}

#[test]
fn simple_copy_in_failed_while_the_client_streams() {
    let mut t = tracker();
    run(&mut t, "Q", "G");
    run(&mut t, "dd", "EZI");
    assert!(
        !t.is_idle(),
        "scenario 13: the client still owes its CopyDone"
    );
    assert!(t.client_in_copy());
    run(&mut t, "ddc", "");
    assert!(t.is_idle(), "the late copy tail expects no answer");
    assert_eq!(t.pending(), 0);
}

#[test]
fn extended_copy_with_sync_right_after_execute() {
    let mut t = tracker();
    // libpq: Parse/Bind/Describe/Execute/Sync, then the data, CopyDone and another Sync.
    run(&mut t, "PBDES", "12nG");
    run(&mut t, "ddc", "");
    run(&mut t, "S", "");
    run(&mut t, "", "C");
    assert!(!t.is_idle());
    run(&mut t, "", "ZI");
    assert!(
        t.is_idle(),
        "scenario 14: one ReadyForQuery for the Sync after CopyDone"
    );
    assert_eq!(t.pending(), 0);
}

#[test]
fn extended_copy_keeps_the_backend_until_a_sync_after_copy_done() {
    let mut t = tracker();
    // The early Sync is ignored by the server in copy mode: the COPY's rows stay in an open
    // implicit transaction until the next Sync.
    run(&mut t, "PBES", "12G");
    run(&mut t, "dcH", "C");
    assert!(!t.is_idle(), "the server waits for a Sync after CopyDone");
    run(&mut t, "S", "ZI");
    assert!(t.is_idle());
}

#[test]
fn extended_copy_pipelined_before_any_answer() {
    let mut t = tracker();
    run(&mut t, "PBESddcS", "");
    run(&mut t, "", "12GC");
    assert!(!t.is_idle());
    run(&mut t, "", "ZI");
    assert!(t.is_idle());
}

#[test]
fn extended_copy_failing_midway() {
    let mut t = tracker();
    run(&mut t, "PBES", "12G");
    run(&mut t, "dd", "E");
    assert!(!t.is_idle());
    run(&mut t, "dcS", "ZI");
    assert!(t.is_idle());
    assert_eq!(t.pending(), 0);
}

#[test]
fn copy_out() {
    let mut t = tracker();
    run(&mut t, "Q", "Hddd");
    assert!(!t.is_idle());
    run(&mut t, "", "cCZI");
    assert!(t.is_idle(), "scenario 15");
}

#[test]
fn function_call() {
    let mut t = tracker();
    run(&mut t, "F", "V");
    assert!(!t.is_idle());
    run(&mut t, "", "ZI");
    assert!(t.is_idle(), "scenario 16");
}

#[test]
fn error_at_sync_keeps_its_ready_for_query() {
    let mut t = tracker();
    // A deferred constraint fails when Sync commits the implicit transaction.
    run(&mut t, "PBES", "12C");
    run(&mut t, "", "E");
    assert_eq!(t.pending(), 1);
    run(&mut t, "", "ZI");
    assert!(t.is_idle());
}

#[test]
fn error_in_a_query_does_not_skip_later_queries() {
    let mut t = tracker();
    run(&mut t, "QQ", "EZI");
    assert!(!t.is_idle());
    run(&mut t, "", "CZI");
    assert!(t.is_idle());
}

#[test]
fn asynchronous_messages_answer_nothing() {
    let mut t = tracker();
    run(&mut t, "Q", "NSA");
    assert_eq!(t.pending(), 1);
    run(&mut t, "", "ZI");
    run(&mut t, "", "NSA");
    assert!(t.is_idle());
}

#[test]
fn describe_statement_then_portal() {
    let mut t = tracker();
    run(&mut t, "PDSBDES", "1tTZI");
    assert!(!t.is_idle());
    run(&mut t, "", "2TDDCZI");
    assert!(t.is_idle());
}

#[test]
fn portal_suspended_answers_execute() {
    let mut t = tracker();
    run(&mut t, "PBEES", "12DsDCZI");
    assert!(t.is_idle());
}

#[test]
fn lone_sync() {
    let mut t = tracker();
    run(&mut t, "S", "");
    assert!(!t.is_idle());
    run(&mut t, "", "ZI");
    assert!(t.is_idle());
}

#[test]
fn copy_both_pins_for_good() {
    let mut t = tracker();
    run(&mut t, "Q", "WZI");
    assert!(!t.is_idle());
}

#[test]
fn too_many_pending_is_refused() {
    let mut t = tracker();
    for _ in 0..MAX_PENDING {
        t.client_message(Tag(b'S')).unwrap();
    }
    assert_eq!(t.client_message(Tag(b'S')), Err(TooManyPending));
}

#[test]
fn hooked_requests_are_reported_answered_failed_or_skipped_in_order() {
    let mut t = tracker();
    assert_eq!(t.hooked_message(Tag::PARSE), Ok(true));
    t.client_message(Tag::BIND).unwrap();
    assert_eq!(t.hooked_message(Tag::CLOSE), Ok(true));
    t.client_message(Tag::SYNC).unwrap();
    assert!(t.head_hooked());
    assert_eq!(
        t.server_message(Tag::PARSE_COMPLETE, None),
        Hooked {
            answered: Some(Answer::Done),
            dropped: 0
        }
    );
    assert!(!t.head_hooked(), "the Bind is next");
    // The Bind fails: the hooked Close after it is skipped by the server.
    assert_eq!(
        t.server_message(Tag::ERROR_RESPONSE, None),
        Hooked {
            answered: None,
            dropped: 1
        }
    );
    assert_eq!(
        t.server_message(Tag::READY_FOR_QUERY, Some(b'I')),
        Hooked::default()
    );
    assert!(t.is_idle());
    assert_eq!(t.batch(), 1);
}

#[test]
fn a_failed_hooked_request_is_reported_before_the_ones_it_skips() {
    let mut t = tracker();
    t.hooked_message(Tag::DESCRIBE).unwrap();
    t.hooked_message(Tag::BIND).unwrap();
    t.client_message(Tag::SYNC).unwrap();
    assert_eq!(
        t.server_message(Tag::ERROR_RESPONSE, None),
        Hooked {
            answered: Some(Answer::Failed),
            dropped: 1
        }
    );
    // While the server skips to the Sync, a new hooked message is not queued.
    let mut u = tracker();
    u.client_message(Tag::EXECUTE).unwrap();
    u.server_message(Tag::ERROR_RESPONSE, None);
    assert!(u.skipping());
    assert_eq!(u.hooked_message(Tag::PARSE), Ok(false));
    u.client_message(Tag::SYNC).unwrap();
    u.server_message(Tag::READY_FOR_QUERY, Some(b'I'));
    assert!(u.is_idle());
}
