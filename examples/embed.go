// Package examples holds the example configuration and zone that `dnslb
// serve` uses when started without --config, embedded into the binary. The
// same files are on disk for `dnslb check --config examples/dnslb.yaml`.
package examples

import "embed"

// ConfigFile is the example configuration's path inside FS.
const ConfigFile = "dnslb.yaml"

// FS holds dnslb.yaml and the zone files it names.
//
//go:embed dnslb.yaml zones
var FS embed.FS
