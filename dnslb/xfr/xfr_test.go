package xfr

import (
	"net/netip"
	"testing"
)

func TestAllowed(t *testing.T) {
	rule := func(prefix, key string) Rule {
		r, err := ParseRule(prefix, key)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	z := Zone{Origin: "example.test.", Allow: []Rule{
		rule("192.0.2.53", "XFR-Key"), // this address, with this key
		rule("198.51.100.0/24", ""),   // these, signed or not
		rule("", "any-key."),          // anyone with this key
	}}
	for _, tc := range []struct {
		addr, key string
		want      bool
	}{
		{"192.0.2.53", "xfr-key.", true},
		{"192.0.2.53", "", false},
		{"192.0.2.53", "other.", false},
		{"192.0.2.54", "xfr-key.", false},
		{"::ffff:192.0.2.53", "xfr-key.", true},
		{"198.51.100.7", "", true},
		{"198.51.100.7", "xfr-key.", true},
		{"203.0.113.1", "any-key.", true},
		{"203.0.113.1", "", false},
	} {
		if got := z.Allowed(netip.MustParseAddr(tc.addr), tc.key); got != tc.want {
			t.Errorf("Allowed(%s, %q) = %v, want %v", tc.addr, tc.key, got, tc.want)
		}
	}
	if (&Zone{}).Allowed(netip.MustParseAddr("127.0.0.1"), "") {
		t.Error("an empty ACL allows")
	}
}
