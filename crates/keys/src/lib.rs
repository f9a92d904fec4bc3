//! Unified key management (UKMF) for gridguard: one EAP authentication, one key per
//! application.
//!
//! From the EMSK of a PANA/EAP (re-)authentication and the facts of its session, both the
//! meter and the head-end derive, without any further exchange, a 128-bit key for each
//! [`Application`] (C12.22 data, demand response, link layer) as an RFC 5295 usage-specific
//! root key ([`kdf`]). Each key has a one-octet [`KeyId`] (C12.22's key-id element), a
//! creation time and an expiry (PANA session lifetime plus a configurable grace).
//!
//! A [`KeyRing`] holds a meter's current generation (used for sending) and, after a
//! re-authentication, the previous one (still accepted for receiving until its grace ends);
//! a [`KeyStore`] holds the rings of many meters behind one timer queue. Both are sans-IO:
//! time comes in as `now: Instant`, expired keys are destroyed (zeroized) by `handle_timeout`,
//! the next deadline comes out of `poll_timeout`, and what happened comes out of `poll_event`.
//! `revoke` destroys one meter's keys at once.
//!
//! With the default feature `keylog`, [`keylog::KeyLog`] writes an opt-in key log file in a
//! form Wireshark's C12.22 dissector loads as its decryption table.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use gridguard_keys::{Application, KeyConfig, KeyStore, SessionFacts};
//!
//! let emsk = [0x5a_u8; 64]; // from the EAP method
//! let facts = SessionFacts::new(0x0000_0007, 1, b"meter-0042@example".to_vec());
//! let mut store: KeyStore<&str> = KeyStore::new(KeyConfig::new());
//! let t0 = Instant::now();
//! store.install_generation("meter-0042", &facts, &emsk, Duration::from_secs(3600), t0)?;
//!
//! let send = store.sending_key(&"meter-0042", Application::C1222Data, t0)?;
//! let recv = store.receiving_key(&"meter-0042", Application::C1222Data, send.key_id, t0)?;
//! assert!(send.key == recv.key);
//! assert_eq!(store.poll_timeout(), Some(t0 + Duration::from_secs(3600 + 300)));
//! # Ok::<(), gridguard_keys::Error>(())
//! ```
#![forbid(unsafe_code)]

mod error;
pub mod kdf;
mod key;
#[cfg(feature = "keylog")]
pub mod keylog;
mod ring;

pub use error::Error;
pub use kdf::SessionFacts;
pub use key::{AppKey, Application, KeyId, APP_KEY_LEN, KEY_ID_DERIVED_MASK};
pub use ring::{
    ExpiryCause, GenerationInfo, KeyConfig, KeyEvent, KeyRef, KeyRing, KeyStore, MeterKeyEvent,
    DEFAULT_GRACE,
};
