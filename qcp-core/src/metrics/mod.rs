//! The Prometheus text exposition (format 0.0.4) of a [`Snapshot`]: what `GET /metrics`
//! answers. Sans-IO: [`render`] turns a snapshot into text; `driver/metrics_http.rs` serves it.
//!
//! `prometheus-client` writes the text, from a [`Collector`] that reads a copy of the
//! snapshot's figures at scrape time: no metric object lives on the hot path, which keeps
//! counting in `stats/`, and only a scrape pays for what is here. Units follow Prometheus:
//! seconds and bytes; the histograms' microsecond bounds become seconds and their counts
//! cumulative. The README lists every metric, and a test keeps the two in step.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    prometheus_text, DescriptorEncoder, EncodeGaugeValue, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::stats::{
    ArenaView, Counter, HistogramSnapshot, LoginOutcome, PoolView, Snapshot, BUCKET_BOUNDS_US,
};

/// The `Content-Type` of what [`render`] returns (the Prometheus text format, 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The Prometheus text exposition of `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape::of(snapshot)));
    // About 6 KiB a pool (three histograms of 19 buckets make most of it), with room.
    let capacity = snapshot
        .pools
        .len()
        .saturating_add(1)
        .saturating_mul(8 * 1024);
    let mut text = String::with_capacity(capacity);
    match prometheus_text::encode(&mut text, &registry) {
        Ok(()) => text,
        // Writing to a String cannot fail, nor can the collector; should either ever do so,
        // an empty answer is better than a family cut in the middle.
        Err(fmt::Error) => {
            tracing::error!("could not encode the metrics");
            String::new()
        }
    }
}

/// What a scrape shows, copied out of the snapshot (the collector must own its data).
#[derive(Debug)]
struct Scrape {
    version: String,
    uptime: Duration,
    shutting_down: bool,
    pools: Vec<PoolView>,
    clients_logged_in: u64,
    clients_logging_in: u64,
    arena: ArenaView,
    logins: Vec<(LoginOutcome, u64)>,
    errors: Vec<(String, u64)>,
}

impl Scrape {
    fn of(snapshot: &Snapshot) -> Self {
        Scrape {
            version: snapshot.version.clone(),
            uptime: snapshot.uptime,
            shutting_down: snapshot.shutting_down,
            pools: snapshot.pools.clone(),
            clients_logged_in: snapshot.clients.len() as u64,
            clients_logging_in: snapshot.login_clients,
            arena: snapshot.arena.clone(),
            logins: snapshot.logins.clone(),
            errors: snapshot.errors.clone(),
        }
    }

    fn encode_pools(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let pools = self.pools.as_slice();
        pool_states(
            encoder,
            pools,
            "qcp_pool_clients",
            "Logged-in clients of the pool: active (linked to a server connection, or idle) or waiting (queued for a server connection).",
            &[("active", |p| p.cl_active), ("waiting", |p| p.cl_waiting)],
        )?;
        pool_states(
            encoder,
            pools,
            "qcp_pool_servers",
            "Server connections of the pool: active (linked to a client), idle (in the pool), used (out of the pool, linked to nobody: being synced, reset or closed) or login (being opened or logged in).",
            &[
                ("active", |p| p.sv_active),
                ("idle", |p| p.sv_idle),
                ("used", |p| p.sv_used),
                ("login", |p| p.sv_login),
            ],
        )?;
        per_pool(
            encoder,
            pools,
            "qcp_pool_max_wait_seconds",
            "How long the pool's longest-waiting client has waited for a server connection, 0 when none waits.",
            MetricType::Gauge,
            |p| ConstGauge::new(p.max_wait.as_secs_f64()),
        )?;

        let counters: [(&str, &str, Counter); 12] = [
            (
                "qcp_pool_transactions",
                "Transactions completed (a ReadyForQuery outside a transaction after a request).",
                Counter::Xacts,
            ),
            (
                "qcp_pool_queries",
                "Queries completed.",
                Counter::Queries,
            ),
            (
                "qcp_pool_received_bytes",
                "Bytes received from the pool's clients.",
                Counter::Received,
            ),
            (
                "qcp_pool_sent_bytes",
                "Bytes sent to the pool's clients.",
                Counter::Sent,
            ),
            (
                "qcp_pool_server_assignments",
                "Times a server connection was linked to a client.",
                Counter::ServerAssignments,
            ),
            (
                "qcp_pool_server_connections_opened",
                "Server connections opened.",
                Counter::ServerConnects,
            ),
            (
                "qcp_pool_server_connections_failed",
                "Server connections that could not be opened or logged in.",
                Counter::ServerConnectFailures,
            ),
            (
                "qcp_pool_prepared_client_parses",
                "Parse messages of named prepared statements received from clients.",
                Counter::ClientParses,
            ),
            (
                "qcp_pool_prepared_server_parses",
                "Parse messages qcp sent to servers for clients' named prepared statements (statements not yet prepared there).",
                Counter::ServerParses,
            ),
            (
                "qcp_pool_prepared_binds",
                "Bind messages of named prepared statements received from clients.",
                Counter::Binds,
            ),
            (
                "qcp_pool_prepared_hits",
                "Clients' named prepared statements found already prepared on their server connection (a Parse saved).",
                Counter::StatementHits,
            ),
            (
                "qcp_pool_prepared_evictions",
                "Prepared statements closed on a server connection to make room (max_prepared_statements).",
                Counter::Evictions,
            ),
        ];
        for (name, help, counter) in counters {
            per_pool(encoder, pools, name, help, MetricType::Counter, |p| {
                ConstCounter::new(p.totals.get(counter))
            })?;
        }
        per_pool(
            encoder,
            pools,
            "qcp_pool_wait_seconds",
            "Time clients spent waiting for a server connection.",
            MetricType::Counter,
            |p| ConstCounter::new(seconds(p.totals.get(Counter::WaitTime))),
        )?;

        per_pool(
            encoder,
            pools,
            "qcp_pool_transaction_duration_seconds",
            "Durations of completed transactions.",
            MetricType::Histogram,
            |p| Histogram(&p.totals.xact_time),
        )?;
        per_pool(
            encoder,
            pools,
            "qcp_pool_query_duration_seconds",
            "Durations of completed queries.",
            MetricType::Histogram,
            |p| Histogram(&p.totals.query_time),
        )?;
        per_pool(
            encoder,
            pools,
            "qcp_pool_wait_duration_seconds",
            "How long clients waited for a server connection, one observation per wait.",
            MetricType::Histogram,
            |p| Histogram(&p.totals.wait_time),
        )
    }

    fn encode_instance(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        {
            let mut family = encoder.encode_descriptor(
                "qcp_logins",
                "Logins since start-up, by outcome: ok, bad_password (or unknown user), unknown_database, too_many (connection limits, login slots or shutdown), protocol (the client broke the protocol or left), other (TLS and server-side refusals).",
                None,
                MetricType::Counter,
            )?;
            for outcome in LoginOutcome::ALL {
                let count = self
                    .logins
                    .iter()
                    .filter(|(o, _)| *o == outcome)
                    .fold(0u64, |sum, (_, n)| sum.wrapping_add(*n));
                ConstCounter::new(count)
                    .encode(family.encode_family(&[("outcome", outcome.as_str())])?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "qcp_client_errors",
                "Errors qcp itself sent to clients since start-up (not those relayed from servers), by SQLSTATE.",
                None,
                MetricType::Counter,
            )?;
            for (sqlstate, count) in &self.errors {
                ConstCounter::new(*count)
                    .encode(family.encode_family(&[("sqlstate", sqlstate.as_str())])?)?;
            }
        }

        let stats = &self.arena.stats;
        let chunks = stats.chunks_count;
        let gauges: [(&str, &str, u64); 8] = [
            (
                "qcp_clients_logged_in",
                "Clients logged in.",
                self.clients_logged_in,
            ),
            (
                "qcp_clients_logging_in",
                "Clients in the middle of logging in.",
                self.clients_logging_in,
            ),
            (
                "qcp_arena_chunks",
                "Chunks in the arena, the fixed memory that carries all traffic.",
                chunks as u64,
            ),
            (
                "qcp_arena_chunks_used",
                "Arena chunks in use.",
                stats.in_use as u64,
            ),
            (
                "qcp_arena_chunks_free",
                "Arena chunks free (the reserved ones included).",
                chunks.saturating_sub(stats.in_use) as u64,
            ),
            (
                "qcp_arena_chunks_reserved",
                "Arena chunks kept for clients that hold a server connection, so they can always drain its replies.",
                self.arena.reserved,
            ),
            (
                "qcp_arena_chunk_size_bytes",
                "Size of one arena chunk.",
                stats.chunk_size as u64,
            ),
            (
                "qcp_arena_waiting",
                "Requests queued for an arena chunk right now.",
                stats.waiting as u64,
            ),
        ];
        for (name, help, value) in gauges {
            gauge(encoder, name, help, value)?;
        }
        counter(
            encoder,
            "qcp_arena_waits",
            "Times a request found no free arena chunk and had to queue for one.",
            stats.exhausted,
        )?;
        counter(
            encoder,
            "qcp_arena_exhaustions",
            "Requests that found no arena chunk within timeouts.query_wait (the client got SQLSTATE 53200).",
            self.arena.exhaustions,
        )?;

        gauge(
            encoder,
            "qcp_uptime_seconds",
            "How long qcp has run.",
            self.uptime.as_secs_f64(),
        )?;
        gauge(
            encoder,
            "qcp_shutting_down",
            "1 while a graceful shutdown runs, else 0.",
            u64::from(self.shutting_down),
        )?;
        // An info metric: the 0.0.4 text names it `qcp_build_info`, a gauge of value 1.
        encoder
            .encode_descriptor(
                "qcp_build",
                "Always 1; its version label is qcp's version.",
                None,
                MetricType::Info,
            )?
            .encode_info(&[("version", self.version.as_str())])
    }
}

/// One gauge without labels.
fn gauge<V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: V,
) -> fmt::Result {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// One counter without labels (`name` without the `_total` the encoder appends).
fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    ConstCounter::new(value).encode(encoder.encode_descriptor(
        name,
        help,
        None,
        MetricType::Counter,
    )?)
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        self.encode_pools(&mut encoder)?;
        self.encode_instance(&mut encoder)
    }
}

/// One family with a sample per pool, labelled `database` and `user`. For a counter, `name`
/// lacks the `_total` the encoder appends.
fn per_pool<'p, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    pools: &'p [PoolView],
    name: &str,
    help: &str,
    metric_type: MetricType,
    metric: impl Fn(&'p PoolView) -> M,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
    for pool in pools {
        let labels = [
            ("database", pool.database.as_str()),
            ("user", pool.user.as_str()),
        ];
        metric(pool).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Reads one figure of a pool.
type PoolFigure = fn(&PoolView) -> u64;

/// One gauge family with a sample per pool and state, labelled `database`, `user`, `state`.
fn pool_states(
    encoder: &mut DescriptorEncoder<'_>,
    pools: &[PoolView],
    name: &str,
    help: &str,
    states: &[(&str, PoolFigure)],
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for pool in pools {
        for (state, value) in states {
            let labels = [
                ("database", pool.database.as_str()),
                ("user", pool.user.as_str()),
                ("state", *state),
            ];
            ConstGauge::new(value(pool)).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// A [`HistogramSnapshot`] as a Prometheus histogram in seconds.
#[derive(Debug)]
struct Histogram<'a>(&'a HistogramSnapshot);

impl EncodeMetric for Histogram<'_> {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> fmt::Result {
        // The encoder takes per-bucket counts and writes them cumulative; the last bound,
        // +Inf, is given so that both of the crate's text encoders write it.
        let mut buckets = self.0.buckets.map(|count| (f64::INFINITY, count));
        for (bucket, bound_us) in buckets.iter_mut().zip(BUCKET_BOUNDS_US) {
            bucket.0 = seconds(bound_us);
        }
        encoder.encode_histogram::<NoLabelSet>(
            seconds(self.0.sum_us),
            self.0.count(),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Microseconds as seconds.
fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}
