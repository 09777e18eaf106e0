#!/usr/bin/env bash
# Profiles the server (or the bench process) while one imagecast-bench scenario runs.
#
#   tests/bench/profile.sh server fanout --terminals 100 --size-mib 5 --rounds 5
#   tests/bench/profile.sh bench  fanout --terminals 100 --size-mib 5 --rounds 5
#
# perf samples at 999 Hz with DWARF call graphs; the report (top symbols, self time, then the
# callers of the top entries) goes to /tmp/imagecast-profile-<target>.txt and perf.data to
# /tmp/imagecast-profile-<target>.data.  Needs perf (apt-get install -y linux-perf).
set -euo pipefail
cd "$(dirname "$0")/../.."
target=$1; shift
B=${CARGO_TARGET_DIR:-target}/release
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
data=/tmp/imagecast-profile-$target.data
report=/tmp/imagecast-profile-$target.txt
"$B/imagecast-bench" "$@" > /tmp/imagecast-profile-$target.out 2>&1 &
bench=$!
if [ "$target" = bench ]; then
  pid=$bench
else
  pid=
  for _ in $(seq 1 2000); do
    pid=$(pgrep -n -P "$bench" imagecast-serve || true)
    [ -n "$pid" ] && break
    sleep 0.01
  done
  [ -n "$pid" ] || { echo "no server process found" >&2; wait "$bench"; exit 1; }
fi
perf record -F 999 --call-graph dwarf,32768 -p "$pid" -o "$data" 2>/dev/null &
perf_pid=$!
wait "$bench" || true
sleep 0.5
kill -INT "$perf_pid" 2>/dev/null || true
wait "$perf_pid" 2>/dev/null || true
cat /tmp/imagecast-profile-$target.out
{
  echo "# $target while: imagecast-bench $*"
  perf report -i "$data" --no-children --sort dso,symbol --stdio -g none --percent-limit 0.7 2>/dev/null \
    | grep -v '^$'
  echo
  echo "# call graphs (caller view) of the entries above 3 %"
  perf report -i "$data" --no-children --sort symbol --stdio -g caller,0.5,callee,function,percent \
    --percent-limit 3 2>/dev/null | grep -v '^$' | head -400
} > "$report"
echo "profile: $report"
