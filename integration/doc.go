// Package integration holds end-to-end tests that build the dnslb binary and run
// it against real clients and peers (dig, NSD, unbound, keepalived).
package integration
