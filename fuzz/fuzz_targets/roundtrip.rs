//! The first byte picks startup packet / frontend stream / backend stream (`% 3`); every
//! decoded message re-encodes, and rebuilds from its parts, to exactly its own bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qcp_codec::fuzzing::fuzz_roundtrip(data));
