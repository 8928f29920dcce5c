package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// errNotDialled is returned by the test's extra Control step, after the
// guard's own check allowed an address, for any address other than the
// loopback test server: the test must not connect beyond this machine.
var errNotDialled = errors.New("test: allowed by the guard, not dialled (not the loopback test server)")

// outcome is what the guard decided for a URL, read the same way from
// Client.Check and from Client.Post.
type outcome struct {
	kind   string // "allowed", "blocked" or "unresolved"
	url    string // of a blocked one
	reason string // of a blocked one, without Post's "connect-time check: "
}

func (o outcome) String() string {
	if o.kind == "blocked" {
		return fmt.Sprintf("blocked %s: %s", o.url, o.reason)
	}
	return o.kind
}

func checkOutcome(t *testing.T, err error) outcome {
	t.Helper()
	var be *BlockedError
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return outcome{kind: "allowed"}
	case errors.As(err, &be):
		return outcome{kind: "blocked", url: be.URL, reason: be.Reason}
	case errors.As(err, &dnsErr):
		return outcome{kind: "unresolved"}
	}
	t.Fatalf("Check error %v is neither blocked nor a DNS error", err)
	return outcome{}
}

func postOutcome(t *testing.T, resp *Response, err error, server string) outcome {
	t.Helper()
	var be *BlockedError
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		if resp.Status != http.StatusNoContent || resp.RemoteAddr != server {
			t.Fatalf("Post reached %s with %d, want the test server %s", resp.RemoteAddr, resp.Status, server)
		}
		return outcome{kind: "allowed"}
	case errors.Is(err, errNotDialled):
		return outcome{kind: "allowed"}
	case errors.As(err, &be):
		return outcome{kind: "blocked", url: be.URL, reason: strings.TrimPrefix(be.Reason, "connect-time check: ")}
	case errors.As(err, &dnsErr):
		return outcome{kind: "unresolved"}
	}
	t.Fatalf("Post error %v is not one the guard decides", err)
	return outcome{}
}

// verdictCase is one URL under one allow-list, with the names the fake
// DNS serves for it.
type verdictCase struct {
	name     string
	url      string
	allow    []netip.Prefix
	dns      map[string][]string
	rcode    dnsmessage.RCode
	want     string // "allowed", "blocked" or "unresolved"
	metadata string // for a metadata endpoint: what its reason must name
}

// verdictCases builds the table: IP literals of each class, every
// metadata endpoint in every form both as a literal and behind a name,
// names resolving to allowed, refused, IPv4-mapped and mixed addresses,
// and names that do not resolve, each under no allow-list, the loopback
// one a local user gives, and one containing every metadata endpoint.
func verdictCases(port string) []verdictCase {
	allows := []struct {
		name  string
		allow []netip.Prefix
	}{
		{"none", nil},
		{"127.0.0.1/32", loopbackOnly},
		{"every metadata range", everyMetadataRange},
	}
	hostOf := func(a netip.Addr) string {
		if a.Is6() {
			return "[" + a.String() + "]"
		}
		return a.String()
	}
	var cases []verdictCase
	n := 0
	// Both ways to reach addr: as the URL's literal, and as a name the
	// resolver answers with it (A or AAAA).
	both := func(label string, addr netip.Addr, allowIdx []int, want []string, metadata string) {
		for i, ai := range allowIdx {
			a := allows[ai]
			cases = append(cases, verdictCase{
				name: label + "/literal/" + a.name, url: "http://" + hostOf(addr) + ":" + port + "/hook?token=s3cr3t",
				allow: a.allow, want: want[i], metadata: metadata,
			})
			n++
			host := fmt.Sprintf("name%d.example", n)
			cases = append(cases, verdictCase{
				name: label + "/name/" + a.name, url: "http://" + host + ":" + port + "/hook?token=s3cr3t",
				allow: a.allow, dns: map[string][]string{host: {addr.String()}}, want: want[i], metadata: metadata,
			})
		}
	}

	// IP literals (and names resolving to them) of each class.
	classes := []struct {
		label string
		addr  string
		want  [3]string // per allow-list: none, loopback, every metadata range
	}{
		{"public IPv4", "8.8.8.8", [3]string{"allowed", "allowed", "allowed"}},
		{"public IPv6", "2606:4700:4700::1111", [3]string{"allowed", "allowed", "allowed"}},
		{"loopback", "127.0.0.1", [3]string{"blocked", "allowed", "allowed"}},
		{"other loopback", "127.0.0.2", [3]string{"blocked", "blocked", "blocked"}},
		{"IPv6 loopback", "::1", [3]string{"blocked", "blocked", "blocked"}},
		{"private", "10.0.0.1", [3]string{"blocked", "blocked", "blocked"}},
		{"link-local", "169.254.1.1", [3]string{"blocked", "blocked", "allowed"}},
		{"CGNAT", "100.64.0.1", [3]string{"blocked", "blocked", "allowed"}},
		{"unique local", "fd00::5", [3]string{"blocked", "blocked", "allowed"}},
		{"next to Azure WireServer", "168.63.129.17", [3]string{"allowed", "allowed", "allowed"}},
		{"multicast", "224.0.0.1", [3]string{"blocked", "blocked", "blocked"}},
		{"this network", "0.0.0.0", [3]string{"blocked", "blocked", "blocked"}},
		{"documentation", "192.0.2.1", [3]string{"blocked", "blocked", "blocked"}},
		{"IPv4-mapped public", "::ffff:8.8.8.8", [3]string{"blocked", "blocked", "blocked"}},
		{"6to4 of a public address", "2002:808:808::1", [3]string{"blocked", "blocked", "blocked"}},
	}
	for _, c := range classes {
		addr := netip.MustParseAddr(c.addr)
		want := c.want[:]
		if addr.Is4In6() {
			// A literal [::ffff:8.8.8.8] is refused by the URL rules;
			// behind a name the dialler connects to 8.8.8.8 (see
			// dialledAddr), so there it is judged as 8.8.8.8.
			for i, a := range allows {
				cases = append(cases, verdictCase{name: c.label + "/literal/" + a.name, url: "http://[" + c.addr + "]:" + port + "/", allow: a.allow, want: want[i]})
				n++
				host := fmt.Sprintf("name%d.example", n)
				cases = append(cases, verdictCase{name: c.label + "/name/" + a.name, url: "http://" + host + ":" + port + "/",
					allow: a.allow, dns: map[string][]string{host: {c.addr}}, want: "allowed"})
			}
			continue
		}
		both(c.label, addr, []int{0, 1, 2}, want, "")
	}

	// Every metadata endpoint in every form, under no allow-list and one
	// containing them all.
	for _, m := range metadataV4 {
		both(m.addr.String(), m.addr, []int{0, 2}, []string{"blocked", "blocked"}, m.what)
		for _, e := range embeddings {
			both(e.name+" "+m.addr.String(), e.embed(m.addr), []int{0, 2}, []string{"blocked", "blocked"}, m.what)
		}
	}
	for _, m := range metadataV6 {
		both(m.addr.String(), m.addr, []int{0, 2}, []string{"blocked", "blocked"}, m.what)
	}

	// Names: mixed answers, and answers that do not come.
	names := []verdictCase{
		{name: "one refused, one allowed address", dns: map[string][]string{"mixed.example": {"127.0.0.2", "127.0.0.1"}}, url: "http://mixed.example:" + port + "/", allow: loopbackOnly, want: "allowed"},
		{name: "metadata and an allowed address", dns: map[string][]string{"mixed.example": {"169.254.169.254", "127.0.0.1"}}, url: "http://mixed.example:" + port + "/", allow: everyMetadataRange, want: "allowed"},
		{name: "mapped metadata and an allowed address", dns: map[string][]string{"mixed.example": {"::ffff:169.254.169.254", "127.0.0.1"}}, url: "http://mixed.example:" + port + "/", allow: loopbackOnly, want: "allowed"},
		{name: "only refused addresses", dns: map[string][]string{"mixed.example": {"127.0.0.2", "10.0.0.1", "fd00:ec2::254"}}, url: "http://mixed.example:" + port + "/", allow: loopbackOnly, want: "blocked"},
		{name: "every metadata endpoint", dns: map[string][]string{"mixed.example": {"169.254.169.254", "168.63.129.16", "fd20:ce::254", "2002:a9fe:aa02::"}}, url: "http://mixed.example:" + port + "/", allow: everyMetadataRange, want: "blocked", metadata: "no allow-list opens it"},
		{name: "uppercase name with a trailing dot", dns: map[string][]string{"up.example": {"127.0.0.1"}}, url: "http://UP.Example.:" + port + "/", allow: loopbackOnly, want: "allowed"},
		{name: "no such host", dns: map[string][]string{}, url: "http://missing.example:" + port + "/", allow: loopbackOnly, want: "unresolved"},
		{name: "server failure", dns: map[string][]string{"up.example": {"127.0.0.1"}}, rcode: dnsmessage.RCodeServerFailure, url: "http://up.example:" + port + "/", allow: loopbackOnly, want: "unresolved"},
		{name: "refused by the port rule", url: "http://127.0.0.1:22/", allow: loopbackOnly, want: "blocked"},
		{name: "localhost", url: "http://localhost:" + port + "/", allow: loopbackOnly, want: "blocked"},
		{name: "numeric host", url: "http://2130706433:" + port + "/", allow: loopbackOnly, want: "blocked"},
	}
	return append(cases, names...)
}

// TestCheckIsPostsVerdict is check-url's promise: for each URL, Check's
// verdict is what Post does. Post runs for real against a loopback
// server; the guard's Control check runs first on every address, and only
// then does the test refuse to connect anywhere but that server.
func TestCheckIsPostsVerdict(t *testing.T) {
	ts, hits := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	server := ts.Listener.Addr().String()
	cases := verdictCases(portOf(t, ts.URL))
	metadata := 0
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			dns := newFakeDNS(tt.dns)
			dns.rcode = tt.rcode
			c := testClient(t, Config{AllowPrivate: tt.allow}, dns, "")
			guard := c.dialer.Control
			c.dialer.Control = func(network, address string, rc syscall.RawConn) error {
				if err := guard(network, address, rc); err != nil {
					return err
				}
				if address != server {
					return errNotDialled
				}
				return nil
			}

			res, err := c.Check(context.Background(), tt.url)
			checked := checkOutcome(t, err)
			if res == nil && err == nil {
				t.Fatal("Check returned neither a result nor an error")
			}
			before := hits.Load()
			resp, err := c.Post(context.Background(), tt.url, nil, nil)
			posted := postOutcome(t, resp, err, server)

			if checked != posted {
				t.Fatalf("Check says %v, Post did %v", checked, posted)
			}
			if checked.kind != tt.want {
				t.Fatalf("verdict %v, want %s", checked, tt.want)
			}
			if reached := hits.Load() != before; reached != (err == nil) {
				t.Errorf("server reached: %v, Post error: %v", reached, err)
			}
			if strings.Contains(checked.url+checked.reason, "s3cr3t") {
				t.Errorf("verdict leaks the query: %v", checked)
			}
			if tt.metadata != "" {
				metadata++
				if checked.kind != "blocked" || !strings.Contains(checked.reason, tt.metadata) || !strings.Contains(checked.reason, "no allow-list opens it") {
					t.Errorf("metadata endpoint: verdict %v, want blocked naming %q", checked, tt.metadata)
				}
			}
			if res != nil && checked.kind != "unresolved" {
				for _, v := range res.Addrs {
					if v.Addr.Is4In6() {
						t.Errorf("verdict on %s: an IPv4-mapped address is dialled as IPv4", v.Addr)
					}
				}
			}
		})
	}
	t.Logf("%d URL and allow-list cases, %d of them a metadata endpoint, each Check = Post", len(cases), metadata)
}

func TestResolve(t *testing.T) {
	dns := newFakeDNS(map[string][]string{
		"mapped.example": {"::ffff:127.0.0.1"},
		"meta.example":   {"::ffff:169.254.169.254", "2002:a9fe:a9fe::1"},
		"two.example":    {"127.0.0.1", "::1"},
	})
	tests := []struct {
		name  string
		host  string
		allow []netip.Prefix
		want  map[string]string // address -> "" for allowed, or a substring of the reason
	}{
		{"IPv4-mapped answer is the IPv4 address", "mapped.example", loopbackOnly, map[string]string{"127.0.0.1": ""}},
		{"IPv4-mapped answer judged as IPv4", "mapped.example", nil, map[string]string{"127.0.0.1": "loopback (127.0.0.0/8)"}},
		{"metadata in mapped and 6to4 answers", "meta.example", everyMetadataRange, map[string]string{"169.254.169.254": "is the instance metadata service", "2002:a9fe:a9fe::1": "embeds 169.254.169.254 (6to4)"}},
		{"each address judged", "two.example", loopbackOnly, map[string]string{"127.0.0.1": "", "::1": "loopback (::1)"}},
		{"literal, no lookup", "10.1.2.3", nil, map[string]string{"10.1.2.3": "private"}},
		{"mapped literal judged as dialled", "::ffff:10.1.2.3", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, map[string]string{"10.1.2.3": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testClient(t, Config{AllowPrivate: tt.allow}, dns, "")
			vs, err := c.Resolve(context.Background(), tt.host)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if len(vs) != len(tt.want) {
				t.Fatalf("Resolve = %v, want %q", vs, tt.want)
			}
			for _, v := range vs {
				why, ok := tt.want[v.Addr.String()]
				switch {
				case !ok:
					t.Errorf("unexpected address %s", v.Addr)
				case why == "" && v.Err != nil:
					t.Errorf("%s refused: %v", v.Addr, v.Err)
				case why != "" && (!errors.Is(v.Err, ErrBlocked) || !strings.Contains(v.Err.Error(), why)):
					t.Errorf("%s: %v, want blocked mentioning %q", v.Addr, v.Err, why)
				}
			}
		})
	}
	t.Run("lookup failure", func(t *testing.T) {
		c := testClient(t, Config{}, dns, "")
		_, err := c.Resolve(context.Background(), "missing.example")
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound || errors.Is(err, ErrBlocked) {
			t.Fatalf("Resolve = %v, want a not-found *net.DNSError", err)
		}
	})
}
