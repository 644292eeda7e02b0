package dnslb

import (
	"io/fs"
	"os"
)

// stateFS is the filesystem the state file is read and written through:
// the OS in production, one that injects faults (a full disk, an I/O
// error, a failed rename) in tests.
type stateFS interface {
	ReadFile(name string) ([]byte, error)
	Lstat(name string) (fs.FileInfo, error)
	ReadDir(dir string) ([]fs.DirEntry, error)
	// CreateTemp creates a new file in dir, as os.CreateTemp.
	CreateTemp(dir, pattern string) (stateTemp, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	// SyncDir makes the directory's entries durable: a rename is not, on
	// a crash, until its directory is synced.
	SyncDir(dir string) error
}

// stateTemp is a temporary file being written.
type stateTemp interface {
	Name() string
	Write(p []byte) (int, error)
	Sync() error
	Close() error
}

// osStateFS is the real filesystem.
type osStateFS struct{}

func (osStateFS) ReadFile(name string) ([]byte, error)      { return os.ReadFile(name) }
func (osStateFS) Lstat(name string) (fs.FileInfo, error)    { return os.Lstat(name) }
func (osStateFS) ReadDir(dir string) ([]fs.DirEntry, error) { return os.ReadDir(dir) }
func (osStateFS) Rename(oldpath, newpath string) error      { return os.Rename(oldpath, newpath) }
func (osStateFS) Remove(name string) error                  { return os.Remove(name) }

func (osStateFS) CreateTemp(dir, pattern string) (stateTemp, error) {
	return os.CreateTemp(dir, pattern)
}

func (osStateFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
