//! Where an authenticator finds a peer's pre-shared key.

use std::collections::HashMap;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 16-byte EAP-PSK pre-shared key. Zeroized on drop; `Debug` prints no key bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Psk([u8; 16]);

impl Psk {
    /// Wraps 16 key bytes.
    pub fn new(bytes: [u8; 16]) -> Self {
        Psk(bytes)
    }

    /// Parses 32 hexadecimal digits.
    pub fn from_hex(hex: &str) -> Result<Self, CredentialError> {
        let hex = hex.trim();
        if hex.len() != 32 || !hex.is_ascii() {
            return Err(CredentialError::BadPsk);
        }
        let mut out = [0u8; 16];
        for (slot, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            let s = std::str::from_utf8(pair).map_err(|_| CredentialError::BadPsk)?;
            *slot = u8::from_str_radix(s, 16).map_err(|_| CredentialError::BadPsk)?;
        }
        Ok(Psk(out))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl PartialEq for Psk {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Psk(..)")
    }
}

/// A credential file or table could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// A PSK is not 32 hexadecimal digits.
    #[error("a PSK must be 32 hexadecimal digits")]
    BadPsk,
    /// A line of a credential file is not `IDENTITY HEXPSK`.
    #[error("line {line}: expected `IDENTITY HEXPSK`")]
    BadLine {
        /// 1-based line number.
        line: usize,
    },
    /// The same identity appears twice.
    #[error("line {line}: identity listed twice")]
    Duplicate {
        /// 1-based line number.
        line: usize,
    },
}

/// Looks up the PSK of a peer identity (ID_P). Implementations may be backed by a file, a database or
/// an HSM; lookups happen once per authentication.
pub trait CredentialStore: Send + Sync {
    /// The PSK provisioned for `identity`, or `None` when the identity is unknown.
    fn psk(&self, identity: &[u8]) -> Option<Psk>;
}

/// An in-memory credential table, loadable from the text format `IDENTITY HEXPSK` (one meter a line,
/// identity in UTF-8, `#` comments and blank lines ignored).
#[derive(Default, Clone)]
pub struct MemoryCredentials {
    table: HashMap<Vec<u8>, Psk>,
}

impl MemoryCredentials {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces one identity.
    pub fn insert(&mut self, identity: impl Into<Vec<u8>>, psk: Psk) {
        self.table.insert(identity.into(), psk);
    }

    /// Number of identities.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Parses the text format. The identity is everything before the last run of white space on the
    /// line, so identities may contain inner spaces.
    pub fn parse(text: &str) -> Result<Self, CredentialError> {
        let mut creds = MemoryCredentials::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (identity, hex) = trimmed
                .rsplit_once(char::is_whitespace)
                .ok_or(CredentialError::BadLine { line })?;
            let identity = identity.trim_end();
            if identity.is_empty() {
                return Err(CredentialError::BadLine { line });
            }
            let psk = Psk::from_hex(hex).map_err(|_| CredentialError::BadLine { line })?;
            if creds
                .table
                .insert(identity.as_bytes().to_vec(), psk)
                .is_some()
            {
                return Err(CredentialError::Duplicate { line });
            }
        }
        Ok(creds)
    }
}

impl CredentialStore for MemoryCredentials {
    fn psk(&self, identity: &[u8]) -> Option<Psk> {
        self.table.get(identity).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_format() {
        let text = "# meters\nmeter1 000102030405060708090a0b0c0d0e0f\n\n  zähler 2   FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\n";
        let creds = MemoryCredentials::parse(text).unwrap();
        assert_eq!(creds.len(), 2);
        assert_eq!(creds.psk(b"meter1").unwrap().as_bytes()[15], 0x0f);
        assert_eq!(
            creds.psk("zähler 2".as_bytes()).unwrap().as_bytes(),
            &[0xff; 16]
        );
        assert!(creds.psk(b"meter3").is_none());
    }

    #[test]
    fn rejects_bad_lines() {
        assert_eq!(
            MemoryCredentials::parse("meter1").err(),
            Some(CredentialError::BadLine { line: 1 })
        );
        assert_eq!(
            MemoryCredentials::parse("a 00\n").err(),
            Some(CredentialError::BadLine { line: 1 })
        );
        let dup = "a 000102030405060708090a0b0c0d0e0f\na 000102030405060708090a0b0c0d0e0f";
        assert_eq!(
            MemoryCredentials::parse(dup).err(),
            Some(CredentialError::Duplicate { line: 2 })
        );
        assert!(Psk::from_hex("zz0102030405060708090a0b0c0d0e0f").is_err());
    }
}
