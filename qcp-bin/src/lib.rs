//! Shared pieces of the qcp and qcp-ctrl programs (placeholder).
