//! Key types: [`Application`], [`AppKey`] and [`KeyId`].

use core::fmt;

use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::kdf::{C1222_DATA_LABEL, DEMAND_RESPONSE_LABEL, LINK_LAYER_LABEL};

/// Length of every application key in octets (128 bits, the AES-128 key of EAX′).
pub const APP_KEY_LEN: usize = 16;

/// Bits of a [`KeyId`] that come from the key derivation (the low six).
pub const KEY_ID_DERIVED_MASK: u8 = 0x3f;

/// The applications that get their own key from one authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Application {
    /// ANSI C12.22 meter data (reads, writes, interval data), protected with EAX′.
    C1222Data,
    /// Demand-response and remote-switch commands.
    DemandResponse,
    /// Link-layer protection of the device network.
    LinkLayer,
}

impl Application {
    /// All applications, in the order keys are derived and key ids assigned.
    pub const ALL: [Application; 3] = [
        Application::C1222Data,
        Application::DemandResponse,
        Application::LinkLayer,
    ];

    /// The RFC 5295 key label of this application (see [`crate::kdf`]).
    pub const fn label(self) -> &'static str {
        match self {
            Application::C1222Data => C1222_DATA_LABEL,
            Application::DemandResponse => DEMAND_RESPONSE_LABEL,
            Application::LinkLayer => LINK_LAYER_LABEL,
        }
    }

    /// Two-bit code of the application in the top bits of its [`KeyId`]s (0, 1, 2).
    pub const fn code(self) -> u8 {
        match self {
            Application::C1222Data => 0,
            Application::DemandResponse => 1,
            Application::LinkLayer => 2,
        }
    }

    /// Short lower-case name, used in logs and the key log.
    pub const fn name(self) -> &'static str {
        match self {
            Application::C1222Data => "c1222-data",
            Application::DemandResponse => "demand-response",
            Application::LinkLayer => "link-layer",
        }
    }

    /// The application whose [`code`](Self::code) is `code`, if any.
    pub const fn from_code(code: u8) -> Option<Application> {
        match code {
            0 => Some(Application::C1222Data),
            1 => Some(Application::DemandResponse),
            2 => Some(Application::LinkLayer),
            _ => None,
        }
    }
}

impl fmt::Display for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A 128-bit application key.
///
/// Zeroized on drop, compared in constant time, and deliberately without `Debug` or
/// `Display`: the bytes can only be reached through [`AppKey::as_bytes`]. The bytes live in
/// one heap allocation for the key's whole life, so moving an `AppKey` (into a ring, out of a
/// generation) leaves no stray copies behind to escape the zeroization.
#[derive(Clone)]
pub struct AppKey(Box<Zeroizing<[u8; APP_KEY_LEN]>>);

impl AppKey {
    /// Wraps raw key bytes (for keys that come from elsewhere, e.g. a test vector).
    pub fn from_bytes(bytes: [u8; APP_KEY_LEN]) -> Self {
        Self(Box::new(Zeroizing::new(bytes)))
    }

    /// A zeroed key whose bytes the crate fills in place (the derivation writes straight
    /// into the final allocation).
    pub(crate) fn zeroed() -> Self {
        Self(Box::new(Zeroizing::new([0u8; APP_KEY_LEN])))
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8; APP_KEY_LEN] {
        &mut self.0
    }

    /// The key bytes, for handing to the cipher. Never log them.
    pub fn as_bytes(&self) -> &[u8; APP_KEY_LEN] {
        &self.0
    }
}

impl ConstantTimeEq for AppKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.as_slice().ct_eq(other.0.as_slice())
    }
}

impl PartialEq for AppKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for AppKey {}

/// One-octet key identifier, as carried in the key-id element of the C12.22
/// calling-authentication-value (and as the "Key ID" of Wireshark's C12.22 decryption table).
///
/// Layout chosen by gridguard:
///
/// ```text
///  bit 7 6 | 5 4 3 2 1 0
///  app code| derived bits
/// ```
///
/// * bits 7–6: [`Application::code`], so keys of different applications of one meter never
///   share an id (code 3 is unused);
/// * bits 5–0: [`crate::kdf::derive_key_id_bits`], i.e. both ends of a session compute the same
///   id from the EMSK and the session facts without any exchange.
///
/// When the derived id of a new generation equals the id of the generation it replaces, the
/// [`crate::KeyRing`] adds one to the six derived bits (modulo 64), so the current and the
/// previous generation of an application always differ in their id and a receiver can tell
/// them apart. Both ends apply the same rule to the same previous generation, so they agree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u8);

impl KeyId {
    /// Builds the id of `app` with the given six derived bits (higher bits are dropped).
    pub const fn for_application(app: Application, derived_bits: u8) -> KeyId {
        KeyId((app.code() << 6) | (derived_bits & KEY_ID_DERIVED_MASK))
    }

    /// The octet value of the id.
    pub const fn value(self) -> u8 {
        self.0
    }

    /// The application encoded in the top two bits, if the code is assigned.
    pub const fn application(self) -> Option<Application> {
        Application::from_code(self.0 >> 6)
    }

    /// The six derived bits.
    pub const fn derived_bits(self) -> u8 {
        self.0 & KEY_ID_DERIVED_MASK
    }

    /// The next id of the same application (derived bits plus one, modulo 64).
    pub const fn bumped(self) -> KeyId {
        KeyId((self.0 & !KEY_ID_DERIVED_MASK) | (self.0.wrapping_add(1) & KEY_ID_DERIVED_MASK))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({:#04x})", self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_layout_keeps_application_and_bumps_within_six_bits() {
        for app in Application::ALL {
            for bits in 0..=u8::MAX {
                let id = KeyId::for_application(app, bits);
                assert_eq!(id.application(), Some(app));
                assert_eq!(id.derived_bits(), bits & 0x3f);
                let next = id.bumped();
                assert_eq!(next.application(), Some(app));
                assert_ne!(next, id);
                assert_eq!(next.derived_bits(), (bits.wrapping_add(1)) & 0x3f);
            }
        }
        assert_eq!(KeyId(0xc0).application(), None);
        assert_eq!(format!("{:?}", KeyId(0x4a)), "KeyId(0x4a)");
    }

    #[test]
    fn app_key_equality_is_by_value() {
        let a = AppKey::from_bytes([7; 16]);
        let b = AppKey::from_bytes([7; 16]);
        let mut other = [7; 16];
        other[15] = 8;
        let c = AppKey::from_bytes(other);
        assert!(a == b);
        assert!(a != c);
        assert!(bool::from(a.ct_eq(&b)));
        assert!(!bool::from(a.ct_eq(&c)));
        assert_eq!(a.as_bytes(), &[7; 16]);
    }

    #[test]
    fn application_codes_round_trip() {
        for app in Application::ALL {
            assert_eq!(Application::from_code(app.code()), Some(app));
            assert!(app.label().contains('@'));
        }
        assert_eq!(Application::from_code(3), None);
    }
}
