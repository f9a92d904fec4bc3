//! A minimal in-memory pcap writer: classic pcap (microsecond timestamps), link type
//! `LINKTYPE_RAW` (101, bare IPv4), one IPv4/UDP datagram per record with correct IPv4 header
//! and UDP checksums. It produces bytes; writing them to a file is the caller's business.

use crate::Error;

/// pcap link type for raw IP packets.
pub const LINKTYPE_RAW: u32 = 101;

/// Builds a pcap capture of UDP/IPv4 datagrams.
#[derive(Debug, Clone)]
pub struct PcapWriter {
    buf: Vec<u8>,
    ip_id: u16,
}

impl Default for PcapWriter {
    fn default() -> Self {
        Self::new()
    }
}

fn ones_complement_sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        if let [hi, lo] = c {
            acc += u32::from(u16::from_be_bytes([*hi, *lo]));
        }
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

impl PcapWriter {
    /// A capture with only the global header written.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&0i32.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        buf.extend_from_slice(&65535u32.to_le_bytes());
        buf.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
        PcapWriter { buf, ip_id: 1 }
    }

    /// Appends one record: an IPv4/UDP datagram carrying `payload`, stamped `micros` since the
    /// Unix epoch.
    pub fn push_udp(
        &mut self,
        micros: u64,
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        payload: &[u8],
    ) -> Result<(), Error> {
        let udp_len =
            u16::try_from(8 + payload.len()).map_err(|_| Error::TooLarge("UDP payload"))?;
        let total = udp_len
            .checked_add(20)
            .ok_or(Error::TooLarge("UDP payload"))?;

        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&self.ip_id.to_be_bytes());
        ip[6] = 0x40; // don't fragment
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&src.0);
        ip[16..20].copy_from_slice(&dst.0);
        let csum = fold(ones_complement_sum(0, &ip));
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        self.ip_id = self.ip_id.wrapping_add(1);

        let mut udp = [0u8; 8];
        udp[0..2].copy_from_slice(&src.1.to_be_bytes());
        udp[2..4].copy_from_slice(&dst.1.to_be_bytes());
        udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&src.0);
        pseudo[4..8].copy_from_slice(&dst.0);
        pseudo[9] = 17;
        pseudo[10..12].copy_from_slice(&udp_len.to_be_bytes());
        let acc = ones_complement_sum(0, &pseudo);
        let acc = ones_complement_sum(acc, &udp);
        let acc = ones_complement_sum(acc, payload);
        let mut ucsum = fold(acc);
        if ucsum == 0 {
            ucsum = 0xffff;
        }
        udp[6..8].copy_from_slice(&ucsum.to_be_bytes());

        let secs = u32::try_from(micros / 1_000_000).map_err(|_| Error::TooLarge("timestamp"))?;
        let usecs = (micros % 1_000_000) as u32;
        let caplen = u32::from(total);
        self.buf.extend_from_slice(&secs.to_le_bytes());
        self.buf.extend_from_slice(&usecs.to_le_bytes());
        self.buf.extend_from_slice(&caplen.to_le_bytes());
        self.buf.extend_from_slice(&caplen.to_le_bytes());
        self.buf.extend_from_slice(&ip);
        self.buf.extend_from_slice(&udp);
        self.buf.extend_from_slice(payload);
        Ok(())
    }

    /// The capture so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The finished capture.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_verify_to_zero() {
        let mut w = PcapWriter::new();
        w.push_udp(1, ([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 1153), b"abc")
            .unwrap();
        let b = w.into_bytes();
        assert_eq!(b.len(), 24 + 16 + 20 + 8 + 3);
        let ip = &b[40..60];
        assert_eq!(fold(ones_complement_sum(0, ip)), 0);
        let udp = &b[60..];
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip[12..20]);
        pseudo.extend_from_slice(&[0, 17, 0, udp.len() as u8]);
        assert_eq!(
            fold(ones_complement_sum(ones_complement_sum(0, &pseudo), udp)),
            0
        );
    }
}
