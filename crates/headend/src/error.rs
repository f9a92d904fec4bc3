//! Typed refusals of the host and errors of the meter link.

use gridguard_c1222::ApTitle;

/// Why the host refused an incoming APDU. Nothing about the meter's state changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The bytes are not a C12.22 APDU the host can process (decoding error, missing calling AP
    /// title / invocation id / key id, reserved security mode, element not covered by the MAC).
    #[error("malformed APDU: {0}")]
    Malformed(gridguard_c1222::Error),
    /// The APDU is addressed to another AP title.
    #[error("APDU addressed to another node")]
    NotForUs,
    /// The sender has never had a PANA session with this host.
    #[error("no established session for {meter}")]
    NoSession {
        /// The claimed sender.
        meter: ApTitle,
    },
    /// The meter's keys were revoked.
    #[error("keys of {meter} are revoked")]
    Revoked {
        /// The meter.
        meter: ApTitle,
    },
    /// The meter's session (all its key generations) expired without re-authentication.
    #[error("session of {meter} expired")]
    SessionExpired {
        /// The meter.
        meter: ApTitle,
    },
    /// The key id belonged to a generation of this meter that is no longer accepted (its grace
    /// after a rollover ended, or it was superseded).
    #[error("key {key_id:#04x} of {meter} expired")]
    KeyExpired {
        /// The meter.
        meter: ApTitle,
        /// The key id the message named.
        key_id: u8,
    },
    /// The key id never belonged to this meter.
    #[error("unknown key {key_id:#04x} for {meter}")]
    UnknownKey {
        /// The meter.
        meter: ApTitle,
        /// The key id the message named.
        key_id: u8,
    },
    /// The EAX′ MAC did not verify.
    #[error("bad MAC from {meter}")]
    BadMac {
        /// The claimed sender.
        meter: ApTitle,
    },
    /// The invocation id or IV was already seen within the replay window.
    #[error("replay from {meter}")]
    Replay {
        /// The sender.
        meter: ApTitle,
    },
    /// The message is cleartext (mode 0) or below the configured minimum security mode.
    #[error("security mode {mode} from {meter} below policy")]
    BelowPolicy {
        /// The claimed sender.
        meter: ApTitle,
        /// The mode used.
        mode: u8,
    },
    /// The association refused for another reason (replay window full, uncovered element, ...).
    #[error("refused message from {meter}: {error}")]
    Protocol {
        /// The claimed sender.
        meter: ApTitle,
        /// What the C12.22 layer reported.
        error: gridguard_c1222::Error,
    },
}

/// Errors of host operations the head-end initiates (installing keys, originating requests).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// Key derivation or lookup failed (bad EMSK, zero lifetime, no current key).
    #[error("keys: {0}")]
    Keys(#[from] gridguard_keys::Error),
    /// Encoding or sealing the APDU failed.
    #[error("C12.22: {0}")]
    C1222(#[from] gridguard_c1222::Error),
    /// The meter has no session with this host (never installed, expired or revoked).
    #[error("no established session for {0}")]
    NoSession(ApTitle),
    /// The keys would live (session lifetime plus grace) longer than the replay window, so
    /// old messages could be replayed while their key is still accepted: raise
    /// `association.replay_window` or shorten the PANA session lifetime.
    #[error("key life {key_life:?} exceeds the replay window {replay_window:?}")]
    LifetimeBeyondReplayWindow {
        /// Session lifetime plus grace.
        key_life: std::time::Duration,
        /// The configured replay window.
        replay_window: std::time::Duration,
    },
}

/// Errors of the meter link: refusals of incoming APDUs and failures to build outgoing ones.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The bytes are not a C12.22 APDU the meter can process.
    #[error("malformed APDU: {0}")]
    Malformed(gridguard_c1222::Error),
    /// The APDU is not from the configured host or not addressed to this meter.
    #[error("APDU not from our host to us")]
    NotFromHost,
    /// The meter has no keys (no PANA session yet, expired, or revoked).
    #[error("no session keys")]
    NoSession,
    /// The key id names no live key of this meter (unknown, or previous generation past grace).
    #[error("no live key {key_id:#04x}")]
    UnknownKey {
        /// The key id the message named.
        key_id: u8,
    },
    /// The EAX′ MAC did not verify.
    #[error("bad MAC")]
    BadMac,
    /// The invocation id or IV was already seen within the replay window.
    #[error("replayed message")]
    Replay,
    /// The message is below the configured minimum security mode.
    #[error("security mode {0} below policy")]
    BelowPolicy(u8),
    /// The C12.22 layer refused for another reason, or could not encode.
    #[error("C12.22: {0}")]
    Protocol(gridguard_c1222::Error),
    /// Key derivation failed.
    #[error("keys: {0}")]
    Keys(#[from] gridguard_keys::Error),
    /// The keys would outlive the replay window (see [`HostError::LifetimeBeyondReplayWindow`]).
    #[error("key life {key_life:?} exceeds the replay window {replay_window:?}")]
    LifetimeBeyondReplayWindow {
        /// Session lifetime plus grace.
        key_life: std::time::Duration,
        /// The configured replay window.
        replay_window: std::time::Duration,
    },
}
