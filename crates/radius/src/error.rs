//! The crate's error type.

use crate::code::Code;

/// Everything that can go wrong in this crate, with variants a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer than the 20 bytes of a RADIUS header.
    #[error("packet too short: {len} bytes, a header needs 20")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// The Length field is outside 20..=4096.
    #[error("Length field {length} outside 20..=4096")]
    BadLength {
        /// The Length field's value.
        length: usize,
    },
    /// The datagram is shorter than its Length field (RFC 2865 §3: silently discard).
    #[error("datagram of {actual} bytes is shorter than its Length field {length}")]
    Truncated {
        /// The Length field's value.
        length: usize,
        /// Bytes received.
        actual: usize,
    },
    /// An attribute whose length byte is below 2 or runs past the packet's Length.
    #[error("malformed attribute at byte offset {offset}")]
    BadAttribute {
        /// Offset of the attribute's type byte in the packet.
        offset: usize,
    },
    /// An attribute value longer than 253 bytes cannot be encoded.
    #[error("attribute value of {len} bytes is longer than 253")]
    AttributeTooLong {
        /// The value's length.
        len: usize,
    },
    /// The packet would be longer than 4096 bytes.
    #[error("packet of {len} bytes is longer than 4096")]
    PacketTooLong {
        /// The encoded length.
        len: usize,
    },
    /// A Vendor-Specific attribute not in the RFC 2865 §5.26 recommended format.
    #[error("malformed Vendor-Specific attribute")]
    BadVendorSpecific,
    /// A Message-Authenticator attribute whose value is not 16 bytes, or more than one of them.
    #[error("malformed or repeated Message-Authenticator attribute")]
    BadMessageAuthenticatorAttribute,
    /// A packet that must carry a Message-Authenticator (it carries EAP-Message, RFC 3579 §3.2,
    /// or policy requires it) has none.
    #[error("Message-Authenticator missing")]
    MissingMessageAuthenticator,
    /// The Message-Authenticator does not verify under the shared secret.
    #[error("Message-Authenticator does not verify")]
    BadMessageAuthenticator,
    /// The Response Authenticator does not verify under the shared secret.
    #[error("Response Authenticator does not verify")]
    BadResponseAuthenticator,
    /// An MS-MPPE-Send-Key or MS-MPPE-Recv-Key attribute that cannot be decrypted.
    #[error("malformed MS-MPPE key attribute: {reason}")]
    BadMppeKey {
        /// What was wrong.
        reason: &'static str,
    },
    /// An MPPE key longer than the 239 bytes one attribute can carry.
    #[error("MPPE key of {len} bytes is longer than 239")]
    MppeKeyTooLong {
        /// The key's length.
        len: usize,
    },
    /// The code given to [`Client::start`](crate::Client::start) is not a request the client
    /// can track.
    #[error("{0:?} is not a request code")]
    NotARequest(Code),
    /// All 256 identifiers of this client are in flight.
    #[error("all 256 identifiers are in flight")]
    NoFreeIdentifier,
    /// The server did not answer within the retransmission budget.
    #[error("no response from the RADIUS server")]
    Timeout,
    /// The driver task of an [`AsyncClient`](crate::AsyncClient) has stopped.
    #[error("the RADIUS client task has stopped")]
    ClientClosed,
}
