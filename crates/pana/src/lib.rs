//! Sans-IO PANA (RFC 5191): codec, key derivation and the PaC and PAA state machines
//! (RFC 5609), with EAP carried as opaque bytes so that the EAP method and backend can change
//! without touching PANA.
//!
//! The state machines follow the quinn-proto shape: feed datagrams with
//! `handle_datagram(.., now)`, drain `poll_transmit` and `poll_event`, arm one timer at
//! `poll_timeout` and call `handle_timeout(now)` when it fires. Randomness (session
//! identifiers, sequence numbers, nonces, Key-Ids, retransmission jitter) comes from an
//! injected `rand_core::{RngCore, CryptoRng}`.
#![forbid(unsafe_code)]

pub mod avp;
pub mod crypto;
pub mod error;
pub mod event;
mod exchange;
pub mod message;
pub mod paa;
pub mod pac;
pub mod timer;

#[cfg(test)]
mod sim;

pub use avp::{Avp, AvpCode, AvpFlags, ResultCode, TerminationCause};
pub use crypto::{
    derive_auth_key, prf_plus, AuthKey, AuthVerified, IntegrityAlgorithm, KeyInputs, PrfAlgorithm,
};
pub use error::Error;
pub use event::{FailReason, Msk, PaaEvent, PacEvent, Stats};
pub use message::{Flags, Message, MessageType};
pub use paa::{Paa, PaaConfig, PaaState};
pub use pac::{Pac, PacConfig, PacState};
pub use timer::{RetransmitConfig, Timer};

/// The UDP port IANA assigned to PANA.
pub const PANA_PORT: u16 = 716;
