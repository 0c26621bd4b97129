//! Logins as sans-IO state machines: bytes or whole messages in, bytes out, and the outcome.
//! The driver only reads, writes and bounds the time they take.
//!
//! - [`opening`]: a client's first packets (encryption requests, cancel, start-up packet),
//!   refused as PostgreSQL refuses them;
//! - [`from_client`]: a client logging in to qcp (authentication, greeting);
//! - [`to_server`]: qcp logging in to a PostgreSQL server for its clients.

pub mod from_client;
pub mod opening;
pub mod to_server;

pub use to_server::{Credentials, LoginError, ServerLogin};
