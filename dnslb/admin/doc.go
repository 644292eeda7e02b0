// Package admin is dnslb's admin HTTP server: liveness and readiness,
// Prometheus metrics, a JSON API over pools, members and zones, member
// drains, reloads, and a self-contained status page.
//
// It talks to the running server only through the Backend interface.
package admin
