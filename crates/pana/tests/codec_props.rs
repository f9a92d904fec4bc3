//! Garbage-in and round-trip properties of the PANA codec.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // test helpers

use gridguard_pana::message::auth_value_range;
use gridguard_pana::{Avp, AvpCode, AvpFlags, Error, Flags, Message, MessageType};
use proptest::prelude::*;

fn avp_strategy() -> impl Strategy<Value = Avp> {
    prop_oneof![
        // Known Unsigned32 AVPs.
        (
            prop::sample::select(vec![3u16, 4, 6, 7, 8, 9]),
            any::<u32>()
        )
            .prop_map(|(c, v)| Avp::u32(AvpCode(c), v)),
        // Known octet-string AVPs.
        (
            prop::sample::select(vec![1u16, 2, 5]),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(c, v)| Avp::octets(AvpCode(c), &v)),
        // Unknown or vendor AVPs without the M bit, with odd reserved fields.
        (
            10u16..,
            any::<u16>(),
            any::<u16>(),
            prop::option::of(any::<u32>()),
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(code, flags, reserved, vendor_id, value)| Avp {
                code: AvpCode(code),
                flags: AvpFlags(
                    flags & !AvpFlags::MANDATORY.0 & !AvpFlags::VENDOR.0
                        | if vendor_id.is_some() {
                            AvpFlags::VENDOR.0
                        } else {
                            0
                        }
                ),
                reserved,
                vendor_id,
                value,
            }),
    ]
}

fn message_strategy() -> impl Strategy<Value = Message> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(avp_strategy(), 0..8),
    )
        .prop_map(|(reserved, flags, t, session_id, seq, avps)| Message {
            reserved,
            flags: Flags(flags),
            msg_type: MessageType(t),
            session_id,
            seq,
            avps,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(m) = Message::parse(&bytes) {
            let again = Message::parse(&m.emit().unwrap()).unwrap();
            prop_assert_eq!(again, m);
        }
        let _ = auth_value_range(&bytes);
    }

    #[test]
    fn structured_messages_round_trip_byte_for_byte(m in message_strategy()) {
        let bytes = m.emit().unwrap();
        prop_assert_eq!(bytes.len(), m.buffer_len());
        let parsed = Message::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &m);
        prop_assert_eq!(parsed.emit().unwrap(), bytes);
    }

    #[test]
    fn mutated_messages_give_errors_or_consistent_messages(
        m in message_strategy(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = m.emit().unwrap();
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        match Message::parse(&bytes) {
            Ok(p) => {
                let again = Message::parse(&p.emit().unwrap()).unwrap();
                prop_assert_eq!(again, p);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

#[test]
fn unknown_avp_without_m_is_kept_with_m_is_an_error() {
    let base = Message::new(MessageType::NOTIFICATION, Flags::REQUEST, 7, 9);
    let unknown = Avp {
        code: AvpCode(77),
        flags: AvpFlags(0),
        reserved: 0,
        vendor_id: None,
        value: vec![1, 2, 3],
    };
    let m = base.clone().with(unknown.clone());
    let bytes = m.emit().unwrap();
    assert_eq!(bytes.len(), 16 + 8 + 4, "three value bytes padded to four");
    let parsed = Message::parse(&bytes).unwrap();
    assert_eq!(parsed.avps, vec![unknown.clone()]);
    assert!(
        parsed.find(AvpCode(77)).is_none(),
        "unknown AVPs are not 'found'"
    );

    let mandatory = Avp {
        flags: AvpFlags::MANDATORY,
        ..unknown.clone()
    };
    let bytes = base.clone().with(mandatory).emit().unwrap();
    assert_eq!(
        Message::parse(&bytes),
        Err(Error::UnsupportedMandatoryAvp {
            code: 77,
            vendor_id: None,
            offset: 16
        })
    );

    // A vendor AVP with a known code is not the IETF AVP; with M set it is refused too.
    let vendor = Avp {
        code: AvpCode::KEY_ID,
        flags: AvpFlags::MANDATORY,
        reserved: 0,
        vendor_id: Some(4_0000),
        value: vec![0; 7],
    };
    let bytes = base.clone().with(vendor).emit().unwrap();
    assert!(matches!(
        Message::parse(&bytes),
        Err(Error::UnsupportedMandatoryAvp {
            code: 4,
            vendor_id: Some(40000),
            ..
        })
    ));

    // A known AVP with the M bit is fine.
    let known = Avp {
        flags: AvpFlags::MANDATORY,
        ..Avp::u32(AvpCode::KEY_ID, 5)
    };
    let parsed = Message::parse(&base.with(known).emit().unwrap()).unwrap();
    assert_eq!(parsed.key_id(), Some(5));
}

#[test]
fn malformed_inputs_report_what_and_where() {
    assert!(matches!(
        Message::parse(&[0; 10]),
        Err(Error::Truncated {
            offset: 0,
            needed: 6
        })
    ));
    let mut pci = Message::new(MessageType::CLIENT_INITIATION, Flags::NONE, 0, 0)
        .emit()
        .unwrap();
    pci.push(0);
    assert!(matches!(
        Message::parse(&pci),
        Err(Error::LengthMismatch {
            field: 16,
            actual: 17
        })
    ));
    // Key-Id must be exactly four bytes.
    let bad = Message::new(MessageType::AUTH, Flags::NONE, 1, 1)
        .with(Avp::octets(AvpCode::KEY_ID, &[1, 2]))
        .emit()
        .unwrap();
    assert!(matches!(
        Message::parse(&bad),
        Err(Error::InvalidAvpLength {
            code: AvpCode::KEY_ID,
            offset: 16,
            len: 2
        })
    ));
    // An AVP whose length runs past the end.
    let mut over = Message::new(MessageType::AUTH, Flags::NONE, 1, 1)
        .with(Avp::octets(AvpCode::NONCE, &[9; 8]))
        .emit()
        .unwrap();
    over[21] = 200;
    assert!(matches!(
        Message::parse(&over),
        Err(Error::Truncated { .. })
    ));
}
