package dnslb

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/dnslb/dnslb/healthcheck"
)

// DefaultStateFile is the state file's name beside the config file.
const DefaultStateFile = "dnslb.state.json"

// stateFile is what dnslb keeps across restarts: operator overrides, the
// last known health of every target (so a restart does not start blind),
// and the serials it manages (serial: auto).
type stateFile struct {
	Version   int                       `json:"version"`
	SavedAt   time.Time                 `json:"saved_at"`
	Overrides map[string]admin.Override `json:"overrides"`
	Health    []savedHealth             `json:"health"`
	Serials   map[string]serialState    `json:"serials"`
}

type savedHealth struct {
	Address string    `json:"address"` // the probed address:port
	Check   string    `json:"check"`   // healthcheck.TargetKey.Check
	Up      bool      `json:"up"`
	Since   time.Time `json:"since"`
}

type serialState struct {
	Serial uint32 `json:"serial"`
	Digest string `json:"digest"` // of the zone files' content
}

// stateFilePath is the config's state_file, relative to the config
// directory, or the default beside the config; "" when the config is not
// on disk (the embedded example).
func stateFilePath(cfg *Config, root ZoneRoot) string {
	if root.Dir == "" {
		if filepath.IsAbs(cfg.StateFile) {
			return cfg.StateFile
		}
		return ""
	}
	name := cfg.StateFile
	if name == "" {
		name = DefaultStateFile
	}
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(root.Dir, name)
}

// loadState reads the state file, restores unexpired overrides and serials,
// and returns the saved health to seed the scheduler with. A missing file
// is normal; a broken one is logged and ignored.
func (r *Runtime) loadState() map[healthcheck.TargetKey]healthcheck.Status {
	if r.statePath == "" {
		return nil
	}
	data, err := os.ReadFile(r.statePath)
	if err != nil {
		if !os.IsNotExist(err) {
			r.log.Warn().Err(err).Str("file", r.statePath).Msg("state file not read")
		}
		return nil
	}
	var sf stateFile
	if err := json.Unmarshal(data, &sf); err != nil {
		r.log.Warn().Err(err).Str("file", r.statePath).Msg("state file not understood; starting without it")
		return nil
	}
	now := r.opts.Now()
	for a, ov := range sf.Overrides {
		addr, err := netip.ParseAddr(a)
		if err != nil || (!ov.Until.IsZero() && !now.Before(ov.Until)) {
			continue
		}
		r.overrides[addr.Unmap()] = ov
		r.log.Info().Str("member", a).Str("mode", string(ov.Mode)).Str("reason", ov.Reason).Msg("override restored from state file")
	}
	for origin, s := range sf.Serials {
		r.serials[origin] = s
	}
	seed := map[healthcheck.TargetKey]healthcheck.Status{}
	for _, h := range sf.Health {
		ap, err := netip.ParseAddrPort(h.Address)
		if err != nil {
			continue
		}
		seed[healthcheck.TargetKey{Check: h.Check, Addr: ap}] = healthcheck.Status{Up: h.Up, Since: h.Since}
	}
	return seed
}

func (r *Runtime) saveState() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.saveStateLocked()
}

// saveStateLocked writes the state file atomically: a temporary file in the
// same directory, synced, then renamed over the old one.
func (r *Runtime) saveStateLocked() {
	if r.statePath == "" {
		return
	}
	sf := stateFile{Version: 1, SavedAt: r.opts.Now(), Overrides: map[string]admin.Override{}, Serials: r.serials}
	for a, ov := range r.overrides {
		sf.Overrides[a.String()] = ov
	}
	if r.sched != nil {
		for k, st := range r.sched.Statuses() {
			if !st.Checked {
				continue // nothing learnt yet
			}
			sf.Health = append(sf.Health, savedHealth{Address: k.Addr.String(), Check: k.Check, Up: st.Up, Since: st.Since})
		}
	}
	data, err := json.MarshalIndent(sf, "", "  ")
	if err == nil {
		err = writeFileAtomic(r.statePath, data)
	}
	if err != nil {
		r.log.Warn().Err(err).Str("file", r.statePath).Msg("state file not written")
	}
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: no such file
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}
