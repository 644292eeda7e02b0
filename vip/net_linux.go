//go:build linux

package vip

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// linuxNet is the Net of one instance on Linux.
type linuxNet struct {
	spec    instanceSpec
	log     zerolog.Logger
	ifi     *net.Interface
	link    netlink.Link
	primary netip.Addr

	raw4 *ipv4.RawConn    // IPv4 instances
	pc6  *ipv6.PacketConn // IPv6 instances
	conn net.PacketConn   // the socket under raw4 / pc6
	buf  []byte           // receive buffer, used by the reader goroutine only
	once sync.Once
	cerr error
}

// openNet checks privileges, finds the interface and its primary address and
// opens the advert socket.
func openNet(s instanceSpec, log zerolog.Logger) (Net, error) {
	if err := checkCaps(); err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(s.ifname)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", s.ifname, err)
	}
	link, err := netlink.LinkByIndex(ifi.Index)
	if err != nil {
		return nil, fmt.Errorf("interface %s: netlink: %w", s.ifname, err)
	}
	n := &linuxNet{spec: s, log: log, ifi: ifi, link: link, buf: make([]byte, 1500)}
	if n.primary, err = n.findPrimary(); err != nil {
		return nil, err
	}
	if s.is4 {
		err = n.open4()
	} else {
		err = n.open6()
	}
	if err != nil {
		if n.conn != nil {
			n.conn.Close()
		}
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("%w: %v", ErrPermission, err)
		}
		return nil, err
	}
	return n, nil
}

// checkCaps reads the effective capabilities of this process.
func checkCaps() error {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil // cannot tell; the socket calls will say
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return nil
		}
		var missing []string
		if caps&(1<<unix.CAP_NET_ADMIN) == 0 {
			missing = append(missing, "CAP_NET_ADMIN")
		}
		if caps&(1<<unix.CAP_NET_RAW) == 0 {
			missing = append(missing, "CAP_NET_RAW")
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: missing %s", ErrPermission, strings.Join(missing, ", "))
		}
		return nil
	}
	return nil
}

// findPrimary picks the advert source: the first IPv4 address of the
// interface that is not a virtual address, or its IPv6 link-local address.
func (n *linuxNet) findPrimary() (netip.Addr, error) {
	fam := netlink.FAMILY_V4
	if !n.spec.is4 {
		fam = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(n.link, fam)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: listing addresses: %w", n.spec.ifname, err)
	}
	isVIP := map[netip.Addr]bool{}
	for _, p := range n.spec.vips {
		isVIP[p.Addr()] = true
	}
	var best netip.Addr
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if isVIP[ip] {
			continue
		}
		if n.spec.is4 {
			primary := a.Flags&unix.IFA_F_SECONDARY == 0
			if !best.IsValid() || primary {
				best = ip
			}
			if primary {
				break
			}
		} else if ip.IsLinkLocalUnicast() {
			best = ip
			break
		}
	}
	if !best.IsValid() {
		if n.spec.is4 {
			return best, fmt.Errorf("interface %s has no IPv4 address of its own to send adverts from", n.spec.ifname)
		}
		return best, fmt.Errorf("interface %s has no IPv6 link-local address to send adverts from", n.spec.ifname)
	}
	return best, nil
}

func (n *linuxNet) open4() error {
	c, err := net.ListenPacket(fmt.Sprintf("ip4:%d", IPProtocol), "0.0.0.0")
	if err != nil {
		return fmt.Errorf("raw IPv4 socket: %w", err)
	}
	n.conn = c
	r, err := ipv4.NewRawConn(c)
	if err != nil {
		return fmt.Errorf("raw IPv4 socket: %w", err)
	}
	n.raw4 = r
	if len(n.spec.peers) == 0 {
		// Join explicitly on this interface: another daemon's membership
		// must not be what makes reception work.
		if err := r.JoinGroup(n.ifi, &net.IPAddr{IP: GroupIPv4.AsSlice()}); err != nil {
			return fmt.Errorf("joining %s on %s: %w", GroupIPv4, n.spec.ifname, err)
		}
	}
	for _, f := range []func() error{
		func() error { return r.SetMulticastInterface(n.ifi) },
		func() error { return r.SetMulticastTTL(HopLimit) },
		func() error { return r.SetMulticastLoopback(false) },
		func() error { return r.SetControlMessage(ipv4.FlagInterface, true) },
	} {
		if err := f(); err != nil {
			return fmt.Errorf("raw IPv4 socket options: %w", err)
		}
	}
	return nil
}

func (n *linuxNet) open6() error {
	c, err := net.ListenPacket(fmt.Sprintf("ip6:%d", IPProtocol), "::")
	if err != nil {
		return fmt.Errorf("raw IPv6 socket: %w", err)
	}
	n.conn = c
	p := ipv6.NewPacketConn(c)
	n.pc6 = p
	if len(n.spec.peers) == 0 {
		if err := p.JoinGroup(n.ifi, &net.IPAddr{IP: GroupIPv6.AsSlice()}); err != nil {
			return fmt.Errorf("joining %s on %s: %w", GroupIPv6, n.spec.ifname, err)
		}
	}
	for _, f := range []func() error{
		func() error { return p.SetMulticastInterface(n.ifi) },
		func() error { return p.SetMulticastHopLimit(HopLimit) },
		func() error { return p.SetHopLimit(HopLimit) },
		func() error { return p.SetMulticastLoopback(false) },
		func() error { return p.SetTrafficClass(0xc0) },
		func() error {
			return p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true)
		},
	} {
		if err := f(); err != nil {
			return fmt.Errorf("raw IPv6 socket options: %w", err)
		}
	}
	return nil
}

func (n *linuxNet) Primary() netip.Addr { return n.primary }

func (n *linuxNet) Recv() (Packet, error) {
	for {
		var p Packet
		if n.raw4 != nil {
			h, payload, cm, err := n.raw4.ReadFrom(n.buf)
			if err != nil {
				return Packet{}, err
			}
			if cm != nil && cm.IfIndex != 0 && cm.IfIndex != n.ifi.Index {
				continue // another interface's VRRP
			}
			if h.Protocol != IPProtocol || h.Flags&ipv4.MoreFragments != 0 || h.FragOff != 0 {
				continue
			}
			src, _ := netip.AddrFromSlice(h.Src.To4())
			dst, _ := netip.AddrFromSlice(h.Dst.To4())
			p = Packet{Src: src, Dst: dst, TTL: h.TTL, Data: append([]byte(nil), payload...)}
		} else {
			nr, cm, from, err := n.pc6.ReadFrom(n.buf)
			if err != nil {
				return Packet{}, err
			}
			if cm == nil || (cm.IfIndex != 0 && cm.IfIndex != n.ifi.Index) {
				continue
			}
			ia, ok := from.(*net.IPAddr)
			if !ok {
				continue
			}
			src, _ := netip.AddrFromSlice(ia.IP)
			dst, _ := netip.AddrFromSlice(cm.Dst)
			p = Packet{Src: src.Unmap(), Dst: dst.Unmap(), TTL: cm.HopLimit, Data: append([]byte(nil), n.buf[:nr]...)}
		}
		return p, nil
	}
}

func (n *linuxNet) Send(b []byte, dst netip.Addr) error {
	if n.raw4 != nil {
		h := &ipv4.Header{
			Version:  ipv4.Version,
			Len:      ipv4.HeaderLen,
			TOS:      0xc0, // internetwork control, as keepalived
			TotalLen: ipv4.HeaderLen + len(b),
			TTL:      HopLimit,
			Protocol: IPProtocol,
			Src:      n.primary.AsSlice(),
			Dst:      dst.AsSlice(),
		}
		return n.raw4.WriteTo(h, b, nil)
	}
	cm := &ipv6.ControlMessage{Src: n.primary.AsSlice(), IfIndex: n.ifi.Index, HopLimit: HopLimit}
	_, err := n.pc6.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice(), Zone: n.spec.ifname})
	return err
}

func (n *linuxNet) AddVIPs() error {
	var errs []error
	for _, p := range n.spec.vips {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD // usable at once, as keepalived does
		}
		if err := netlink.AddrReplace(n.link, a); err != nil {
			errs = append(errs, fmt.Errorf("adding %s to %s: %w", p, n.spec.ifname, err))
		}
	}
	if len(errs) == 0 {
		n.log.Debug().Str("interface", n.spec.ifname).Msg("vip: virtual addresses added")
	}
	return errors.Join(errs...)
}

// RemoveVIPs deletes every copy of a virtual address on the interface,
// whatever its prefix length (a crashed run, a hand-made copy).
func (n *linuxNet) RemoveVIPs() error {
	addrs, err := netlink.AddrList(n.link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("listing addresses of %s: %w", n.spec.ifname, err)
	}
	isVIP := map[netip.Addr]bool{}
	for _, p := range n.spec.vips {
		isVIP[p.Addr()] = true
	}
	var errs []error
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || !isVIP[ip.Unmap()] {
			continue
		}
		if err := netlink.AddrDel(n.link, &a); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("removing %s from %s: %w", a.IPNet, n.spec.ifname, err))
			continue
		}
		n.log.Info().Str("address", a.IPNet.String()).Str("interface", n.spec.ifname).Msg("vip: virtual address removed")
	}
	return errors.Join(errs...)
}

// Announce sends garp_master_repeat gratuitous ARPs for the IPv4 addresses
// and unsolicited neighbour advertisements for the IPv6 ones.
func (n *linuxNet) Announce() error {
	if len(n.ifi.HardwareAddr) == 0 {
		return nil // no link layer (e.g. a tunnel): nothing to announce
	}
	var v4, v6 []netip.Addr
	for _, p := range n.spec.vips {
		if p.Addr().Is4() {
			v4 = append(v4, p.Addr())
		} else {
			v6 = append(v6, p.Addr())
		}
	}
	var errs []error
	if len(v4) > 0 {
		errs = append(errs, n.garp(v4))
	}
	if len(v6) > 0 {
		errs = append(errs, n.unsolicitedNA(v6))
	}
	return errors.Join(errs...)
}

func (n *linuxNet) garp(addrs []netip.Addr) error {
	c, err := arp.Dial(n.ifi)
	if err != nil {
		return fmt.Errorf("gratuitous ARP on %s: %w", n.spec.ifname, err)
	}
	defer c.Close()
	for range n.spec.garpRepeat {
		for _, a := range addrs {
			p, err := arp.NewPacket(arp.OperationRequest, n.ifi.HardwareAddr, a, ethernet.Broadcast, a)
			if err != nil {
				return fmt.Errorf("gratuitous ARP for %s: %w", a, err)
			}
			if err := c.WriteTo(p, ethernet.Broadcast); err != nil {
				return fmt.Errorf("gratuitous ARP for %s on %s: %w", a, n.spec.ifname, err)
			}
		}
	}
	return nil
}

func (n *linuxNet) unsolicitedNA(addrs []netip.Addr) error {
	c, _, err := ndp.Listen(n.ifi, ndp.LinkLocal)
	if err != nil {
		return fmt.Errorf("unsolicited NA on %s: %w", n.spec.ifname, err)
	}
	defer c.Close()
	allNodes := netip.MustParseAddr("ff02::1")
	for range n.spec.garpRepeat {
		for _, a := range addrs {
			m := &ndp.NeighborAdvertisement{
				Override:      true,
				TargetAddress: a,
				Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: n.ifi.HardwareAddr}},
			}
			if err := c.WriteTo(m, nil, allNodes); err != nil {
				return fmt.Errorf("unsolicited NA for %s on %s: %w", a, n.spec.ifname, err)
			}
		}
	}
	return nil
}

func (n *linuxNet) Close() error {
	n.once.Do(func() {
		if n.conn != nil {
			n.cerr = n.conn.Close()
		}
	})
	return n.cerr
}
