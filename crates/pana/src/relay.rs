//! PANA relay (RFC 6345): a PANA Relay Element (PRE) carries the messages of PaCs that
//! cannot reach the PAA themselves (meters behind a neighbourhood collector) in PANA-Relay
//! (PRY) messages: the PaC's address in a PaC-Information AVP, its message whole in a
//! Relayed-Message AVP. The PAA answers with a PRY to the PRE, which unwraps it and sends the
//! inner message to the PaC.
//!
//! PaC-Information is encoded as the 16-octet address (an IPv4 address as an IPv4-mapped IPv6
//! address) followed by the 2-octet UDP port. On receipt the 6-octet form (IPv4 address and
//! port, as some implementations send it) is accepted too.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::avp::{Avp, AvpCode};
use crate::error::Error;
use crate::message::{Flags, Message, MessageType, HEADER_LEN};

/// Where a PaC is reached: on its own address, or through a PRE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacAddress {
    /// The PaC talks to the PAA directly.
    Direct(SocketAddr),
    /// The PaC's messages come wrapped in PRYs from `relay`.
    Relayed {
        /// The PRE's address (where the PAA sends its PRYs).
        relay: SocketAddr,
        /// The PaC's own address, as the PRE reports it.
        pac: SocketAddr,
    },
}

impl PacAddress {
    /// The PaC's own address.
    pub fn pac(&self) -> SocketAddr {
        match *self {
            PacAddress::Direct(a) | PacAddress::Relayed { pac: a, .. } => a,
        }
    }
}

/// A PANA-Relay message taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relayed {
    /// The PaC the inner message is from or for.
    pub pac: SocketAddr,
    /// The inner PANA message, as it travels between the PRE and the PaC.
    pub message: Vec<u8>,
}

/// Whether a datagram is a PANA-Relay message (by its Message Type field alone).
pub fn is_relay(datagram: &[u8]) -> bool {
    datagram.get(6..8) == Some(&MessageType::RELAY.0.to_be_bytes()[..])
}

/// A PRY carrying `message` for or from the PaC at `pac` (Session Identifier and Sequence
/// Number zero, no flags).
///
/// # Errors
/// [`Error::TooLong`] when the PRY would not fit the 16-bit Message Length.
pub fn wrap(pac: SocketAddr, message: &[u8]) -> Result<Vec<u8>, Error> {
    Message::new(MessageType::RELAY, Flags::NONE, 0, 0)
        .with(Avp::octets(AvpCode::PAC_INFORMATION, &pac_information(pac)))
        .with(Avp::octets(AvpCode::RELAYED_MESSAGE, message))
        .emit()
}

/// Takes a PRY apart.
///
/// # Errors
/// When the datagram is not a well-formed PRY: not a PANA message, another message type, a
/// non-zero Session Identifier or Sequence Number, a missing or malformed PaC-Information, a
/// missing Relayed-Message or one too short to be a PANA message.
pub fn unwrap(datagram: &[u8]) -> Result<Relayed, Error> {
    let msg = Message::parse(datagram)?;
    if msg.msg_type != MessageType::RELAY || msg.session_id != 0 || msg.seq != 0 {
        return Err(Error::NotRelay);
    }
    let info = msg
        .find(AvpCode::PAC_INFORMATION)
        .ok_or(Error::MissingAvp(AvpCode::PAC_INFORMATION))?;
    let pac = parse_pac_information(&info.value)
        .ok_or(Error::InvalidAvpValue(AvpCode::PAC_INFORMATION))?;
    let inner = msg
        .find(AvpCode::RELAYED_MESSAGE)
        .ok_or(Error::MissingAvp(AvpCode::RELAYED_MESSAGE))?;
    if inner.value.len() < HEADER_LEN {
        return Err(Error::InvalidAvpValue(AvpCode::RELAYED_MESSAGE));
    }
    Ok(Relayed {
        pac,
        message: inner.value.clone(),
    })
}

fn pac_information(pac: SocketAddr) -> [u8; 18] {
    let v6 = match pac.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let mut out = [0u8; 18];
    out[..16].copy_from_slice(&v6.octets());
    out[16..].copy_from_slice(&pac.port().to_be_bytes());
    out
}

fn parse_pac_information(value: &[u8]) -> Option<SocketAddr> {
    match value.len() {
        18 => {
            let addr: [u8; 16] = value.get(..16)?.try_into().ok()?;
            let port = u16::from_be_bytes(value.get(16..18)?.try_into().ok()?);
            let v6 = Ipv6Addr::from(addr);
            let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
            Some(SocketAddr::new(ip, port))
        }
        6 => {
            let addr: [u8; 4] = value.get(..4)?.try_into().ok()?;
            let port = u16::from_be_bytes(value.get(4..6)?.try_into().ok()?);
            Some(SocketAddr::from((addr, port)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use proptest::prelude::*;

    fn pci() -> Vec<u8> {
        Message::new(MessageType::CLIENT_INITIATION, Flags::NONE, 0, 0)
            .emit()
            .unwrap()
    }

    #[test]
    fn wraps_and_unwraps_v4_and_v6() {
        for pac in [
            SocketAddr::from(([10, 1, 2, 3], 716)),
            SocketAddr::from(([0xfe80, 0, 0, 0, 0, 0, 0, 0x42], 49_152)),
        ] {
            let pry = wrap(pac, &pci()).unwrap();
            assert!(is_relay(&pry));
            assert!(!is_relay(&pci()));
            let r = unwrap(&pry).unwrap();
            assert_eq!(r.pac, pac);
            assert_eq!(r.message, pci());
        }
    }

    #[test]
    fn wire_layout() {
        let pry = wrap(SocketAddr::from(([192, 0, 2, 7], 716)), &pci()).unwrap();
        // Header: reserved, length, flags 0, type 5, session 0, sequence 0.
        assert_eq!(&pry[4..16], &[0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]);
        // PaC-Information: code 10, no flags, length 18, reserved, ::ffff:192.0.2.7, port.
        assert_eq!(&pry[16..24], &[0, 10, 0, 0, 0, 18, 0, 0]);
        assert_eq!(&pry[24..34], &[0; 10]);
        assert_eq!(&pry[34..42], &[0xff, 0xff, 192, 0, 2, 7, 0x02, 0xcc]);
        // Padding to 4 octets, then Relayed-Message (code 11) holding the PCI.
        assert_eq!(&pry[42..44], &[0, 0]);
        assert_eq!(&pry[44..50], &[0, 11, 0, 0, 0, 16]);
        assert_eq!(&pry[52..], &pci()[..]);
    }

    #[test]
    fn accepts_the_short_ipv4_form() {
        let pry = Message::new(MessageType::RELAY, Flags::NONE, 0, 0)
            .with(Avp::octets(
                AvpCode::PAC_INFORMATION,
                &[10, 0, 0, 9, 0x02, 0xcc],
            ))
            .with(Avp::octets(AvpCode::RELAYED_MESSAGE, &pci()))
            .emit()
            .unwrap();
        assert_eq!(
            unwrap(&pry).unwrap().pac,
            SocketAddr::from(([10, 0, 0, 9], 716))
        );
    }

    #[test]
    fn refuses_what_is_not_a_pry() {
        assert_eq!(unwrap(&pci()), Err(Error::NotRelay));
        let no_info = Message::new(MessageType::RELAY, Flags::NONE, 0, 0)
            .with(Avp::octets(AvpCode::RELAYED_MESSAGE, &pci()))
            .emit()
            .unwrap();
        assert_eq!(
            unwrap(&no_info),
            Err(Error::MissingAvp(AvpCode::PAC_INFORMATION))
        );
        let bad_info = Message::new(MessageType::RELAY, Flags::NONE, 0, 0)
            .with(Avp::octets(AvpCode::PAC_INFORMATION, &[1, 2, 3]))
            .with(Avp::octets(AvpCode::RELAYED_MESSAGE, &pci()))
            .emit()
            .unwrap();
        assert!(unwrap(&bad_info).is_err());
        let short_inner = Message::new(MessageType::RELAY, Flags::NONE, 0, 0)
            .with(Avp::octets(AvpCode::PAC_INFORMATION, &[10, 0, 0, 9, 0, 1]))
            .with(Avp::octets(AvpCode::RELAYED_MESSAGE, &[0; 4]))
            .emit()
            .unwrap();
        assert!(unwrap(&short_inner).is_err());
        let with_session = Message::new(MessageType::RELAY, Flags::NONE, 7, 0)
            .emit()
            .unwrap();
        assert_eq!(unwrap(&with_session), Err(Error::NotRelay));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = is_relay(&bytes);
            let _ = unwrap(&bytes);
        }

        #[test]
        fn round_trips(a in any::<[u8; 16]>(), port in any::<u16>(),
                       inner in proptest::collection::vec(any::<u8>(), 16..300)) {
            let v6 = Ipv6Addr::from(a);
            let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
            let pac = SocketAddr::new(ip, port);
            let r = unwrap(&wrap(pac, &inner).unwrap()).unwrap();
            prop_assert_eq!(r.pac, pac);
            prop_assert_eq!(r.message, inner);
        }
    }
}
