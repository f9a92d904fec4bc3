//! EAP-PSK (RFC 4764): AES-128 key setup, mutual authentication with AES-CMAC, key derivation by the
//! modified counter mode, and the EAX protected channel carrying the result indication.

pub mod crypto;
pub mod message;
mod peer;
mod server;

pub use peer::PskPeer;
pub use server::{PskServer, PskServerConfig};
