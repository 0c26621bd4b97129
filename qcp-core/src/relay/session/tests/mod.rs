//! Deterministic session scenarios: scripted client and server bytes through
//! [`harness::Harness`], no sockets and no PostgreSQL. The real-PostgreSQL tests in
//! `tests/e2e/` check the same behaviour end to end.

use super::harness;
mod limits;
mod prepared;
mod release;
mod scope;
mod unlinked;
