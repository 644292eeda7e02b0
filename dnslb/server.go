package dnslb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// ServerOptions configures the transport.
type ServerOptions struct {
	// Listen holds host:port addresses; each gets UDP and TCP. Port 0 picks
	// a free port, the same for UDP and TCP.
	Listen []string
	// TCPIdleTimeout closes a TCP connection with no query for this long.
	TCPIdleTimeout time.Duration
	// MaxTCPConns caps concurrent TCP connections; new ones beyond it are
	// closed at once.
	MaxTCPConns int
	// UDPReaders is the number of goroutines reading each UDP socket
	// (default GOMAXPROCS).
	UDPReaders int
	// Observer, if set, is told about responses and TCP connections.
	Observer ServerObserver
}

// ServerObserver receives transport events, for metrics. Its methods are
// called from serving goroutines and must be fast and safe for concurrent
// use.
type ServerObserver interface {
	Served(tcp bool, size int, d time.Duration)
	TCPOpened()
	TCPClosed()
	TCPRejected()
}

type nopObserver struct{}

func (nopObserver) Served(bool, int, time.Duration) {}
func (nopObserver) TCPOpened()                      {}
func (nopObserver) TCPClosed()                      {}
func (nopObserver) TCPRejected()                    {}

// Defaults for ServerOptions.
const (
	DefaultTCPIdleTimeout = 10 * time.Second
	DefaultMaxTCPConns    = 512
)

// Server moves DNS messages between sockets and a Handler.
type Server struct {
	opts    ServerOptions
	handler Handler
	log     zerolog.Logger

	mu      sync.Mutex
	udp     []net.PacketConn
	tcp     []net.Listener
	conns   map[net.Conn]bool // value: a query is being answered
	closing bool

	tcpSlots chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

// NewServer returns a server that is not yet listening.
func NewServer(opts ServerOptions, h Handler, log zerolog.Logger) *Server {
	if opts.TCPIdleTimeout <= 0 {
		opts.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	if opts.MaxTCPConns <= 0 {
		opts.MaxTCPConns = DefaultMaxTCPConns
	}
	if opts.UDPReaders <= 0 {
		opts.UDPReaders = runtime.GOMAXPROCS(0)
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	return &Server{
		opts:     opts,
		handler:  h,
		log:      log,
		conns:    map[net.Conn]bool{},
		tcpSlots: make(chan struct{}, opts.MaxTCPConns),
	}
}

// Start binds every listen address and starts serving. On error nothing is
// left open.
func (s *Server) Start() error {
	for _, addr := range s.opts.Listen {
		pc, ln, err := listenBoth(addr)
		if err != nil {
			s.Close()
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		s.mu.Lock()
		s.udp = append(s.udp, pc)
		s.tcp = append(s.tcp, ln)
		s.mu.Unlock()
		for range s.opts.UDPReaders {
			s.wg.Add(1)
			go s.serveUDP(pc)
		}
		s.wg.Add(1)
		go s.serveTCP(ln)
		s.log.Info().Str("udp", pc.LocalAddr().String()).Str("tcp", ln.Addr().String()).Msg("listening")
	}
	return nil
}

// listenBoth opens UDP and TCP on one address. With port 0 the kernel picks
// the TCP port and UDP takes the same one, retrying if it is taken.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		p := port
		if p == "0" {
			_, p, _ = net.SplitHostPort(ln.Addr().String())
		}
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, p))
		if err == nil {
			return pc, ln, nil
		}
		ln.Close()
		if port != "0" || attempt > 20 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
	}
}

// Addrs returns the bound addresses (UDP and TCP share each), in Listen order.
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.tcp))
	for i, ln := range s.tcp {
		out[i] = ln.Addr().String()
	}
	return out
}

func (s *Server) serveUDP(pc net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	out := make([]byte, 0, 65535)
	udp, _ := pc.(*net.UDPConn)
	for {
		var (
			n      int
			remote netip.AddrPort
			err    error
		)
		if udp != nil {
			n, remote, err = udp.ReadFromUDPAddrPort(buf)
		} else {
			var a net.Addr
			n, a, err = pc.ReadFrom(buf)
			if ua, ok := a.(*net.UDPAddr); ok {
				remote = ua.AddrPort()
			}
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn().Err(err).Msg("udp read")
			continue
		}
		start := time.Now()
		resp := s.handle(&Request{Wire: buf[:n], Remote: remote}, out)
		if resp == nil {
			continue
		}
		s.opts.Observer.Served(false, len(resp), time.Since(start))
		if udp != nil {
			_, err = udp.WriteToUDPAddrPort(resp, remote)
		} else {
			_, err = pc.WriteTo(resp, net.UDPAddrFromAddrPort(remote))
		}
		if err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Debug().Err(err).Str("client", remote.String()).Msg("udp write")
		}
	}
}

// handle calls the handler, turning a panic into a dropped message: no
// input may take the server down.
func (s *Server) handle(req *Request, out []byte) (resp []byte) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error().Interface("panic", p).Str("client", req.Remote.String()).Hex("query", req.Wire).Msg("handler panic; message dropped")
			resp = nil
		}
	}()
	return s.handler.ServeDNS(req, out)
}

func (s *Server) serveTCP(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Warn().Err(err).Msg("tcp accept")
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: don't spin
			continue
		}
		select {
		case s.tcpSlots <- struct{}{}:
		default:
			s.log.Debug().Str("client", c.RemoteAddr().String()).Msg("tcp connection limit reached; closing")
			s.opts.Observer.TCPRejected()
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			c.Close()
			<-s.tcpSlots
			continue
		}
		s.conns[c] = false
		s.wg.Add(1)
		s.mu.Unlock()
		s.opts.Observer.TCPOpened()
		go s.serveConn(c)
	}
}

// serveConn answers pipelined queries on one connection, in order.
func (s *Server) serveConn(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		s.opts.Observer.TCPClosed()
		<-s.tcpSlots
		s.wg.Done()
	}()
	var remote netip.AddrPort
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		remote = ta.AddrPort()
	}
	var lenBuf [2]byte
	buf := make([]byte, 0, 512)
	out := make([]byte, 0, 4096)
	for {
		if !s.armIdle(c) {
			return
		}
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if !s.setBusy(c, true) {
			return
		}
		start := time.Now()
		resp := s.handle(&Request{Wire: buf, Remote: remote, TCP: true}, out)
		if resp == nil {
			return
		}
		s.opts.Observer.Served(true, len(resp), time.Since(start))
		if cap(resp) > cap(out) {
			out = resp[:0]
		}
		binary.BigEndian.PutUint16(lenBuf[:], uint16(len(resp)))
		c.SetWriteDeadline(time.Now().Add(s.opts.TCPIdleTimeout))
		frame := net.Buffers{lenBuf[:], resp}
		_, err := frame.WriteTo(c) // one writev: length and message in one segment
		if !s.setBusy(c, false) || err != nil {
			return
		}
	}
}

// armIdle sets the idle deadline unless the server is shutting down. Under
// the lock, so that Shutdown's "wake now" deadline cannot be overwritten.
func (s *Server) armIdle(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	c.SetReadDeadline(time.Now().Add(s.opts.TCPIdleTimeout))
	return true
}

// setBusy marks a connection as answering (true) or idle (false). It
// reports false when the server is shutting down and an idle connection
// should close.
func (s *Server) setBusy(c net.Conn, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c] = busy
	return !s.closing
}

// Shutdown stops accepting, lets TCP queries being answered finish, closes
// idle connections and waits for every goroutine, or until ctx ends (then
// it closes everything at once). Safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closing = true
		for _, pc := range s.udp {
			pc.Close()
		}
		for _, ln := range s.tcp {
			ln.Close()
		}
		for c, busy := range s.conns {
			if !busy {
				// Wake the reader blocked on an idle connection.
				c.SetReadDeadline(time.Now())
			}
		}
		s.mu.Unlock()
	})
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// Close stops the server at once.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Shutdown(ctx)
	return nil
}
