//! Encoders: free functions that append one complete message (tag, `Int32` length, body) to
//! the caller's `Vec<u8>`.
//!
//! Each function writes a length placeholder, appends the body, then fills in the length. A
//! function that can fail (a string with an interior NUL, a size that does not fit its wire
//! type, a value that would not decode back the same) returns an [`EncodeError`] and leaves
//! `out` exactly as it found it. Functions whose message has a fixed layout cannot fail and
//! return `()`.
//!
//! String arguments are `impl AsRef<[u8]>`: pass `&str` for UTF-8 text, or raw bytes in the
//! session's `client_encoding`. Round trip: decoding what these functions write gives back the
//! parts passed in, and re-encoding a decoded message gives back the same bytes.
//!
//! ```
//! use qcp_codec::{encode, TransactionStatus};
//!
//! let mut out = Vec::new();
//! encode::error_response(&mut out, &[(b'S', b"FATAL"), (b'C', b"53300"), (b'M', b"too many clients")])?;
//! encode::ready_for_query(&mut out, TransactionStatus::Idle);
//! assert_eq!(out.len(), 44);
//! # Ok::<(), qcp_codec::EncodeError>(())
//! ```

mod auth;
mod backend;
mod frontend;
mod startup;
pub(crate) mod writer;

pub use auth::{
    authentication_cleartext_password, authentication_gss, authentication_gss_continue,
    authentication_kerberos_v5, authentication_md5_password, authentication_ok,
    authentication_sasl, authentication_sasl_continue, authentication_sasl_final,
    authentication_sspi, password, sasl_initial_response, sasl_response,
};
pub use backend::{
    backend_key_data, bind_complete, close_complete, command_complete, copy_both_response,
    copy_in_response, copy_out_response, data_row, empty_query_response, error_response,
    function_call_response, negotiate_protocol_version, no_data, notice_response,
    notification_response, parameter_description, parameter_status, parse_complete,
    portal_suspended, ready_for_query, row_description,
};
pub use frontend::{
    bind, close, copy_data, copy_done, copy_fail, describe, execute, flush, function_call, parse,
    query, sync, terminate,
};
pub use startup::{cancel_request, gss_enc_request, ssl_request, startup};

pub use crate::error::EncodeError;
