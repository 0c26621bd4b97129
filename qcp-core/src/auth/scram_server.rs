//! SCRAM-SHA-256 with qcp as the server: verifying a client against a [`ScramSecret`].
//!
//! The exchange (RFC 5802 section 3, PostgreSQL's `auth-scram.c`):
//!
//! ```text
//! client  SASLInitialResponse   n,,n=<ignored>,r=<client nonce>
//! qcp     SASLContinue          r=<client nonce><server nonce>,s=<salt>,i=<iterations>
//! client  SASLResponse          c=biws,r=<both nonces>,p=<ClientProof>
//! qcp     SASLFinal             v=<ServerSignature>
//! ```
//!
//! Channel binding ([`Binding`]): without TLS the gs2 flags `n` and `y` are accepted and `p=`
//! is refused (`y` means "I could bind but think you cannot", which is true then). Over TLS,
//! qcp offers `SCRAM-SHA-256-PLUS` too: a client that picks it must send
//! `p=tls-server-end-point` and, in its final message, `c=` with the hash of qcp's
//! certificate; a client that picks plain `SCRAM-SHA-256` may send `n`, but not `y` (it would
//! mean the `-PLUS` offer was lost on the way). As in PostgreSQL the `n=` user name is
//! ignored: the user is the one of the startup packet.
//!
//! A successful exchange also yields the client's ClientKey (ClientProof XOR
//! ClientSignature), which lets qcp log in to a server with the same secret without knowing
//! the password (pass-through, see [`ScramCredentials::passthrough`](super::ScramCredentials::passthrough)).

use std::fmt;

use base64::{engine::general_purpose::STANDARD, Engine as _};

use super::constant_time_eq;
use super::primitives::{hmac_sha256, sha256, xor, KEY_LEN};
use super::scram::{
    attribute, attributes, check_extension, decode_array, decode_vec, is_valid_nonce,
    join_with_commas, random_nonce, ScramError, TLS_SERVER_END_POINT,
};
use super::secret::ScramSecret;

/// What channel binding the exchange allows, from the connection and the mechanism the
/// client picked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Binding {
    /// No TLS (or qcp's certificate names no hash): `n` or `y`, never `p=`.
    #[default]
    Unavailable,
    /// TLS, and the client picked `SCRAM-SHA-256`: `n` only (`y` is a downgrade).
    Declined,
    /// TLS, and the client picked `SCRAM-SHA-256-PLUS`: `p=tls-server-end-point` with this
    /// certificate hash.
    Required(Vec<u8>),
}

/// One SCRAM exchange in which qcp verifies a client. Create one per login attempt.
pub struct ScramServer {
    secret: ScramSecret,
    /// Printable, comma-free (checked at construction).
    server_nonce: String,
    binding: Binding,
    state: State,
}

enum State {
    AwaitingClientFirst,
    AwaitingClientFinal {
        /// What the client's `c=` must decode to: its gs2 header, then (when binding) the
        /// certificate hash.
        expected_binding: Vec<u8>,
        client_first_bare: Vec<u8>,
        server_first: Vec<u8>,
        /// Client nonce followed by server nonce.
        nonce: Vec<u8>,
    },
    /// Succeeded or failed; nothing more is accepted.
    Done,
}

/// The result of a successful exchange.
pub struct ScramServerOutcome {
    /// The server-final-message (`v=<ServerSignature>`), data of AuthenticationSASLFinal.
    pub server_final: Vec<u8>,
    /// The client's ClientKey, recovered from its proof: with the secret's ServerKey, salt
    /// and iteration count it logs in to a server holding the same secret.
    pub client_key: [u8; 32],
}

impl fmt::Debug for ScramServerOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServerOutcome")
            .field("server_final", &String::from_utf8_lossy(&self.server_final))
            .field("client_key", &"<redacted>")
            .finish()
    }
}

impl ScramServer {
    /// Starts an exchange for `secret` with a random server nonce (18 random bytes, base64).
    pub fn new(secret: &ScramSecret) -> ScramServer {
        ScramServer {
            secret: secret.clone(),
            server_nonce: random_nonce(),
            binding: Binding::Unavailable,
            state: State::AwaitingClientFirst,
        }
    }

    /// Sets what channel binding this exchange allows (before the client's first message).
    pub fn set_binding(&mut self, binding: Binding) {
        self.binding = binding;
    }

    /// Starts an exchange with a given server nonce, for tests and reproducible runs.
    ///
    /// The nonce must be non-empty printable ASCII without commas; otherwise
    /// `Err(Malformed)`.
    pub fn with_nonce(secret: &ScramSecret, server_nonce: &str) -> Result<ScramServer, ScramError> {
        if !is_valid_nonce(server_nonce.as_bytes()) {
            return Err(ScramError::Malformed(
                "server nonce must be printable ASCII without commas",
            ));
        }
        Ok(ScramServer {
            secret: secret.clone(),
            server_nonce: server_nonce.to_owned(),
            binding: Binding::Unavailable,
            state: State::AwaitingClientFirst,
        })
    }

    /// Handles the client-first-message (the data of SASLInitialResponse) and returns the
    /// server-first-message (data for AuthenticationSASLContinue).
    ///
    /// Any error ends the exchange.
    pub fn handle_client_first(&mut self, client_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let State::AwaitingClientFirst = std::mem::replace(&mut self.state, State::Done) else {
            return Err(ScramError::OutOfOrder);
        };
        let ClientFirst {
            gs2_header,
            flag,
            bare,
            client_nonce,
        } = parse_client_first(client_first)?;
        let mut expected_binding = gs2_header.to_vec();
        match (flag, &self.binding) {
            (Flag::No, Binding::Unavailable | Binding::Declined) => {}
            (Flag::Yes, Binding::Unavailable) => {}
            (Flag::Yes, Binding::Declined) => return Err(ScramError::ChannelBindingDowngrade),
            (Flag::Bind(kind), Binding::Required(end_point))
                if kind == TLS_SERVER_END_POINT.as_bytes() =>
            {
                expected_binding.extend_from_slice(end_point);
            }
            (Flag::Bind(_), _) => return Err(ScramError::ChannelBindingNotSupported),
            (Flag::No | Flag::Yes, Binding::Required(_)) => {
                return Err(ScramError::Malformed(
                    "SCRAM-SHA-256-PLUS needs channel binding (gs2 flag p=tls-server-end-point)",
                ))
            }
        }

        let mut nonce = client_nonce.to_vec();
        nonce.extend_from_slice(self.server_nonce.as_bytes());
        let mut server_first = b"r=".to_vec();
        server_first.extend_from_slice(&nonce);
        server_first.extend_from_slice(b",s=");
        server_first.extend_from_slice(STANDARD.encode(&self.secret.salt).as_bytes());
        server_first.extend_from_slice(b",i=");
        server_first.extend_from_slice(self.secret.iterations.to_string().as_bytes());

        self.state = State::AwaitingClientFinal {
            expected_binding,
            client_first_bare: bare.to_vec(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(server_first)
    }

    /// Handles the client-final-message (the data of SASLResponse): checks the channel-binding
    /// attribute, the nonce and the proof (constant-time), and returns the server-final-message
    /// and the client's recovered ClientKey.
    ///
    /// A wrong password is `Err(InvalidProof)`. Any error ends the exchange.
    pub fn handle_client_final(
        &mut self,
        client_final: &[u8],
    ) -> Result<ScramServerOutcome, ScramError> {
        let State::AwaitingClientFinal {
            expected_binding,
            client_first_bare,
            server_first,
            nonce,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(ScramError::OutOfOrder);
        };

        // client-final-message = client-final-message-without-proof "," proof
        let mut tail_first = client_final.rsplitn(2, |&b| b == b',');
        let proof = attribute(
            tail_first.next(),
            b'p',
            "client-final-message must end with the proof (p=)",
        )?;
        let without_proof = tail_first.next().ok_or(ScramError::Malformed(
            "client-final-message lacks channel binding and nonce",
        ))?;
        let proof: [u8; KEY_LEN] = decode_array(proof, "proof must be base64 of 32 bytes")?;

        let mut attrs = attributes(without_proof);
        let binding = attribute(
            attrs.next(),
            b'c',
            "client-final-message must start with channel binding (c=)",
        )?;
        let binding = decode_vec(binding, "channel binding (c=) is not valid base64")?;
        if !constant_time_eq(&binding, &expected_binding) {
            return Err(ScramError::ChannelBindingMismatch);
        }
        let client_nonce = attribute(
            attrs.next(),
            b'r',
            "client-final-message lacks the nonce (r=)",
        )?;
        if client_nonce != nonce.as_slice() {
            return Err(ScramError::NonceMismatch);
        }
        attrs.try_for_each(check_extension)?;

        let auth_message = join_with_commas(&[&client_first_bare, &server_first, without_proof]);
        let client_signature = hmac_sha256(&self.secret.stored_key, &[&auth_message]);
        let client_key = xor(&proof, &client_signature);
        if !constant_time_eq(&sha256(&client_key), &self.secret.stored_key) {
            return Err(ScramError::InvalidProof);
        }

        let server_signature = hmac_sha256(&self.secret.server_key, &[&auth_message]);
        let mut server_final = b"v=".to_vec();
        server_final.extend_from_slice(STANDARD.encode(server_signature).as_bytes());
        Ok(ScramServerOutcome {
            server_final,
            client_key,
        })
    }
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::AwaitingClientFirst => "AwaitingClientFirst",
            State::AwaitingClientFinal { .. } => "AwaitingClientFinal",
            State::Done => "Done",
        };
        f.debug_struct("ScramServer")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

/// The gs2 channel-binding flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag<'a> {
    /// `n`: the client does not support channel binding.
    No,
    /// `y`: it does, but thinks the server does not.
    Yes,
    /// `p=<type>`: it binds with this type.
    Bind(&'a [u8]),
}

/// The parts of a client-first-message qcp uses.
struct ClientFirst<'a> {
    /// `n,,`, `y,,` or `p=<type>,,`, verbatim: the start of what `c=` must repeat.
    gs2_header: &'a [u8],
    flag: Flag<'a>,
    /// client-first-message-bare, verbatim: it is part of the AuthMessage.
    bare: &'a [u8],
    client_nonce: &'a [u8],
}

/// ```text
/// client-first-message = gs2-header client-first-message-bare
/// gs2-header = gs2-cbind-flag "," [ authzid ] ","
/// client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
/// ```
fn parse_client_first(message: &[u8]) -> Result<ClientFirst<'_>, ScramError> {
    let mut parts = message.splitn(3, |&b| b == b',');
    let flag = parts.next().unwrap_or_default();
    let (Some(authzid), Some(bare)) = (parts.next(), parts.next()) else {
        return Err(ScramError::Malformed(
            "client-first-message lacks the gs2 header",
        ));
    };
    let flag = match flag {
        b"n" => Flag::No,
        b"y" => Flag::Yes,
        f => match f.strip_prefix(b"p=") {
            Some(kind) => Flag::Bind(kind),
            None => {
                return Err(ScramError::Malformed(
                    "gs2 channel-binding flag must be n, y or p=",
                ))
            }
        },
    };
    // The gs2 header is the flag, the (empty) authzid and their two commas.
    let header_len = message.len().saturating_sub(bare.len());
    let gs2_header = message.get(..header_len).unwrap_or_default();
    if !authzid.is_empty() {
        return Err(if authzid.starts_with(b"a=") {
            ScramError::Unsupported("authorization identity (a=)")
        } else {
            ScramError::Malformed("gs2 header's second field must be empty or a=")
        });
    }

    let mut attrs = attributes(bare).peekable();
    if attrs.peek().is_some_and(|a| a.starts_with(b"m=")) {
        return Err(ScramError::Unsupported("mandatory extension (m=)"));
    }
    // The user name is ignored (PostgreSQL uses the startup packet's), but must be present.
    attribute(
        attrs.next(),
        b'n',
        "client-first-message lacks the user name (n=)",
    )?;
    let client_nonce = attribute(
        attrs.next(),
        b'r',
        "client-first-message lacks the nonce (r=)",
    )?;
    if !is_valid_nonce(client_nonce) {
        return Err(ScramError::Malformed(
            "client nonce must be printable ASCII",
        ));
    }
    attrs.try_for_each(check_extension)?;
    Ok(ClientFirst {
        gs2_header,
        flag,
        bare,
        client_nonce,
    })
}

#[cfg(test)]
mod tests;
