#!/usr/bin/env bash
# Interoperability check of gridguard-radius against hostapd 2.10 and eapol_test (Debian
# packages `hostapd` and `eapoltest`), all inside a private network namespace with only `lo`:
#
#   eapol_test (EAP-PSK peer, RADIUS client)
#     --RADIUS--> examples/eap_relay (gridguard Server + gridguard Client)
#     --RADIUS--> hostapd (RADIUS server with its EAP-PSK server)
#
# Passes when eapol_test reports SUCCESS and "MPPE keys OK" with no mismatch: the keys our
# client decrypted from hostapd and our server re-encrypted equal the MSK eapol_test derived.
# Needs root (ip netns). Everything it starts is stopped on exit.
set -euo pipefail

for tool in hostapd eapol_test ip; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done

root=$(cd "$(dirname "$0")/../../.." && pwd)
work=$(mktemp -d)
ns="gg-radius-$$"
pids=()

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && cargo build -q -p gridguard-radius --example eap_relay)
relay="$root/target/debug/examples/eap_relay"

cat >"$work/hostapd.conf" <<EOF
driver=none
interface=as0
logger_stdout=-1
logger_stdout_level=2
eap_server=1
eap_user_file=$work/users
radius_server_clients=$work/clients
radius_server_auth_port=18120
EOF
printf '"meter1" PSK 000102030405060708090a0b0c0d0e0f\n' >"$work/users"
printf '127.0.0.1 upsecret\n' >"$work/clients"
cat >"$work/psk.conf" <<'EOF'
network={
	key_mgmt=IEEE8021X
	eap=PSK
	identity="meter1"
	password=000102030405060708090a0b0c0d0e0f
	eapol_flags=0
}
EOF

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up

ip netns exec "$ns" hostapd "$work/hostapd.conf" >"$work/hostapd.log" 2>&1 &
pids+=($!)
ip netns exec "$ns" "$relay" 127.0.0.1:18121 downsecret 127.0.0.1:18120 upsecret \
    >"$work/relay.log" 2>&1 &
pids+=($!)

# Wait for both UDP ports.
for _ in $(seq 50); do
    if ip netns exec "$ns" ss -lun | grep -q ':18120' && ip netns exec "$ns" ss -lun | grep -q ':18121'; then
        break
    fi
    sleep 0.1
done

status=0
# -r2: the first authentication and two re-authentications, each a full EAP-PSK exchange.
if ! ip netns exec "$ns" timeout 60 eapol_test -c "$work/psk.conf" -a 127.0.0.1 -p 18121 \
    -s downsecret -r2 -t 10 >"$work/eapol.log" 2>&1; then
    status=1
fi
grep -E '^(SUCCESS|FAILURE)|MPPE keys OK' "$work/eapol.log" || true
grep -q '^SUCCESS' "$work/eapol.log" || status=1
grep -q 'MPPE keys OK: 3  mismatch: 0' "$work/eapol.log" || status=1
grep -c 'verified' "$work/relay.log" | sed 's/^/upstream responses verified by gridguard Client: /'

if [ "$status" -ne 0 ]; then
    echo "--- eapol_test log (tail)"; tail -40 "$work/eapol.log"
    echo "--- relay log"; cat "$work/relay.log"
    echo "--- hostapd log (tail)"; tail -40 "$work/hostapd.log"
    echo "hostapd interop: FAILED"
    exit 1
fi
echo "hostapd interop: OK"
