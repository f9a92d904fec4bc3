//! The EAP-PSK peer talking to a AAA server through our RADIUS client, as a NAS would carry it:
//! EAP-Response/Identity in the first Access-Request, then one round trip per EAP message, the MSK
//! recovered from the MS-MPPE keys of the Access-Accept and checked against the peer's own.

use std::time::Instant;

use gridguard_eap::{
    packet, Code as EapCode, FailureReason, MethodType, Peer, PeerConfig, PeerEvent, PeerMethod,
    Psk, PskPeer, SessionKeys,
};
use gridguard_radius::{
    eap_message_attributes, AsyncClient, Attribute, AttributeType, Code, Response,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Most RADIUS round trips one authentication may take (EAP-PSK needs three).
const MAX_ROUND_TRIPS: u32 = 16;
/// RADIUS attribute values hold at most 253 bytes; longer identities go in User-Name truncated.
const MAX_USER_NAME: usize = 253;
/// NAS-Port-Type Virtual (RFC 2865 §5.41).
const NAS_PORT_TYPE_VIRTUAL: u32 = 5;

/// The result of one authentication through RADIUS.
#[derive(Debug)]
pub struct ClientOutcome {
    /// The peer's verdict: keys on success, the typed reason on failure.
    pub result: Result<SessionKeys, FailureReason>,
    /// The MSK the server sent back in MS-MPPE-Recv-Key || MS-MPPE-Send-Key, when it accepted.
    pub server_msk: Option<Zeroizing<Vec<u8>>>,
    /// RADIUS round trips used.
    pub round_trips: u32,
}

impl ClientOutcome {
    /// Whether the peer succeeded and the server's MS-MPPE keys carry the very MSK the peer derived.
    pub fn msk_agrees(&self) -> bool {
        match (&self.result, &self.server_msk) {
            (Ok(keys), Some(server)) => bool::from(keys.msk().as_slice().ct_eq(server.as_slice())),
            _ => false,
        }
    }
}

/// Authenticates `identity` with `psk` through `client`.
pub async fn authenticate(
    client: &AsyncClient,
    identity: &[u8],
    psk: &Psk,
) -> anyhow::Result<ClientOutcome> {
    let mut rng = StdRng::from_entropy();
    let now = Instant::now();
    let method: Box<dyn PeerMethod> = Box::new(PskPeer::new(identity.to_vec(), psk)?);
    let mut peer = Peer::new(identity.to_vec(), vec![method], PeerConfig::default(), now);
    // The NAS's own EAP-Request/Identity, answered by the peer.
    let identity_request = packet::build(EapCode::REQUEST, 0, MethodType::IDENTITY, &[])?;
    peer.handle_packet(&identity_request, now, &mut rng)?;
    let user_name = identity.get(..MAX_USER_NAME).unwrap_or(identity).to_vec();

    let mut state: Option<Vec<u8>> = None;
    let mut server_msk = None;
    let mut round_trips = 0;
    while let Some(eap) = peer.poll_transmit() {
        if round_trips >= MAX_ROUND_TRIPS {
            anyhow::bail!("server kept the conversation going past {MAX_ROUND_TRIPS} round trips");
        }
        round_trips += 1;
        let mut attributes = vec![
            Attribute::new(AttributeType::USER_NAME, user_name.clone()),
            Attribute::new(AttributeType::NAS_IDENTIFIER, b"gridguard".to_vec()),
            Attribute::integer(AttributeType::NAS_PORT_TYPE, NAS_PORT_TYPE_VIRTUAL),
            Attribute::integer(AttributeType::FRAMED_MTU, 1400),
        ];
        attributes.extend(eap_message_attributes(&eap));
        if let Some(s) = &state {
            attributes.push(Attribute::new(AttributeType::STATE, s.clone()));
        }
        let response = client.request(Code::ACCESS_REQUEST, attributes).await?;
        state = response.state().map(<[u8]>::to_vec);
        if response.code() == Code::ACCESS_ACCEPT {
            server_msk = response.mppe_keys().map(|k| k.msk());
        }
        feed(&mut peer, &response, &mut rng)?;
        if response.code() != Code::ACCESS_CHALLENGE {
            break;
        }
    }
    let result = loop {
        match peer.poll_event() {
            Some(PeerEvent::Success(keys)) => break Ok(keys),
            Some(PeerEvent::Failure(reason)) => break Err(reason),
            Some(PeerEvent::Notification(text)) => tracing::info!(%text, "EAP notification"),
            None => {
                break Err(FailureReason::Rejected {
                    stage: "the server ended without an EAP result",
                })
            }
        }
    };
    Ok(ClientOutcome {
        result,
        server_msk,
        round_trips,
    })
}

/// Hands the EAP packet of a RADIUS response to the peer. An Access-Reject without EAP-Message
/// stands for EAP-Failure (RFC 3579 §2.6.3).
fn feed(peer: &mut Peer, response: &Response, rng: &mut StdRng) -> anyhow::Result<()> {
    let now = Instant::now();
    match response.eap_message() {
        Some(eap) => {
            if let Err(drop) = peer.handle_packet(&eap, now, rng) {
                tracing::debug!(%drop, "EAP packet from the server dropped");
            }
        }
        None if response.code() == Code::ACCESS_REJECT => {
            let failure = packet::build_status(EapCode::FAILURE, 0);
            let _ = peer.handle_packet(&failure, now, rng);
        }
        None => anyhow::bail!("{:?} without EAP-Message", response.code()),
    }
    Ok(())
}
