package healthcheck

import (
	"errors"
	"net"
	"testing"
)

func TestEpollWatcherLimit(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := addrPort(t, l.Addr())
	w := &epollWatcher{}
	defer w.close()
	stop, err := w.watch(addr, func() {})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if w.limit < 16 {
		t.Errorf("limit %d: the open-file limit is not raised", w.limit)
	}
	w.mu.Lock()
	w.limit = 1
	w.mu.Unlock()
	if _, err := w.watch(addr, func() {}); !errors.Is(err, errWatchLimit) {
		t.Fatalf("watch beyond the limit: %v", err)
	}
	stop()
	stop2, err := w.watch(addr, func() {})
	if err != nil {
		t.Fatalf("watch after one stopped: %v", err)
	}
	stop2()
}
