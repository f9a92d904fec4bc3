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
pub use packet::{eap_message_attributes, Packet, AUTHENTICATOR_LEN, HEADER_LEN, MAX_PACKET_LEN};
pub use server::{
    AccessHandler, AccessRequest, Reply, ReplyKind, Server, ServerConfig, ServerStats,
};

#[cfg(feature = "tokio")]
pub use async_client::AsyncClient;
#[cfg(feature = "tokio")]
pub use serve::serve;
