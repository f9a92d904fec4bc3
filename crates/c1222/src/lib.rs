//! Sans-IO ANSI C12.22 for gridguard: the ACSE APDU and EPSEM codecs, EAX′ (AES-128) security
//! modes 0/1/2 with the canonified cleartext Wireshark and the published vectors use, and an
//! [`security::Association`] that verifies, decrypts and refuses replays, fed with bytes and a
//! caller-supplied `now`.
//!
//! * [`eax_prime`] — EAX′ (`EaxPrime::seal` / `open`).
//! * [`acse`] — `AcseApdu::parse` / `emit` (byte-exact).
//! * [`epsem`] — `Epsem::parse` / `emit`, services, response codes.
//! * [`security`] — `seal_apdu` / `open_apdu`, canonical cleartext, `Association`, `KeyLookup`.
//! * [`pcap`] — a tiny pcap writer (LINKTYPE_RAW, IPv4 UDP datagrams and TCP segments) for
//!   opening traffic in Wireshark.
#![forbid(unsafe_code)]

pub mod acse;
mod ber;
pub mod eax_prime;
pub mod epsem;
mod error;
pub mod oid;
pub mod pcap;
pub mod security;

pub use acse::{AcseApdu, ApTitle, AuthenticationValue, Integer, UserInformation};
pub use eax_prime::{EaxPrime, Mac, MAC_LEN};
pub use epsem::{
    Epsem, EpsemControl, Request, RequestCode, Response, ResponseCode, ResponseControl,
    SecurityMode, Service, TableId,
};
pub use error::Error;
pub use oid::{ObjectId, RelativeOid};
pub use security::{
    Association, AssociationConfig, CanonOptions, CanonicalForm, KeyLookup, ReplayCheck,
    SEQUENCE_KEYS, SEQUENCE_WINDOW,
};

/// UDP and TCP port registered for ANSI C12.22.
pub const C1222_PORT: u16 = 1153;
