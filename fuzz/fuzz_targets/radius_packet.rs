//! Fuzz target for the RADIUS codec and the client/server receive paths.
//!
//! Needs the package `gridguard-radius` (no default features required).
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use gridguard_radius::{
    auth, mppe, AccessRequest, Client, ClientConfig, Code, Packet, Reply, Server, ServerConfig,
    VendorSpecific,
};
use libfuzzer_sys::fuzz_target;

struct FixedRng(u64);

impl rand_core::RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
// Deterministic on purpose: the fuzzer needs reproducible runs, not secrecy.
impl rand_core::CryptoRng for FixedRng {}

fuzz_target!(|data: &[u8]| {
    // Codec: whatever parses must re-emit to the bytes its Length field covers.
    if let Ok(p) = Packet::parse(data) {
        let bytes = p.to_bytes().expect("a parsed packet re-encodes");
        assert_eq!(Some(&bytes[..]), data.get(..bytes.len()));
        assert_eq!(Packet::parse(&bytes).as_ref(), Ok(&p));
        let _ = p.eap_message();
        for a in &p.attributes {
            if let Some(Ok(v)) = VendorSpecific::from_attribute(a) {
                let _ = v.to_attribute();
            }
        }
        let _ = mppe::extract_mppe_keys(&p, b"secret", &[0; 16]);
    }
    let _ = auth::find_message_authenticator(data);
    let _ = auth::verify_message_authenticator(data, &[0; 16], b"secret", true);
    let _ = mppe::decrypt_key(data, b"secret", &[0; 16]);

    // Client: a request in flight, then the fuzz input as its response.
    let now = Instant::now();
    let mut rng = FixedRng(1);
    let mut client = Client::new(&b"secret"[..], ClientConfig::default());
    if client.start(Code::ACCESS_REQUEST, Vec::new(), now, &mut rng).is_ok() {
        let _ = client.poll_transmit();
        let _ = client.handle_datagram(data, now);
    }

    // Server: the fuzz input as a request.
    let handler = |_: &AccessRequest, _: Instant| Reply::challenge(&[1, 1, 0, 4], b"s");
    let mut server = Server::with_rng(&b"secret"[..], handler, ServerConfig::default(), FixedRng(2));
    let from = SocketAddr::from((Ipv4Addr::LOCALHOST, 1812));
    let _ = server.handle_datagram(from, data, now);
});
