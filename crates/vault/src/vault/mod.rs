//! The vault: a scheme, its stores, their outboxes, and the operations on them.

pub mod combine;
mod ingest;
pub(crate) mod journal;
mod maintenance;
mod query;

pub use ingest::{IngestReceipt, Reading};
pub use maintenance::{CheckReport, RepairReport, StoreState, StoreStatus};
pub use query::{Bill, BillLine, Caller, Integrity, MeterReadings, RegionTotal, RegionTotals};

use std::fmt;
use std::path::PathBuf;

use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore, SeedableRng};

use crate::error::{Result, VaultError};
use crate::scheme::{SchemeSpec, ShareScheme};
use crate::store::{PostgresStore, ShareStore, SqliteStore, StoreError, StoreLayout, StoreMeta};

/// Where one store lives. Each store has its own location and credentials, as if run by a
/// different operator.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// A SQLite database file.
    Sqlite {
        /// The database file (created if missing).
        path: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres {
        /// libpq-style connection string, e.g.
        /// `host=db1.example port=5432 user=vault1 password=… dbname=vault`.
        conninfo: String,
    },
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreConfig::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
            // The connection string may hold a password: never print it.
            StoreConfig::Postgres { .. } => f
                .debug_struct("Postgres")
                .field("conninfo", &"<hidden>")
                .finish(),
        }
    }
}

impl StoreConfig {
    fn open(&self, layout: StoreLayout) -> Result<Box<dyn ShareStore>, StoreError> {
        Ok(match self {
            StoreConfig::Sqlite { path } => Box::new(SqliteStore::open(path, layout)?),
            StoreConfig::Postgres { conninfo } => {
                Box::new(PostgresStore::connect(conninfo, layout)?)
            }
        })
    }

    fn describe(&self) -> String {
        match self {
            StoreConfig::Sqlite { path } => format!("sqlite:{}", path.display()),
            StoreConfig::Postgres { .. } => "postgres (connection string hidden)".into(),
        }
    }
}

/// Vault configuration.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VaultConfig {
    /// The sharing scheme; its number of stores must match `stores`.
    pub scheme: SchemeSpec,
    /// One entry per store, in a fixed order (the order is part of the vault's identity).
    pub stores: Vec<StoreConfig>,
    /// Folder for the per-store outboxes (shares waiting for a store that is down). Each
    /// outbox holds only its own store's shares.
    pub outbox_dir: PathBuf,
    /// Smallest number of households a regional total may cover, unless the caller holds the
    /// household-data permission. Default 5.
    pub min_group_size: u64,
}

impl VaultConfig {
    /// A configuration with the default minimum group size.
    pub fn new(
        scheme: SchemeSpec,
        stores: Vec<StoreConfig>,
        outbox_dir: impl Into<PathBuf>,
    ) -> Self {
        VaultConfig {
            scheme,
            stores,
            outbox_dir: outbox_dir.into(),
            min_group_size: 5,
        }
    }

    /// Sets the minimum group size.
    pub fn with_min_group_size(mut self, n: u64) -> Self {
        self.min_group_size = n;
        self
    }
}

/// Health of one store slot.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Health {
    /// Open and holding this vault's data.
    Healthy,
    /// Open but empty while the other stores hold data: needs `repair`.
    Lost,
    /// Could not be reached; writes go to its outbox.
    Down(String),
}

struct Slot {
    index: usize,
    config: Option<StoreConfig>,
    location: String,
    store: Option<Box<dyn ShareStore>>,
    health: Health,
    outbox: SqliteStore,
    /// The outbox holds something not yet delivered.
    pending: bool,
}

impl Slot {
    /// Usable for reads and direct writes: healthy and caught up.
    fn ready(&self) -> bool {
        self.health == Health::Healthy && !self.pending && self.store.is_some()
    }

    fn store_err(&self, source: StoreError) -> VaultError {
        VaultError::Store {
            store: self.index,
            location: self.location.clone(),
            source,
        }
    }

    fn mark_down(&mut self, e: &StoreError) {
        tracing::warn!(store = self.index, location = %self.location, error = %e, "store unavailable");
        self.health = Health::Down(e.to_string());
    }
}

enum RngSource {
    Os,
    Seeded(Box<ChaCha20Rng>),
}

/// Household readings kept as secret shares in independent stores.
pub struct Vault {
    scheme: Box<dyn ShareScheme>,
    layout: StoreLayout,
    slots: Vec<Slot>,
    vault_id: Option<[u8; 16]>,
    min_group_size: u64,
    rng: RngSource,
    journal: journal::IngestJournal,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("scheme", &self.scheme.spec())
            .field(
                "stores",
                &self
                    .slots
                    .iter()
                    .map(|s| (&s.location, &s.health))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Vault {
    /// Opens the vault: connects to every store it can, creates the schema and metadata of a
    /// new vault, recognises stores that are down (writes go to their outbox) or lost (empty
    /// while the others hold data: see [`Vault::repair`]), and finishes any refresh that was
    /// interrupted. Randomness comes from the operating system's CSPRNG.
    pub fn open(config: VaultConfig) -> Result<Vault> {
        Self::open_with(config, RngSource::Os)
    }

    /// Like [`Vault::open`], but every random value is drawn from a ChaCha20 stream seeded
    /// with `seed`. Only for tests that need reproducible shares: anyone who knows the seed
    /// can recompute every share. Production code uses [`Vault::open`].
    pub fn open_seeded(config: VaultConfig, seed: u64) -> Result<Vault> {
        Self::open_with(
            config,
            RngSource::Seeded(Box::new(ChaCha20Rng::seed_from_u64(seed))),
        )
    }

    /// Opens a vault over stores the caller built (for example a store implementation of its
    /// own). Stores that fail later cannot be reconnected by the vault.
    pub fn with_stores(
        scheme: SchemeSpec,
        stores: Vec<Box<dyn ShareStore>>,
        outbox_dir: impl Into<PathBuf>,
        min_group_size: u64,
    ) -> Result<Vault> {
        let opened = stores.into_iter().map(|s| (None, Ok(s))).collect();
        Self::assemble(
            scheme,
            opened,
            outbox_dir.into(),
            min_group_size,
            RngSource::Os,
        )
    }

    fn open_with(config: VaultConfig, rng: RngSource) -> Result<Vault> {
        let spec = config.scheme;
        let scheme = spec.build()?;
        let layout = StoreLayout {
            columns: scheme.columns(),
            modulus: scheme.modulus(),
        };
        let opened = config
            .stores
            .iter()
            .map(|c| (Some(c.clone()), c.open(layout)))
            .collect();
        Self::assemble(spec, opened, config.outbox_dir, config.min_group_size, rng)
    }

    #[allow(clippy::type_complexity)]
    fn assemble(
        spec: SchemeSpec,
        opened: Vec<(Option<StoreConfig>, Result<Box<dyn ShareStore>, StoreError>)>,
        outbox_dir: PathBuf,
        min_group_size: u64,
        rng: RngSource,
    ) -> Result<Vault> {
        let scheme = spec.build()?;
        if opened.len() != scheme.stores() {
            return Err(VaultError::Config(format!(
                "scheme {spec} needs {} stores, {} configured",
                scheme.stores(),
                opened.len()
            )));
        }
        let layout = StoreLayout {
            columns: scheme.columns(),
            modulus: scheme.modulus(),
        };
        std::fs::create_dir_all(&outbox_dir)?;
        let journal = journal::IngestJournal::open(&outbox_dir);
        let mut slots = Vec::with_capacity(opened.len());
        for (index, (config, store)) in opened.into_iter().enumerate() {
            let outbox = SqliteStore::open(
                &outbox_dir.join(format!("outbox-store-{index}.sqlite")),
                layout,
            )
            .map_err(|source| VaultError::Outbox {
                store: index,
                source,
            })?;
            let location = match (&store, &config) {
                (Ok(s), _) => s.location(),
                (Err(_), Some(c)) => c.describe(),
                (Err(_), None) => format!("store {index}"),
            };
            let (store, health) = match store {
                Ok(s) => {
                    if s.layout() != layout {
                        return Err(VaultError::StoreMismatch {
                            store: index,
                            reason: "store layout does not match the scheme".into(),
                        });
                    }
                    (Some(s), Health::Healthy)
                }
                Err(e) => {
                    tracing::warn!(store = index, %location, error = %e, "store unavailable at open");
                    (None, Health::Down(e.to_string()))
                }
            };
            let mut slot = Slot {
                index,
                config,
                location,
                store,
                health,
                outbox,
                pending: false,
            };
            slot.pending = outbox_pending(&mut slot)?;
            slots.push(slot);
        }
        let mut vault = Vault {
            scheme,
            layout,
            slots,
            vault_id: None,
            min_group_size,
            rng,
            journal,
        };
        vault.identify()?;
        vault.ensure_available()?;
        Ok(vault)
    }

    /// Reads every open store's metadata, checks it belongs to this vault, initialises a new
    /// vault, and marks empty stores of an existing vault as lost.
    fn identify(&mut self) -> Result<()> {
        let spec = self.scheme.spec();
        let mut metas = Vec::new();
        for slot in &mut self.slots {
            let Some(store) = slot.store.as_mut() else {
                metas.push(None);
                continue;
            };
            let meta = store.meta().map_err(|e| VaultError::Store {
                store: slot.index,
                location: slot.location.clone(),
                source: e,
            })?;
            if let Some(m) = &meta {
                if m.store_index != slot.index {
                    return Err(VaultError::StoreMismatch {
                        store: slot.index,
                        reason: format!("store says it is store {}", m.store_index),
                    });
                }
                if m.scheme != spec {
                    return Err(VaultError::StoreMismatch {
                        store: slot.index,
                        reason: format!("store holds scheme {}, vault uses {spec}", m.scheme),
                    });
                }
            }
            metas.push(meta);
        }
        let ids: Vec<[u8; 16]> = metas.iter().flatten().map(|m| m.vault_id).collect();
        if let Some(first) = ids.first() {
            if let Some(pos) = metas
                .iter()
                .position(|m| m.as_ref().is_some_and(|m| m.vault_id != *first))
            {
                return Err(VaultError::StoreMismatch {
                    store: pos,
                    reason: "store belongs to another vault".into(),
                });
            }
            self.vault_id = Some(*first);
            for (slot, meta) in self.slots.iter_mut().zip(&metas) {
                if slot.store.is_some() && meta.is_none() {
                    tracing::warn!(store = slot.index, location = %slot.location, "store is empty: lost, needs repair");
                    slot.health = Health::Lost;
                }
            }
        } else {
            let mut id = [0u8; 16];
            OsRng.fill_bytes(&mut id);
            self.vault_id = Some(id);
            for index in 0..self.slots.len() {
                self.init_meta(index)?;
            }
        }
        Ok(())
    }

    fn init_meta(&mut self, index: usize) -> Result<()> {
        let Some(vault_id) = self.vault_id else {
            return Ok(());
        };
        let meta = StoreMeta {
            vault_id,
            store_index: index,
            scheme: self.scheme.spec(),
        };
        let slot = self
            .slots
            .get_mut(index)
            .ok_or(VaultError::NoSuchStore(index))?;
        if let Some(store) = slot.store.as_mut() {
            if let Err(e) = store.set_meta(&meta) {
                return Err(slot.store_err(e));
            }
        }
        Ok(())
    }

    /// Reconnects stores that were down, recognises lost ones, delivers pending outboxes and
    /// finishes interrupted refreshes. Called before every operation; cheap when all is well.
    pub fn ensure_available(&mut self) -> Result<()> {
        let layout = self.layout;
        let vault_id = self.vault_id;
        for slot in &mut self.slots {
            if matches!(slot.health, Health::Down(_)) {
                // A store that failed is reconnected from scratch when the vault knows how.
                if slot.config.is_some() {
                    slot.store = None;
                }
                if slot.store.is_none() {
                    if let Some(cfg) = &slot.config {
                        match cfg.open(layout) {
                            Ok(s) => slot.store = Some(s),
                            Err(e) => {
                                slot.health = Health::Down(e.to_string());
                                continue;
                            }
                        }
                    }
                }
                let Some(store) = slot.store.as_mut() else {
                    continue;
                };
                match store.meta() {
                    Ok(Some(m)) if Some(m.vault_id) == vault_id && m.store_index == slot.index => {
                        tracing::info!(store = slot.index, "store reachable again");
                        slot.health = Health::Healthy;
                    }
                    Ok(Some(_)) => {
                        return Err(VaultError::StoreMismatch {
                            store: slot.index,
                            reason: "store came back with another vault's metadata".into(),
                        })
                    }
                    Ok(None) => slot.health = Health::Lost,
                    Err(e) => {
                        slot.health = Health::Down(e.to_string());
                        // Drop a connection that failed so the next attempt reconnects.
                        if slot.config.is_some() {
                            slot.store = None;
                        }
                    }
                }
            }
            if slot.health == Health::Healthy && slot.pending {
                deliver_outbox(slot);
            }
        }
        if self.journal.pending() {
            self.reconcile_journal()?;
        }
        self.resume_refreshes()
    }

    /// The vault's scheme.
    pub fn scheme(&self) -> SchemeSpec {
        self.scheme.spec()
    }

    /// Number of stores.
    pub fn store_count(&self) -> usize {
        self.slots.len()
    }

    /// A fresh ChaCha20 stream for one operation, seeded from the OS CSPRNG (or from the test
    /// seed).
    fn fresh_rng(&mut self) -> ChaCha20Rng {
        match &mut self.rng {
            RngSource::Os => ChaCha20Rng::from_rng(OsRng).unwrap_or_else(|_| {
                // OsRng failing is not recoverable in any meaningful way; fall back to
                // reading the same source through another call.
                let mut seed = [0u8; 32];
                OsRng.fill_bytes(&mut seed);
                ChaCha20Rng::from_seed(seed)
            }),
            RngSource::Seeded(r) => {
                let mut seed = [0u8; 32];
                r.fill_bytes(&mut seed);
                ChaCha20Rng::from_seed(seed)
            }
        }
    }

    /// Indices of stores usable right now (healthy and caught up).
    fn ready(&self) -> Vec<usize> {
        self.slots
            .iter()
            .filter(|s| s.ready())
            .map(|s| s.index)
            .collect()
    }
}

fn outbox_pending(slot: &mut Slot) -> Result<bool> {
    let map = |source| VaultError::Outbox {
        store: slot.index,
        source,
    };
    let rows = slot.outbox.count().map_err(map)?;
    let regions = slot.outbox.regions().map_err(map)?;
    let tiers = slot.outbox.tiers().map_err(map)?;
    Ok(rows > 0 || !regions.is_empty() || !tiers.is_empty())
}

/// Delivers a healthy store's outbox; on failure the store is marked down.
fn deliver_outbox(slot: &mut Slot) {
    let Some(store) = slot.store.as_mut() else {
        return;
    };
    let result = (|| -> Result<(), StoreError> {
        let regions = slot.outbox.regions()?;
        let tiers = slot.outbox.tiers()?;
        let rows = slot.outbox.read_shares(crate::time::TimeRange::ALL)?;
        if !regions.is_empty() {
            store.put_regions(&regions)?;
        }
        if !tiers.is_empty() {
            store.put_tiers(&tiers)?;
        }
        for chunk in rows.chunks(50_000) {
            store.put_shares(chunk)?;
        }
        tracing::info!(store = slot.index, rows = rows.len(), "outbox delivered");
        slot.outbox.clear()
    })();
    match result {
        Ok(()) => slot.pending = false,
        Err(e) => slot.mark_down(&e),
    }
}

/// Runs `f` on the listed slots' stores in parallel, one thread per store.
fn parallel<T: Send>(
    slots: &mut [Slot],
    which: &[usize],
    f: impl Fn(usize, &mut dyn ShareStore) -> Result<T, StoreError> + Sync,
) -> Vec<(usize, Result<T, StoreError>)> {
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = slots
            .iter_mut()
            .filter(|s| which.contains(&s.index))
            .filter_map(|s| {
                let index = s.index;
                let store = s.store.as_mut()?;
                Some((index, scope.spawn(move || f(index, store.as_mut()))))
            })
            .collect();
        handles
            .into_iter()
            .map(|(i, h)| {
                let r = h.join().unwrap_or_else(|_| {
                    Err(StoreError::Config("store worker thread panicked".into()))
                });
                (i, r)
            })
            .collect()
    })
}
