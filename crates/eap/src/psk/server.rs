//! The EAP-PSK server method (RFC 4764 §5 from the server's side).

use std::sync::Arc;

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::credentials::CredentialStore;
use crate::error::MethodError;
use crate::keys::SessionKeys;
use crate::method::{ServerMethod, ServerMethodFactory, ServerStep};
use crate::packet::{header_for, Code, MethodType};

use super::crypto::{self, DerivedKeys, BLOCK};
use super::message::{self, Message, Pchannel, ResultFlag, MAX_ID_LEN};
use super::peer::protected_header;

/// The nonce N the server puts in message 3; the peer answers with N + 1.
const FIRST_NONCE: u32 = 0;

enum State {
    Start,
    SentFirst {
        rand_s: [u8; BLOCK],
    },
    Verified {
        rand_s: [u8; BLOCK],
        rand_p: [u8; BLOCK],
        derived: DerivedKeys,
        mac_s: [u8; BLOCK],
    },
    SentThird {
        rand_s: [u8; BLOCK],
        rand_p: [u8; BLOCK],
        derived: DerivedKeys,
    },
    Done,
}

/// Configuration shared by every EAP-PSK server instance: ID_S and where PSKs come from.
#[derive(Clone)]
pub struct PskServerConfig {
    id_s: Arc<[u8]>,
    credentials: Arc<dyn CredentialStore>,
}

impl PskServerConfig {
    /// A server identifying itself as `id_s` (1 to 966 bytes), looking PSKs up in `credentials`.
    pub fn new(
        id_s: impl Into<Vec<u8>>,
        credentials: Arc<dyn CredentialStore>,
    ) -> Result<Self, MethodError> {
        let id_s: Vec<u8> = id_s.into();
        if id_s.is_empty() || id_s.len() > MAX_ID_LEN {
            return Err(MethodError::IdentityTooLong(id_s.len()));
        }
        Ok(PskServerConfig {
            id_s: id_s.into(),
            credentials,
        })
    }
}

impl ServerMethodFactory for PskServerConfig {
    fn method_type(&self) -> MethodType {
        MethodType::PSK
    }

    fn start(&self, _identity: &[u8]) -> Box<dyn ServerMethod> {
        Box::new(PskServer::new(self.clone()))
    }
}

/// One EAP-PSK authentication on the server side.
pub struct PskServer {
    config: PskServerConfig,
    state: State,
    id_p: Option<Vec<u8>>,
    keys: Option<SessionKeys>,
}

impl PskServer {
    /// A fresh authentication.
    pub fn new(config: PskServerConfig) -> Self {
        PskServer {
            config,
            state: State::Start,
            id_p: None,
            keys: None,
        }
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            State::Start => "start",
            State::SentFirst { .. } => "sent message 1",
            State::Verified { .. } => "verified message 2",
            State::SentThird { .. } => "sent message 3",
            State::Done => "done",
        }
    }

    fn build_third(&mut self, identifier: u8) -> Result<Vec<u8>, MethodError> {
        let State::Verified {
            rand_s,
            rand_p,
            derived,
            mac_s,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(MethodError::UnexpectedMessage {
                got: 3,
                state: self.state_name(),
            });
        };
        let mut payload = [ResultFlag::DoneSuccess.to_bits()];
        let len = message::protected_len(3, payload.len());
        let header = header_for(Code::REQUEST, identifier, MethodType::PSK, len)?;
        let aad = crypto::channel_aad(&header, 0x80, &rand_s);
        let tag = crypto::channel_seal(&derived.tek, FIRST_NONCE, &aad, &mut payload)?;
        let request = message::emit(&Message::Third {
            rand_s,
            mac_s,
            pchannel: Pchannel {
                nonce: FIRST_NONCE,
                tag,
                encrypted: &payload,
            },
        });
        self.state = State::SentThird {
            rand_s,
            rand_p,
            derived,
        };
        Ok(request)
    }

    fn check_second(
        &mut self,
        rand_s: [u8; BLOCK],
        rand_p: [u8; BLOCK],
        mac_p: [u8; BLOCK],
        id_p: &[u8],
    ) -> Result<ServerStep, MethodError> {
        self.state = State::Done;
        let psk = self
            .config
            .credentials
            .psk(id_p)
            .ok_or(MethodError::UnknownIdentity)?;
        let long_term = crypto::key_setup(psk.as_bytes());
        if !crypto::verify_mac_p(
            &long_term.ak,
            id_p,
            &self.config.id_s,
            &rand_s,
            &rand_p,
            &mac_p,
        ) {
            return Err(MethodError::BadPeerMac);
        }
        let mac_s = crypto::mac_s(&long_term.ak, &self.config.id_s, &rand_p);
        let derived = crypto::derive_session_keys(&long_term.kdk, &rand_p);
        self.id_p = Some(id_p.to_vec());
        self.state = State::Verified {
            rand_s,
            rand_p,
            derived,
            mac_s,
        };
        Ok(ServerStep::Continue)
    }

    fn check_fourth(
        &mut self,
        identifier: u8,
        type_data: &[u8],
        pchannel: Pchannel<'_>,
    ) -> Result<ServerStep, MethodError> {
        let State::SentThird {
            rand_s,
            rand_p,
            derived,
        } = &self.state
        else {
            return Err(MethodError::UnexpectedMessage {
                got: 4,
                state: self.state_name(),
            });
        };
        let expected = FIRST_NONCE + 1;
        if pchannel.nonce != expected {
            self.state = State::Done;
            return Err(MethodError::BadChannelNonce {
                expected,
                got: pchannel.nonce,
            });
        }
        let aad = protected_header(Code::RESPONSE, identifier, type_data)?;
        let mut payload = Zeroizing::new(pchannel.encrypted.to_vec());
        let opened = crypto::channel_open(
            &derived.tek,
            pchannel.nonce,
            &aad,
            &pchannel.tag,
            &mut payload,
        );
        let keys = crypto::export(derived, rand_p, rand_s);
        self.state = State::Done;
        opened?;
        match ResultFlag::from_bits(payload.first().copied().unwrap_or_default())? {
            ResultFlag::DoneSuccess => {
                self.keys = Some(keys);
                Ok(ServerStep::Success)
            }
            _ => Err(MethodError::ResultFailure),
        }
    }
}

impl ServerMethod for PskServer {
    fn method_type(&self) -> MethodType {
        MethodType::PSK
    }

    fn build_request(
        &mut self,
        identifier: u8,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Vec<u8>, MethodError> {
        match self.state {
            State::Start => {
                let mut rand_s = [0u8; BLOCK];
                rng.fill_bytes(&mut rand_s);
                self.state = State::SentFirst { rand_s };
                Ok(message::emit(&Message::First {
                    rand_s,
                    id_s: &self.config.id_s,
                }))
            }
            State::Verified { .. } => self.build_third(identifier),
            _ => Err(MethodError::UnexpectedMessage {
                got: 0,
                state: self.state_name(),
            }),
        }
    }

    fn process(&mut self, identifier: u8, type_data: &[u8]) -> Result<ServerStep, MethodError> {
        let message = message::parse(type_data)?;
        let sent_rand_s = match &self.state {
            State::SentFirst { rand_s } | State::SentThird { rand_s, .. } => *rand_s,
            _ => {
                return Err(MethodError::UnexpectedMessage {
                    got: message.number(),
                    state: self.state_name(),
                })
            }
        };
        match message {
            Message::Second { rand_s, .. } | Message::Fourth { rand_s, .. }
                if rand_s != sent_rand_s =>
            {
                Err(MethodError::NonceMismatch)
            }
            Message::Second {
                rand_s,
                rand_p,
                mac_p,
                id_p,
            } if matches!(self.state, State::SentFirst { .. }) => {
                self.check_second(rand_s, rand_p, mac_p, id_p)
            }
            Message::Fourth { pchannel, .. } if matches!(self.state, State::SentThird { .. }) => {
                self.check_fourth(identifier, type_data, pchannel)
            }
            other => Err(MethodError::UnexpectedMessage {
                got: other.number(),
                state: self.state_name(),
            }),
        }
    }

    fn keys(&self) -> Option<&SessionKeys> {
        self.keys.as_ref()
    }

    fn peer_identity(&self) -> Option<&[u8]> {
        self.id_p.as_deref()
    }
}
