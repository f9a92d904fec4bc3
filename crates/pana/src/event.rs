//! What the state machines tell the layer above: events, failure reasons, the MSK and
//! statistics.

use std::fmt;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::avp::TerminationCause;

/// A Master Session Key handed out of PANA. Zeroized on drop; its Debug prints no bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Msk(Zeroizing<Vec<u8>>);

impl Msk {
    /// Wraps key bytes.
    pub fn new(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Msk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msk(<{} bytes>)", self.0.len())
    }
}

/// Why a session failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum FailReason {
    /// The PAA rejected the authentication (Result-Code), or the EAP method failed.
    AuthenticationRejected,
    /// The other side stopped answering: a request ran out of retransmissions.
    RetransmissionsExhausted,
    /// The EAP authentication did not finish within the configured time.
    AuthTimeout,
    /// The EAP backend (PAA) reported a timeout.
    EapTimeout,
    /// No PRF or integrity algorithm in common.
    NoCommonAlgorithm,
    /// EAP succeeded without a key, or the key could not be derived.
    NoKey,
}

/// Events of a PaC.
#[derive(Debug)]
#[non_exhaustive]
pub enum PacEvent {
    /// An EAP packet from the PAA for the EAP peer. Answer with `send_eap_response`,
    /// `eap_success`, `eap_failure` or `eap_invalid`.
    EapRequest(Vec<u8>),
    /// The first authentication succeeded.
    Established {
        /// PANA Session Identifier.
        session_id: u32,
        /// Key-Id of the MSK.
        key_id: u32,
        /// The MSK of the EAP run.
        msk: Msk,
        /// Session lifetime announced by the PAA.
        lifetime: Option<Duration>,
    },
    /// A re-authentication succeeded: new Key-Id and MSK.
    Reauthenticated {
        /// Key-Id of the new MSK.
        key_id: u32,
        /// The new MSK.
        msk: Msk,
        /// New session lifetime.
        lifetime: Option<Duration>,
    },
    /// The session lifetime ran out.
    Expired,
    /// The session was terminated (by either side).
    Terminated {
        /// Termination-Cause, when the PAA sent one (None when this side terminated).
        cause: Option<TerminationCause>,
    },
    /// The session failed.
    Failed {
        /// Why.
        reason: FailReason,
    },
    /// A ping (PNR with P) was answered.
    PingAnswered,
    /// A PANA-Notification-Request without P or A arrived (and was answered).
    Notification,
}

/// Events of a PAA.
#[derive(Debug)]
#[non_exhaustive]
pub enum PaaEvent {
    /// Start an EAP authentication for this session (initial or re-authentication): the
    /// backend answers with `eap_request` (or success / failure).
    StartEap {
        /// Session Identifier.
        session: u32,
    },
    /// An EAP packet from the PaC for the backend.
    EapFromPac {
        /// Session Identifier.
        session: u32,
        /// The EAP packet.
        bytes: Vec<u8>,
    },
    /// The first authentication of a session succeeded.
    Established {
        /// Session Identifier.
        session: u32,
        /// Key-Id of the MSK.
        key_id: u32,
        /// The MSK.
        msk: Msk,
        /// Session lifetime.
        lifetime: Duration,
    },
    /// A re-authentication succeeded.
    Reauthenticated {
        /// Session Identifier.
        session: u32,
        /// Key-Id of the new MSK.
        key_id: u32,
        /// The new MSK.
        msk: Msk,
        /// New session lifetime.
        lifetime: Duration,
    },
    /// The session lifetime ran out; the session is gone.
    Expired {
        /// Session Identifier.
        session: u32,
    },
    /// The session was terminated; it is gone.
    Terminated {
        /// Session Identifier.
        session: u32,
        /// Termination-Cause sent by the PaC (None when the PAA terminated).
        cause: Option<TerminationCause>,
    },
    /// The session failed; it is gone.
    Failed {
        /// Session Identifier.
        session: u32,
        /// Why.
        reason: FailReason,
    },
    /// A ping sent by the PAA was answered.
    PingAnswered {
        /// Session Identifier.
        session: u32,
    },
    /// A notification without P or A arrived from the PaC.
    Notification {
        /// Session Identifier.
        session: u32,
    },
}

/// Counters of what a state machine dropped or repeated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams that did not parse (including unknown mandatory AVPs).
    pub malformed: u64,
    /// Messages for a session that does not exist.
    pub unknown_session: u64,
    /// Requests with an out-of-window sequence number, answers matching no request.
    pub bad_sequence: u64,
    /// Retransmitted requests answered from the answer cache (or ignored while pending).
    pub duplicates: u64,
    /// Messages dropped because the AUTH AVP was missing or did not verify.
    pub auth_failures: u64,
    /// Messages that are valid but not expected in the current state.
    pub unexpected: u64,
    /// Requests this side retransmitted.
    pub retransmissions: u64,
    /// PCIs refused because the session table was full.
    pub sessions_refused: u64,
    /// PCIs dropped because `max_handshakes` first authentications were running.
    pub pci_deferred: u64,
}
