//! `gridguard inspect`: reads a pcap or pcapng capture and describes every PANA (UDP 716),
//! RADIUS (UDP 1812) and carried EAP message on one line each; given MSKs, it derives each
//! session's PANA_AUTH_KEY the way RFC 5191 §5.3 says (from the captured I_PAR, I_PAN, nonces
//! and Key-Id) and checks every AUTH AVP: `ok` or `BAD`.
//!
//! It also decodes ANSI C12.22 on UDP and TCP port 1153 ([`c1222`]; TCP streams are
//! reassembled by [`tcp`]) and, given C12.22 keys from a UKMF key log, verifies and decrypts
//! every message: `MAC ok`, `MAC BAD` or `no key`.
//!
//! Capture files are untrusted input: every parse is checked, nothing here panics on bytes.

#[path = "inspect_c1222.rs"]
pub mod c1222;
#[path = "inspect_tcp.rs"]
pub mod tcp;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use gridguard_c1222::{ObjectId, C1222_PORT};
use gridguard_pana::{
    derive_auth_key, AuthKey, Flags, IntegrityAlgorithm, KeyInputs, Message, MessageType,
    PrfAlgorithm, PANA_PORT,
};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;

use self::c1222::{describe, C1222Inspector, C1222Key, C1222Message, MacCheck, Transport};
use self::tcp::Endpoint;

/// The RADIUS authentication port.
const RADIUS_PORT: u16 = 1812;

/// What the AUTH AVP check said about one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthCheck {
    /// No AUTH AVP in the message.
    None,
    /// AUTH present, no MSK given (or the session's handshake was not captured).
    Unchecked,
    /// AUTH verified under a key derived from a given MSK.
    Ok,
    /// AUTH did not verify under any key derived from the given MSKs.
    Bad,
}

/// One described message.
#[derive(Clone, Debug)]
pub struct Line {
    /// Packet number in the capture (1-based, like Wireshark).
    pub frame: usize,
    /// The text printed.
    pub text: String,
    /// The AUTH AVP check (PANA only).
    pub auth: AuthCheck,
}

/// Everything `inspect` found.
#[derive(Clone, Debug, Default)]
pub struct Inspection {
    /// One line per PANA or RADIUS message.
    pub lines: Vec<Line>,
    /// PANA messages seen.
    pub pana: usize,
    /// RADIUS messages seen.
    pub radius: usize,
    /// Datagrams on the PANA or RADIUS port that did not parse, C12.22 APDUs that did not
    /// decode, and TCP streams on the C12.22 port that are not C12.22.
    pub undecodable: usize,
    /// The C12.22 messages, in capture order.
    pub c1222: Vec<C1222Message>,
}

impl Inspection {
    /// Number of AUTH AVPs with this verdict.
    pub fn count(&self, check: AuthCheck) -> usize {
        self.lines.iter().filter(|l| l.auth == check).count()
    }

    /// Number of C12.22 messages whose MAC check matches `pred` (for example
    /// `|m| *m == MacCheck::Ok`).
    pub fn c1222_count(&self, pred: impl Fn(&MacCheck) -> bool) -> usize {
        self.c1222.iter().filter(|m| pred(&m.mac)).count()
    }
}

/// The keys `inspect` verifies with.
#[derive(Default)]
pub struct InspectKeys {
    /// PANA MSKs (AUTH AVPs).
    pub msks: Vec<Vec<u8>>,
    /// C12.22 keys by key id (from a UKMF key log, see [`c1222::keylog_c1222_keys`]).
    pub c1222: Vec<C1222Key>,
    /// Base OID against which relative C12.22 AP titles are expanded for the MAC.
    pub c1222_base_oid: Option<ObjectId>,
}

impl core::fmt::Debug for InspectKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InspectKeys")
            .field("msks", &self.msks.len())
            .field("c1222", &self.c1222.len())
            .field("c1222_base_oid", &self.c1222_base_oid)
            .finish()
    }
}

/// A TCP segment or UDP datagram from a captured frame.
enum Transported {
    Udp(Vec<u8>),
    Tcp {
        seq: u32,
        syn: bool,
        rst: bool,
        payload: Vec<u8>,
    },
}

/// What a session's key derivation needs, collected from the capture.
#[derive(Default)]
struct SessionTrack {
    i_par: Option<Vec<u8>>,
    i_pan: Option<Vec<u8>>,
    prf: Option<PrfAlgorithm>,
    integrity: Option<IntegrityAlgorithm>,
    paa_nonce: Option<Vec<u8>>,
    pac_nonce: Option<Vec<u8>>,
    keys: Vec<AuthKey>,
}

/// Walks the messages of a capture.
pub struct Inspector {
    msks: Vec<Vec<u8>>,
    sessions: HashMap<u32, SessionTrack>,
    c1222: C1222Inspector,
    out: Inspection,
}

fn eap_summary(eap: &[u8]) -> String {
    let code = match eap.first() {
        Some(1) => "Request",
        Some(2) => "Response",
        Some(3) => "Success",
        Some(4) => "Failure",
        Some(_) => "code?",
        None => return "EAP (empty)".to_string(),
    };
    let id = eap.get(1).copied().unwrap_or(0);
    let mut s = format!("EAP {code} id {id}");
    match eap.get(4) {
        Some(1) => s.push_str(" Identity"),
        Some(3) => s.push_str(" Nak"),
        Some(47) => {
            // EAP-PSK: the T field of the Flags octet numbers the message (RFC 4764 §5).
            let t = eap.get(5).map_or(0, |f| f >> 6);
            let _ = write!(s, " PSK-{}", t + 1);
        }
        Some(t) if eap.len() > 4 => {
            let _ = write!(s, " type {t}");
        }
        _ => {}
    }
    s
}

fn pana_kind(msg: &Message) -> &'static str {
    let req = msg.is_request();
    match (msg.msg_type, req) {
        (MessageType::CLIENT_INITIATION, _) => "PCI",
        (MessageType::AUTH, true) => "PAR",
        (MessageType::AUTH, false) => "PAN",
        (MessageType::TERMINATION, true) => "PTR",
        (MessageType::TERMINATION, false) => "PTA",
        (MessageType::NOTIFICATION, true) => "PNR",
        (MessageType::NOTIFICATION, false) => "PNA",
        _ => "P??",
    }
}

fn flag_letters(flags: Flags) -> String {
    [
        (Flags::REQUEST, 'R'),
        (Flags::START, 'S'),
        (Flags::COMPLETE, 'C'),
        (Flags::REAUTH, 'A'),
        (Flags::PING, 'P'),
        (Flags::IP_RECONFIG, 'I'),
    ]
    .iter()
    .filter(|(f, _)| flags.contains(*f))
    .map(|(_, c)| *c)
    .collect()
}

impl Inspector {
    /// An inspector verifying AUTH AVPs under keys derived from `msks` (may be empty).
    pub fn new(msks: Vec<Vec<u8>>) -> Self {
        Inspector::with_keys(InspectKeys {
            msks,
            ..InspectKeys::default()
        })
    }

    /// An inspector verifying PANA AUTH AVPs and C12.22 MACs with `keys`.
    pub fn with_keys(keys: InspectKeys) -> Self {
        Inspector {
            c1222: C1222Inspector::new(&keys.c1222, keys.c1222_base_oid),
            msks: keys.msks,
            sessions: HashMap::new(),
            out: Inspection::default(),
        }
    }

    fn head(frame: usize, time: Duration, src: Endpoint, dst: Endpoint) -> String {
        format!(
            "{frame:>5} {:>12.6} {}:{} -> {}:{}",
            time.as_secs_f64(),
            src.0,
            src.1,
            dst.0,
            dst.1
        )
    }

    fn c1222_message(&mut self, time: Duration, msg: C1222Message) {
        let text = format!(
            "{} {}",
            Self::head(msg.frame, time, msg.src, msg.dst),
            describe(&msg)
        );
        if matches!(msg.mac, MacCheck::Undecodable(_)) {
            self.out.undecodable += 1;
        }
        self.out.lines.push(Line {
            frame: msg.frame,
            text,
            auth: AuthCheck::None,
        });
        self.out.c1222.push(msg);
    }

    /// Describes one TCP segment; only the C12.22 port is looked at.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp_segment(
        &mut self,
        frame: usize,
        time: Duration,
        src: Endpoint,
        dst: Endpoint,
        seq: u32,
        syn: bool,
        rst: bool,
        payload: &[u8],
    ) {
        if src.1 != C1222_PORT && dst.1 != C1222_PORT {
            return;
        }
        let segment = tcp::Segment {
            seq,
            syn,
            rst,
            payload,
        };
        let (messages, error) = self.c1222.tcp_segment(frame, src, dst, &segment);
        for m in messages {
            self.c1222_message(time, m);
        }
        if let Some(e) = error {
            self.out.undecodable += 1;
            self.out.lines.push(Line {
                frame,
                text: format!(
                    "{} C12.22/TCP stream undecodable, skipped until the next SYN: {e}",
                    Self::head(frame, time, src, dst)
                ),
                auth: AuthCheck::None,
            });
        }
    }

    /// Describes one UDP datagram.
    pub fn datagram(
        &mut self,
        frame: usize,
        time: Duration,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        payload: &[u8],
    ) {
        let head = Self::head(frame, time, src, dst);
        if src.1 == PANA_PORT || dst.1 == PANA_PORT {
            self.pana(frame, head, payload);
        } else if [src.1, dst.1].contains(&RADIUS_PORT) {
            self.radius(frame, head, payload);
        } else if [src.1, dst.1].contains(&C1222_PORT) {
            let msg = self.c1222.message(frame, Transport::Udp, src, dst, payload);
            self.c1222_message(time, msg);
        }
    }

    fn pana(&mut self, frame: usize, head: String, bytes: &[u8]) {
        if gridguard_pana::relay::is_relay(bytes) {
            match gridguard_pana::relay::unwrap(bytes) {
                // The relayed message is described (and its AUTH checked) as if sent directly;
                // a relay message inside one is not unwrapped again.
                Ok(r) if !gridguard_pana::relay::is_relay(&r.message) => {
                    self.pana_message(
                        frame,
                        format!("{head} PANA PRY for PaC {} |", r.pac),
                        &r.message,
                    );
                }
                Ok(_) => self.undecodable(
                    frame,
                    format!("{head} PANA PRY undecodable: a PRY inside a PRY"),
                ),
                Err(e) => self.undecodable(frame, format!("{head} PANA PRY undecodable: {e}")),
            }
            return;
        }
        self.pana_message(frame, head, bytes);
    }

    fn undecodable(&mut self, frame: usize, text: String) {
        self.out.undecodable += 1;
        self.out.lines.push(Line {
            frame,
            text,
            auth: AuthCheck::None,
        });
    }

    /// Describes one PANA message (RFC 5191).
    fn pana_message(&mut self, frame: usize, head: String, bytes: &[u8]) {
        let msg = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.undecodable(frame, format!("{head} PANA undecodable: {e}"));
                return;
            }
        };
        self.out.pana += 1;
        let mut text = format!(
            "{head} PANA {} [{}] sid {:#010x} seq {}",
            pana_kind(&msg),
            flag_letters(msg.flags),
            msg.session_id,
            msg.seq
        );
        let codes: Vec<String> = msg
            .avps
            .iter()
            .map(|a| a.code.name().map_or(a.code.0.to_string(), str::to_string))
            .collect();
        let _ = write!(text, " AVPs [{}]", codes.join(","));
        if let Some(r) = msg.result_code() {
            let _ = write!(text, " result {r:?}");
        }
        if let Some(k) = msg.key_id() {
            let _ = write!(text, " key-id {k:#010x}");
        }
        if let Some(eap) = msg.eap_payload() {
            let _ = write!(text, " | {}", eap_summary(eap));
        }
        self.track(&msg, bytes);
        let auth = if msg.auth().is_none() {
            AuthCheck::None
        } else {
            self.check_auth(msg.session_id, bytes)
        };
        match auth {
            AuthCheck::Ok => text.push_str(" AUTH ok"),
            AuthCheck::Bad => text.push_str(" AUTH BAD"),
            AuthCheck::Unchecked => text.push_str(" AUTH unchecked"),
            AuthCheck::None => {}
        }
        self.out.lines.push(Line { frame, text, auth });
    }

    fn track(&mut self, msg: &Message, bytes: &[u8]) {
        if msg.msg_type != MessageType::AUTH {
            return;
        }
        let t = self.sessions.entry(msg.session_id).or_default();
        if msg.flags.contains(Flags::START) {
            if msg.is_request() {
                t.i_par = Some(bytes.to_vec());
            } else {
                t.i_pan = Some(bytes.to_vec());
                t.prf = msg.prf_algorithms().next();
                t.integrity = msg.integrity_algorithms().next();
            }
        }
        if let Some(n) = msg.nonce() {
            if msg.is_request() {
                t.paa_nonce = Some(n.to_vec());
            } else {
                t.pac_nonce = Some(n.to_vec());
            }
        }
        if let (true, true, Some(key_id)) = (
            msg.is_request(),
            msg.flags.contains(Flags::COMPLETE),
            msg.key_id(),
        ) {
            if t.keys.iter().any(|k| k.key_id() == key_id) {
                return;
            }
            let (Some(i_par), Some(i_pan), Some(prf), Some(integ), Some(pac), Some(paa)) = (
                &t.i_par,
                &t.i_pan,
                t.prf,
                t.integrity,
                &t.pac_nonce,
                &t.paa_nonce,
            ) else {
                return;
            };
            let inputs = KeyInputs {
                i_par,
                i_pan,
                pac_nonce: pac,
                paa_nonce: paa,
                key_id,
            };
            for msk in &self.msks {
                if let Ok(k) = derive_auth_key(prf, integ, msk, &inputs) {
                    t.keys.push(k);
                }
            }
        }
    }

    fn check_auth(&self, session: u32, bytes: &[u8]) -> AuthCheck {
        if self.msks.is_empty() {
            return AuthCheck::Unchecked;
        }
        let keys = self.sessions.get(&session).map_or(&[][..], |t| &t.keys);
        if keys.iter().rev().any(|k| k.verify(bytes).is_ok()) {
            AuthCheck::Ok
        } else {
            AuthCheck::Bad
        }
    }

    fn radius(&mut self, frame: usize, head: String, bytes: &[u8]) {
        let packet = match gridguard_radius::Packet::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                self.out.undecodable += 1;
                self.out.lines.push(Line {
                    frame,
                    text: format!("{head} RADIUS undecodable: {e}"),
                    auth: AuthCheck::None,
                });
                return;
            }
        };
        self.out.radius += 1;
        let mut text = format!("{head} RADIUS {:?} id {}", packet.code, packet.identifier);
        if let Some(eap) = packet.eap_message() {
            let _ = write!(text, " | {}", eap_summary(&eap));
        }
        self.out.lines.push(Line {
            frame,
            text,
            auth: AuthCheck::None,
        });
    }

    /// The result.
    pub fn finish(self) -> Inspection {
        self.out
    }
}

/// The UDP datagram or TCP segment inside a captured frame of link type `link`.
fn transport_of(link: DataLink, data: &[u8]) -> Option<(Endpoint, Endpoint, Transported)> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(data).ok()?,
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(data).ok()?,
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(data).ok()?,
        DataLink::NULL | DataLink::LOOP => SlicedPacket::from_ip(data.get(4..)?).ok()?,
        _ => return None,
    };
    let (src, dst) = match sliced.net? {
        NetSlice::Ipv4(ip) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
        ),
        NetSlice::Ipv6(ip) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
        ),
    };
    match sliced.transport? {
        TransportSlice::Udp(udp) => Some((
            (src, udp.source_port()),
            (dst, udp.destination_port()),
            Transported::Udp(udp.payload().to_vec()),
        )),
        TransportSlice::Tcp(tcp) => Some((
            (src, tcp.source_port()),
            (dst, tcp.destination_port()),
            Transported::Tcp {
                seq: tcp.sequence_number(),
                syn: tcp.syn(),
                rst: tcp.rst(),
                payload: tcp.payload().to_vec(),
            },
        )),
        _ => None,
    }
}

/// Reads a pcap or pcapng capture and inspects every PANA and RADIUS datagram in it.
pub fn inspect_file(path: &Path, msks: Vec<Vec<u8>>) -> anyhow::Result<Inspection> {
    let data = std::fs::read(path)?;
    inspect_bytes(&data, msks)
}

/// Reads a pcap or pcapng capture and inspects every PANA, RADIUS and C12.22 message in it.
pub fn inspect_file_with(path: &Path, keys: InspectKeys) -> anyhow::Result<Inspection> {
    let data = std::fs::read(path)?;
    inspect_bytes_with(&data, keys)
}

/// Inspects a pcap or pcapng capture held in memory.
pub fn inspect_bytes(data: &[u8], msks: Vec<Vec<u8>>) -> anyhow::Result<Inspection> {
    inspect_bytes_with(
        data,
        InspectKeys {
            msks,
            ..InspectKeys::default()
        },
    )
}

/// Inspects a pcap or pcapng capture held in memory, with PANA and C12.22 keys.
pub fn inspect_bytes_with(data: &[u8], keys: InspectKeys) -> anyhow::Result<Inspection> {
    let mut inspector = Inspector::with_keys(keys);
    let mut frame = 0usize;
    let mut feed = |inspector: &mut Inspector, link: DataLink, time: Duration, bytes: &[u8]| {
        frame += 1;
        match transport_of(link, bytes) {
            Some((src, dst, Transported::Udp(payload))) => {
                inspector.datagram(frame, time, src, dst, &payload);
            }
            Some((
                src,
                dst,
                Transported::Tcp {
                    seq,
                    syn,
                    rst,
                    payload,
                },
            )) => inspector.tcp_segment(frame, time, src, dst, seq, syn, rst, &payload),
            None => {}
        }
    };
    if data.get(..4) == Some(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let mut reader = PcapNgReader::new(data)?;
        let mut links: Vec<DataLink> = Vec::new();
        while let Some(block) = reader.next_block() {
            match block? {
                Block::InterfaceDescription(idb) => links.push(idb.linktype),
                Block::EnhancedPacket(epb) => {
                    let link = usize::try_from(epb.interface_id)
                        .ok()
                        .and_then(|i| links.get(i).copied())
                        .unwrap_or(DataLink::ETHERNET);
                    feed(&mut inspector, link, epb.timestamp, &epb.data);
                }
                Block::SimplePacket(spb) => {
                    let link = links.first().copied().unwrap_or(DataLink::ETHERNET);
                    feed(&mut inspector, link, Duration::ZERO, &spb.data);
                }
                _ => {}
            }
        }
    } else {
        let mut reader = PcapReader::new(data)?;
        let link = reader.header().datalink;
        while let Some(packet) = reader.next_packet() {
            let packet = packet?;
            feed(&mut inspector, link, packet.timestamp, &packet.data);
        }
    }
    Ok(inspector.finish())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn capture_of(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut writer = PcapWriter::new(Vec::new()).unwrap();
        for (i, p) in payloads.iter().enumerate() {
            let mut frame = Vec::new();
            etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
                .udp(40_000, PANA_PORT)
                .write(&mut frame, p)
                .unwrap();
            let t = Duration::from_millis(i as u64);
            writer
                .write_packet(&PcapPacket::new(t, frame.len() as u32, &frame))
                .unwrap();
        }
        writer.into_writer()
    }

    #[test]
    fn describes_pana_messages_and_survives_garbage() {
        let pci = hex::decode("00000010000000010000000000000000").unwrap();
        let good = capture_of(&[pci.clone(), vec![0xff; 7]]);
        let found = inspect_bytes(&good, Vec::new()).unwrap();
        assert_eq!(found.pana, 1);
        assert_eq!(found.undecodable, 1);
        assert!(found.lines[0].text.contains("PANA PCI"));
        // The same PCI through a PANA relay (RFC 6345).
        let pac = "192.0.2.7:716".parse().unwrap();
        let pry = gridguard_pana::relay::wrap(pac, &pci).unwrap();
        let nested = gridguard_pana::relay::wrap(pac, &pry).unwrap();
        let relayed = inspect_bytes(&capture_of(&[pry, nested]), Vec::new()).unwrap();
        assert_eq!((relayed.pana, relayed.undecodable), (1, 1));
        let line = &relayed.lines[0].text;
        assert!(
            line.contains("PRY for PaC 192.0.2.7:716 | PANA PCI"),
            "{line}"
        );
        // Random bytes and mutations of a valid capture: an error or a result, never a panic.
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..2000 {
            let mut bytes = good.clone();
            for _ in 0..rng.gen_range(1..8) {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] = rng.gen();
            }
            bytes.truncate(rng.gen_range(0..=bytes.len()));
            let _ = inspect_bytes(&bytes, vec![vec![1; 64]]);
            let noise: Vec<u8> = (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect();
            let _ = inspect_bytes(&noise, Vec::new());
        }
    }
}
