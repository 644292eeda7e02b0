#!/usr/bin/env bash
# DNSSEC online-signing throughput: dnslb against Knot DNS's mod-onlinesign.
#
# Every server is pinned to SERVER_CPU (default 1) and dnsperf to CLIENT_CPU
# (default 0); the figure that counts is QPS per server core = QPS / the
# server's CPU share during the run (as bench/run.sh reports it). All
# servers run at once on their own ports and are measured interleaved
# (A B C ... A B C ...) for ROUNDS rounds (default 3) of SECONDS each.
#
# Zone: bench/run.sh's bench.test (www a health-checked pool of 8 A + 4 AAAA
# in dnslb, the same static records in Knot, 1,000 hosts).
#
#   case       query file / flags                           servers
#   plain      run.sh's 100,000-line mix, no EDNS            dnslb, Knot (unsigned zone)
#   mix-do     the same mix with the DO bit (-D): repeated    dnslb P-256 / Ed25519 (cached
#              names                                          signed answers), Knot onlinesign
#                                                             P-256 / Ed25519 (signs every reply)
#   nx-do      distinct random nxRRNNNNNN.bench.test A,       the same four signing servers
#              each asked once (-n 1), -D: every reply is
#              a freshly signed compact-denial NSEC
#
# Before the rounds every server gets one unmeasured pass of the mix (with
# -D for the signing ones) so dnslb's cache holds the signed mix answers.
# Each nx-do run uses its own file of max(200000, SECONDS*50000) fresh names
# (a run that exhausts it stops early; its QPS still counts only uncached
# answers). Output: one line per run, then a summary table of medians and
# the ratios dnslb signed/unsigned and dnslb/Knot.
#
#   bench/dnssec.sh [SECONDS]       (default 8; needs go, knotd, knotc,
#                                    dnsperf, dig, taskset, ss; Linux)
#
# Environment: ROUNDS (3), SERVER_CPU (1), CLIENT_CPU (0), KEEP=1 keeps
# the scratch directory (configs, logs, raw dnsperf output).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-8}
rounds=${ROUNDS:-3}
server_cpu=${SERVER_CPU:-1}; client_cpu=${CLIENT_CPU:-0}
hc_port=5440
work=$(mktemp -d /tmp/dnssecbench.XXXXXX)
declare -A pid port
cleanup() {
  local p
  for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${backends_pid:-}" ] && kill "$backends_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "# kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

go build -o "$work/bin/dnslb" ./cmd/dnslb
go build -o "$work/bin/backends" ./bench/backends

bench_zone "$work/bench.test.zone"

bench_mix "$work/mix.txt"

nx_count=$((secs * 50000)); [ "$nx_count" -ge 200000 ] || nx_count=200000
nx_serial=0
# nx_file: a new file of nx_count distinct names, never asked before, in random order.
nx_file() {
  nx_serial=$((nx_serial + 1))
  local f="$work/nx-$nx_serial.txt"
  seq 0 $((nx_count - 1)) | shuf --random-source=<(yes "$nx_serial") |
    awk -v r="$nx_serial" '{ printf "nx%03d%07d.bench.test A\n", r, $1 }' > "$f"
  echo "$f"
}

# dnslb NAME PORT DNSSEC_BLOCK(empty = unsigned)
start_dnslb() {
  local name=$1 p=$2 sec=$3 d="$work/$1"
  mkdir -p "$d"
  cat > "$d/dnslb.yaml" <<C
listen: ["127.0.0.1:$p"]
log: {level: warn, format: json}
zones:
  - {origin: bench.test., file: $work/bench.test.zone${sec:+, dnssec: $sec}}
pools:
  www.bench.test.:
    policy: round-robin
    ttl: 30
    check: {type: tcp, port: $hc_port, interval: 2s, timeout: 1s}
C
  taskset -c "$server_cpu" "$work/bin/dnslb" serve --config "$d/dnslb.yaml" > "$d/server.log" 2>&1 &
  pid[$name]=$!; port[$name]=$p
}

# knot NAME PORT ALGORITHM(empty = unsigned)
start_knot() {
  local name=$1 p=$2 alg=$3 d="$work/$1" mod=""
  mkdir -p "$d/db"
  cp "$work/bench.test.zone" "$d/bench.test.zone"
  [ -n "$alg" ] && mod="    module: mod-onlinesign/os"
  cat > "$d/knot.conf" <<C
server:
    rundir: "$d"
    pidfile: "$d/knot.pid"
    listen: 127.0.0.1@$p
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$d/db"
log:
  - target: stderr
    any: warning
C
  [ -n "$alg" ] && cat >> "$d/knot.conf" <<C
policy:
  - id: online
    algorithm: $alg
mod-onlinesign:
  - id: os
    policy: online
C
  cat >> "$d/knot.conf" <<C
template:
  - id: default
    storage: "$d"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: bench.test.
$mod
C
  knotc -c "$d/knot.conf" conf-check > /dev/null
  taskset -c "$server_cpu" knotd -c "$d/knot.conf" > "$d/server.log" 2>&1 &
  pid[$name]=$!; port[$name]=$p
}

"$work/bin/backends" -port "$hc_port" > "$work/backends.log" 2>&1 &
backends_pid=$!
start_dnslb dnslb 5421 ""
start_dnslb dnslb-p256 5422 "{keys: $work/dnslb-p256/keys}"
start_dnslb dnslb-ed25519 5423 "{algorithm: ed25519, keys: $work/dnslb-ed25519/keys}"
start_knot knot 5431 ""
start_knot knot-p256 5432 ecdsap256sha256
start_knot knot-ed25519 5433 ed25519
servers="dnslb dnslb-p256 dnslb-ed25519 knot knot-p256 knot-ed25519"

for s in $servers; do
  ok=""
  for _ in $(seq 50); do
    dig +short +time=1 +tries=1 -p "${port[$s]}" @127.0.0.1 bench.test SOA 2> /dev/null | grep -q hostmaster && { ok=1; break; }
    sleep 0.2
  done
  [ -n "$ok" ] || { echo "$s does not answer on ${port[$s]}:"; tail -20 "$work/$s/server.log"; exit 1; }
  # Knot pins its threads itself: put every thread back on the server CPU.
  taskset -a -p -c "$server_cpu" "${pid[$s]}" > /dev/null
done
sleep 5 # let dnslb's health checks see the pool up

echo "# $(date -Is) $(uname -r) cpus=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg) secs=$secs rounds=$rounds server_cpu=$server_cpu client_cpu=$client_cpu"
echo "# dnslb $("$work/bin/dnslb" --version 2> /dev/null | head -1 || true); $(knotd -V); $(dnsperf -h 2>&1 | grep -i '^version')"
echo "# sanity (answers / RRSIGs): www A, nx1 A with DO"
for s in $servers; do
  w=$(dig +dnssec +noall +answer -p "${port[$s]}" @127.0.0.1 www.bench.test A)
  n=$(dig +dnssec +noall +authority +comments -p "${port[$s]}" @127.0.0.1 nx1.bench.test A)
  printf '#   %-14s www: %d A, %d RRSIG; nx1: %s, %d NSEC, %d RRSIG\n' "$s" \
    "$(grep -c $'\tA\t' <<< "$w" || true)" "$(grep -c RRSIG <<< "$w" || true)" \
    "$(grep -o 'status: [A-Z]*' <<< "$n" | cut -d' ' -f2)" \
    "$(grep -c $'\tNSEC\t' <<< "$n" || true)" "$(grep -c RRSIG <<< "$n" || true)"
done

# Warm-up: one unmeasured pass of the mix per server (signing ones with DO).
for s in $servers; do
  dflag=""; case $s in *-*) dflag=-D ;; esac
  taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$work/mix.txt" -n 1 -c 4 -q 100 -t 1 $dflag > "$work/warmup-$s.txt" 2>&1 || true
done

ticks() { local f; f=$(cat "/proc/$1/stat"); f=${f##*) }; set -- $f; echo $((${12} + ${13})); }
core() { awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
busy() { awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f", (y[2] > x[2]) ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0 }'; }
hz=$(getconf CLK_TCK)
results="$work/results.txt"; : > "$results"

# measure ROUND CASE SERVER FILE DNSPERF_FLAGS...
measure() {
  local r=$1 c=$2 s=$3 f=$4; shift 4
  local out="$work/dnsperf-$c-$s-$r.txt" t0 t1 w0 w1 c0 c1 k0 k1
  t0=$(ticks "${pid[$s]}"); w0=$(date +%s%N); c0=$(core "$server_cpu"); k0=$(core "$client_cpu")
  taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$f" -l "$secs" -c 4 -q 100 -t 1 "$@" > "$out" 2>&1 || true
  t1=$(ticks "${pid[$s]}"); w1=$(date +%s%N); c1=$(core "$server_cpu"); k1=$(core "$client_cpu")
  awk -v r="$r" -v c="$c" -v s="$s" -v t="$((t1 - t0))" -v hz="$hz" -v ns="$((w1 - w0))" \
      -v sb="$(busy "$c0" "$c1")" -v cb="$(busy "$k0" "$k1")" '
    /Queries sent/ { sent = $3 } /Queries completed/ { done = $3 } /Queries lost/ { lost = $3 }
    /Response codes/ { sub(/.*Response codes: */, ""); gsub(/ \([0-9.]+%\)/, ""); gsub(/, /, ","); gsub(/ /, ":"); rc = $0 }
    /Average packet size/ { sub(/.*response /, ""); size = $0 }
    /Queries per second/ { qps = $4 }
    END { cpu = 100 * t / hz / (ns / 1e9)
      printf "round=%s case=%s server=%s qps=%.0f cpu=%.0f qps_core=%.0f sent=%s lost=%s rcodes=%s resp_bytes=%s core_busy_srv=%s core_busy_cli=%s\n",
        r, c, s, qps, cpu, (cpu > 0 ? qps * 100 / cpu : 0), sent, lost, rc, size, sb, cb }' "$out" | tee -a "$results"
  sleep 1
}

for r in $(seq 1 "$rounds"); do
  measure "$r" plain dnslb "$work/mix.txt"
  measure "$r" plain knot "$work/mix.txt"
  for s in dnslb-p256 knot-p256 dnslb-ed25519 knot-ed25519; do measure "$r" mix-do "$s" "$work/mix.txt" -D; done
  for s in dnslb-p256 knot-p256 dnslb-ed25519 knot-ed25519; do measure "$r" nx-do "$s" "$(nx_file)" -D -n 1; done
  rm -f "$work"/nx-*.txt
done

echo
echo "# summary: median over $rounds rounds (qps min/max in brackets); qps/core = qps * 100 / cpu%"
awk '
function med(s,   n, a, i, j, t) { n = split(s, a, " "); for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
function mn(s,   n, a, i, m) { n = split(s, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 < m + 0) m = a[i]; return m }
function mx(s,   n, a, i, m) { n = split(s, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 > m + 0) m = a[i]; return m }
{ delete v; for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
  k = v["case"] " " v["server"]; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
  q[k] = q[k] " " v["qps"]; c[k] = c[k] " " v["cpu"]; pc[k] = pc[k] " " v["qps_core"]; lost[k] = lost[k] " " v["lost"]
  rc[k] = v["rcodes"] }
END {
  printf "%-7s %-14s %8s %17s %5s %9s %6s  %s\n", "case", "server", "qps", "[min/max]", "cpu%", "qps/core", "lost", "rcodes (last round)"
  for (i = 1; i <= n; i++) { k = order[i]; split(k, p, " "); m[k] = med(pc[k])
    printf "%-7s %-14s %8.0f [%7.0f/%-7.0f] %5.0f %9.0f %6s  %s\n", p[1], p[2], med(q[k]), mn(q[k]), mx(q[k]), med(c[k]), m[k], mx(lost[k]), rc[k] }
  print ""; print "# ratios of median qps/core"
  r("dnslb signed P-256 cached / unsigned (target >= 0.8)", "mix-do dnslb-p256", "plain dnslb")
  r("dnslb signed Ed25519 cached / unsigned", "mix-do dnslb-ed25519", "plain dnslb")
  r("dnslb / Knot, unsigned mix", "plain dnslb", "plain knot")
  r("dnslb / Knot, mix -D, P-256", "mix-do dnslb-p256", "mix-do knot-p256")
  r("dnslb / Knot, mix -D, Ed25519", "mix-do dnslb-ed25519", "mix-do knot-ed25519")
  r("dnslb / Knot, random nx -D, P-256", "nx-do dnslb-p256", "nx-do knot-p256")
  r("dnslb / Knot, random nx -D, Ed25519", "nx-do dnslb-ed25519", "nx-do knot-ed25519")
  t("dnslb uncached P-256 signed answers/s/core (target >= 20000)", "nx-do dnslb-p256", 20000)
  t("dnslb uncached Ed25519 signed answers/s/core (target >= 28000)", "nx-do dnslb-ed25519", 28000)
}
function r(label, a, b) { if ((a in m) && (b in m) && m[b] > 0) printf "  %-58s %6.2f  (%.0f / %.0f)\n", label, m[a] / m[b], m[a], m[b] }
function t(label, a, goal) { if (a in m) printf "  %-58s %6.0f  %s\n", label, m[a], (m[a] >= goal ? "met" : "MISSED") }
' "$results"

echo
echo "# server logs (warnings and errors)"
for s in $servers; do
  n=$(grep -ciE 'error|warn' "$work/$s/server.log" || true)
  echo "#   $s: $n lines"; [ "$n" -gt 0 ] && grep -iE 'error|warn' "$work/$s/server.log" | sort | uniq -c | sort -rn | head -5 | sed 's/^/#     /'
done
echo "# end load=$(cut -d' ' -f1-3 /proc/loadavg)"
