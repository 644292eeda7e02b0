package zones

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO in place of a zone file (or of an $INCLUDEd one) is refused at
// once: opening it for reading would block until a writer came.
func TestNonRegularFilesRefused(t *testing.T) {
	const head = "$TTL 300\n@ SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
	tests := []struct {
		name, zone, want string
		fifo             string // the name made a FIFO
	}{
		{name: "zone file", fifo: "z.zone", want: "z.zone: open z.zone: a named pipe (FIFO), not a regular file"},
		{name: "include", zone: head + "$INCLUDE inc.zone\n", fifo: "inc.zone", want: "named pipe (FIFO)"},
		{name: "directory", zone: head + "$INCLUDE sub\n", want: "sub"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.zone != "" {
				if err := os.WriteFile(filepath.Join(dir, "z.zone"), []byte(tc.zone), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.fifo != "" {
				if err := syscall.Mkfifo(filepath.Join(dir, tc.fifo), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := Load(Source{Origin: "example.test.", FS: os.DirFS(dir), Path: "z.zone"})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error with %q", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				// Unblock the reader so the test can end.
				if f, err := os.OpenFile(filepath.Join(dir, tc.fifo), os.O_WRONLY, 0); err == nil {
					f.Close()
				}
				t.Fatal("Load blocked on a FIFO")
			}
		})
	}
}
