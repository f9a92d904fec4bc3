//! The meter's side of the C12.22 exchange with the head-end host, sans-IO.
//!
//! The meter derives the same UKMF keys as the host from the EMSK of its PANA session
//! ([`MeterLink::install_session`]), keeps them in its own [`KeyRing`] (current generation for
//! sending, previous one accepted during the grace), builds the Registration and the interval
//! data Writes, answers the host's requests from a [`MeterTables`] source, and verifies every
//! response and host-originated request (EAX′, replay window), refusing with a typed
//! [`LinkError`].

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use gridguard_c1222::epsem::Registration;
use gridguard_c1222::security::{Association, AssociationConfig, ReplayCheck};
use gridguard_c1222::{
    AcseApdu, ApTitle, Epsem, EpsemControl, Error as C1222Error, Integer, Request, Response,
    ResponseCode, ResponseControl, SecurityMode, Service, TableId,
};
use gridguard_keys::{Application, GenerationInfo, KeyConfig, KeyId, KeyRing, SessionFacts};
use rand_core::{CryptoRng, RngCore};

use crate::envelope::{control_of, envelope};
use crate::error::LinkError;
use crate::live_key::LiveKey;

/// Meter link settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MeterLinkConfig {
    /// The meter's AP title.
    pub ap_title: ApTitle,
    /// The head-end host's AP title.
    pub host_ap_title: ApTitle,
    /// The meter's native (lower-layer) address, sent in the Registration.
    pub native_address: Vec<u8>,
    /// Electronic serial number sent in the Registration (defaults to the AP title).
    pub electronic_serial_number: ApTitle,
    /// Device class sent in the Registration.
    pub device_class: [u8; 4],
    /// Security mode of the messages the meter originates (default: mode 2).
    pub security_mode: SecurityMode,
    /// Response control of the requests the meter originates (default: always respond).
    pub response_control: ResponseControl,
    /// Key lifetimes (grace period); must match the host's.
    pub keys: KeyConfig,
    /// Replay window and security policy; the replay window must be at least the longest
    /// session lifetime plus the grace.
    pub association: AssociationConfig,
}

impl MeterLinkConfig {
    /// Defaults for meter `ap_title` talking to host `host_ap_title`.
    pub fn new(ap_title: ApTitle, host_ap_title: ApTitle, native_address: Vec<u8>) -> Self {
        MeterLinkConfig {
            electronic_serial_number: ap_title.clone(),
            ap_title,
            host_ap_title,
            native_address,
            device_class: *b"GGRD",
            security_mode: SecurityMode::CIPHERTEXT_AUTH,
            response_control: ResponseControl::ALWAYS,
            keys: KeyConfig::default(),
            association: {
                let mut a = AssociationConfig::default();
                a.replay_window = crate::c1222_host::DEFAULT_REPLAY_WINDOW;
                // The host numbers its messages in order: a window per key, not a record
                // of every message for a day.
                a.replay = ReplayCheck::Increasing;
                a
            },
        }
    }

    /// Sets the key grace period.
    #[must_use]
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.keys = self.keys.with_grace(grace);
        self
    }

    /// Sets the response control of originated requests.
    #[must_use]
    pub fn with_response_control(mut self, rc: ResponseControl) -> Self {
        self.response_control = rc;
        self
    }

    /// Sets the security mode of originated messages (1 or 2).
    #[must_use]
    pub fn with_security_mode(mut self, mode: SecurityMode) -> Self {
        self.security_mode = mode;
        self
    }
}

/// The tables a meter exposes to the host's reads and writes.
pub trait MeterTables {
    /// The whole content of `table`, or `None` if the meter has no such table.
    fn read(&self, table: u16) -> Option<Vec<u8>>;
    /// Writes the whole `table`; returns the response code to send. `key` is the application
    /// of the key the request was sealed under, so that a meter can refuse a command (a
    /// procedure, a switch operation) that did not come under the key meant for it.
    fn write(&mut self, table: u16, data: &[u8], key: Application) -> ResponseCode;
}

/// A [`MeterTables`] held in memory: reads what was stored, accepts writes to tables that
/// exist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryTables {
    /// Table id → content.
    pub tables: BTreeMap<u16, Vec<u8>>,
}

impl MeterTables for MemoryTables {
    fn read(&self, table: u16) -> Option<Vec<u8>> {
        self.tables.get(&table).cloned()
    }

    fn write(&mut self, table: u16, data: &[u8], _key: Application) -> ResponseCode {
        match self.tables.get_mut(&table) {
            Some(t) => {
                *t = data.to_vec();
                ResponseCode::OK
            }
            None => ResponseCode::IAR,
        }
    }
}

/// An APDU the meter built, with its calling AP invocation id (responses name it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Calling AP invocation id.
    pub invocation: u64,
    /// The sealed APDU.
    pub bytes: Vec<u8>,
}

/// What the meter link hands out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MeterEvent {
    /// The host answered one of our requests (verified).
    Response {
        /// Our invocation id the response names (0 if none).
        invocation: u64,
        /// The responses, one per service of our request.
        responses: Vec<Response>,
        /// The key id the response was sealed under.
        key_id: u8,
    },
    /// The host sent us a request, which was answered.
    Request {
        /// The requests.
        requests: Vec<Request>,
        /// The key id it was sealed under (tells the demand-response key from the data key).
        key_id: u8,
    },
}

/// The meter's C12.22 client. `R` supplies the IVs.
pub struct MeterLink<R> {
    config: MeterLinkConfig,
    ring: KeyRing,
    assoc: Association<LiveKey>,
    rng: R,
    next_invocation: u32,
    events: VecDeque<MeterEvent>,
}

impl<R> core::fmt::Debug for MeterLink<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MeterLink")
            .field("ap_title", &self.config.ap_title)
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

impl<R: RngCore + CryptoRng> MeterLink<R> {
    /// A link with no keys yet.
    pub fn new(config: MeterLinkConfig, rng: R) -> Self {
        MeterLink {
            ring: KeyRing::new(config.keys),
            assoc: Association::new(config.association.clone(), LiveKey::default()),
            config,
            rng,
            next_invocation: 1,
            events: VecDeque::new(),
        }
    }

    /// The meter's AP title.
    pub fn ap_title(&self) -> &ApTitle {
        &self.config.ap_title
    }

    /// The key ring (public facts of the generations).
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// Derives the keys of an established or re-authenticated PANA session; the new
    /// generation is used for sending at once.
    ///
    /// # Errors
    /// [`LinkError::Keys`] for a bad EMSK or lifetime, [`LinkError::LifetimeBeyondReplayWindow`]
    /// when `lifetime` plus the grace outlasts the replay window.
    pub fn install_session(
        &mut self,
        facts: &SessionFacts,
        emsk: &[u8],
        lifetime: Duration,
        now: Instant,
    ) -> Result<GenerationInfo, LinkError> {
        if let Some((key_life, replay_window)) = crate::c1222_host::outlives_replay_window(
            lifetime,
            &self.config.keys,
            &self.config.association,
        ) {
            return Err(LinkError::LifetimeBeyondReplayWindow {
                key_life,
                replay_window,
            });
        }
        let info = self.ring.install_generation(facts, emsk, lifetime, now)?;
        // A key id names new key material now: its anti-replay window starts afresh (a host
        // that restarted numbers its messages from 1 again under the new keys).
        for (_, key_id) in info.key_ids {
            self.assoc.forget_sequence(key_id.value());
        }
        Ok(info)
    }

    /// Destroys all keys at once.
    pub fn revoke(&mut self, now: Instant) {
        self.ring.revoke(now);
        while self.ring.poll_event().is_some() {}
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.ring.poll_timeout(), self.assoc.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Destroys expired keys and forgets expired replay entries.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ring.handle_timeout(now);
        while self.ring.poll_event().is_some() {}
        self.assoc.handle_timeout(now);
    }

    /// The next queued event.
    pub fn poll_event(&mut self) -> Option<MeterEvent> {
        let event = self.events.pop_front();
        if event.is_none() && self.events.capacity() > 0 {
            // Drained: a meter idles between messages, so it keeps no queue meanwhile.
            self.events = VecDeque::new();
        }
        event
    }

    fn seal(
        &mut self,
        app: Application,
        epsem: &Epsem,
        answers: Option<&Integer>,
        now: Instant,
    ) -> Result<Outgoing, LinkError> {
        let key = self
            .ring
            .sending_key(app, now)
            .map_err(|_| LinkError::NoSession)?;
        let key_id = key.key_id;
        self.assoc.keys().load(key_id, key.key);
        let invocation = self.next_invocation;
        self.next_invocation = self.next_invocation.wrapping_add(1).max(1);
        let bytes = epsem.to_bytes().map_err(LinkError::Protocol).and_then(|e| {
            let apdu = envelope(
                &self.config.host_ap_title,
                &self.config.ap_title,
                invocation,
                answers,
                e,
            );
            self.assoc
                .seal(apdu, key_id.value(), &mut self.rng)
                .map_err(LinkError::Protocol)
        });
        self.assoc.keys().clear();
        Ok(Outgoing {
            invocation: u64::from(invocation),
            bytes: bytes?,
        })
    }

    fn request_epsem(&self, services: Vec<Service>) -> Epsem {
        Epsem {
            control: EpsemControl::new(self.config.security_mode, self.config.response_control),
            ed_class: None,
            services,
            end_marker: false,
        }
    }

    /// The Registration request (native address, AP title, serial number, device class).
    ///
    /// # Errors
    /// [`LinkError::NoSession`] without a current key; [`LinkError::Protocol`] if it cannot
    /// be encoded (native address over 255 bytes).
    pub fn registration(&mut self, now: Instant) -> Result<Outgoing, LinkError> {
        let reg = Registration {
            node_type: 0x00,
            connection_type: 0x00,
            device_class: self.config.device_class,
            ap_title: self.config.ap_title.clone(),
            electronic_serial_number: self.config.electronic_serial_number.clone(),
            native_address: self.config.native_address.clone(),
            registration_period: 0,
            my_domain_pattern: None,
        };
        let epsem = self.request_epsem(vec![Service::Request(Request::Registration(reg))]);
        self.seal(Application::C1222Data, &epsem, None, now)
    }

    /// A Full Write of `table` carrying interval data.
    ///
    /// # Errors
    /// As [`registration`](Self::registration); data over 65535 bytes cannot be encoded.
    pub fn write_intervals(
        &mut self,
        table: u16,
        data: &[u8],
        now: Instant,
    ) -> Result<Outgoing, LinkError> {
        let epsem = self.request_epsem(vec![Service::Request(Request::FullWrite {
            table: TableId(table),
            data: data.to_vec(),
        })]);
        self.seal(Application::C1222Data, &epsem, None, now)
    }

    /// Verifies an APDU from the host. Responses become [`MeterEvent::Response`]; requests are
    /// served from `tables` and answered (returned bytes, sealed under the current key of the
    /// same application) and reported as [`MeterEvent::Request`].
    ///
    /// # Errors
    /// A [`LinkError`] refusal; nothing changes then.
    pub fn handle_apdu(
        &mut self,
        bytes: &[u8],
        now: Instant,
        tables: &mut dyn MeterTables,
    ) -> Result<Option<Vec<u8>>, LinkError> {
        self.ring.handle_timeout(now);
        while self.ring.poll_event().is_some() {}
        let apdu = AcseApdu::parse(bytes).map_err(LinkError::Malformed)?;
        if apdu.called_ap_title.as_ref() != Some(&self.config.ap_title)
            || apdu.calling_ap_title.as_ref() != Some(&self.config.host_ap_title)
        {
            return Err(LinkError::NotFromHost);
        }
        let control = control_of(&apdu).ok_or(LinkError::Malformed(C1222Error::MissingElement(
            "EPSEM control byte",
        )))?;
        let mode = control.security_mode();
        if mode == SecurityMode::CLEARTEXT || mode.0 < self.config.association.min_security_mode.0 {
            return Err(LinkError::BelowPolicy(mode.0));
        }
        let key_id = apdu
            .key_id_and_iv()
            .0
            .ok_or(LinkError::Malformed(C1222Error::MissingKeyIdOrIv))?;
        if self.ring.is_empty() {
            return Err(LinkError::NoSession);
        }
        let app = KeyId(key_id)
            .application()
            .ok_or(LinkError::UnknownKey { key_id })?;
        let key = self
            .ring
            .receiving_key(app, KeyId(key_id), now)
            .map_err(|_| LinkError::UnknownKey { key_id })?;
        self.assoc.keys().load(key.key_id, key.key);
        let received = self.assoc.receive(now, bytes);
        self.assoc.keys().clear();
        let received = received.map_err(|e| match e {
            C1222Error::AuthenticationFailed => LinkError::BadMac,
            C1222Error::Replay => LinkError::Replay,
            C1222Error::SecurityBelowPolicy(m) => LinkError::BelowPolicy(m),
            other => LinkError::Protocol(other),
        })?;

        let mut requests = Vec::new();
        let mut responses = Vec::new();
        let mut answers = Vec::new();
        for service in received.epsem.services {
            match service {
                Service::Response(r) => responses.push(r),
                Service::Request(q) => {
                    answers.push(Service::Response(serve(&q, app, tables)));
                    requests.push(q);
                }
            }
        }
        if !responses.is_empty() {
            self.events.push_back(MeterEvent::Response {
                invocation: received
                    .apdu
                    .called_ap_invocation_id
                    .as_ref()
                    .map(Integer::value)
                    .unwrap_or(0),
                responses,
                key_id,
            });
        }
        if requests.is_empty() {
            return Ok(None);
        }
        self.events
            .push_back(MeterEvent::Request { requests, key_id });
        let rc = received.epsem.control.response_control();
        let any_error = answers
            .iter()
            .any(|s| matches!(s, Service::Response(r) if r.code != ResponseCode::OK));
        if rc == ResponseControl::NEVER || (rc == ResponseControl::ON_EXCEPTION && !any_error) {
            return Ok(None);
        }
        let reply = Epsem {
            control: EpsemControl::new(mode, ResponseControl::NEVER),
            ed_class: None,
            services: answers,
            end_marker: false,
        };
        let out = self.seal(
            app,
            &reply,
            received.apdu.calling_ap_invocation_id.as_ref(),
            now,
        )?;
        Ok(Some(out.bytes))
    }
}

fn serve(request: &Request, app: Application, tables: &mut dyn MeterTables) -> Response {
    let code_only = |code| Response {
        code,
        data: Vec::new(),
    };
    match request {
        Request::FullRead { table } => match tables.read(table.0) {
            Some(d) => Response::ok_with_table_data(&d).unwrap_or(code_only(ResponseCode::RSTL)),
            None => code_only(ResponseCode::IAR),
        },
        Request::PartialReadOffset {
            table,
            offset,
            count,
        } => match tables.read(table.0) {
            Some(d) => {
                let start = usize::try_from(*offset).unwrap_or(usize::MAX);
                let end = start.saturating_add(usize::from(*count));
                match d.get(start..end) {
                    Some(part) => {
                        Response::ok_with_table_data(part).unwrap_or(code_only(ResponseCode::RSTL))
                    }
                    None => code_only(ResponseCode::IAR),
                }
            }
            None => code_only(ResponseCode::IAR),
        },
        Request::FullWrite { table, data } => code_only(tables.write(table.0, data, app)),
        _ => code_only(ResponseCode::SNS),
    }
}
