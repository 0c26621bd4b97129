//! What qcp counts while it runs, and the point-in-time [`Snapshot`] the admin console,
//! `qcp-ctrl show` and the Prometheus endpoint render.
//!
//! - `counters.rs`: per-pool counters, one cache-line-aligned shard per engine thread, so
//!   the hot path adds to its own shard with relaxed atomics: no lock, no allocation, no
//!   cache line shared between threads;
//! - `histogram.rs`: fixed-bucket latency histograms with the same sharding;
//! - `averages.rs`: PgBouncer's `avg_*` figures, from the totals seen one `stats_period` ago;
//! - `snapshot.rs`: the plain data every renderer reads (no lock held while rendering).

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

mod averages;
mod counters;
mod histogram;
mod snapshot;

pub use averages::Averages;
pub use counters::{Counter, PoolCounters, Shard, Totals};
pub use histogram::{HistogramSnapshot, BUCKET_BOUNDS_US};
pub use snapshot::*;
