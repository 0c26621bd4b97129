//! Helpers for protocol strings, which are bytes in the session's `client_encoding`:
//! UTF-8 conversion for the `*_str()` accessors and a readable `Debug` form.

use core::fmt;

use crate::error::DecodeError;

/// Checks that `bytes` is UTF-8, naming `site` in the error.
#[inline]
pub(crate) fn utf8<'a>(bytes: &'a [u8], site: &'static str) -> Result<&'a str, DecodeError> {
    core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8(site))
}

/// `Debug` prints a byte string as an escaped literal, `"SELECT 1\x00"`, instead of a list of
/// numbers.
#[derive(Clone, Copy)]
pub(crate) struct Bytes<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

/// `Debug` prints an optional value as `NULL` or an escaped literal.
#[derive(Clone, Copy)]
pub(crate) struct OptBytes<'a>(pub(crate) Option<&'a [u8]>);

impl fmt::Debug for OptBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(b) => Bytes(b).fmt(f),
            None => f.write_str("NULL"),
        }
    }
}

/// `Debug` prints only the length of a secret (cancel key, password), never its bytes, so
/// logging a message cannot leak it.
#[derive(Clone, Copy)]
pub(crate) struct Redacted(pub(crate) usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes redacted>", self.0)
    }
}
