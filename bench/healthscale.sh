#!/usr/bin/env bash
# Health checks at scale: 10,000 TCP check targets (100 pools of 100
# members) at a 1 s interval. Prints dnslb's CPU use (the checks are most of
# what it does here: no queries are sent) and the backends' for reference.
#
#   bench/healthscale.sh [SECONDS]           backends on loopback
#   bench/healthscale.sh --netns [SECONDS]   backends in a network namespace
#
# On loopback the kernel work of both ends of every connection (the
# backends' SYN, accept and reset handling too) runs on the prober's CPU
# and is charged to dnslb. With --netns (root, Linux, 2+ CPUs) the backends
# sit behind a veth pair, dnslb on CPU 1 and the backends on CPU 0, and
# receive packet steering (RPS) puts each side's packet processing on its
# own CPU, as two hosts would: the figure that counts is then CPU 1's
# whole busy time (dnslb plus the kernel work done for it there).
set -euo pipefail
cd "$(dirname "$0")/.."
netns=
if [ "${1:-}" = --netns ]; then netns=dnslb-hc$$; shift; fi
secs=${1:-30}
work=$(mktemp -d /tmp/dnslb-hc.XXXXXX)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true
  if [ -n "$netns" ]; then
    ip route del 10.77.0.0/16 2>/dev/null || true
    ip link del hc$$a 2>/dev/null || true
    ip netns del "$netns" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/dnslb" ./cmd/dnslb
go build -o "$work/backends" ./bench/backends

if [ -n "$netns" ]; then
  prefix=10.77; first=10.77.0.1
else
  prefix=127.2; first=127.2.0.1
fi
{
  echo '$ORIGIN hc.test.'; echo '$TTL 300'
  echo '@ SOA ns1 hostmaster 1 3600 600 86400 60'; echo '@ NS ns1'; echo 'ns1 A 127.0.0.1'
  for p in $(seq 0 99); do for m in $(seq 0 99); do
    n=$((p * 100 + m + 1)); echo "p$p A $prefix.$((n / 256)).$((n % 256))"
  done; done
} > "$work/hc.test.zone"
{
  echo 'listen: ["127.0.0.1:0"]'; echo 'log: {level: warn, format: json}'
  echo 'zones: [{origin: hc.test., file: hc.test.zone}]'; echo 'pools:'
  for p in $(seq 0 99); do echo "  p$p.hc.test.: {check: {type: tcp, port: 5340, interval: 1s, timeout: 500ms}}"; done
} > "$work/dnslb.yaml"

if [ -n "$netns" ]; then
  # The backends' namespace answers for all of 10.77/16 (a local route)
  # with one listener on the wildcard address.
  ip netns add "$netns"
  ip link add hc$$a type veth peer name hc$$b
  ip link set hc$$b netns "$netns"
  ip addr add 192.168.77.1/30 dev hc$$a; ip link set hc$$a up
  ip -n "$netns" addr add 192.168.77.2/30 dev hc$$b
  ip -n "$netns" link set hc$$b up; ip -n "$netns" link set lo up
  ip -n "$netns" route add local 10.77.0.0/16 dev lo
  ip route add 10.77.0.0/16 via 192.168.77.2
  [ -n "${NORPS:-}" ] || echo 2 > /sys/class/net/hc$$a/queues/rx-0/rps_cpus                       # replies: CPU 1
  [ -n "${NORPS:-}" ] || ip netns exec "$netns" sh -c "echo 1 > /sys/class/net/hc$$b/queues/rx-0/rps_cpus" # probes: CPU 0
  ip netns exec "$netns" taskset -c 0 "$work/backends" -port 5340 -addrs 0.0.0.0 > "$work/backends.log" 2>&1 &
  backends=$!
  sleep 1
  taskset -c 1 "$work/dnslb" serve --config "$work/dnslb.yaml" > "$work/dnslb.log" 2>&1 &
  server=$!
else
  "$work/backends" -port 5340 -count 10000 -first "$first" > "$work/backends.log" 2>&1 &
  backends=$!
  sleep 2
  "$work/dnslb" serve --config "$work/dnslb.yaml" > "$work/dnslb.log" 2>&1 &
  server=$!
fi
sleep 5 # every target has had its first (spread) probe
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
cpu1() { awk '$1 == "cpu1" { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat; }
s0=$(ticks $server); b0=$(ticks $backends); c0=$(cpu1); t0=$(date +%s.%N)
sleep "$secs"
s1=$(ticks $server); b1=$(ticks $backends); c1=$(cpu1); t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
awk -v s=$((s1 - s0)) -v b=$((b1 - b0)) -v hz="$hz" -v d="$(echo "$t1 - $t0" | bc)" 'BEGIN {
  printf "10,000 targets, 1 s interval, %.0f s: dnslb %.1f %% of one core, backends (accepting) %.1f %%\n", d, 100*s/hz/d, 100*b/hz/d }'
if [ -n "$netns" ]; then
  read -r busy0 idle0 <<< "$c0"; read -r busy1 idle1 <<< "$c1"
  awk -v b=$((busy1 - busy0)) -v i=$((idle1 - idle0)) 'BEGIN {
    printf "CPU 1 (dnslb and the kernel work for its probes): %.1f %% busy\n", 100*b/(b+i) }'
fi
grep -c '"to":"down"' "$work/dnslb.log" | xargs echo "down transitions (should be 0):"
