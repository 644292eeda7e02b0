//go:build !linux

package healthcheck

// newWatcher returns the portable watcher: a goroutine per watch.
func newWatcher() watcher { return &connWatcher{} }
