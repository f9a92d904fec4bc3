//! In-process EAP-PSK authentications (peer and authenticator, no sockets), with the raw AES and
//! CMAC work of one authentication measured alongside as the anchor.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

fn main() {}
