//! The data directory a head-end (and the demo) leaves behind, and that the query commands
//! (`readings`, `events`, `bill`, `totals`, `vault …`) open.
//!
//! ```text
//! DIR/
//!   vault/store-1.sqlite   one SQLite file per share store (2-of-3 replicated sharing):
//!   vault/store-2.sqlite   each holds only uniformly random share columns, never a reading
//!   vault/store-3.sqlite
//!   vault/outbox/          shares waiting for a store that was down (one outbox per store)
//!   headend/events.sqlite  the head-end's event log (sessions, registrations, gaps, commands);
//!                          no readings
//! ```
//!
//! In a real deployment each store would be run by a different operator on its own machine;
//! the demo puts them side by side so that one command can show the whole system.

use std::path::{Path, PathBuf};

use gridguard_vault::{SchemeSpec, StoreConfig, Vault, VaultConfig};

/// Number of share stores in the embedded layout.
pub const STORES: usize = 3;

/// A data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root` (nothing is created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directory tree.
    ///
    /// # Errors
    /// When a directory cannot be created.
    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.outbox_dir())?;
        std::fs::create_dir_all(self.headend_dir())
    }

    /// The SQLite file of share store `index` (0-based).
    pub fn store_path(&self, index: usize) -> PathBuf {
        self.root
            .join("vault")
            .join(format!("store-{}.sqlite", index + 1))
    }

    /// The folder of the per-store outboxes.
    pub fn outbox_dir(&self) -> PathBuf {
        self.root.join("vault").join("outbox")
    }

    /// The head-end's folder.
    pub fn headend_dir(&self) -> PathBuf {
        self.root.join("headend")
    }

    /// The head-end's event log.
    pub fn events_path(&self) -> PathBuf {
        self.headend_dir().join("events.sqlite")
    }

    /// The vault configuration of this directory: 2-of-3 replicated sharing over three SQLite
    /// stores.
    pub fn vault_config(&self) -> VaultConfig {
        let stores = (0..STORES)
            .map(|i| StoreConfig::Sqlite {
                path: self.store_path(i),
            })
            .collect();
        VaultConfig::new(SchemeSpec::Replicated2of3, stores, self.outbox_dir())
    }

    /// Opens (creating if needed) the vault of this directory.
    ///
    /// # Errors
    /// When the directory cannot be created or the vault cannot be opened.
    pub fn open_vault(&self) -> anyhow::Result<Vault> {
        self.create()?;
        Ok(Vault::open(self.vault_config())?)
    }
}
