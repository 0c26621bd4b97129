//! What counts as a change of name resolution, scope keys, and who may reset a backend's.

use super::*;

fn changes(sql: &str) -> bool {
    changes_resolution(sql.as_bytes())
}

#[test]
fn sql_that_changes_resolution_is_seen() {
    for sql in [
        "SET search_path TO b",
        "set SEARCH_PATH = b, public",
        "SET LOCAL search_path = b",
        "RESET search_path",
        "SELECT pg_catalog.set_config('search_path', 'b', false)",
        "select set_config ( E'role', 'x', true)",
        "SELECT set_config('role', 'x', false), 1",
        "SET ROLE alice",
        "set local role alice",
        "SET SESSION ROLE alice",
        "SET \"role\" TO alice",
        "SET SESSION AUTHORIZATION alice",
        "RESET ROLE",
        "reset all",
        "RESET SESSION AUTHORIZATION",
        "DISCARD ALL",
        "discard temp",
        "SET SCHEMA 'b'",
        "CREATE TEMP TABLE t (x int)",
        "create or replace temporary view v as select 1",
        "CREATE GLOBAL TEMPORARY TABLE t (x int)",
        "CREATE TABLE pg_temp.t (x int)",
        "SELECT current_setting('session_authorization')",
        // Later statements of a query string, after comments and white space.
        "BEGIN; SET ROLE alice",
        "SELECT 1;\n  -- now\n  /* the role */ SET LOCAL ROLE alice; COMMIT",
        "select 1;discard plans",
    ] {
        assert!(changes(sql), "{sql:?}");
    }
}

#[test]
fn ordinary_sql_changes_nothing() {
    for sql in [
        "",
        "SELECT * FROM t WHERE user_id = $1",
        "SELECT role FROM users",
        "SELECT \"users\".\"role\" FROM users",
        "SET statement_timeout = 0",
        "SET TIME ZONE 'UTC'",
        "RESET statement_timeout",
        "SELECT set_config('app.tenant', '7', true)",
        "SELECT current_schema(), current_schemas(true)",
        "SELECT * FROM information_schema.tables WHERE table_schema = 'b'",
        "CREATE TABLE temperature (x int)",
        "INSERT INTO t VALUES ('set role'); SELECT 1",
        "BEGIN; SELECT 1; COMMIT",
        "/* unterminated",
        "-- only a comment",
    ] {
        assert!(!changes(sql), "{sql:?}");
    }
}

#[test]
fn a_key_names_each_resolution_parameter() {
    let mut params = Params::new();
    assert_eq!(key(&params), b"-\0-\0");
    params.set("Search_Path", "b, public");
    assert_eq!(key(&params), b"=b, public\0-\0");
    params.set("role", "");
    assert_eq!(
        key(&params),
        b"=b, public\0=\0",
        "an empty value is a value"
    );
}

#[test]
fn only_another_client_clears_a_change() {
    let one = NonZeroU64::new(1).unwrap();
    let two = NonZeroU64::new(2).unwrap();
    let mut resolution = Resolution::default();
    assert!(!resolution.claim(None), "never changed");
    resolution.changed(one);
    assert!(
        !resolution.claim(Some(one)),
        "the same client finds it as it left it"
    );
    assert_eq!(resolution.changed_by(), Some(one));
    assert!(resolution.claim(Some(two)));
    assert_eq!(resolution.changed_by(), None);
    assert!(!resolution.claim(Some(two)), "set again once");
    resolution.changed(two);
    assert!(
        resolution.claim(None),
        "a client that shares its statements"
    );

    let mut params = Params::new();
    params.set("search_path", "a");
    forget(&mut params);
    assert_eq!(params.get("search_path"), Some(UNKNOWN));
    assert_eq!(params.get("role"), Some(UNKNOWN));
}
