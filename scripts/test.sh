#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine that has only the Rust toolchain: installs the
# real peers the interoperability tests talk to (hostapd, eapol_test, tshark/dumpcap, PostgreSQL,
# iproute2) from Debian's packages when they are missing, then checks formatting and lints and runs
# every test. The interoperability tests need root (they create network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
have hostapd || need+=(hostapd)
have eapol_test || need+=(eapoltest)
have tshark || need+=(tshark)
have dumpcap || need+=(wireshark-common)
have ip || need+=(iproute2)
have ss || need+=(iproute2)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing test peers: ${need[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The interoperability tests fail (rather than skip) when a peer is missing.
export GRIDGUARD_REQUIRE_INTEROP=1

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo check --manifest-path fuzz/Cargo.toml --locked --bins
cargo test --workspace --locked
