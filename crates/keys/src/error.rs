//! The crate's error type.

use crate::key::{Application, KeyId};

/// What went wrong in key derivation, key lookup or the key log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The EMSK is shorter than the 64 octets RFC 3748 guarantees; the EAP method is at fault.
    #[error("EMSK of {0} octets is shorter than the 64 octets required")]
    EmskTooShort(usize),
    /// An RFC 5295 key label must not contain a NUL octet (it is NUL-terminated in the KDF input).
    #[error("key label contains a NUL octet")]
    LabelContainsNul,
    /// The requested KDF output length is zero or larger than 255 HMAC-SHA-256 blocks.
    #[error("KDF output length {0} is outside 1..=8160 octets")]
    OutputLength(usize),
    /// The peer identity does not fit the 2-octet length of the session binding.
    #[error("peer identity of {0} octets is longer than 65535 octets")]
    PeerIdentityTooLong(usize),
    /// The session lifetime is zero, or `now + lifetime + grace` is not representable.
    #[error("session lifetime is zero or too large")]
    InvalidLifetime,
    /// No key ring exists for the meter (never authenticated, expired, or revoked).
    #[error("no keys for this meter")]
    UnknownMeter,
    /// The meter has no current (unexpired) generation to send with: re-authentication is due.
    #[error("no current {0} key: the meter must re-authenticate")]
    NoCurrentKey(Application),
    /// No live key of the meter has this id for this application: refuse the message.
    #[error("no live {app} key with id {key_id}")]
    UnknownKeyId {
        /// The application the message was for.
        app: Application,
        /// The key id the message named.
        key_id: KeyId,
    },
    /// Reading or writing the key log file failed.
    #[cfg(feature = "keylog")]
    #[error("key log: {0}")]
    KeyLog(#[from] std::io::Error),
}
