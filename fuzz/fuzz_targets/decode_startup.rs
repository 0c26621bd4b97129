//! `StartupPacket::decode` on arbitrary bytes: no panic, `used <= len`, every accessor read,
//! canonical re-encoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qcp_codec::fuzzing::fuzz_startup(data));
