//! A one-key [`KeyLookup`] that the host or meter loads just before handing a message to its
//! [`gridguard_c1222::Association`] and clears right after, so the association always sees the
//! key the key ring chose with the current `now` (the ring checks lifetimes; the association's
//! lookup has no clock).

use std::cell::RefCell;

use gridguard_c1222::{ApTitle, KeyLookup};
use gridguard_keys::{AppKey, KeyId};
use zeroize::Zeroizing;

/// Holds at most one key, by id; zeroized when replaced, cleared or dropped.
#[derive(Default)]
pub(crate) struct LiveKey {
    slot: RefCell<Option<(u8, Zeroizing<[u8; 16]>)>>,
}

impl LiveKey {
    /// Loads `key` under `key_id`.
    pub(crate) fn load(&self, key_id: KeyId, key: &AppKey) {
        *self.slot.borrow_mut() = Some((key_id.value(), Zeroizing::new(*key.as_bytes())));
    }

    /// Drops (and zeroizes) the loaded key.
    pub(crate) fn clear(&self) {
        *self.slot.borrow_mut() = None;
    }
}

impl KeyLookup for LiveKey {
    fn key(&self, _ap_title: &ApTitle, key_id: u8) -> Option<Zeroizing<[u8; 16]>> {
        match &*self.slot.borrow() {
            Some((id, key)) if *id == key_id => Some(key.clone()),
            _ => None,
        }
    }
}
