// Package dnssec signs the answers of dnslb online.
//
// dnslb's answers depend on backend health, so no zone file exists to
// sign ahead of time: every answer is signed when it is made. This
// package holds what that needs:
//
//   - keys stored in BIND's key-directory format (K<zone>+<alg>+<tag>.key
//     and .private with BIND's timing lines), so that keys made by
//     dnssec-keygen can be imported and ours can be read by BIND tools;
//   - a pure, clock-injected rollover planner (Plan) and its executor
//     (Apply): ZSK pre-publication rollover (RFC 6781 4.1.1.1) and
//     double-KSK rollover signalled to the parent with CDS/CDNSKEY
//     (RFC 7344, RFC 8078);
//   - an immutable KeySet, the keys in force at one moment;
//   - a Signer with a bounded signature cache, because ECDSA signing costs
//     tens of microseconds and most answers repeat;
//   - compact denial of existence (RFC 9824), which needs one NSEC
//     record signed per negative answer and discloses nothing of the zone.
//
// Retirement timing differs from offline signing: a signature made online
// lives only as long as a resolver caches the answer it came with, so a
// ZSK that stopped signing stays published for the policy's MaxTTL plus a
// safety margin, not for the validity period of its signatures.
//
// Algorithm rollovers, CSKs, NSEC3 and CDS "delete" records are not
// supported.
package dnssec
