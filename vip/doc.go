// Package vip is dnslb's VRRPv3 (RFC 5798) agent: it moves virtual IP
// addresses between two or more load-balancer hosts and interoperates with
// keepalived (vrrp_version 3).
//
// The package is split into a pure core and a thin operating-system shell:
//
//   - packet.go: the advertisement codec (encode, decode, checksum over the
//     IPv4/IPv6 pseudo-header, validation with counted drop reasons);
//   - machine.go: the state machine (Initialize, Backup, Master, Fault) as pure
//     transitions that take the current time and return Actions (ActAddVIPs,
//     ActRemoveVIPs, ActSendAdvert, ActSendGARP, ActNotify) plus the next
//     deadline, so it is table-tested with a fake clock and no sockets;
//   - instance.go: the event loop that drives one Machine through a Net (the
//     sockets, addresses and announcements) and the trackers;
//   - net_linux.go: the Linux Net: raw IP protocol 112 sockets (multicast
//     224.0.0.18 / ff02::12 or unicast peers, TTL/hop limit 255), virtual
//     addresses through netlink, gratuitous ARP and unsolicited neighbour
//     advertisements.
//
// Virtual addresses are reconciled to the state: they are removed at start
// (stale copies left by a crash) and on every exit from Master, including a
// graceful stop, so two hosts never answer for one address.
//
// Configuration arrives as a typed, validated Config; only the CLI reads files.
package vip
