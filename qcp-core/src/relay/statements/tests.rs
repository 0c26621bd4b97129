//! What qcp knows about statements on clients and backends, step by step.

use super::*;

/// The scope of a client that sets neither search_path nor role.
const SCOPE: &[u8] = b"-\0-\0";

fn def(sql: &str) -> Vec<u8> {
    let mut d = sql.as_bytes().to_vec();
    d.extend_from_slice(&[0, 0, 0]);
    d
}

#[test]
fn the_same_text_is_one_statement_and_a_dropped_one_is_not_reused() {
    let registry = Registry::default();
    let a = registry.intern(SCOPE, &def("SELECT 1"));
    let b = registry.intern(SCOPE, &def("SELECT 1"));
    let c = registry.intern(SCOPE, &def("SELECT 2"));
    assert!(Arc::ptr_eq(&a, &b));
    assert_ne!(a.id, c.id);
    assert_eq!(a.name(), format!("qcp_{}", a.id).as_bytes());
    assert_eq!(registry.live(), 2);
    let old = c.id;
    drop(c);
    assert!(registry.find(SCOPE, &def("SELECT 2")).is_none());
    let again = registry.intern(SCOPE, &def("SELECT 2"));
    assert_ne!(again.id, old, "ids are never reused");
    assert!(!again.accepted());
    again.mark_accepted();
    assert!(registry.find(SCOPE, &def("SELECT 2")).unwrap().accepted());
}

#[test]
fn a_parse_counts_in_its_batch_and_later_only_once_answered() {
    let registry = Registry::default();
    let s = registry.intern(SCOPE, &def("SELECT 1"));
    let mut client = ClientStatements::default();
    client.parsing(b"s1", Arc::clone(&s), 3);
    assert!(matches!(client.resolve(b"s1", 3), Resolved::Known(_)));
    assert!(matches!(client.resolve(b"s1", 4), Resolved::Undecided));
    client.answered(b"s1", true);
    assert!(matches!(client.resolve(b"s1", 4), Resolved::Known(_)));
}

#[test]
fn a_failed_parse_leaves_no_name() {
    let registry = Registry::default();
    let s = registry.intern(SCOPE, &def("SELEC 1"));
    let mut client = ClientStatements::default();
    client.parsing(b"s1", Arc::clone(&s), 0);
    client.answered(b"s1", false);
    assert!(matches!(client.resolve(b"s1", 1), Resolved::Unknown));
    assert!(client.is_empty());
}

#[test]
fn a_skipped_close_keeps_the_name_and_an_answered_one_drops_it() {
    let registry = Registry::default();
    let s = registry.intern(SCOPE, &def("SELECT 1"));
    let mut client = ClientStatements::default();
    client.bind(b"s1", Arc::clone(&s));
    client.closing(b"s1", 2);
    assert!(matches!(client.resolve(b"s1", 2), Resolved::Unknown));
    assert!(matches!(client.resolve(b"s1", 3), Resolved::Undecided));
    client.answered(b"s1", false);
    assert!(matches!(client.resolve(b"s1", 3), Resolved::Known(_)));
    client.closing(b"s1", 3);
    client.answered(b"s1", true);
    assert!(matches!(client.resolve(b"s1", 4), Resolved::Unknown));
}

#[test]
fn close_then_parse_in_one_skipped_batch_restores_the_old_statement() {
    let registry = Registry::default();
    let old = registry.intern(SCOPE, &def("SELECT 1"));
    let new = registry.intern(SCOPE, &def("SELECT 2"));
    let mut client = ClientStatements::default();
    client.bind(b"s1", Arc::clone(&old));
    client.closing(b"s1", 5);
    client.parsing(b"s1", Arc::clone(&new), 5);
    // The server skipped both (an error earlier in the batch).
    client.answered(b"s1", false);
    client.answered(b"s1", false);
    match client.resolve(b"s1", 6) {
        Resolved::Known(s) => assert!(Arc::ptr_eq(&s, &old)),
        other => panic!("expected the old statement, got {other:?}"),
    }
}

#[test]
fn close_failed_parse_close_leaves_nothing() {
    // Close (runs), Parse with bad SQL (fails), Close again (skipped): no name left.
    let registry = Registry::default();
    let old = registry.intern(SCOPE, &def("SELECT 1"));
    let bad = registry.intern(SCOPE, &def("SELEC 2"));
    let mut client = ClientStatements::default();
    client.bind(b"s1", Arc::clone(&old));
    client.closing(b"s1", 5);
    client.parsing(b"s1", Arc::clone(&bad), 5);
    client.closing(b"s1", 5);
    assert!(matches!(client.resolve(b"s1", 5), Resolved::Unknown));
    client.answered(b"s1", true);
    client.answered(b"s1", false);
    client.answered(b"s1", false);
    assert!(matches!(client.resolve(b"s1", 6), Resolved::Unknown));
    assert!(client.is_empty());
}

#[test]
fn clearing_keeps_what_was_sent_after_it() {
    let registry = Registry::default();
    let s = registry.intern(SCOPE, &def("SELECT 1"));
    let mut client = ClientStatements::default();
    client.bind(b"old", Arc::clone(&s));
    client.parsing(b"new", Arc::clone(&s), 1);
    client.clear();
    client.answered(b"new", true);
    assert!(matches!(client.resolve(b"old", 2), Resolved::Unknown));
    assert!(matches!(client.resolve(b"new", 2), Resolved::Known(_)));
}

fn needs(close: bool, parse: bool) -> (bool, bool) {
    (close, parse)
}

fn got(n: Needs) -> (bool, bool) {
    (n.close, n.parse)
}

#[test]
fn server_use_prepares_once_per_batch_and_again_when_unsure() {
    let mut server = ServerStatements::new(10);
    let first = server.use_in(7, 0);
    assert_eq!(got(first), needs(false, true));
    assert_eq!(got(server.use_in(7, 0)), needs(false, false), "same batch");
    let second = server.use_in(7, 1);
    assert_eq!(
        got(second),
        needs(true, true),
        "the batch-0 Parse may still be skipped"
    );
    server.prepared(7, first.op, true);
    assert_eq!(
        server.state(7),
        Some(State::Preparing(1)),
        "only the latest Parse decides"
    );
    server.prepared(7, second.op, true);
    assert_eq!(server.state(7), Some(State::Ready));
    assert_eq!(got(server.use_in(7, 2)), needs(false, false));
    server.invalidate(7);
    assert_eq!(server.state(7), Some(State::Unsure));
    let third = server.use_in(7, 3);
    assert!(third.close);
    server.prepared(7, third.op, false);
    assert_eq!(server.state(7), Some(State::Unsure));
}

#[test]
fn eviction_closes_the_least_recently_used_and_a_skipped_close_is_unsure() {
    let mut server = ServerStatements::new(2);
    for id in [1, 2] {
        let n = server.use_in(id, 0);
        server.prepared(id, n.op, true);
    }
    server.use_in(1, 1); // 1 is now more recent than 2
    server.use_in(3, 1);
    let (victim, _) = server.evict(1, 3).unwrap();
    assert_eq!(victim, 2);
    assert_eq!(server.evict(1, 3), None, "within the bound again");
    assert_eq!(server.state(2), Some(State::Closing(1)));
    // Used again in the same batch: its Close comes first, so only a Parse.
    assert_eq!(got(server.use_in(2, 1)), needs(false, true));

    let mut other = ServerStatements::new(1);
    let n = other.use_in(1, 0);
    other.prepared(1, n.op, true);
    other.use_in(2, 0);
    let (victim, close) = other.evict(0, 2).unwrap();
    assert_eq!(victim, 1);
    other.closed(1, close, false);
    assert_eq!(other.state(1), Some(State::Unsure));
    other.closed(1, close, true); // a stale answer changes nothing
    assert_eq!(other.state(1), Some(State::Unsure));
}

#[test]
fn an_earlier_parse_answered_after_a_later_close_ran_does_not_make_it_ready() {
    // Parse (runs), Close to make room (runs), then an error skips the Parse that would
    // have brought it back: the server no longer has it.
    let mut server = ServerStatements::new(1);
    let parse = server.use_in(5, 0);
    server.use_in(6, 0);
    let (victim, close) = server.evict(0, 6).unwrap();
    assert_eq!(victim, 5);
    let again = server.use_in(5, 0);
    assert_eq!(got(again), needs(false, true));
    server.prepared(5, parse.op, true);
    server.closed(5, close, true);
    server.prepared(5, again.op, false);
    assert_eq!(
        server.state(5),
        Some(State::Unsure),
        "closed before it was prepared again"
    );
    assert!(server.use_in(5, 1).close);
}

#[test]
fn forgetting_all_makes_every_statement_unsure() {
    let mut server = ServerStatements::new(5);
    let n = server.use_in(1, 0);
    server.prepared(1, n.op, true);
    server.forget_all();
    assert_eq!(server.state(1), Some(State::Unsure));
    assert!(server.use_in(1, 1).close);
}

#[test]
fn the_same_text_in_another_scope_is_another_statement() {
    let registry = Registry::default();
    let a = registry.intern(b"=a\0-\0", &def("SELECT * FROM t"));
    let b = registry.intern(b"=b\0-\0", &def("SELECT * FROM t"));
    let default = registry.intern(SCOPE, &def("SELECT * FROM t"));
    assert_ne!(a.id, b.id);
    assert_ne!(a.id, default.id);
    assert!(Arc::ptr_eq(
        &a,
        &registry.find(b"=a\0-\0", &def("SELECT * FROM t")).unwrap()
    ));
    assert!(registry.find(b"=c\0-\0", &def("SELECT * FROM t")).is_none());
    assert_eq!(registry.live(), 3);
    // A private statement is nobody else's: never found, never interned.
    let private = registry.private(&def("SELECT * FROM t"));
    assert!(![a.id, b.id, default.id].contains(&private.id));
    assert_eq!(registry.live(), 3);
    assert_ne!(
        registry.private_scope().get(),
        private.id,
        "one sequence of ids"
    );
}

#[test]
fn a_statement_knows_whether_it_changes_resolution() {
    let registry = Registry::default();
    assert!(registry
        .intern(SCOPE, &def("SET search_path TO b"))
        .changes_resolution());
    assert!(!registry
        .intern(SCOPE, &def("SELECT 1"))
        .changes_resolution());
    assert!(registry.private(&def("SET ROLE x")).changes_resolution());
}

#[test]
fn a_client_that_goes_private_keeps_its_names_on_copies_of_its_own() {
    let registry = Registry::default();
    let shared = registry.intern(SCOPE, &def("SELECT 1"));
    shared.mark_accepted();
    let pending = registry.intern(SCOPE, &def("SELECT 2"));
    let mut client = ClientStatements::default();
    client.bind(b"s1", Arc::clone(&shared));
    client.bind(b"s2", Arc::clone(&shared));
    client.parsing(b"s3", Arc::clone(&pending), 7);
    assert_eq!(client.private(), None);

    let scope = client.make_private(&registry);
    assert_eq!(client.private(), Some(scope));
    assert_eq!(client.make_private(&registry), scope, "private once");
    let (Resolved::Known(s1), Resolved::Known(s2)) =
        (client.resolve(b"s1", 7), client.resolve(b"s2", 7))
    else {
        panic!("both names stay");
    };
    assert_ne!(s1.id, shared.id);
    assert!(Arc::ptr_eq(&s1, &s2), "one copy per statement");
    assert_eq!(s1.definition(), shared.definition());
    assert!(s1.accepted());
    // The Parse on its way ends on the copy too.
    client.answered(b"s3", true);
    let s3 = client.get(b"s3").unwrap();
    assert_ne!(s3.id, pending.id);
    assert_eq!(s3.definition(), pending.definition());
    // Other clients still find the shared ones.
    assert!(Arc::ptr_eq(
        &registry.find(SCOPE, &def("SELECT 1")).unwrap(),
        &shared
    ));
}
