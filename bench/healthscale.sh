#!/usr/bin/env bash
# Health checks at scale: 10,000 TCP check targets (100 pools of 100
# members) at a 1 s interval. Prints dnslb's CPU use (the checks are most of
# what it does here: no queries are sent) and the backends' for reference.
#
#   bench/healthscale.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
work=$(mktemp -d /tmp/dnslb-hc.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/dnslb" ./cmd/dnslb
go build -o "$work/backends" ./bench/backends
{
  echo '$ORIGIN hc.test.'; echo '$TTL 300'
  echo '@ SOA ns1 hostmaster 1 3600 600 86400 60'; echo '@ NS ns1'; echo 'ns1 A 127.0.0.1'
  for p in $(seq 0 99); do for m in $(seq 0 99); do
    n=$((p * 100 + m + 1)); echo "p$p A 127.2.$((n / 256)).$((n % 256))"
  done; done
} > "$work/hc.test.zone"
{
  echo 'listen: ["127.0.0.1:0"]'; echo 'log: {level: warn, format: json}'
  echo 'zones: [{origin: hc.test., file: hc.test.zone}]'; echo 'pools:'
  for p in $(seq 0 99); do echo "  p$p.hc.test.: {check: {type: tcp, port: 5340, interval: 1s, timeout: 500ms}}"; done
} > "$work/dnslb.yaml"
"$work/backends" -port 5340 -count 10000 -first 127.2.0.1 > "$work/backends.log" 2>&1 &
backends=$!
sleep 2
"$work/dnslb" serve --config "$work/dnslb.yaml" > "$work/dnslb.log" 2>&1 &
server=$!
sleep 5 # every target has had its first (spread) probe
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
s0=$(ticks $server); b0=$(ticks $backends); t0=$(date +%s.%N)
sleep "$secs"
s1=$(ticks $server); b1=$(ticks $backends); t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
us0=$(awk "{print \$14}" /proc/$server/stat); ss0=$(awk "{print \$15}" /proc/$server/stat); echo "dnslb utime ticks total=$us0 stime ticks total=$ss0"
awk -v s=$((s1 - s0)) -v b=$((b1 - b0)) -v hz="$hz" -v d="$(echo "$t1 - $t0" | bc)" 'BEGIN {
  printf "10,000 targets, 1 s interval, %.0f s: dnslb %.1f %% of one core, backends (accepting) %.1f %%\n", d, 100*s/hz/d, 100*b/hz/d }'
grep -c '"to":"down"' "$work/dnslb.log" | xargs echo "down transitions (should be 0):"
