//! The method interface: what the peer and authenticator state machines need from an EAP method, so
//! that another method (EAP-TLS later) plugs in without touching the machines.

use rand_core::CryptoRngCore;

use crate::error::MethodError;
use crate::keys::SessionKeys;
use crate::packet::MethodType;

/// RFC 4137 methodState as seen by the peer after processing a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodState {
    /// More messages are needed.
    Continue,
    /// The method may finish; the server decides.
    MayContinue,
    /// The method has finished.
    Done,
}

/// RFC 4137 decision: whether the peer would accept EAP-Success at this point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Success must not be accepted.
    Fail,
    /// Success may be accepted; Failure too.
    ConditionalSuccess,
    /// The method has established success; Failure is ignored.
    UnconditionalSuccess,
}

/// What a peer method answers to one request.
#[derive(Debug)]
pub struct PeerStep {
    /// The Type-Data of the Response (after the Type byte).
    pub response: Vec<u8>,
    /// The method state after this request.
    pub state: MethodState,
    /// The decision after this request.
    pub decision: Decision,
}

/// An EAP method on the peer side.
pub trait PeerMethod: Send {
    /// The EAP Type this method implements.
    fn method_type(&self) -> MethodType;

    /// Processes one request addressed to this method. `identifier` is the request's EAP Identifier
    /// (the response carries the same). An error with [`MethodError::is_discard`] leaves the method
    /// where it was; any other error ends it in failure.
    fn process(
        &mut self,
        identifier: u8,
        type_data: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<PeerStep, MethodError>;

    /// The exported keys, once the method has succeeded.
    fn keys(&self) -> Option<&SessionKeys>;

    /// A short description of how far the method has come, used to explain an EAP-Failure.
    fn stage(&self) -> &'static str;
}

/// What a server method concluded from one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStep {
    /// Send the next request ([`ServerMethod::build_request`]).
    Continue,
    /// The method succeeded: send EAP-Success.
    Success,
}

/// An EAP method on the authenticator (server) side.
pub trait ServerMethod: Send {
    /// The EAP Type this method implements.
    fn method_type(&self) -> MethodType;

    /// Builds the Type-Data of the next request, sent with EAP Identifier `identifier`.
    fn build_request(
        &mut self,
        identifier: u8,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Vec<u8>, MethodError>;

    /// Processes a response with the current identifier. A discard error leaves the method where it
    /// was; any other error ends the authentication with EAP-Failure.
    fn process(&mut self, identifier: u8, type_data: &[u8]) -> Result<ServerStep, MethodError>;

    /// The exported keys, once the method has succeeded.
    fn keys(&self) -> Option<&SessionKeys>;

    /// The peer identity the method authenticated (ID_P for EAP-PSK), once known.
    fn peer_identity(&self) -> Option<&[u8]>;
}

/// Creates server method instances, one per authentication.
pub trait ServerMethodFactory: Send + Sync {
    /// The EAP Type of the methods it creates.
    fn method_type(&self) -> MethodType;
    /// A fresh method instance for one authentication of the peer that gave `identity` in its
    /// EAP-Response/Identity.
    fn start(&self, identity: &[u8]) -> Box<dyn ServerMethod>;
}
