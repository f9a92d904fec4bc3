//! The crate's error type.

/// Everything that can go wrong while decoding, encoding, protecting or verifying C12.22 messages.
///
/// Decoding errors carry the byte offset (relative to the buffer handed to the decoder that failed)
/// so a caller can log where a message went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before a complete element.
    #[error("truncated input at offset {offset}")]
    Truncated {
        /// Offset at which more bytes were needed.
        offset: usize,
    },
    /// A BER tag other than the one expected was found.
    #[error("unexpected tag 0x{found:02x} at offset {offset}")]
    UnexpectedTag {
        /// The tag byte found.
        found: u8,
        /// Offset of the tag.
        offset: usize,
    },
    /// A BER length is indefinite, longer than 4 bytes or not in its shortest form (we only accept
    /// minimal definite lengths so that every accepted message re-encodes byte for byte).
    #[error("invalid or non-minimal length encoding at offset {offset}")]
    BadLength {
        /// Offset of the length octets.
        offset: usize,
    },
    /// Bytes were left over inside a length-delimited element.
    #[error("{count} trailing byte(s) at offset {offset}")]
    TrailingBytes {
        /// Offset of the first unexpected byte.
        offset: usize,
        /// How many bytes were left.
        count: usize,
    },
    /// An ACSE element appeared twice.
    #[error("duplicate ACSE element 0x{tag:02x}")]
    DuplicateElement {
        /// Tag of the repeated element.
        tag: u8,
    },
    /// A mandatory element is absent.
    #[error("missing mandatory element: {0}")]
    MissingElement(&'static str),
    /// An element is syntactically valid BER but its value is not acceptable (bad OID encoding,
    /// empty integer, wrong fixed size, ...).
    #[error("invalid {what} at offset {offset}")]
    InvalidValue {
        /// Which field.
        what: &'static str,
        /// Offset of the value.
        offset: usize,
    },
    /// The user-information element is not an EXTERNAL with an octet-aligned EPSEM.
    #[error("unsupported user-information encoding")]
    UnsupportedUserInformation,
    /// An EPSEM service is shorter than its code requires.
    #[error("EPSEM service 0x{code:02x} malformed at offset {offset}")]
    MalformedService {
        /// The service or response code.
        code: u8,
        /// Offset of the service within the EPSEM.
        offset: usize,
    },
    /// Table data carried a checksum that does not match.
    #[error("table data checksum mismatch (expected 0x{expected:02x}, found 0x{found:02x})")]
    BadChecksum {
        /// Checksum computed over the data.
        expected: u8,
        /// Checksum found in the message.
        found: u8,
    },
    /// A value does not fit its wire field (table data longer than 65535 bytes, offset wider than
    /// 24 bits, message longer than a BER length can say).
    #[error("{0} too large for its wire field")]
    TooLarge(&'static str),
    /// EAX′ refuses cleartexts of 16 bytes or less: with a one-block cleartext EAX′ admits
    /// key-independent forgeries (Minematsu, Lucks, Morita, Iwata, FSE 2013).
    #[error("EAX' cleartext must be longer than 16 bytes")]
    CleartextTooShort,
    /// The MAC did not verify. Nothing was decrypted.
    #[error("message authentication failed")]
    AuthenticationFailed,
    /// The security mode bits say 3 (reserved) or a mode the operation does not accept.
    #[error("unsupported security mode {0}")]
    UnsupportedSecurityMode(u8),
    /// The message's security mode is below the association's policy.
    #[error("security mode {0} below policy")]
    SecurityBelowPolicy(u8),
    /// A protected message lacks the calling-authentication-value with key id and IV.
    #[error("protected message has no C12.22 key id / IV element")]
    MissingKeyIdOrIv,
    /// The message contains an ACSE element that the C12.22 canonical cleartext does not cover,
    /// so the MAC would not protect it; such messages are refused.
    #[error("ACSE element 0x{tag:02x} is not covered by the C12.22 MAC")]
    UncoveredElement {
        /// Tag of the offending element.
        tag: u8,
    },
    /// No key is known for this AP title and key id.
    #[error("no key for key id {key_id}")]
    UnknownKey {
        /// The key id asked for.
        key_id: u8,
    },
    /// The message was already seen within the replay window.
    #[error("replayed message refused")]
    Replay,
    /// The replay window is full; new messages are refused until entries expire.
    #[error("replay window full")]
    ReplayWindowFull,
}
