//! Errors qcp itself sends to clients, as PostgreSQL ErrorResponse messages.
//!
//! Every failure a client can see is one of these: a PostgreSQL SQLSTATE, a message that says
//! what happened, and where useful a hint that says what to do. FATAL is used only when qcp
//! closes the connection right after sending it.

use std::fmt;

use qcp_codec::encode;

/// SQLSTATE codes qcp uses (PostgreSQL's own, appendix A of its documentation).
pub mod sqlstate {
    /// protocol_violation
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    /// connection_failure
    pub const CONNECTION_FAILURE: &str = "08006";
    /// invalid_password
    pub const INVALID_PASSWORD: &str = "28P01";
    /// invalid_authorization_specification
    pub const INVALID_AUTHORIZATION: &str = "28000";
    /// invalid_catalog_name (unknown database)
    pub const INVALID_CATALOG_NAME: &str = "3D000";
    /// too_many_connections
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    /// out_of_memory
    pub const OUT_OF_MEMORY: &str = "53200";
    /// query_canceled
    pub const QUERY_CANCELED: &str = "57014";
    /// admin_shutdown
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    /// cannot_connect_now
    pub const CANNOT_CONNECT_NOW: &str = "57P03";
    /// feature_not_supported
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    /// program_limit_exceeded
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    /// internal_error
    pub const INTERNAL_ERROR: &str = "XX000";
    /// duplicate_prepared_statement
    pub const DUPLICATE_PREPARED_STATEMENT: &str = "42P05";
    /// invalid_sql_statement_name (an unknown prepared statement)
    pub const INVALID_SQL_STATEMENT_NAME: &str = "26000";
    /// in_failed_sql_transaction
    pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
    /// syntax_error
    pub const SYNTAX_ERROR: &str = "42601";
    /// undefined_object (e.g. an unknown SHOW item, as PostgreSQL's own SHOW answers)
    pub const UNDEFINED_OBJECT: &str = "42704";
    /// insufficient_privilege
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    /// config_file_error (a reload found the configuration file invalid)
    pub const CONFIG_FILE_ERROR: &str = "F0000";
    /// object_not_in_prerequisite_state (a console command that does not fit the state,
    /// such as RESUME of a database that is not paused)
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
    /// invalid_parameter_value
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
}

/// How bad an error is for the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The statement failed; the session goes on.
    Error,
    /// The connection is closed right after this message.
    Fatal,
}

impl Severity {
    fn as_bytes(self) -> &'static [u8] {
        match self {
            Severity::Error => b"ERROR",
            Severity::Fatal => b"FATAL",
        }
    }
}

/// An error qcp reports to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgError {
    /// ERROR or FATAL.
    pub severity: Severity,
    /// Five-character SQLSTATE, from [`sqlstate`].
    pub code: &'static str,
    /// The primary message, PostgreSQL style: lower case, no final period.
    pub message: String,
    /// More about what happened, in sentences.
    pub detail: Option<String>,
    /// What the user or operator can do about it.
    pub hint: Option<String>,
}

impl PgError {
    /// A FATAL error (the connection is closed after it).
    pub fn fatal(code: &'static str, message: impl Into<String>) -> Self {
        PgError {
            severity: Severity::Fatal,
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// An ERROR (the session goes on).
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        PgError {
            severity: Severity::Error,
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// Adds a detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Appends the ErrorResponse message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let severity = self.severity.as_bytes();
        let mut fields: Vec<(u8, &[u8])> = vec![
            (b'S', severity),
            (b'V', severity),
            (b'C', self.code.as_bytes()),
            (b'M', self.message.as_bytes()),
        ];
        // PostgreSQL's order: the detail before the hint.
        if let Some(detail) = &self.detail {
            fields.push((b'D', detail.as_bytes()));
        }
        if let Some(hint) = &self.hint {
            fields.push((b'H', hint.as_bytes()));
        }
        if encode::error_response(out, &fields).is_err() {
            // Only an interior NUL can fail here; replace the text rather than send nothing.
            let fallback: [(u8, &[u8]); 4] = [
                (b'S', severity),
                (b'V', severity),
                (b'C', self.code.as_bytes()),
                (b'M', b"qcp error (unprintable message)"),
            ];
            let _ = encode::error_response(out, &fallback);
        }
    }

    /// The encoded ErrorResponse.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// The error in protocol 2's layout: `E`, then `SEVERITY:  message`, a newline and a NUL,
    /// with no length. PostgreSQL still answers a start-up packet asking for protocol 1 or 2
    /// this way, so that such a client can read why it is refused (see docs/protocol.md,
    /// "Refusing a start-up packet").
    pub fn to_protocol_2_bytes(&self) -> Vec<u8> {
        let severity = match self.severity {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        };
        // The text is NUL-terminated: an interior NUL would end it early.
        let message = self.message.replace('\0', " ");
        let mut out = Vec::with_capacity(message.len() + severity.len() + 5);
        out.push(b'E');
        out.extend_from_slice(severity.as_bytes());
        out.extend_from_slice(b":  ");
        out.extend_from_slice(message.as_bytes());
        out.extend_from_slice(b"\n\0");
        out
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        };
        write!(f, "{severity} {}: {}", self.code, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PgError {}

/// A server's ErrorResponse (`message`, whole) with its severity made FATAL: for a server's
/// refusal of a client's start-up setting, which PostgreSQL itself would have refused with a
/// FATAL, ending the connection. Bytes that are not an ErrorResponse are returned as they are.
pub fn as_fatal(message: &[u8]) -> Vec<u8> {
    let limits = qcp_codec::Limits::default();
    let Ok(Some((qcp_codec::BackendMessage::ErrorResponse(error), _))) =
        qcp_codec::BackendMessage::decode(message, &limits)
    else {
        return message.to_vec();
    };
    let fields: Vec<(u8, &[u8])> = error
        .fields()
        .map(|field| match field.code {
            b'S' | b'V' => (field.code, &b"FATAL"[..]),
            code => (code, field.value),
        })
        .collect();
    let mut out = Vec::with_capacity(message.len());
    match encode::error_response(&mut out, &fields) {
        Ok(()) => out,
        Err(_) => message.to_vec(),
    }
}

/// Why a client's connection ends, and what it is told.
#[derive(Debug)]
pub enum Refusal {
    /// An error qcp words itself.
    Error(PgError),
    /// An ErrorResponse exactly as a server sent it (e.g. its own login failure).
    Server(Vec<u8>),
    /// An error for a client that asked for protocol 1 or 2, sent in that protocol's layout
    /// ([`PgError::to_protocol_2_bytes`]).
    Protocol2(PgError),
    /// The client broke the start-up protocol in a way PostgreSQL answers by closing the
    /// connection without a word (it only logs why): the reason, for qcp's log.
    Hangup(&'static str),
    /// The client went away: there is nobody to tell.
    Silent,
}

impl From<PgError> for Refusal {
    fn from(error: PgError) -> Self {
        Refusal::Error(error)
    }
}

impl Refusal {
    /// The bytes to send the client before closing, if any.
    pub fn message(&self) -> Option<Vec<u8>> {
        match self {
            Refusal::Error(error) => Some(error.to_bytes()),
            Refusal::Server(bytes) => Some(bytes.clone()),
            Refusal::Protocol2(error) => Some(error.to_protocol_2_bytes()),
            Refusal::Hangup(_) | Refusal::Silent => None,
        }
    }
}

impl Refusal {
    /// The SQLSTATE the client is told (`None` when it is told nothing).
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            Refusal::Error(error) | Refusal::Protocol2(error) => Some(error.code.to_owned()),
            Refusal::Server(bytes) => {
                let limits = qcp_codec::Limits::default();
                match qcp_codec::BackendMessage::decode(bytes, &limits) {
                    Ok(Some((qcp_codec::BackendMessage::ErrorResponse(e), _))) => e
                        .sqlstate()
                        .map(|code| String::from_utf8_lossy(code).into_owned()),
                    _ => None,
                }
            }
            Refusal::Hangup(_) | Refusal::Silent => None,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Error(error) | Refusal::Protocol2(error) => error.fmt(f),
            Refusal::Server(bytes) => {
                let text = qcp_codec::BackendMessage::decode(bytes, &qcp_codec::Limits::default())
                    .ok()
                    .flatten()
                    .and_then(|(message, _)| match message {
                        qcp_codec::BackendMessage::ErrorResponse(e) => {
                            e.message().map(|m| String::from_utf8_lossy(m).into_owned())
                        }
                        _ => None,
                    })
                    .unwrap_or_else(|| "server error".into());
                write!(f, "server refused: {text}")
            }
            Refusal::Hangup(reason) => write!(f, "{reason} (closed without a reply)"),
            Refusal::Silent => f.write_str("client went away"),
        }
    }
}
