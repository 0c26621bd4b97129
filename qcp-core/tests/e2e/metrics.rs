//! `/metrics` against real traffic: scraped while pgbench runs through qcp, the text parses
//! as the Prometheus format (and passes `promtool check metrics` where promtool is
//! installed), and the figures add up: the transactions counted are pgbench's.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::smart_pgbench::{pgbench, reported};
use crate::support::*;

/// One HTTP GET of `path`; returns (status line, body).
fn get(address: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(address).expect("connect to /metrics");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: qcp\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// The value of the sample `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("the scrape parses");
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// `promtool check metrics` on `text`, when promtool is installed: `None` when it is not.
fn promtool(text: &str) -> Option<(bool, String)> {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(text.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    Some((output.status.success(), said))
}

#[tokio::test]
async fn metrics_scraped_during_pgbench_parse_and_add_up() {
    let qcp = Setup::smart()
        .pool_size(2)
        .extra("metrics_address: 127.0.0.1:0\n")
        .start();
    let address = qcp.metrics_addr().expect("metrics are served");
    let pool = [("database", DATABASE), ("user", SCRAM_USER.0)];
    let script = scratch_dir("pgbench");
    let file = script.path().join("one.sql");
    std::fs::write(&file, "SELECT 1;\n").expect("write the script");
    let port = qcp.addr.port().to_string();
    let file = file.display().to_string();
    let run = tokio::spawn(async move {
        pgbench(
            "127.0.0.1",
            &port,
            DATABASE,
            &["-n", "-c", "4", "-t", "250", "-f", &file],
        )
        .await
    });
    // Scraped while pgbench runs (and at least once after).
    let mut scrapes = 0;
    while !run.is_finished() && scrapes < 200 {
        let (status, body) = get(address, "/metrics");
        assert!(status.contains("200"), "{status}");
        assert!(sample(&body, "qcp_uptime_seconds", &[]).is_some(), "{body}");
        scrapes += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = run.await.expect("join pgbench");
    let processed = reported(&report, "number of transactions actually processed:");
    assert_eq!(processed, 1000, "{report}");

    let (status, body) = get(address, "/metrics");
    assert!(status.contains("200"), "{status}");
    let transactions = sample(&body, "qcp_pool_transactions_total", &pool).expect("transactions");
    assert_eq!(
        transactions, processed as f64,
        "every pgbench transaction is counted once"
    );
    let queries = sample(&body, "qcp_pool_queries_total", &pool).expect("queries");
    assert_eq!(queries, processed as f64, "one query per transaction");
    let histogram_count = sample(&body, "qcp_pool_transaction_duration_seconds_count", &pool)
        .expect("the transaction histogram");
    assert_eq!(histogram_count, transactions);
    // The parser folds buckets into the histogram: read the +Inf bucket's line itself.
    let inf = body
        .lines()
        .find(|line| {
            line.starts_with("qcp_pool_transaction_duration_seconds_bucket{")
                && line.contains(&format!("database=\"{DATABASE}\""))
                && line.contains(&format!("user=\"{}\"", SCRAM_USER.0))
                && line.contains("le=\"+Inf\"")
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok());
    assert_eq!(
        inf,
        Some(transactions),
        "the +Inf bucket holds every observation"
    );
    let received = sample(&body, "qcp_pool_received_bytes_total", &pool).expect("bytes");
    assert!(
        received >= 1000.0 * 15.0,
        "each Query is at least 15 bytes: {received}"
    );
    let opened = sample(&body, "qcp_pool_server_connections_opened_total", &pool).expect("opened");
    assert!((1.0..=2.0).contains(&opened), "pool_size 2: {opened}");
    let logins = sample(&body, "qcp_logins_total", &[("outcome", "ok")]).expect("logins");
    assert!(logins >= 4.0, "pgbench's four clients logged in: {logins}");
    assert!(sample(&body, "qcp_build_info", &[]).is_some(), "{body}");
    if let Some((ok, said)) = promtool(&body) {
        assert!(ok, "promtool check metrics: {said}");
    }
    // Anything else is not found.
    let (status, _) = get(address, "/other");
    assert!(status.contains("404"), "{status}");
}
