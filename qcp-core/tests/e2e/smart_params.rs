//! Smart mode against the real PostgreSQL: session parameters follow the client from one
//! server connection to the next (see docs/protocol.md, "ParameterStatus and reported
//! parameters" and "Applying parameters to a server connection"). pool_size 2, and which
//! backend a client gets is forced by holding the other one in a transaction.

use crate::support::wire::*;
use crate::support::*;

/// Starts a transaction on `conn` and returns the backend it got (held until [`unhold`]).
async fn hold(conn: &mut Wire) -> i32 {
    let messages = conn.query("BEGIN; SELECT pg_backend_pid()").await;
    assert_eq!(ready_status(&messages), b'T');
    first_column(&messages)[0].parse().unwrap()
}

async fn unhold(conn: &mut Wire) {
    let messages = conn.query("COMMIT").await;
    assert_eq!(ready_status(&messages), b'I');
}

/// (TimeZone, DateStyle, application_name, backend pid) as the client's transaction sees them.
async fn settings(conn: &mut Wire) -> (String, String, String, i32) {
    let rows = conn
        .rows("SELECT current_setting('TimeZone'), current_setting('DateStyle'), current_setting('application_name'), pg_backend_pid()::text")
        .await;
    let row: Vec<String> = rows[0].iter().map(|v| v.clone().unwrap()).collect();
    (
        row[0].clone(),
        row[1].clone(),
        row[2].clone(),
        row[3].parse().unwrap(),
    )
}

const HOSTILE_TABLE: &str = "qcp_smart_params_hostile";
/// As typed in SQL (standard_conforming_strings: the backslash is literal).
const HOSTILE_SQL: &str = "x''); DROP TABLE qcp_smart_params_hostile; --\\";
const HOSTILE_VALUE: &str = "x'); DROP TABLE qcp_smart_params_hostile; --\\";

/// Client A changes TimeZone, DateStyle and application_name outside a transaction on
/// backend X; its next transaction runs on backend Y and sees its values (the hostile
/// application_name replayed literally); client B, who then gets X, sees its own start-up
/// values, and client C (no settings) the server's defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_session_parameters_follow_the_client_across_backends() {
    let qcp = Setup::smart().pool_size(2).start();
    let admin = admin().await;
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {HOSTILE_TABLE}; CREATE TABLE {HOSTILE_TABLE} (x int); \
             ALTER TABLE {HOSTILE_TABLE} OWNER TO {}",
            SCRAM_USER.0
        ))
        .await
        .unwrap();
    let mut h1 = Wire::open(&qcp).await;
    let mut h2 = Wire::open(&qcp).await;
    let mut a = Wire::open_with(&qcp, &[("application_name", "smart-params-a")]).await;
    let mut b = Wire::open_with(
        &qcp,
        &[
            ("application_name", "smart-params-b"),
            ("TimeZone", "America/New_York"),
        ],
    )
    .await;
    let mut c = Wire::open(&qcp).await;
    let default_tz = c.greeting_value("TimeZone");
    let default_ds = c.greeting_value("DateStyle");
    assert_ne!(default_tz, "Asia/Tokyo");
    assert_ne!(default_ds, "SQL, DMY");

    // Both backends exist; X is the only idle one.
    let x = hold(&mut h1).await;
    let y = hold(&mut h2).await;
    assert_ne!(x, y);
    unhold(&mut h1).await;

    // A's SETs run on X.
    let set = a
        .query(&format!(
            "SET TimeZone = 'Asia/Tokyo'; SET DateStyle = 'SQL, DMY'; \
             SET application_name = '{HOSTILE_SQL}'; SELECT pg_backend_pid()"
        ))
        .await;
    assert_eq!(error_codes(&set), Vec::<String>::new());
    assert_eq!(first_column(&set), [x.to_string()]);
    assert_eq!(ready_status(&set), b'I');
    assert_eq!(
        parameter_status(&set, "TimeZone").as_deref(),
        Some("Asia/Tokyo")
    );
    assert_eq!(
        parameter_status(&set, "application_name").as_deref(),
        Some(HOSTILE_VALUE)
    );

    // X is held; Y is freed: A's next transaction runs on Y with A's values.
    assert_eq!(hold(&mut h1).await, x);
    unhold(&mut h2).await;
    let began = a
        .query("BEGIN; SELECT current_setting('TimeZone'), current_setting('DateStyle'), current_setting('application_name'), pg_backend_pid()::text")
        .await;
    assert_eq!(ready_status(&began), b'T');
    assert_eq!(
        rows(&began),
        [[
            Some("Asia/Tokyo".to_owned()),
            Some("SQL, DMY".to_owned()),
            Some(HOSTILE_VALUE.to_owned()),
            Some(y.to_string()),
        ]]
    );

    // A holds Y; X is freed: B and C get X, where A's SETs were made, and see their own.
    unhold(&mut h1).await;
    assert_eq!(
        settings(&mut b).await,
        (
            "America/New_York".to_owned(),
            default_ds.clone(),
            "smart-params-b".to_owned(),
            x
        )
    );
    let (tz, ds, _, pid) = settings(&mut c).await;
    assert_eq!(
        (tz.as_str(), ds.as_str(), pid),
        (default_tz.as_str(), default_ds.as_str(), x)
    );

    // And A, back on X after B and C, still has its values.
    assert_eq!(hold(&mut h1).await, x);
    unhold(&mut a).await;
    assert_eq!(hold(&mut h2).await, y);
    unhold(&mut h1).await;
    assert_eq!(
        settings(&mut a).await,
        (
            "Asia/Tokyo".to_owned(),
            "SQL, DMY".to_owned(),
            HOSTILE_VALUE.to_owned(),
            x
        )
    );
    unhold(&mut h2).await;
    let survived: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = $1",
            &[&HOSTILE_TABLE],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(survived, 1, "the hostile value was never run as SQL");
    admin
        .batch_execute(&format!("DROP TABLE {HOSTILE_TABLE}"))
        .await
        .unwrap();
}

/// What does not last beyond a transaction does not follow the client either: a SET rolled
/// back, a SET LOCAL, a SET the server refused. RESET goes back to the client's start-up value
/// on the next backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_rolled_back_local_and_failed_sets_do_not_follow_the_client() {
    let qcp = Setup::smart().pool_size(2).start();
    let mut h1 = Wire::open(&qcp).await;
    let mut h2 = Wire::open(&qcp).await;
    let mut a = Wire::open_with(&qcp, &[("TimeZone", "Europe/Lisbon")]).await;

    let x = hold(&mut h1).await;
    let y = hold(&mut h2).await;
    unhold(&mut h1).await;
    // On X: a SET that sticks, then one rolled back, one LOCAL, one refused.
    let sets = a
        .query("SET TimeZone = 'Asia/Tokyo'; SELECT pg_backend_pid()")
        .await;
    assert_eq!(first_column(&sets), [x.to_string()]);
    let rolled_back = a
        .query("BEGIN; SET TimeZone = 'Europe/Moscow'; ROLLBACK")
        .await;
    assert_eq!(ready_status(&rolled_back), b'I');
    let local = a
        .query("BEGIN; SET LOCAL TimeZone = 'Europe/Paris'; COMMIT")
        .await;
    assert_eq!(ready_status(&local), b'I');
    let refused = a.query("SET TimeZone = 'Nowhere/Invalid'").await;
    assert_eq!(error_codes(&refused), ["22023"]);
    let same = a
        .rows("SELECT current_setting('TimeZone'), pg_backend_pid()::text")
        .await;
    assert_eq!(same, [[Some("Asia/Tokyo".to_owned()), Some(x.to_string())]]);

    // On Y: still Tokyo.
    assert_eq!(hold(&mut h1).await, x);
    unhold(&mut h2).await;
    let moved = a
        .rows("SELECT current_setting('TimeZone'), pg_backend_pid()::text")
        .await;
    assert_eq!(
        moved,
        [[Some("Asia/Tokyo".to_owned()), Some(y.to_string())]]
    );

    unhold(&mut h1).await;
}

/// RESET of a parameter the client set at start-up: qcp applies start-up values with
/// `set_config`, and PostgreSQL offers no way to change a session's reset value, so RESET
/// goes to the server's default (as behind PgBouncer; documented in the README). What qcp
/// guarantees is consistency: the value after RESET follows the client to the next backend
/// instead of flipping back to the start-up value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_reset_follows_the_client_to_the_next_backend() {
    let qcp = Setup::smart().pool_size(2).start();
    let mut h1 = Wire::open(&qcp).await;
    let mut h2 = Wire::open(&qcp).await;
    let mut a = Wire::open_with(&qcp, &[("TimeZone", "Europe/Lisbon")]).await;

    let x = hold(&mut h1).await;
    let y = hold(&mut h2).await;
    unhold(&mut h1).await;
    let reset = a
        .query("SET TimeZone = 'Asia/Tokyo'; RESET TimeZone; SELECT current_setting('TimeZone'), pg_backend_pid()::text")
        .await;
    let default = {
        let direct = connect(&superuser_conninfo(&pg_addr())).await.unwrap();
        let row = direct
            .query_one(
                "SELECT reset_val FROM pg_settings WHERE name = 'TimeZone'",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, String>(0)
    };
    assert_ne!(
        default, "Europe/Lisbon",
        "the test needs a server default other than the start-up value"
    );
    assert_eq!(
        rows(&reset),
        [[Some(default.clone()), Some(x.to_string())]],
        "RESET on the backend where it ran gives the server's default"
    );
    assert_eq!(hold(&mut h1).await, x);
    unhold(&mut h2).await;
    let moved = a
        .rows("SELECT current_setting('TimeZone'), pg_backend_pid()::text")
        .await;
    assert_eq!(
        moved,
        [[Some(default), Some(y.to_string())]],
        "after RESET, the next backend has the same value, not the start-up one"
    );
    unhold(&mut h1).await;
}
