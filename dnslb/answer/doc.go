// Package answer is the authoritative answer path: the Authority turns a
// query's wire bytes into the packed reply from the View it serves (zones
// and the load-balancing pools over them), with the packed-response cache,
// DNS Cookies, TSIG verification and response rate limiting on the way.
// It is the dnsserver.Handler of a running dnslb.
//
// It knows nothing of config files, reloads or the state file: the root
// package builds each View from the config, swaps it in, and exports the
// counters the answer path keeps. Nothing here imports the root package.
package answer
