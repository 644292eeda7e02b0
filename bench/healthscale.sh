#!/usr/bin/env bash
# Health checks at scale: 10,000 TCP check targets (100 pools of 100
# members) at a 1 s interval. Prints dnslb's CPU use (the checks are most of
# what it does here: no queries are sent) and the backends' for reference.
#
#   bench/healthscale.sh [SECONDS]
#
# CHECK_OPTS is added to each check (e.g. "watch: false"); BACKEND_OPTS to
# the backends' flags ("-hold" keeps connections open, so connection
# watches stay idle; without it each watch is closed at once, the worst
# case: one extra probe per interval).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
work=$(mktemp -d /tmp/dnslb-hc.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/dnslb" ./cmd/dnslb
go build -o "$work/backends" ./bench/backends
go build -o "$work/connectfloor" ./bench/connectfloor
{
  echo '$ORIGIN hc.test.'; echo '$TTL 300'
  echo '@ SOA ns1 hostmaster 1 3600 600 86400 60'; echo '@ NS ns1'; echo 'ns1 A 127.0.0.1'
  for p in $(seq 0 99); do for m in $(seq 0 99); do
    n=$((p * 100 + m + 1)); echo "p$p A 127.2.$((n / 256)).$((n % 256))"
  done; done
} > "$work/hc.test.zone"
admin=127.0.0.1:$((20000 + RANDOM % 20000))
{
  echo 'listen: ["127.0.0.1:0"]'; echo 'log: {level: warn, format: json}'; echo "admin: \"$admin\""
  echo 'zones: [{origin: hc.test., file: hc.test.zone}]'; echo 'pools:'
  for p in $(seq 0 99); do echo "  p$p.hc.test.: {check: {type: tcp, port: 5340, interval: 1s, timeout: 500ms${CHECK_OPTS:+, $CHECK_OPTS}}}"; done
} > "$work/dnslb.yaml"
taskset -c "${BACKEND_CPU:-0}" "$work/backends" -port 5340 -any -spin ${BACKEND_OPTS:-} > "$work/backends.log" 2>&1 &
backends=$!
sleep 2
taskset -c "${SERVER_CPU:-1}" "$work/dnslb" serve --config "$work/dnslb.yaml" > "$work/dnslb.log" 2>&1 &
server=$!
sleep 5 # every target has had its first (spread) probe
ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; } # user, system
probes() { curl -s "http://$admin/metrics" | awk '/^dnslb_health_check_duration_seconds_count/ { n += $2 } END { printf "%d", n }'; }
read -r su0 ss0 < <(ticks $server); read -r bu0 bs0 < <(ticks $backends); p0=$(probes); t0=$(date +%s.%N)
sleep "$secs"
read -r su1 ss1 < <(ticks $server); read -r bu1 bs1 < <(ticks $backends); p1=$(probes); t1=$(date +%s.%N)
awk -v u=$((su1 - su0)) -v k=$((ss1 - ss0)) -v b=$((bu1 + bs1 - bu0 - bs0)) -v p=$((p1 - p0)) -v hz="$(getconf CLK_TCK)" -v d="$(echo "$t1 - $t0" | bc)" 'BEGIN {
  printf "10,000 targets, 1 s interval, %.0f s: dnslb %.1f %% of one core (user %.1f, kernel %.1f), backends %.1f %%\n",
    d, 100*(u+k)/hz/d, 100*u/hz/d, 100*k/hz/d, 100*b/hz/d
  if (p > 0) printf "probes: %.0f/s, %.1f µs of dnslb CPU each\n", p/d, 1e6*(u+k)/hz/p }'
echo "down transitions (should be 0): $(grep -c '"to":"down"' "$work/dnslb.log" || true)"
kill "$server"; wait "$server" 2>/dev/null || true
taskset -c "${SERVER_CPU:-1}" "$work/connectfloor" -port 5340 -first 127.2.0.1 -count 10000 -rate 10000 -seconds "$secs"
