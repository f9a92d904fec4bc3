//! Key material exported by a successful method: MSK, EMSK and the EAP Session-Id (RFC 5247).

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of the MSK and of the EMSK in bytes.
pub const MSK_LEN: usize = 64;

/// The keys a method exports on success. Zeroized on drop; `Debug` prints no key bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKeys {
    msk: [u8; MSK_LEN],
    emsk: [u8; MSK_LEN],
    session_id: Vec<u8>,
}

impl SessionKeys {
    /// Bundles exported keys.
    pub fn new(msk: [u8; MSK_LEN], emsk: [u8; MSK_LEN], session_id: Vec<u8>) -> Self {
        SessionKeys {
            msk,
            emsk,
            session_id,
        }
    }

    /// The Master Session Key, handed to the lower layer (PANA's AUTH key, RADIUS MS-MPPE keys).
    pub fn msk(&self) -> &[u8; MSK_LEN] {
        &self.msk
    }

    /// The Extended Master Session Key, root of usage-specific keys (RFC 5295).
    pub fn emsk(&self) -> &[u8; MSK_LEN] {
        &self.emsk
    }

    /// The EAP Session-Id (method type followed by method-specific data).
    pub fn session_id(&self) -> &[u8] {
        &self.session_id
    }

    /// A zeroizing copy of the MSK.
    pub fn msk_copy(&self) -> Zeroizing<[u8; MSK_LEN]> {
        Zeroizing::new(self.msk)
    }

    /// Constant-time comparison of the MSK with another value (for interop checks).
    pub fn msk_eq(&self, other: &[u8]) -> bool {
        self.msk.as_slice().ct_eq(other).into()
    }
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("session_id_len", &self.session_id.len())
            .finish_non_exhaustive()
    }
}
