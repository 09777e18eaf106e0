#!/usr/bin/env bash
# Runs every imagecast-bench scenario and, side by side in the same window, the Mosquitto and
# raw-loopback peers of shared/bench. Raw lines go to tests/bench/results/<UTC stamp>.txt.
# TLS is the default of imagecast-bench; --plain runs are the ones compared with Mosquitto
# (which runs without TLS here).
#
#   cargo build --release --workspace --bins
#   tests/bench/run.sh                 # everything, ~10 minutes on the 2-core machine
#   ONLY=fanout tests/bench/run.sh     # one group: fanout, scaling, idle, latency,
#                                      # registration, marksheet, relay (needs socat), fax,
#                                      # storm, soak, tls (needs mosquitto, paho-mqtt, openssl)
#   REPEAT=3 tests/bench/run.sh        # three passes (summarize.py takes medians over them)
#
# Knobs: ROUNDS (5), QUIET_WAIT (5 s per round), PEERS (1: also run shared/bench),
# SOAK_MINUTES (2; the issue's figure is 10, for a quiet machine), STORM (1000 10000),
# SHARED (path of shared/bench, default ../shared/bench next to the repository),
# CARGO_TARGET_DIR (where the release binaries are, default ./target).
# A scenario that fails prints "# failed: ..." and the others still run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
B="${CARGO_TARGET_DIR:-$ROOT/target}/release"
SHARED=${SHARED:-$ROOT/../shared/bench}
[ -d "$SHARED" ] || SHARED=/work/shared/bench
REPEAT=${REPEAT:-1}
ROUNDS=${ROUNDS:-5}
QUIET_WAIT=${QUIET_WAIT:-5}
PEERS=${PEERS:-1}
ONLY=${ONLY:-all}
SOAK_MINUTES=${SOAK_MINUTES:-2}
STORM=${STORM:-1000 10000}
for bin in imagecast-bench imagecast-server; do
  [ -x "$B/$bin" ] || { echo "build first: cargo build --release --workspace --bins" >&2; exit 1; }
done
# 10,000 terminals need 10,000 sockets in this process and as many in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p tests/bench/results
out="tests/bench/results/$(date -u +%Y%m%dT%H%M%SZ).txt"
R=(--rounds "$ROUNDS" --quiet-wait "$QUIET_WAIT")
bench() { "$B/imagecast-bench" "$@" || echo "# failed: imagecast-bench $*"; }
want() { [ "$ONLY" = all ] || [ "$ONLY" = "$1" ]; }
peer() { # runs a shared/bench script from its own folder; its temp files go under /tmp
  [ "$PEERS" = 1 ] && [ -d "$SHARED" ] || return 0
  (cd "$SHARED" && python3 "$@") || echo "# peer failed: $*"
}
mqtt() { # our copy of shared/bench/mqtt_fanout.py, which adds --tls (tests/bench/mqtt)
  [ "$PEERS" = 1 ] || return 0
  (cd tests/bench/mqtt && python3 mqtt_fanout.py "$@") || echo "# mqtt failed: $*"
}
{
  echo "# tests/bench/run.sh $(date -u +%FT%TZ) host=$(hostname) ncpu=$(nproc) kernel=$(uname -r) repeat=$REPEAT rounds=$ROUNDS commit=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo none)}"
  for pass in $(seq 1 "$REPEAT"); do
    echo "# pass $pass/$REPEAT"
    if want fanout; then
      # The headline comparison: 100 x 5 MiB, three ways, back to back.
      bench loopback --receivers 100 --size-mib 5 "${R[@]}"
      bench fanout --terminals 100 --size-mib 5 --plain "${R[@]}"
      peer mqtt_fanout.py -n 100 -s 5 -r "$ROUNDS" --client raw --quiet-wait "$QUIET_WAIT"
      peer loopback_limit.py -n 100 -s 5 -r "$ROUNDS" --impl c --quiet-wait "$QUIET_WAIT"
      # TLS: the fan-out beside the same raw loopback over TLS (the encrypted limit).
      bench loopback --receivers 100 --size-mib 5 --tls "${R[@]}"
      bench fanout --terminals 100 --size-mib 5 "${R[@]}"
      bench loopback --receivers 100 --size-mib 5 "${R[@]}"
      bench fanout --terminals 1000 --size-mib 1 --plain "${R[@]}"
    fi
    if want scaling; then
      for n in 10 100 1000; do
        for s in 1 5; do
          bench loopback --receivers "$n" --size-mib "$s" "${R[@]}"
          bench fanout --terminals "$n" --size-mib "$s" --plain "${R[@]}"
        done
      done
      peer mqtt_fanout.py -n 10,100 -s 1,5 -r "$ROUNDS" --client raw --quiet-wait "$QUIET_WAIT"
    fi
    if want idle; then
      bench idle --terminals 10000 --plain
      bench idle --terminals 1000 --plain
      bench idle --terminals 2000
      peer idle_conns.py -c 5000 --hold 10
    fi
    if want latency; then
      bench latency --terminals 100 --size-kib 50 --rounds 20 --quiet-wait 2
    fi
    if want registration; then
      bench registration --members 10000 --ops 1000 --concurrency 32
    fi
    if want marksheet; then
      bench marksheet --dpi 200 --rounds 10
    fi
    if want relay; then
      # One session beside socat (256 KiB blocks: its 8 KiB default flatters the relay) and a
      # Tokio forwarder, plain and TLS; ten sessions; memory per idle session.
      bench relay --sessions 1 --size-mib 64 --plain --forwarder socat,rust --socat-block 262144 "${R[@]}"
      bench relay --sessions 1 --size-mib 64 --forwarder socat,rust "${R[@]}"
      bench relay --sessions 10 --size-mib 16 --plain --forwarder socat,rust "${R[@]}"
      bench relay-idle --sessions 1000 --plain
    fi
    if want fax; then
      bench fax --gateways 4 --jobs 1000 --document tiff
    fi
    if want tls; then
      # Issue 14, item 5: the TLS fan-out beside Mosquitto with a TLS 1.3 listener and the
      # TLS loopback (the encrypted limit), back to back; the plain Mosquitto for reference.
      bench loopback --receivers 100 --size-mib 5 --tls "${R[@]}"
      bench fanout --terminals 100 --size-mib 5 "${R[@]}"
      mqtt -n 100 -s 5 -r "$ROUNDS" --client raw --tls --quiet-wait "$QUIET_WAIT"
      mqtt -n 100 -s 5 -r "$ROUNDS" --client raw --quiet-wait "$QUIET_WAIT"
    fi
    if want storm; then
      # Item 6: every terminal back after a restart (TLS, device logins only).
      for n in $STORM; do bench restart-storm --terminals "$n"; done
    fi
    if want soak; then
      # Item 7: mixed load; `imagecast-bench soak --minutes 10` on a quiet machine.
      bench soak --minutes "$SOAK_MINUTES"
    fi
  done
} 2>&1 | tee "$out"
echo
echo "raw results: $out"
