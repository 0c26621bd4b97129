//! One client's relay session (Smart and Session mode) driven by the deterministic harness
//! with arbitrary client and server traffic, pool grants, cancels and closes: no panic, no
//! endless loop.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qcp_core::fuzzing::fuzz_session(data));
