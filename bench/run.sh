#!/usr/bin/env bash
# Benchmark dnslb the way the README measures it: the bench.test zone with
# www as a health-checked pool of 8 A + 4 AAAA members, 1,000 static hosts,
# and the query mix 40 % www A, 10 % www AAAA, 30 % host A, 10 % NXDOMAIN,
# 10 % NODATA. dnslb is pinned to one CPU and dnsperf to
# the other; the output is dnsperf's summary plus the server's CPU share.
#
#   bench/run.sh [SECONDS] [PORT]          (needs dnsperf, taskset; Linux)
#
# Environment: SERVER_CPU (default 1), CLIENT_CPU (default 0), QPS (fixed
# rate for latency percentiles instead of closed-loop throughput), THREADS
# (dnsperf threads, default 1), DNSPERF_ARGS (more dnsperf flags: "-e" for
# EDNS, "-e -E 10:0102030405060708" for a DNS Cookie on every query). Multi-core: SERVER_CPU=0,1 CLIENT_CPU=0,1
# THREADS=2 lets both use both cores (dnslb then runs two UDP sockets).
# LISTEN (default 127.0.0.1) is the address dnslb listens on; 0.0.0.0
# measures a wildcard listen, where every reply carries its source address.
# FLEET=1 makes dnslb a one-node fleet (health: majority).
# POLICY (default round-robin) is www's policy: POLICY=sticky with
# DNSPERF_ARGS="-e -E 8:00011800c63364" sends EDNS Client Subnet
# 198.51.100.0/24 on every query (against DNSPERF_ARGS=-e without it).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-10}; port=${2:-5310}
listen=${LISTEN:-127.0.0.1}
server_cpu=${SERVER_CPU:-1}; client_cpu=${CLIENT_CPU:-0}; threads=${THREADS:-1}
work=$(mktemp -d /tmp/dnslb-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/dnslb" ./cmd/dnslb
go build -o "$work/backends" ./bench/backends

bench_zone "$work/bench.test.zone"

cat > "$work/dnslb.yaml" <<C
listen: ["$listen:$port"]
log: {level: warn, format: json}
zones:
  - {origin: bench.test., file: bench.test.zone}
pools:
  www.bench.test.:
    policy: ${POLICY:-round-robin}
    ttl: 30
    check: {type: tcp, port: 5330, interval: 2s, timeout: 1s}
C
if [ -n "${FLEET:-}" ]; then
  # A fleet of this one node: the answer path reads the fleet's decision
  # (health: majority) instead of the scheduler's snapshot.
  fleet_port=$((port + 1))
  printf 'fleet: {name: bench, node: bench1, bind: "127.0.0.1:%d", health: majority}\n' "$fleet_port" >> "$work/dnslb.yaml"
fi

# The query mix, 100,000 lines, deterministic.
bench_mix "$work/queries.txt"

"$work/backends" -port 5330 > "$work/backends.log" 2>&1 &
taskset -c "$server_cpu" "$work/dnslb" serve --config "$work/dnslb.yaml" > "$work/dnslb.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 bench.test SOA > /dev/null 2>&1 && break; sleep 0.2; done
dig +short -p "$port" @127.0.0.1 www.bench.test A | wc -l | xargs echo "www A records answered:"

ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; }
t0=$(ticks); start=$(date +%s.%N)
if [ -n "${QPS:-}" ]; then
  taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l "$secs" -Q "$QPS" -c 4 -q 100 -t 1 -T "$threads" -S 1 ${DNSPERF_ARGS:-} | tail -25
else
  taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l "$secs" -c 4 -q 100 -t 1 -T "$threads" ${DNSPERF_ARGS:-} | tail -25
fi
t1=$(ticks); end=$(date +%s.%N)
awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v s="$start" -v e="$end" \
  'BEGIN { printf "dnslb CPU during the run: %.0f %% of one core\n", 100 * t / hz / (e - s) }'
