//! Message boundaries in a byte stream, found by header alone.
//!
//! The relay's hot path: a [`Framer`] walks the bytes read from one side, five header bytes
//! per message, and hands back long *runs* of bytes that can be forwarded as they are. It
//! looks inside a body only when the [`Inspect`]or asks for it (ReadyForQuery's status byte,
//! a ParameterStatus, the statement name at the start of a Bind), and never copies. Bodies
//! larger than the buffer stream through: the framer remembers how much of the current body
//! is still to come.

use qcp_codec::{DecodeError, Header, Limits, Tag, HEADER_LEN};

/// What the relay wants to know about the messages passing through.
pub trait Inspect {
    /// How many bytes of the body of a message with this tag must be in the buffer before the
    /// message is reported: 0 for none, [`WHOLE_BODY`] for all of it. The framer never asks
    /// for more than the buffer can hold: a body that does not fit is reported with the part
    /// that does (the inspector compares the slice with `header.body_len()`).
    fn needs_body(&self, tag: Tag) -> usize;

    /// Called once per message when its header (and, if asked for, its body) is available.
    /// `Verdict::Stop` leaves the message unconsumed and ends the scan just before it, so the
    /// relay can act on it (and later call [`Framer::consume`] or [`Framer::discard`]). A
    /// message that was stopped at may be reported again on the next scan: only act on
    /// `Pass`.
    fn message(&mut self, header: Header, body: Option<&[u8]>) -> Verdict;
}

/// [`Inspect::needs_body`]: the whole body (or as much of it as the buffer can hold).
pub const WHOLE_BODY: usize = usize::MAX;

/// The inspector's answer for one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward the message with the rest of the run.
    Pass,
    /// Stop before this message.
    Stop,
}

/// What to do with the next bytes of the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    /// The first `n` bytes may be forwarded (any number of whole or partial messages).
    Forward(usize),
    /// The first `n` bytes belong to a message being discarded.
    Discard(usize),
    /// A message the inspector stopped at starts at the first byte.
    Stop(Header),
    /// Nothing can be decided before more bytes arrive (a partial header, or a partial body
    /// the inspector needs). The unscanned bytes must be kept.
    NeedMore,
}

/// Why a stream cannot be framed; the connection must be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The header itself is invalid (length below 4, or above the configured maximum).
    Header(DecodeError),
}

/// Per-direction framing state.
#[derive(Debug, Clone)]
pub struct Framer {
    /// Body bytes of the current message not yet seen. INVARIANT: 0 at a message boundary.
    remaining: usize,
    /// The current message's remaining bytes are discarded rather than forwarded.
    discarding: bool,
    limits: Limits,
}

impl Framer {
    /// A framer at a message boundary.
    pub fn new(limits: Limits) -> Self {
        Framer {
            remaining: 0,
            discarding: false,
            limits,
        }
    }

    /// True when the stream is at a message boundary (no body in progress).
    pub fn at_boundary(&self) -> bool {
        self.remaining == 0
    }

    /// Scans `buf` (the bytes not scanned yet) and returns what to do with its beginning.
    /// `capacity` is the size of the buffer that holds them: a body the inspector needs must
    /// fit in it.
    pub fn next_run(
        &mut self,
        buf: &[u8],
        capacity: usize,
        inspect: &mut impl Inspect,
    ) -> Result<Run, FrameError> {
        if self.remaining > 0 {
            let take = self.remaining.min(buf.len());
            if take == 0 {
                return Ok(Run::NeedMore);
            }
            if self.discarding {
                // `take` is at most `remaining`: this never saturates.
                self.remaining = self.remaining.saturating_sub(take);
                if self.remaining == 0 {
                    self.discarding = false;
                }
                return Ok(Run::Discard(take));
            }
        }
        // INVARIANT: `rest` is a suffix of `buf`, and what comes before it forms the run.
        let mut rest = buf;
        loop {
            // Pass over the rest of the current body.
            if self.remaining > 0 {
                let Some(after) = rest.get(self.remaining..) else {
                    // The body goes on past the buffer: `rest.len() < remaining`.
                    self.remaining = self.remaining.saturating_sub(rest.len());
                    return Ok(Run::Forward(buf.len()));
                };
                rest = after;
                self.remaining = 0;
            }
            let pos = buf.len().saturating_sub(rest.len());
            let header = match Header::parse_limited(rest, &self.limits) {
                Ok(Some(header)) => header,
                Ok(None) => {
                    return Ok(if pos > 0 {
                        Run::Forward(pos)
                    } else {
                        Run::NeedMore
                    })
                }
                Err(error) => {
                    if pos > 0 {
                        // Forward what came before; the error is reported on the next call.
                        return Ok(Run::Forward(pos));
                    }
                    return Err(FrameError::Header(error));
                }
            };
            // A header was parsed, so `rest` holds its five bytes.
            let after_header = rest.get(HEADER_LEN..).unwrap_or_default();
            let wanted = inspect.needs_body(header.tag);
            let body = if wanted > 0 {
                // As much as asked for, and never more than the buffer can hold.
                let want = wanted
                    .min(header.body_len())
                    .min(capacity.saturating_sub(HEADER_LEN));
                match after_header.get(..want) {
                    Some(body) => Some(body),
                    None => {
                        return Ok(if pos > 0 {
                            Run::Forward(pos)
                        } else {
                            Run::NeedMore
                        })
                    }
                }
            } else {
                None
            };
            match inspect.message(header, body) {
                Verdict::Stop => {
                    return Ok(if pos > 0 {
                        Run::Forward(pos)
                    } else {
                        Run::Stop(header)
                    })
                }
                Verdict::Pass => {
                    rest = after_header;
                    self.remaining = header.body_len();
                }
            }
        }
    }

    /// After a [`Run::Stop`]: the relay forwards this message after all (its bytes are part of
    /// the next run), without asking the inspector again.
    pub fn consume(&mut self, header: Header) -> usize {
        self.remaining = header.body_len();
        self.discarding = false;
        HEADER_LEN
    }

    /// After a [`Run::Stop`]: the relay replaces the first `head` body bytes of this message
    /// (with bytes of its own, sent before them) and forwards the rest. Returns the bytes to
    /// drop now (header and `head`, which must be in the buffer); the rest follows as
    /// [`Run::Forward`] runs.
    pub fn replace_head(&mut self, header: Header, head: usize) -> usize {
        debug_assert!(head <= header.body_len());
        // The caller's `head` is part of the body, which is at most `i32::MAX` bytes: neither
        // saturates.
        self.remaining = header.body_len().saturating_sub(head);
        self.discarding = false;
        HEADER_LEN.saturating_add(head)
    }

    /// After a [`Run::Stop`]: the relay drops this message. Returns the header bytes to drop
    /// now; the body follows as [`Run::Discard`] runs.
    pub fn discard(&mut self, header: Header) -> usize {
        self.remaining = header.body_len();
        self.discarding = self.remaining > 0;
        HEADER_LEN
    }
}

#[cfg(test)]
mod tests;
