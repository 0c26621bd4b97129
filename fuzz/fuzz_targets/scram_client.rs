//! qcp's SCRAM client (`ScramClient`) on arbitrary server-first and server-final messages,
//! with and without channel binding: no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qcp_core::fuzzing::fuzz_scram_client(data));
