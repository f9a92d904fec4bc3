#![no_main]
//! `gridguard inspect` on arbitrary capture bytes (pcap, pcapng, garbage): an error or a
//! description, never a panic, with and without an MSK to check AUTH AVPs against.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gridguard::inspect::inspect_bytes(data, Vec::new());
    let _ = gridguard::inspect::inspect_bytes(data, vec![vec![0x5a; 64]]);
});
