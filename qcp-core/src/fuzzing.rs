//! Entry points for the login-path fuzz targets in `fuzz/` (and for the tests below, which run
//! them on pseudo-random inputs in every test run). Each takes arbitrary bytes and must never
//! panic; the first byte of the input picks the variant (TLS or not, the auth method, channel
//! binding), the rest is what a hostile peer sends.
//!
//! Fixed secrets keep the SCRAM key derivation out of the loop: deriving keys costs
//! thousands of HMACs, which would make each execution slow for nothing.

use std::sync::{Arc, OnceLock};

use qcp_codec::{Header, Limits};

use crate::auth::login::from_client::{read_opening, AuthStep, Authenticator, Opening, TlsOffer};
use crate::auth::login::{Credentials, ServerLogin};
use crate::auth::{
    Binding, SaltedPasswordCache, ScramClient, ScramCredentials, ScramSecret, ScramServer, Secret,
};
use crate::config::AuthMethod;

/// The password of the fixed secrets.
const PASSWORD: &str = "pencil";
/// RFC 7677's salt, so that seeds can be made with the RFC's example in mind.
const SALT: &[u8] = b"W22ZaJ0SNY7soEsUEjb6gQ==";
/// Few iterations: the secrets are derived once per process anyway.
const ITERATIONS: u32 = 4096;
/// The channel-binding data the "TLS" variants bind to.
const END_POINT: [u8; 32] = [7; 32];
/// Bounds the messages fed in one execution (libFuzzer also bounds the input's length).
const MAX_STEPS: usize = 64;

fn secret() -> &'static ScramSecret {
    static SECRET: OnceLock<ScramSecret> = OnceLock::new();
    SECRET.get_or_init(|| ScramSecret::from_password(PASSWORD, SALT, ITERATIONS))
}

fn limits() -> Limits {
    Limits::new(10_000, 1 << 20)
}

/// Splits `data` at the first `0xff` byte (which no SCRAM message contains).
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

/// qcp's SCRAM server: the client-first and client-final messages, split at `0xff`.
pub fn fuzz_scram_server(data: &[u8]) {
    let Some((&variant, rest)) = data.split_first() else {
        return;
    };
    let binding = match variant % 3 {
        0 => Binding::Unavailable,
        1 => Binding::Declined,
        _ => Binding::Required(END_POINT.to_vec()),
    };
    let Ok(mut server) = ScramServer::with_nonce(secret(), "fuzznonce") else {
        return;
    };
    server.set_binding(binding);
    let (first, last) = split(rest);
    if let Ok(server_first) = server.handle_client_first(first) {
        assert!(server_first.starts_with(b"r="));
        let _ = server.handle_client_final(last);
    }
    // Nothing is accepted after the exchange.
    assert!(server.handle_client_first(first).is_err());
}

/// qcp's SCRAM client: the server-first and server-final messages, split at `0xff`.
pub fn fuzz_scram_client(data: &[u8]) {
    let Some((&variant, rest)) = data.split_first() else {
        return;
    };
    // Pass-through keys: no key derivation whatever iteration count the "server" names.
    let keys = ScramCredentials::passthrough(secret(), [3; 32]);
    let Ok(mut client) = ScramClient::with_nonce(keys, "fuzznonce") else {
        return;
    };
    client = match variant % 3 {
        0 => client,
        1 => client.could_bind(),
        _ => client.with_channel_binding(&END_POINT),
    };
    let _ = client.client_first();
    let (first, last) = split(rest);
    if client.handle_server_first(first).is_ok() {
        let _ = client.handle_server_final(last);
    }
}

/// A client logging in to qcp: its opening packets (encryption requests, then a start-up or
/// cancel packet) and its password messages, as one byte stream.
pub fn fuzz_client_login(data: &[u8]) {
    let Some((&variant, mut input)) = data.split_first() else {
        return;
    };
    let offer = TlsOffer {
        available: variant & 1 != 0,
        required: variant & 2 != 0,
        encrypted: variant & 4 != 0,
    };
    let limits = limits();
    let mut out = Vec::new();
    let mut startup = None;
    for _ in 0..MAX_STEPS {
        match read_opening(input, &limits, offer, &mut out) {
            Ok(Some((opening, used))) => {
                assert!(used <= input.len());
                input = &input[used..];
                match opening {
                    Opening::Encryption | Opening::StartTls => continue,
                    Opening::DirectTls | Opening::Cancel { .. } => return,
                    Opening::Startup(packet) => {
                        startup = Some(packet);
                        break;
                    }
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
    let Some(startup) = startup else {
        return;
    };
    startup.negotiate_version(&mut out);
    let _ = startup.secret_len();
    let method = match (variant >> 3) % 3 {
        0 => AuthMethod::ScramSha256,
        1 => AuthMethod::Md5,
        _ => AuthMethod::Trust,
    };
    let md5 = Secret::parse(&format!(
        "md5{}",
        hex(&crate::auth::md5_hash(&startup.user, PASSWORD))
    ))
    .ok();
    let known = (variant & 32 != 0).then(|| crate::auth::login::from_client::UserSecrets {
        scram: Some(secret()),
        secret: md5.as_ref(),
    });
    let end_point = (variant & 64 != 0).then_some(&END_POINT[..]);
    let (mut auth, mut step) = Authenticator::start(
        method,
        &startup.user,
        known,
        b"mock key",
        variant & 128 != 0,
        end_point,
        &mut out,
    );
    for _ in 0..MAX_STEPS {
        if step != AuthStep::Continue {
            return;
        }
        let Ok(Some(header)) = Header::parse_limited(input, &limits) else {
            return;
        };
        let Some(frame) = input.get(..header.frame_len()) else {
            return;
        };
        let body = frame.get(qcp_codec::HEADER_LEN..).unwrap_or_default();
        out.clear();
        step = match auth.message(header.tag, body, &mut out) {
            Ok(step) => step,
            Err(_) => return,
        };
        input = &input[header.frame_len()..];
    }
}

/// qcp logging in to a server: the server's messages, as one byte stream.
pub fn fuzz_server_login(data: &[u8]) {
    let Some((&variant, mut input)) = data.split_first() else {
        return;
    };
    let credentials = Arc::new(Credentials {
        user: "fuzz".into(),
        password: None,
        md5: (variant & 1 != 0).then(|| crate::auth::md5_hash("fuzz", PASSWORD)),
        scram_keys: (variant & 2 != 0).then(|| ScramCredentials::passthrough(secret(), [3; 32])),
    });
    let mut out = Vec::new();
    let Ok(mut login) = ServerLogin::start(
        credentials,
        "fuzzdb",
        Arc::new(SaltedPasswordCache::with_capacity(1)),
        &mut out,
    ) else {
        return;
    };
    if variant & 4 != 0 {
        login.bind_to(END_POINT.to_vec());
    }
    let limits = limits();
    for _ in 0..MAX_STEPS {
        let Ok(Some(header)) = Header::parse_limited(input, &limits) else {
            return;
        };
        let Some(frame) = input.get(..header.frame_len()) else {
            return;
        };
        let body = frame.get(qcp_codec::HEADER_LEN..).unwrap_or_default();
        out.clear();
        match login.message(header.tag, body, frame, &mut out) {
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => return,
        }
        input = &input[header.frame_len()..];
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    /// A small deterministic generator (xorshift), so the tests need no fuzzing engine.
    struct Bytes(u64);

    impl Bytes {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// Random bytes, often grafted onto `seed` so that the parsers get past their first
        /// checks.
        fn input(&mut self, seed: &[u8]) -> Vec<u8> {
            let len = (self.next() % 300) as usize;
            let mut out: Vec<u8> = (0..len).map(|_| self.next() as u8).collect();
            if self.next() % 2 == 0 {
                let cut = (self.next() as usize) % (seed.len() + 1);
                let mut grafted = seed[..cut].to_vec();
                grafted.append(&mut out);
                out = grafted;
            }
            out
        }
    }

    fn run(target: fn(&[u8]), seeds: &[Vec<u8>]) {
        let mut bytes = Bytes(0x9e37_79b9_7f4a_7c15);
        for seed in seeds {
            target(seed);
            for _ in 0..2_000 {
                target(&bytes.input(seed));
            }
        }
    }

    fn startup(user: &str) -> Vec<u8> {
        let mut out = Vec::new();
        qcp_codec::encode::startup(
            &mut out,
            qcp_codec::ProtocolVersion::V3_0,
            &[("user", user), ("database", "db")],
        )
        .unwrap();
        out
    }

    #[test]
    fn the_scram_server_survives_arbitrary_messages() {
        run(
            super::fuzz_scram_server,
            &[
                b"\x00n,,n=,r=abc\xffc=biws,r=abcfuzznonce,p=AAAA".to_vec(),
                b"\x02p=tls-server-end-point,,n=,r=abc\xffc=cD10bHMt,r=abc".to_vec(),
            ],
        );
    }

    #[test]
    fn the_scram_client_survives_arbitrary_messages() {
        run(
            super::fuzz_scram_client,
            &[b"\x00r=fuzznonceXYZ,s=VzIyWmFKMFNOWTdzb0VzVUVqYjZnUT09,i=4096\xffv=AAAA".to_vec()],
        );
    }

    #[test]
    fn the_client_login_survives_arbitrary_bytes() {
        let mut ssl = Vec::new();
        qcp_codec::encode::ssl_request(&mut ssl);
        let mut seeds = Vec::new();
        for variant in [0u8, 1, 4 | 32, 8 | 32, 16, 32 | 64 | 4] {
            let mut seed = vec![variant];
            seed.extend_from_slice(&startup("alice"));
            seeds.push(seed.clone());
            let mut with_ssl = vec![variant];
            with_ssl.extend_from_slice(&ssl);
            with_ssl.extend_from_slice(&startup("bob"));
            seeds.push(with_ssl);
        }
        run(super::fuzz_client_login, &seeds);
    }

    #[test]
    fn the_server_login_survives_arbitrary_messages() {
        let mut sasl = Vec::new();
        qcp_codec::encode::authentication_sasl(&mut sasl, &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])
            .unwrap();
        let mut md5 = Vec::new();
        qcp_codec::encode::authentication_md5_password(&mut md5, [1, 2, 3, 4]);
        let seeds: Vec<Vec<u8>> = [(7u8, sasl), (1, md5)]
            .into_iter()
            .map(|(variant, message)| [vec![variant], message].concat())
            .collect();
        run(super::fuzz_server_login, &seeds);
    }
}
