//! TCP stream reassembly for `gridguard inspect`: C12.22 over TCP is the bare stream of ACSE
//! APDUs (each self-delimiting, see `gridguard_headend::tcp::next_frame`), so each direction of
//! each connection is put back in sequence order and cut into APDUs.
//!
//! Captures are untrusted: sequence numbers are compared with wrapping arithmetic, segments
//! that arrive early wait (bounded), retransmitted bytes are dropped, and a direction whose
//! bytes are not C12.22 is given up until its next SYN.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// An address and port.
pub type Endpoint = (IpAddr, u16);

/// Bytes of early (out-of-order) segments kept per direction before giving them up.
const MAX_PENDING: usize = 256 * 1024;

/// The TCP facts of one captured segment that reassembly needs.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Sequence number.
    pub seq: u32,
    /// SYN flag: a new connection starts at `seq + 1`.
    pub syn: bool,
    /// RST flag: the connection is gone.
    pub rst: bool,
    /// The payload.
    pub payload: &'a [u8],
}

/// What one segment produced.
#[derive(Debug, Default)]
pub struct Delivered {
    /// Complete APDUs, in stream order.
    pub frames: Vec<Vec<u8>>,
    /// Set when the direction's bytes are not C12.22 (or announce a frame over the limit):
    /// the reason; the direction is skipped until its next SYN.
    pub error: Option<String>,
}

/// One direction of one connection.
#[derive(Debug, Default)]
struct Direction {
    /// Sequence number of the next byte expected; `None` before the first segment.
    next: Option<u32>,
    /// In-order bytes not yet cut into APDUs.
    buf: Vec<u8>,
    /// Early segments by sequence number.
    pending: BTreeMap<u32, Vec<u8>>,
    pending_bytes: usize,
    /// Not C12.22: ignored until the next SYN.
    broken: bool,
}

impl Direction {
    /// Appends the part of `data` (starting at sequence `seq`) that extends the in-order bytes;
    /// returns false if it lies entirely in the future.
    fn extend(&mut self, seq: u32, data: &[u8]) -> bool {
        let Some(next) = self.next else {
            return false;
        };
        // Distance of the segment start behind the expected byte, in wrapping arithmetic.
        let behind = next.wrapping_sub(seq);
        if behind > u32::MAX / 2 {
            return false; // starts after `next`: early
        }
        let skip = usize::try_from(behind).unwrap_or(usize::MAX);
        if let Some(new) = data.get(skip..) {
            self.buf.extend_from_slice(new);
            let n = u32::try_from(new.len()).unwrap_or(u32::MAX);
            self.next = Some(next.wrapping_add(n));
        }
        true
    }

    fn segment(&mut self, seg: &Segment<'_>) {
        if seg.syn {
            *self = Direction {
                next: Some(seg.seq.wrapping_add(1)),
                ..Direction::default()
            };
            let start = seg.seq.wrapping_add(1);
            self.extend(start, seg.payload);
            return;
        }
        if self.broken || seg.payload.is_empty() {
            return;
        }
        if self.next.is_none() {
            // The capture began mid-connection: take this segment as the start.
            self.next = Some(seg.seq);
        }
        if !self.extend(seg.seq, seg.payload) {
            if self.pending_bytes + seg.payload.len() <= MAX_PENDING {
                self.pending_bytes += seg.payload.len();
                self.pending.insert(seg.seq, seg.payload.to_vec());
            }
            return;
        }
        // Early segments that now join up.
        loop {
            let mut progressed = false;
            let keys: Vec<u32> = self.pending.keys().copied().collect();
            for k in keys {
                let Some(data) = self.pending.remove(&k) else {
                    continue;
                };
                self.pending_bytes = self.pending_bytes.saturating_sub(data.len());
                if self.extend(k, &data) {
                    progressed = true;
                } else {
                    self.pending_bytes += data.len();
                    self.pending.insert(k, data);
                }
            }
            if !progressed {
                break;
            }
        }
    }
}

/// Reassembles every TCP direction seen on the C12.22 port.
#[derive(Debug, Default)]
pub struct Reassembler {
    directions: HashMap<(Endpoint, Endpoint), Direction>,
}

impl Reassembler {
    /// An empty reassembler.
    pub fn new() -> Self {
        Reassembler::default()
    }

    /// Feeds one segment sent from `src` to `dst`; returns the APDUs it completed.
    pub fn segment(&mut self, src: Endpoint, dst: Endpoint, seg: &Segment<'_>) -> Delivered {
        let mut out = Delivered::default();
        if seg.rst {
            self.directions.remove(&(src, dst));
            self.directions.remove(&(dst, src));
            return out;
        }
        let dir = self.directions.entry((src, dst)).or_default();
        dir.segment(seg);
        while !dir.broken {
            match gridguard_headend::tcp::next_frame(&mut dir.buf) {
                Ok(Some(frame)) => out.frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    dir.broken = true;
                    dir.buf = Vec::new();
                    dir.pending.clear();
                    dir.pending_bytes = 0;
                    out.error = Some(e.to_string());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use std::net::Ipv4Addr;

    fn ends() -> (Endpoint, Endpoint) {
        (
            (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40000),
            (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 1153),
        )
    }

    fn seg(seq: u32, payload: &[u8]) -> Segment<'_> {
        Segment {
            seq,
            syn: false,
            rst: false,
            payload,
        }
    }

    /// Two minimal APDUs back to back (user information with a one-byte EPSEM).
    fn two_apdus() -> (Vec<u8>, Vec<u8>) {
        let a = vec![0x60, 0x07, 0xbe, 0x05, 0x28, 0x03, 0x81, 0x01, 0x80];
        let b = vec![0x60, 0x07, 0xbe, 0x05, 0x28, 0x03, 0x81, 0x01, 0x84];
        (a, b)
    }

    #[test]
    fn cuts_apdus_across_segments_out_of_order_and_retransmitted() {
        let (src, dst) = ends();
        let (a, b) = two_apdus();
        let mut stream = a.clone();
        stream.extend_from_slice(&b);
        let isn = u32::MAX - 3; // the sequence numbers wrap inside the stream
        let mut r = Reassembler::new();
        let syn = Segment {
            seq: isn,
            syn: true,
            rst: false,
            payload: &[],
        };
        assert!(r.segment(src, dst, &syn).frames.is_empty());
        let base = isn.wrapping_add(1);
        // Bytes 5.. arrive first, then 0..7 (overlapping), then a retransmission of 0..3.
        let late = r.segment(src, dst, &seg(base.wrapping_add(5), &stream[5..]));
        assert!(late.frames.is_empty());
        let got = r.segment(src, dst, &seg(base, &stream[..7]));
        assert_eq!(got.frames, vec![a.clone(), b.clone()]);
        let again = r.segment(src, dst, &seg(base, &stream[..3]));
        assert!(again.frames.is_empty() && again.error.is_none());
        // The other direction is independent.
        let back = r.segment(dst, src, &seg(77, &a));
        assert_eq!(back.frames, vec![a]);
    }

    #[test]
    fn a_stream_that_is_not_c1222_is_given_up() {
        let (src, dst) = ends();
        let mut r = Reassembler::new();
        let got = r.segment(src, dst, &seg(1, b"GET / HTTP/1.1\r\n"));
        assert!(got.frames.is_empty());
        assert!(got.error.is_some());
        let (a, _) = two_apdus();
        assert!(r.segment(src, dst, &seg(17, &a)).frames.is_empty());
        // A new connection (SYN) starts afresh.
        let syn = Segment {
            seq: 100,
            syn: true,
            rst: false,
            payload: &[],
        };
        r.segment(src, dst, &syn);
        assert_eq!(r.segment(src, dst, &seg(101, &a)).frames, vec![a]);
    }
}
