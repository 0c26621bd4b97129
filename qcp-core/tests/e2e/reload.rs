//! Reload under connected clients (`Instance::reload`, which SIGHUP, `qcp-ctrl reload` and
//! the console's RELOAD call): pool sizes, servers, users and timeouts change, clients stay
//! connected, and a bad file changes nothing.

use std::time::{Duration, Instant};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(20);

async fn pid_alive(admin: &tokio_postgres::Client, pid: i32) -> bool {
    admin
        .query_opt("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .await
        .expect("read pg_stat_activity")
        .is_some()
}

fn test_pool(qcp: &Qcp) -> qcp_core::stats::PoolView {
    qcp.snapshot()
        .pools
        .into_iter()
        .find(|p| p.database == DATABASE && p.user == SCRAM_USER.0)
        .expect("the test pool")
}

#[tokio::test]
async fn a_bigger_pool_serves_a_waiting_client_and_a_smaller_one_closes_the_surplus() {
    let setup = Setup::smart().pool_size(1);
    let qcp = setup.start();
    let holder = qcp.client().await;
    holder.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let waiter = qcp.client().await;
    let waiting = tokio::spawn(async move {
        let row = waiter
            .query_one("SELECT 2", &[])
            .await
            .map(|r| r.get::<_, i32>(0));
        (waiter, row)
    });
    wait_queued(&qcp, 1).await;

    qcp.write_config(&setup.clone().pool_size(2).yaml(qcp.dir.path()));
    let report = qcp.reload().expect("reload");
    assert_eq!(report.changed, ["servers"], "{report}");
    assert!(report.restart_needed.is_empty(), "{report}");
    let (waiter, row) = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("the waiter is served once the pool grew")
        .unwrap();
    assert_eq!(row.unwrap(), 2);
    holder.batch_execute("COMMIT").await.unwrap();
    wait_all_released(&qcp).await;
    assert_eq!(test_pool(&qcp).sv_idle, 2);

    // Back to 1: the surplus idle connection closes at once; both clients still work.
    qcp.write_config(&setup.yaml(qcp.dir.path()));
    let report = qcp.reload().expect("reload");
    assert_eq!(report.closed, 1, "{report}");
    assert_eq!(test_pool(&qcp).sv_idle, 1);
    for client in [&holder, &waiter] {
        assert_eq!(
            client
                .query_one("SELECT 3", &[])
                .await
                .unwrap()
                .get::<_, i32>(0),
            3
        );
    }
}

#[tokio::test]
async fn a_repointed_server_serves_new_connections_and_old_ones_close_when_released() {
    // Session mode: a client keeps its server connection across the reload.
    let setup = Setup::session().pool_size(4);
    let qcp = setup.start();
    let admin = admin().await;
    let old = qcp.client().await;
    let old_pid = pid_of(&old).await;
    let over_tcp: Option<std::net::IpAddr> = old
        .query_one("SELECT inet_client_addr()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(over_tcp.is_some());

    // The same PostgreSQL, now through its Unix socket.
    let mut repointed = setup.clone();
    repointed.servers = vec![(format!("{}:{}", pg_socket_dir(), pg_port()), 4)];
    qcp.write_config(&repointed.yaml(qcp.dir.path()));
    let report = qcp.reload().expect("reload");
    assert_eq!(report.changed, ["servers"], "{report}");

    assert_eq!(
        pid_of(&old).await,
        old_pid,
        "the client keeps its connection"
    );
    let new = qcp.client().await;
    let over_socket: Option<std::net::IpAddr> = new
        .query_one("SELECT inet_client_addr()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(over_socket, None, "new connections go to the new address");

    // Released, the old connection is closed rather than pooled.
    drop(old);
    let admin = &admin;
    wait_until("the old server connection closed", WAIT, || async move {
        !pid_alive(admin, old_pid).await
    })
    .await;
    let another = qcp.client().await;
    let reused: Option<std::net::IpAddr> = another
        .query_one("SELECT inet_client_addr()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        reused, None,
        "no client gets a connection to the old address"
    );
}

#[tokio::test]
async fn users_added_and_passwords_changed_apply_to_new_logins_only() {
    let mut setup = Setup::smart();
    // qcp_plain exists in PostgreSQL but not, at first, in qcp's users.
    setup.users = format!(
        "users:\n  - name: {}\n    password: {}\n",
        SCRAM_USER.0, SCRAM_USER.1
    );
    let qcp = setup.start();
    let plain = qcp.conninfo(PLAIN_USER.0, PLAIN_USER.1, DATABASE);
    let error = connect(&plain).await.expect_err("not a user of qcp yet");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("28P01"), "{error}");
    let before = qcp.client().await;

    let mut added = setup.clone();
    added.users = format!(
        "users:\n  - name: {}\n    password: {}\n  - name: {}\n    password: {}\n",
        SCRAM_USER.0, SCRAM_USER.1, PLAIN_USER.0, PLAIN_USER.1
    );
    qcp.write_config(&added.yaml(qcp.dir.path()));
    assert_eq!(qcp.reload().expect("reload").changed, ["users"]);
    let plain_client = connect(&plain)
        .await
        .expect("a user added by the reload logs in");
    plain_client.simple_query("SELECT 1").await.unwrap();

    // qcp_scram's password in qcp changes: the old one no longer logs in, while the client
    // that logged in with it stays connected.
    let mut changed = added.clone();
    changed.users = changed.users.replace(
        &format!("password: {}\n", SCRAM_USER.1),
        "password: rotated\n",
    );
    qcp.write_config(&changed.yaml(qcp.dir.path()));
    assert_eq!(qcp.reload().expect("reload").changed, ["users"]);
    let error = connect(&qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE))
        .await
        .expect_err("the old password is refused");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("28P01"), "{error}");
    before
        .simple_query("SELECT 1")
        .await
        .expect("still connected");
}

#[tokio::test]
async fn an_invalid_file_changes_nothing_and_says_what_to_fix() {
    let setup = Setup::smart();
    let qcp = setup.start();
    let client = qcp.client().await;
    let good = setup.yaml(qcp.dir.path());

    let before = qcp.snapshot().config;
    qcp.write_config(&format!("{good}timeouts:\n  query_wait: soon\n"));
    let error = qcp.reload().expect_err("a bad duration");
    assert!(error.contains("timeouts.query_wait"), "{error}");
    assert!(error.contains("line"), "names the line: {error}");

    qcp.write_config("servers: [\n");
    let error = qcp.reload().expect_err("broken YAML");
    assert!(error.contains("YAML"), "{error}");

    client.simple_query("SELECT 1").await.expect("still served");
    qcp.client()
        .await
        .simple_query("SELECT 1")
        .await
        .expect("new logins too");
    assert_eq!(qcp.snapshot().config, before);

    // Settings that need a restart are reported and keep their value; the rest applies.
    qcp.write_config(&good.replace(
        "chunks_count: 256",
        "chunks_count: 300\nworker_threads: 2\nlimits:\n  max_prepared_statements: 50",
    ));
    let report = qcp.reload().expect("reload");
    assert_eq!(
        report.restart_needed,
        ["arena", "worker_threads"],
        "{report}"
    );
    assert_eq!(report.changed, ["limits"], "{report}");
    let value = |key: &str| {
        qcp.snapshot()
            .config
            .into_iter()
            .find(|item| item.key == key)
            .map(|item| (item.value, item.changeable))
    };
    assert_eq!(value("worker_threads"), Some(("1".into(), false)));
    assert_eq!(
        value("limits.max_prepared_statements"),
        Some(("50".into(), true))
    );
}

#[tokio::test]
async fn a_shorter_query_wait_applies_to_the_next_wait() {
    let setup = Setup::smart().pool_size(1);
    let qcp = setup.start();
    let holder = qcp.client().await;
    holder.batch_execute("BEGIN; SELECT 1").await.unwrap();
    qcp.write_config(
        &setup
            .clone()
            .extra("timeouts:\n  query_wait: 1\n")
            .yaml(qcp.dir.path()),
    );
    assert_eq!(qcp.reload().expect("reload").changed, ["timeouts"]);
    let waiter = qcp.client().await;
    let started = Instant::now();
    let error = waiter
        .simple_query("SELECT 2")
        .await
        .expect_err("no connection in 1 s");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("53300"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    holder.batch_execute("COMMIT").await.unwrap();
}

#[tokio::test]
async fn a_database_no_server_serves_any_more_takes_no_new_logins() {
    let setup = Setup::smart();
    let qcp = setup.start();
    let other = qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, OTHER_DATABASE);
    connect(&other)
        .await
        .expect("served at first")
        .simple_query("SELECT 1")
        .await
        .unwrap();
    let only_test = setup.yaml(qcp.dir.path()).replace(
        "    pool_size: 4\n",
        &format!("    pool_size: 4\n    databases: [{DATABASE}]\n"),
    );
    qcp.write_config(&only_test);
    qcp.reload().expect("reload");
    let error = connect(&other).await.expect_err("no server serves it now");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("3D000"), "{error}");
    qcp.client()
        .await
        .simple_query("SELECT 1")
        .await
        .expect("the other database still works");
}
