package dnslb

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dnslb/dnslb/dnslb/answer"
	"github.com/dnslb/dnslb/fleet"
	"github.com/dnslb/dnslb/healthcheck"
)

// DefaultStateFile is the state file's name beside the config file.
const DefaultStateFile = "dnslb.state.json"

// stateFile is what dnslb keeps across restarts: operator overrides, the
// last known health of every target (so a restart does not start blind),
// and the serials it manages (serial: auto). It is the file's format,
// version stateVersion, and its types are its own: the admin API's JSON
// and the core's types may change without changing what is on disk.
// decodeState reads every version this dnslb knows into it.
type stateFile struct {
	Version   int                      `json:"version"`
	SavedAt   time.Time                `json:"saved_at"`
	Overrides map[string]stateOverride `json:"overrides"`
	Health    []savedHealth            `json:"health"`
	Serials   map[string]serialState   `json:"serials"`
	// TransferSerials are the serials of zones transferred with view:
	// filtered, which grow on every change of a pool's answers.
	TransferSerials map[string]uint32 `json:"transfer_serials,omitempty"`
	// CookieSecret is the generated DNS Cookie secret (hex), so that
	// server cookies handed out stay valid across a restart. A secret
	// of the config's (cookies.secret) is not written here.
	CookieSecret secretHex `json:"cookie_secret,omitempty"`
	// FleetOverrides are the fleet's overrides with their stamps, lifted
	// ones included, so that a restarted node neither loses a change
	// nor takes back an old one (see package fleet).
	FleetOverrides []stateFleetOverride `json:"fleet_overrides,omitempty"`
}

// stateFleetOverride is a fleet override as the state file spells it.
type stateFleetOverride struct {
	Member    string    `json:"member"`
	Mode      string    `json:"mode"` // "drain", "force-down", or "" (lifted)
	Reason    string    `json:"reason,omitempty"`
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until,omitzero"`
	StampWall int64     `json:"stamp_wall"`
	StampNode string    `json:"stamp_node"`
}

// stateOverride is an operator override as the state file spells it.
type stateOverride struct {
	Mode   string    `json:"mode"` // "drain" or "force-down"
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until,omitzero"`
}

// secretHex is a secret kept in the state file. It prints as
// "[redacted]", so that a state file logged or put into an error by
// mistake does not hand it out; JSON writes it as it is.
type secretHex string

func (secretHex) String() string   { return "[redacted]" }
func (secretHex) GoString() string { return "[redacted]" }

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

// StateFileError is NewRuntime's error for a state file that exists but
// cannot be read or understood. Such a file is left as it is: it may hold
// drains and force-downs, which starting without it (and soon writing a
// new one over it) would silently undo.
type StateFileError struct {
	Path string
	Err  error // what is wrong with it
}

func (e *StateFileError) Error() string { return fmt.Sprintf("state file %s %v", e.Path, e.Err) }
func (e *StateFileError) Unwrap() error { return e.Err }

// stateVersion is the stateFile version this dnslb writes. Version 1 is
// what dnslb has written since it has a state file (its override entries
// then had the admin API's JSON shape, which stateOverride keeps). A
// change that old versions cannot read bumps it, and decodeState migrates
// the versions before; fields that older versions may ignore do not.
const stateVersion = 1

// restored is what the state file gives a starting Runtime besides the
// cookie secret, which loadState sets.
type restored struct {
	overrides map[netip.Addr]answer.Override // unexpired ones
	health    map[healthcheck.TargetKey]healthcheck.Status
	serials   map[string]serialState // the managed serials, for the first generation
	// transferSerials are the filtered zones' serials.
	transferSerials map[string]uint32
	// fleetOverrides are the fleet's, stamped.
	fleetOverrides []fleet.Override
}

// loadState reads the state file, restores the cookie secret, and returns
// the unexpired overrides and the serials, for the first generation, and
// the saved health, to seed the scheduler with. A missing file
// is normal. One that cannot be read or parsed is a *StateFileError and is
// not touched, unless IgnoreState: then it is renamed aside, an error is
// logged, and dnslb starts without it. Temporary files of writes cut short
// by a crash are removed once the state is settled.
func (r *Runtime) loadState() (restored, error) {
	rs := restored{overrides: map[netip.Addr]answer.Override{}, health: map[healthcheck.TargetKey]healthcheck.Status{},
		serials: map[string]serialState{}}
	if r.statePath == "" {
		return rs, nil
	}
	sf, err := r.readState()
	if err != nil {
		if !r.opts.IgnoreState {
			return rs, err
		}
		if err := r.setStateAside(err); err != nil {
			return rs, err
		}
	}
	r.removeStaleTemps()
	if sf == nil {
		return rs, nil
	}
	now := r.opts.Now()
	for a, so := range sf.Overrides {
		addr, err := netip.ParseAddr(a)
		mode, ok := answer.ParseOverrideMode(so.Mode)
		if err != nil || !ok {
			continue // refused by readState
		}
		ov := answer.Override{Mode: mode, Reason: so.Reason, Since: so.Since, Until: so.Until}
		if ov.Expired(now) {
			continue
		}
		rs.overrides[addr] = ov
		r.log.Info().Str("member", a).Str("mode", so.Mode).Str("reason", ov.Reason).Msg("override restored from state file")
	}
	for origin, s := range sf.Serials {
		rs.serials[origin] = s
	}
	for _, o := range sf.FleetOverrides {
		rs.fleetOverrides = append(rs.fleetOverrides, fleet.Override{Member: o.Member, Mode: o.Mode, Reason: o.Reason,
			Since: o.Since, Until: o.Until, Stamp: fleet.Stamp{Wall: o.StampWall, Node: o.StampNode}})
	}
	rs.transferSerials = sf.TransferSerials
	// The secret is never logged, not even when it is unusable.
	if _, err := answer.ParseCookieSecret(string(sf.CookieSecret)); err == nil {
		r.cookieSecret = string(sf.CookieSecret)
	} else if sf.CookieSecret != "" {
		r.log.Warn().Str("file", r.statePath).Msg("state file: the cookie secret is not 32 hex digits; a new one is made (cookies handed out before are invalid)")
	}
	for _, h := range sf.Health {
		ap, err := netip.ParseAddrPort(h.Address)
		if err != nil {
			continue // refused by readState
		}
		rs.health[healthcheck.TargetKey{Check: h.Check, Addr: ap}] = healthcheck.Status{Up: h.Up, Since: h.Since}
	}
	return rs, nil
}

// readState reads and parses the state file: nil, nil when there is none.
func (r *Runtime) readState() (*stateFile, *StateFileError) {
	data, err := r.stateFS.ReadFile(r.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &StateFileError{Path: r.statePath, Err: fmt.Errorf("cannot be read: %w", r.withoutStatePath(err))}
	}
	sf, err := decodeState(data)
	if err != nil {
		return nil, &StateFileError{Path: r.statePath, Err: err}
	}
	if err := sf.check(); err != nil {
		return nil, &StateFileError{Path: r.statePath, Err: fmt.Errorf("is invalid (edited by hand?): %w", err)}
	}
	return sf, nil
}

// decodeState parses a state file of any version this dnslb reads into
// the current format, migrating older ones. A version it does not know
// (a newer dnslb's, or none at all) is refused: read as this version, the
// parts it does not know would be dropped and the next save would
// overwrite them.
func decodeState(data []byte) (*stateFile, error) {
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("cannot be parsed (truncated or corrupt?): %w", err)
	}
	switch head.Version {
	case stateVersion:
		var sf stateFile
		if err := json.Unmarshal(data, &sf); err != nil {
			return nil, fmt.Errorf("cannot be parsed (truncated or corrupt?): %w", err)
		}
		return &sf, nil
	case 0:
		return nil, fmt.Errorf("has version 0 or none (not written by dnslb?); this dnslb understands version %d", stateVersion)
	}
	more := ""
	if head.Version > stateVersion {
		more = " (written by a newer dnslb: run that one, or move the file aside to start without its drains)"
	}
	return nil, fmt.Errorf("has version %d; this dnslb understands version %d%s", head.Version, stateVersion, more)
}

// check finds entries dnslb never writes. Each would otherwise be
// restored as something the API cannot make (a drain in an unknown mode
// half applies) or be dropped without a word, and the next save would
// overwrite the file that held it.
func (sf *stateFile) check() error {
	seen := map[netip.Addr]string{}
	for _, a := range slices.Sorted(maps.Keys(sf.Overrides)) {
		addr, err := netip.ParseAddr(a)
		switch {
		case err != nil || addr.Zone() != "":
			return fmt.Errorf("overrides[%q]: not an IP address", a)
		case addr.Is4In6():
			return fmt.Errorf("overrides[%q]: an IPv4-mapped address; write it as %s", a, addr.Unmap())
		case seen[addr] != "":
			return fmt.Errorf("overrides[%q]: the same address as overrides[%q]", a, seen[addr])
		}
		seen[addr] = a
		if m := sf.Overrides[a].Mode; m != answer.OverrideDrain.String() && m != answer.OverrideForceDown.String() {
			return fmt.Errorf("overrides[%q]: mode %q is not %q or %q", a, m, answer.OverrideDrain, answer.OverrideForceDown)
		}
	}
	for i, o := range sf.FleetOverrides {
		if !keepableFleetOverride(fleet.Override{Member: o.Member, Mode: o.Mode}) {
			return fmt.Errorf("fleet_overrides[%d]: member %q, mode %q: not an address as dnslb writes it with %q, %q or empty (lifted)",
				i, o.Member, o.Mode, answer.OverrideDrain, answer.OverrideForceDown)
		}
	}
	for i, h := range sf.Health {
		if _, err := netip.ParseAddrPort(h.Address); err != nil {
			return fmt.Errorf("health[%d]: address %q is not address:port", i, h.Address)
		}
	}
	return nil
}

// withoutStatePath drops the state file's own path from an error about it,
// which StateFileError names already.
func (r *Runtime) withoutStatePath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == r.statePath {
		return pe.Err
	}
	return err
}

// setStateAside renames the unusable state file to
// PATH.corrupt-TIMESTAMP, never over an earlier one, so that the operator
// can still see (and restore) what it held.
func (r *Runtime) setStateAside(problem *StateFileError) error {
	base := r.statePath + ".corrupt-" + r.opts.Now().UTC().Format("20060102T150405Z")
	aside := base
	// An Lstat error other than "does not exist" ends the search too: the
	// rename then reports it.
	for n := 2; ; n++ {
		if _, err := r.stateFS.Lstat(aside); err != nil {
			break
		}
		aside = fmt.Sprintf("%s-%d", base, n)
	}
	err := r.stateFS.Rename(r.statePath, aside)
	if err == nil {
		err = r.stateFS.SyncDir(filepath.Dir(r.statePath))
	}
	if err != nil {
		return &StateFileError{Path: r.statePath, Err: fmt.Errorf("%v, and it could not be set aside: %w", problem.Err, err)}
	}
	r.log.Error().Str("file", r.statePath).Str("moved_to", aside).Str("problem", problem.Err.Error()).
		Msg("state file unusable; set aside (--ignore-state): the drains and force-downs it held were NOT restored")
	return nil
}

// removeStaleTemps removes the temporary files (see writeFileAtomic) that
// a crash left behind. None of them was renamed into place, so none holds
// a change that was acknowledged.
func (r *Runtime) removeStaleTemps() {
	dir, prefix := filepath.Dir(r.statePath), "."+filepath.Base(r.statePath)+"."
	entries, err := r.stateFS.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn().Err(err).Str("dir", dir).Msg("stale temporary state files not looked for")
		}
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := r.stateFS.Remove(p); err != nil {
			r.log.Warn().Err(err).Str("file", p).Msg("stale temporary state file not removed")
			continue
		}
		r.log.Info().Str("file", p).Msg("stale temporary state file removed")
	}
}

// saveState writes the state file, best effort: for what is not an
// operator's change (health, serials, expired overrides), a failed write
// must not stop anything. A failure is logged when writes start failing
// and again when one works, not on each retry.
func (r *Runtime) saveState() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.saveStateLocked()
}

func (r *Runtime) saveStateLocked() {
	if err := r.writeStateLocked(r.cur.Load().Overrides().Clone()); err != nil && !r.stateFail {
		r.stateFail = true
		r.log.Warn().Err(err).Str("file", r.statePath).Msg("state file not written; retrying each second, logging again once it works")
	}
}

// saveIfDirty saves the state when something changed since the last write.
func (r *Runtime) saveIfDirty() {
	if r.stateDirty.Load() {
		r.saveState()
	}
}

// writeStateLocked writes the state file as it is with the overrides ovs
// (which SetOverride has not applied yet) and, in a fleet, the fleet's
// overrides with pending (a change not sent yet) in place of the one it
// replaces. It clears stateDirty before the
// snapshot, so that a health transition during the write still causes a
// save of its own, and sets it again on failure: what is on disk may then
// differ from what is in memory.
func (r *Runtime) writeStateLocked(ovs map[netip.Addr]answer.Override, pending ...fleet.Override) error {
	if r.statePath == "" {
		return nil
	}
	r.stateDirty.Store(false)
	var serials map[string]serialState
	if g := r.cur.Load(); g != nil {
		serials = g.serials // immutable: marshalled without a copy
	}
	sf := stateFile{Version: stateVersion, SavedAt: r.opts.Now(), Overrides: map[string]stateOverride{}, Serials: serials,
		TransferSerials: r.transferSerials, CookieSecret: secretHex(r.cookieSecret)}
	for a, ov := range ovs {
		sf.Overrides[a.String()] = stateOverride{Mode: ov.Mode.String(), Reason: ov.Reason, Since: ov.Since, Until: ov.Until}
	}
	if r.fleet != nil {
		all := r.fleet.f.AllOverrides()
		for _, p := range pending {
			all = slices.DeleteFunc(all, func(o fleet.Override) bool { return o.Member == p.Member })
			all = append(all, p)
		}
		for _, o := range all {
			if !keepableFleetOverride(o) {
				continue // another node's mistake must not make the file unreadable (check)
			}
			sf.FleetOverrides = append(sf.FleetOverrides, stateFleetOverride{Member: o.Member, Mode: o.Mode, Reason: o.Reason,
				Since: o.Since, Until: o.Until, StampWall: o.Stamp.Wall, StampNode: o.Stamp.Node})
		}
		slices.SortFunc(sf.FleetOverrides, func(a, b stateFleetOverride) int { return strings.Compare(a.Member, b.Member) })
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
		err = writeFileAtomic(r.stateFS, r.statePath, data)
	}
	if err != nil {
		r.stateDirty.Store(true)
		return fmt.Errorf("state file %s: %w", r.statePath, err)
	}
	if r.stateFail {
		r.stateFail = false
		r.log.Info().Str("file", r.statePath).Msg("state file written again")
	}
	return nil
}

// keepableFleetOverride reports whether dnslb would write o: a member
// address in canonical form and a mode it knows (or lifted). Only those
// are served, written and read back (check).
func keepableFleetOverride(o fleet.Override) bool {
	a, err := netip.ParseAddr(o.Member)
	if err != nil || a.String() != o.Member || a.Is4In6() {
		return false
	}
	_, ok := overrideModeOfFleet(o.Mode)
	return ok
}

// writeFileAtomic replaces path with data so that a crash at any point
// leaves either the old file or the new one, and the new one is on disk
// when it returns: a temporary file in the same directory, written and
// synced, renamed over path, then the directory synced (without that the
// rename itself may be lost).
func writeFileAtomic(fsys stateFS, path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := fsys.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			_ = fsys.Remove(tmp.Name()) // best effort; start-up removes what is left
		}
	}()
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
	if err := fsys.Rename(tmp.Name(), path); err != nil {
		return err
	}
	renamed = true
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// ensureCookieSecret makes the DNS Cookie secret when the state file had
// none. Housekeeping saves it within a second of the start (the first
// commit marks the state dirty); a cookie handed out before that and
// sent back after a crash is merely invalid, and answered with a fresh
// one.
func (r *Runtime) ensureCookieSecret() error {
	if r.cookieSecret != "" {
		return nil
	}
	var k [answer.CookieSecretLen]byte
	if _, err := rand.Read(k[:]); err != nil {
		return fmt.Errorf("cookie secret: %w", err)
	}
	r.cookieSecret = hex.EncodeToString(k[:])
	return nil
}

// applyCookies sets the authority's DNS Cookies as cfg says: off, with
// the configured secret, or with the generated one.
func (r *Runtime) applyCookies(cfg *Config) {
	if cfg.Cookies.Off {
		r.auth.SetCookies(nil)
		return
	}
	secret := cfg.Cookies.Secret
	if secret == "" {
		secret = r.cookieSecret
	}
	k, err := answer.ParseCookieSecret(secret)
	if err != nil { // Validate has refused a bad configured one
		r.log.Error().Err(err).Msg("DNS Cookies off")
		r.auth.SetCookies(nil)
		return
	}
	r.auth.SetCookies(answer.NewCookies(k, r.clock.Now))
}
