//! QCP core: configuration, arena, pools, authentication and the relay.
//!
//! Everything below `driver/` is plain, synchronous, testable code; `driver/` is the only
//! place that talks to the async runtime, so the runtime can be swapped in one folder.

pub mod auth;
pub mod config;
