// Package admin is dnslb's admin HTTP server: liveness and readiness,
// Prometheus metrics, a JSON API over pools, members and zones, member
// drains, reloads, and a self-contained status page; and Client, the
// API's typed client (what the CLI's status, drain, undrain and reload
// commands use).
//
// It talks to the running server only through the Backend interface, in
// the JSON shapes defined here; it imports nothing of dnslb's. The
// server (package dnslb) implements Backend and converts its own types
// (answer.Override, answer.MemberState) to these shapes.
package admin
