//! C12.22 security modes 0/1/2 over EAX′, and a sans-IO [`Association`] with replay protection.
//!
//! # Canonified cleartext
//! The EAX′ cleartext ("nonce") is built from the APDU header in this order, each element as its
//! full TLV unless noted (this is the order of ANSI C12.22-2008 as Wireshark's dissector and the
//! Moise–Beroset–Phinney–Burns test vectors apply it):
//!
//! `a1` application context, `a2` called AP title (required), `a4` called AP invocation id,
//! `a7` calling AE qualifier, `a8` calling AP invocation id (required), `8b` mechanism name,
//! `ac` calling authentication value, `be` user information **truncated after the EPSEM control
//! byte** (its length octets keep the full on-wire lengths, MAC included), `a6` calling AP title,
//! then the key id octet and the 4 IV octets (values only).
//!
//! Relative AP titles are expanded to absolute OIDs when a base OID is configured.
//! [`CanonicalForm::OmitAuthenticationValue`] leaves the `ac` element out (key id and IV still
//! appended): that is the layout that reproduces the IEEE Std 1703 Annex G example.
//!
//! # Modes
//! * mode 0: nothing protected, no MAC;
//! * mode 1: the EPSEM after the control byte is appended to the cleartext, the EAX′ plaintext is
//!   empty, the 4-byte MAC is appended to the EPSEM;
//! * mode 2: the EPSEM after the control byte is encrypted in place, MAC appended.
//!
//! Elements 0xa3, 0xa5 and 0xa9 are not part of the canonical cleartext; protected messages that
//! carry them are refused rather than accepted with unauthenticated fields.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::acse::{
    AcseApdu, ApTitle, AuthenticationValue, Integer, TAG_APPLICATION_CONTEXT,
    TAG_CALLED_AE_INVOCATION_ID, TAG_CALLED_AE_QUALIFIER, TAG_CALLED_AP_INVOCATION_ID,
    TAG_CALLED_AP_TITLE, TAG_CALLING_AE_INVOCATION_ID, TAG_CALLING_AE_QUALIFIER,
    TAG_CALLING_AP_INVOCATION_ID, TAG_CALLING_AP_TITLE, TAG_CALLING_AUTHENTICATION_VALUE,
    TAG_MECHANISM_NAME, TAG_USER_INFORMATION,
};
use crate::ber::{length_size, put_constructed, put_length, put_tlv};
use crate::eax_prime::{EaxPrime, Mac, MAC_LEN};
use crate::epsem::{Epsem, EpsemControl, SecurityMode};
use crate::oid::ObjectId;
use crate::Error;

/// Which canonical-cleartext layout to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CanonicalForm {
    /// ANSI C12.22-2008 as Wireshark implements it: the calling-authentication-value element is
    /// part of the cleartext. Reproduces the EAX′ paper vectors and C12Adapter messages.
    #[default]
    C1222_2008,
    /// The calling-authentication-value element is left out (key id and IV still appended):
    /// inferred from the IEEE Std 1703 Annex G example, which it reproduces. Not checked
    /// against the standard's text.
    OmitAuthenticationValue,
}

/// Options for building the canonical cleartext.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CanonOptions {
    /// Base OID against which relative AP titles are expanded (Wireshark's `c1222.baseoid`).
    pub base_oid: Option<ObjectId>,
    /// Layout.
    pub form: CanonicalForm,
}

/// Proof that an APDU's MAC verified (or that it was mode 0 and the caller accepted that).
/// Only [`open_apdu`] constructs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacVerified {
    mode: SecurityMode,
}

impl MacVerified {
    /// The security mode the message used.
    pub fn mode(self) -> SecurityMode {
        self.mode
    }
}

fn put_ap_title_canonical(
    out: &mut Vec<u8>,
    tag: u8,
    title: &ApTitle,
    base: Option<&ObjectId>,
) -> Result<(), Error> {
    put_constructed(out, tag, |inner| match (title, base) {
        (ApTitle::Absolute(_), _) | (_, None) => title.emit(inner),
        (_, Some(b)) => {
            let abs = title
                .to_absolute(Some(b))
                .ok_or(Error::MissingElement("base OID"))?;
            put_tlv(inner, 0x06, abs.as_bytes())
        }
    })
}

/// Builds the canonified cleartext of `apdu` for an EPSEM whose on-wire length (control byte,
/// body and MAC) is `epsem_wire_len`. Mode 1's appended EPSEM is not included.
pub fn canonical_cleartext(
    apdu: &AcseApdu,
    epsem_wire_len: usize,
    opts: &CanonOptions,
) -> Result<Vec<u8>, Error> {
    for tag in [
        TAG_CALLED_AE_QUALIFIER,
        TAG_CALLED_AE_INVOCATION_ID,
        TAG_CALLING_AE_INVOCATION_ID,
    ] {
        if apdu.has(tag) {
            return Err(Error::UncoveredElement { tag });
        }
    }
    let called = apdu
        .called_ap_title
        .as_ref()
        .ok_or(Error::MissingElement("called AP title"))?;
    if apdu.calling_ap_invocation_id.is_none() {
        return Err(Error::MissingElement("calling AP invocation id"));
    }
    let (key_id, iv) = match &apdu.calling_authentication_value {
        Some(AuthenticationValue::C1222 {
            key_id: Some(k),
            iv: Some(iv),
        }) => (*k, *iv),
        _ => return Err(Error::MissingKeyIdOrIv),
    };
    let control = *apdu
        .user_information
        .epsem
        .first()
        .ok_or(Error::MissingElement("EPSEM control byte"))?;
    let base = opts.base_oid.as_ref();

    let mut out = Vec::with_capacity(128);
    apdu.emit_element(TAG_APPLICATION_CONTEXT, &mut out)?;
    put_ap_title_canonical(&mut out, TAG_CALLED_AP_TITLE, called, base)?;
    apdu.emit_element(TAG_CALLED_AP_INVOCATION_ID, &mut out)?;
    apdu.emit_element(TAG_CALLING_AE_QUALIFIER, &mut out)?;
    apdu.emit_element(TAG_CALLING_AP_INVOCATION_ID, &mut out)?;
    apdu.emit_element(TAG_MECHANISM_NAME, &mut out)?;
    if opts.form == CanonicalForm::C1222_2008 {
        apdu.emit_element(TAG_CALLING_AUTHENTICATION_VALUE, &mut out)?;
    }

    // User information, truncated after the control byte, with full on-wire lengths.
    let direct = apdu
        .user_information
        .direct_reference
        .as_ref()
        .map(|d| {
            let mut v = Vec::new();
            put_tlv(&mut v, 0x06, d.as_bytes()).map(|_| v)
        })
        .transpose()?
        .unwrap_or_default();
    let octets_tlv_len = 1 + length_size(epsem_wire_len) + epsem_wire_len;
    let external_len = direct.len() + octets_tlv_len;
    let ui_len = 1 + length_size(external_len) + external_len;
    out.push(TAG_USER_INFORMATION);
    put_length(&mut out, ui_len)?;
    out.push(0x28);
    put_length(&mut out, external_len)?;
    out.extend_from_slice(&direct);
    out.push(0x81);
    put_length(&mut out, epsem_wire_len)?;
    out.push(control);

    if let Some(t) = &apdu.calling_ap_title {
        put_ap_title_canonical(&mut out, TAG_CALLING_AP_TITLE, t, base)?;
    }
    out.push(key_id);
    out.extend_from_slice(&iv);
    Ok(out)
}

/// Protects `apdu` in place according to the security mode in its EPSEM control byte:
/// `apdu.user_information.epsem` holds the plaintext EPSEM on entry and the on-wire EPSEM
/// (encrypted in mode 2, MAC appended in modes 1 and 2) on return. The calling-authentication
/// value must carry the key id and IV.
pub fn seal_apdu(apdu: &mut AcseApdu, cipher: &EaxPrime, opts: &CanonOptions) -> Result<(), Error> {
    let control = EpsemControl(
        *apdu
            .user_information
            .epsem
            .first()
            .ok_or(Error::MissingElement("EPSEM control byte"))?,
    );
    let mode = control.security_mode();
    if mode == SecurityMode::CLEARTEXT {
        return Ok(());
    }
    if mode != SecurityMode::CLEARTEXT_AUTH && mode != SecurityMode::CIPHERTEXT_AUTH {
        return Err(Error::UnsupportedSecurityMode(mode.0));
    }
    let wire_len = apdu.user_information.epsem.len() + MAC_LEN;
    let canon = canonical_cleartext(apdu, wire_len, opts)?;
    let epsem = &mut apdu.user_information.epsem;
    let body = epsem.get_mut(1..).unwrap_or_default();
    let mac = if mode == SecurityMode::CLEARTEXT_AUTH {
        cipher.seal_parts(&[canon.as_slice(), &*body], &mut [])?
    } else {
        cipher.seal(&canon, body)?
    };
    epsem.extend_from_slice(&mac);
    Ok(())
}

/// Verifies (and in mode 2 decrypts) `apdu` in place. On success the EPSEM holds the plaintext
/// without its MAC. On failure the APDU is unchanged. Mode 0 messages are returned as they are
/// (with a proof saying mode 0); the caller decides whether it accepts them.
pub fn open_apdu(
    apdu: &mut AcseApdu,
    cipher: &EaxPrime,
    opts: &CanonOptions,
) -> Result<MacVerified, Error> {
    let control = EpsemControl(
        *apdu
            .user_information
            .epsem
            .first()
            .ok_or(Error::MissingElement("EPSEM control byte"))?,
    );
    let mode = control.security_mode();
    if mode == SecurityMode::CLEARTEXT {
        return Ok(MacVerified { mode });
    }
    if mode != SecurityMode::CLEARTEXT_AUTH && mode != SecurityMode::CIPHERTEXT_AUTH {
        return Err(Error::UnsupportedSecurityMode(mode.0));
    }
    let wire_len = apdu.user_information.epsem.len();
    if wire_len < 1 + MAC_LEN {
        return Err(Error::MissingElement("MAC"));
    }
    let canon = canonical_cleartext(apdu, wire_len, opts)?;
    let epsem = &mut apdu.user_information.epsem;
    let mac_at = wire_len - MAC_LEN;
    let mut mac: Mac = [0u8; MAC_LEN];
    mac.copy_from_slice(epsem.get(mac_at..).unwrap_or_default());
    let body = epsem.get_mut(1..mac_at).unwrap_or_default();
    if mode == SecurityMode::CLEARTEXT_AUTH {
        cipher.open_parts(&[canon.as_slice(), &*body], &mut [], &mac)?;
    } else {
        cipher.open(&canon, body, &mac)?;
    }
    epsem.truncate(mac_at);
    Ok(MacVerified { mode })
}

/// Where the keys come from: a key ring answers with the 128-bit key for a peer's AP title and
/// key id, or `None` when it has none (or it expired).
///
/// [`Association::receive`] asks with the *calling* AP title of the incoming message (the
/// sender); [`Association::seal`] asks with the *called* AP title of the outgoing one (the
/// recipient). Plain closures `Fn(&ApTitle, u8) -> Option<Zeroizing<[u8; 16]>>` implement it.
pub trait KeyLookup {
    /// The key `key_id` shared with the node `ap_title`.
    fn key(&self, ap_title: &ApTitle, key_id: u8) -> Option<Zeroizing<[u8; 16]>>;
}

impl<F> KeyLookup for F
where
    F: Fn(&ApTitle, u8) -> Option<Zeroizing<[u8; 16]>>,
{
    fn key(&self, ap_title: &ApTitle, key_id: u8) -> Option<Zeroizing<[u8; 16]>> {
        self(ap_title, key_id)
    }
}

/// Association policy.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AssociationConfig {
    /// How long a seen (calling AP title, invocation id) pair or IV is remembered.
    pub replay_window: Duration,
    /// Upper bound on remembered entries; when full, new messages are refused until entries
    /// expire (never forgotten early, which would reopen the replay window).
    pub max_tracked: usize,
    /// Lowest security mode accepted from peers.
    pub min_security_mode: SecurityMode,
    /// Canonical-cleartext options.
    pub canon: CanonOptions,
    /// How replays are recognised.
    pub replay: ReplayCheck,
}

impl Default for AssociationConfig {
    fn default() -> Self {
        AssociationConfig {
            replay_window: Duration::from_secs(300),
            max_tracked: 100_000,
            min_security_mode: SecurityMode::CLEARTEXT_AUTH,
            canon: CanonOptions::default(),
            replay: ReplayCheck::Remember,
        }
    }
}

/// How an association recognises a replayed message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplayCheck {
    /// Every (calling AP title, invocation id) pair and IV is remembered for the replay
    /// window. Right for a host, whose many peers number their messages as they please; the
    /// memory grows with the messages received within the window.
    #[default]
    Remember,
    /// The peer's invocation ids must increase under each key: per (calling AP title, key id)
    /// the association keeps the highest id seen and a bitmap of the [`SEQUENCE_WINDOW`] ids
    /// below it (the anti-replay window of RFC 4303, section 3.4.3), so a message may arrive
    /// out of order within that window and never twice. Constant memory whatever the traffic;
    /// right for a meter, whose one peer (its host) numbers its messages in order. The windows
    /// of at most [`SEQUENCE_KEYS`] keys are kept, the least recently used dropped first (a
    /// retired key's: the key ring refuses those keys by then).
    Increasing,
}

/// Ids below the highest one seen that [`ReplayCheck::Increasing`] still accepts once each.
pub const SEQUENCE_WINDOW: u64 = 64;
/// (Calling AP title, key id) windows [`ReplayCheck::Increasing`] keeps.
pub const SEQUENCE_KEYS: usize = 8;

/// The anti-replay window of one (calling AP title, key id) under [`ReplayCheck::Increasing`].
#[derive(Debug)]
struct SequenceWindow {
    peer: ApTitle,
    key_id: u8,
    /// Highest invocation id accepted.
    highest: u64,
    /// Bit `i`: id `highest - i` was accepted.
    seen: u64,
}

impl SequenceWindow {
    fn is_replay(&self, id: u64) -> bool {
        if id > self.highest {
            return false;
        }
        let behind = self.highest - id;
        behind >= SEQUENCE_WINDOW || self.seen & (1u64 << behind) != 0
    }

    fn accept(&mut self, id: u64) {
        if id > self.highest {
            let ahead = id - self.highest;
            self.seen = if ahead >= SEQUENCE_WINDOW {
                0
            } else {
                self.seen << ahead
            };
            self.seen |= 1;
            self.highest = id;
        } else {
            self.seen |= 1u64 << (self.highest - id);
        }
    }
}

/// A verified incoming message.
#[derive(Debug, Clone)]
pub struct Received {
    /// The APDU, EPSEM decrypted and MAC removed.
    pub apdu: AcseApdu,
    /// The parsed EPSEM.
    pub epsem: Epsem,
    /// Proof of verification and the mode used.
    pub verified: MacVerified,
}

/// A remembered message, small and `Copy` so the replay check hashes a few bytes and allocates
/// nothing: the peer's number in [`Association`]'s peer table, and the calling AP invocation id
/// (content length and value, so distinct encodings stay distinct) or the IV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ReplayKey {
    Invocation { peer: u32, len: u8, value: u64 },
    Iv { peer: u32, iv: [u8; 4] },
}

/// A peer with live replay entries.
#[derive(Debug)]
struct PeerSlot {
    id: u32,
    entries: usize,
}

/// The peers that have live replay entries, numbered; a peer is forgotten when its last entry
/// expires, and its number reused.
#[derive(Debug, Default)]
struct PeerTable {
    by_title: HashMap<ApTitle, PeerSlot>,
    titles: Vec<Option<ApTitle>>,
    free: Vec<u32>,
}

impl PeerTable {
    fn id(&self, title: &ApTitle) -> Option<u32> {
        self.by_title.get(title).map(|p| p.id)
    }

    /// The number of `title`, allocating one if needed, and counts `n` new entries.
    fn add_entries(&mut self, title: &ApTitle, n: usize) -> u32 {
        if let Some(p) = self.by_title.get_mut(title) {
            p.entries += n;
            return p.id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.titles.get_mut(id as usize) {
                    *slot = Some(title.clone());
                }
                id
            }
            None => {
                let id = u32::try_from(self.titles.len()).unwrap_or(u32::MAX);
                self.titles.push(Some(title.clone()));
                id
            }
        };
        self.by_title
            .insert(title.clone(), PeerSlot { id, entries: n });
        id
    }

    /// One entry of peer `id` expired.
    fn remove_entry(&mut self, id: u32) {
        let Some(Some(title)) = self.titles.get(id as usize) else {
            return;
        };
        let gone = match self.by_title.get_mut(title) {
            Some(p) => {
                p.entries = p.entries.saturating_sub(1);
                p.entries == 0
            }
            None => false,
        };
        if gone {
            self.by_title.remove(title);
            if let Some(slot) = self.titles.get_mut(id as usize) {
                *slot = None;
            }
            self.free.push(id);
        }
    }
}

impl ReplayKey {
    fn peer(&self) -> u32 {
        match self {
            ReplayKey::Invocation { peer, .. } | ReplayKey::Iv { peer, .. } => *peer,
        }
    }

    fn invocation(peer: u32, id: &Integer) -> Self {
        // Integer content is 1..=8 octets (checked by the parser), so length and value are exact.
        let len = u8::try_from(id.as_bytes().len()).unwrap_or(u8::MAX);
        ReplayKey::Invocation {
            peer,
            len,
            value: id.value(),
        }
    }
}

/// Sans-IO C12.22 message protection for one local node: verifies, decrypts and refuses replays
/// of incoming APDUs, and protects outgoing ones. It reads no clock (`now` is passed in) and
/// owns no socket; its only timer is the expiry of replay-window entries
/// ([`poll_timeout`](Self::poll_timeout) / [`handle_timeout`](Self::handle_timeout)).
pub struct Association<K: KeyLookup> {
    config: AssociationConfig,
    keys: K,
    peers: PeerTable,
    seen: HashMap<ReplayKey, Instant>,
    expiry: VecDeque<(Instant, ReplayKey)>,
    /// Under [`ReplayCheck::Increasing`], most recently used first.
    windows: Vec<SequenceWindow>,
}

impl<K: KeyLookup> core::fmt::Debug for Association<K> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Association")
            .field("config", &self.config)
            .field("tracked", &self.seen.len())
            .finish_non_exhaustive()
    }
}

impl<K: KeyLookup> Association<K> {
    /// A new association using `keys` for key lookup.
    pub fn new(config: AssociationConfig, keys: K) -> Self {
        Association {
            config,
            keys,
            peers: PeerTable::default(),
            seen: HashMap::new(),
            expiry: VecDeque::new(),
            windows: Vec::new(),
        }
    }

    /// Drops the anti-replay windows of `key_id` kept under [`ReplayCheck::Increasing`]: call
    /// it when the id is given to new key material, whose sender may number from 1 again.
    pub fn forget_sequence(&mut self, key_id: u8) {
        self.windows.retain(|w| w.key_id != key_id);
    }

    /// The key source.
    pub fn keys(&self) -> &K {
        &self.keys
    }

    /// Number of remembered replay entries.
    pub fn tracked(&self) -> usize {
        self.seen.len()
    }

    /// When the oldest replay entry expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.expiry.front().map(|(t, _)| *t)
    }

    /// Forgets replay entries whose window has passed. Safe to call at any time.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((t, _)) = self.expiry.front() {
            if *t > now {
                break;
            }
            if let Some((t, k)) = self.expiry.pop_front() {
                if self.seen.get(&k) == Some(&t) {
                    self.seen.remove(&k);
                    self.peers.remove_entry(k.peer());
                }
            }
        }
    }

    /// Parses, verifies and decrypts one incoming APDU: [`AcseApdu::parse`] then
    /// [`receive_parsed`](Self::receive_parsed).
    pub fn receive(&mut self, now: Instant, bytes: &[u8]) -> Result<Received, Error> {
        self.handle_timeout(now);
        let apdu = AcseApdu::parse(bytes)?;
        self.receive_parsed(now, apdu)
    }

    /// Verifies and decrypts one incoming APDU that the caller already parsed (so a caller
    /// that looks at the header first does not parse twice). The key is looked up by the
    /// calling AP title and the key id; the message is refused if its security mode is below
    /// the policy, if its MAC fails, or if its (calling AP title, calling AP invocation id) or
    /// its IV was seen within the replay window. Replay state is only updated for authentic
    /// messages (mode 0 messages, when the policy admits them, are not tracked).
    pub fn receive_parsed(&mut self, now: Instant, mut apdu: AcseApdu) -> Result<Received, Error> {
        self.handle_timeout(now);
        let control = EpsemControl(
            *apdu
                .user_information
                .epsem
                .first()
                .ok_or(Error::MissingElement("EPSEM control byte"))?,
        );
        let mode = control.security_mode();
        if mode.0 > SecurityMode::CIPHERTEXT_AUTH.0 {
            return Err(Error::UnsupportedSecurityMode(mode.0));
        }
        if mode.0 < self.config.min_security_mode.0 {
            return Err(Error::SecurityBelowPolicy(mode.0));
        }
        let calling = apdu
            .calling_ap_title
            .as_ref()
            .ok_or(Error::MissingElement("calling AP title"))?;
        if apdu.calling_ap_invocation_id.is_none() {
            return Err(Error::MissingElement("calling AP invocation id"));
        }
        let (key_id, iv) = apdu.key_id_and_iv();
        if mode == SecurityMode::CLEARTEXT {
            // Unauthenticated: recording it would let anyone block a peer's invocation ids or
            // IVs, and replay protection without a MAC protects nothing.
            let epsem = Epsem::parse(&apdu.user_information.epsem)?;
            return Ok(Received {
                apdu,
                epsem,
                verified: MacVerified { mode },
            });
        }
        let key_id = key_id.ok_or(Error::MissingKeyIdOrIv)?;
        let key = self
            .keys
            .key(calling, key_id)
            .ok_or(Error::UnknownKey { key_id })?;
        let cipher = EaxPrime::new(&key);
        drop(key);
        let verified = open_apdu(&mut apdu, &cipher, &self.config.canon)?;
        let (Some(calling), Some(invocation)) =
            (&apdu.calling_ap_title, &apdu.calling_ap_invocation_id)
        else {
            return Err(Error::MissingElement("calling AP title"));
        };
        if self.config.replay == ReplayCheck::Increasing {
            let id = invocation.value();
            let at = self
                .windows
                .iter()
                .position(|w| w.key_id == key_id && &w.peer == calling);
            if at
                .and_then(|i| self.windows.get(i))
                .is_some_and(|w| w.is_replay(id))
            {
                return Err(Error::Replay);
            }
            let epsem = Epsem::parse(&apdu.user_information.epsem)?;
            let mut window = match at {
                Some(i) => self.windows.remove(i),
                None => SequenceWindow {
                    peer: calling.clone(),
                    key_id,
                    highest: 0,
                    seen: 0,
                },
            };
            window.accept(id);
            self.windows.reserve_exact(1);
            self.windows.insert(0, window);
            self.windows.truncate(SEQUENCE_KEYS);
            return Ok(Received {
                apdu,
                epsem,
                verified,
            });
        }
        let count = 1 + usize::from(iv.is_some());
        if let Some(peer) = self.peers.id(calling) {
            let replayed = self
                .seen
                .contains_key(&ReplayKey::invocation(peer, invocation))
                || iv.is_some_and(|iv| self.seen.contains_key(&ReplayKey::Iv { peer, iv }));
            if replayed {
                return Err(Error::Replay);
            }
        }
        if self.seen.len() + count > self.config.max_tracked {
            return Err(Error::ReplayWindowFull);
        }
        let epsem = Epsem::parse(&apdu.user_information.epsem)?;
        let peer = self.peers.add_entries(calling, count);
        let until = now + self.config.replay_window;
        let first = ReplayKey::invocation(peer, invocation);
        self.seen.insert(first, until);
        self.expiry.push_back((until, first));
        if let Some(iv) = iv {
            let k = ReplayKey::Iv { peer, iv };
            self.seen.insert(k, until);
            self.expiry.push_back((until, k));
        }
        Ok(Received {
            apdu,
            epsem,
            verified,
        })
    }

    /// Protects an outgoing APDU for the peer named by its called AP title: draws a fresh IV
    /// from `rng`, sets the C12.22 calling-authentication-value (`key_id`, IV), seals according
    /// to the mode in the EPSEM control byte and returns the encoded APDU.
    pub fn seal<R: RngCore + CryptoRng>(
        &mut self,
        mut apdu: AcseApdu,
        key_id: u8,
        rng: &mut R,
    ) -> Result<Vec<u8>, Error> {
        let mut iv = [0u8; 4];
        rng.fill_bytes(&mut iv);
        apdu.calling_authentication_value = Some(AuthenticationValue::C1222 {
            key_id: Some(key_id),
            iv: Some(iv),
        });
        let control = EpsemControl(
            *apdu
                .user_information
                .epsem
                .first()
                .ok_or(Error::MissingElement("EPSEM control byte"))?,
        );
        if control.security_mode() != SecurityMode::CLEARTEXT {
            let peer = apdu
                .called_ap_title
                .clone()
                .ok_or(Error::MissingElement("called AP title"))?;
            let key = self
                .keys
                .key(&peer, key_id)
                .ok_or(Error::UnknownKey { key_id })?;
            seal_apdu(&mut apdu, &EaxPrime::new(&key), &self.config.canon)?;
        }
        apdu.to_bytes()
    }
}
