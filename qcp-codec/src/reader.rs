//! [`Reader`]: the checked cursor that is the only code in the crate touching raw bytes.
//!
//! Every read either returns what it consumed or fails with a [`DecodeError`] naming the site,
//! without consuming anything. Decoders and field iterators never index a slice themselves.

use crate::error::DecodeError;

/// A forward-only cursor over a borrowed byte slice.
///
/// INVARIANT: `buf` is the unread tail of the input. A successful read removes exactly the
/// bytes it returns from the front of `buf`; a failed read leaves `buf` unchanged.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    #[inline]
    pub(crate) const fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Number of unread bytes.
    #[inline]
    pub(crate) const fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The unread bytes, without consuming them.
    #[inline]
    pub(crate) const fn peek_rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Reads a fixed-size array.
    #[inline]
    pub(crate) fn array<const N: usize>(
        &mut self,
        site: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        match self.buf.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.buf = tail;
                Ok(*head)
            }
            None => Err(DecodeError::Truncated(site)),
        }
    }

    /// Reads one byte.
    #[inline]
    pub(crate) fn u8(&mut self, site: &'static str) -> Result<u8, DecodeError> {
        match self.buf.split_first() {
            Some((&b, tail)) => {
                self.buf = tail;
                Ok(b)
            }
            None => Err(DecodeError::Truncated(site)),
        }
    }

    /// Reads a big-endian `Int8`.
    #[inline]
    pub(crate) fn i8(&mut self, site: &'static str) -> Result<i8, DecodeError> {
        self.array::<1>(site).map(i8::from_be_bytes)
    }

    /// Reads a big-endian `Int16`.
    #[inline]
    pub(crate) fn i16(&mut self, site: &'static str) -> Result<i16, DecodeError> {
        self.array::<2>(site).map(i16::from_be_bytes)
    }

    /// Reads a big-endian 16-bit unsigned integer (how PostgreSQL reads counts).
    #[inline]
    pub(crate) fn u16(&mut self, site: &'static str) -> Result<u16, DecodeError> {
        self.array::<2>(site).map(u16::from_be_bytes)
    }

    /// Reads a big-endian `Int32`.
    #[inline]
    pub(crate) fn i32(&mut self, site: &'static str) -> Result<i32, DecodeError> {
        self.array::<4>(site).map(i32::from_be_bytes)
    }

    /// Reads a big-endian 32-bit unsigned integer (OIDs, version codes).
    #[inline]
    pub(crate) fn u32(&mut self, site: &'static str) -> Result<u32, DecodeError> {
        self.array::<4>(site).map(u32::from_be_bytes)
    }

    /// Reads exactly `n` bytes.
    #[inline]
    pub(crate) fn bytes(&mut self, n: usize, site: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.buf.split_at_checked(n) {
            Some((head, tail)) => {
                self.buf = tail;
                Ok(head)
            }
            None => Err(DecodeError::Truncated(site)),
        }
    }

    /// Reads a NUL-terminated string and returns it without the NUL.
    #[inline]
    pub(crate) fn cstr(&mut self, site: &'static str) -> Result<&'a [u8], DecodeError> {
        let Some(nul) = memchr::memchr(0, self.buf) else {
            return Err(DecodeError::MissingNul(site));
        };
        let Some((s, tail)) = self.buf.split_at_checked(nul) else {
            return Err(DecodeError::MissingNul(site));
        };
        let Some((_nul, tail)) = tail.split_first() else {
            return Err(DecodeError::MissingNul(site));
        };
        self.buf = tail;
        Ok(s)
    }

    /// Reads a 16-bit count of elements that take at least `min_size` bytes each, and checks
    /// the remaining bytes can hold that many before anything loops over it.
    ///
    /// PostgreSQL reads these counts as unsigned 16-bit numbers (up to 65 535 parameters), so
    /// this does too.
    #[inline]
    pub(crate) fn count(
        &mut self,
        min_size: usize,
        site: &'static str,
    ) -> Result<u16, DecodeError> {
        let mut r = *self;
        let n = r.u16(site)?;
        match usize::from(n).checked_mul(min_size) {
            Some(need) if need <= r.buf.len() => {
                *self = r;
                Ok(n)
            }
            _ => Err(DecodeError::BadCount(site)),
        }
    }

    /// Reads an `Int32` length followed by that many bytes; a length of -1 is `None` (SQL
    /// NULL) and any other negative length is [`DecodeError::InvalidValue`].
    #[inline]
    pub(crate) fn value(&mut self, site: &'static str) -> Result<Option<&'a [u8]>, DecodeError> {
        let mut r = *self;
        let len = r.i32(site)?;
        let value = match usize::try_from(len) {
            Ok(n) => Some(r.bytes(n, site)?),
            Err(_) if len == -1 => None,
            Err(_) => return Err(DecodeError::InvalidValue(site)),
        };
        *self = r;
        Ok(value)
    }

    /// Reads `count` values (each as in [`Reader::value`]), checking every length, and returns
    /// the bytes they span. On error nothing is consumed.
    #[inline]
    pub(crate) fn values(
        &mut self,
        count: u16,
        site: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        let start = self.buf;
        self.skip_values(count, site)?;
        let used = start.len().saturating_sub(self.buf.len());
        Ok(start.get(..used).unwrap_or_default())
    }

    /// Skips `count` values (each as in [`Reader::value`]), checking every length. On error
    /// nothing is consumed.
    ///
    /// This is the DataRow hot loop, so it is one tight walk over the slice: per value, one
    /// 4-byte read, one sign test (well predicted: NULLs are rare and come by column) and one
    /// bounds-checked skip, with no per-value `Result` and no cursor copy. What it costs is the
    /// read-then-skip dependency chain from one length to the next.
    #[inline]
    pub(crate) fn skip_values(
        &mut self,
        count: u16,
        site: &'static str,
    ) -> Result<(), DecodeError> {
        let mut rest = self.buf;
        for _ in 0..count {
            let Some((len, tail)) = rest.split_first_chunk::<4>() else {
                return Err(DecodeError::Truncated(site));
            };
            let len = i32::from_be_bytes(*len);
            rest = match usize::try_from(len) {
                Ok(n) => match tail.get(n..) {
                    Some(tail) => tail,
                    None => return Err(DecodeError::Truncated(site)),
                },
                Err(_) if len == -1 => tail,
                Err(_) => return Err(DecodeError::InvalidValue(site)),
            };
        }
        self.buf = rest;
        Ok(())
    }

    /// Reads one value that [`Reader::values`] has already checked: `None` when nothing is
    /// left (or, should the invariant not hold, when the value does not fit), `Some(None)` for
    /// SQL NULL. No error is built, so a lazy iterator over checked values stays a tight loop.
    #[inline]
    pub(crate) fn checked_value(&mut self) -> Option<Option<&'a [u8]>> {
        let (len, tail) = self.buf.split_first_chunk::<4>()?;
        let len = i32::from_be_bytes(*len);
        match usize::try_from(len) {
            Ok(n) => {
                let (value, tail) = tail.split_at_checked(n)?;
                self.buf = tail;
                Some(Some(value))
            }
            Err(_) => {
                self.buf = tail;
                Some(None)
            }
        }
    }

    /// Consumes and returns every unread byte.
    #[inline]
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    /// Fails with [`DecodeError::TrailingBytes`] if anything is left unread.
    #[inline]
    pub(crate) fn finish(&self, site: &'static str) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(site))
        }
    }
}

impl core::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reader")
            .field("remaining", &self.buf.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_integers_big_endian() {
        let mut r = Reader::new(&[0x01, 0x02, 0xff, 0xfe, 0, 0, 0, 7, 0x80, 0, 0, 0]);
        assert_eq!(r.i16("a"), Ok(0x0102));
        assert_eq!(r.i16("b"), Ok(-2));
        assert_eq!(r.i32("c"), Ok(7));
        assert_eq!(r.u32("d"), Ok(0x8000_0000));
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.u8("e"), Err(DecodeError::Truncated("e")));
    }

    #[test]
    fn failed_read_consumes_nothing() {
        let mut r = Reader::new(b"abc");
        assert_eq!(r.i32("x"), Err(DecodeError::Truncated("x")));
        assert_eq!(r.bytes(4, "y"), Err(DecodeError::Truncated("y")));
        assert_eq!(r.cstr("z"), Err(DecodeError::MissingNul("z")));
        assert_eq!(r.remaining(), 3);
        assert_eq!(r.finish("w"), Err(DecodeError::TrailingBytes("w")));
        assert_eq!(r.rest(), b"abc");
        assert_eq!(r.finish("w"), Ok(()));
    }

    #[test]
    fn cstr_strips_nul() {
        let mut r = Reader::new(b"ab\0\0c");
        assert_eq!(r.cstr("s"), Ok(&b"ab"[..]));
        assert_eq!(r.cstr("s"), Ok(&b""[..]));
        assert_eq!(r.peek_rest(), b"c");
    }

    #[test]
    fn count_checks_room() {
        let mut r = Reader::new(&[0, 2, 1, 2, 3, 4]);
        assert_eq!(r.count(3, "n"), Err(DecodeError::BadCount("n")));
        assert_eq!(r.remaining(), 6);
        assert_eq!(r.count(2, "n"), Ok(2));
        let mut r = Reader::new(&[0xff, 0xff]);
        assert_eq!(r.count(1, "n"), Err(DecodeError::BadCount("n")));
    }

    #[test]
    fn values_walk() {
        // 2, then NULL, then "ab"; then a truncated one, then a bad length.
        let buf = [
            0, 0, 0, 2, 7, 8, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, b'a', b'b', 0, 0,
        ];
        let mut r = Reader::new(&buf);
        assert_eq!(r.values(3, "v"), Ok(&buf[..16]));
        assert_eq!(r.remaining(), 2);
        let mut r = Reader::new(&buf);
        assert_eq!(r.values(4, "v"), Err(DecodeError::Truncated("v")));
        assert_eq!(r.remaining(), buf.len());
        let mut r = Reader::new(&[0, 0, 0, 1]);
        assert_eq!(r.values(1, "v"), Err(DecodeError::Truncated("v")));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(r.values(1, "v"), Err(DecodeError::InvalidValue("v")));
        assert_eq!(r.values(0, "v"), Ok(&[][..]));

        let mut r = Reader::new(&buf[..16]);
        assert_eq!(r.checked_value(), Some(Some(&[7u8, 8][..])));
        assert_eq!(r.checked_value(), Some(None));
        assert_eq!(r.checked_value(), Some(Some(&b"ab"[..])));
        assert_eq!(r.checked_value(), None);
        assert_eq!(Reader::new(&[0, 0, 0, 9, 1]).checked_value(), None);
    }

    #[test]
    fn values() {
        let mut r = Reader::new(&[
            0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 9, 0xff, 0xff, 0xff, 0xfe,
        ]);
        assert_eq!(r.value("v"), Ok(None));
        assert_eq!(r.value("v"), Ok(Some(&[9u8][..])));
        assert_eq!(r.value("v"), Err(DecodeError::InvalidValue("v")));
    }
}
