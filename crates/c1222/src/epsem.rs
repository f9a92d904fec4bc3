//! EPSEM (Extended Protocol Specification for Electronic Metering) codec.
//!
//! ```text
//! <epsem>       ::= <epsem-control> [<ed-class>] { <service-length> <req-res> }+
//! <epsem-control> bit 7 reserved (set), 6 recovery-session, 5 proxy-service-used,
//!                 4 ed-class-included, 3..2 security mode, 1..0 response control
//! <service-length> is a BER definite length
//! ```
//! Table data travels as `<count: u16> <data> <cksum>` where the checksum is the two's
//! complement of the byte sum of the data.
//!
//! [`Epsem`] is the plaintext view (no MAC): for protected messages, [`crate::security`]
//! strips the MAC and decrypts first.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::acse::ApTitle;
use crate::ber::{put_length, Reader};
use crate::Error;

macro_rules! open_newtype {
    ($(#[$m:meta])* $name:ident { $($(#[$cm:meta])* $c:ident = $v:expr, $s:expr;)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u8);
        impl $name {
            $($(#[$cm])* pub const $c: $name = $name($v);)*
            /// The registered name of this value, if any.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($v => Some($s),)*
                    _ => None,
                }
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}(0x{:02x})", stringify!($name), self.0),
                }
            }
        }
    };
}

open_newtype!(
    /// EPSEM security mode (bits 3..2 of the control byte).
    SecurityMode {
        /// Mode 0: cleartext, no MAC.
        CLEARTEXT = 0, "cleartext";
        /// Mode 1: cleartext with authentication (EAX′ MAC over header and EPSEM).
        CLEARTEXT_AUTH = 1, "cleartext+auth";
        /// Mode 2: ciphertext with authentication (EPSEM encrypted with EAX′).
        CIPHERTEXT_AUTH = 2, "ciphertext+auth";
    }
);

open_newtype!(
    /// EPSEM response control (bits 1..0 of the control byte).
    ResponseControl {
        /// Always respond.
        ALWAYS = 0, "always";
        /// Respond on exception only.
        ON_EXCEPTION = 1, "on-exception";
        /// Never respond.
        NEVER = 2, "never";
    }
);

open_newtype!(
    /// A C12.22 request service code.
    RequestCode {
        /// Identify.
        IDENTIFY = 0x20, "identify";
        /// Terminate.
        TERMINATE = 0x21, "terminate";
        /// Disconnect.
        DISCONNECT = 0x22, "disconnect";
        /// Deregistration.
        DEREGISTRATION = 0x24, "deregistration";
        /// Resolve.
        RESOLVE = 0x25, "resolve";
        /// Trace.
        TRACE = 0x26, "trace";
        /// Registration.
        REGISTRATION = 0x27, "registration";
        /// Full table read.
        FULL_READ = 0x30, "full-read";
        /// Default read.
        DEFAULT_READ = 0x3e, "default-read";
        /// Partial read by offset.
        PARTIAL_READ_OFFSET = 0x3f, "partial-read-offset";
        /// Full table write.
        FULL_WRITE = 0x40, "full-write";
        /// Default write.
        DEFAULT_WRITE = 0x4e, "default-write";
        /// Partial write by offset.
        PARTIAL_WRITE_OFFSET = 0x4f, "partial-write-offset";
        /// Logon.
        LOGON = 0x50, "logon";
        /// Security (password).
        SECURITY = 0x51, "security";
        /// Logoff.
        LOGOFF = 0x52, "logoff";
        /// Wait.
        WAIT = 0x70, "wait";
    }
);

open_newtype!(
    /// A C12.22 response code (0x00..=0x1f).
    ResponseCode {
        /// Acknowledge, no problems.
        OK = 0x00, "ok";
        /// Error, unspecified.
        ERR = 0x01, "err";
        /// Service not supported.
        SNS = 0x02, "sns";
        /// Insufficient security clearance.
        ISC = 0x03, "isc";
        /// Operation not possible.
        ONP = 0x04, "onp";
        /// Inappropriate action requested.
        IAR = 0x05, "iar";
        /// Device busy.
        BSY = 0x06, "bsy";
        /// Data not ready.
        DNR = 0x07, "dnr";
        /// Data locked.
        DLK = 0x08, "dlk";
        /// Renegotiate request.
        RNO = 0x09, "rno";
        /// Invalid service sequence state.
        ISSS = 0x0a, "isss";
        /// Security mechanism error.
        SME = 0x0b, "sme";
        /// Unknown or invalid called application title.
        UAT = 0x0c, "uat";
        /// Network time-out.
        NETT = 0x0d, "netT";
        /// Node not reachable.
        NETR = 0x0e, "netR";
        /// Request too large.
        RQTL = 0x0f, "rqtl";
        /// Response too large.
        RSTL = 0x10, "rstl";
        /// Segmentation not possible.
        SGNP = 0x11, "sgnp";
        /// Segmentation error.
        SGERR = 0x12, "sgerr";
    }
);

/// The EPSEM control byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EpsemControl(pub u8);

impl EpsemControl {
    /// Reserved bit (set by every known implementation).
    pub const RESERVED: u8 = 0x80;
    /// Recovery-session flag.
    pub const RECOVERY_SESSION: u8 = 0x40;
    /// Proxy-service-used flag.
    pub const PROXY_SERVICE_USED: u8 = 0x20;
    /// ed_class-included flag.
    pub const ED_CLASS_INCLUDED: u8 = 0x10;
    const MODE_MASK: u8 = 0x0c;
    const RESPONSE_MASK: u8 = 0x03;

    /// A control byte with the reserved bit set and the given mode and response control.
    pub fn new(mode: SecurityMode, response: ResponseControl) -> Self {
        EpsemControl(Self::RESERVED)
            .with_security_mode(mode)
            .with_response_control(response)
    }

    /// The security mode bits.
    pub fn security_mode(self) -> SecurityMode {
        SecurityMode((self.0 & Self::MODE_MASK) >> 2)
    }

    /// A copy with the security mode bits replaced (only the low two bits of `mode` are used).
    pub fn with_security_mode(self, mode: SecurityMode) -> Self {
        EpsemControl((self.0 & !Self::MODE_MASK) | ((mode.0 & 3) << 2))
    }

    /// The response control bits.
    pub fn response_control(self) -> ResponseControl {
        ResponseControl(self.0 & Self::RESPONSE_MASK)
    }

    /// A copy with the response control replaced (only the low two bits are used).
    pub fn with_response_control(self, rc: ResponseControl) -> Self {
        EpsemControl((self.0 & !Self::RESPONSE_MASK) | (rc.0 & 3))
    }

    /// Whether the ed_class field follows the control byte.
    pub fn ed_class_included(self) -> bool {
        self.0 & Self::ED_CLASS_INCLUDED != 0
    }

    /// Recovery-session flag.
    pub fn recovery_session(self) -> bool {
        self.0 & Self::RECOVERY_SESSION != 0
    }

    /// Proxy-service-used flag.
    pub fn proxy_service_used(self) -> bool {
        self.0 & Self::PROXY_SERVICE_USED != 0
    }

    /// A copy with `flag` set or cleared.
    pub fn with_flag(self, flag: u8, on: bool) -> Self {
        EpsemControl(if on { self.0 | flag } else { self.0 & !flag })
    }
}

impl fmt::Debug for EpsemControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpsemControl")
            .field("raw", &format_args!("0x{:02x}", self.0))
            .field("recovery", &self.recovery_session())
            .field("proxy", &self.proxy_service_used())
            .field("ed_class", &self.ed_class_included())
            .field("mode", &self.security_mode())
            .field("response", &self.response_control())
            .finish()
    }
}

/// A C12.19 table id (with its flag bits: standard / manufacturer / pending).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TableId(pub u16);

/// The C12.22 table-data checksum: two's complement of the byte sum.
pub fn checksum(data: &[u8]) -> u8 {
    data.iter()
        .fold(0u8, |a, &b| a.wrapping_add(b))
        .wrapping_neg()
}

/// A 20-byte Security-service password. Wiped on drop, compared in constant time, not printed.
#[derive(Clone)]
pub struct Password(pub [u8; 20]);

impl Drop for Password {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl PartialEq for Password {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Password {}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// The Registration request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// Node type bit field.
    pub node_type: u8,
    /// Connection type bit field.
    pub connection_type: u8,
    /// Device class (4 bytes).
    pub device_class: [u8; 4],
    /// AP title of the registering node.
    pub ap_title: ApTitle,
    /// Electronic serial number (a universal id element).
    pub electronic_serial_number: ApTitle,
    /// Native (lower layer) address (at most 255 bytes: one length octet).
    pub native_address: Vec<u8>,
    /// Registration period in seconds (24 bits).
    pub registration_period: u32,
    /// `<my-domain-pattern>` (length-prefixed, at most 255 bytes); on the wire exactly when
    /// bit 7 of `node_type` is set, which [`Epsem::emit`] enforces.
    pub my_domain_pattern: Option<Vec<u8>>,
}

/// Node-type bit saying a `<my-domain-pattern>` follows the registration period.
pub const NODE_TYPE_MY_DOMAIN_PATTERN: u8 = 0x80;

/// A request service.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// Identify (0x20).
    Identify,
    /// Terminate (0x21).
    Terminate,
    /// Disconnect (0x22).
    Disconnect,
    /// Full read (0x30).
    FullRead {
        /// Table.
        table: TableId,
    },
    /// Default read (0x3e).
    DefaultRead,
    /// Partial read by offset (0x3f).
    PartialReadOffset {
        /// Table.
        table: TableId,
        /// Offset (24 bits).
        offset: u32,
        /// Octet count.
        count: u16,
    },
    /// Partial read by index (0x31..=0x39: one to nine 16-bit indices).
    PartialReadIndex {
        /// Table.
        table: TableId,
        /// Indices (1..=9).
        index: Vec<u16>,
        /// Element count.
        count: u16,
    },
    /// Full write (0x40).
    FullWrite {
        /// Table.
        table: TableId,
        /// Table data.
        data: Vec<u8>,
    },
    /// Partial write by offset (0x4f).
    PartialWriteOffset {
        /// Table.
        table: TableId,
        /// Offset (24 bits).
        offset: u32,
        /// Data.
        data: Vec<u8>,
    },
    /// Partial write by index (0x41..=0x49).
    PartialWriteIndex {
        /// Table.
        table: TableId,
        /// Indices (1..=9).
        index: Vec<u16>,
        /// Data.
        data: Vec<u8>,
    },
    /// Logon (0x50).
    Logon {
        /// User id.
        user_id: u16,
        /// User name, 10 bytes.
        user: [u8; 10],
        /// Requested session idle timeout in seconds (C12.22 adds it to the C12.18 form).
        session_idle_timeout: Option<u16>,
    },
    /// Security (0x51).
    Security {
        /// Password, 20 bytes.
        password: Password,
        /// Optional user id.
        user_id: Option<u16>,
    },
    /// Logoff (0x52).
    Logoff,
    /// Wait (0x70).
    Wait {
        /// Seconds to extend the channel.
        seconds: u8,
    },
    /// Registration (0x27).
    Registration(Registration),
    /// Deregistration (0x24).
    Deregistration {
        /// Node to deregister.
        ap_title: ApTitle,
    },
    /// Resolve (0x25).
    Resolve {
        /// Node to resolve.
        ap_title: ApTitle,
    },
    /// Trace (0x26).
    Trace {
        /// Node to trace.
        ap_title: ApTitle,
    },
    /// Any other request code, body kept verbatim.
    Other {
        /// Code.
        code: RequestCode,
        /// Bytes after the code.
        data: Vec<u8>,
    },
}

/// A response: code and body (whose layout depends on the request it answers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Response code.
    pub code: ResponseCode,
    /// Bytes after the code.
    pub data: Vec<u8>,
}

impl Response {
    /// An `ok` response to a read carrying `<count> <data> <cksum>`.
    pub fn ok_with_table_data(data: &[u8]) -> Result<Self, Error> {
        let mut v = Vec::with_capacity(data.len() + 3);
        put_table_data(&mut v, data)?;
        Ok(Response {
            code: ResponseCode::OK,
            data: v,
        })
    }

    /// The table data of a read response, checksum verified.
    pub fn table_data(&self) -> Result<&[u8], Error> {
        let mut r = Reader::new(&self.data, 1);
        let d = read_table_data(&mut r, 0)?;
        r.finish()?;
        Ok(d)
    }
}

/// One EPSEM service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Service {
    /// A request (code 0x20..).
    Request(Request),
    /// A response (code 0x00..=0x1f).
    Response(Response),
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u24(out: &mut Vec<u8>, v: u32) -> Result<(), Error> {
    if v > 0xff_ffff {
        return Err(Error::TooLarge("24-bit field"));
    }
    out.extend_from_slice(&v.to_be_bytes()[1..]);
    Ok(())
}

fn put_table_data(out: &mut Vec<u8>, data: &[u8]) -> Result<(), Error> {
    let n = u16::try_from(data.len()).map_err(|_| Error::TooLarge("table data"))?;
    put_u16(out, n);
    out.extend_from_slice(data);
    out.push(checksum(data));
    Ok(())
}

fn read_table_data<'a>(r: &mut Reader<'a>, code: u8) -> Result<&'a [u8], Error> {
    let at = r.offset();
    let n = r.u16()?;
    let d = r
        .take(usize::from(n))
        .map_err(|_| Error::MalformedService { code, offset: at })?;
    let found = r.u8()?;
    let expected = checksum(d);
    if found != expected {
        return Err(Error::BadChecksum { expected, found });
    }
    Ok(d)
}

fn read_ap_title(r: &mut Reader<'_>) -> Result<ApTitle, Error> {
    // A universal-id-element: one OID / relative-OID TLV, as in the ACSE AP title.
    ApTitle::parse(r)
}

impl Request {
    /// The service code.
    pub fn code(&self) -> RequestCode {
        match self {
            Request::Identify => RequestCode::IDENTIFY,
            Request::Terminate => RequestCode::TERMINATE,
            Request::Disconnect => RequestCode::DISCONNECT,
            Request::FullRead { .. } => RequestCode::FULL_READ,
            Request::DefaultRead => RequestCode::DEFAULT_READ,
            Request::PartialReadOffset { .. } => RequestCode::PARTIAL_READ_OFFSET,
            Request::PartialReadIndex { index, .. } => RequestCode(0x30 + index.len().min(9) as u8),
            Request::FullWrite { .. } => RequestCode::FULL_WRITE,
            Request::PartialWriteOffset { .. } => RequestCode::PARTIAL_WRITE_OFFSET,
            Request::PartialWriteIndex { index, .. } => {
                RequestCode(0x40 + index.len().min(9) as u8)
            }
            Request::Logon { .. } => RequestCode::LOGON,
            Request::Security { .. } => RequestCode::SECURITY,
            Request::Logoff => RequestCode::LOGOFF,
            Request::Wait { .. } => RequestCode::WAIT,
            Request::Registration(_) => RequestCode::REGISTRATION,
            Request::Deregistration { .. } => RequestCode::DEREGISTRATION,
            Request::Resolve { .. } => RequestCode::RESOLVE,
            Request::Trace { .. } => RequestCode::TRACE,
            Request::Other { code, .. } => *code,
        }
    }

    fn parse(code: u8, r: &mut Reader<'_>, at: usize) -> Result<Self, Error> {
        let bad = Error::MalformedService { code, offset: at };
        let req = match code {
            0x20 => Request::Identify,
            0x21 => Request::Terminate,
            0x22 => Request::Disconnect,
            0x52 => Request::Logoff,
            0x3e => Request::DefaultRead,
            0x30 => Request::FullRead {
                table: TableId(r.u16()?),
            },
            0x3f => Request::PartialReadOffset {
                table: TableId(r.u16()?),
                offset: r.u24()?,
                count: r.u16()?,
            },
            0x31..=0x39 => {
                let table = TableId(r.u16()?);
                let n = usize::from(code - 0x30);
                let mut index = Vec::with_capacity(n);
                for _ in 0..n {
                    index.push(r.u16()?);
                }
                Request::PartialReadIndex {
                    table,
                    index,
                    count: r.u16()?,
                }
            }
            0x40 => {
                let table = TableId(r.u16()?);
                let data = read_table_data(r, code)?.to_vec();
                Request::FullWrite { table, data }
            }
            0x4f => {
                let table = TableId(r.u16()?);
                let offset = r.u24()?;
                let data = read_table_data(r, code)?.to_vec();
                Request::PartialWriteOffset {
                    table,
                    offset,
                    data,
                }
            }
            0x41..=0x49 => {
                let table = TableId(r.u16()?);
                let n = usize::from(code - 0x40);
                let mut index = Vec::with_capacity(n);
                for _ in 0..n {
                    index.push(r.u16()?);
                }
                let data = read_table_data(r, code)?.to_vec();
                Request::PartialWriteIndex { table, index, data }
            }
            0x50 => {
                let user_id = r.u16()?;
                let mut user = [0u8; 10];
                user.copy_from_slice(r.take(10)?);
                let session_idle_timeout = if r.is_empty() { None } else { Some(r.u16()?) };
                Request::Logon {
                    user_id,
                    user,
                    session_idle_timeout,
                }
            }
            0x51 => {
                let mut password = Password([0u8; 20]);
                password.0.copy_from_slice(r.take(20)?);
                let user_id = if r.is_empty() { None } else { Some(r.u16()?) };
                Request::Security { password, user_id }
            }
            0x70 => Request::Wait { seconds: r.u8()? },
            0x24 => Request::Deregistration {
                ap_title: read_ap_title(r)?,
            },
            0x25 => Request::Resolve {
                ap_title: read_ap_title(r)?,
            },
            0x26 => Request::Trace {
                ap_title: read_ap_title(r)?,
            },
            0x27 => {
                let node_type = r.u8()?;
                let connection_type = r.u8()?;
                let mut device_class = [0u8; 4];
                device_class.copy_from_slice(r.take(4)?);
                let ap_title = read_ap_title(r)?;
                let electronic_serial_number = read_ap_title(r)?;
                let n = r.u8()?;
                let native_address = r.take(usize::from(n))?.to_vec();
                let registration_period = r.u24()?;
                let my_domain_pattern = if node_type & NODE_TYPE_MY_DOMAIN_PATTERN != 0 {
                    let n = r.u8()?;
                    Some(r.take(usize::from(n))?.to_vec())
                } else {
                    None
                };
                Request::Registration(Registration {
                    node_type,
                    connection_type,
                    device_class,
                    ap_title,
                    electronic_serial_number,
                    native_address,
                    registration_period,
                    my_domain_pattern,
                })
            }
            _ => Request::Other {
                code: RequestCode(code),
                data: r.rest().to_vec(),
            },
        };
        if !r.is_empty() {
            return Err(bad);
        }
        Ok(req)
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let code = self.code();
        if matches!(
            self,
            Request::PartialReadIndex { index, .. } | Request::PartialWriteIndex { index, .. }
                if index.is_empty() || index.len() > 9
        ) {
            return Err(Error::TooLarge("index list (1..=9 entries)"));
        }
        if let Request::Other { code, .. } = self {
            if code.0 < 0x20 {
                return Err(Error::InvalidValue {
                    what: "request code below 0x20",
                    offset: 0,
                });
            }
        }
        out.push(code.0);
        match self {
            Request::Identify
            | Request::Terminate
            | Request::Disconnect
            | Request::Logoff
            | Request::DefaultRead => {}
            Request::FullRead { table } => put_u16(out, table.0),
            Request::PartialReadOffset {
                table,
                offset,
                count,
            } => {
                put_u16(out, table.0);
                put_u24(out, *offset)?;
                put_u16(out, *count);
            }
            Request::PartialReadIndex {
                table,
                index,
                count,
            } => {
                put_u16(out, table.0);
                for i in index {
                    put_u16(out, *i);
                }
                put_u16(out, *count);
            }
            Request::FullWrite { table, data } => {
                put_u16(out, table.0);
                put_table_data(out, data)?;
            }
            Request::PartialWriteOffset {
                table,
                offset,
                data,
            } => {
                put_u16(out, table.0);
                put_u24(out, *offset)?;
                put_table_data(out, data)?;
            }
            Request::PartialWriteIndex { table, index, data } => {
                put_u16(out, table.0);
                for i in index {
                    put_u16(out, *i);
                }
                put_table_data(out, data)?;
            }
            Request::Logon {
                user_id,
                user,
                session_idle_timeout,
            } => {
                put_u16(out, *user_id);
                out.extend_from_slice(user);
                if let Some(t) = session_idle_timeout {
                    put_u16(out, *t);
                }
            }
            Request::Security { password, user_id } => {
                out.extend_from_slice(&password.0);
                if let Some(u) = user_id {
                    put_u16(out, *u);
                }
            }
            Request::Wait { seconds } => out.push(*seconds),
            Request::Deregistration { ap_title }
            | Request::Resolve { ap_title }
            | Request::Trace { ap_title } => ap_title.emit(out)?,
            Request::Registration(reg) => {
                let flag = reg.my_domain_pattern.is_some();
                let node_type = if flag {
                    reg.node_type | NODE_TYPE_MY_DOMAIN_PATTERN
                } else {
                    reg.node_type & !NODE_TYPE_MY_DOMAIN_PATTERN
                };
                out.push(node_type);
                out.push(reg.connection_type);
                out.extend_from_slice(&reg.device_class);
                reg.ap_title.emit(out)?;
                reg.electronic_serial_number.emit(out)?;
                let n = u8::try_from(reg.native_address.len())
                    .map_err(|_| Error::TooLarge("native address"))?;
                out.push(n);
                out.extend_from_slice(&reg.native_address);
                put_u24(out, reg.registration_period)?;
                if let Some(p) = &reg.my_domain_pattern {
                    let n =
                        u8::try_from(p.len()).map_err(|_| Error::TooLarge("my-domain-pattern"))?;
                    out.push(n);
                    out.extend_from_slice(p);
                }
            }
            Request::Other { data, .. } => out.extend_from_slice(data),
        }
        Ok(())
    }
}

impl Service {
    fn parse(body: &[u8], at: usize) -> Result<Self, Error> {
        let mut r = Reader::new(body, at);
        let code = r.u8()?;
        if code < 0x20 {
            Ok(Service::Response(Response {
                code: ResponseCode(code),
                data: r.rest().to_vec(),
            }))
        } else {
            Ok(Service::Request(Request::parse(code, &mut r, at)?))
        }
    }

    fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            Service::Request(q) => q.emit(out),
            Service::Response(p) => {
                if p.code.0 >= 0x20 {
                    return Err(Error::InvalidValue {
                        what: "response code above 0x1f",
                        offset: 0,
                    });
                }
                out.push(p.code.0);
                out.extend_from_slice(&p.data);
                Ok(())
            }
        }
    }
}

/// A plaintext EPSEM: control byte, optional ed_class, one or more services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Epsem {
    /// Control byte. Its ed_class flag is kept consistent with `ed_class` by [`Epsem::emit`].
    pub control: EpsemControl,
    /// Optional 4-byte end-device class.
    pub ed_class: Option<[u8; 4]>,
    /// The services, at least one.
    pub services: Vec<Service>,
    /// Whether the service list ends with a zero `<service-length>` octet. IEEE 1703-2012
    /// readers (e.g. the INL/ICSNPP parser) expect it; C12Adapter and the EAX′ paper vectors
    /// omit it. Accepted either way and reproduced as received.
    pub end_marker: bool,
}

impl Epsem {
    /// Parses a plaintext EPSEM (no MAC).
    pub fn parse(buf: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(buf, 0);
        let control = EpsemControl(r.u8()?);
        let ed_class = if control.ed_class_included() {
            let mut c = [0u8; 4];
            c.copy_from_slice(r.take(4)?);
            Some(c)
        } else {
            None
        };
        let mut services = Vec::new();
        let mut end_marker = false;
        while !r.is_empty() {
            let len = r.length()?;
            let at = r.offset();
            if len == 0 {
                if r.is_empty() && !services.is_empty() {
                    end_marker = true;
                    break;
                }
                return Err(Error::MalformedService {
                    code: 0,
                    offset: at,
                });
            }
            let body = r.take(len)?;
            services.push(Service::parse(body, at)?);
        }
        if services.is_empty() {
            return Err(Error::MissingElement("EPSEM service"));
        }
        Ok(Epsem {
            control,
            ed_class,
            services,
            end_marker,
        })
    }

    /// Appends the encoding.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.services.is_empty() {
            return Err(Error::MissingElement("EPSEM service"));
        }
        let control = self
            .control
            .with_flag(EpsemControl::ED_CLASS_INCLUDED, self.ed_class.is_some());
        out.push(control.0);
        if let Some(c) = &self.ed_class {
            out.extend_from_slice(c);
        }
        let mut one = Vec::new();
        for s in &self.services {
            one.clear();
            s.emit(&mut one)?;
            put_length(out, one.len())?;
            out.extend_from_slice(&one);
        }
        if self.end_marker {
            out.push(0);
        }
        Ok(())
    }

    /// The encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut v = Vec::new();
        self.emit(&mut v)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper1_plaintext_is_a_full_write_with_checksum() {
        // ed_class "TEMP", then Full Write ST7 (procedure table), 5 data bytes, checksum e4.
        let mut body = vec![0x9a];
        body.extend(hex::decode("54454d500b40000700051a00000200e4").unwrap());
        let e = Epsem::parse(&body).unwrap();
        assert_eq!(e.control.security_mode(), SecurityMode::CIPHERTEXT_AUTH);
        assert_eq!(e.control.response_control(), ResponseControl::NEVER);
        assert_eq!(e.ed_class, Some(*b"TEMP"));
        assert_eq!(
            e.services,
            vec![Service::Request(Request::FullWrite {
                table: TableId(7),
                data: vec![0x1a, 0, 0, 2, 0],
            })]
        );
        assert_eq!(e.to_bytes().unwrap(), body);
    }

    #[test]
    fn end_marker_is_optional_and_reproduced() {
        let with = hex::decode("800330000100").unwrap();
        let e = Epsem::parse(&with).unwrap();
        assert!(e.end_marker);
        assert_eq!(e.to_bytes().unwrap(), with);
        let without = Epsem::parse(&with[..5]).unwrap();
        assert!(!without.end_marker);
        assert_eq!(without.services, e.services);
        // A zero length anywhere but at the very end, or with no service before it, is refused.
        assert!(Epsem::parse(&hex::decode("80000330000100").unwrap()).is_err());
        assert!(Epsem::parse(&hex::decode("8003300001000100").unwrap()).is_err());
        assert!(Epsem::parse(&[0x80, 0x00]).is_err());
    }

    #[test]
    fn bad_checksum_is_reported() {
        let body = hex::decode("840b40000700051a00000200e5").unwrap();
        assert_eq!(
            Epsem::parse(&body),
            Err(Error::BadChecksum {
                expected: 0xe4,
                found: 0xe5
            })
        );
    }

    #[test]
    fn unknown_codes_round_trip() {
        let body = hex::decode("800377aabb021f01").unwrap();
        let e = Epsem::parse(&body).unwrap();
        assert_eq!(
            e.services[0],
            Service::Request(Request::Other {
                code: RequestCode(0x77),
                data: vec![0xaa, 0xbb]
            })
        );
        assert_eq!(
            e.services[1],
            Service::Response(Response {
                code: ResponseCode(0x1f),
                data: vec![1]
            })
        );
        assert_eq!(format!("{:?}", ResponseCode(0x1f)), "ResponseCode(0x1f)");
        assert_eq!(format!("{:?}", ResponseCode::ISSS), "isss");
        assert_eq!(e.to_bytes().unwrap(), body);
    }
}
