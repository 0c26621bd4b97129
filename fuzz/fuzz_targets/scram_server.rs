//! qcp's SCRAM server (`ScramServer`) on arbitrary client-first and client-final messages,
//! with and without channel binding: no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qcp_core::fuzzing::fuzz_scram_server(data));
