# Shared by bench/run.sh and bench/dnssec.sh: the README's benchmark zone
# and query mix, so that every benchmark measures the same thing.

# bench_zone FILE writes the bench.test zone: www a pool of 8 A + 4 AAAA
# members, 1,000 static hosts.
bench_zone() {
  {
    cat <<Z
\$ORIGIN bench.test.
\$TTL 300
@       SOA ns1 hostmaster 1 3600 600 86400 60
        NS  ns1
        NS  ns2
        MX  10 mail
        TXT "v=spf1 -all"
        TXT "bench zone"
ns1     A   127.0.0.1
ns2     A   127.0.0.2
mail    A   127.0.0.3
alias   CNAME www
Z
    for i in 1 2 3 4 5 6 7 8; do echo "www 30 A 127.0.1.$i"; done
    for i in 1 2 3 4; do echo "www 30 AAAA ::ffff:127.0.1.$i"; done
    for i in $(seq 0 999); do echo "host$i A 10.$((i / 256)).$((i % 256)).1"; done
  } > "$1"
}

# bench_mix FILE writes the query mix, 100,000 lines, deterministic:
# 40 % www A, 10 % www AAAA, 30 % host A, 10 % NXDOMAIN, 10 % NODATA.
bench_mix() {
  awk 'BEGIN { srand(42); for (i = 0; i < 100000; i++) { r = rand();
    if (r < .4) print "www.bench.test A"; else if (r < .5) print "www.bench.test AAAA";
    else if (r < .8) printf "host%d.bench.test A\n", int(rand() * 1000);
    else if (r < .9) printf "nx%d.bench.test A\n", int(rand() * 100000);
    else printf "host%d.bench.test MX\n", int(rand() * 1000) } }' > "$1"
}
