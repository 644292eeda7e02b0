package dnslb

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/dnslb/dnslb/zones"
)

// Config is the server's configuration, as read from YAML (and DNSLB_*
// environment variables) by the CLI.
type Config struct {
	// Listen holds host:port addresses; each is served over UDP and TCP.
	Listen []string `mapstructure:"listen"`
	// Admin is the admin HTTP address.
	Admin string `mapstructure:"admin"`
	// Log configures logging.
	Log LogConfig `mapstructure:"log"`
	// Zones lists the zones to serve.
	Zones []ZoneConfig `mapstructure:"zones"`
	// UDPSize is the EDNS payload size advertised and the largest UDP reply.
	UDPSize int `mapstructure:"udp_size"`
	// TCP tunes the TCP listener.
	TCP TCPConfig `mapstructure:"tcp"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // json or console
}

// ZoneConfig names one zone and its file.
type ZoneConfig struct {
	Origin string `mapstructure:"origin"`
	// File is relative to the config file's directory.
	File string `mapstructure:"file"`
}

// TCPConfig tunes TCP serving.
type TCPConfig struct {
	IdleTimeout    time.Duration `mapstructure:"idle_timeout"`
	MaxConnections int           `mapstructure:"max_connections"`
}

// DefaultListen is where dnslb listens when the config says nothing.
const DefaultListen = "127.0.0.1:5353"

// ApplyDefaults fills in what the config left out.
func (c *Config) ApplyDefaults() {
	if len(c.Listen) == 0 {
		c.Listen = []string{DefaultListen}
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.UDPSize == 0 {
		c.UDPSize = DefaultUDPSize
	}
	if c.TCP.IdleTimeout == 0 {
		c.TCP.IdleTimeout = DefaultTCPIdleTimeout
	}
	if c.TCP.MaxConnections == 0 {
		c.TCP.MaxConnections = DefaultMaxTCPConns
	}
}

// Validate checks every field and reports all problems, each with its key
// path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for i, l := range c.Listen {
		if _, port, err := net.SplitHostPort(l); err != nil || port == "" {
			bad("listen[%d]: %q is not host:port", i, l)
		}
	}
	if c.Admin != "" {
		if _, _, err := net.SplitHostPort(c.Admin); err != nil {
			bad("admin: %q is not host:port", c.Admin)
		}
	}
	switch c.Log.Level {
	case "", "trace", "debug", "info", "warn", "error":
	default:
		bad("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "json", "console":
	default:
		bad("log.format: %q is not json or console", c.Log.Format)
	}
	if c.UDPSize != 0 && (c.UDPSize < 512 || c.UDPSize > 65535) {
		bad("udp_size: %d is outside 512-65535", c.UDPSize)
	}
	if c.TCP.IdleTimeout < 0 {
		bad("tcp.idle_timeout: must not be negative")
	}
	if c.TCP.MaxConnections < 0 {
		bad("tcp.max_connections: must not be negative")
	}
	if len(c.Zones) == 0 {
		bad("zones: at least one zone is needed")
	}
	seen := map[string]int{}
	for i, z := range c.Zones {
		if z.Origin == "" {
			bad("zones[%d].origin: missing", i)
		} else if j, dup := seen[zones.CanonicalName(z.Origin)]; dup {
			bad("zones[%d].origin: %s is already zones[%d]", i, z.Origin, j)
		} else {
			seen[zones.CanonicalName(z.Origin)] = i
		}
		if z.File == "" {
			bad("zones[%d].file: missing", i)
		}
	}
	return errors.Join(errs...)
}

// ZoneRoot says where zone files are read from: FS is the config file's
// directory, and Display is how that directory is named in messages.
type ZoneRoot struct {
	FS      fs.FS
	Display string
	// Dir is the directory on disk, when FS is one; absolute zone paths
	// outside it get their own root.
	Dir string
}

// LoadZones loads every configured zone. The error lists every problem in
// every zone (a zones.ErrorList), so an operator sees them all at once.
func LoadZones(cfg *Config, root ZoneRoot) (*zones.Set, error) {
	var (
		loaded []*zones.Zone
		errs   zones.ErrorList
	)
	for _, zc := range cfg.Zones {
		src := zoneSource(zc, root)
		z, err := zones.Load(src)
		if err != nil {
			errs = append(errs, zones.Errors(err)...)
			continue
		}
		loaded = append(loaded, z)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	set, err := zones.NewSet(loaded...)
	if err != nil {
		return nil, err
	}
	return set, nil
}

func zoneSource(zc ZoneConfig, root ZoneRoot) zones.Source {
	src := zones.Source{Origin: zc.Origin, FS: root.FS, Path: path.Clean(filepath.ToSlash(zc.File)), Display: root.Display}
	if filepath.IsAbs(zc.File) && root.Dir != "" {
		rel, err := filepath.Rel(root.Dir, zc.File)
		if err == nil && !strings.HasPrefix(rel, "..") {
			src.Path = filepath.ToSlash(rel)
		} else {
			// A zone file outside the config directory: it and its
			// $INCLUDEs are confined to its own directory.
			dir := filepath.Dir(zc.File)
			src.FS, src.Path, src.Display = osDirFS(dir), filepath.Base(zc.File), dir
		}
	}
	return src
}
