package dnsserver

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

// Options configures the transport.
type Options struct {
	// Listen holds host:port addresses; each gets UDP and TCP. Port 0 picks
	// a free port, the same for UDP and TCP.
	Listen []string
	// TCPIdleTimeout closes a TCP connection with no query for this long.
	TCPIdleTimeout time.Duration
	// MaxTCPConns caps concurrent TCP connections; new ones beyond it are
	// closed at once.
	MaxTCPConns int
	// UDPSockets is the number of UDP sockets per listen address, bound
	// with SO_REUSEPORT so the kernel spreads queries over them, each read
	// by its own goroutine in batches (default GOMAXPROCS).
	UDPSockets int
	// MaxUDPReply is the largest UDP reply the handler makes (0: unknown).
	// When every reply fits an Ethernet frame, IPv4 replies go out with
	// Don't Fragment set: they never need fragments, and the kernel then
	// skips choosing an IP ID for each datagram.
	MaxUDPReply int
	// Freebind lets every listen socket bind an address the host does not
	// hold (yet), such as a VIP on a backup (IP_FREEBIND, Linux).
	Freebind bool
	// Observer, if set, is told about responses and TCP connections.
	Observer Observer
}

// Observer receives transport events, for metrics. Its methods are
// called from serving goroutines and must be fast and safe for concurrent
// use. Served gets each response's size and, for the queries that are
// timed (every TCP query, the first of each UDP read batch), the time
// from read to response ready; d is negative for the others.
type Observer interface {
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

// Defaults for Options.
const (
	DefaultTCPIdleTimeout = 10 * time.Second
	DefaultMaxTCPConns    = 512
)

// Server moves DNS messages between sockets and a Handler.
type Server struct {
	opts    Options
	handler Handler
	log     zerolog.Logger

	mu      sync.Mutex
	udp     []net.PacketConn
	tcp     []net.Listener
	conns   map[net.Conn]bool // value: a query is being answered
	closing bool

	tcpSlots chan struct{}
	tcpBufs  sync.Pool // *tcpBuffers: a connection per query allocates none
	wg       sync.WaitGroup
	once     sync.Once
}

// tcpBuffers are one connection's: what it read, the replies it has not
// written yet, and the handler's output.
type tcpBuffers struct{ in, out, answer []byte }

// getTCPBuffers returns buffers of at least tcpReadSize bytes each.
func (s *Server) getTCPBuffers() *tcpBuffers {
	if b, ok := s.tcpBufs.Get().(*tcpBuffers); ok {
		return b
	}
	return &tcpBuffers{
		in:     make([]byte, tcpReadSize),
		out:    make([]byte, 0, tcpReadSize),
		answer: make([]byte, 0, tcpReadSize),
	}
}

// putTCPBuffers keeps b for another connection, unless a long message
// grew one of them: those are left to the collector.
func (s *Server) putTCPBuffers(b *tcpBuffers) {
	if cap(b.in) > tcpReadSize || cap(b.out) > tcpFlushSize+tcpReadSize || cap(b.answer) > tcpReadSize {
		return
	}
	b.out, b.answer = b.out[:0], b.answer[:0]
	s.tcpBufs.Put(b)
}

// New returns a server that is not yet listening.
func New(opts Options, h Handler, log zerolog.Logger) *Server {
	if opts.TCPIdleTimeout <= 0 {
		opts.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	if opts.MaxTCPConns <= 0 {
		opts.MaxTCPConns = DefaultMaxTCPConns
	}
	if opts.UDPSockets <= 0 {
		opts.UDPSockets = runtime.GOMAXPROCS(0)
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
		pcs, ln, err := listenBoth(addr, s.opts.UDPSockets, sockOpts{
			dontFragment: s.opts.MaxUDPReply > 0 && s.opts.MaxUDPReply <= maxUnfragmentedIPv4,
			freebind:     s.opts.Freebind,
		})
		if err != nil {
			s.Close()
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		s.mu.Lock()
		s.udp = append(s.udp, pcs...)
		s.tcp = append(s.tcp, ln)
		s.mu.Unlock()
		for _, pc := range pcs {
			s.wg.Add(1)
			go s.serveUDP(pc)
		}
		s.wg.Add(1)
		go s.serveTCP(ln)
		s.log.Info().Str("udp", pcs[0].LocalAddr().String()).Int("udp_sockets", len(pcs)).Str("tcp", ln.Addr().String()).Msg("listening")
	}
	return nil
}

// listenBoth opens TCP and n UDP sockets (SO_REUSEPORT) on one address.
// With port 0 the kernel picks the TCP port and UDP takes the same one,
// retrying if it is taken. TCP is bound first and without SO_REUSEPORT, so
// a port some other server holds is refused rather than silently shared.
//
// An IP address is served in its own family only: 0.0.0.0 is IPv4, [::]
// IPv6 (IPV6_V6ONLY), so that both can be listed on one port. (Go would
// make either a dual-stack IPv6 socket, and the second would find the
// port taken.) An empty host keeps Go's dual-stack socket.
func listenBoth(addr string, n int, o sockOpts) ([]net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	family := ""
	if ip, err := netip.ParseAddr(host); err == nil {
		family = "6"
		if ip.Unmap().Is4() {
			family = "4"
		}
	}
	// Plain TCP, not Go's default of Multipath TCP: DNS clients do not
	// speak it, and a fallen-back MPTCP socket puts a layer of its own
	// under every read and write.
	tcpOpts := sockOpts{freebind: o.freebind}
	lc := net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		return setSockOpts(network, c, tcpOpts)
	}}
	lc.SetMultipathTCP(false)
	for attempt := 0; ; attempt++ {
		ln, err := lc.Listen(context.Background(), "tcp"+family, addr)
		if err != nil {
			return nil, nil, err
		}
		p := port
		if p == "0" {
			_, p, _ = net.SplitHostPort(ln.Addr().String())
		}
		pcs, err := listenUDP("udp"+family, net.JoinHostPort(host, p), n, o)
		if err == nil {
			return pcs, ln, nil
		}
		ln.Close()
		if port != "0" || attempt > 20 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
	}
}

// maxUnfragmentedIPv4 is the largest UDP payload that fits a 1500-byte
// Ethernet frame over IPv4.
const maxUnfragmentedIPv4 = 1500 - 20 - 8

// listenUDP opens n UDP sockets on addr. A wildcard socket asks for each
// datagram's destination address, for the reply's source: without it the
// kernel picks the source by route, and a query to the host's second
// address (a VIP) would be answered from its first, which resolvers drop.
func listenUDP(network, addr string, n int, o sockOpts) ([]net.PacketConn, error) {
	if runtime.GOOS != "linux" {
		n = 1
	}
	o.reuse = n > 1
	if host, _, err := net.SplitHostPort(addr); err == nil {
		ip, err := netip.ParseAddr(host)
		o.pktinfo = host == "" || err == nil && ip.IsUnspecified()
	}
	lc := net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		return setSockOpts(network, c, o)
	}}
	var pcs []net.PacketConn
	for range max(n, 1) {
		pc, err := lc.ListenPacket(context.Background(), network, addr)
		if err != nil {
			for _, c := range pcs {
				c.Close()
			}
			return nil, err
		}
		pcs = append(pcs, pc)
	}
	return pcs, nil
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

// udpBatch is how many datagrams one system call reads or writes.
const udpBatch = 32

// udpBufSize bounds a query read in a batch; longer datagrams are cut and
// then judged malformed.
const udpBufSize = 4096

func (s *Server) serveUDP(pc net.PacketConn) {
	defer s.wg.Done()
	udp, ok := pc.(*net.UDPConn)
	if !ok {
		s.log.Error().Msg("not a UDP socket")
		return
	}
	bio, err := newBatchIO(udp, udpBatch, udpBufSize)
	if err != nil {
		s.log.Error().Err(err).Msg("udp socket")
		return
	}
	outBufs := make([][]byte, udpBatch)
	for i := range outBufs {
		outBufs[i] = make([]byte, 0, udpBufSize)
	}
	req := &Request{}
	answer := func(n int) {
		k := 0
		for i := range n {
			wire, remote := bio.packet(i)
			// The first query of each batch is timed, a sample: two clock
			// reads per query cost more than the cached answer itself.
			d := time.Duration(-1)
			var start time.Time
			if i == 0 {
				start = time.Now()
			}
			*req = Request{Wire: wire, Remote: remote}
			resp := s.handle(req, outBufs[k])
			if len(resp) == 0 {
				continue
			}
			if i == 0 {
				d = time.Since(start)
			}
			s.opts.Observer.Served(false, len(resp), d)
			bio.queue(i, resp)
			k++
		}
	}
	for {
		err := bio.serve(answer)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		s.log.Warn().Err(err).Msg("udp read")
	}
}

// batchIO moves UDP datagrams in batches. serve reads batches until the
// socket fails or is closed, calls answer(n) for each batch of n datagrams
// and sends the replies answer queued; answer reads datagram i and its
// sender with packet and queues a reply to it with queue.
type batchIO interface {
	serve(answer func(n int)) error
	packet(i int) ([]byte, netip.AddrPort)
	queue(i int, resp []byte)
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

// serveConn answers pipelined queries on one connection, in order. It
// reads whatever the client has sent, answers every complete message in
// it, and writes the replies together: a client that pipelines costs a
// read and a write per batch, not two reads and a write per query.
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
		// An IPv4 client of a dual-stack socket is an IPv4 client.
		ap := ta.AddrPort()
		remote = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	bufs := s.getTCPBuffers()
	in, out, answer := bufs.in, bufs.out, bufs.answer
	defer func() {
		bufs.in, bufs.out, bufs.answer = in, out, answer
		s.putTCPBuffers(bufs)
	}()
	start, end := 0, 0 // the unread bytes are in[start:end]
	arm := true        // a new message starts: arm the idle timeout
	req := &Request{}  // one for the connection: not an allocation per query
	// stream sends the leading messages of a multi-message reply, after
	// the replies gathered before it: one closure per connection.
	var streamErr error
	stream := func(msg []byte) error {
		if streamErr != nil {
			return streamErr
		}
		if len(msg) > 0xFFFF {
			return errTooLong
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(msg)))
		out = append(out, msg...)
		if len(out) >= tcpFlushSize {
			if streamErr = s.writeTCP(c, out); streamErr != nil {
				return streamErr
			}
			out = out[:0]
		}
		return nil
	}
	for {
		busy, timed := false, false
		for end-start >= 2 {
			n := int(binary.BigEndian.Uint16(in[start:]))
			if end-start < 2+n {
				break
			}
			msg := in[start+2 : start+2+n]
			start += 2 + n
			if !busy {
				s.setBusy(c, true)
				busy = true
			}
			// The first query of each batch is timed, as on UDP.
			var began time.Time
			if !timed {
				began = time.Now()
			}
			*req = Request{Wire: msg, Remote: remote, TCP: true, Stream: stream}
			resp := s.handle(req, answer)
			if streamErr != nil {
				return // the client went away in the middle of a stream
			}
			if resp == nil {
				// What was answered before still goes out, then the
				// connection closes (a bare header, as NSD).
				if s.writeTCP(c, out) == nil {
					closeGracefully(c)
				}
				return
			}
			d := time.Duration(-1)
			if !timed {
				d, timed = time.Since(began), true
			}
			s.opts.Observer.Served(true, len(resp), d)
			if cap(resp) > cap(answer) {
				answer = resp[:0]
			}
			out = binary.BigEndian.AppendUint16(out, uint16(len(resp)))
			out = append(out, resp...)
			if len(out) >= tcpFlushSize {
				if s.writeTCP(c, out) != nil {
					return
				}
				out = out[:0]
			}
			arm = true
		}
		if len(out) > 0 {
			if s.writeTCP(c, out) != nil {
				return
			}
			out = out[:0]
		}
		if busy {
			s.setBusy(c, false)
		}
		// Keep the start of a message at the front, with room for all of
		// it.
		if start > 0 {
			end = copy(in, in[start:end])
			start = 0
		}
		if end >= 2 {
			if need := 2 + int(binary.BigEndian.Uint16(in)); need > len(in) {
				in = append(in[:end], make([]byte, need-end)...)
				in = in[:cap(in)]
			}
		}
		// The idle timeout runs from the last answer: a client trickling
		// one message does not extend it.
		if arm || end == 0 {
			s.armIdle(c)
			arm = false
		}
		k, err := c.Read(in[end:])
		end += k
		if err != nil {
			break
		}
	}
	closeGracefully(c)
}

// errTooLong refuses a streamed message that TCP framing cannot carry.
var errTooLong = errors.New("message longer than 65535 bytes")

// tcpReadSize is a connection's first read buffer: dozens of pipelined
// queries. A longer message grows it.
const tcpReadSize = 4096

// tcpFlushSize is how many bytes of replies a connection gathers at most
// before writing them.
const tcpFlushSize = 16 << 10

// writeTCP writes framed replies, within the idle timeout.
func (s *Server) writeTCP(c net.Conn, frames []byte) error {
	if len(frames) == 0 {
		return nil
	}
	c.SetWriteDeadline(time.Now().Add(s.opts.TCPIdleTimeout))
	_, err := c.Write(frames)
	return err
}

// drainWindow is how long, once shutting down, a connection waits for
// more of what its client already sent before it is closed.
const drainWindow = 100 * time.Millisecond

// armIdle sets the read deadline: the idle timeout normally; once the
// server is shutting down, a short window in which queries already sent
// (pipelined) are still read and answered. Under the lock, so that
// Shutdown's "wake now" deadline cannot be overwritten by an idle one.
func (s *Server) armIdle(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		c.SetReadDeadline(time.Now().Add(drainWindow))
		return
	}
	c.SetReadDeadline(time.Now().Add(s.opts.TCPIdleTimeout))
}

// closeGracefully half-closes and discards what the client still sends
// for a moment, before the caller closes: closing with unread data would
// send a reset, and the client could lose answers already written.
func closeGracefully(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	if tc.CloseWrite() != nil {
		// The connection is already gone: nothing is left to drain.
		return
	}
	c.SetReadDeadline(time.Now().Add(drainWindow))
	// The drain ends at the deadline, at EOF or at the cap; whichever it
	// is, and whatever was read, the connection closes next.
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 1<<20))
}

// setBusy marks a connection as answering (true) or idle (false), so that
// Shutdown wakes only idle ones.
func (s *Server) setBusy(c net.Conn, busy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c] = busy
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
	// The cancelled context is how Close asks for "at once"; Shutdown
	// reporting it is no failure.
	if err := s.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
