package zones

import (
	"strings"

	"github.com/miekg/dns"
)

// CanonicalName returns name as a lower-case, fully qualified domain name,
// the form every key in this package uses.
func CanonicalName(name string) string {
	return strings.ToLower(dns.Fqdn(name))
}

// isSubdomain reports whether child is parent or below it. Both must be
// canonical.
func isSubdomain(child, parent string) bool {
	if parent == "." {
		return true
	}
	if len(child) < len(parent) {
		return false
	}
	if len(child) == len(parent) {
		return child == parent
	}
	if !strings.HasSuffix(child, parent) {
		return false
	}
	// The byte before the suffix must end a label, and must not itself be
	// escaped ("a\.example." is one label, not a child of "example.").
	i := len(child) - len(parent) - 1
	if child[i] != '.' {
		return false
	}
	backslashes := 0
	for j := i - 1; j >= 0 && child[j] == '\\'; j-- {
		backslashes++
	}
	return backslashes%2 == 0
}

// parentName returns the name one label up, or "" for the root.
func parentName(name string) string {
	if name == "." {
		return ""
	}
	off, end := dns.NextLabel(name, 0)
	if end || off >= len(name) {
		return "."
	}
	return name[off:]
}
