//! The message writer behind every encoder: writes the tag and a length placeholder, lets the
//! caller append the body, then back-fills the length. On error the output is truncated back
//! to where it was.

use crate::error::EncodeError;
use crate::tag::Tag;

/// Appends body fields to a message that [`message`] has started.
pub(crate) struct Writer<'v> {
    out: &'v mut Vec<u8>,
}

/// Appends one complete message to `out`: the tag (if any), an `Int32` length that counts
/// itself, and the body written by `body`. If `body` fails, or the result is longer than
/// `i32::MAX`, `out` is truncated back to its original length and the error returned.
#[inline]
pub(crate) fn message<F>(
    out: &mut Vec<u8>,
    tag: Option<Tag>,
    site: &'static str,
    body: F,
) -> Result<(), EncodeError>
where
    F: FnOnce(&mut Writer<'_>) -> Result<(), EncodeError>,
{
    let start = out.len();
    if let Some(tag) = tag {
        out.push(tag.0);
    }
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut w = Writer { out: &mut *out };
    let result = body(&mut w).and_then(|()| w.backfill(len_at, site));
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends a message with a fixed, known-valid body (no failure possible).
#[inline]
pub(crate) fn fixed(out: &mut Vec<u8>, tag: Tag, body: &[u8]) {
    // Bodies passed here are a handful of bytes, so the length always fits.
    let len = u32::try_from(body.len()).unwrap_or(0).saturating_add(4);
    out.push(tag.0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
}

impl Writer<'_> {
    /// Writes the final length into the placeholder at `at`.
    fn backfill(&mut self, at: usize, site: &'static str) -> Result<(), EncodeError> {
        let len = self
            .out
            .len()
            .checked_sub(at)
            .and_then(|n| i32::try_from(n).ok())
            .ok_or(EncodeError::TooLarge(site))?;
        if let Some(slot) = self
            .out
            .get_mut(at..)
            .and_then(|s| s.first_chunk_mut::<4>())
        {
            *slot = len.to_be_bytes();
        }
        Ok(())
    }

    /// Appends one byte.
    #[inline]
    pub(crate) fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    /// Appends an `Int8`.
    #[inline]
    pub(crate) fn i8(&mut self, v: i8) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian `Int16`.
    #[inline]
    pub(crate) fn i16(&mut self, v: i16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian `Int32`.
    #[inline]
    pub(crate) fn i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian 32-bit unsigned integer.
    #[inline]
    pub(crate) fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    /// Appends raw bytes.
    #[inline]
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.out.extend_from_slice(v);
    }

    /// Appends a string and its NUL terminator; fails if the string holds a NUL.
    #[inline]
    pub(crate) fn cstr(&mut self, v: &[u8], site: &'static str) -> Result<(), EncodeError> {
        if memchr::memchr(0, v).is_some() {
            return Err(EncodeError::InteriorNul(site));
        }
        self.out.extend_from_slice(v);
        self.out.push(0);
        Ok(())
    }

    /// Appends a 16-bit element count (PostgreSQL reads it unsigned: up to 65 535).
    #[inline]
    pub(crate) fn count(&mut self, n: usize, site: &'static str) -> Result<(), EncodeError> {
        let n = u16::try_from(n).map_err(|_| EncodeError::TooLarge(site))?;
        self.out.extend_from_slice(&n.to_be_bytes());
        Ok(())
    }

    /// Appends an `Int32` length and the bytes, or -1 for `None` (SQL NULL).
    #[inline]
    pub(crate) fn value(
        &mut self,
        v: Option<&[u8]>,
        site: &'static str,
    ) -> Result<(), EncodeError> {
        match v {
            None => self.i32(-1),
            Some(v) => {
                let len = i32::try_from(v.len()).map_err(|_| EncodeError::TooLarge(site))?;
                self.i32(len);
                self.bytes(v);
            }
        }
        Ok(())
    }

    /// Appends a count and then each value.
    #[inline]
    pub(crate) fn values(
        &mut self,
        vs: &[Option<&[u8]>],
        site: &'static str,
    ) -> Result<(), EncodeError> {
        self.count(vs.len(), site)?;
        for v in vs {
            self.value(*v, site)?;
        }
        Ok(())
    }

    /// Appends a count and then each `Int16`.
    #[inline]
    pub(crate) fn i16s(&mut self, vs: &[i16], site: &'static str) -> Result<(), EncodeError> {
        self.count(vs.len(), site)?;
        for v in vs {
            self.i16(*v);
        }
        Ok(())
    }

    /// Appends a count and then each 32-bit OID.
    #[inline]
    pub(crate) fn oids(&mut self, vs: &[u32], site: &'static str) -> Result<(), EncodeError> {
        self.count(vs.len(), site)?;
        for v in vs {
            self.u32(*v);
        }
        Ok(())
    }
}
