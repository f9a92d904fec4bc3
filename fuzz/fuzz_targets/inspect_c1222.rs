#![no_main]
//! `gridguard inspect`'s C12.22 path on arbitrary bytes: as one APDU (UDP), as a TCP stream cut
//! into segments at input-chosen points (with retransmitted and early segments), and as a
//! capture file, with a key for id 0x0a so the EAX′ open runs too: a verdict, never a panic.

use std::net::{IpAddr, Ipv4Addr};

use gridguard::inspect::c1222::{keylog_c1222_keys, C1222Inspector, Transport};
use gridguard::inspect::tcp::Segment;
use gridguard::inspect::{inspect_bytes_with, InspectKeys};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = keylog_c1222_keys("\"0a\",5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\n");
    let meter = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40000);
    let host = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 1153);

    let mut inspector = C1222Inspector::new(&keys, None);
    let _ = inspector.message(1, Transport::Udp, meter, host, data);

    // The first byte picks the segment size, the second the sequence jitter.
    if let [size, jitter, rest @ ..] = data {
        let size = usize::from(*size % 32) + 1;
        let mut seq = 0xffff_fff0u32;
        for (i, chunk) in rest.chunks(size).enumerate() {
            let skew = if i % 3 == 0 { u32::from(*jitter) } else { 0 };
            let segment = Segment {
                seq: seq.wrapping_add(skew),
                syn: i == 0,
                rst: false,
                payload: chunk,
            };
            let _ = inspector.tcp_segment(i + 1, meter, host, &segment);
            seq = seq.wrapping_add(chunk.len() as u32);
        }
    }

    let _ = inspect_bytes_with(
        data,
        InspectKeys {
            c1222: keys,
            ..InspectKeys::default()
        },
    );
});
