package dnslb

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchSettle is how long the files must be quiet before a reload: editors
// write a file in several steps (truncate, write, rename).
const watchSettle = 300 * time.Millisecond

// watcher reloads when a zone file (or an $INCLUDEd one, or the config)
// changes on disk. It watches the directories, not the files, so that
// editors that replace a file by renaming a new one over it are seen.
type watcher struct {
	r     *Runtime
	fs    *fsnotify.Watcher
	dirs  map[string]bool
	files map[string]bool
}

func newWatcher(r *Runtime) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return &watcher{r: r, fs: fw, dirs: map[string]bool{}, files: map[string]bool{}}, nil
}

func (w *watcher) run(ctx context.Context) {
	defer w.fs.Close()
	w.sync()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if w.files[filepath.Clean(ev.Name)] && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove) != 0 {
				settle.Reset(watchSettle)
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			w.r.log.Warn().Err(err).Msg("watching zone files")
		case <-settle.C:
			w.r.log.Info().Msg("zone or config file changed; reloading")
			_ = w.r.Reload()
			w.sync()
		}
	}
}

// sync watches the directories of every file the current config uses.
func (w *watcher) sync() {
	files := map[string]bool{}
	w.r.mu.Lock()
	if w.r.opts.ConfigFile != "" {
		files[abs(w.r.opts.ConfigFile)] = true
	}
	root := w.r.gen.Loaded.Root
	for _, st := range w.r.gen.zones {
		if root.Dir != "" {
			files[abs(filepath.Join(root.Dir, st.cfg.File))] = true
		}
		if st.zone != nil && root.Dir != "" {
			for _, f := range st.zone.Files {
				files[abs(f)] = true
			}
		}
	}
	w.r.mu.Unlock()
	dirs := map[string]bool{}
	for f := range files {
		dirs[filepath.Dir(f)] = true
	}
	for d := range dirs {
		if !w.dirs[d] {
			if err := w.fs.Add(d); err != nil {
				w.r.log.Warn().Err(err).Str("dir", d).Msg("cannot watch")
				delete(dirs, d)
			}
		}
	}
	for d := range w.dirs {
		if !dirs[d] {
			_ = w.fs.Remove(d)
		}
	}
	w.dirs, w.files = dirs, files
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	return a
}
