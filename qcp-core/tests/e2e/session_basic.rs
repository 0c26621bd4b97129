//! Smoke tests through qcp in Session and Smart mode against the real PostgreSQL.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mode_runs_queries() {
    let qcp = Setup::session().start();
    let client = qcp.client().await;
    let row = client
        .query_one("SELECT 1 + 1, current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);
    assert_eq!(row.get::<_, String>(1), SCRAM_USER.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_mode_runs_queries() {
    let qcp = Setup::smart().pool_size(1).start();
    let a = qcp.client().await;
    let b = qcp.client().await;
    for i in 0..20i32 {
        let client = if i % 2 == 0 { &a } else { &b };
        let row = client.query_one("SELECT $1::int * 2", &[&i]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), i * 2);
    }
}
