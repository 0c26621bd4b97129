//! The console's acting commands against real clients: PAUSE and RESUME (and a switchover
//! under pgbench), KILL and KILL_CLIENT, DISABLE and ENABLE, RECONNECT and WAIT_CLOSE; the
//! control socket runs the same commands (`qcp-ctrl pause app`).

use std::time::Duration;

use crate::smart_pgbench::{pgbench, reported, BenchDatabase};
use crate::support::*;

const WAIT: Duration = Duration::from_secs(20);

fn setup() -> Setup {
    Setup::smart()
        .pool_size(2)
        .extra(&format!("admin_users: [{}]\n", SCRAM_USER.0))
}

async fn console(qcp: &Qcp) -> tokio_postgres::Client {
    connect(&qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, "qcp"))
        .await
        .expect("the admin logs in to the console")
}

/// A query run on a task of its own, to see whether it is held.
fn spawn_query(
    client: tokio_postgres::Client,
    sql: &'static str,
) -> tokio::task::JoinHandle<(tokio_postgres::Client, Result<i32, tokio_postgres::Error>)> {
    tokio::spawn(async move {
        let result = client.query_one(sql, &[]).await.map(|row| row.get(0));
        (client, result)
    })
}

#[tokio::test]
async fn pause_waits_for_transactions_and_holds_new_requests_until_resume() {
    let qcp = setup().start();
    let admin = console(&qcp).await;
    let holder = qcp.client().await;
    holder.batch_execute("BEGIN; SELECT 1").await.unwrap();

    let pausing = tokio::spawn(async move {
        let result = admin.simple_query(&format!("PAUSE {DATABASE}")).await;
        (admin, result)
    });
    // A new request is held, even with a free slot in the pool.
    let held = spawn_query(qcp.client().await, "SELECT 7");
    wait_queued(&qcp, 1).await;
    assert!(
        !pausing.is_finished(),
        "PAUSE waits for the open transaction"
    );
    holder.batch_execute("COMMIT").await.unwrap();
    let (admin, paused) = tokio::time::timeout(WAIT, pausing).await.unwrap().unwrap();
    paused.expect("PAUSE completes once the transaction ended");
    // Still held (not refused) after PAUSE returned.
    assert_eq!(qcp.status_view().test_pool().2, 1, "the client still waits");
    assert!(!held.is_finished());

    admin.simple_query("RESUME").await.expect("RESUME");
    let (_, value) = tokio::time::timeout(WAIT, held).await.unwrap().unwrap();
    assert_eq!(value.expect("served after RESUME"), 7);
    let error = admin.simple_query("RESUME").await.expect_err("not paused");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("55000"), "{error}");
    // With nothing in use, PAUSE returns at once; twice is an error.
    admin.simple_query("PAUSE").await.expect("PAUSE");
    let error = admin
        .simple_query("PAUSE")
        .await
        .expect_err("paused already");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("55000"), "{error}");
    admin.simple_query("RESUME").await.expect("RESUME");
}

#[tokio::test]
async fn kill_client_and_kill_close_clients_with_57p01() {
    let qcp = setup().start();
    let admin = console(&qcp).await;
    let (victim, victim_conn) =
        connect_watched(&qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE))
            .await
            .expect("connect");
    victim.simple_query("SELECT 1").await.unwrap();
    // The only client of the database so far (the console's is in database qcp).
    let id = qcp
        .snapshot()
        .clients
        .into_iter()
        .find(|c| c.database == DATABASE)
        .expect("the victim in SHOW CLIENTS")
        .id;
    let bystander = qcp.client().await;
    admin
        .simple_query(&format!("KILL_CLIENT {id}"))
        .await
        .expect("KILL_CLIENT");
    let outcome = tokio::time::timeout(WAIT, victim_conn)
        .await
        .unwrap()
        .unwrap();
    let error = outcome.expect_err("the victim's connection ends");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("57P01"), "{error}");
    bystander
        .simple_query("SELECT 1")
        .await
        .expect("others go on");
    let error = admin
        .simple_query("KILL_CLIENT 999999")
        .await
        .expect_err("no such client");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("42704"), "{error}");

    // KILL db: every client of it goes, and new ones wait until RESUME.
    admin
        .simple_query(&format!("KILL {DATABASE}"))
        .await
        .expect("KILL");
    let error = bystander
        .simple_query("SELECT 1")
        .await
        .expect_err("killed");
    assert!(
        bystander.is_closed() || sqlstate_of(&error).as_deref() == Some("57P01"),
        "{error}"
    );
    let held = spawn_query(qcp.client().await, "SELECT 8");
    wait_queued(&qcp, 1).await;
    admin
        .simple_query(&format!("RESUME {DATABASE}"))
        .await
        .expect("RESUME");
    let (_, value) = tokio::time::timeout(WAIT, held).await.unwrap().unwrap();
    assert_eq!(value.unwrap(), 8);
}

#[tokio::test]
async fn disable_refuses_new_logins_and_enable_accepts_them_again() {
    let qcp = setup().start();
    let admin = console(&qcp).await;
    let connected = qcp.client().await;
    admin
        .simple_query(&format!("DISABLE {DATABASE}"))
        .await
        .expect("DISABLE");
    let error = connect(&qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE))
        .await
        .expect_err("disabled");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("55000"), "{error}");
    let message = error
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_default();
    assert!(
        message.contains("is not currently accepting connections"),
        "{message}"
    );
    connected
        .simple_query("SELECT 1")
        .await
        .expect("connected clients stay");
    admin
        .simple_query(&format!("ENABLE {DATABASE}"))
        .await
        .expect("ENABLE");
    qcp.client()
        .await
        .simple_query("SELECT 1")
        .await
        .expect("accepted again");
}

#[tokio::test]
async fn reconnect_replaces_server_connections_and_wait_close_waits_for_it() {
    let qcp = setup().start();
    let db = qcp.client().await;
    let before = pid_of(&db).await;
    // Through the control socket, as qcp-ctrl sends them.
    let answer = qcp.control(&format!("reconnect {DATABASE}"));
    assert!(answer.starts_with("ok: RECONNECT"), "{answer}");
    let socket = qcp.control_socket();
    let waited = tokio::task::spawn_blocking(move || control_at(&socket, "wait_close"));
    let answer = tokio::time::timeout(WAIT, waited).await.unwrap().unwrap();
    assert!(answer.starts_with("ok: WAIT_CLOSE"), "{answer}");
    let admin = admin().await;
    let gone = admin
        .query_opt("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&before])
        .await
        .unwrap();
    assert!(gone.is_none(), "the old server connection is closed");
    assert_ne!(pid_of(&db).await, before, "the client gets a new one");
    let answer = qcp.control("resume");
    assert!(answer.starts_with("error: qcp is not paused"), "{answer}");
    let answer = qcp.control("frobnicate");
    assert!(answer.starts_with("error: unknown command"), "{answer}");
}

/// The switchover the issue describes: PAUSE, repoint the server in the file, reload,
/// RESUME, all while pgbench runs tpcb-like: no transaction is lost or fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_under_pgbench_loses_no_transaction() {
    const DB: &str = "qcp_switchover";
    const CLIENTS: u64 = 8;
    const PER_CLIENT: u64 = 300;
    let bench = BenchDatabase::create(DB).await;
    let addr = pg_addr();
    let (host, port) = addr.rsplit_once(':').unwrap();
    pgbench(host, port, DB, &["-i", "-s", "1", "-q"]).await;
    let setup = Setup::smart().pool_size(4);
    let qcp = setup.start();
    let qcp_port = qcp.addr.port().to_string();
    let run = tokio::spawn(async move {
        let clients = CLIENTS.to_string();
        let per_client = PER_CLIENT.to_string();
        pgbench(
            "127.0.0.1",
            &qcp_port,
            DB,
            &["-n", "-c", &clients, "-j", "2", "-t", &per_client],
        )
        .await
    });
    let committed = |qcp: &Qcp| {
        qcp.snapshot()
            .pools
            .iter()
            .filter(|p| p.database == DB)
            .map(|p| p.totals.get(qcp_core::stats::Counter::Xacts))
            .sum::<u64>()
    };
    wait_until("pgbench is under way", WAIT, || async {
        committed(&qcp) > 200
    })
    .await;

    let socket = qcp.control_socket();
    let paused = tokio::task::spawn_blocking(move || control_at(&socket, &format!("pause {DB}")));
    let answer = tokio::time::timeout(WAIT, paused).await.unwrap().unwrap();
    assert!(answer.starts_with("ok: PAUSE"), "{answer}");
    let mut repointed = setup.clone();
    repointed.servers = vec![(format!("{}:{}", pg_socket_dir(), pg_port()), 4)];
    qcp.write_config(&repointed.yaml(qcp.dir.path()));
    let report = qcp.reload().expect("reload");
    assert_eq!(report.changed, ["servers"], "{report}");
    let answer = qcp.control(&format!("resume {DB}"));
    assert!(answer.starts_with("ok: RESUME"), "{answer}");
    let during = committed(&qcp);

    let report = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        reported(&report, "number of transactions actually processed:"),
        CLIENTS * PER_CLIENT,
        "{report}"
    );
    assert_eq!(
        reported(&report, "number of failed transactions:"),
        0,
        "{report}"
    );
    assert!(
        committed(&qcp) > during,
        "transactions ran after the switch"
    );
    let servers = qcp.snapshot().servers;
    assert!(
        servers
            .iter()
            .filter(|s| s.database == DB)
            .all(|s| s.addr.starts_with('/')),
        "every server connection is to the new address: {:?}",
        servers.iter().map(|s| &s.addr).collect::<Vec<_>>()
    );
    let direct = bench.admin().await;
    let row = direct
        .query_one(
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts)::bigint, \
                    (SELECT sum(delta) FROM pgbench_history)::bigint, \
                    (SELECT count(*) FROM pgbench_history)",
            &[],
        )
        .await
        .unwrap();
    let (balances, deltas, history): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(balances, deltas);
    assert_eq!(
        history as u64,
        CLIENTS * PER_CLIENT,
        "every committed transaction is there"
    );
    drop(direct);
    bench.drop_it().await;
}

#[tokio::test]
async fn shutdown_wait_for_clients_lets_each_client_finish_on_its_own() {
    let mut qcp = setup().start();
    let staying = qcp.client().await;
    staying.simple_query("SELECT 1").await.unwrap();
    let answer = qcp.control("shutdown wait_for_clients");
    assert!(answer.starts_with("ok: SHUTDOWN"), "{answer}");
    let stopped = qcp.stopped();
    // No new clients...
    let conninfo = qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE);
    wait_until("the listener is closed", WAIT, || async {
        connect(&conninfo).await.is_err()
    })
    .await;
    // ...but the connected one is not told to go, and its transactions still run (it gets a
    // server connection again and again in Smart mode).
    for n in 0..5 {
        let row = staying
            .query_one("SELECT $1::int", &[&n])
            .await
            .expect("still served");
        assert_eq!(row.get::<_, i32>(0), n);
    }
    assert!(!stopped.is_finished(), "qcp waits for its last client");
    drop(staying);
    tokio::time::timeout(WAIT, stopped)
        .await
        .expect("qcp stops once its last client left")
        .unwrap();
}
