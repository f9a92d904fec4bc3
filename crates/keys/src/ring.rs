//! Key rings: the generations of application keys of one meter ([`KeyRing`]) and of many
//! meters ([`KeyStore`]).
//!
//! Sans-IO in the quinn-proto shape: nothing here reads a clock, sleeps or does I/O. Every
//! call that depends on time takes `now: std::time::Instant` from the driver; the driver asks
//! [`KeyStore::poll_timeout`] for the next deadline, arms one timer, calls
//! [`KeyStore::handle_timeout`] when it fires (calling it too often is harmless), and drains
//! [`KeyStore::poll_event`].
//!
//! # Lifetimes
//!
//! A generation installed at `t` with PANA session lifetime `L` expires at `t + L + grace`
//! (`grace` from [`KeyConfig`]): until then it is the *current* generation, used for sending
//! and receiving. When the meter re-authenticates at `r`, the new generation becomes current
//! at once (all sending switches to it), and the old one becomes *previous*: it is accepted
//! for receiving only, until `min(its expiry, r + grace)`. At most one previous generation is
//! kept; a third authentication within the grace destroys the oldest at once. Every lookup
//! checks `now` itself, so a key past its expiry is never handed out even if
//! `handle_timeout` is late; `handle_timeout` is what destroys (zeroizes) it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::kdf::{derive_app_key, derive_key_id_bits, SessionFacts};
use crate::key::{AppKey, Application, KeyId};

/// Grace period used when none is configured: five minutes.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(300);

/// Key management settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyConfig {
    /// How long a generation outlives its PANA session lifetime, and how long the previous
    /// generation is still accepted for receiving after a re-authentication.
    pub grace: Duration,
}

impl Default for KeyConfig {
    fn default() -> Self {
        Self {
            grace: DEFAULT_GRACE,
        }
    }
}

impl KeyConfig {
    /// The default configuration ([`DEFAULT_GRACE`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the grace period.
    #[must_use]
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
}

/// Why a generation was destroyed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryCause {
    /// It was current and reached `lifetime + grace` without a re-authentication.
    LifetimeEnded,
    /// It was the previous generation and its receive grace after the rollover ended.
    GraceEnded,
    /// It was the previous generation and a newer re-authentication pushed it out.
    Superseded,
}

/// What happened in one key ring. Carries no key material.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyEvent {
    /// A new generation was derived and is now current.
    Installed {
        /// Generation number, counting from 1 since the ring was last empty.
        generation: u64,
        /// The key id of each application in this generation.
        key_ids: [(Application, KeyId); 3],
        /// When the generation expires (`now + lifetime + grace`).
        expires_at: Instant,
    },
    /// Sending moved to a new generation; the old one is accepted for receiving for a while.
    Rolled {
        /// The generation that is now previous.
        from_generation: u64,
        /// The generation that is now current.
        to_generation: u64,
        /// Until when the previous generation is still accepted for receiving.
        previous_accepted_until: Instant,
    },
    /// A generation was destroyed (its keys zeroized) because its time was over.
    Expired {
        /// The destroyed generation.
        generation: u64,
        /// Why it was destroyed.
        cause: ExpiryCause,
    },
    /// All generations were destroyed on demand.
    Revoked {
        /// The destroyed generations (empty if the ring held none).
        generations: Vec<u64>,
    },
}

/// Public facts of a generation (no key material).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerationInfo {
    /// Generation number, counting from 1 since its ring was last empty (informational).
    pub generation: u64,
    /// PANA Session Identifier the generation was derived for.
    pub pana_session_id: u32,
    /// PANA Key-Id of the (re-)authentication the generation was derived from.
    pub pana_key_id: u32,
    /// The key id of each application.
    pub key_ids: [(Application, KeyId); 3],
    /// When it was installed (the key's creation time).
    pub created_at: Instant,
    /// When it expires (`created_at + lifetime + grace`).
    pub expires_at: Instant,
}

/// A key handed out by a lookup, with its id and the instant it stops being usable.
pub struct KeyRef<'a> {
    /// The key id to put into (or that was found in) the message.
    pub key_id: KeyId,
    /// The key itself.
    pub key: &'a AppKey,
    /// Generation number of the key.
    pub generation: u64,
    /// The key must not be used from this instant on.
    pub usable_until: Instant,
}

impl fmt::Debug for KeyRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRef")
            .field("key_id", &self.key_id)
            .field("key", &"<redacted>")
            .field("generation", &self.generation)
            .field("usable_until", &self.usable_until)
            .finish()
    }
}

struct Slot {
    key_id: KeyId,
    key: AppKey,
}

struct Generation {
    info: GenerationInfo,
    c1222_data: Slot,
    demand_response: Slot,
    link_layer: Slot,
}

impl Generation {
    fn slot(&self, app: Application) -> &Slot {
        match app {
            Application::C1222Data => &self.c1222_data,
            Application::DemandResponse => &self.demand_response,
            Application::LinkLayer => &self.link_layer,
        }
    }

    fn key_ref(&self, app: Application, usable_until: Instant) -> KeyRef<'_> {
        let slot = self.slot(app);
        KeyRef {
            key_id: slot.key_id,
            key: &slot.key,
            generation: self.info.generation,
            usable_until,
        }
    }
}

struct Retired {
    generation: Generation,
    accepted_until: Instant,
}

/// Derived but not yet installed keys of one application.
struct Derived {
    app: Application,
    key: AppKey,
    id_bits: u8,
}

/// The key generations of one meter: the current one and at most one previous one.
pub struct KeyRing {
    config: KeyConfig,
    current: Option<Generation>,
    previous: Option<Retired>,
    next_generation: u64,
    events: VecDeque<KeyEvent>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current.as_ref().map(|g| &g.info))
            .field(
                "previous",
                &self
                    .previous
                    .as_ref()
                    .map(|r| (&r.generation.info, r.accepted_until)),
            )
            .finish_non_exhaustive()
    }
}

impl Default for KeyRing {
    fn default() -> Self {
        Self::new(KeyConfig::default())
    }
}

impl KeyRing {
    /// An empty ring.
    pub fn new(config: KeyConfig) -> Self {
        Self {
            config,
            current: None,
            previous: None,
            next_generation: 1,
            events: VecDeque::new(),
        }
    }

    /// Derives the three application keys of a (re-)authentication from its EMSK and makes
    /// them the current generation; the former current generation becomes previous.
    ///
    /// `lifetime` is the PANA session lifetime the authentication granted.
    ///
    /// # Errors
    /// [`Error::InvalidLifetime`] for a zero lifetime or an expiry that overflows `Instant`;
    /// the derivation errors of [`crate::kdf::usrk_into`]. On error the ring is unchanged.
    pub fn install_generation(
        &mut self,
        facts: &SessionFacts,
        emsk: &[u8],
        lifetime: Duration,
        now: Instant,
    ) -> Result<GenerationInfo, Error> {
        if lifetime.is_zero() {
            return Err(Error::InvalidLifetime);
        }
        let expires_at = now
            .checked_add(lifetime)
            .and_then(|t| t.checked_add(self.config.grace))
            .ok_or(Error::InvalidLifetime)?;
        let derive = |app: Application| -> Result<Derived, Error> {
            Ok(Derived {
                app,
                key: derive_app_key(emsk, facts, app)?,
                id_bits: derive_key_id_bits(emsk, facts, app)?,
            })
        };
        let derived = [
            derive(Application::C1222Data)?,
            derive(Application::DemandResponse)?,
            derive(Application::LinkLayer)?,
        ];

        // From here on nothing fails.
        self.handle_timeout(now);
        if self.is_empty() {
            // Numbering restarts whenever the ring is empty, as in a `KeyStore`, which drops
            // empty rings.
            self.next_generation = 1;
        }
        let generation = self.next_generation;
        self.next_generation = self.next_generation.saturating_add(1);

        // Key ids must differ from the generation that becomes previous (see `KeyId`).
        let [c1222_data, demand_response, link_layer] = derived.map(|d| {
            let mut key_id = KeyId::for_application(d.app, d.id_bits);
            if let Some(current) = &self.current {
                if current.slot(d.app).key_id == key_id {
                    key_id = key_id.bumped();
                }
            }
            Slot { key_id, key: d.key }
        });

        let info = GenerationInfo {
            generation,
            pana_session_id: facts.pana_session_id,
            pana_key_id: facts.pana_key_id,
            key_ids: [
                (Application::C1222Data, c1222_data.key_id),
                (Application::DemandResponse, demand_response.key_id),
                (Application::LinkLayer, link_layer.key_id),
            ],
            created_at: now,
            expires_at,
        };
        let new = Generation {
            info: info.clone(),
            c1222_data,
            demand_response,
            link_layer,
        };

        if let Some(old) = self.previous.take() {
            self.events.push_back(KeyEvent::Expired {
                generation: old.generation.info.generation,
                cause: ExpiryCause::Superseded,
            });
            // `old` is dropped here: its keys are zeroized.
        }
        self.events.push_back(KeyEvent::Installed {
            generation,
            key_ids: info.key_ids,
            expires_at,
        });
        if let Some(outgoing) = self.current.replace(new) {
            let grace_end = now
                .checked_add(self.config.grace)
                .unwrap_or(outgoing.info.expires_at);
            let accepted_until = grace_end.min(outgoing.info.expires_at);
            self.events.push_back(KeyEvent::Rolled {
                from_generation: outgoing.info.generation,
                to_generation: generation,
                previous_accepted_until: accepted_until,
            });
            self.previous = Some(Retired {
                generation: outgoing,
                accepted_until,
            });
        }
        Ok(info)
    }

    /// The key to protect an outgoing message of `app` with: always the current generation.
    ///
    /// # Errors
    /// [`Error::NoCurrentKey`] when there is no unexpired current generation.
    pub fn sending_key(&self, app: Application, now: Instant) -> Result<KeyRef<'_>, Error> {
        match &self.current {
            Some(g) if now < g.info.expires_at => Ok(g.key_ref(app, g.info.expires_at)),
            _ => Err(Error::NoCurrentKey(app)),
        }
    }

    /// The key to verify/decrypt an incoming message of `app` that names `key_id`: the
    /// current generation, or the previous one within its grace.
    ///
    /// # Errors
    /// [`Error::UnknownKeyId`] when no live key of `app` has that id: refuse the message.
    pub fn receiving_key(
        &self,
        app: Application,
        key_id: KeyId,
        now: Instant,
    ) -> Result<KeyRef<'_>, Error> {
        if let Some(g) = &self.current {
            if now < g.info.expires_at && g.slot(app).key_id == key_id {
                return Ok(g.key_ref(app, g.info.expires_at));
            }
        }
        if let Some(r) = &self.previous {
            if now < r.accepted_until && r.generation.slot(app).key_id == key_id {
                return Ok(r.generation.key_ref(app, r.accepted_until));
            }
        }
        Err(Error::UnknownKeyId { app, key_id })
    }

    /// Destroys (zeroizes) every generation whose time is over at `now` and queues an
    /// [`KeyEvent::Expired`] for each. Safe to call at any time, as often as wanted.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self
            .previous
            .as_ref()
            .is_some_and(|r| now >= r.accepted_until)
        {
            if let Some(old) = self.previous.take() {
                self.events.push_back(KeyEvent::Expired {
                    generation: old.generation.info.generation,
                    cause: ExpiryCause::GraceEnded,
                });
            }
        }
        if self
            .current
            .as_ref()
            .is_some_and(|g| now >= g.info.expires_at)
        {
            if let Some(old) = self.current.take() {
                self.events.push_back(KeyEvent::Expired {
                    generation: old.info.generation,
                    cause: ExpiryCause::LifetimeEnded,
                });
            }
        }
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) has work, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let current = self.current.as_ref().map(|g| g.info.expires_at);
        let previous = self.previous.as_ref().map(|r| r.accepted_until);
        match (current, previous) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next queued event, oldest first.
    pub fn poll_event(&mut self) -> Option<KeyEvent> {
        self.events.pop_front()
    }

    /// Destroys (zeroizes) all generations at once and queues [`KeyEvent::Revoked`].
    /// Generations already over at `now` are reported as [`KeyEvent::Expired`] first.
    /// Returns whether any live generation was revoked.
    pub fn revoke(&mut self, now: Instant) -> bool {
        self.handle_timeout(now);
        let mut generations = Vec::new();
        if let Some(r) = self.previous.take() {
            generations.push(r.generation.info.generation);
        }
        if let Some(g) = self.current.take() {
            generations.push(g.info.generation);
        }
        let any = !generations.is_empty();
        self.events.push_back(KeyEvent::Revoked { generations });
        any
    }

    /// Whether the ring holds no generation (live or not yet destroyed).
    pub fn is_empty(&self) -> bool {
        self.current.is_none() && self.previous.is_none()
    }

    /// The current generation's public facts, if one is held (it may be past its expiry if
    /// `handle_timeout` has not run yet).
    pub fn current(&self) -> Option<&GenerationInfo> {
        self.current.as_ref().map(|g| &g.info)
    }

    /// The previous generation's public facts and the end of its receive grace, if held.
    pub fn previous(&self) -> Option<(&GenerationInfo, Instant)> {
        self.previous
            .as_ref()
            .map(|r| (&r.generation.info, r.accepted_until))
    }

    /// The configuration of this ring.
    pub fn config(&self) -> &KeyConfig {
        &self.config
    }
}

/// An event of one meter's key ring in a [`KeyStore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterKeyEvent<M> {
    /// The meter the event is about.
    pub meter: M,
    /// What happened.
    pub event: KeyEvent,
}

struct Entry {
    ring: KeyRing,
    scheduled: Option<Instant>,
}

/// The key rings of many meters, with one timer queue over all of them.
///
/// `M` is whatever names a meter for the caller (its C12.22 ApTitle, its EAP identity, a
/// database id); it must be `Ord + Clone`. A meter's ring is created by its first
/// [`install_generation`](Self::install_generation) and dropped when its last generation is
/// destroyed or revoked.
pub struct KeyStore<M> {
    config: KeyConfig,
    rings: BTreeMap<M, Entry>,
    deadlines: BTreeSet<(Instant, M)>,
    events: VecDeque<MeterKeyEvent<M>>,
}

impl<M: Ord + Clone> Default for KeyStore<M> {
    fn default() -> Self {
        Self::new(KeyConfig::default())
    }
}

impl<M: Ord + Clone + fmt::Debug> fmt::Debug for KeyStore<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("config", &self.config)
            .field("meters", &self.rings.len())
            .field("next_deadline", &self.poll_timeout())
            .finish_non_exhaustive()
    }
}

impl<M: Ord + Clone> KeyStore<M> {
    /// An empty store.
    pub fn new(config: KeyConfig) -> Self {
        Self {
            config,
            rings: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            events: VecDeque::new(),
        }
    }

    /// The configuration shared by all rings.
    pub fn config(&self) -> &KeyConfig {
        &self.config
    }

    /// See [`KeyRing::install_generation`]; creates the meter's ring if needed.
    ///
    /// # Errors
    /// As [`KeyRing::install_generation`]; the store is unchanged on error.
    pub fn install_generation(
        &mut self,
        meter: M,
        facts: &SessionFacts,
        emsk: &[u8],
        lifetime: Duration,
        now: Instant,
    ) -> Result<GenerationInfo, Error> {
        let config = self.config;
        let entry = self.rings.entry(meter.clone()).or_insert_with(|| Entry {
            ring: KeyRing::new(config),
            scheduled: None,
        });
        let result = entry.ring.install_generation(facts, emsk, lifetime, now);
        self.settle(&meter);
        result
    }

    /// See [`KeyRing::sending_key`].
    ///
    /// # Errors
    /// [`Error::UnknownMeter`], or as [`KeyRing::sending_key`].
    pub fn sending_key(
        &self,
        meter: &M,
        app: Application,
        now: Instant,
    ) -> Result<KeyRef<'_>, Error> {
        self.ring(meter)
            .ok_or(Error::UnknownMeter)?
            .sending_key(app, now)
    }

    /// See [`KeyRing::receiving_key`].
    ///
    /// # Errors
    /// [`Error::UnknownMeter`], or as [`KeyRing::receiving_key`].
    pub fn receiving_key(
        &self,
        meter: &M,
        app: Application,
        key_id: KeyId,
        now: Instant,
    ) -> Result<KeyRef<'_>, Error> {
        self.ring(meter)
            .ok_or(Error::UnknownMeter)?
            .receiving_key(app, key_id, now)
    }

    /// Destroys all keys of `meter` at once (see [`KeyRing::revoke`]) and forgets the meter.
    /// Returns whether the meter had live keys.
    pub fn revoke(&mut self, meter: &M, now: Instant) -> bool {
        let Some(entry) = self.rings.get_mut(meter) else {
            return false;
        };
        let revoked = entry.ring.revoke(now);
        self.settle(meter);
        revoked
    }

    /// Destroys (zeroizes) every generation whose time is over at `now`, in all rings, and
    /// queues the events. Safe to call at any time, as often as wanted.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((deadline, meter)) = self.deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            if let Some(entry) = self.rings.get_mut(&meter) {
                entry.ring.handle_timeout(now);
                // Forget the popped entry so `settle` does not try to remove it again.
                if entry.scheduled == Some(deadline) {
                    entry.scheduled = None;
                }
            }
            self.deadlines.remove(&(deadline, meter.clone()));
            self.settle(&meter);
        }
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// The next queued event, oldest first.
    pub fn poll_event(&mut self) -> Option<MeterKeyEvent<M>> {
        self.events.pop_front()
    }

    /// The ring of `meter`, if it has one.
    pub fn ring(&self, meter: &M) -> Option<&KeyRing> {
        self.rings.get(meter).map(|e| &e.ring)
    }

    /// Whether `meter` has a ring.
    pub fn contains(&self, meter: &M) -> bool {
        self.rings.contains_key(meter)
    }

    /// Number of meters with a ring.
    pub fn len(&self) -> usize {
        self.rings.len()
    }

    /// Whether no meter has a ring.
    pub fn is_empty(&self) -> bool {
        self.rings.is_empty()
    }

    /// After a ring changed: move its events to the store queue, re-arm its deadline, and
    /// drop it if it became empty.
    fn settle(&mut self, meter: &M) {
        let Some(entry) = self.rings.get_mut(meter) else {
            return;
        };
        while let Some(event) = entry.ring.poll_event() {
            self.events.push_back(MeterKeyEvent {
                meter: meter.clone(),
                event,
            });
        }
        let next = entry.ring.poll_timeout();
        if entry.scheduled != next {
            if let Some(old) = entry.scheduled.take() {
                self.deadlines.remove(&(old, meter.clone()));
            }
            if let Some(new) = next {
                self.deadlines.insert((new, meter.clone()));
            }
            entry.scheduled = next;
        }
        if entry.ring.is_empty() {
            if let Some(old) = entry.scheduled.take() {
                self.deadlines.remove(&(old, meter.clone()));
            }
            self.rings.remove(meter);
        }
    }
}
