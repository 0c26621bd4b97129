//! QCP core: configuration, arena, pools, authentication and the relay.
//!
//! Layout (one concept per folder):
//! - `config/`: the YAML file, defaults and validation (the only serde_yaml user);
//! - `arena/`: the traffic memory, allocated once at start-up;
//! - `auth/`: secrets, SCRAM-SHA-256 and md5, sans-IO;
//! - `pool/`: server connection pools per (database, user);
//! - `relay/`: framing by header, request/answer tracking, session parameters, sans-IO;
//! - `stats/`: counters, histograms and the snapshot the console and `/metrics` render;
//! - `admin/`: the PgBouncer-compatible admin console (parsing, SHOW tables, wire and text
//!   rendering), sans-IO: it reads a `stats::Snapshot` and writes bytes;
//! - `metrics/`: the Prometheus text of a snapshot (what `/metrics` answers), sans-IO;
//! - `driver/`: the only code that touches the async runtime: sockets, tasks, timers.
//!
//! [`start`] runs an instance; the `qcp` binary is a thin wrapper around it.

pub mod admin;
pub mod arena;
pub mod auth;
pub mod config;
pub mod driver;
pub mod errors;
pub mod metrics;
pub mod pool;
pub mod relay;
pub mod stats;
pub mod tls;

#[doc(hidden)]
pub mod fuzzing;

pub use driver::{
    start, start_with, Instance, LocalAddr, LogHook, ReloadReport, StartError, StartOptions,
};
