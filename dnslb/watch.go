package dnslb

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchSettle is how long the files must be quiet before a reload: editors
// write a file in several steps (truncate, write, rename).
const watchSettle = 300 * time.Millisecond

// maxLinks bounds the symlinks followed to resolve one file, as the kernel
// does (Linux's MAXSYMLINKS): a loop cuts the file's chain short rather than
// stalling the watcher.
const maxLinks = 40

// watcher reloads when a zone file (or an $INCLUDEd one, or the config)
// changes on disk. It watches the directories, not the files, so that
// editors that replace a file by renaming a new one over it are seen.
//
// A file may be reached through symlinks: a Kubernetes ConfigMap volume has
// DIR/dnslb.yaml -> ..data/dnslb.yaml and DIR/..data -> ..2026_12_02_…, and
// an update renames a new ..data over the old one; or a link points at a
// file in another directory that is edited there. So the watcher also
// watches the directory of every link on a file's way and of the file the
// links lead to, and follows the links anew after every reload and every
// event for a name on the way: a change to the file, a link or the target,
// or a file that now leads elsewhere, is a change. Other files in those
// directories (the state file, editors' swap files) are not.
type watcher struct {
	r  *Runtime
	fs *fsnotify.Watcher
	// files are the files the config uses, absolute, as sync read them.
	files []string
	// targets maps each file to where its links led at the last resolve.
	targets map[string]string
	// paths holds the names whose change is a change of a file: each
	// file, every link on its way and where they lead.
	paths map[string]bool
	// dirs holds the directories of paths, which are watched.
	dirs map[string]bool
	// way holds the names in watched directories whose change may change
	// where a file leads: paths, the watched directories themselves and
	// the directories on the way to a path.
	way map[string]bool
}

func newWatcher(r *Runtime) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return &watcher{r: r, fs: fw, targets: map[string]string{}, paths: map[string]bool{}, dirs: map[string]bool{}, way: map[string]bool{}}, nil
}

// run watches until ctx ends; the caller has run sync once, so that a
// change made right after Start is seen.
func (w *watcher) run(ctx context.Context) {
	defer w.fs.Close()
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
			name := filepath.Clean(ev.Name)
			if !w.way[name] {
				// Another file in a watched directory (the state
				// file, a swap file): following every link anew
				// for it would only cost.
				continue
			}
			changing := ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove) != 0
			// A name that mattered before the event (a link that
			// was replaced) or matters after it (a link created).
			hit := changing && w.paths[name]
			moved := w.resolve()
			hit = hit || changing && w.paths[name]
			if hit {
				w.r.log.Debug().Str("file", name).Str("op", ev.Op.String()).Msg("watched file changed")
			}
			if hit || moved {
				settle.Reset(watchSettle)
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			w.r.log.Warn().Err(err).Msg("watching zone files")
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost, perhaps the one that mattered:
				// reload (an unchanged set is skipped by digest).
				settle.Reset(watchSettle)
			}
		case <-settle.C:
			w.r.log.Info().Msg("zone or config file changed; reloading")
			_ = w.r.Reload()
			// Links swapped while the reload read the files: what it
			// read may be the old data.
			if w.sync() {
				settle.Reset(watchSettle)
			}
		}
	}
}

// sync reads the files the current config uses and resolves them (see
// resolve).
func (w *watcher) sync() (moved bool) {
	files := map[string]bool{}
	if w.r.opts.ConfigFile != "" {
		files[abs(w.r.opts.ConfigFile)] = true
	}
	g := w.r.cur.Load()
	root := g.Loaded.Root
	for _, st := range g.zones {
		if st.cfg.Primary != nil {
			continue // pulled: no file of the config's
		}
		if root.Dir != "" {
			files[abs(filepath.Join(root.Dir, st.cfg.File))] = true
		}
		if st.zone != nil && root.Dir != "" {
			for _, f := range st.zone.Files {
				files[abs(f)] = true
			}
		}
	}
	w.files = w.files[:0]
	for f := range files {
		w.files = append(w.files, f)
	}
	sort.Strings(w.files)
	return w.resolve()
}

// resolve follows every file's links anew, watches the directories the
// files now depend on and unwatches those they no longer do. It reports
// whether a file now leads somewhere other than at the last resolve.
func (w *watcher) resolve() (moved bool) {
	targets := make(map[string]string, len(w.files))
	paths := map[string]bool{}
	dirs := map[string]bool{}
	for _, f := range w.files {
		chain, target := linkChain(f)
		targets[f] = target
		if old, ok := w.targets[f]; ok && old != target {
			w.r.log.Debug().Str("file", f).Str("was", old).Str("now", target).Msg("watched file leads elsewhere")
			moved = true
		}
		paths[target] = true
		for _, p := range chain {
			paths[p] = true
			dirs[filepath.Dir(p)] = true
		}
	}
	// The watch list, not w.dirs, says what is watched: fsnotify drops
	// the watch of a directory that is removed or renamed.
	watched := map[string]bool{}
	for _, d := range w.fs.WatchList() {
		watched[d] = true
	}
	for d := range dirs {
		if watched[d] {
			continue
		}
		if err := w.fs.Add(d); err != nil {
			if !w.dirs[d] { // tried again at the next resolve; said once
				w.r.log.Warn().Err(err).Str("dir", d).Msg("cannot watch")
			}
			continue
		}
		w.r.log.Debug().Str("dir", d).Msg("watching")
	}
	for d := range watched {
		if !dirs[d] {
			_ = w.fs.Remove(d)
		}
	}
	way := map[string]bool{}
	for p := range paths {
		way[p] = true
		for q := p; q != filepath.Dir(q); q = filepath.Dir(q) {
			if dirs[filepath.Dir(q)] {
				way[q] = true
			}
		}
	}
	for d := range dirs {
		way[d] = true
	}
	w.targets, w.paths, w.dirs, w.way = targets, paths, dirs, way
	return moved
}

// linkChain follows the symlinks on the way to the absolute path p one at a
// time, as the kernel does. chain lists the path of every link met (with
// the directories before it resolved) and, last, the file they lead to;
// each one's directory exists, to be watched. target is where p leads.
// When a name on the way does not exist, the chain ends with it (its
// directory shows it appear) and target is the path it would have led to.
func linkChain(p string) (chain []string, target string) {
	vol := filepath.VolumeName(p)
	dir := vol + string(filepath.Separator) // resolved so far: no links in it
	rest := splitPath(p[len(vol):])
	for links := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case ".":
			continue
		case "..":
			// dir has no links, so its parent is the physical one.
			dir = filepath.Dir(dir)
			continue
		}
		next := filepath.Join(dir, c)
		fi, err := os.Lstat(next)
		if err != nil {
			return append(chain, next), filepath.Join(append([]string{next}, rest...)...)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(rest) == 0 {
				return append(chain, next), next
			}
			dir = next
			continue
		}
		chain = append(chain, next)
		links++
		link, err := os.Readlink(next)
		if err != nil || links > maxLinks {
			return chain, filepath.Join(append([]string{next}, rest...)...)
		}
		if filepath.IsAbs(link) {
			lv := filepath.VolumeName(link)
			dir, link = lv+string(filepath.Separator), link[len(lv):]
		}
		rest = append(splitPath(link), rest...)
	}
	// p named a directory (or the root): nothing on the way was a file.
	return append(chain, dir), dir
}

func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == filepath.Separator })
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	return a
}
