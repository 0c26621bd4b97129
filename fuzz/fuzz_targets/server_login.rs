//! qcp's login to a server (`ServerLogin`) on arbitrary server messages: no panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qcp_core::fuzzing::fuzz_server_login(data));
