//! The EAP-PSK peer method (RFC 4764 §5 from the peer's side).

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::credentials::Psk;
use crate::error::{DecodeError, MethodError};
use crate::keys::SessionKeys;
use crate::method::{Decision, MethodState, PeerMethod, PeerStep};
use crate::packet::{header_for, Code, MethodType};

use super::crypto::{self, LongTermKeys, BLOCK};
use super::message::{self, Message, Pchannel, ResultFlag, MAX_ID_LEN};

enum State {
    AwaitFirst,
    AwaitThird {
        rand_s: [u8; BLOCK],
        rand_p: [u8; BLOCK],
        id_s: Vec<u8>,
    },
    Done,
}

/// The EAP-PSK peer: holds ID_P and the keys derived from the PSK.
pub struct PskPeer {
    id_p: Vec<u8>,
    long_term: LongTermKeys,
    state: State,
    keys: Option<SessionKeys>,
}

impl PskPeer {
    /// A peer for identity `id_p` (1 to 966 bytes) provisioned with `psk`.
    pub fn new(id_p: impl Into<Vec<u8>>, psk: &Psk) -> Result<Self, MethodError> {
        let id_p = id_p.into();
        if id_p.is_empty() || id_p.len() > MAX_ID_LEN {
            return Err(MethodError::IdentityTooLong(id_p.len()));
        }
        Ok(PskPeer {
            id_p,
            long_term: crypto::key_setup(psk.as_bytes()),
            state: State::AwaitFirst,
            keys: None,
        })
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            State::AwaitFirst => "awaiting message 1",
            State::AwaitThird { .. } => "awaiting message 3",
            State::Done => "done",
        }
    }

    fn answer_first(
        &mut self,
        rand_s: [u8; BLOCK],
        id_s: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> PeerStep {
        let mut rand_p = [0u8; BLOCK];
        rng.fill_bytes(&mut rand_p);
        let mac_p = crypto::mac_p(&self.long_term.ak, &self.id_p, id_s, &rand_s, &rand_p);
        let response = message::emit(&Message::Second {
            rand_s,
            rand_p,
            mac_p,
            id_p: &self.id_p,
        });
        self.state = State::AwaitThird {
            rand_s,
            rand_p,
            id_s: id_s.to_vec(),
        };
        PeerStep {
            response,
            state: MethodState::Continue,
            decision: Decision::Fail,
        }
    }

    fn answer_third(
        &mut self,
        identifier: u8,
        type_data: &[u8],
        mac_s: [u8; BLOCK],
        pchannel: Pchannel<'_>,
    ) -> Result<PeerStep, MethodError> {
        let State::AwaitThird {
            rand_s,
            rand_p,
            id_s,
        } = &self.state
        else {
            return Err(MethodError::UnexpectedMessage {
                got: 3,
                state: self.state_name(),
            });
        };
        let (rand_s, rand_p) = (*rand_s, *rand_p);
        if !crypto::verify_mac_s(&self.long_term.ak, id_s, &rand_p, &mac_s) {
            self.state = State::Done;
            return Err(MethodError::BadServerMac);
        }
        let derived = crypto::derive_session_keys(&self.long_term.kdk, &rand_p);
        let request_header = protected_header(Code::REQUEST, identifier, type_data)?;
        let mut payload = Zeroizing::new(pchannel.encrypted.to_vec());
        if let Err(e) = crypto::channel_open(
            &derived.tek,
            pchannel.nonce,
            &request_header,
            &pchannel.tag,
            &mut payload,
        ) {
            self.state = State::Done;
            return Err(e);
        }
        let flags = payload.first().copied().unwrap_or_default();
        let result = ResultFlag::from_bits(flags).map_err(MethodError::Malformed)?;
        let next_nonce = pchannel
            .nonce
            .checked_add(1)
            .ok_or(MethodError::BadChannelNonce {
                expected: pchannel.nonce,
                got: pchannel.nonce,
            })?;
        let (reply, decision) = match result {
            ResultFlag::DoneSuccess => (ResultFlag::DoneSuccess, Decision::ConditionalSuccess),
            ResultFlag::DoneFailure => (ResultFlag::DoneFailure, Decision::Fail),
            ResultFlag::Continue => {
                self.state = State::Done;
                return Err(MethodError::Malformed(DecodeError::BadField {
                    what: "EAP-PSK R flag CONT without extension support",
                    value: 1,
                }));
            }
        };
        let mut out_payload = [reply.to_bits()];
        let len = message::protected_len(4, out_payload.len());
        let response_header = header_for(Code::RESPONSE, identifier, MethodType::PSK, len)?;
        let aad = crypto::channel_aad(&response_header, 0xc0, &rand_s);
        let tag = crypto::channel_seal(&derived.tek, next_nonce, &aad, &mut out_payload)?;
        let response = message::emit(&Message::Fourth {
            rand_s,
            pchannel: Pchannel {
                nonce: next_nonce,
                tag,
                encrypted: &out_payload,
            },
        });
        if decision != Decision::Fail {
            self.keys = Some(crypto::export(&derived, &rand_p, &rand_s));
        }
        self.state = State::Done;
        Ok(PeerStep {
            response,
            state: MethodState::Done,
            decision,
        })
    }
}

/// The 22 bytes the protected channel authenticates: EAP header, Type, Flags and RAND_S, as carried by
/// the packet whose Type-Data is `type_data`.
pub(crate) fn protected_header(
    code: Code,
    identifier: u8,
    type_data: &[u8],
) -> Result<[u8; 22], DecodeError> {
    let header = header_for(code, identifier, MethodType::PSK, type_data.len())?;
    let truncated = DecodeError::Truncated {
        what: "EAP-PSK header",
        need: 1 + BLOCK,
        have: type_data.len(),
    };
    let (&flags, rest) = type_data.split_first().ok_or(truncated.clone())?;
    let rand_s = rest.first_chunk::<BLOCK>().ok_or(truncated)?;
    Ok(crypto::channel_aad(&header, flags, rand_s))
}

impl PeerMethod for PskPeer {
    fn method_type(&self) -> MethodType {
        MethodType::PSK
    }

    fn process(
        &mut self,
        identifier: u8,
        type_data: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<PeerStep, MethodError> {
        match message::parse(type_data)? {
            Message::First { rand_s, id_s } if matches!(self.state, State::AwaitFirst) => {
                Ok(self.answer_first(rand_s, id_s, rng))
            }
            Message::Third {
                rand_s,
                mac_s,
                pchannel,
            } => match &self.state {
                State::AwaitThird { rand_s: sent, .. } if *sent == rand_s => {
                    self.answer_third(identifier, type_data, mac_s, pchannel)
                }
                State::AwaitThird { .. } => Err(MethodError::NonceMismatch),
                _ => Err(MethodError::UnexpectedMessage {
                    got: 3,
                    state: self.state_name(),
                }),
            },
            other => Err(MethodError::UnexpectedMessage {
                got: other.number(),
                state: self.state_name(),
            }),
        }
    }

    fn keys(&self) -> Option<&SessionKeys> {
        self.keys.as_ref()
    }

    fn stage(&self) -> &'static str {
        match self.state {
            State::AwaitFirst => "before EAP-PSK started: the server refused the identity or the method",
            State::AwaitThird { .. } => {
                "after EAP-PSK message 2: the server did not accept MAC_P (wrong PSK or unknown identity)"
            }
            State::Done => "after EAP-PSK message 4",
        }
    }
}
