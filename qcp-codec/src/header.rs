//! Framing: the 5-byte header of every tagged message, and walking a buffer frame by frame.
//!
//! This is the relay's hot path. [`Header::parse`] looks at exactly five bytes and never at
//! the body, so a pooler can forward `frame_len()` bytes without decoding them, and decode
//! fully only the few messages it acts on.
//!
//! Layout (PostgreSQL "Message Formats"): `Byte1 tag`, `Int32 len` where `len` counts itself
//! but not the tag, then `len - 4` body bytes.

use crate::error::{DecodeError, EncodeError};
use crate::limits::Limits;
use crate::reader::Reader;
use crate::tag::Tag;

/// Size of a tagged message header: one tag byte plus the `Int32` length.
pub const HEADER_LEN: usize = 5;

/// The tag and length at the start of a tagged message.
///
/// INVARIANT (for headers returned by the parse functions): `4 <= len <= i32::MAX`.
///
/// # Example
///
/// ```
/// use qcp_codec::{Header, Tag};
///
/// let h = Header::parse(b"Q\0\0\0\x0dSELECT 1\0")?.expect("5 bytes are there");
/// assert_eq!(h, Header { tag: Tag::QUERY, len: 13 });
/// assert_eq!(h.body_len(), 9);
/// assert_eq!(h.frame_len(), 14);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// The message type.
    pub tag: Tag,
    /// The length exactly as on the wire: body length plus 4, tag not counted.
    pub len: u32,
}

impl Header {
    /// Reads the header at the start of `buf`.
    ///
    /// Returns `Ok(None)` when fewer than [`HEADER_LEN`] bytes are available, and
    /// [`DecodeError::InvalidLength`] when the length is below 4 or negative. No size cap is
    /// applied; see [`Header::parse_limited`].
    ///
    /// ```
    /// use qcp_codec::{Header, Tag};
    ///
    /// assert_eq!(Header::parse(b"S\0\0")?, None);
    /// assert_eq!(Header::parse(b"S\0\0\0\x04")?, Some(Header { tag: Tag::SYNC, len: 4 }));
    /// assert!(Header::parse(b"S\xff\xff\xff\xff").is_err());
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Option<Header>, DecodeError> {
        let Ok([tag, a, b, c, d]) = Reader::new(buf).array::<HEADER_LEN>("header") else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([a, b, c, d]);
        match u32::try_from(len) {
            Ok(len) if len >= 4 => Ok(Some(Header { tag: Tag(tag), len })),
            _ => Err(DecodeError::InvalidLength {
                tag: Some(Tag(tag)),
                len: i64::from(len),
            }),
        }
    }

    /// Like [`Header::parse`], and also rejects a length above `limits.message` with
    /// [`DecodeError::MessageTooLarge`], before the body has arrived.
    ///
    /// ```
    /// use qcp_codec::{DecodeError, Header, Limits};
    ///
    /// let limits = Limits { message: 100, ..Limits::default() };
    /// let err = Header::parse_limited(b"d\0\0\x10\0", &limits).unwrap_err();
    /// assert!(matches!(err, DecodeError::MessageTooLarge { len: 4096, limit: 100, .. }));
    /// ```
    #[inline]
    pub fn parse_limited(buf: &[u8], limits: &Limits) -> Result<Option<Header>, DecodeError> {
        match Self::parse(buf)? {
            Some(h) if h.len > limits.message => Err(DecodeError::MessageTooLarge {
                tag: Some(h.tag),
                len: h.len,
                limit: limits.message,
            }),
            other => Ok(other),
        }
    }

    /// Reads a header that may be split across two buffers (the end of one read chunk and the
    /// start of the next). `Ok(None)` if the two together hold fewer than five bytes.
    ///
    /// ```
    /// use qcp_codec::{Header, Limits, Tag};
    ///
    /// let h = Header::parse_split(b"Z\0\0", b"\0\x05I", &Limits::default())?;
    /// assert_eq!(h, Some(Header { tag: Tag::READY_FOR_QUERY, len: 5 }));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    pub fn parse_split(
        first: &[u8],
        second: &[u8],
        limits: &Limits,
    ) -> Result<Option<Header>, DecodeError> {
        let mut head = [0u8; HEADER_LEN];
        let mut filled = 0usize;
        for (slot, byte) in head.iter_mut().zip(first.iter().chain(second.iter())) {
            *slot = *byte;
            filled = filled.saturating_add(1);
        }
        if filled < HEADER_LEN {
            return Ok(None);
        }
        Self::parse_limited(&head, limits)
    }

    /// The header of a message with a `body_len`-byte body. Fails with
    /// [`EncodeError::TooLarge`] when `body_len + 4` does not fit an `Int32`, so the header
    /// holds the invariant of parsed ones.
    ///
    /// For a relay that writes a header and the start of a body itself and forwards the rest
    /// of the body as it came (renaming the statement of a Bind whose parameters are still
    /// arriving, say): no encoder can write such a message whole. Write it with
    /// [`Header::to_bytes`].
    ///
    /// ```
    /// use qcp_codec::{EncodeError, Header, Tag};
    ///
    /// let h = Header::for_body(Tag::QUERY, 9)?;
    /// assert_eq!(h, Header { tag: Tag::QUERY, len: 13 });
    /// assert_eq!(h.to_bytes(), *b"Q\0\0\0\x0d");
    /// let too_long = usize::try_from(i32::MAX).unwrap();
    /// assert_eq!(Header::for_body(Tag::QUERY, too_long), Err(EncodeError::TooLarge("header")));
    /// # Ok::<(), EncodeError>(())
    /// ```
    #[inline]
    pub fn for_body(tag: Tag, body_len: usize) -> Result<Header, EncodeError> {
        i32::try_from(body_len)
            .ok()
            .and_then(|n| n.checked_add(4))
            .and_then(|len| u32::try_from(len).ok())
            .map(|len| Header { tag, len })
            .ok_or(EncodeError::TooLarge("header"))
    }

    /// Body length: `len - 4`.
    ///
    /// ```
    /// use qcp_codec::{Header, Tag};
    /// assert_eq!(Header { tag: Tag::SYNC, len: 4 }.body_len(), 0);
    /// ```
    #[inline]
    pub const fn body_len(&self) -> usize {
        self.len.saturating_sub(4) as usize
    }

    /// Whole frame length: tag, length field and body, i.e. `1 + len`.
    ///
    /// ```
    /// use qcp_codec::{Header, Tag};
    /// assert_eq!(Header { tag: Tag::SYNC, len: 4 }.frame_len(), 5);
    /// ```
    #[inline]
    pub const fn frame_len(&self) -> usize {
        (self.len as usize).saturating_add(1)
    }

    /// The body of this frame, if `frame` (which starts with this header) holds all of it.
    ///
    /// ```
    /// use qcp_codec::Header;
    ///
    /// let buf = b"Q\0\0\0\x0dSELECT 1\0more";
    /// let h = Header::parse(buf)?.unwrap();
    /// assert_eq!(h.body(buf), Some(&b"SELECT 1\0"[..]));
    /// assert_eq!(h.body(&buf[..8]), None);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn body<'a>(&self, frame: &'a [u8]) -> Option<&'a [u8]> {
        frame.get(HEADER_LEN..self.frame_len())
    }

    /// The five header bytes as they go on the wire.
    ///
    /// ```
    /// use qcp_codec::{Header, Tag};
    /// assert_eq!(Header { tag: Tag::SYNC, len: 4 }.to_bytes(), *b"S\0\0\0\x04");
    /// ```
    #[inline]
    pub const fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let [a, b, c, d] = self.len.to_be_bytes();
        [self.tag.0, a, b, c, d]
    }
}

/// One complete frame found by [`Frames`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The parsed header.
    pub header: Header,
    /// The whole frame: tag, length and body (`header.frame_len()` bytes).
    pub bytes: &'a [u8],
}

impl<'a> Frame<'a> {
    /// The body: the frame without its 5-byte header.
    ///
    /// ```
    /// use qcp_codec::{header::Frames, Limits};
    ///
    /// let frame = Frames::new(b"Z\0\0\0\x05I", &Limits::default()).next().unwrap()?;
    /// assert_eq!(frame.body(), b"I");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn body(&self) -> &'a [u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or_default()
    }
}

/// Walks a buffer header by header, yielding each *complete* frame without decoding bodies.
///
/// Stops (returns `None`) at the first incomplete frame; [`Frames::consumed`] then tells how
/// many bytes the complete frames covered. A bad header is yielded once as `Err` and ends the
/// walk, so a relay can still forward the good frames that came before it.
///
/// INVARIANT: `rest` is a suffix of `buf`, and `buf[..buf.len() - rest.len()]` is exactly the
/// frames yielded so far.
///
/// # Example
///
/// ```
/// use qcp_codec::{header::Frames, Limits, Tag};
///
/// let buf = b"1\0\0\0\x042\0\0\0\x04Z\0\0\0\x05IC\0\0";
/// let mut frames = Frames::new(buf, &Limits::default());
/// let tags: Vec<Tag> = frames.by_ref().map(|f| f.map(|f| f.header.tag)).collect::<Result<_, _>>()?;
/// assert_eq!(tags, [Tag::PARSE_COMPLETE, Tag::BIND_COMPLETE, Tag::READY_FOR_QUERY]);
/// assert_eq!(frames.consumed(), 16);
/// assert_eq!(frames.rest(), b"C\0\0");
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    buf: &'a [u8],
    rest: &'a [u8],
    limits: Limits,
    count: usize,
    done: bool,
}

impl<'a> Frames<'a> {
    /// Starts walking `buf`, applying `limits.message` to every header.
    ///
    /// ```
    /// use qcp_codec::{header::Frames, Limits};
    /// assert_eq!(Frames::new(b"", &Limits::default()).count(), 0);
    /// ```
    #[inline]
    pub fn new(buf: &'a [u8], limits: &Limits) -> Self {
        Self {
            buf,
            rest: buf,
            limits: *limits,
            count: 0,
            done: false,
        }
    }

    /// Bytes covered by the complete frames yielded so far.
    ///
    /// ```
    /// use qcp_codec::{header::Frames, Limits};
    /// let mut f = Frames::new(b"S\0\0\0\x04S\0", &Limits::default());
    /// f.next();
    /// assert_eq!(f.consumed(), 5);
    /// ```
    #[inline]
    pub const fn consumed(&self) -> usize {
        self.buf.len().saturating_sub(self.rest.len())
    }

    /// Number of complete frames yielded so far.
    ///
    /// ```
    /// use qcp_codec::{header::Frames, Limits};
    /// let mut f = Frames::new(b"S\0\0\0\x04H\0\0\0\x04", &Limits::default());
    /// while let Some(_) = f.next() {}
    /// assert_eq!(f.frames(), 2);
    /// ```
    #[inline]
    pub const fn frames(&self) -> usize {
        self.count
    }

    /// The bytes not yet yielded as frames (an incomplete tail, or everything from a bad
    /// header on).
    ///
    /// ```
    /// use qcp_codec::{header::Frames, Limits};
    /// let mut f = Frames::new(b"S\0\0\0\x04Q\0\0", &Limits::default());
    /// while let Some(_) = f.next() {}
    /// assert_eq!(f.rest(), b"Q\0\0");
    /// ```
    #[inline]
    pub const fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let header = match Header::parse_limited(self.rest, &self.limits) {
            Ok(Some(h)) => h,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let Some((bytes, rest)) = self.rest.split_at_checked(header.frame_len()) else {
            self.done = true;
            return None;
        };
        self.rest = rest;
        self.count = self.count.saturating_add(1);
        Some(Ok(Frame { header, bytes }))
    }
}

impl core::iter::FusedIterator for Frames<'_> {}

/// Walks `buf` header by header and returns `(bytes, frames)`: how many bytes of *complete*
/// frames it starts with, and how many frames that is. Bodies are not looked at.
///
/// This is the relay's batching primitive: forward `buf[..bytes]` as is, keep the rest until
/// more arrives. Any invalid or over-limit header in `buf` is an error, even if complete frames
/// come before it; use [`Frames`] to forward those first.
///
/// # Example
///
/// ```
/// use qcp_codec::{split_frames, Limits};
///
/// let buf = b"S\0\0\0\x04Q\0\0\0\x0dSELECT";
/// assert_eq!(split_frames(buf, &Limits::default())?, (5, 1));
/// assert!(split_frames(b"S\0\0\0\x03", &Limits::default()).is_err());
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
pub fn split_frames(buf: &[u8], limits: &Limits) -> Result<(usize, usize), DecodeError> {
    // The same walk as `Frames`, without the iterator's state: per frame, the header is read
    // and checked and the frame skipped; its cost is the length -> next header dependency.
    let mut rest = buf;
    let mut frames = 0usize;
    while let Some(header) = Header::parse_limited(rest, limits)? {
        let Some(tail) = rest.get(header.frame_len()..) else {
            break;
        };
        rest = tail;
        frames = frames.saturating_add(1);
    }
    Ok((buf.len().saturating_sub(rest.len()), frames))
}
