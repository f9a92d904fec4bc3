//! Store metadata: which vault a store belongs to, its position, and the scheme, kept as a
//! small `key=value` text so that a store opened with the wrong configuration is refused.

use std::fmt;

use crate::scheme::SchemeSpec;

/// Identity of a store within a vault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreMeta {
    /// Random id shared by all stores of one vault (16 bytes).
    pub vault_id: [u8; 16],
    /// This store's position (0-based) in the vault's store list.
    pub store_index: usize,
    /// The sharing scheme.
    pub scheme: SchemeSpec,
}

/// Metadata text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid store metadata at line {line}: {reason}")]
pub struct ParseMetaError {
    /// 1-based line number (0 when a key is missing altogether).
    pub line: usize,
    /// What was wrong.
    pub reason: &'static str,
}

const FORMAT: &str = "gridguard-vault-store-1";

impl fmt::Display for StoreMeta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "format={FORMAT}")?;
        write!(f, "vault_id=")?;
        for b in self.vault_id {
            write!(f, "{b:02x}")?;
        }
        writeln!(f)?;
        writeln!(f, "store_index={}", self.store_index)?;
        writeln!(f, "scheme={}", self.scheme)
    }
}

fn hex_nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl StoreMeta {
    /// Parses the text written by `Display`. Unknown keys are an error; every key is required
    /// exactly once.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseMetaError> {
        let err = |line, reason| ParseMetaError { line, reason };
        let text = std::str::from_utf8(bytes).map_err(|_| err(0, "not UTF-8"))?;
        let (mut format, mut vault_id, mut index, mut scheme) = (None, None, None, None);
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            if line.is_empty() {
                continue;
            }
            let (key, value) = line.split_once('=').ok_or(err(n, "expected key=value"))?;
            let slot_taken = |s: bool| {
                if s {
                    Err(err(n, "duplicate key"))
                } else {
                    Ok(())
                }
            };
            match key {
                "format" => {
                    slot_taken(format.is_some())?;
                    if value != FORMAT {
                        return Err(err(n, "unknown format"));
                    }
                    format = Some(());
                }
                "vault_id" => {
                    slot_taken(vault_id.is_some())?;
                    let raw = value.as_bytes();
                    if raw.len() != 32 {
                        return Err(err(n, "vault_id must be 32 hex digits"));
                    }
                    let mut id = [0u8; 16];
                    for (out, pair) in id.iter_mut().zip(raw.chunks_exact(2)) {
                        let (hi, lo) = match pair {
                            [h, l] => (hex_nibble(*h), hex_nibble(*l)),
                            _ => (None, None),
                        };
                        *out = (hi.ok_or(err(n, "bad hex"))? << 4) | lo.ok_or(err(n, "bad hex"))?;
                    }
                    vault_id = Some(id);
                }
                "store_index" => {
                    slot_taken(index.is_some())?;
                    if value.is_empty()
                        || value.len() > 3
                        || !value.bytes().all(|b| b.is_ascii_digit())
                    {
                        return Err(err(n, "store_index must be a small number"));
                    }
                    index = Some(
                        value
                            .parse::<usize>()
                            .map_err(|_| err(n, "bad store_index"))?,
                    );
                }
                "scheme" => {
                    slot_taken(scheme.is_some())?;
                    scheme = Some(
                        value
                            .parse::<SchemeSpec>()
                            .map_err(|_| err(n, "unknown scheme"))?,
                    );
                }
                _ => return Err(err(n, "unknown key")),
            }
        }
        format.ok_or(err(0, "format missing"))?;
        Ok(StoreMeta {
            vault_id: vault_id.ok_or(err(0, "vault_id missing"))?,
            store_index: index.ok_or(err(0, "store_index missing"))?,
            scheme: scheme.ok_or(err(0, "scheme missing"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> StoreMeta {
        StoreMeta {
            vault_id: *b"0123456789abcdef",
            store_index: 2,
            scheme: SchemeSpec::Shamir { t: 3, n: 5 },
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(StoreMeta::parse(m.to_string().as_bytes()).unwrap(), m);
    }

    #[test]
    fn rejects_missing_and_duplicate_keys() {
        let text = sample().to_string();
        let without_scheme: String = text
            .lines()
            .filter(|l| !l.starts_with("scheme"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(StoreMeta::parse(without_scheme.as_bytes()).is_err());
        let doubled = format!("{text}store_index=1\n");
        assert!(StoreMeta::parse(doubled.as_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = StoreMeta::parse(&bytes);
        }

        #[test]
        fn mutated_meta_never_panics(pos in any::<usize>(), byte: u8) {
            let mut bytes = sample().to_string().into_bytes();
            let i = pos % bytes.len();
            bytes[i] = byte;
            if let Ok(m) = StoreMeta::parse(&bytes) {
                prop_assert_eq!(StoreMeta::parse(m.to_string().as_bytes()).unwrap(), m);
            }
        }
    }
}
