//! `BackendMessage::decode` over a stream: no panic, `used <= len`, every accessor read and
//! every field iterator drained.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qcp_codec::fuzzing::fuzz_backend(data));
