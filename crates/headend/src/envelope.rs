//! Building the ACSE envelope both ends put around an EPSEM.

use gridguard_c1222::{AcseApdu, ApTitle, Integer};

/// An APDU from `calling` to `called` carrying `epsem` (plaintext; the association seals it).
/// `answers` is the calling AP invocation id of the request this message answers, if any.
pub(crate) fn envelope(
    called: &ApTitle,
    calling: &ApTitle,
    invocation: u32,
    answers: Option<&Integer>,
    epsem: Vec<u8>,
) -> AcseApdu {
    let mut apdu = AcseApdu::new(epsem);
    apdu.called_ap_title = Some(called.clone());
    apdu.calling_ap_title = Some(calling.clone());
    apdu.calling_ap_invocation_id = Some(Integer::from_u32(invocation));
    apdu.called_ap_invocation_id = answers.cloned();
    apdu
}

/// Security mode and response control of an APDU's EPSEM control byte, without decrypting.
pub(crate) fn control_of(apdu: &AcseApdu) -> Option<gridguard_c1222::EpsemControl> {
    apdu.user_information
        .epsem
        .first()
        .map(|b| gridguard_c1222::EpsemControl(*b))
}
