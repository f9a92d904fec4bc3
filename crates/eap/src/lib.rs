//! Sans-IO EAP (RFC 3748): the packet codec, the peer and authenticator state machines modelled on
//! RFC 4137, a method interface, and the EAP-PSK method (RFC 4764) on both sides.
//!
//! Nothing here does I/O or reads a clock: callers feed packets with `now` and an RNG, and collect
//! packets to send (`poll_transmit`), events (`poll_event`) and the next deadline (`poll_timeout`).
#![forbid(unsafe_code)]

pub mod authenticator;
pub mod credentials;
pub mod error;
pub mod keys;
pub mod method;
pub mod packet;
pub mod peer;
pub mod psk;

pub use authenticator::{
    Authenticator, AuthenticatorConfig, AuthenticatorDrop, AuthenticatorEvent, Retransmit,
};
pub use credentials::{CredentialError, CredentialStore, MemoryCredentials, Psk};
pub use error::{DecodeError, FailureReason, MethodError};
pub use keys::{SessionKeys, MSK_LEN};
pub use method::{
    Decision, MethodState, PeerMethod, PeerStep, ServerMethod, ServerMethodFactory, ServerStep,
};
pub use packet::{Code, MethodType, Packet};
pub use peer::{Peer, PeerConfig, PeerDrop, PeerEvent};
pub use psk::{PskPeer, PskServer, PskServerConfig};
