//! A minimal in-memory pcap writer: classic pcap (microsecond timestamps), link type
//! `LINKTYPE_RAW` (101, bare IPv4), one IPv4/UDP datagram or IPv4/TCP segment per record with
//! correct IPv4 header, UDP and TCP checksums. It produces bytes; writing them to a file is the
//! caller's business.

use crate::Error;

/// pcap link type for raw IP packets.
pub const LINKTYPE_RAW: u32 = 101;

/// TCP flag FIN.
pub const TCP_FIN: u8 = 0x01;
/// TCP flag SYN.
pub const TCP_SYN: u8 = 0x02;
/// TCP flag RST.
pub const TCP_RST: u8 = 0x04;
/// TCP flag PSH.
pub const TCP_PSH: u8 = 0x08;
/// TCP flag ACK (set by [`PcapWriter::push_tcp`] when an acknowledgment number is given).
pub const TCP_ACK: u8 = 0x10;

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

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
        let mut udp = [0u8; 8];
        udp[0..2].copy_from_slice(&src.1.to_be_bytes());
        udp[2..4].copy_from_slice(&dst.1.to_be_bytes());
        let udp_len =
            u16::try_from(8 + payload.len()).map_err(|_| Error::TooLarge("UDP payload"))?;
        udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
        self.push_ip(micros, (src.0, dst.0), PROTO_UDP, &mut udp, 6, payload)
    }

    /// Appends one record: an IPv4/TCP segment carrying `payload` with sequence number `seq`,
    /// acknowledgment number `ack` (the ACK flag is set when it is `Some`) and the flags in
    /// `flags` (see [`TCP_SYN`], [`TCP_FIN`], [`TCP_PSH`], [`TCP_RST`]), stamped `micros` since
    /// the Unix epoch.
    #[allow(clippy::too_many_arguments)]
    pub fn push_tcp(
        &mut self,
        micros: u64,
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        ack: Option<u32>,
        flags: u8,
        payload: &[u8],
    ) -> Result<(), Error> {
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&src.1.to_be_bytes());
        tcp[2..4].copy_from_slice(&dst.1.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&ack.unwrap_or(0).to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags | if ack.is_some() { TCP_ACK } else { 0 };
        tcp[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
        self.push_ip(micros, (src.0, dst.0), PROTO_TCP, &mut tcp, 16, payload)
    }

    /// Writes the IPv4 header, `transport` (whose checksum at `csum_at` is filled in over the
    /// pseudo header, `transport` and `payload`) and `payload` as one record.
    fn push_ip(
        &mut self,
        micros: u64,
        (src, dst): ([u8; 4], [u8; 4]),
        proto: u8,
        transport: &mut [u8],
        csum_at: usize,
        payload: &[u8],
    ) -> Result<(), Error> {
        let seg_len = u16::try_from(transport.len() + payload.len())
            .map_err(|_| Error::TooLarge("IP payload"))?;
        let total = seg_len
            .checked_add(20)
            .ok_or(Error::TooLarge("IP payload"))?;

        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&self.ip_id.to_be_bytes());
        ip[6] = 0x40; // don't fragment
        ip[8] = 64;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let csum = fold(ones_complement_sum(0, &ip));
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        self.ip_id = self.ip_id.wrapping_add(1);

        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&src);
        pseudo[4..8].copy_from_slice(&dst);
        pseudo[9] = proto;
        pseudo[10..12].copy_from_slice(&seg_len.to_be_bytes());
        let acc = ones_complement_sum(0, &pseudo);
        let acc = ones_complement_sum(acc, transport);
        let acc = ones_complement_sum(acc, payload);
        let mut csum = fold(acc);
        if csum == 0 && proto == PROTO_UDP {
            csum = 0xffff;
        }
        if let Some(field) = transport.get_mut(csum_at..csum_at + 2) {
            field.copy_from_slice(&csum.to_be_bytes());
        }

        let secs = u32::try_from(micros / 1_000_000).map_err(|_| Error::TooLarge("timestamp"))?;
        let usecs = (micros % 1_000_000) as u32;
        let caplen = u32::from(total);
        self.buf.extend_from_slice(&secs.to_le_bytes());
        self.buf.extend_from_slice(&usecs.to_le_bytes());
        self.buf.extend_from_slice(&caplen.to_le_bytes());
        self.buf.extend_from_slice(&caplen.to_le_bytes());
        self.buf.extend_from_slice(&ip);
        self.buf.extend_from_slice(transport);
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

    #[test]
    fn tcp_checksums_verify_to_zero() {
        let mut w = PcapWriter::new();
        w.push_tcp(
            1,
            ([10, 0, 0, 1], 40000),
            ([10, 0, 0, 2], 1153),
            7,
            Some(9),
            TCP_PSH,
            b"abcde",
        )
        .unwrap();
        let b = w.into_bytes();
        assert_eq!(b.len(), 24 + 16 + 20 + 20 + 5);
        let ip = &b[40..60];
        assert_eq!(ip[9], 6);
        assert_eq!(fold(ones_complement_sum(0, ip)), 0);
        let tcp = &b[60..];
        assert_eq!(tcp[13], TCP_PSH | TCP_ACK);
        assert_eq!(&tcp[4..8], &7u32.to_be_bytes());
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip[12..20]);
        pseudo.extend_from_slice(&[0, 6, 0, tcp.len() as u8]);
        assert_eq!(
            fold(ones_complement_sum(ones_complement_sum(0, &pseudo), tcp)),
            0
        );
    }
}
