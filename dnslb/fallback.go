package dnslb

import (
	"context"
	"maps"
	"slices"

	"github.com/dnslb/dnslb/dnslb/admin"
	"github.com/rs/zerolog"
)

// pokeFallback asks watchFallback to look at the pools again. It never
// blocks: a poke still pending covers this one too. Call it after anything
// that can change which members are eligible: a health transition, an
// override change, a reload.
func (r *Runtime) pokeFallback() {
	select {
	case r.fallbackPoke <- struct{}{}:
	default:
	}
}

// watchFallback logs each pool entering (warn) and leaving (info) its
// when_all_down fallback, once per change, until ctx ends. What it compares
// is Runtime.Pools, the same judgement the API, the status page and the
// dnslb_pool_all_down gauge show, so the log cannot disagree with them.
func (r *Runtime) watchFallback(ctx context.Context) {
	var in map[string]admin.PoolStatus
	for {
		in = r.logFallbackChanges(in)
		select {
		case <-ctx.Done():
			return
		case <-r.fallbackPoke:
		}
	}
}

// logFallbackChanges logs the differences between the pools in fallback
// now and prev (those in fallback when last looked), and returns the ones
// now.
func (r *Runtime) logFallbackChanges(prev map[string]admin.PoolStatus) map[string]admin.PoolStatus {
	pools := r.Pools()
	now := map[string]admin.PoolStatus{}
	byName := map[string]admin.PoolStatus{}
	for _, ps := range pools {
		byName[ps.Name] = ps
		if !ps.AllDown {
			continue
		}
		now[ps.Name] = ps
		was, ok := prev[ps.Name]
		if ok && was.Fallback == ps.Fallback {
			continue
		}
		ev := memberCounts(r.log.Warn().Str("pool", ps.Name).Str("fallback", ps.Fallback).
			Strs("families", ps.AllDownFamilies), ps)
		if ok {
			// A reload changed when_all_down while the pool was down.
			ev = ev.Str("was", was.Fallback)
		}
		ev.Msg("pool all down: answering by its when_all_down fallback")
	}
	for _, name := range slices.Sorted(maps.Keys(prev)) {
		if _, ok := now[name]; ok {
			continue
		}
		ev := r.log.Info().Str("pool", name).Str("fallback", prev[name].Fallback)
		if ps, ok := byName[name]; ok {
			ev = memberCounts(ev, ps)
		} else {
			ev = ev.Bool("removed", true) // by a reload
		}
		ev.Msg("pool no longer all down")
	}
	return now
}

// memberCounts adds the pool's members by state to ev.
func memberCounts(ev *zerolog.Event, ps admin.PoolStatus) *zerolog.Event {
	var up, down, drained, forced, backups int
	for _, m := range ps.Members {
		switch m.State {
		case "up":
			up++
		case "down":
			down++
		case "drained":
			drained++
		case "forced-down":
			forced++
		}
		if m.Backup {
			backups++
		}
	}
	return ev.Int("members", len(ps.Members)).Int("up", up).Int("down", down).
		Int("drained", drained).Int("forced_down", forced).Int("backups", backups)
}
