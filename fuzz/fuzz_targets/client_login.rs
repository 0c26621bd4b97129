//! A client's whole login to qcp (`read_opening`, `Authenticator`) on arbitrary bytes, with
//! each auth method, TLS offer and channel binding: no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qcp_core::fuzzing::fuzz_client_login(data));
