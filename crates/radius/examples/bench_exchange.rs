//! Throughput of the sans-IO cores, next to an anchor measured in the same run.
//!
//! Figure: full in-memory exchanges per second — `Client::start` + `poll_transmit`,
//! `Server::handle_datagram` (verify, duplicate cache, handler, encode) and
//! `Client::handle_datagram` (verify, MPPE decrypt) — for an Access-Challenge and for an
//! Access-Accept carrying MPPE keys.
//!
//! Anchor: the bare cryptography such an exchange cannot avoid (4 HMAC-MD5 + 2 MD5 over
//! packets of the same sizes, plus the 8 MD5 blocks of two 32-byte MPPE keys both ways for
//! the Accept), computed with the same RustCrypto crates.
//!
//! Run: `cargo run --release -p gridguard-radius --example bench_exchange`

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gridguard_radius::{
    eap_message_attributes, AccessRequest, Attribute, AttributeType, Client, ClientConfig, Code,
    Reply, Server, ServerConfig,
};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use rand::{rngs::StdRng, SeedableRng};

const SECRET: &[u8] = b"bench-secret";
const N: u32 = 200_000;

fn exchanges(accept: bool) -> (Duration, usize, usize) {
    let mut rng = StdRng::seed_from_u64(1);
    let msk = [0x5au8; 64];
    let eap_out = [1u8; 80];
    let handler = move |_: &AccessRequest, _: Instant| {
        if accept {
            Reply::accept_with_msk(&[3, 1, 0, 4], &msk).unwrap_or_else(Reply::discard)
        } else {
            Reply::challenge(&eap_out, b"state-0123456789")
        }
    };
    let mut server = Server::with_rng(
        SECRET,
        handler,
        ServerConfig::default().with_cache_capacity(1024),
        StdRng::seed_from_u64(2),
    );
    let mut client = Client::new(SECRET, ClientConfig::default());
    let from: SocketAddr = "127.0.0.1:50000"
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 1)));
    let mut attrs = vec![Attribute::new(AttributeType::USER_NAME, b"meter1".to_vec())];
    attrs.extend(eap_message_attributes(&[2u8; 60]));
    let (mut req_len, mut resp_len) = (0, 0);
    let t = Instant::now();
    for _ in 0..N {
        let now = Instant::now();
        if client
            .start(Code::ACCESS_REQUEST, attrs.clone(), now, &mut rng)
            .is_err()
        {
            break;
        }
        let Some(req) = client.poll_transmit() else {
            break;
        };
        req_len = req.len();
        let Some(resp) = server.handle_datagram(from, &req, now) else {
            break;
        };
        resp_len = resp.len();
        let got = client.handle_datagram(&resp, now);
        black_box(got);
    }
    (t.elapsed(), req_len, resp_len)
}

fn crypto_floor(req_len: usize, resp_len: usize, accept: bool) -> Duration {
    let req = vec![0x11u8; req_len];
    let resp = vec![0x22u8; resp_len];
    let t = Instant::now();
    for _ in 0..N {
        for bytes in [&req, &req, &resp, &resp] {
            if let Ok(mut m) = Hmac::<Md5>::new_from_slice(SECRET) {
                m.update(bytes);
                black_box(m.finalize());
            }
        }
        for _ in 0..2 {
            black_box(
                Md5::new()
                    .chain_update(&resp)
                    .chain_update(SECRET)
                    .finalize(),
            );
        }
        if accept {
            // 2 keys × 3 blocks, encrypted and decrypted.
            for _ in 0..12 {
                black_box(
                    Md5::new()
                        .chain_update(SECRET)
                        .chain_update([0u8; 16])
                        .finalize(),
                );
            }
        }
    }
    t.elapsed()
}

fn main() {
    for accept in [false, true] {
        let (t, req_len, resp_len) = exchanges(accept);
        let floor = crypto_floor(req_len, resp_len, accept);
        let rate = f64::from(N) / t.as_secs_f64();
        let floor_rate = f64::from(N) / floor.as_secs_f64();
        println!(
            "{:<32} {:>10.0} exchanges/s   anchor (bare HMAC-MD5/MD5 work) {:>10.0}/s   ratio {:.2}   \
             (request {} B, response {} B)",
            if accept {
                "Access-Request -> Accept+MPPE"
            } else {
                "Access-Request -> Challenge"
            },
            rate,
            floor_rate,
            floor_rate / rate,
            req_len,
            resp_len
        );
    }
}
