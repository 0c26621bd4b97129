//! `split_frames`, `header::Frames` and `Header::parse_split` on arbitrary bytes: they agree,
//! frame lengths add up to `consumed`, and `consumed <= len`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| qcp_codec::fuzzing::fuzz_frames(data));
