//! ACSE and EPSEM codec behaviour beyond the vectors: AP title forms, EXTERNAL direct
//! reference, unknown authentication values, relative-title canonification, service layouts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use gridguard_c1222::security::{canonical_cleartext, open_apdu, seal_apdu, CanonOptions};
use gridguard_c1222::{
    AcseApdu, ApTitle, AuthenticationValue, EaxPrime, Epsem, EpsemControl, Error, Integer,
    ObjectId, RelativeOid, Request, Response, ResponseCode, ResponseControl, SecurityMode, Service,
    TableId,
};

fn c1222_root() -> ObjectId {
    ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22]).unwrap()
}

#[test]
fn ap_title_forms_round_trip() {
    for (title, tag) in [
        (ApTitle::Absolute(c1222_root()), 0x06u8),
        (
            ApTitle::Relative(RelativeOid::from_arcs(&[0, 17]).unwrap()),
            0x0d,
        ),
        (
            ApTitle::RelativeContextTagged(RelativeOid::from_arcs(&[0, 17]).unwrap()),
            0x80,
        ),
    ] {
        let mut a = AcseApdu::new(vec![0x80, 0x01, 0x20]);
        a.called_ap_title = Some(title.clone());
        let bytes = a.to_bytes().unwrap();
        assert_eq!(bytes[2], 0xa2);
        assert_eq!(bytes[4], tag);
        let back = AcseApdu::parse(&bytes).unwrap();
        assert_eq!(back.called_ap_title, Some(title));
        assert_eq!(back.to_bytes().unwrap(), bytes);
    }
    // An AP title wrapped in something other than an OID is refused.
    let bad = hex::decode("600ca203020101be0528038101 80".replace(' ', "")).unwrap();
    assert!(matches!(
        AcseApdu::parse(&bad),
        Err(Error::UnexpectedTag { found: 0x02, .. })
    ));
}

#[test]
fn every_element_round_trips_in_wire_order() {
    let mut a = AcseApdu::new(vec![0x80, 0x01, 0x20]);
    a.application_context = Some(c1222_root());
    a.called_ap_title = Some(ApTitle::Absolute(c1222_root()));
    a.called_ae_qualifier = Some(Integer::from_u32(1));
    a.called_ap_invocation_id = Some(Integer::from_u32(2));
    a.called_ae_invocation_id = Some(Integer::from_u32(3));
    a.calling_ap_title = Some(ApTitle::Relative(RelativeOid::from_arcs(&[5]).unwrap()));
    a.calling_ae_qualifier = Some(Integer::from_u32(4));
    a.calling_ap_invocation_id = Some(Integer::from_u32(0x1234_5678));
    a.calling_ae_invocation_id = Some(Integer::from_u32(6));
    a.mechanism_name = Some(ObjectId::from_arcs(&[2, 16, 124, 113620, 1, 22, 2, 1]).unwrap());
    a.calling_authentication_value = Some(AuthenticationValue::C1222 {
        key_id: Some(1),
        iv: Some([1, 2, 3, 4]),
    });
    a.user_information.direct_reference = Some(c1222_root());
    let bytes = a.to_bytes().unwrap();
    let tags: Vec<u8> = a.element_tags();
    assert_eq!(
        tags,
        [0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0x8b, 0xac, 0xbe]
    );
    let back = AcseApdu::parse(&bytes).unwrap();
    assert_eq!(back.application_context, a.application_context);
    assert_eq!(back.called_ae_qualifier, a.called_ae_qualifier);
    assert_eq!(back.called_ae_invocation_id, a.called_ae_invocation_id);
    assert_eq!(back.calling_ap_title, a.calling_ap_title);
    assert_eq!(back.calling_ae_invocation_id, a.calling_ae_invocation_id);
    assert_eq!(back.mechanism_name, a.mechanism_name);
    assert_eq!(back.key_id_and_iv(), (Some(1), Some([1, 2, 3, 4])));
    assert_eq!(back.user_information, a.user_information);
    assert_eq!(back.to_bytes().unwrap(), bytes);

    // A different wire order (user information first) is preserved on re-emit.
    let ui = {
        let mut v = Vec::new();
        a.emit_element(0xbe, &mut v).unwrap();
        v
    };
    let inv = {
        let mut v = Vec::new();
        a.emit_element(0xa8, &mut v).unwrap();
        v
    };
    let mut content = ui.clone();
    content.extend_from_slice(&inv);
    let mut swapped = vec![0x60, content.len() as u8];
    swapped.extend_from_slice(&content);
    let p = AcseApdu::parse(&swapped).unwrap();
    assert_eq!(p.element_tags(), [0xbe, 0xa8]);
    assert_eq!(p.to_bytes().unwrap(), swapped);
}

#[test]
fn other_authentication_values_are_kept_verbatim() {
    // A C12.21-style value: [12] { [2] { [0] { [0] { 80 03 .. } } } } is not the C12.22 form.
    let ac_content = hex::decode("a209a007a0058003010203").unwrap();
    let mut a = AcseApdu::new(vec![0x80, 0x01, 0x20]);
    a.calling_authentication_value = Some(AuthenticationValue::Other(ac_content.clone()));
    let bytes = a.to_bytes().unwrap();
    let back = AcseApdu::parse(&bytes).unwrap();
    assert_eq!(
        back.calling_authentication_value,
        Some(AuthenticationValue::Other(ac_content))
    );
    assert_eq!(back.key_id_and_iv(), (None, None));
    assert_eq!(back.to_bytes().unwrap(), bytes);
}

#[test]
fn relative_titles_are_canonified_against_the_base_oid() {
    let base = c1222_root();
    let rel = RelativeOid::from_arcs(&[0, 123]).unwrap();
    let make = |called: ApTitle| {
        let mut a = AcseApdu::new(vec![0x84, 0x03, 0x30, 0x00, 0x05]);
        a.called_ap_title = Some(called.clone());
        a.calling_ap_title = Some(called);
        a.calling_ap_invocation_id = Some(Integer::from_u32(9));
        a.calling_authentication_value = Some(AuthenticationValue::C1222 {
            key_id: Some(0),
            iv: Some([9, 9, 9, 9]),
        });
        a
    };
    let opts = CanonOptions {
        base_oid: Some(base.clone()),
        ..CanonOptions::default()
    };
    let absolute = make(ApTitle::Absolute(base.join(&rel)));
    for relative in [
        make(ApTitle::Relative(rel.clone())),
        make(ApTitle::RelativeContextTagged(rel.clone())),
    ] {
        assert_eq!(
            canonical_cleartext(&relative, 9, &opts).unwrap(),
            canonical_cleartext(&absolute, 9, &opts).unwrap()
        );
        // Without a base the relative form is authenticated as sent, so the MACs differ.
        assert_ne!(
            canonical_cleartext(&relative, 9, &CanonOptions::default()).unwrap(),
            canonical_cleartext(&absolute, 9, &CanonOptions::default()).unwrap()
        );
        // A message sealed with relative titles verifies as such.
        let cipher = EaxPrime::new(&[1; 16]);
        let mut m = relative.clone();
        seal_apdu(&mut m, &cipher, &opts).unwrap();
        let mut r = AcseApdu::parse(&m.to_bytes().unwrap()).unwrap();
        open_apdu(&mut r, &cipher, &opts).unwrap();
        assert_eq!(r.user_information.epsem, relative.user_information.epsem);
    }
}

#[test]
fn protected_messages_need_key_id_iv_and_mandatory_elements() {
    let cipher = EaxPrime::new(&[1; 16]);
    let opts = CanonOptions::default();
    let mut a = AcseApdu::new(vec![0x88, 0x01, 0x20]);
    assert_eq!(
        seal_apdu(&mut a, &cipher, &opts),
        Err(Error::MissingElement("called AP title"))
    );
    a.called_ap_title = Some(ApTitle::Absolute(c1222_root()));
    assert_eq!(
        seal_apdu(&mut a, &cipher, &opts),
        Err(Error::MissingElement("calling AP invocation id"))
    );
    a.calling_ap_invocation_id = Some(Integer::from_u32(1));
    assert_eq!(
        seal_apdu(&mut a, &cipher, &opts),
        Err(Error::MissingKeyIdOrIv)
    );
    a.calling_authentication_value = Some(AuthenticationValue::C1222 {
        key_id: Some(0),
        iv: Some([0; 4]),
    });
    let before = a.clone();
    seal_apdu(&mut a, &cipher, &opts).unwrap();
    assert_eq!(a.user_information.epsem.len(), 3 + 4);
    // The single service byte is encrypted.
    assert_ne!(a.user_information.epsem[2], 0x20);
    // Mode 0 seals to itself.
    let mut clear = before.clone();
    clear.user_information.epsem[0] = 0x80;
    let snapshot = clear.clone();
    seal_apdu(&mut clear, &cipher, &opts).unwrap();
    assert_eq!(clear, snapshot);
    // A failed open leaves the APDU untouched.
    let mut tampered = a.clone();
    tampered.calling_ap_invocation_id = Some(Integer::from_u32(2));
    let snap = tampered.clone();
    assert_eq!(
        open_apdu(&mut tampered, &cipher, &opts),
        Err(Error::AuthenticationFailed)
    );
    assert_eq!(tampered, snap);
}

#[test]
fn service_layouts() {
    let e = Epsem {
        control: EpsemControl::new(SecurityMode::CLEARTEXT, ResponseControl::ALWAYS),
        ed_class: None,
        end_marker: false,
        services: vec![
            Service::Request(Request::PartialReadOffset {
                table: TableId(0x0840),
                offset: 0x01_0203,
                count: 0x0405,
            }),
            Service::Request(Request::Wait { seconds: 30 }),
            Service::Response(Response::ok_with_table_data(&[1, 2, 3]).unwrap()),
        ],
    };
    let bytes = e.to_bytes().unwrap();
    assert_eq!(
        hex::encode(&bytes),
        // ctrl | 08 3f 0840 010203 0405 | 02 70 1e | 07 00 0003 010203 fa
        "80083f08400102030405".to_owned() + "02701e" + "070000030102" + "03fa"
    );
    let back = Epsem::parse(&bytes).unwrap();
    assert_eq!(back, e);
    match &back.services[2] {
        Service::Response(r) => {
            assert_eq!(r.code, ResponseCode::OK);
            assert_eq!(r.table_data().unwrap(), &[1, 2, 3]);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Long service: a 200-byte write uses the two-octet length form.
    let long = Epsem {
        control: EpsemControl(0x80),
        ed_class: None,
        end_marker: false,
        services: vec![Service::Request(Request::FullWrite {
            table: TableId(1),
            data: vec![7; 200],
        })],
    };
    let b = long.to_bytes().unwrap();
    assert_eq!(&b[1..3], &[0x81, 1 + 2 + 2 + 200 + 1]);
    assert_eq!(Epsem::parse(&b).unwrap(), long);
    // Offsets wider than 24 bits and empty EPSEMs are refused.
    let wide = Epsem {
        control: EpsemControl(0x80),
        ed_class: None,
        end_marker: false,
        services: vec![Service::Request(Request::PartialReadOffset {
            table: TableId(1),
            offset: 0x100_0000,
            count: 1,
        })],
    };
    assert_eq!(wide.to_bytes(), Err(Error::TooLarge("24-bit field")));
    assert_eq!(
        Epsem::parse(&[0x80]),
        Err(Error::MissingElement("EPSEM service"))
    );
}
