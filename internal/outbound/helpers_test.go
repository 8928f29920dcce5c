package outbound

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// fakeDNS answers the Go resolver's queries from a map, over an in-memory
// pipe: no packet leaves the process, and a test can make any name resolve
// to any address (this is how DNS rebinding is simulated).
type fakeDNS struct {
	mu      sync.Mutex
	hosts   map[string][]netip.Addr // key: lowercase name without trailing dot
	rcode   dnsmessage.RCode        // non-zero: answer every query with it
	queries atomic.Int32
}

func newFakeDNS(hosts map[string][]string) *fakeDNS {
	f := &fakeDNS{hosts: map[string][]netip.Addr{}}
	for name, addrs := range hosts {
		for _, a := range addrs {
			f.hosts[name] = append(f.hosts[name], netip.MustParseAddr(a))
		}
	}
	return f
}

// resolver returns a pure-Go resolver whose every connection goes to f.
func (f *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			client, server := net.Pipe()
			go f.serve(server)
			return client, nil
		},
	}
}

// serve answers DNS-over-TCP framed queries (the resolver uses the stream
// framing because a pipe is not a PacketConn).
func (f *fakeDNS) serve(conn net.Conn) {
	defer conn.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(conn, n[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(conn, msg); err != nil {
			return
		}
		out, err := f.answer(msg)
		if err != nil {
			return
		}
		binary.BigEndian.PutUint16(n[:], uint16(len(out)))
		if _, err := conn.Write(append(n[:], out...)); err != nil {
			return
		}
	}
}

func (f *fakeDNS) answer(query []byte) ([]byte, error) {
	f.queries.Add(1)
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	rcode := f.rcode
	addrs := f.hosts[strings.ToLower(strings.TrimSuffix(q.Name.String(), "."))]
	f.mu.Unlock()
	if rcode == dnsmessage.RCodeSuccess && addrs == nil {
		rcode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{
		ID: h.ID, Response: true, Authoritative: true, RecursionAvailable: true, RCode: rcode,
	})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if rcode == dnsmessage.RCodeSuccess {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
		for _, a := range addrs {
			switch {
			case q.Type == dnsmessage.TypeA && a.Is4():
				err = b.AResource(rh, dnsmessage.AResource{A: a.As4()})
			case q.Type == dnsmessage.TypeAAAA && a.Is6():
				err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: a.As16()})
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}

// testClient builds a Client through NewClient (the production path) and
// then points its resolver at dns and, when port is set, dials every
// address on that port instead of the URL's: the only way for an
// unprivileged test to serve https on "port 443". Both hooks are
// unexported fields that only this package's tests can set; the dialled
// address still goes through the Control check.
func testClient(t testing.TB, cfg Config, dns *fakeDNS, port string) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	if dns != nil {
		c.dialer.Resolver = dns.resolver()
	}
	if port != "" {
		c.dialAddr = func(addr string) string {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return addr
			}
			return net.JoinHostPort(host, port)
		}
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// loopbackOnly is the allow-list a local user would configure.
var loopbackOnly = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// portOf returns the port of a "scheme://host:port" test server URL.
func portOf(t testing.TB, rawURL string) string {
	t.Helper()
	i := strings.LastIndexByte(rawURL, ':')
	if i < 0 {
		t.Fatalf("no port in %q", rawURL)
	}
	return rawURL[i+1:]
}

// metadataV4 and metadataV6 are the metadata and credential endpoints the
// guard must refuse whatever the allow-list, each with a word its reason
// must contain. They are listed here, not taken from ip.go, so that a
// missing entry there fails the tests.
var (
	metadataV4 = []struct {
		addr netip.Addr
		what string
	}{
		{netip.MustParseAddr("169.254.169.254"), "instance metadata service"},
		{netip.MustParseAddr("169.254.170.2"), "ECS task credentials"},
		{netip.MustParseAddr("169.254.170.23"), "EKS Pod Identity"},
		{netip.MustParseAddr("100.100.100.200"), "Alibaba Cloud"},
		{netip.MustParseAddr("168.63.129.16"), "Azure WireServer"},
	}
	metadataV6 = []struct {
		addr netip.Addr
		what string
	}{
		{netip.MustParseAddr("fd00:ec2::254"), "AWS instance metadata service"},
		{netip.MustParseAddr("fd00:ec2::23"), "EKS Pod Identity"},
		{netip.MustParseAddr("fd20:ce::254"), "Google Cloud metadata"},
	}
)

// embedding is one IPv6 form that carries an IPv4 address.
type embedding struct {
	name  string // the form's name as the guard's reasons give it
	embed func(v4 netip.Addr) netip.Addr
	free  []int // bytes the form leaves to the user (subnet, host, server, ...)
}

// embeddedRanges are the IPv6 ranges of the forms carrying an IPv4
// address, written out here so that the fuzz targets do not trust ip.go's
// list.
var embeddedRanges = []netip.Prefix{
	netip.MustParsePrefix("::ffff:0:0/96"),
	netip.MustParsePrefix("::ffff:0:0:0/96"),
	netip.MustParsePrefix("::/96"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("2001::/32"),
}

// isMetadata reports whether ip is one of the metadata endpoints.
func isMetadata(ip netip.Addr) bool {
	ip = ip.WithZone("")
	for _, m := range metadataV4 {
		if ip == m.addr {
			return true
		}
	}
	for _, m := range metadataV6 {
		if ip == m.addr {
			return true
		}
	}
	return false
}

// inEmbeddedRange reports whether ip is in one of embeddedRanges. :: and
// ::1 are in ::/96 but are not IPv4-compatible addresses.
func inEmbeddedRange(ip netip.Addr) bool {
	ip = ip.WithZone("")
	if netip.MustParsePrefix("::/127").Contains(ip) {
		return false
	}
	for _, p := range embeddedRanges {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// embeddings builds each IPv6 form carrying an IPv4 address from its RFC,
// independently of the decoders in ip.go: IPv4-mapped and -compatible (RFC
// 4291), SIIT (RFC 2765), NAT64 with the well-known prefix (RFC 6052) and
// the local-use prefix at each prefix length RFC 6052 allows inside it (RFC
// 8215), 6to4 (RFC 3056) and Teredo (RFC 4380, client address and port
// XOR-ed). The bits a form leaves free (6to4 subnet and host, Teredo
// server, flags and port, a longer local NAT64 prefix) are filled with
// arbitrary values.
var embeddings = []embedding{
	{"IPv4-mapped", func(v4 netip.Addr) netip.Addr {
		return embedAt([16]byte{10: 0xff, 11: 0xff}, v4, 12, 13, 14, 15)
	}, nil},
	{"IPv4-translated (SIIT)", func(v4 netip.Addr) netip.Addr {
		return embedAt([16]byte{8: 0xff, 9: 0xff}, v4, 12, 13, 14, 15)
	}, nil},
	{"IPv4-compatible", func(v4 netip.Addr) netip.Addr {
		return embedAt([16]byte{}, v4, 12, 13, 14, 15)
	}, nil},
	{"NAT64", func(v4 netip.Addr) netip.Addr {
		return embedAt([16]byte{0: 0x00, 1: 0x64, 2: 0xff, 3: 0x9b}, v4, 12, 13, 14, 15)
	}, nil},
	{"local-use NAT64", func(v4 netip.Addr) netip.Addr { // 64:ff9b:1::/48
		return embedAt([16]byte{1: 0x64, 2: 0xff, 3: 0x9b, 5: 0x01, 15: 0x07}, v4, 6, 7, 9, 10)
	}, []int{11, 12, 13, 14, 15}},
	{"local-use NAT64", func(v4 netip.Addr) netip.Addr { // 64:ff9b:1:12::/56
		return embedAt([16]byte{1: 0x64, 2: 0xff, 3: 0x9b, 5: 0x01, 6: 0x12}, v4, 7, 9, 10, 11)
	}, []int{6, 12, 13, 14, 15}},
	{"local-use NAT64", func(v4 netip.Addr) netip.Addr { // 64:ff9b:1:1234::/64
		return embedAt([16]byte{1: 0x64, 2: 0xff, 3: 0x9b, 5: 0x01, 6: 0x12, 7: 0x34}, v4, 9, 10, 11, 12)
	}, []int{6, 7, 13, 14, 15}},
	{"local-use NAT64", func(v4 netip.Addr) netip.Addr { // 64:ff9b:1:1234:0:5678::/96
		return embedAt([16]byte{1: 0x64, 2: 0xff, 3: 0x9b, 5: 0x01, 6: 0x12, 7: 0x34, 10: 0x56, 11: 0x78}, v4, 12, 13, 14, 15)
	}, []int{6, 7, 9, 10, 11}},
	{"6to4", func(v4 netip.Addr) netip.Addr { // 2002:<v4>:beef::1
		return embedAt([16]byte{0: 0x20, 1: 0x02, 6: 0xbe, 7: 0xef, 15: 0x01}, v4, 2, 3, 4, 5)
	}, []int{6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
	{"Teredo", func(v4 netip.Addr) netip.Addr { // server 65.54.227.120, cone flag, port 40000
		b := [16]byte{0: 0x20, 1: 0x01, 4: 65, 5: 54, 6: 227, 7: 120, 8: 0x80, 10: ^byte(40000 >> 8), 11: ^byte(40000 & 0xff)}
		a := v4.As4()
		for i := range a {
			b[12+i] = ^a[i]
		}
		return netip.AddrFrom16(b)
	}, []int{4, 5, 6, 7, 8, 9, 10, 11}},
}

// embedAt returns base with the four bytes of v4 written at the given
// positions.
func embedAt(base [16]byte, v4 netip.Addr, at ...int) netip.Addr {
	a := v4.As4()
	for i, p := range at {
		base[p] = a[i]
	}
	return netip.AddrFrom16(base)
}

// everyMetadataRange is an allow-list an operator might write that
// contains every metadata endpoint (and this machine): none of the
// endpoints may be opened by it.
var everyMetadataRange = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.1/32"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("168.63.0.0/16"),
	netip.MustParsePrefix("fd00::/8"),
}
