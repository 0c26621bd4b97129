//! Table-driven decode cases: for every startup packet and every message in both directions,
//! a good case (decoded, checked, re-encoded to the same bytes) and the ways it can be broken
//! (too short, truncated field, missing NUL, count that cannot fit, trailing bytes, bad value).

use qcp_codec::auth::{Authentication, PasswordMessage, SaslInitialResponse, SaslResponse};
use qcp_codec::fields::ErrorField;
use qcp_codec::frontend::Target;
use qcp_codec::header::Frames;
use qcp_codec::{
    split_frames, BackendMessage, DecodeError, FrontendMessage, Header, Limits, ProtocolVersion,
    StartupPacket, Tag, TransactionStatus,
};

// ---------------------------------------------------------------------------------------------
// Helpers and the case! macro (visible to the submodules below)
// ---------------------------------------------------------------------------------------------

/// A tagged message: tag, length (counting itself), body.
fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// An untagged startup-phase packet: length (counting itself), body.
fn pkt(body: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(body.len() + 4)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(body);
    v
}

/// Concatenates parts.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn be16(v: i16) -> [u8; 2] {
    v.to_be_bytes()
}

fn be32(v: i32) -> [u8; 4] {
    v.to_be_bytes()
}

macro_rules! decode {
    (frontend, $b:expr) => {
        FrontendMessage::decode($b, &Limits::default())
    };
    (backend, $b:expr) => {
        BackendMessage::decode($b, &Limits::default())
    };
    (startup, $b:expr) => {
        StartupPacket::decode($b, &Limits::default())
    };
}

/// `case!(direction name: input => expectation)` defines one `#[test]`:
/// - `=> Err(e)`: decoding fails with exactly `e`;
/// - `=> None`: decoding asks for more bytes;
/// - `=> Pattern => { checks }`: decoding uses all of `input`, gives a message matching
///   `Pattern`, re-encodes to `input`, and the checks hold.
macro_rules! case {
    ($dir:ident $name:ident: $input:expr => Err($err:expr)) => {
        #[test]
        fn $name() {
            let input: Vec<u8> = $input;
            assert_eq!(decode!($dir, &input).err(), Some($err));
        }
    };
    ($dir:ident $name:ident: $input:expr => None) => {
        #[test]
        fn $name() {
            let input: Vec<u8> = $input;
            assert_eq!(decode!($dir, &input), Ok(None));
        }
    };
    ($dir:ident $name:ident: $input:expr => $pat:pat => $check:expr) => {
        #[test]
        fn $name() {
            let input: Vec<u8> = $input;
            let (msg, used) = decode!($dir, &input).expect("valid").expect("complete");
            assert_eq!(used, input.len(), "bytes used");
            let mut out = Vec::new();
            msg.encode(&mut out).expect("re-encodes");
            assert_eq!(out, input, "re-encoding gives the input back");
            #[allow(irrefutable_let_patterns)]
            let $pat = msg
            else {
                panic!("unexpected message {msg:?}")
            };
            let () = $check;
        }
    };
}

#[path = "cases/backend.rs"]
mod backend;
#[path = "cases/framing.rs"]
mod framing;
#[path = "cases/frontend.rs"]
mod frontend;
#[path = "cases/startup.rs"]
mod startup;
