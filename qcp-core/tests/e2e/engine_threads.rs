//! `worker_threads: 2`: clients on two engine threads share one pool. A server connection
//! moves to the thread of the client that takes it when that thread has none idle of its
//! own, and every transaction still sees exactly its own results.

use std::collections::HashSet;

use crate::support::*;

const CLIENTS: i64 = 8;
const ROUNDS: i64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engine_threads_share_one_smart_pool() {
    let qcp = Setup::smart()
        .pool_size(2)
        .extra("worker_threads: 2\n")
        .start();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let conn = qcp.client().await;
        tasks.push(tokio::spawn(async move {
            let mut backends = HashSet::new();
            for round in 0..ROUNDS {
                let value = client * 1000 + round;
                conn.batch_execute("BEGIN").await.expect("BEGIN");
                let row = conn
                    .query_one("SELECT $1::int8, pg_backend_pid()", &[&value])
                    .await
                    .expect("query in a transaction");
                assert_eq!(row.get::<_, i64>(0), value, "its own result");
                backends.insert(row.get::<_, i32>(1));
                conn.batch_execute("COMMIT").await.expect("COMMIT");
            }
            backends
        }));
    }
    let mut backends = HashSet::new();
    for task in tasks {
        backends.extend(task.await.expect("client task"));
    }
    assert!(
        backends.len() <= 2,
        "pool_size 2 means at most two backends, got {backends:?}"
    );
    // (Statements the clients dropped are closed on their own time, which may take a
    // connection for a moment: wait until every one is back, then look.)
    wait_all_released(&qcp).await;
    let view = qcp.status_view();
    let (_, idle, _) = view.test_pool();
    assert!(idle <= 2, "{view:?}");
    assert!(
        view.server_connections_opened <= 2,
        "connections moving between threads are never lost and reopened: {view:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engine_threads_in_session_mode_keep_each_session() {
    let qcp = Setup::session()
        .pool_size(4)
        .extra("worker_threads: 2\n")
        .start();
    let mut tasks = Vec::new();
    for client in 0..4i64 {
        let conn = qcp.client().await;
        tasks.push(tokio::spawn(async move {
            conn.batch_execute(&format!("SET application_name = 'engine_{client}'"))
                .await
                .expect("SET");
            let first: i32 = conn
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .expect("pid")
                .get(0);
            for _ in 0..ROUNDS {
                let row = conn
                    .query_one(
                        "SELECT pg_backend_pid(), current_setting('application_name')",
                        &[],
                    )
                    .await
                    .expect("query");
                assert_eq!(row.get::<_, i32>(0), first, "one backend for the session");
                assert_eq!(row.get::<_, String>(1), format!("engine_{client}"));
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }
}
