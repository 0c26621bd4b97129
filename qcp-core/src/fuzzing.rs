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
    Limits::new(Limits::POSTGRES_STARTUP, 1 << 20)
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
    let mut offer = TlsOffer {
        available: variant & 1 != 0,
        required: variant & 2 != 0,
        encrypted: variant & 4 != 0,
        ..TlsOffer::default()
    };
    let limits = limits();
    let mut out = Vec::new();
    let mut startup = None;
    for _ in 0..MAX_STEPS {
        match read_opening(input, &limits, &mut offer, &mut out) {
            Ok(Some((opening, used))) => {
                assert!(used <= input.len());
                input = &input[used..];
                match opening {
                    Opening::Encryption { .. } | Opening::StartTls { .. } => continue,
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
        let Some((header, frame, rest)) = next_message(input, &limits) else {
            return;
        };
        let body = frame.get(qcp_codec::HEADER_LEN..).unwrap_or_default();
        out.clear();
        step = match auth.message(header.tag, body, &mut out) {
            Ok(step) => step,
            Err(_) => return,
        };
        input = rest;
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
        let Some((header, frame, rest)) = next_message(input, &limits) else {
            return;
        };
        let body = frame.get(qcp_codec::HEADER_LEN..).unwrap_or_default();
        out.clear();
        match login.message(header.tag, body, frame, &mut out) {
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => return,
        }
        input = rest;
    }
}

/// One client's relay session (`relay::session`, Smart or Session mode) driven by the test
/// harness: after the first byte (mode, pool, arena and I/O sizes), records of
/// `[what][length][bytes]`: the client sends, the linked server sends, a backend frees up, the
/// waiting request is cancelled, the client or the server closes. No panic, no endless loop
/// (the harness fails after 10,000 steps without rest), no release while unlinked.
#[cfg(any(test, feature = "fuzzing"))]
pub fn fuzz_session(data: &[u8]) {
    use crate::relay::session::harness::Harness;
    let Some((&variant, mut rest)) = data.split_first() else {
        return;
    };
    let smart = variant & 1 != 0;
    let backends = 1 + u32::from((variant >> 1) & 1);
    let chunk_size = 1024 << ((variant >> 2) & 3);
    let chunks = 2 + usize::from((variant >> 4) & 3);
    let mut harness = Harness::with_arena(smart, backends, arena(chunk_size, chunks));
    if variant & 0x40 != 0 {
        harness.io_limit = 7;
    }
    let mut freed = 100;
    while let [what, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (bytes, tail) = tail.split_at(n);
        rest = tail;
        if harness.ended {
            return;
        }
        match what % 6 {
            0 => {
                harness.client(bytes);
            }
            1 if harness.linked().is_some() => {
                harness.server(bytes);
            }
            2 if harness.waiting.is_some() => {
                freed += 1;
                harness.backend_freed(freed);
            }
            3 if harness.waiting.is_some() => harness.cancel_waiting(),
            4 => {
                harness.client_closed = true;
                harness.run();
            }
            5 if harness.linked().is_some() => {
                harness.server_closed = true;
                harness.run();
            }
            _ => {}
        }
    }
}

/// An arena of `chunks` chunks of `chunk_size` bytes, made once per process: an arena is
/// never freed (it is the process's traffic memory), so each execution must not make one.
/// Every chunk is back when a session's harness is dropped.
#[cfg(any(test, feature = "fuzzing"))]
fn arena(chunk_size: usize, chunks: usize) -> Arc<crate::arena::Arena> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    /// Arenas by (chunk size, chunk count).
    type Arenas = Mutex<HashMap<(usize, usize), Arc<crate::arena::Arena>>>;
    static ARENAS: OnceLock<Arenas> = OnceLock::new();
    let mut arenas = ARENAS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    Arc::clone(
        arenas
            .entry((chunk_size, chunks))
            .or_insert_with(|| crate::arena::Arena::new(chunk_size, chunks)),
    )
}

/// The first whole tagged message of `input` (its header and frame) and what follows it;
/// `None` for a bad or partial message.
fn next_message<'a>(input: &'a [u8], limits: &Limits) -> Option<(Header, &'a [u8], &'a [u8])> {
    let header = Header::parse_limited(input, limits).ok()??;
    let frame = input.get(..header.frame_len())?;
    let rest = input.get(header.frame_len()..)?;
    Some((header, frame, rest))
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

    /// `[what][length][bytes]` records for [`super::fuzz_session`].
    fn record(what: u8, bytes: &[u8]) -> Vec<u8> {
        [&[what, bytes.len() as u8][..], bytes].concat()
    }

    /// Seeds for the session target: a query and its answer, a transaction, a pipeline of
    /// extended-protocol messages, for each mode.
    pub(super) fn session_seeds() -> Vec<Vec<u8>> {
        use crate::relay::session::harness::{done, query};
        use qcp_codec::TransactionStatus::{Idle, InTransaction};
        let mut parse = Vec::new();
        qcp_codec::encode::parse(&mut parse, "s1", "SELECT 1", &[]).unwrap();
        qcp_codec::encode::sync(&mut parse);
        let mut seeds = Vec::new();
        for variant in [0u8, 1, 3, 1 | 0x40, 1 | 0x0c] {
            seeds.push(
                [
                    vec![variant],
                    record(0, &query("SELECT 1")),
                    record(1, &done("SELECT 1", Idle)),
                    record(0, &query("BEGIN")),
                    record(1, &done("BEGIN", InTransaction)),
                    record(0, &parse),
                    record(4, b""),
                ]
                .concat(),
            );
        }
        seeds
    }

    #[test]
    fn the_session_survives_arbitrary_traffic() {
        run(super::fuzz_session, &session_seeds());
    }

    /// A fuzz target's name, the function its one line calls, and that function.
    type Target = (&'static str, &'static str, fn(&[u8]));

    /// The fuzz targets of qcp-core.
    const TARGETS: &[Target] = &[
        (
            "scram_server",
            "fuzz_scram_server",
            super::fuzz_scram_server,
        ),
        (
            "scram_client",
            "fuzz_scram_client",
            super::fuzz_scram_client,
        ),
        (
            "client_login",
            "fuzz_client_login",
            super::fuzz_client_login,
        ),
        (
            "server_login",
            "fuzz_server_login",
            super::fuzz_server_login,
        ),
        ("session", "fuzz_session", super::fuzz_session),
    ];

    /// Every committed seed of fuzz/corpus/<target>/ goes through its entry point, whole and
    /// cut short at every length; every target in fuzz/ that calls qcp_core::fuzzing is in
    /// the table above, with a corpus.
    #[test]
    fn the_committed_corpus_replays_without_a_panic() {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let mut calling_core = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(fuzz.join("fuzz_targets")).unwrap() {
            let path = entry.unwrap().path();
            let source = std::fs::read_to_string(&path).unwrap();
            if source.contains("qcp_core::fuzzing::") {
                calling_core.insert(path.file_stem().unwrap().to_string_lossy().into_owned());
            }
        }
        let table: std::collections::BTreeSet<String> = TARGETS
            .iter()
            .map(|(name, ..)| (*name).to_owned())
            .collect();
        assert_eq!(
            calling_core, table,
            "fuzz/fuzz_targets calling qcp_core::fuzzing"
        );
        for (name, call, run) in TARGETS {
            let source =
                std::fs::read_to_string(fuzz.join("fuzz_targets").join(format!("{name}.rs")))
                    .unwrap();
            assert!(
                source.contains(&format!("qcp_core::fuzzing::{call}(data)")),
                "{name}"
            );
            let seeds: Vec<_> = std::fs::read_dir(fuzz.join("corpus").join(name))
                .unwrap_or_else(|e| panic!("fuzz/corpus/{name}: {e}"))
                .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
                .collect();
            assert!(!seeds.is_empty(), "fuzz/corpus/{name} is empty");
            for seed in seeds {
                for len in 0..=seed.len() {
                    run(&seed[..len]);
                }
            }
        }
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
