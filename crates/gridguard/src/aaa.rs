//! The AAA server: our EAP authenticator (EAP-PSK) answering as a RADIUS server (RFC 3579), one EAP
//! conversation per RADIUS State, the MSK returned in MS-MPPE keys on Access-Accept.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gridguard_eap::{
    Authenticator, AuthenticatorConfig, AuthenticatorEvent, CredentialStore, FailureReason,
    PskServerConfig, ServerMethodFactory,
};
use gridguard_radius::{AccessHandler, AccessRequest, Reply};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// Length of the RADIUS State value naming one conversation.
const STATE_LEN: usize = 16;

/// How one authentication ended, for the server's log and counters.
#[derive(Debug)]
pub enum Outcome {
    /// Access-Accept sent.
    Accepted {
        /// The authenticated identity.
        identity: Vec<u8>,
    },
    /// Access-Reject sent.
    Rejected {
        /// The identity the peer claimed, if it got that far.
        identity: Option<Vec<u8>>,
        /// Why.
        reason: FailureReason,
    },
}

/// Counters of the AAA server.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AaaStats {
    /// Access-Accepts sent.
    pub accepted: u64,
    /// Access-Rejects sent.
    pub rejected: u64,
    /// Requests silently discarded (no EAP-Message, unknown State, EAP packet dropped).
    pub discarded: u64,
    /// Conversations abandoned because the peer stopped answering.
    pub expired: u64,
}

struct Conversation {
    authenticator: Authenticator,
    expires: Instant,
}

/// EAP over RADIUS: implements the RADIUS server's [`AccessHandler`].
pub struct EapAaa {
    methods: Arc<[Arc<dyn ServerMethodFactory>]>,
    conversations: HashMap<[u8; STATE_LEN], Conversation>,
    expiry: VecDeque<(Instant, [u8; STATE_LEN])>,
    idle: Duration,
    rng: StdRng,
    stats: AaaStats,
    outcomes: Option<Box<dyn FnMut(Outcome) + Send>>,
}

impl EapAaa {
    /// An EAP-PSK server identifying itself as `server_id`, with PSKs from `credentials`.
    pub fn psk(server_id: &[u8], credentials: Arc<dyn CredentialStore>) -> anyhow::Result<Self> {
        let psk: Arc<dyn ServerMethodFactory> =
            Arc::new(PskServerConfig::new(server_id.to_vec(), credentials)?);
        Ok(EapAaa {
            methods: vec![psk].into(),
            conversations: HashMap::new(),
            expiry: VecDeque::new(),
            idle: Duration::from_secs(30),
            rng: StdRng::from_entropy(),
            stats: AaaStats::default(),
            outcomes: None,
        })
    }

    /// Calls `report` with every finished authentication.
    pub fn on_outcome(mut self, report: impl FnMut(Outcome) + Send + 'static) -> Self {
        self.outcomes = Some(Box::new(report));
        self
    }

    /// Counters.
    pub fn stats(&self) -> AaaStats {
        self.stats
    }

    /// Conversations in progress.
    pub fn in_progress(&self) -> usize {
        self.conversations.len()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(when, state)) = self.expiry.front() {
            if when > now {
                break;
            }
            self.expiry.pop_front();
            if self
                .conversations
                .get(&state)
                .is_some_and(|c| c.expires <= now)
            {
                self.conversations.remove(&state);
                self.stats.expired += 1;
            }
        }
    }

    fn report(&mut self, outcome: Outcome) {
        if let Some(report) = self.outcomes.as_mut() {
            report(outcome);
        }
    }

    fn conclude(
        &mut self,
        state: [u8; STATE_LEN],
        mut conversation: Conversation,
        now: Instant,
    ) -> Reply {
        let eap = conversation.authenticator.poll_transmit();
        match conversation.authenticator.poll_event() {
            Some(AuthenticatorEvent::Success {
                peer_identity,
                keys,
            }) => {
                let reply = eap
                    .as_deref()
                    .and_then(|success| Reply::accept_with_msk(success, keys.msk()));
                match reply {
                    Some(reply) => {
                        self.stats.accepted += 1;
                        self.report(Outcome::Accepted {
                            identity: peer_identity,
                        });
                        reply
                    }
                    None => {
                        self.stats.discarded += 1;
                        Reply::discard()
                    }
                }
            }
            Some(AuthenticatorEvent::Failure {
                peer_identity,
                reason,
            }) => {
                self.stats.rejected += 1;
                self.report(Outcome::Rejected {
                    identity: peer_identity,
                    reason,
                });
                Reply::reject(eap.as_deref().unwrap_or(&[]))
            }
            None => match eap {
                Some(request) => {
                    conversation.expires = now + self.idle;
                    self.expiry.push_back((conversation.expires, state));
                    self.conversations.insert(state, conversation);
                    Reply::challenge(&request, &state)
                }
                None => {
                    // The authenticator dropped the packet: keep waiting for a good one.
                    self.conversations.insert(state, conversation);
                    self.stats.discarded += 1;
                    Reply::discard()
                }
            },
        }
    }
}

impl AccessHandler for EapAaa {
    fn handle(&mut self, request: &AccessRequest, now: Instant) -> Reply {
        self.expire(now);
        let Some(eap) = request.eap_message() else {
            self.stats.discarded += 1;
            return Reply::discard();
        };
        match request.state() {
            Some(state) => {
                let Some((key, mut conversation)) = <[u8; STATE_LEN]>::try_from(state)
                    .ok()
                    .and_then(|k| self.conversations.remove_entry(&k))
                else {
                    self.stats.discarded += 1;
                    return Reply::discard();
                };
                if conversation
                    .authenticator
                    .handle_response(&eap, now, &mut self.rng)
                    .is_err()
                {
                    self.conversations.insert(key, conversation);
                    self.stats.discarded += 1;
                    return Reply::discard();
                }
                self.conclude(key, conversation, now)
            }
            None => {
                let mut authenticator =
                    Authenticator::new(self.methods.clone(), AuthenticatorConfig::backend());
                if authenticator
                    .start_from_identity_response(&eap, now, &mut self.rng)
                    .is_err()
                {
                    self.stats.discarded += 1;
                    return Reply::discard();
                }
                let mut state = [0u8; STATE_LEN];
                self.rng.fill_bytes(&mut state);
                let conversation = Conversation {
                    authenticator,
                    expires: now + self.idle,
                };
                self.conclude(state, conversation, now)
            }
        }
    }
}
