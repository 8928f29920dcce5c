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
