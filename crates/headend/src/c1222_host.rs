//! The head-end's C12.22 host, sans-IO.
//!
//! The host holds one UKMF key ring per meter (named by the meter's AP title) in a
//! [`KeyStore`]. Whoever runs PANA calls [`C1222Host::install_session`] on every
//! established or re-authenticated session; from then on the meter's APDUs are verified with
//! the current key generation, or the previous one inside its grace, through one
//! [`Association`] per meter (EAX′, replay window). Everything refused is a typed
//! [`Refusal`], counted in [`HostStats`] and queued as [`HostEvent::Refused`]; refusals never
//! change a meter's state.
//!
//! What an accepted APDU may carry:
//! * Registration: the meter's native address is recorded and the registration response
//!   returned (`iar` if the registration names another AP title than the authenticated
//!   sender);
//! * Full Write of a table listed in [`HostConfig::ingest_tables`] (load-profile data):
//!   handed out as [`HostEvent::Intervals`] and acknowledged (`isss` before registration;
//!   `bsy` and not handed out while the driver says its store is behind, see
//!   [`C1222Host::set_ingest_busy`]);
//! * responses to requests the host originated ([`C1222Host::request`],
//!   [`C1222Host::demand_response`]): handed out as [`HostEvent::Response`].
//!
//! Each request is answered with a response sealed under the *current* key of the same
//! application, in the same security mode, unless its response control says otherwise.
//! No clock, no socket: `now` comes in, bytes and events go out, and
//! [`poll_timeout`](C1222Host::poll_timeout) / [`handle_timeout`](C1222Host::handle_timeout)
//! drive key expiry and the replay windows.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gridguard_c1222::security::{Association, AssociationConfig};
use gridguard_c1222::{
    AcseApdu, ApTitle, Epsem, EpsemControl, Error as C1222Error, Integer, Request, Response,
    ResponseCode, ResponseControl, SecurityMode, Service,
};
use gridguard_keys::{
    Application, ExpiryCause, GenerationInfo, KeyConfig, KeyEvent, KeyId, KeyStore, MeterKeyEvent,
    SessionFacts,
};
use rand_core::{CryptoRng, RngCore};

use crate::envelope::{control_of, envelope};
use crate::error::{HostError, Refusal};
use crate::live_key::LiveKey;

/// How many key ids of past generations a meter's record remembers (to tell an expired key
/// from one that never existed).
const KNOWN_KEY_IDS: usize = 12;

/// Replay window of the associations by default: 25 hours, longer than a key generation
/// lives with a PANA session lifetime of up to 24 hours plus the grace. The window must
/// outlast the keys: a message replayed after its replay entry is forgotten but while its key
/// is still accepted would otherwise pass. [`C1222Host::install_session`] and
/// [`crate::MeterLink::install_session`] refuse lifetimes that break this.
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(25 * 3600);

/// Host settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HostConfig {
    /// The host's own AP title: the called AP title of everything it accepts.
    pub ap_title: ApTitle,
    /// Key lifetimes (grace period).
    pub keys: KeyConfig,
    /// Replay window and security policy of each meter's association. The replay window must
    /// be at least the longest session lifetime plus the grace.
    pub association: AssociationConfig,
    /// Tables whose Full Writes carry interval data for ingest (default: ST64..ST67, the
    /// C12.19 load-profile data sets).
    pub ingest_tables: Vec<u16>,
    /// Registration period granted in the registration response, seconds (24 bits).
    pub registration_period: u32,
    /// Outstanding host-originated requests remembered per meter (oldest forgotten first).
    pub max_pending: usize,
    /// Meters whose expired replay entries one [`C1222Host::handle_timeout`] call forgets,
    /// in turn (default 1,024), so that a call costs the same with a million meters as with
    /// ten. A meter's own entries are also forgotten whenever a message of it arrives.
    pub replay_sweep_per_call: usize,
}

impl HostConfig {
    /// Defaults for a host named `ap_title`.
    pub fn new(ap_title: ApTitle) -> Self {
        let mut association = AssociationConfig::default();
        association.replay_window = DEFAULT_REPLAY_WINDOW;
        HostConfig {
            ap_title,
            keys: KeyConfig::default(),
            association,
            ingest_tables: vec![64, 65, 66, 67],
            registration_period: 86_400,
            max_pending: 256,
            replay_sweep_per_call: 1_024,
        }
    }

    /// Sets the key grace period.
    #[must_use]
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.keys = self.keys.with_grace(grace);
        self
    }
}

/// What the host hands out. Carries no key material.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostEvent {
    /// A meter registered.
    Registered {
        /// The meter.
        meter: ApTitle,
        /// Its native (lower-layer) address from the registration request.
        native_address: Vec<u8>,
        /// The transport address the registration came from.
        from: SocketAddr,
    },
    /// A meter wrote interval data (verified): for the ingest.
    Intervals {
        /// The meter.
        meter: ApTitle,
        /// The table written.
        table: u16,
        /// The table data.
        data: Vec<u8>,
    },
    /// A meter answered a host-originated request.
    Response {
        /// The meter.
        meter: ApTitle,
        /// Calling AP invocation id of the host's request.
        invocation: u64,
        /// The table the request read, if it was a read.
        table: Option<u16>,
        /// The response code.
        code: ResponseCode,
        /// Table data of a successful read (checksum verified); empty otherwise.
        data: Vec<u8>,
    },
    /// A message was refused.
    Refused {
        /// The claimed sender, if the message named one.
        meter: Option<ApTitle>,
        /// Why.
        kind: RefusalKind,
    },
    /// Something happened to a meter's keys (installed, rolled, expired, revoked).
    Keys(MeterKeyEvent<ApTitle>),
}

/// The reply to an accepted APDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostReply {
    /// The meter that sent the APDU.
    pub meter: ApTitle,
    /// Where to send the reply (the APDU's source).
    pub to: SocketAddr,
    /// The sealed response APDU, if one is due (none for pure responses or when the request's
    /// response control says never).
    pub bytes: Option<Vec<u8>>,
}

/// The refusal classes, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RefusalKind {
    /// [`Refusal::Malformed`].
    Malformed,
    /// [`Refusal::NotForUs`].
    NotForUs,
    /// [`Refusal::NoSession`].
    NoSession,
    /// [`Refusal::Revoked`].
    Revoked,
    /// [`Refusal::SessionExpired`].
    SessionExpired,
    /// [`Refusal::KeyExpired`].
    KeyExpired,
    /// [`Refusal::UnknownKey`].
    UnknownKey,
    /// [`Refusal::BadMac`].
    BadMac,
    /// [`Refusal::Replay`].
    Replay,
    /// [`Refusal::BelowPolicy`].
    BelowPolicy,
    /// [`Refusal::Protocol`].
    Protocol,
}

impl RefusalKind {
    /// Every kind, for iterating over counters.
    pub const ALL: [RefusalKind; 11] = [
        RefusalKind::Malformed,
        RefusalKind::NotForUs,
        RefusalKind::NoSession,
        RefusalKind::Revoked,
        RefusalKind::SessionExpired,
        RefusalKind::KeyExpired,
        RefusalKind::UnknownKey,
        RefusalKind::BadMac,
        RefusalKind::Replay,
        RefusalKind::BelowPolicy,
        RefusalKind::Protocol,
    ];
}

impl Refusal {
    /// The class of this refusal.
    pub fn kind(&self) -> RefusalKind {
        match self {
            Refusal::Malformed(_) => RefusalKind::Malformed,
            Refusal::NotForUs => RefusalKind::NotForUs,
            Refusal::NoSession { .. } => RefusalKind::NoSession,
            Refusal::Revoked { .. } => RefusalKind::Revoked,
            Refusal::SessionExpired { .. } => RefusalKind::SessionExpired,
            Refusal::KeyExpired { .. } => RefusalKind::KeyExpired,
            Refusal::UnknownKey { .. } => RefusalKind::UnknownKey,
            Refusal::BadMac { .. } => RefusalKind::BadMac,
            Refusal::Replay { .. } => RefusalKind::Replay,
            Refusal::BelowPolicy { .. } => RefusalKind::BelowPolicy,
            Refusal::Protocol { .. } => RefusalKind::Protocol,
        }
    }

    /// The claimed sender, if known.
    pub fn meter(&self) -> Option<&ApTitle> {
        match self {
            Refusal::Malformed(_) | Refusal::NotForUs => None,
            Refusal::NoSession { meter }
            | Refusal::Revoked { meter }
            | Refusal::SessionExpired { meter }
            | Refusal::KeyExpired { meter, .. }
            | Refusal::UnknownKey { meter, .. }
            | Refusal::BadMac { meter }
            | Refusal::Replay { meter }
            | Refusal::BelowPolicy { meter, .. }
            | Refusal::Protocol { meter, .. } => Some(meter),
        }
    }
}

/// Counters of the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// APDUs accepted (MAC verified, not replayed).
    pub accepted: u64,
    /// Registrations accepted.
    pub registrations: u64,
    /// Interval-data writes handed to ingest.
    pub interval_writes: u64,
    /// Interval-data writes answered `bsy` (not acted upon) because the ingest was behind.
    pub busy_writes: u64,
    /// Responses to host-originated requests received.
    pub responses: u64,
    /// Requests the host originated.
    pub requests_sent: u64,
    /// Refusals, by class.
    pub refused: BTreeMap<RefusalKind, u64>,
}

impl HostStats {
    /// Refusals of one class.
    pub fn refused(&self, kind: RefusalKind) -> u64 {
        self.refused.get(&kind).copied().unwrap_or(0)
    }

    /// All refusals.
    pub fn total_refused(&self) -> u64 {
        self.refused.values().sum()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Active,
    Revoked,
}

/// What the host knows of one meter.
struct MeterRecord {
    assoc: Association<LiveKey>,
    status: Status,
    known_key_ids: VecDeque<u8>,
    native_address: Option<Vec<u8>>,
    address: Option<SocketAddr>,
    /// Host invocation id → table read by each service of the request (None for non-reads).
    pending: BTreeMap<u64, Vec<Option<u16>>>,
    /// The meter's last interval write was answered `bsy`: its next one is taken, busy or not.
    turned_away: bool,
}

/// The head-end's C12.22 host. `R` supplies the IVs of sealed messages.
pub struct C1222Host<R> {
    config: HostConfig,
    keys: KeyStore<ApTitle>,
    meters: BTreeMap<ApTitle, MeterRecord>,
    stats: HostStats,
    events: VecDeque<HostEvent>,
    rng: R,
    next_invocation: u32,
    /// The last meter whose replay entries the incremental sweep visited.
    swept_to: Option<ApTitle>,
    /// Interval writes are answered `bsy` while set.
    ingest_busy: bool,
}

impl<R> core::fmt::Debug for C1222Host<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("C1222Host")
            .field("ap_title", &self.config.ap_title)
            .field("meters", &self.meters.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn classify(meter: ApTitle, error: C1222Error) -> Refusal {
    match error {
        C1222Error::AuthenticationFailed => Refusal::BadMac { meter },
        C1222Error::Replay => Refusal::Replay { meter },
        C1222Error::SecurityBelowPolicy(mode) => Refusal::BelowPolicy { meter, mode },
        C1222Error::UnknownKey { key_id } => Refusal::UnknownKey { meter, key_id },
        C1222Error::ReplayWindowFull | C1222Error::UncoveredElement { .. } => {
            Refusal::Protocol { meter, error }
        }
        other => Refusal::Malformed(other),
    }
}

impl<R: RngCore + CryptoRng> C1222Host<R> {
    /// A host with no meters.
    pub fn new(config: HostConfig, rng: R) -> Self {
        C1222Host {
            keys: KeyStore::new(config.keys),
            config,
            meters: BTreeMap::new(),
            stats: HostStats::default(),
            events: VecDeque::new(),
            rng,
            next_invocation: 1,
            swept_to: None,
            ingest_busy: false,
        }
    }

    /// Whether the ingest behind this host can take interval data now. While `busy`, a
    /// verified interval write is answered `bsy` (ANSI C12.22: not acted upon) at once and
    /// no [`HostEvent::Intervals`] is produced: a meter keeps the intervals in its load
    /// profile and sends them with a later upload, instead of waiting past its reply timeout
    /// and sending them again into a queue that is already late. A meter whose previous
    /// write was answered `bsy` is taken anyway, so that under lasting overload the shed
    /// load is spread over the fleet and no meter is turned away twice in a row.
    pub fn set_ingest_busy(&mut self, busy: bool) {
        self.ingest_busy = busy;
    }

    /// The host's AP title.
    pub fn ap_title(&self) -> &ApTitle {
        &self.config.ap_title
    }

    /// The counters.
    pub fn stats(&self) -> &HostStats {
        &self.stats
    }

    /// The key store (public facts of every meter's generations).
    pub fn keys(&self) -> &KeyStore<ApTitle> {
        &self.keys
    }

    /// The native address `meter` registered with, if it registered.
    pub fn native_address(&self, meter: &ApTitle) -> Option<&[u8]> {
        self.meters.get(meter)?.native_address.as_deref()
    }

    /// The transport address the last accepted APDU of `meter` came from.
    pub fn meter_address(&self, meter: &ApTitle) -> Option<SocketAddr> {
        self.meters.get(meter)?.address
    }

    /// Installs the keys of an established or re-authenticated PANA session of `meter`: the
    /// three UKMF keys are derived from `emsk` and `facts` and become the current generation
    /// (the former one stays acceptable for receiving during the grace). Clears a revocation.
    ///
    /// # Errors
    /// [`HostError::Keys`] for a bad EMSK or lifetime, [`HostError::LifetimeBeyondReplayWindow`]
    /// when `lifetime` plus the grace outlasts the replay window; nothing changes then.
    pub fn install_session(
        &mut self,
        meter: ApTitle,
        facts: &SessionFacts,
        emsk: &[u8],
        lifetime: Duration,
        now: Instant,
    ) -> Result<GenerationInfo, HostError> {
        if let Some((key_life, replay_window)) =
            outlives_replay_window(lifetime, &self.config.keys, &self.config.association)
        {
            return Err(HostError::LifetimeBeyondReplayWindow {
                key_life,
                replay_window,
            });
        }
        self.settle_keys(now);
        let info = self
            .keys
            .install_generation(meter.clone(), facts, emsk, lifetime, now)?;
        let association = self.config.association.clone();
        let record = self.meters.entry(meter).or_insert_with(|| MeterRecord {
            assoc: Association::new(association, LiveKey::default()),
            status: Status::Active,
            known_key_ids: VecDeque::new(),
            native_address: None,
            address: None,
            pending: BTreeMap::new(),
            turned_away: false,
        });
        record.status = Status::Active;
        for (_, id) in info.key_ids {
            if !record.known_key_ids.contains(&id.value()) {
                if record.known_key_ids.len() >= KNOWN_KEY_IDS {
                    record.known_key_ids.pop_front();
                }
                record.known_key_ids.push_back(id.value());
            }
        }
        self.drain_key_events();
        Ok(info)
    }

    /// Destroys all keys of `meter` at once; its messages are refused from now on (until a new
    /// session is installed). Returns whether it had live keys.
    pub fn revoke(&mut self, meter: &ApTitle, now: Instant) -> bool {
        let had = self.keys.revoke(meter, now);
        if let Some(r) = self.meters.get_mut(meter) {
            r.status = Status::Revoked;
            r.pending.clear();
        }
        self.drain_key_events();
        had
    }

    /// Revokes `meter`'s keys and forgets everything the host knows of it (registration,
    /// address, replay window, pending requests): for a retired meter. Its messages are then
    /// refused as [`Refusal::NoSession`]. Returns whether it had live keys.
    pub fn forget(&mut self, meter: &ApTitle, now: Instant) -> bool {
        let had = self.revoke(meter, now);
        self.meters.remove(meter);
        had
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.meters
            .values()
            .filter_map(|m| m.assoc.poll_timeout())
            .chain(self.keys.poll_timeout())
            .min()
    }

    /// Destroys expired keys and forgets expired replay entries (of
    /// [`HostConfig::replay_sweep_per_call`] meters a call, in turn). Safe to call at any time.
    pub fn handle_timeout(&mut self, now: Instant) {
        use std::ops::Bound::{Excluded, Unbounded};
        self.settle_keys(now);
        let from = match self.swept_to.take() {
            Some(t) => (Excluded(t), Unbounded),
            None => (Unbounded, Unbounded),
        };
        let per_call = self.config.replay_sweep_per_call.max(1);
        let mut visited = 0;
        for (title, m) in self.meters.range_mut(from).take(per_call) {
            m.assoc.handle_timeout(now);
            visited += 1;
            if visited == per_call {
                self.swept_to = Some(title.clone());
            }
        }
    }

    /// Replay entries remembered over all meters ((AP title, invocation id) pairs and IVs
    /// seen within their window).
    pub fn replay_entries(&self) -> usize {
        self.meters.values().map(|m| m.assoc.tracked()).sum()
    }

    /// The next queued event, oldest first.
    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.events.pop_front()
    }

    fn settle_keys(&mut self, now: Instant) {
        self.keys.handle_timeout(now);
        self.drain_key_events();
    }

    fn drain_key_events(&mut self) {
        while let Some(e) = self.keys.poll_event() {
            if let KeyEvent::Expired {
                cause: ExpiryCause::LifetimeEnded,
                ..
            } = e.event
            {
                if let Some(r) = self.meters.get_mut(&e.meter) {
                    r.pending.clear();
                }
            }
            self.events.push_back(HostEvent::Keys(e));
        }
    }

    fn refuse(&mut self, refusal: Refusal) -> Refusal {
        let kind = refusal.kind();
        *self.stats.refused.entry(kind).or_insert(0) += 1;
        tracing::debug!(?kind, meter = ?refusal.meter(), "C12.22 APDU refused");
        self.events.push_back(HostEvent::Refused {
            meter: refusal.meter().cloned(),
            kind,
        });
        refusal
    }

    /// Verifies and processes one APDU received from `from`.
    ///
    /// # Errors
    /// A [`Refusal`] (also counted and queued as [`HostEvent::Refused`]); the meter's state
    /// is unchanged then.
    pub fn handle_apdu(
        &mut self,
        from: SocketAddr,
        bytes: &[u8],
        now: Instant,
    ) -> Result<HostReply, Refusal> {
        self.settle_keys(now);
        match self.verify(bytes, now) {
            Ok((meter, apdu, epsem)) => Ok(self.process(meter, from, &apdu, epsem, now)),
            Err(r) => Err(self.refuse(r)),
        }
    }

    /// Everything up to and including the MAC and replay check.
    fn verify(
        &mut self,
        bytes: &[u8],
        now: Instant,
    ) -> Result<(ApTitle, AcseApdu, Epsem), Refusal> {
        let apdu = AcseApdu::parse(bytes).map_err(Refusal::Malformed)?;
        if apdu.called_ap_title.as_ref() != Some(&self.config.ap_title) {
            return Err(Refusal::NotForUs);
        }
        let meter =
            apdu.calling_ap_title
                .clone()
                .ok_or(Refusal::Malformed(C1222Error::MissingElement(
                    "calling AP title",
                )))?;
        let control = control_of(&apdu).ok_or(Refusal::Malformed(C1222Error::MissingElement(
            "EPSEM control byte",
        )))?;
        let mode = control.security_mode();
        let Some(record) = self.meters.get(&meter) else {
            return Err(Refusal::NoSession { meter });
        };
        if record.status == Status::Revoked {
            return Err(Refusal::Revoked { meter });
        }
        if mode.0 > SecurityMode::CIPHERTEXT_AUTH.0 {
            return Err(Refusal::Malformed(C1222Error::UnsupportedSecurityMode(
                mode.0,
            )));
        }
        if mode.0 < self.config.association.min_security_mode.0 || mode == SecurityMode::CLEARTEXT {
            return Err(Refusal::BelowPolicy {
                meter,
                mode: mode.0,
            });
        }
        let key_id = apdu
            .key_id_and_iv()
            .0
            .ok_or(Refusal::Malformed(C1222Error::MissingKeyIdOrIv))?;
        let Some(app) = KeyId(key_id).application() else {
            return Err(Refusal::UnknownKey { meter, key_id });
        };
        let key = match self.keys.receiving_key(&meter, app, KeyId(key_id), now) {
            Ok(k) => k,
            Err(_) if !self.keys.contains(&meter) => return Err(Refusal::SessionExpired { meter }),
            Err(_) if record.known_key_ids.contains(&key_id) => {
                return Err(Refusal::KeyExpired { meter, key_id })
            }
            Err(_) => return Err(Refusal::UnknownKey { meter, key_id }),
        };
        record.assoc.keys().load(key.key_id, key.key);
        let Some(record) = self.meters.get_mut(&meter) else {
            return Err(Refusal::NoSession { meter });
        };
        // The association verifies the APDU parsed above: no second parse.
        let received = record.assoc.receive_parsed(now, apdu);
        record.assoc.keys().clear();
        match received {
            Ok(r) => Ok((meter, r.apdu, r.epsem)),
            Err(e) => Err(classify(meter, e)),
        }
    }

    fn process(
        &mut self,
        meter: ApTitle,
        from: SocketAddr,
        apdu: &AcseApdu,
        epsem: Epsem,
        now: Instant,
    ) -> HostReply {
        self.stats.accepted += 1;
        let key_id = apdu.key_id_and_iv().0.unwrap_or(0);
        let app = KeyId(key_id)
            .application()
            .unwrap_or(Application::C1222Data);
        let answered = apdu.called_ap_invocation_id.as_ref().map(Integer::value);
        let mut responses = Vec::new();
        let mut any_request = false;
        let mut any_error = false;
        let Some(record) = self.meters.get_mut(&meter) else {
            return HostReply {
                meter,
                to: from,
                bytes: None,
            };
        };
        record.address = Some(from);
        let pending_tables = answered.and_then(|inv| record.pending.remove(&inv));
        let mut response_index = 0usize;
        for service in epsem.services {
            match service {
                Service::Request(req) => {
                    any_request = true;
                    let resp = match req {
                        Request::Registration(reg) if reg.ap_title != meter => {
                            // A meter registers itself only: the AP title it names must be the
                            // authenticated calling AP title.
                            error_response(ResponseCode::IAR)
                        }
                        Request::Registration(reg) => {
                            record.native_address = Some(reg.native_address.clone());
                            self.stats.registrations += 1;
                            self.events.push_back(HostEvent::Registered {
                                meter: meter.clone(),
                                native_address: reg.native_address,
                                from,
                            });
                            registration_response(&meter, self.config.registration_period)
                        }
                        Request::FullWrite { table, data }
                            if self.config.ingest_tables.contains(&table.0) =>
                        {
                            if record.native_address.is_none() {
                                error_response(ResponseCode::ISSS)
                            } else if self.ingest_busy && !record.turned_away {
                                record.turned_away = true;
                                self.stats.busy_writes += 1;
                                error_response(ResponseCode::BSY)
                            } else {
                                record.turned_away = false;
                                self.stats.interval_writes += 1;
                                self.events.push_back(HostEvent::Intervals {
                                    meter: meter.clone(),
                                    table: table.0,
                                    data,
                                });
                                error_response(ResponseCode::OK)
                            }
                        }
                        Request::FullWrite { .. } | Request::PartialWriteOffset { .. } => {
                            error_response(ResponseCode::IAR)
                        }
                        _ => error_response(ResponseCode::SNS),
                    };
                    any_error |= resp.code != ResponseCode::OK;
                    responses.push(Service::Response(resp));
                }
                Service::Response(resp) => {
                    self.stats.responses += 1;
                    let table = pending_tables
                        .as_ref()
                        .and_then(|t| t.get(response_index).copied().flatten());
                    response_index += 1;
                    let data = if resp.code == ResponseCode::OK && table.is_some() {
                        resp.table_data().map(<[u8]>::to_vec).unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    self.events.push_back(HostEvent::Response {
                        meter: meter.clone(),
                        invocation: answered.unwrap_or(0),
                        table,
                        code: resp.code,
                        data,
                    });
                }
            }
        }
        let rc = epsem.control.response_control();
        let due = any_request
            && (rc == ResponseControl::ALWAYS
                || (rc == ResponseControl::ON_EXCEPTION && any_error));
        let bytes = if due {
            let control = EpsemControl::new(epsem.control.security_mode(), ResponseControl::NEVER);
            let reply = Epsem {
                control,
                ed_class: None,
                services: responses,
                end_marker: false,
            };
            self.seal_to(
                &meter,
                app,
                &reply,
                apdu.calling_ap_invocation_id.as_ref(),
                now,
            )
            .map_err(|e| tracing::warn!(error = %e, "could not seal C12.22 response"))
            .ok()
        } else {
            None
        };
        HostReply {
            meter,
            to: from,
            bytes,
        }
    }

    fn seal_to(
        &mut self,
        meter: &ApTitle,
        app: Application,
        epsem: &Epsem,
        answers: Option<&Integer>,
        now: Instant,
    ) -> Result<Vec<u8>, HostError> {
        let key = self.keys.sending_key(meter, app, now)?;
        let key_id = key.key_id;
        let record = self
            .meters
            .get_mut(meter)
            .ok_or_else(|| HostError::NoSession(meter.clone()))?;
        record.assoc.keys().load(key_id, key.key);
        let invocation = self.next_invocation;
        self.next_invocation = self.next_invocation.wrapping_add(1).max(1);
        let apdu = envelope(
            meter,
            &self.config.ap_title,
            invocation,
            answers,
            epsem.to_bytes()?,
        );
        let sealed = record.assoc.seal(apdu, key_id.value(), &mut self.rng);
        record.assoc.keys().clear();
        Ok(sealed?)
    }

    /// Originates a request to `meter` (reads, writes, procedures) under its current C12.22
    /// data key, in the security mode of `epsem`'s control byte. Reads are remembered so the
    /// meter's response comes out as [`HostEvent::Response`] with its table. Send the bytes to
    /// [`meter_address`](Self::meter_address).
    ///
    /// # Errors
    /// [`HostError::NoSession`] / [`HostError::Keys`] when the meter has no current key;
    /// [`HostError::C1222`] when the EPSEM cannot be encoded.
    pub fn request(
        &mut self,
        meter: &ApTitle,
        epsem: &Epsem,
        now: Instant,
    ) -> Result<Vec<u8>, HostError> {
        self.originate(meter, Application::C1222Data, epsem, now)
    }

    /// Like [`request`](Self::request), under the meter's demand-response key (for
    /// demand-response and switch commands).
    ///
    /// # Errors
    /// As [`request`](Self::request).
    pub fn demand_response(
        &mut self,
        meter: &ApTitle,
        epsem: &Epsem,
        now: Instant,
    ) -> Result<Vec<u8>, HostError> {
        self.originate(meter, Application::DemandResponse, epsem, now)
    }

    fn originate(
        &mut self,
        meter: &ApTitle,
        app: Application,
        epsem: &Epsem,
        now: Instant,
    ) -> Result<Vec<u8>, HostError> {
        self.settle_keys(now);
        match self.meters.get(meter) {
            Some(r) if r.status == Status::Active && self.keys.contains(meter) => {}
            _ => return Err(HostError::NoSession(meter.clone())),
        }
        let invocation = u64::from(self.next_invocation);
        let bytes = self.seal_to(meter, app, epsem, None, now)?;
        let tables: Vec<Option<u16>> = epsem
            .services
            .iter()
            .map(|s| match s {
                Service::Request(Request::FullRead { table })
                | Service::Request(Request::PartialReadOffset { table, .. }) => Some(table.0),
                _ => None,
            })
            .collect();
        if let Some(record) = self.meters.get_mut(meter) {
            if record.pending.len() >= self.config.max_pending.max(1) {
                record.pending.pop_first();
            }
            record.pending.insert(invocation, tables);
        }
        self.stats.requests_sent += 1;
        Ok(bytes)
    }
}

fn error_response(code: ResponseCode) -> Response {
    Response {
        code,
        data: Vec::new(),
    }
}

/// `ok <rel-ap-title> <reg-delay> <reg-period> <reg-info>` (ANSI C12.22 registration
/// response); the AP title is the one the meter registered with.
fn registration_response(meter: &ApTitle, period: u32) -> Response {
    let mut data = Vec::with_capacity(24);
    if meter.emit(&mut data).is_err() {
        return error_response(ResponseCode::ERR);
    }
    data.extend_from_slice(&0u16.to_be_bytes());
    let p = period.min(0x00ff_ffff).to_be_bytes();
    data.extend_from_slice(p.get(1..).unwrap_or_default());
    data.push(0);
    Response {
        code: ResponseCode::OK,
        data,
    }
}

/// `Some((key life, replay window))` when a session of `lifetime` would give keys that outlive
/// the replay window (see [`DEFAULT_REPLAY_WINDOW`]).
pub(crate) fn outlives_replay_window(
    lifetime: Duration,
    keys: &KeyConfig,
    association: &AssociationConfig,
) -> Option<(Duration, Duration)> {
    let key_life = lifetime.saturating_add(keys.grace);
    (key_life > association.replay_window).then_some((key_life, association.replay_window))
}
