package dnslb

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/miekg/dns"
)

// newKeyring checks the keys of a tsig: block and builds them. Problems
// name the key path and never the secret.
func newKeyring(keys []TSIGKeyConfig) (*answer.Keyring, Problems) {
	var errs Problems
	bad := func(key, format string, args ...any) { errs = append(errs, keyed(key, format, args...)) }
	ring := answer.NewKeyring()
	seen := map[string]int{}
	for i, kc := range keys {
		key := fmt.Sprintf("tsig.keys[%d]", i)
		ok := true
		if kc.Name == "" {
			bad(key+".name", "missing")
			ok = false
		} else if _, valid := dns.IsDomainName(kc.Name); !valid {
			bad(key+".name", "%q is not a domain name", kc.Name)
			ok = false
		} else if j, dup := seen[dns.CanonicalName(kc.Name)]; dup {
			bad(key+".name", "%s is already tsig.keys[%d]", kc.Name, j)
			ok = false
		} else {
			seen[dns.CanonicalName(kc.Name)] = i
		}
		if kc.Algorithm == "" {
			bad(key+".algorithm", "missing (one of %s)", strings.Join(answer.TSIGAlgorithms, ", "))
			ok = false
		} else if !answer.KnownTSIGAlgorithm(kc.Algorithm) {
			bad(key+".algorithm", "%q is not one of %s", kc.Algorithm, strings.Join(answer.TSIGAlgorithms, ", "))
			ok = false
		}
		secret, err := base64.StdEncoding.DecodeString(string(kc.Secret))
		switch {
		case kc.Secret == "":
			bad(key+".secret", "missing")
			ok = false
		case err != nil:
			bad(key+".secret", "not base64") // the error would quote the secret
			ok = false
		case len(secret) == 0:
			bad(key+".secret", "empty")
			ok = false
		}
		if ok {
			ring.Add(kc.Name, kc.Algorithm, secret)
		}
	}
	return ring, errs
}
