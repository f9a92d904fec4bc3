//! ANSI C12.22 in `gridguard inspect`: every APDU on UDP or TCP port 1153 is decoded with the
//! `gridguard-c1222` codecs and, given the keys of a UKMF key log, verified and decrypted with
//! the same EAX′ code the host runs (`security::open_apdu`).
//!
//! # Keys
//! The key log lines are the ones `gridguard_keys::keylog` writes, in the format of Wireshark's
//! C12.22 decryption table: `"<key id, hex>",<32 hex digits>` (comment lines start with `#`).
//! Like Wireshark's table, keys are looked up by key id only; unlike it, every key logged under
//! an id is tried (ids of different meters or generations may collide), so a MAC is `ok` if
//! any of them verifies it, `BAD` if keys with that id exist and none does, and `no key` if
//! none has the id.
//!
//! Captures are untrusted input: nothing here panics on bytes.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use gridguard_c1222::security::{open_apdu, CanonOptions};
use gridguard_c1222::{
    AcseApdu, ApTitle, EaxPrime, Epsem, EpsemControl, Error as C1222Error, ObjectId, Request,
    Response, ResponseCode, SecurityMode, Service, MAC_LEN,
};
use zeroize::Zeroizing;

use super::tcp::{Endpoint, Reassembler, Segment};

/// A C12.22 key from a key log: its one-octet key id and the 128-bit key.
pub type C1222Key = (u8, Zeroizing<[u8; 16]>);

/// The C12.22 keys of a key log: every line `"<hex key id>",<32 hex digits>` (the key may also
/// be quoted); comment lines (`#`), `MSK` lines (the PANA key log) and anything else are
/// skipped, so one file may hold both kinds.
pub fn keylog_c1222_keys(text: &str) -> Vec<C1222Key> {
    text.lines().filter_map(c1222_key_line).collect()
}

fn c1222_key_line(line: &str) -> Option<C1222Key> {
    let line = line.trim();
    let rest = line.strip_prefix('"')?;
    let (id, key) = rest.split_once("\",")?;
    if id.is_empty() || id.len() > 2 {
        return None;
    }
    let key_id = u8::from_str_radix(id, 16).ok()?;
    let key = key.trim();
    let key = key
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(key);
    let mut bytes = Zeroizing::new([0u8; 16]);
    hex::decode_to_slice(key, &mut bytes[..]).ok()?;
    Some((key_id, bytes))
}

/// How a C12.22 message travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One APDU per UDP datagram.
    Udp,
    /// APDUs cut from a reassembled TCP stream.
    Tcp,
}

/// What the MAC check said about one C12.22 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MacCheck {
    /// Security mode 0: nothing to check.
    Cleartext,
    /// The MAC verified under a key of the key log (mode 2: decrypted).
    Ok,
    /// Keys with the message's key id are known and none verifies the MAC.
    Bad,
    /// No key with the message's key id is known.
    NoKey,
    /// The message claims protection but its MAC cannot be computed (no key id or IV, an
    /// element outside the MAC, reserved mode 3, no room for a MAC): the reason.
    Unverifiable(String),
    /// The APDU does not decode: the reason.
    Undecodable(String),
}

impl MacCheck {
    fn text(&self) -> String {
        match self {
            MacCheck::Cleartext => "cleartext".into(),
            MacCheck::Ok => "MAC ok".into(),
            MacCheck::Bad => "MAC BAD".into(),
            MacCheck::NoKey => "no key".into(),
            MacCheck::Unverifiable(why) => format!("MAC unverifiable ({why})"),
            MacCheck::Undecodable(why) => format!("undecodable ({why})"),
        }
    }
}

/// One C12.22 message found in a capture.
#[derive(Clone, Debug)]
pub struct C1222Message {
    /// Packet number of the frame that carried (for TCP: completed) the APDU, 1-based.
    pub frame: usize,
    /// UDP or TCP.
    pub transport: Transport,
    /// Sender.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// Calling AP title (the sender's).
    pub calling: Option<ApTitle>,
    /// Called AP title (the receiver's).
    pub called: Option<ApTitle>,
    /// Calling AP invocation id.
    pub invocation: Option<u64>,
    /// Called AP invocation id: the invocation this message answers, if any.
    pub answers: Option<u64>,
    /// Security mode of the EPSEM control byte.
    pub mode: Option<SecurityMode>,
    /// Key id of the calling authentication value.
    pub key_id: Option<u8>,
    /// The MAC verdict.
    pub mac: MacCheck,
    /// The plaintext EPSEM (decrypted in mode 2, MAC removed) when it could be read: always in
    /// modes 0 and 1, in mode 2 only after the MAC verified.
    pub plaintext: Option<Vec<u8>>,
    /// The decoded EPSEM, when the plaintext decodes.
    pub epsem: Option<Epsem>,
    /// Why the plaintext does not decode as EPSEM, if it does not.
    pub epsem_error: Option<String>,
    /// An authentic message whose (calling AP title, invocation id) or IV was already seen in
    /// this capture: a replay (or a retransmission).
    pub replayed: bool,
    /// For a response to a read request seen earlier in the capture: the table each service
    /// of that request read (`None` for services that were not reads), in order.
    pub answered_tables: Vec<Option<u16>>,
}

/// Read requests remembered to name the tables of their responses, at most.
const MAX_READS: usize = 65_536;

/// Decodes and verifies the C12.22 messages of a capture.
pub struct C1222Inspector {
    keys: Vec<(u8, EaxPrime)>,
    canon: CanonOptions,
    tcp: Reassembler,
    seen_invocations: HashSet<(ApTitle, Vec<u8>)>,
    seen_ivs: HashSet<(ApTitle, [u8; 4])>,
    /// (requester, invocation id) of read requests → the table of each service.
    reads: HashMap<(ApTitle, u64), Vec<Option<u16>>>,
}

impl core::fmt::Debug for C1222Inspector {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("C1222Inspector")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl C1222Inspector {
    /// An inspector verifying with `keys`; relative AP titles are expanded against `base_oid`
    /// for the MAC (Wireshark's `c1222.baseoid`).
    pub fn new(keys: &[C1222Key], base_oid: Option<ObjectId>) -> Self {
        C1222Inspector {
            keys: keys.iter().map(|(id, k)| (*id, EaxPrime::new(k))).collect(),
            canon: CanonOptions {
                base_oid,
                ..CanonOptions::default()
            },
            tcp: Reassembler::new(),
            seen_invocations: HashSet::new(),
            seen_ivs: HashSet::new(),
            reads: HashMap::new(),
        }
    }

    /// One TCP segment between `src` and `dst`: the APDUs it completed, and the reason if the
    /// direction turned out not to be C12.22.
    pub fn tcp_segment(
        &mut self,
        frame: usize,
        src: Endpoint,
        dst: Endpoint,
        segment: &Segment<'_>,
    ) -> (Vec<C1222Message>, Option<String>) {
        let delivered = self.tcp.segment(src, dst, segment);
        let messages = delivered
            .frames
            .iter()
            .map(|apdu| self.message(frame, Transport::Tcp, src, dst, apdu))
            .collect();
        (messages, delivered.error)
    }

    /// Decodes and verifies one APDU.
    pub fn message(
        &mut self,
        frame: usize,
        transport: Transport,
        src: Endpoint,
        dst: Endpoint,
        bytes: &[u8],
    ) -> C1222Message {
        let mut msg = C1222Message {
            frame,
            transport,
            src,
            dst,
            calling: None,
            called: None,
            invocation: None,
            answers: None,
            mode: None,
            key_id: None,
            mac: MacCheck::Undecodable(String::new()),
            plaintext: None,
            epsem: None,
            epsem_error: None,
            replayed: false,
            answered_tables: Vec::new(),
        };
        let mut apdu = match AcseApdu::parse(bytes) {
            Ok(a) => a,
            Err(e) => {
                msg.mac = MacCheck::Undecodable(e.to_string());
                return msg;
            }
        };
        msg.calling = apdu.calling_ap_title.clone();
        msg.called = apdu.called_ap_title.clone();
        msg.invocation = apdu.calling_ap_invocation_id.as_ref().map(|i| i.value());
        msg.answers = apdu.called_ap_invocation_id.as_ref().map(|i| i.value());
        let (key_id, iv) = apdu.key_id_and_iv();
        msg.key_id = key_id;
        let Some(control) = apdu.user_information.epsem.first().copied() else {
            msg.mac = MacCheck::Undecodable("empty EPSEM".into());
            return msg;
        };
        let mode = EpsemControl(control).security_mode();
        msg.mode = Some(mode);
        let wire = &apdu.user_information.epsem;
        // The EPSEM without its MAC, readable as it is in modes 0 and 1.
        let unprotected = match mode {
            SecurityMode::CLEARTEXT => Some(wire.clone()),
            SecurityMode::CLEARTEXT_AUTH => wire
                .len()
                .checked_sub(MAC_LEN)
                .filter(|n| *n >= 1)
                .and_then(|n| wire.get(..n))
                .map(<[u8]>::to_vec),
            _ => None,
        };
        msg.mac = if mode == SecurityMode::CLEARTEXT {
            MacCheck::Cleartext
        } else if mode != SecurityMode::CLEARTEXT_AUTH && mode != SecurityMode::CIPHERTEXT_AUTH {
            MacCheck::Unverifiable(format!("reserved security mode {}", mode.0))
        } else if let Some(key_id) = key_id {
            self.verify(&mut apdu, key_id)
        } else {
            MacCheck::Unverifiable(C1222Error::MissingKeyIdOrIv.to_string())
        };
        msg.plaintext = if msg.mac == MacCheck::Ok {
            Some(apdu.user_information.epsem.clone())
        } else {
            unprotected
        };
        if let Some(p) = &msg.plaintext {
            match Epsem::parse(p) {
                Ok(e) => msg.epsem = Some(e),
                Err(e) => msg.epsem_error = Some(e.to_string()),
            }
        }
        self.track_reads(&mut msg);
        if msg.mac == MacCheck::Ok {
            if let (Some(calling), Some(inv)) = (&msg.calling, &apdu.calling_ap_invocation_id) {
                let fresh_inv = self
                    .seen_invocations
                    .insert((calling.clone(), inv.as_bytes().to_vec()));
                let fresh_iv = iv.is_none_or(|iv| self.seen_ivs.insert((calling.clone(), iv)));
                msg.replayed = !(fresh_inv && fresh_iv);
            }
        }
        msg
    }

    /// Remembers the tables of a read request; names the tables of a response to one.
    fn track_reads(&mut self, msg: &mut C1222Message) {
        let Some(epsem) = &msg.epsem else {
            return;
        };
        if let (Some(called), Some(answers)) = (&msg.called, msg.answers) {
            if let Some(tables) = self.reads.get(&(called.clone(), answers)) {
                msg.answered_tables = tables.clone();
            }
        }
        let tables: Vec<Option<u16>> = epsem
            .services
            .iter()
            .map(|s| match s {
                Service::Request(
                    Request::FullRead { table }
                    | Request::PartialReadOffset { table, .. }
                    | Request::PartialReadIndex { table, .. },
                ) => Some(table.0),
                _ => None,
            })
            .collect();
        if let (true, Some(calling), Some(inv)) = (
            tables.iter().any(Option::is_some),
            &msg.calling,
            msg.invocation,
        ) {
            if self.reads.len() >= MAX_READS {
                self.reads.clear();
            }
            self.reads.insert((calling.clone(), inv), tables);
        }
    }

    /// Tries every key with `key_id`; on success the APDU holds the plaintext EPSEM.
    fn verify(&self, apdu: &mut AcseApdu, key_id: u8) -> MacCheck {
        let mut any = false;
        for (_, cipher) in self.keys.iter().filter(|(id, _)| *id == key_id) {
            any = true;
            // On failure `open_apdu` leaves the APDU unchanged, so the next key sees it intact.
            match open_apdu(apdu, cipher, &self.canon) {
                Ok(_) => return MacCheck::Ok,
                Err(C1222Error::AuthenticationFailed) => {}
                Err(e) => return MacCheck::Unverifiable(e.to_string()),
            }
        }
        if any {
            MacCheck::Bad
        } else {
            MacCheck::NoKey
        }
    }
}

fn table_name(id: u16) -> String {
    // C12.19: bit 11 marks manufacturer tables; the low 11 bits number the table.
    if id & 0x0800 != 0 {
        format!("MT{}", id & 0x07ff)
    } else {
        format!("ST{}", id & 0x07ff)
    }
}

/// One EPSEM service in words: request name with its table and sizes, or response code.
pub fn service_text(service: &Service) -> String {
    match service {
        Service::Request(r) => request_text(r),
        Service::Response(p) => {
            let name = p
                .code
                .name()
                .map_or_else(|| format!("0x{:02x}", p.code.0), str::to_string);
            if p.data.is_empty() {
                format!("response {name}")
            } else {
                format!("response {name} ({} bytes)", p.data.len())
            }
        }
    }
}

/// A response to a read of `table`: code, table, and the size of the table data (checksum
/// verified) or why it is not readable.
fn read_response_text(p: &Response, table: u16) -> String {
    let name = p
        .code
        .name()
        .map_or_else(|| format!("0x{:02x}", p.code.0), str::to_string);
    if p.code != ResponseCode::OK {
        return format!("response {name} to read {}", table_name(table));
    }
    match p.table_data() {
        Ok(d) => format!("response {name} {} ({} bytes)", table_name(table), d.len()),
        Err(e) => format!("response {name} {} (table data: {e})", table_name(table)),
    }
}

fn request_text(r: &Request) -> String {
    match r {
        Request::FullRead { table } => format!("full-read {}", table_name(table.0)),
        Request::PartialReadOffset {
            table,
            offset,
            count,
        } => format!(
            "partial-read {} offset {offset} count {count}",
            table_name(table.0)
        ),
        Request::PartialReadIndex {
            table,
            index,
            count,
        } => format!(
            "partial-read {} index {index:?} count {count}",
            table_name(table.0)
        ),
        Request::FullWrite { table, data } => {
            format!("full-write {} ({} bytes)", table_name(table.0), data.len())
        }
        Request::PartialWriteOffset {
            table,
            offset,
            data,
        } => format!(
            "partial-write {} offset {offset} ({} bytes)",
            table_name(table.0),
            data.len()
        ),
        Request::PartialWriteIndex { table, index, data } => format!(
            "partial-write {} index {index:?} ({} bytes)",
            table_name(table.0),
            data.len()
        ),
        Request::Logon { user_id, .. } => format!("logon user-id {user_id}"),
        Request::Security { user_id, .. } => match user_id {
            Some(u) => format!("security user-id {u} (password not shown)"),
            None => "security (password not shown)".into(),
        },
        Request::Wait { seconds } => format!("wait {seconds}s"),
        Request::Registration(reg) => format!(
            "registration ap-title {} native-address {} period {}s",
            reg.ap_title,
            hex::encode(&reg.native_address),
            reg.registration_period
        ),
        Request::Deregistration { ap_title } => format!("deregistration {ap_title}"),
        Request::Resolve { ap_title } => format!("resolve {ap_title}"),
        Request::Trace { ap_title } => format!("trace {ap_title}"),
        other => {
            let code = other.code();
            code.name()
                .map_or_else(|| format!("request 0x{:02x}", code.0), str::to_string)
        }
    }
}

/// The description `inspect` prints after the frame number, time and addresses.
pub fn describe(msg: &C1222Message) -> String {
    let transport = match msg.transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    };
    let mut s = format!("C12.22/{transport}");
    if let MacCheck::Undecodable(_) = msg.mac {
        let _ = write!(s, " {}", msg.mac.text());
        return s;
    }
    let title = |t: &Option<ApTitle>| t.as_ref().map_or_else(|| "-".into(), ToString::to_string);
    let _ = write!(
        s,
        " calling {} called {}",
        title(&msg.calling),
        title(&msg.called)
    );
    if let Some(i) = msg.invocation {
        let _ = write!(s, " inv {i}");
    }
    if let Some(i) = msg.answers {
        let _ = write!(s, " answers {i}");
    }
    if let Some(m) = msg.mode {
        let _ = write!(s, " mode {} ({})", m.0, m.name().unwrap_or("reserved"));
    }
    if let Some(k) = msg.key_id {
        let _ = write!(s, " key-id 0x{k:02x}");
    }
    let _ = write!(s, " {}", msg.mac.text());
    if msg.replayed {
        s.push_str(" REPLAY");
    }
    match (&msg.epsem, &msg.epsem_error) {
        (Some(e), _) => {
            let mut responses = 0usize;
            let services: Vec<String> = e
                .services
                .iter()
                .map(|svc| match svc {
                    Service::Response(p) => {
                        let table = msg.answered_tables.get(responses).copied().flatten();
                        responses += 1;
                        match table {
                            Some(t) => read_response_text(p, t),
                            None => service_text(svc),
                        }
                    }
                    Service::Request(_) => service_text(svc),
                })
                .collect();
            let _ = write!(s, " | {}", services.join("; "));
            if msg.mac != MacCheck::Ok && msg.mac != MacCheck::Cleartext {
                s.push_str(" (unauthenticated)");
            }
        }
        (None, Some(err)) => {
            let _ = write!(s, " | EPSEM undecodable ({err})");
        }
        (None, None) => s.push_str(" | (encrypted)"),
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn key_log_lines_of_both_kinds_are_told_apart() {
        let text = "# gridguard keylog meter=\"m\" app=c1222-data key-id=0x0a\n\
                    \"0a\",00112233445566778899aabbccddeeff\n\
                    MSK 0102\n\
                    \"7\",\"ffeeddccbbaa99887766554433221100\"\n\
                    \"0a\",0011\n\
                    \"100\",00112233445566778899aabbccddeeff\n\
                    0a,00112233445566778899aabbccddeeff\n";
        let keys = keylog_c1222_keys(text);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].0, 0x0a);
        assert_eq!(
            keys[0].1[..],
            hex::decode("00112233445566778899aabbccddeeff").unwrap()
        );
        assert_eq!(keys[1].0, 7);
        assert_eq!(keys[1].1[0], 0xff);
    }

    #[test]
    fn table_names_follow_c1219() {
        assert_eq!(table_name(64), "ST64");
        assert_eq!(table_name(0x0801), "MT1");
    }
}
