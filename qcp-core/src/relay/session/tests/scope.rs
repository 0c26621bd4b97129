//! Smart mode: statements are shared only between clients of one name-resolution scope. A
//! client's start-up search_path and role are part of a statement's key; SQL of the client's
//! own that may change its resolution makes its statements its own, and the backend it ran on
//! is set back before another client uses it (see `relay::scope`).

use qcp_codec::encode;
use qcp_codec::TransactionStatus::Idle;

use super::harness::{cat, done, msg, query, ready, tags, Harness, Seen};
use super::prepared::{bind, execute, parse, statement_names, sync};
use crate::relay::scope::UNKNOWN;

const SQL: &str = "SELECT * FROM t";

/// The client prepares `name` as `SQL` and runs it in one transaction; the server answers.
/// Returns what went to the server.
fn prepare_and_run(h: &mut Harness, name: &str) -> Vec<u8> {
    h.client(&cat(&[&parse(name, SQL), &bind(name), &execute(), &sync()]));
    let sent = h.take_server();
    h.server(&cat(&[
        &msg(encode::parse_complete),
        &msg(encode::bind_complete),
        &done("SELECT 1", Idle),
    ]));
    assert_eq!(tags(&h.take_client()), ['1', '2', 'C', 'Z']);
    sent
}

/// The client runs `name` in one transaction. Returns what went to the server (whose answer
/// starts with a ParseComplete when qcp prepared the statement first).
fn run(h: &mut Harness, name: &str) -> Vec<u8> {
    h.client(&cat(&[&bind(name), &execute(), &sync()]));
    let sent = h.take_server();
    let prepared = tags(&sent).first() == Some(&'P');
    let mut answer = Vec::new();
    if prepared {
        answer.extend(msg(encode::parse_complete));
    }
    answer.extend(cat(&[&msg(encode::bind_complete), &done("SELECT 1", Idle)]));
    h.server(&answer);
    assert_eq!(tags(&h.take_client()), ['2', 'C', 'Z']);
    sent
}

/// A simple query the server answers with `tag`.
fn simple(h: &mut Harness, sql: &str, tag: &str) -> Vec<u8> {
    h.client(&query(sql));
    let sent = h.take_server();
    h.server(&done(tag, Idle));
    assert_eq!(tags(&h.take_client()), ['C', 'Z']);
    sent
}

/// Moves the only free backend from `from` to `to`.
fn hand_over(from: &mut Harness, to: &mut Harness) {
    to.pool.push(from.pool.pop().expect("a free backend"));
}

#[test]
fn the_same_text_under_other_start_up_search_paths_is_another_statement() {
    let mut a = Harness::smart_with(&[("search_path", "a")]);
    let mut b = a.another_client(&[("search_path", "b")]);
    let mut a2 = a.another_client(&[("search_path", "a")]);

    let sent = prepare_and_run(&mut a, "s1");
    assert_eq!(statement_names(&sent), ["qcp_1", "qcp_1"]);
    assert_eq!(
        a.seen,
        [Seen::Synced(1), Seen::Linked(1), Seen::Released(1)]
    );

    // Client b gets the backend (set to its search_path first) and a statement of its own,
    // prepared there, never a's.
    hand_over(&mut a, &mut b);
    let sent = prepare_and_run(&mut b, "s1");
    assert_eq!(tags(&sent), ['P', 'B', 'E', 'S']);
    assert_eq!(statement_names(&sent), ["qcp_2", "qcp_2"]);
    assert_eq!(b.seen[..2], [Seen::Synced(1), Seen::Linked(1)]);

    // Client a2 has a's search_path: the same statement, answered without a server.
    hand_over(&mut b, &mut a2);
    a2.client(&cat(&[&parse("x", SQL), &sync()]));
    assert_eq!(tags(&a2.take_client()), ['1', 'Z']);
    assert!(a2.seen.is_empty(), "no server needed: {:?}", a2.seen);
    let sent = run(&mut a2, "x");
    assert_eq!(
        statement_names(&sent),
        ["qcp_1"],
        "a's statement is ready there"
    );
    assert_eq!(a2.seen[..2], [Seen::Synced(1), Seen::Linked(1)]);
}

#[test]
fn a_start_up_role_is_part_of_the_key() {
    let mut a = Harness::smart_with(&[("role", "alice")]);
    let mut b = a.another_client(&[]);
    prepare_and_run(&mut a, "s1");
    hand_over(&mut a, &mut b);
    b.client(&cat(&[&parse("s1", SQL), &sync()]));
    assert_eq!(
        b.seen[..2],
        [Seen::Synced(1), Seen::Linked(1)],
        "not answered by qcp"
    );
    assert_eq!(statement_names(&b.take_server()), ["qcp_2"]);
}

#[test]
fn a_set_search_path_makes_the_client_private_and_marks_the_backend() {
    let mut a = Harness::smart();
    let mut b = a.another_client(&[]);
    prepare_and_run(&mut a, "s1");
    hand_over(&mut a, &mut b);
    let sent = prepare_and_run(&mut b, "s1");
    assert_eq!(
        tags(&sent),
        ['C', 'B', 'E', 'S'],
        "shared: b's Parse is a's statement"
    );
    assert_eq!(statement_names(&sent), ["qcp_1"]);
    hand_over(&mut b, &mut a);

    simple(&mut a, "SET search_path TO b", "SET");
    let backend = a.pool.last().unwrap();
    assert!(backend.relay.resolution.changed_by().is_some());

    // a's statement is its own now: prepared under a new name, where a changed the path.
    let sent = run(&mut a, "s1");
    assert_eq!(tags(&sent), ['P', 'B', 'E', 'S']);
    let private = statement_names(&sent);
    assert_ne!(private[0], "qcp_1");
    assert_eq!(private[0], private[1]);
    assert!(
        !a.seen.contains(&Seen::Synced(1)),
        "a finds the backend as it left it: {:?}",
        a.seen
    );
    // A new Parse of the same text is a's own too: not shared with b's.
    let sent = prepare_and_run(&mut a, "s2");
    assert_eq!(tags(&sent), ['P', 'B', 'E', 'S']);
    assert!(!statement_names(&sent).contains(&"qcp_1".to_owned()));

    // b gets the backend set back (search_path and role reset) before it runs qcp_1.
    hand_over(&mut a, &mut b);
    let sent = run(&mut b, "s1");
    assert_eq!(statement_names(&sent), ["qcp_1"]);
    assert!(b
        .seen
        .ends_with(&[Seen::Synced(1), Seen::Linked(1), Seen::Released(1)]));
    let backend = b.pool.last().unwrap();
    assert_eq!(backend.params.get("search_path"), None);
    assert_eq!(backend.relay.resolution.changed_by(), None);

    // Once set back, a backend is a's like any other: set to a's values when a links it.
    hand_over(&mut b, &mut a);
    let seen = a.seen.len();
    run(&mut a, "s1");
    assert!(
        !a.seen[seen..].contains(&Seen::Synced(1)),
        "no difference left"
    );
}

#[test]
fn every_way_of_changing_resolution_is_seen() {
    for sql in [
        "SET search_path TO b",
        "SELECT set_config('search_path', 'b', false)",
        "SET ROLE alice",
        "SET SESSION AUTHORIZATION alice",
        "RESET ALL",
        "DISCARD ALL",
        "BEGIN; SET LOCAL search_path = b; COMMIT",
        "CREATE TEMP TABLE t (x int)",
    ] {
        let mut a = Harness::smart();
        prepare_and_run(&mut a, "s1");
        simple(&mut a, sql, "SET");
        assert!(
            a.pool
                .last()
                .unwrap()
                .relay
                .resolution
                .changed_by()
                .is_some(),
            "{sql}"
        );
        let sent = run(&mut a, "s1");
        assert_ne!(statement_names(&sent)[0], "qcp_1", "{sql}");
    }
    // And what changes nothing leaves the client sharing.
    let mut a = Harness::smart();
    prepare_and_run(&mut a, "s1");
    simple(
        &mut a,
        "SET statement_timeout = 0; SELECT role FROM users",
        "SET",
    );
    assert_eq!(a.pool.last().unwrap().relay.resolution.changed_by(), None);
    assert_eq!(statement_names(&run(&mut a, "s1")), ["qcp_1"]);
}

#[test]
fn a_change_pipelined_before_a_bind_applies_to_that_bind() {
    let mut a = Harness::smart();
    prepare_and_run(&mut a, "s1");
    a.client(&cat(&[
        &query("SET search_path TO b"),
        &bind("s1"),
        &execute(),
        &sync(),
    ]));
    let sent = a.take_server();
    assert_eq!(tags(&sent), ['Q', 'P', 'B', 'E', 'S']);
    let names = statement_names(&sent);
    assert_ne!(
        names[0], "qcp_1",
        "prepared anew after the SET, under the new path"
    );
    assert_eq!(names[0], names[1]);
}

#[test]
fn an_unnamed_parse_that_sets_the_role_is_seen() {
    let mut a = Harness::smart();
    prepare_and_run(&mut a, "s1");
    a.client(&cat(&[
        &parse("", "SET ROLE alice"),
        &bind(""),
        &execute(),
        &sync(),
    ]));
    a.server(&cat(&[
        &msg(encode::parse_complete),
        &msg(encode::bind_complete),
        &done("SET", Idle),
    ]));
    a.take_client();
    assert!(a
        .pool
        .last()
        .unwrap()
        .relay
        .resolution
        .changed_by()
        .is_some());
}

#[test]
fn a_named_set_marks_every_backend_it_runs_on() {
    let mut a = Harness::new(true, 2, 4096, 16);
    a.client(&cat(&[&parse("set", "SET search_path TO b"), &sync()]));
    a.server(&cat(&[&msg(encode::parse_complete), &ready(Idle)]));
    a.take_client();
    let first = a.pool.last().unwrap();
    assert_eq!(first.io, 1);
    assert!(
        first.relay.resolution.changed_by().is_some(),
        "the client went private"
    );
    // Run on the other backend: that one is marked as well.
    let busy = a.pool.pop().unwrap();
    run(&mut a, "set");
    let second = a.pool.last().unwrap();
    assert_eq!(second.io, 2);
    assert!(second.relay.resolution.changed_by().is_some());
    a.pool.push(busy);
}

#[test]
fn a_query_too_large_to_scan_counts_as_a_change() {
    let mut a = Harness::new(true, 1, 1024, 16);
    prepare_and_run(&mut a, "s1");
    let sql = format!("SELECT '{}'", "x".repeat(3000));
    simple(&mut a, &sql, "SELECT 1");
    assert!(a
        .pool
        .last()
        .unwrap()
        .relay
        .resolution
        .changed_by()
        .is_some());
}

#[test]
fn a_reported_search_path_makes_the_client_private() {
    // PostgreSQL 18 reports search_path: a change the scan missed (a function's set_config)
    // still makes the client private.
    let mut a = Harness::smart();
    prepare_and_run(&mut a, "s1");
    a.client(&query("SELECT my_function()"));
    a.server(&cat(&[
        &msg(|o| encode::parameter_status(o, "search_path", "b").unwrap()),
        &done("SELECT 1", Idle),
    ]));
    a.take_client();
    assert!(a
        .pool
        .last()
        .unwrap()
        .relay
        .resolution
        .changed_by()
        .is_some());
    assert_ne!(statement_names(&run(&mut a, "s1"))[0], "qcp_1");
}

#[test]
fn a_backend_whose_sync_was_never_done_stays_unknown() {
    let mut a = Harness::smart();
    let b = a.another_client(&[]);
    simple(&mut a, "SET search_path TO b", "SET");
    let mut backend = a.pool.pop().unwrap();
    b.session.claim(&mut backend);
    assert_eq!(backend.params.get("search_path"), Some(UNKNOWN));
    assert_eq!(backend.params.get("role"), Some(UNKNOWN));
    // A second claim (the first sync failed) still finds the values unknown.
    b.session.claim(&mut backend);
    assert_eq!(backend.params.get("search_path"), Some(UNKNOWN));
}
