package dnssec

import (
	"crypto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func keyDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestParseAlgorithm(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Algorithm
		ok   bool
	}{
		{"ecdsap256sha256", ECDSAP256SHA256, true}, {"ECDSAP256SHA256", ECDSAP256SHA256, true}, {"13", ECDSAP256SHA256, true},
		{"ed25519", ED25519, true}, {"Ed25519", ED25519, true}, {"15", ED25519, true},
		{"8", 0, false}, {"rsasha256", 0, false}, {"", 0, false},
	} {
		got, err := ParseAlgorithm(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseAlgorithm(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func sameKey(t *testing.T, got, want *Key) {
	t.Helper()
	if got.Zone != want.Zone || got.Role != want.Role || got.Algorithm != want.Algorithm || got.Tag != want.Tag ||
		got.DNSKEY.PublicKey != want.DNSKEY.PublicKey || got.DNSKEY.Flags != want.DNSKEY.Flags || got.Path != want.Path {
		t.Errorf("loaded %v %+v, want %v %+v", got, got.DNSKEY, want, want.DNSKEY)
	}
	if got.Timing() != want.Timing() || !got.Created.Equal(want.Created) {
		t.Errorf("%v timing %+v created %v, want %+v %v", got, got.Timing(), got.Created, want.Timing(), want.Created)
	}
	type eq interface{ Equal(crypto.PrivateKey) bool }
	if !got.Signer().(eq).Equal(want.Signer()) {
		t.Errorf("%v: private key differs", got)
	}
}

func TestGenerateLoadRoundTrip(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP256SHA256, ED25519} {
		for _, role := range []Role{KSK, ZSK} {
			t.Run(alg.String()+"/"+role.String(), func(t *testing.T) {
				dir := keyDir(t)
				k, err := Generate(dir, "Example.COM", alg, role, t0)
				if err != nil {
					t.Fatal(err)
				}
				if k.Zone != "example.com." || k.Tag != k.DNSKEY.KeyTag() || k.DNSKEY.Flags != role.flags() {
					t.Fatalf("key %v flags %d", k, k.DNSKEY.Flags)
				}
				if want := filepath.Join(dir, baseName("example.com.", alg, k.Tag)+".key"); k.Path != want {
					t.Errorf("path %s, want %s", k.Path, want)
				}
				fi, err := os.Stat(privatePath(k.Path))
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("private file: %v %v", fi, err)
				}
				if !k.Published(t0) || !k.Active(t0) || k.Published(t0.Add(-time.Second)) {
					t.Errorf("generated key not published and active at creation")
				}
				// A zone of another name and a stray file are ignored.
				if _, err := Generate(dir, "example.net", alg, role, t0); err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o644)
				keys, err := LoadKeys(dir, "example.com.")
				if err != nil {
					t.Fatal(err)
				}
				if len(keys) != 1 {
					t.Fatalf("loaded %d keys, want 1", len(keys))
				}
				sameKey(t, keys[0], k)
				// miekg/dns reads our .private file too (BIND compatibility).
				f, _ := os.Open(privatePath(k.Path))
				defer f.Close()
				if _, err := k.DNSKEY.ReadPrivateKey(f, "x"); err != nil {
					t.Errorf("miekg/dns cannot read our private key: %v", err)
				}
				checkWithBIND(t, k)
			})
		}
	}
}

// dnssecTool returns the path of a BIND tool, or "" when it is absent;
// under CI=true its absence fails the test.
func dnssecTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (install bind9-utils / bind9 to run this test)", name)
		}
		return ""
	}
	return p
}

// checkWithBIND has dnssec-settime print the timing of our key: BIND
// must read our files.
func checkWithBIND(t *testing.T, k *Key) {
	t.Helper()
	tool := dnssecTool(t, "dnssec-settime")
	if tool == "" {
		t.Log("dnssec-settime not installed: our files are not checked with BIND")
		return
	}
	out, err := exec.Command(tool, "-p", "all", "-u", strings.TrimSuffix(k.Path, ".key")).CombinedOutput()
	if err != nil {
		t.Fatalf("dnssec-settime cannot read our key: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Activate: "+strconv.FormatInt(k.Activate.Unix(), 10)) {
		t.Errorf("dnssec-settime output lacks our Activate time:\n%s", out)
	}
}

// BIND's keys, made here by miekg/dns in BIND's file format, import.
func TestImportBINDFormat(t *testing.T) {
	for _, alg := range []uint8{dns.ECDSAP256SHA256, dns.ED25519} {
		dir := keyDir(t)
		dk := &dns.DNSKEY{Hdr: dns.RR_Header{Name: "example.org.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
			Flags: 257, Protocol: 3, Algorithm: alg}
		priv, err := dk.Generate(256)
		if err != nil {
			t.Fatal(err)
		}
		base := filepath.Join(dir, baseName("example.org.", Algorithm(alg), dk.KeyTag()))
		key := "; This is a key-signing key, keyid 1, for example.org.\n; Created: 20260101000000 (Thu Jan  1 00:00:00 2026)\n" + dk.String() + "\n"
		private := dk.PrivateKeyString(priv) + "Created: 20260101000000\nPublish: 20260101000000\nActivate: 20260102030405\nSyncPublish: 20260103000000\n"
		os.WriteFile(base+".key", []byte(key), 0o644)
		os.WriteFile(base+".private", []byte(private), 0o600)
		keys, err := LoadKeys(dir, "example.org")
		if err != nil {
			t.Fatalf("alg %d: %v", alg, err)
		}
		k := keys[0]
		if k.Role != KSK || k.Tag != dk.KeyTag() || !k.Activate.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || !k.Inactive.IsZero() {
			t.Errorf("alg %d: imported %v timing %+v", alg, k, k.Timing())
		}
		// SaveTiming keeps BIND's own lines.
		k2 := k.withTiming(Timing{Publish: k.Publish, Activate: k.Activate, Inactive: t0.AddDate(0, 1, 0), Delete: t0.AddDate(0, 2, 0)})
		if err := SaveTiming(k2); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(base + ".private")
		if !strings.Contains(string(b), "SyncPublish: 20260103000000") || !strings.Contains(string(b), "Delete: 20260301000000") {
			t.Errorf("rewritten .private:\n%s", b)
		}
		keys, err = LoadKeys(dir, "example.org")
		if err != nil {
			t.Fatal(err)
		}
		sameKey(t, keys[0], k2)
	}
}

// Keys made by BIND's own dnssec-keygen import.
func TestImportDnssecKeygen(t *testing.T) {
	tool := dnssecTool(t, "dnssec-keygen")
	if tool == "" {
		t.Skip("dnssec-keygen not installed (bind9 / bind9-utils): BIND-made keys not tested")
	}
	dir := keyDir(t)
	for _, args := range [][]string{
		{"-a", "ECDSAP256SHA256", "-f", "KSK"}, {"-a", "ECDSAP256SHA256"}, {"-a", "ED25519", "-P", "20260101000000", "-A", "20260102000000", "-I", "20260201000000", "-D", "20260301000000"},
	} {
		cmd := exec.Command(tool, append(append([]string{"-q", "-K", dir}, args...), "bind.example")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dnssec-keygen %v: %v\n%s", args, err, out)
		}
	}
	keys, err := LoadKeys(dir, "bind.example.")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("imported %d keys, want 3", len(keys))
	}
	var ksk, ed int
	for _, k := range keys {
		if k.Role == KSK {
			ksk++
		}
		if k.Algorithm == ED25519 {
			ed++
			want := Timing{Publish: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Activate: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
				Inactive: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Delete: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
			if k.Timing() != want {
				t.Errorf("BIND timing read as %+v, want %+v", k.Timing(), want)
			}
		}
		// An imported key signs verifiably.
		rr := []dns.RR{mustRR(t, "www.bind.example. 300 IN A 192.0.2.1")}
		sig := &dns.RRSIG{Algorithm: uint8(k.Algorithm), KeyTag: k.Tag, SignerName: k.Zone, Inception: 1, Expiration: 1 << 31}
		if err := sig.Sign(k.Signer(), rr); err != nil {
			t.Fatal(err)
		}
		if err := sig.Verify(k.DNSKEY, rr); err != nil {
			t.Errorf("%v: %v", k, err)
		}
	}
	if ksk != 1 || ed != 1 {
		t.Errorf("imported %d KSKs, %d Ed25519 keys", ksk, ed)
	}
}

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func TestLoadKeysRefusals(t *testing.T) {
	type setup func(t *testing.T, dir string, k, other *Key)
	rewrite := func(path, old, new string) func(t *testing.T) {
		return func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), old) {
				t.Fatalf("%s lacks %q", path, old)
			}
			mode := os.FileMode(0o644)
			if strings.HasSuffix(path, ".private") {
				mode = 0o600
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		setup setup
		want  string // in the error
	}{
		{"private 0644", func(t *testing.T, dir string, k, _ *Key) { os.Chmod(privatePath(k.Path), 0o644) }, ".private is accessible by group or others"},
		{"private 0640", func(t *testing.T, dir string, k, _ *Key) { os.Chmod(privatePath(k.Path), 0o640) }, "accessible by group"},
		{"private 0620", func(t *testing.T, dir string, k, _ *Key) { os.Chmod(privatePath(k.Path), 0o620) }, "accessible by group"},
		{"dir 0777", func(t *testing.T, dir string, k, _ *Key) { os.Chmod(dir, 0o777) }, "writable by others"},
		{"no private", func(t *testing.T, dir string, k, _ *Key) { os.Remove(privatePath(k.Path)) }, "has no private key file"},
		{"mismatched pair", func(t *testing.T, dir string, k, other *Key) {
			b, _ := os.ReadFile(privatePath(other.Path))
			os.WriteFile(privatePath(k.Path), b, 0o600)
		}, "does not match the public key"},
		{"unsupported algorithm", func(t *testing.T, dir string, k, _ *Key) {
			os.WriteFile(filepath.Join(dir, "Kexample.com.+008+12345.key"), []byte("example.com. IN DNSKEY 256 3 8 AwEAAa==\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "Kexample.com.+008+12345.private"), []byte("Private-key-format: v1.3\nAlgorithm: 8 (RSASHA256)\n"), 0o600)
		}, "unsupported algorithm 8"},
		{"tag not the file's", func(t *testing.T, dir string, k, _ *Key) {
			os.Rename(k.Path, filepath.Join(dir, "Kexample.com.+013+00001.key"))
			os.Rename(privatePath(k.Path), filepath.Join(dir, "Kexample.com.+013+00001.private"))
		}, "does not match the file name"},
		{"bad time", func(t *testing.T, dir string, k, _ *Key) {
			rewrite(privatePath(k.Path), "Activate: 20260101000000", "Activate: 2026-01-01")(t)
		}, ".private:6: activate: invalid time"},
		{"duplicate line", func(t *testing.T, dir string, k, _ *Key) {
			rewrite(privatePath(k.Path), "Activate: 20260101000000", "Activate: 20260101000000\nActivate: 20260101000000")(t)
		}, ".private:7: activate given twice"},
		{"key syntax", func(t *testing.T, dir string, k, _ *Key) {
			rewrite(k.Path, " IN DNSKEY 256 3 13", " IN DNSKEY 256 3 thirteen")(t)
		}, "line: 5"},
		{"key of another zone", func(t *testing.T, dir string, k, _ *Key) {
			rewrite(k.Path, "\nexample.com. IN", "\nexample.net. IN")(t)
		}, "is not the zone"},
		{"revoked", func(t *testing.T, dir string, k, _ *Key) {
			rewrite(k.Path, "DNSKEY 256 3 13", "DNSKEY 384 3 13")(t)
		}, "flags 384"},
		{"private algorithm differs", func(t *testing.T, dir string, k, _ *Key) {
			rewrite(privatePath(k.Path), "Algorithm: 13", "Algorithm: 15")(t)
		}, "algorithm 15 does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := keyDir(t)
			k, err := Generate(dir, "example.com", ECDSAP256SHA256, ZSK, t0)
			if err != nil {
				t.Fatal(err)
			}
			other, err := Generate(keyDir(t), "example.com", ECDSAP256SHA256, ZSK, t0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := LoadKeys(dir, "example.com"); err != nil {
				t.Fatalf("before the change: %v", err)
			}
			tc.setup(t, dir, k, other)
			_, err = LoadKeys(dir, "example.com")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "dnssec: ") {
				t.Fatalf("LoadKeys = %v, want an error with %q", err, tc.want)
			}
			if tc.name != "dir 0777" && !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if _, err := Generate(filepath.Join(t.TempDir(), "nope"), "example.com", ED25519, ZSK, t0); err == nil {
		t.Error("Generate into a missing directory succeeded")
	}
	d := keyDir(t)
	os.Chmod(d, 0o777)
	if _, err := Generate(d, "example.com", ED25519, ZSK, t0); err == nil {
		t.Error("Generate into a world-writable directory succeeded")
	}
}

func TestSaveTimingRoundTrip(t *testing.T) {
	dir := keyDir(t)
	k, err := Generate(dir, "example.com", ED25519, KSK, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range []Timing{
		{Publish: t0, Activate: t0.Add(time.Hour), Inactive: t0.Add(48 * time.Hour), Delete: t0.Add(72 * time.Hour)},
		{Publish: t0},
		{},
		{Publish: t0.Add(time.Second), Activate: t0.Add(2 * time.Second), Delete: t0.AddDate(10, 0, 0)},
	} {
		nk := k.withTiming(tm)
		if err := SaveTiming(nk); err != nil {
			t.Fatal(err)
		}
		keys, err := LoadKeys(dir, "example.com")
		if err != nil {
			t.Fatal(err)
		}
		sameKey(t, keys[0], nk)
		fi, _ := os.Stat(privatePath(k.Path))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode after SaveTiming %v", fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d files, want 2 (temporary files left?)", len(entries))
	}
	// SaveTiming refuses to rewrite a .private that is not k's.
	other, _ := Generate(keyDir(t), "example.com", ED25519, KSK, t0)
	b, _ := os.ReadFile(privatePath(other.Path))
	os.WriteFile(privatePath(k.Path), b, 0o600)
	if err := SaveTiming(k); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("SaveTiming over another key's file: %v", err)
	}
}

func TestDSAndCDS(t *testing.T) {
	k, err := Generate(keyDir(t), "example.com", ECDSAP256SHA256, KSK, t0)
	if err != nil {
		t.Fatal(err)
	}
	ds := k.DS(0)
	if ds == nil || ds.DigestType != dns.SHA256 || ds.KeyTag != k.Tag || ds.Algorithm != 13 || ds.Hdr.Name != "example.com." {
		t.Fatalf("DS %v", ds)
	}
	if d := k.DS(dns.SHA384); d == nil || len(d.Digest) != 96 {
		t.Errorf("SHA-384 DS %v", d)
	}
	if k.DS(dns.SHA1) != nil {
		t.Error("SHA-1 DS made")
	}
	if c := k.CDS(); c == nil || c.Digest != ds.Digest || c.Hdr.Rrtype != dns.TypeCDS {
		t.Errorf("CDS %v", c)
	}
	if c := k.CDNSKEY(); c == nil || c.PublicKey != k.DNSKEY.PublicKey || c.Hdr.Rrtype != dns.TypeCDNSKEY || c.Flags != 257 {
		t.Errorf("CDNSKEY %v", c)
	}
}
