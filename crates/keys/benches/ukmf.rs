//! Cost of UKMF operations, each printed beside an anchor measured in the same run:
//!
//! * `install_generation` (3 application keys + 3 key ids = 6 RFC 5295 KDF calls, plus ring
//!   bookkeeping) against the anchor `anchor/6x_hmac_sha256`: six bare HMAC-SHA-256
//!   computations with a 64-octet key over a message of the same size as the KDF input, the
//!   floor any RFC 5295 implementation pays;
//! * `receiving_key` in a store of 100 000 meters against the anchor
//!   `anchor/btreemap_get_100k`: a plain `BTreeMap<u32, [u8; 16]>` lookup of the same size.
//!
//! Run with `cargo bench -p gridguard-keys`.
// Benchmark code: panics on setup failure are fine, criterion's macros have no docs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use gridguard_keys::{Application, KeyConfig, KeyStore, SessionFacts};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const METERS: u32 = 100_000;

fn emsk(seed: u32) -> [u8; 64] {
    let mut e = [0u8; 64];
    for (i, b) in e.iter_mut().enumerate() {
        *b = (i as u8) ^ (seed as u8) ^ ((seed >> 8) as u8);
    }
    e
}

fn derivation(c: &mut Criterion) {
    let mut group = c.benchmark_group("derive");
    let facts = SessionFacts::new(7, 1, b"meter-0042@gridguard.dev".to_vec());
    let key = emsk(1);
    let t0 = Instant::now();
    let mut store: KeyStore<u32> = KeyStore::new(KeyConfig::new());
    let mut n = 0u64;
    group.bench_function("install_generation", |b| {
        b.iter(|| {
            n += 1;
            let now = t0 + Duration::from_millis(n);
            black_box(
                store
                    .install_generation(1, &facts, &key, Duration::from_secs(3600), now)
                    .map(|i| i.generation),
            )
        })
    });
    // Same message length as one KDF call for an application key:
    // label (25) + NUL + optional data (34) + length (2) + counter (1).
    let msg = [0x5au8; 63];
    group.bench_function("anchor/6x_hmac_sha256", |b| {
        b.iter(|| {
            for _ in 0..6 {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(black_box(&key)).unwrap();
                mac.update(black_box(&msg));
                black_box(mac.finalize().into_bytes());
            }
        })
    });
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup_100k_meters");
    let t0 = Instant::now();
    let mut store: KeyStore<u32> = KeyStore::new(KeyConfig::new());
    let mut plain: BTreeMap<u32, [u8; 16]> = BTreeMap::new();
    let mut ids = Vec::with_capacity(METERS as usize);
    for m in 0..METERS {
        let facts = SessionFacts::new(m, 1, m.to_be_bytes().to_vec());
        let info = store
            .install_generation(m, &facts, &emsk(m), Duration::from_secs(3600), t0)
            .unwrap();
        ids.push(info.key_ids[0].1);
        plain.insert(m, [m as u8; 16]);
    }
    let mut i = 0u32;
    group.bench_function("receiving_key", |b| {
        b.iter(|| {
            i = (i + 7919) % METERS;
            let id = ids[i as usize];
            black_box(
                store
                    .receiving_key(&i, Application::C1222Data, id, t0)
                    .map(|k| k.generation),
            )
        })
    });
    group.bench_function("anchor/btreemap_get_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % METERS;
            black_box(plain.get(&i).map(|k| k[0]))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = derivation, lookup
}
criterion_main!(benches);
