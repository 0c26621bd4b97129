//! Round trips: every message variant encoded with `encode::*`, decoded, checked against the
//! parts, and re-encoded to the same bytes; encoder error cases; and property tests over
//! generated messages in both directions and for startup packets.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use qcp_codec::auth::{Authentication, PasswordMessage, SaslInitialResponse, SaslResponse};
use qcp_codec::fields::{ErrorField, FieldDescription};
use qcp_codec::frontend::Target;
use qcp_codec::{
    encode, BackendMessage, EncodeError, FrontendMessage, Limits, ProtocolVersion, StartupPacket,
    Tag, TransactionStatus,
};

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

/// `roundtrip!(direction name: |out| encode-statements => Pattern => checks)`: encodes into
/// `out`, decodes all of it, matches `Pattern`, runs the checks, and re-encodes the decoded
/// message to the same bytes.
macro_rules! roundtrip {
    ($dir:ident $name:ident: |$out:ident| $encode:expr => $pat:pat => $check:expr) => {
        #[test]
        fn $name() {
            let mut $out: Vec<u8> = Vec::new();
            $encode;
            let (msg, used) = decode!($dir, &$out).expect("valid").expect("complete");
            assert_eq!(used, $out.len());
            let mut again = Vec::new();
            msg.encode(&mut again).expect("re-encodes");
            assert_eq!(again, $out);
            #[allow(irrefutable_let_patterns)]
            let $pat = msg
            else {
                panic!("unexpected {msg:?}")
            };
            let () = $check;
        }
    };
}

#[path = "roundtrip/errors.rs"]
mod errors;
#[path = "roundtrip/props.rs"]
mod props;
#[path = "roundtrip/variants.rs"]
mod variants;
