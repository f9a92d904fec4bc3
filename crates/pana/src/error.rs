//! The error type of the PANA crate.

use crate::avp::AvpCode;

/// Everything that can go wrong in the PANA codec, the key derivation or an API call on a
/// state machine.
///
/// Errors from received datagrams never reach the caller of `handle_datagram`: RFC 5191
/// discards invalid messages silently, so the state machines count them in their statistics
/// instead. The variants are returned by [`crate::Message::parse`] and by the API calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before the structure it should hold.
    #[error("truncated at offset {offset}: {needed} more bytes needed")]
    Truncated {
        /// Offset where the missing part starts.
        offset: usize,
        /// Number of bytes missing.
        needed: usize,
    },
    /// The Message Length field does not equal the datagram length.
    #[error("message length field says {field}, datagram has {actual} bytes")]
    LengthMismatch {
        /// Value of the Message Length field.
        field: usize,
        /// Length of the datagram.
        actual: usize,
    },
    /// A known AVP has a value of the wrong size.
    #[error("AVP {code:?} at offset {offset} has invalid value length {len}")]
    InvalidAvpLength {
        /// Code of the AVP.
        code: AvpCode,
        /// Offset of the AVP header in the message.
        offset: usize,
        /// Value length found.
        len: usize,
    },
    /// An AVP this implementation does not know carries the M (mandatory) bit: the whole
    /// message must be discarded.
    #[error("unsupported mandatory AVP {code} (vendor {vendor_id:?}) at offset {offset}")]
    UnsupportedMandatoryAvp {
        /// Code of the AVP.
        code: u16,
        /// Vendor-Id of the AVP, when the V bit is set.
        vendor_id: Option<u32>,
        /// Offset of the AVP header in the message.
        offset: usize,
    },
    /// The message would not fit the 16-bit length fields.
    #[error("message or AVP too long to encode")]
    TooLong,
    /// No session with this identifier exists.
    #[error("unknown session {0:#010x}")]
    UnknownSession(u32),
    /// The call is not allowed in the current state of the session (for example a ping while
    /// another request is outstanding, or an EAP response nobody asked for).
    #[error("operation not allowed in the current session state")]
    InvalidState,
    /// The algorithm identifier is not implemented.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(u32),
    /// The message carries no AUTH AVP, or one of the wrong size.
    #[error("AUTH AVP missing or of the wrong size")]
    MissingAuth,
    /// The AUTH AVP does not verify.
    #[error("AUTH AVP does not verify")]
    AuthMismatch,
    /// The datagram is not a PANA-Relay message (RFC 6345): another message type, or a
    /// non-zero Session Identifier or Sequence Number.
    #[error("not a PANA-Relay message")]
    NotRelay,
    /// An AVP the message needs is missing.
    #[error("AVP {0:?} missing")]
    MissingAvp(AvpCode),
    /// An AVP's value cannot be what the AVP holds (a PaC-Information of the wrong size, a
    /// Relayed-Message too short to be a PANA message).
    #[error("AVP {0:?} has an invalid value")]
    InvalidAvpValue(AvpCode),
    /// A key could not be derived (empty MSK, empty nonce).
    #[error("key derivation failed: {0}")]
    KeyDerivation(&'static str),
}
