//! Typed errors: what was wrong with a packet, why a method refused a message, and why an
//! authentication ended in failure.

use crate::packet::MethodType;

/// A packet or method message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the structure needs.
    #[error("{what}: need {need} bytes, have {have}")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A length field or overall length is impossible.
    #[error("{what}: bad length {value}")]
    BadLength {
        /// The field.
        what: &'static str,
        /// Its value.
        value: usize,
    },
    /// The EAP Code is not one of Request, Response, Success, Failure.
    #[error("unknown EAP code {0}")]
    UnknownCode(u8),
    /// A method message carries a flag or field value the method does not allow.
    #[error("{what}: unexpected value {value:#04x}")]
    BadField {
        /// The field.
        what: &'static str,
        /// Its value.
        value: u32,
    },
}

/// Why a method did not accept a message. Each variant says whether the message is silently
/// discarded (the exchange goes on) or ends the method in failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MethodError {
    /// The message could not be decoded.
    #[error("malformed method message: {0}")]
    Malformed(#[from] DecodeError),
    /// The message is not the one expected in the method's current state (replayed or out of order).
    #[error("unexpected message {got} in state {state}")]
    UnexpectedMessage {
        /// The message number or kind received.
        got: u8,
        /// The method state it arrived in.
        state: &'static str,
    },
    /// A random echoed by the other side is not the one this side sent (RAND_S in EAP-PSK).
    #[error("echoed nonce does not match the one sent")]
    NonceMismatch,
    /// The peer's MAC (MAC_P) did not verify: wrong PSK, or a forged message.
    #[error("peer MAC (MAC_P) did not verify")]
    BadPeerMac,
    /// The server's MAC (MAC_S) did not verify: wrong PSK on one side, or a forged server.
    #[error("server MAC (MAC_S) did not verify")]
    BadServerMac,
    /// The protected channel did not authenticate (wrong key, tampering).
    #[error("protected channel did not authenticate")]
    BadProtectedChannel,
    /// The protected channel nonce is not the expected successor (replay or reordering).
    #[error("protected channel nonce {got} where {expected} was expected")]
    BadChannelNonce {
        /// Expected nonce.
        expected: u32,
        /// Received nonce.
        got: u32,
    },
    /// The identity is not known to the credential store.
    #[error("unknown identity")]
    UnknownIdentity,
    /// The other side reported failure through the method's result indication.
    #[error("the other side reported failure in the protected channel")]
    ResultFailure,
    /// The identity is longer than the method allows.
    #[error("identity of {0} bytes is too long")]
    IdentityTooLong(usize),
}

impl MethodError {
    /// Whether the message should be silently discarded, keeping the exchange alive (RFC 3748 §2:
    /// an invalid message is dropped), rather than ending the method.
    pub fn is_discard(&self) -> bool {
        matches!(
            self,
            MethodError::Malformed(_)
                | MethodError::UnexpectedMessage { .. }
                | MethodError::NonceMismatch
        )
    }
}

/// Why an authentication ended without success, as reported to the application.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FailureReason {
    /// The server sent EAP-Failure. `stage` says how far the method had come, which tells the usual cause.
    #[error("rejected by the server ({stage})")]
    Rejected {
        /// The method's progress when the Failure arrived.
        stage: &'static str,
    },
    /// This side's method refused the other side's message.
    #[error("method failed: {0}")]
    Method(MethodError),
    /// The peer offered no method this authenticator allows (Nak).
    #[error("no acceptable method (peer proposed {0:?})")]
    NoAcceptableMethod(Vec<MethodType>),
    /// The other side stopped answering.
    #[error("timed out waiting for the other side")]
    Timeout,
    /// The server sent EAP-Success before any method completed, which the peer refuses.
    #[error("premature EAP-Success refused")]
    PrematureSuccess,
}
