//! Sans-IO PANA (RFC 5191): codec, key derivation and the PaC and PAA state machines
//! (RFC 5609), with EAP carried as opaque bytes so that the EAP method and backend can change
//! without touching PANA.
//!
//! The state machines follow the quinn-proto shape: feed datagrams with
//! `handle_datagram(.., now)`, drain `poll_transmit` and `poll_event`, arm one timer at
//! `poll_timeout` and call `handle_timeout(now)` when it fires. Randomness (session
//! identifiers, sequence numbers, nonces, Key-Ids, retransmission jitter) comes from an
//! injected `rand_core::{RngCore, CryptoRng}`.
//!
//! EAP never appears inside PANA: the PaC hands EAP packets to the EAP peer through
//! [`PacEvent::EapRequest`] and takes its answers through [`Pac::send_eap_response`],
//! [`Pac::eap_success`], [`Pac::eap_failure`] and [`Pac::eap_invalid`]; the PAA asks the EAP
//! backend through [`PaaEvent::StartEap`] / [`PaaEvent::EapFromPac`] and takes its answers,
//! whenever they come, through [`Paa::eap_request`], [`Paa::eap_success`],
//! [`Paa::eap_failure`] and [`Paa::eap_timeout`].
//!
//! A driver in a few lines (here both ends in memory, with canned EAP packets standing in
//! for a real EAP method):
//!
//! ```
//! use std::time::Instant;
//! use gridguard_pana::{Paa, PaaConfig, PaaEvent, Pac, PacConfig, PacEvent};
//! use rand::{rngs::StdRng, SeedableRng};
//!
//! let now = Instant::now();
//! let msk = [7u8; 64];
//! let mut pac = Pac::new(PacConfig::default(), StdRng::seed_from_u64(1));
//! let mut paa: Paa<&str, _> = Paa::new(PaaConfig::default(), StdRng::seed_from_u64(2));
//! pac.start(now).unwrap();
//! let (mut pac_ok, mut paa_ok) = (false, false);
//! while !(pac_ok && paa_ok) {
//!     while let Some(bytes) = pac.poll_transmit() {
//!         paa.handle_datagram("meter-1", &bytes, now); // a UDP send in a real driver
//!     }
//!     while let Some((_peer, bytes)) = paa.poll_transmit() {
//!         pac.handle_datagram(&bytes, now);
//!     }
//!     while let Some(event) = pac.poll_event() {
//!         match event {
//!             // EAP-Request/Identity in, EAP-Response/Identity out; EAP-Success in.
//!             PacEvent::EapRequest(eap) if eap[0] == 1 => pac.send_eap_response(&[2, 1, 0, 5, 1], now).unwrap(),
//!             PacEvent::EapRequest(_) => pac.eap_success(Some(&msk), now).unwrap(),
//!             PacEvent::Established { .. } => pac_ok = true,
//!             _ => {}
//!         }
//!     }
//!     while let Some(event) = paa.poll_event() {
//!         match event {
//!             PaaEvent::StartEap { session } => paa.eap_request(session, &[1, 1, 0, 5, 1], now).unwrap(),
//!             PaaEvent::EapFromPac { session, .. } => paa.eap_success(session, &[3, 1, 0, 4], &msk, now).unwrap(),
//!             PaaEvent::Established { key_id, .. } => { paa_ok = true; assert_eq!(Some(key_id), pac.key_id()) }
//!             _ => {}
//!         }
//!     }
//! }
//! // A real driver sleeps until `poll_timeout()` and then calls `handle_timeout(now)`.
//! assert!(pac.poll_timeout().is_some());
//! ```
//!
//! What this implementation does and does not do (beyond RFC 5191's MUSTs):
//! - handshake without the optimisation of an EAP request in the PAR with S flag; the PAA
//!   offers PRF and integrity algorithms in its configured preference order, the PaC takes
//!   the first one it supports of each (defaults: PRF_HMAC_SHA2_256 and
//!   AUTH_HMAC_SHA2_256_128 first, PRF_HMAC_SHA1 and AUTH_HMAC_SHA1_160 as the mandatory
//!   fallback);
//! - the PaC piggybacks EAP responses on PANs; when its EAP peer takes longer than
//!   [`PacConfig::eap_response_timeout`] it answers with an empty PAN and sends the response
//!   in a PAR of its own, which the PAA accepts. The PAA never piggybacks EAP requests on its
//!   PANs: every EAP request travels in a PAR;
//! - one outstanding request per direction: a request asked for while another is
//!   outstanding is queued (sequence numbers never skip); after a re-key the outstanding
//!   request and the cached answer are signed again under the new key;
//! - AVP flags: RFC 5191 defines only V; the second bit is honoured as a Diameter-style M
//!   bit ([`AvpFlags::MANDATORY`]): an unknown AVP carrying it makes [`Message::parse`] fail
//!   and the state machines drop the message (RFC 5191 discards invalid messages silently,
//!   there is no error message to send); unknown AVPs without it are kept and ignored;
//! - session lifetime ends the session silently on both sides (no PTR);
//! - relay (RFC 6345): [`relay`] wraps and unwraps PANA-Relay messages; the state machines
//!   are generic over the PaC's address, so a driver keys relayed PaCs by
//!   [`relay::PacAddress`] and wraps what goes out to them;
//! - no encryption AVPs (RFC 5872/6786), no I flag handling.
#![forbid(unsafe_code)]

pub mod avp;
pub mod crypto;
pub mod error;
pub mod event;
mod exchange;
pub mod message;
pub mod paa;
pub mod pac;
pub mod relay;
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
