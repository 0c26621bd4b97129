//! [`Limits`]: the size caps every decoder enforces before it trusts a length.

/// Size caps applied to declared lengths before any body is read.
///
/// A length above the cap is rejected as soon as the 5-byte header (or 4-byte startup length)
/// is seen, so a hostile peer cannot make a caller buffer a gigabyte it will never use.
///
/// # Example
///
/// ```
/// use qcp_codec::Limits;
///
/// let limits = Limits::default();
/// assert_eq!(limits.startup, 10_004);
/// assert_eq!(limits.message, 0x3FFF_FFFF);
/// let tight = Limits { message: 64 * 1024, ..Limits::default() };
/// assert_eq!(tight.startup, 10_004);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest accepted untagged startup-phase packet, length field included.
    /// Default 10 004: PostgreSQL's `MAX_STARTUP_PACKET_LENGTH` (10 000) caps what follows
    /// the length field, so the whole packet may be 4 bytes longer.
    pub startup: u32,
    /// Largest accepted tagged message length (the wire length: body plus the 4 length bytes,
    /// tag not counted). Default `0x3FFF_FFFF` (1 GiB - 1), PostgreSQL's `MaxAllocSize - 1`.
    pub message: u32,
}

impl Limits {
    /// PostgreSQL's cap on a startup packet, length field included: its
    /// `MAX_STARTUP_PACKET_LENGTH` (10 000) counts only the bytes after the length.
    pub const POSTGRES_STARTUP: u32 = 10_004;
    /// PostgreSQL's cap on a single message (`MaxAllocSize - 1`, 1 GiB - 1).
    pub const POSTGRES_MESSAGE: u32 = 0x3FFF_FFFF;
    /// The default limits as a constant: PostgreSQL's own caps.
    pub const DEFAULT: Limits = Limits {
        startup: Self::POSTGRES_STARTUP,
        message: Self::POSTGRES_MESSAGE,
    };

    /// Limits with the given caps.
    ///
    /// ```
    /// let l = qcp_codec::Limits::new(8_192, 1 << 20);
    /// assert_eq!((l.startup, l.message), (8_192, 1 << 20));
    /// ```
    #[inline]
    pub const fn new(startup: u32, message: u32) -> Self {
        Self { startup, message }
    }
}

impl Default for Limits {
    #[inline]
    fn default() -> Self {
        Self::DEFAULT
    }
}
