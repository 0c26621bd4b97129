//! Smart mode: named prepared statements shared between clients that resolve names
//! differently (issue 11; see docs/protocol.md, "Prepared statements and name resolution").
//!
//! Two schemas hold a table of the same name with different columns: `a.t (x int)` and
//! `b.t (x text, y text)`. The same text, `SELECT * FROM t`, prepared by clients whose
//! `search_path` differs (start-up `options`, a `search_path` start-up parameter, a `SET`,
//! `set_config`) must give each client its own schema's table, as PostgreSQL would, and never
//! `0A000 cached plan must not change result type`. Every scenario runs with pool_size 1 and 2.

use tokio_postgres::Client;

use crate::support::wire::*;
use crate::support::*;

const QUERY: &str = "SELECT * FROM qcp_sp_t";

/// The two schemas of one test, `qcp_sp_<tag>_a` and `qcp_sp_<tag>_b` (each test has its
/// own: tests run in parallel).
struct Schemas {
    a: String,
    b: String,
}

/// Creates the test's schemas afresh: `a.qcp_sp_t (x int)` holding 1, `b.qcp_sp_t (x text,
/// y text)` holding ('b', 'bee'), both the test user's.
async fn schemas(tag: &str) -> Schemas {
    let s = Schemas {
        a: format!("qcp_sp_{tag}_a"),
        b: format!("qcp_sp_{tag}_b"),
    };
    let user = SCRAM_USER.0;
    admin()
        .await
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {a} CASCADE; DROP SCHEMA IF EXISTS {b} CASCADE; \
             CREATE SCHEMA {a} AUTHORIZATION {user}; CREATE SCHEMA {b} AUTHORIZATION {user}; \
             CREATE TABLE {a}.qcp_sp_t (x int); INSERT INTO {a}.qcp_sp_t VALUES (1); \
             CREATE TABLE {b}.qcp_sp_t (x text, y text); INSERT INTO {b}.qcp_sp_t VALUES ('b', 'bee'); \
             ALTER TABLE {a}.qcp_sp_t OWNER TO {user}; ALTER TABLE {b}.qcp_sp_t OWNER TO {user}",
            a = s.a,
            b = s.b
        ))
        .await
        .expect("create the schemas");
    s
}

/// A tokio-postgres client through qcp with `search_path` set by start-up `options`.
async fn client_in(qcp: &Qcp, schema: &str) -> Client {
    let conninfo = format!(
        "{} options='-c search_path={schema}'",
        qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE)
    );
    connect(&conninfo).await.expect("connect through qcp")
}

/// What `QUERY` returns to a client that sees `a.qcp_sp_t`, or `b.qcp_sp_t`.
const A_ROWS: &str = "int 1";
const B_ROWS: &str = "text b bee";

/// Runs `statement` and describes what came back (columns and values), or the SQLSTATE of
/// the error.
async fn run(client: &Client, statement: &tokio_postgres::Statement) -> String {
    match client.query(statement, &[]).await {
        Ok(rows) => describe(statement, &rows),
        Err(error) => format!(
            "error {} ({error:?})",
            sqlstate_of(&error).unwrap_or_default()
        ),
    }
}

fn describe(statement: &tokio_postgres::Statement, rows: &[tokio_postgres::Row]) -> String {
    let columns = statement.columns();
    match columns.len() {
        1 => rows
            .iter()
            .map(|r| format!("int {}", r.get::<_, i32>(0)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => rows
            .iter()
            .map(|r| format!("text {} {}", r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Prepares `QUERY` and runs it once: what came back, and the statement (`None` if the
/// Parse or Describe failed, with the error's SQLSTATE).
async fn prepare_and_run(client: &Client) -> (String, Option<tokio_postgres::Statement>) {
    match client.prepare(QUERY).await {
        Ok(statement) => (run(client, &statement).await, Some(statement)),
        Err(error) => (
            format!(
                "error {} ({error:?})",
                sqlstate_of(&error).unwrap_or_default()
            ),
            None,
        ),
    }
}

/// Another client inside an open transaction on backend `pid` (pool_size 2: the clients of
/// the scenario run on the other backend meanwhile).
struct Hold {
    conn: Wire,
    pid: i32,
}

impl Hold {
    async fn begin(qcp: &Qcp) -> Hold {
        let mut conn = Wire::open(qcp).await;
        let answer = conn.query("BEGIN; SELECT pg_backend_pid()").await;
        assert_eq!(ready_status(&answer), b'T', "{answer:?}");
        let pid = first_column(&answer)[0].parse().expect("a pid");
        Hold { conn, pid }
    }

    async fn release(mut self) {
        let answer = self.conn.query("COMMIT").await;
        assert_eq!(ready_status(&answer), b'I', "{answer:?}");
    }
}

/// pool_size 2: holds one backend, a different one each call (`previous`: the last hold's),
/// so that the scenario's next transactions run on the other. pool_size 1: nothing.
async fn hold_next(qcp: &Qcp, pool: u32, previous: Option<i32>) -> Option<Hold> {
    if pool == 1 {
        return None;
    }
    wait_all_released(qcp).await;
    let first = Hold::begin(qcp).await;
    if Some(first.pid) != previous {
        return Some(first);
    }
    let second = Hold::begin(qcp).await;
    first.release().await;
    Some(second)
}

// ---------------------------------------------------------------------------------------
// Start-up search_path: `options=-c search_path=...` and a `search_path` parameter.
// ---------------------------------------------------------------------------------------

async fn startup_search_paths_get_their_own_tables(pool: u32) {
    let s = schemas(&format!("startup{pool}")).await;
    let qcp = Setup::smart().pool_size(pool).start();
    let a = client_in(&qcp, &s.a).await;
    let b = client_in(&qcp, &s.b).await;
    // The same search_path as `b`, given as a start-up parameter of its own.
    let mut c = Wire::open_with(&qcp, &[("search_path", &s.b)]).await;

    let mut held: Option<i32> = None;
    let mut statements = Vec::new();
    for round in 0..4 {
        // pool_size 2: the rounds alternate between the backends, so that a statement
        // prepared on one is used on the other and back.
        let hold = hold_next(&qcp, pool, held).await;
        held = hold.as_ref().map(|h| h.pid);
        for (client, expected) in [(&a, A_ROWS), (&b, B_ROWS)] {
            let (got, statement) = prepare_and_run(client).await;
            assert_eq!(got, expected, "round {round}: a new statement");
            statements.push((client, statement.expect("prepared"), expected));
        }
        let answer = c
            .exchange(
                Batch::new()
                    .parse(&format!("c{round}"), QUERY, &[])
                    .describe_statement(&format!("c{round}"))
                    .bind("", &format!("c{round}"), &[])
                    .execute("", 0)
                    .sync(),
            )
            .await;
        assert_eq!(error_codes(&answer), Vec::<String>::new(), "round {round}");
        assert_eq!(tags(&answer), "1tT2DCZ", "round {round}: {answer:?}");
        assert_eq!(
            rows(&answer),
            [[Some("b".to_owned()), Some("bee".to_owned())]]
        );
        // Every statement prepared so far, in an order that interleaves the clients.
        for (client, statement, expected) in statements.iter().rev() {
            assert_eq!(
                run(client, statement).await,
                *expected,
                "round {round}: an earlier statement"
            );
        }
        if let Some(hold) = hold {
            hold.release().await;
        }
    }
}

with_pools_1_and_2!(
    smart_search_path_startup_pool_1,
    smart_search_path_startup_pool_2,
    startup_search_paths_get_their_own_tables
);

// ---------------------------------------------------------------------------------------
// search_path changed by the client's own SQL.
// ---------------------------------------------------------------------------------------

/// `b` (start-up search_path a) shares its statements with `a` (the same start-up path)
/// until `a` changes its path inside a transaction with `change`: `a`'s statements then
/// see schema b until the transaction ends, and `b` keeps seeing schema a throughout.
async fn set_in_a_transaction(pool: u32, tag: &str, change: impl Fn(&Schemas) -> String) {
    let s = schemas(&format!("{tag}{pool}")).await;
    let qcp = Setup::smart().pool_size(pool).start();
    let a = client_in(&qcp, &s.a).await;
    let b = client_in(&qcp, &s.a).await;
    let (got, before) = prepare_and_run(&b).await;
    assert_eq!(got, A_ROWS);
    let before = before.expect("prepared");
    let (got, _) = prepare_and_run(&a).await;
    assert_eq!(got, A_ROWS, "the same search_path: a shares b's statement");

    let mut held = None;
    for round in 0..3 {
        let hold = hold_next(&qcp, pool, held).await;
        held = hold.as_ref().map(|h| h.pid);
        a.batch_execute(&format!("BEGIN; {}", change(&s)))
            .await
            .expect("change the search_path");
        let (got, _) = prepare_and_run(&a).await;
        assert_eq!(got, B_ROWS, "round {round}: inside a's transaction");
        a.batch_execute("COMMIT").await.expect("commit");
        assert_eq!(run(&b, &before).await, A_ROWS, "round {round}");
        let (got, _) = prepare_and_run(&b).await;
        assert_eq!(got, A_ROWS, "round {round}: b prepares again");
        if let Some(hold) = hold {
            hold.release().await;
        }
    }
}

async fn set_local(pool: u32) {
    set_in_a_transaction(pool, "local", |s| {
        format!("SET LOCAL search_path TO {}", s.b)
    })
    .await;
}

with_pools_1_and_2!(
    smart_search_path_set_local_pool_1,
    smart_search_path_set_local_pool_2,
    set_local
);

async fn set_config_local(pool: u32) {
    set_in_a_transaction(pool, "config", |s| {
        format!(
            "SELECT pg_catalog.set_config('search_path', '{}', true)",
            s.b
        )
    })
    .await;
}

with_pools_1_and_2!(
    smart_search_path_set_config_pool_1,
    smart_search_path_set_config_pool_2,
    set_config_local
);

/// A session-level `SET search_path` in Smart mode stays on the server connection it ran on
/// (PostgreSQL 15 does not report it): `a` sees schema b for as long as it keeps that
/// connection, and `b` (start-up search_path a, which `a` had too) never does: the connection
/// is set back to b's search_path before b gets it, and b's statements are never the ones
/// `a` prepared after its SET.
async fn session_set(pool: u32) {
    let s = schemas(&format!("session{pool}")).await;
    let qcp = Setup::smart().pool_size(pool).start();
    let a = client_in(&qcp, &s.a).await;
    let b = client_in(&qcp, &s.a).await;
    let (got, before) = prepare_and_run(&b).await;
    assert_eq!(got, A_ROWS);
    let before = before.expect("prepared");
    let (got, _) = prepare_and_run(&a).await;
    assert_eq!(got, A_ROWS);

    for (round, change) in [
        format!("SET search_path TO {}", s.b),
        format!("SELECT set_config('search_path', '{}', false)", s.b),
        format!("SET SEARCH_PATH = {}", s.b),
    ]
    .iter()
    .enumerate()
    {
        // In one transaction, so that `a` surely keeps the connection it changed.
        a.batch_execute(&format!("BEGIN; {change}"))
            .await
            .expect("change the search_path");
        let (got, _) = prepare_and_run(&a).await;
        assert_eq!(got, B_ROWS, "round {round}: after a's SET");
        a.batch_execute("COMMIT").await.expect("commit");
        // `b` gets the connection `a` changed (pool_size 1), or either (pool_size 2).
        assert_eq!(run(&b, &before).await, A_ROWS, "round {round}");
        let (got, _) = prepare_and_run(&b).await;
        assert_eq!(got, A_ROWS, "round {round}: b prepares again");
        // What `a` itself reads from here on is not asserted: its session-level SET does
        // not follow it to another server connection in Smart mode (PostgreSQL 15 does not
        // report search_path; the README's table of what Smart mode cannot carry), so on the
        // connection `b` set back, `a`'s statement resolves under its start-up path. The
        // guarantee tested is the other client's: `b` never sees `a`'s path.
    }
}

with_pools_1_and_2!(
    smart_search_path_session_set_pool_1,
    smart_search_path_session_set_pool_2,
    session_set
);

/// `SET ROLE` changes what `$user` in the default search_path names: `a`'s statements then
/// see the role's schema, `b`'s never do, and `b` never runs as `a`'s role (the connection's
/// role is reset before b gets it).
async fn set_role(pool: u32) {
    let role = format!("qcp_sp_role{pool}");
    let table = format!("qcp_sp_roletab{pool}");
    let user = SCRAM_USER.0;
    admin()
        .await
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {role} CASCADE; DROP TABLE IF EXISTS public.{table}; \
             DROP ROLE IF EXISTS {role}; CREATE ROLE {role} NOLOGIN; GRANT {role} TO {user}; \
             CREATE SCHEMA {role} AUTHORIZATION {role}; \
             CREATE TABLE {role}.{table} (x text, y text); INSERT INTO {role}.{table} VALUES ('b', 'bee'); \
             ALTER TABLE {role}.{table} OWNER TO {role}; \
             CREATE TABLE public.{table} (x int); INSERT INTO public.{table} VALUES (1); \
             ALTER TABLE public.{table} OWNER TO {user}; GRANT SELECT ON public.{table} TO {role}"
        ))
        .await
        .expect("create the role and its schema");
    let query = format!("SELECT * FROM {table}");
    let qcp = Setup::smart().pool_size(pool).start();
    let a = qcp.client().await;
    let b = qcp.client().await;
    let before = b.prepare(&query).await.expect("b prepares");
    assert_eq!(run(&b, &before).await, A_ROWS);
    let shared = a.prepare(&query).await.expect("a prepares");
    assert_eq!(run(&a, &shared).await, A_ROWS);

    for change in [
        format!("SET LOCAL ROLE {role}"),
        format!("SET ROLE {role}"),
        format!("SELECT set_config('role', '{role}', false)"),
    ] {
        a.batch_execute(&format!("BEGIN; {change}"))
            .await
            .expect("set the role");
        let statement = a.prepare(&query).await.expect("a prepares as the role");
        assert_eq!(run(&a, &statement).await, B_ROWS, "{change}");
        a.batch_execute("COMMIT").await.expect("commit");
        assert_eq!(run(&b, &before).await, A_ROWS, "{change}");
        let current: String = b
            .query_one("SELECT current_user::text", &[])
            .await
            .expect("b's user")
            .get(0);
        assert_eq!(current, user, "{change}: b never runs as a's role");
    }
}

with_pools_1_and_2!(
    smart_search_path_set_role_pool_1,
    smart_search_path_set_role_pool_2,
    set_role
);
