//! RADIUS for EAP pass-through: RFC 2865 packets, RFC 3579 EAP-Message and
//! Message-Authenticator, RFC 2548 MS-MPPE keys, RFC 5080 retransmission.
//!
//! * [`Packet`], [`Attribute`], [`VendorSpecific`]: the codec. EAP packets are opaque bytes,
//!   split with [`eap_message_attributes`] and joined with [`Packet::eap_message`].
//! * [`auth`]: Request/Response Authenticators and the Message-Authenticator.
//! * [`mppe`]: MS-MPPE-Send-Key / MS-MPPE-Recv-Key encryption and decryption.
//! * [`Client`]: sans-IO client core (identifiers, retransmission, verification);
//!   [`AsyncClient`] drives it on tokio.
//! * [`Server`]: sans-IO server core (verification, duplicate cache, reply encoding) around an
//!   [`AccessHandler`]; [`serve`] drives it on tokio.
//!
//! The cores own no socket and read no clock: they take bytes and `now` and hand back bytes,
//! events and their next deadline. Randomness is injected.
//!
//! One EAP round trip between the two cores, in memory:
//!
//! ```
//! use std::time::Instant;
//! use gridguard_radius::*;
//!
//! # fn main() -> Result<(), Error> {
//! let mut rng = rand_core::OsRng;
//! let now = Instant::now();
//! let mut client = Client::new(b"secret", ClientConfig::default());
//! let handler = |req: &AccessRequest, _now: Instant| {
//!     let eap = req.eap_message().unwrap_or_default();
//!     // A real handler runs an EAP server here.
//!     Reply::accept_with_msk(&[3, eap.get(1).copied().unwrap_or(0), 0, 4], &[7u8; 64])
//!         .unwrap_or_else(Reply::discard)
//! };
//! let mut server = Server::new(b"secret", handler, ServerConfig::default());
//!
//! // EAP-Response/Identity "meter1".
//! let mut attrs = vec![Attribute::new(AttributeType::USER_NAME, b"meter1".to_vec())];
//! attrs.extend(eap_message_attributes(b"\x02\x01\x00\x0b\x01meter1"));
//! let id = client.start(Code::ACCESS_REQUEST, attrs, now, &mut rng)?;
//! let request = client.poll_transmit().expect("queued by start");
//!
//! let from = "127.0.0.1:50000".parse().expect("address");
//! let reply = server.handle_datagram(from, &request, now).expect("answered");
//!
//! let (done, response) = client.handle_datagram(&reply, now).expect("verified");
//! assert_eq!(done, id);
//! assert_eq!(response.code(), Code::ACCESS_ACCEPT);
//! assert_eq!(response.eap_message().as_deref(), Some(&[3, 1, 0, 4][..]));
//! assert_eq!(*response.mppe_keys().expect("keys").msk(), vec![7u8; 64]);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod attribute;
pub mod auth;
mod client;
mod code;
mod error;
pub mod mppe;
mod packet;
mod server;

#[cfg(feature = "tokio")]
mod async_client;
#[cfg(feature = "tokio")]
mod serve;

pub use attribute::{
    Attribute, VendorAttribute, VendorSpecific, MAX_VALUE_LEN, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY,
    VENDOR_MICROSOFT,
};
pub use auth::Secret;
pub use client::{Client, ClientConfig, ClientEvent, ClientStats, RequestId, Response};
pub use code::{AttributeType, Code};
pub use error::Error;
pub use mppe::MppeKeys;
pub use packet::{
    eap_message_attributes, eap_request_attributes, Packet, AUTHENTICATOR_LEN, HEADER_LEN,
    MAX_PACKET_LEN,
};
pub use server::{
    AccessHandler, AccessRequest, Reply, ReplyKind, Server, ServerConfig, ServerStats,
};

#[cfg(feature = "tokio")]
pub use async_client::AsyncClient;
#[cfg(feature = "tokio")]
pub use serve::serve;
