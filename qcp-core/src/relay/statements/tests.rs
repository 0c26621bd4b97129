//! What qcp knows about statements on clients and backends, step by step.

use super::*;

fn def(sql: &str) -> Vec<u8> {
    let mut d = sql.as_bytes().to_vec();
    d.extend_from_slice(&[0, 0, 0]);
    d
}

#[test]
fn the_same_text_is_one_statement_and_a_dropped_one_is_not_reused() {
    let registry = Registry::default();
    let a = registry.intern(&def("SELECT 1"));
    let b = registry.intern(&def("SELECT 1"));
    let c = registry.intern(&def("SELECT 2"));
    assert!(Arc::ptr_eq(&a, &b));
    assert_ne!(a.id, c.id);
    assert_eq!(a.name(), format!("qcp_{}", a.id).as_bytes());
    assert_eq!(registry.live(), 2);
    let old = c.id;
    drop(c);
    assert!(registry.find(&def("SELECT 2")).is_none());
    let again = registry.intern(&def("SELECT 2"));
    assert_ne!(again.id, old, "ids are never reused");
    assert!(!again.accepted());
    again.mark_accepted();
    assert!(registry.find(&def("SELECT 2")).unwrap().accepted());
}

#[test]
fn a_parse_counts_in_its_batch_and_later_only_once_answered() {
    let registry = Registry::default();
    let s = registry.intern(&def("SELECT 1"));
    let mut client = ClientStatements::default();
    client.parsing(b"s1", Arc::clone(&s), 3);
    assert!(matches!(client.resolve(b"s1", 3), Resolved::Known(_)));
    assert!(matches!(client.resolve(b"s1", 4), Resolved::Undecided));
    client.parsed(b"s1", &s, true);
    assert!(matches!(client.resolve(b"s1", 4), Resolved::Known(_)));
}

#[test]
fn a_failed_parse_leaves_no_name() {
    let registry = Registry::default();
    let s = registry.intern(&def("SELEC 1"));
    let mut client = ClientStatements::default();
    client.parsing(b"s1", Arc::clone(&s), 0);
    client.parsed(b"s1", &s, false);
    assert!(matches!(client.resolve(b"s1", 1), Resolved::Unknown));
    assert!(client.is_empty());
}

#[test]
fn a_skipped_close_keeps_the_name_and_an_answered_one_drops_it() {
    let registry = Registry::default();
    let s = registry.intern(&def("SELECT 1"));
    let mut client = ClientStatements::default();
    client.bind(b"s1", Arc::clone(&s));
    client.closing(b"s1", 2);
    assert!(matches!(client.resolve(b"s1", 2), Resolved::Unknown));
    assert!(matches!(client.resolve(b"s1", 3), Resolved::Undecided));
    client.closed(b"s1", &s, false);
    assert!(matches!(client.resolve(b"s1", 3), Resolved::Known(_)));
    client.closing(b"s1", 3);
    client.closed(b"s1", &s, true);
    assert!(matches!(client.resolve(b"s1", 4), Resolved::Unknown));
}

#[test]
fn close_then_parse_in_one_skipped_batch_restores_the_old_statement() {
    let registry = Registry::default();
    let old = registry.intern(&def("SELECT 1"));
    let new = registry.intern(&def("SELECT 2"));
    let mut client = ClientStatements::default();
    client.bind(b"s1", Arc::clone(&old));
    client.closing(b"s1", 5);
    client.parsing(b"s1", Arc::clone(&new), 5);
    // The server skipped both (an error earlier in the batch).
    client.closed(b"s1", &old, false);
    client.parsed(b"s1", &new, false);
    match client.resolve(b"s1", 6) {
        Resolved::Known(s) => assert!(Arc::ptr_eq(&s, &old)),
        other => panic!("expected the old statement, got {other:?}"),
    }
}

#[test]
fn close_then_failed_parse_in_one_batch_leaves_nothing() {
    let registry = Registry::default();
    let old = registry.intern(&def("SELECT 1"));
    let bad = registry.intern(&def("SELEC 2"));
    let mut client = ClientStatements::default();
    client.bind(b"s1", Arc::clone(&old));
    client.closing(b"s1", 5);
    client.parsing(b"s1", Arc::clone(&bad), 5);
    client.closed(b"s1", &old, true);
    client.parsed(b"s1", &bad, false);
    assert!(matches!(client.resolve(b"s1", 6), Resolved::Unknown));
}

#[test]
fn server_use_prepares_once_per_batch_and_again_when_unsure() {
    let mut server = ServerStatements::new(10);
    assert_eq!(
        server.use_in(7, 0),
        Needs {
            close: false,
            parse: true
        }
    );
    assert_eq!(server.use_in(7, 0), Needs::default(), "same batch");
    assert_eq!(
        server.use_in(7, 1),
        Needs {
            close: true,
            parse: true
        },
        "the batch-0 Parse may still be skipped"
    );
    server.prepared(7, 0, true);
    assert_eq!(
        server.state(7),
        Some(State::Preparing(1)),
        "a later Parse is pending"
    );
    server.prepared(7, 1, true);
    assert_eq!(server.state(7), Some(State::Ready));
    assert_eq!(server.use_in(7, 2), Needs::default());
    server.invalidate(7);
    assert_eq!(server.state(7), Some(State::Unsure));
    assert!(server.use_in(7, 3).close);
    server.prepared(7, 3, false);
    assert_eq!(server.state(7), Some(State::Unsure));
}

#[test]
fn eviction_closes_the_least_recently_used_and_a_skipped_close_is_unsure() {
    let mut server = ServerStatements::new(2);
    for id in [1, 2] {
        server.use_in(id, 0);
        server.prepared(id, 0, true);
    }
    server.use_in(1, 1); // 1 is now more recent than 2
    server.use_in(3, 1);
    assert_eq!(server.evict(1, 3), Some(2));
    assert_eq!(server.evict(1, 3), None, "within the bound again");
    assert_eq!(server.state(2), Some(State::Closing(1)));
    // Used again in the same batch: its Close comes first, so only a Parse.
    assert_eq!(
        server.use_in(2, 1),
        Needs {
            close: false,
            parse: true
        }
    );
    let mut other = ServerStatements::new(1);
    other.use_in(1, 0);
    other.prepared(1, 0, true);
    other.use_in(2, 0);
    assert_eq!(other.evict(0, 2), Some(1));
    other.closed(1, 0, false);
    assert_eq!(other.state(1), Some(State::Unsure));
    other.closed(1, 0, true); // a stale answer changes nothing
    assert_eq!(other.state(1), Some(State::Unsure));
}

#[test]
fn forgetting_all_makes_every_statement_unsure() {
    let mut server = ServerStatements::new(5);
    server.use_in(1, 0);
    server.prepared(1, 0, true);
    server.forget_all();
    assert_eq!(server.state(1), Some(State::Unsure));
    assert!(server.use_in(1, 1).close);
}
