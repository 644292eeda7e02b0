package dnssec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dnslb/dnslb/internal/fuzzguard"
)

// Key files may come from anywhere (an import, a damaged disk): whatever
// they hold, LoadKeys returns keys or an error, never a crash.
func FuzzLoadKeys(f *testing.F) {
	dir := f.TempDir()
	for _, alg := range []Algorithm{ECDSAP256SHA256, ED25519} {
		k, err := Generate(dir, "example.com", alg, KSK, t0)
		if err != nil {
			f.Fatal(err)
		}
		key, _ := os.ReadFile(k.Path)
		priv, _ := os.ReadFile(privatePath(k.Path))
		f.Add(filepath.Base(k.Path), key, priv)
	}
	f.Add("Kexample.com.+013+00000.key", []byte("example.com. IN DNSKEY 256 3 13 AAAA\n$INCLUDE /etc/passwd\n"), []byte("Private-key-format: v1.3\nAlgorithm: 13\nPrivateKey: AAAA\n"))
	f.Add("Kexample.com.+015+00001.key", []byte("example.com. IN DNSKEY 257 3 15 ("), []byte("PrivateKey:\n::::\nCreated: 99999999999999\n"))
	f.Fuzz(func(t *testing.T, name string, key, priv []byte) {
		if filepath.Base(name) != name || len(name) > 200 {
			return
		}
		fuzzguard.Run(t, "LoadKeys", fuzzguard.Limit, func() {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			base := filepath.Join(dir, name)
			if err := os.WriteFile(base, key, 0o644); err != nil {
				return
			}
			if err := os.WriteFile(privatePath(base), priv, 0o600); err != nil {
				return
			}
			keys, err := LoadKeys(dir, "example.com")
			if err != nil {
				return
			}
			for _, k := range keys {
				// A loaded key is complete and round-trips.
				if k.Signer() == nil || k.DNSKEY == nil || k.Tag != k.DNSKEY.KeyTag() {
					t.Fatalf("incomplete key %v", k)
				}
				if err := SaveTiming(k); err != nil {
					t.Fatalf("SaveTiming of a loaded key: %v", err)
				}
			}
		})
	})
}
