package outbound

import (
	"fmt"
	"net/netip"
	"strings"
)

// rangeRule is one denied address range.
type rangeRule struct {
	prefix netip.Prefix
	reason string
	// never means Config.AllowPrivate cannot exempt the range: nothing a
	// webhook server could legitimately live on, or a form that hides
	// another address.
	never bool
}

func rule(cidr, reason string, never bool) rangeRule {
	return rangeRule{prefix: netip.MustParsePrefix(cidr), reason: reason, never: never}
}

// metadataAddrs are the cloud metadata and credential endpoints. No
// allow-list opens them (an allowed 169.254.0.0/16 still refuses
// 169.254.169.254), and CheckIP also finds them inside every IPv6 form that
// embeds an IPv4 address (see embedForms). 168.63.129.16 is a public
// address, refused here on every port.
var metadataAddrs = map[netip.Addr]string{
	netip.MustParseAddr("169.254.169.254"): "the instance metadata service (IMDS) of AWS, GCP, Azure and Tencent Cloud",
	netip.MustParseAddr("169.254.170.2"):   "the Amazon ECS task credentials endpoint",
	netip.MustParseAddr("169.254.170.23"):  "the Amazon EKS Pod Identity agent (credentials)",
	netip.MustParseAddr("fd00:ec2::254"):   "the AWS instance metadata service (IMDS) over IPv6",
	netip.MustParseAddr("fd00:ec2::23"):    "the Amazon EKS Pod Identity agent (credentials) over IPv6",
	netip.MustParseAddr("fd20:ce::254"):    "the Google Cloud metadata server over IPv6",
	netip.MustParseAddr("100.100.100.200"): "the Alibaba Cloud instance metadata service",
	netip.MustParseAddr("168.63.129.16"):   "the Azure WireServer (platform agent and credentials endpoint)",
}

// embedForm is an IPv6 range whose addresses carry an IPv4 address.
type embedForm struct {
	prefix netip.Prefix
	cidr   string // prefix as written (netip shows ::ffff:0:0/96 as ::ffff:0.0.0.0/96)
	name   string
	// v4Bit is the bit at which the IPv4 address starts, unchanged, in
	// every address of the range; -1 when it is XOR-ed or its place
	// varies. ParseCIDRs uses it to name the IPv4 range an entry meant.
	v4Bit int
	// decode returns the IPv4 addresses an address of the range may carry.
	decode func(b [16]byte) []netip.Addr
}

func form(cidr, name string, v4Bit int, decode func(b [16]byte) []netip.Addr) embedForm {
	return embedForm{prefix: netip.MustParsePrefix(cidr), cidr: cidr, name: name, v4Bit: v4Bit, decode: decode}
}

// v4At returns a decoder for an IPv4 address in bytes i to i+3.
func v4At(i int) func(b [16]byte) []netip.Addr {
	return func(b [16]byte) []netip.Addr {
		return []netip.Addr{netip.AddrFrom4([4]byte(b[i : i+4]))}
	}
}

// embedForms are the IPv6 forms embedding an IPv4 address. They are denied
// as whole ranges that no allow-list opens (see deniedRanges), and their
// IPv4 address is decoded only to name a metadata endpoint hidden in one.
var embedForms = []embedForm{
	form("::ffff:0:0/96", "IPv4-mapped", 96, v4At(12)),
	form("::ffff:0:0:0/96", "IPv4-translated (SIIT)", 96, v4At(12)),
	form("::/96", "IPv4-compatible", 96, v4At(12)),
	form("64:ff9b::/96", "NAT64", 96, v4At(12)),
	// RFC 8215 leaves the length of a local-use NAT64 prefix to the
	// operator; RFC 6052 places the IPv4 address (skipping bits 64-71) by
	// that length: /48, /56, /64 or /96. Every place is decoded.
	form("64:ff9b:1::/48", "local-use NAT64", -1, func(b [16]byte) []netip.Addr {
		return []netip.Addr{
			netip.AddrFrom4([4]byte{b[6], b[7], b[9], b[10]}),
			netip.AddrFrom4([4]byte{b[7], b[9], b[10], b[11]}),
			netip.AddrFrom4([4]byte{b[9], b[10], b[11], b[12]}),
			netip.AddrFrom4([4]byte(b[12:16])),
		}
	}),
	form("2002::/16", "6to4", 16, v4At(2)),
	// Teredo: 2001:0:<server v4>:<flags>:<port ^ 0xffff>:<client v4 ^ 0xffffffff>.
	form("2001::/32", "Teredo", -1, func(b [16]byte) []netip.Addr {
		return []netip.Addr{netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})}
	}),
}

// deniedRanges is checked in order; more specific ranges come before the
// ranges that contain them so that the reason is the precise one.
//
// IPv6 forms that embed an IPv4 address (IPv4-mapped, SIIT,
// IPv4-compatible, NAT64, 6to4, Teredo) are denied as whole prefixes, not
// by judging the embedded address: it is simpler, a wrong extraction
// cannot open anything, and no webhook needs them (give the IPv4 address
// instead). They cannot be allowed, so an allowance can never be used to
// reach, say, 10.0.0.1 through ::ffff:10.0.0.1. (CheckIP decodes them only
// to say so when the embedded address is a metadata endpoint.)
var deniedRanges = []rangeRule{
	// IPv4.
	rule("255.255.255.255/32", "limited broadcast", true),
	rule("0.0.0.0/8", "\"this network\" (0.0.0.0/8)", true),
	rule("10.0.0.0/8", "private (10.0.0.0/8)", false),
	rule("100.64.0.0/10", "carrier-grade NAT (100.64.0.0/10)", false),
	rule("127.0.0.0/8", "loopback (127.0.0.0/8)", false),
	rule("169.254.0.0/16", "link-local (169.254.0.0/16)", false),
	rule("172.16.0.0/12", "private (172.16.0.0/12)", false),
	rule("192.0.0.0/24", "IETF protocol assignments (192.0.0.0/24)", false),
	rule("192.0.2.0/24", "documentation (192.0.2.0/24)", false),
	rule("192.88.99.0/24", "6to4 relay anycast (192.88.99.0/24)", false),
	rule("192.168.0.0/16", "private (192.168.0.0/16)", false),
	rule("198.18.0.0/15", "benchmarking (198.18.0.0/15)", false),
	rule("198.51.100.0/24", "documentation (198.51.100.0/24)", false),
	rule("203.0.113.0/24", "documentation (203.0.113.0/24)", false),
	rule("224.0.0.0/4", "multicast (224.0.0.0/4)", true),
	rule("240.0.0.0/4", "reserved (240.0.0.0/4)", false),

	// IPv6.
	rule("::/128", "unspecified (::)", true),
	rule("::1/128", "loopback (::1)", false),
	rule("::ffff:0:0/96", "IPv4-mapped IPv6 (::ffff:0:0/96)", true),
	rule("::ffff:0:0:0/96", "IPv4-translated IPv6 (SIIT, ::ffff:0:0:0/96)", true),
	rule("::/96", "IPv4-compatible IPv6 (::/96)", true),
	rule("64:ff9b::/96", "NAT64 (64:ff9b::/96)", true),
	rule("64:ff9b:1::/48", "local-use NAT64 (64:ff9b:1::/48)", true),
	rule("100::/64", "discard-only (100::/64)", false),
	rule("2001::/32", "Teredo (2001::/32)", true),
	rule("2001:2::/48", "benchmarking (2001:2::/48)", false),
	rule("2001:db8::/32", "documentation (2001:db8::/32)", false),
	rule("2002::/16", "6to4 (2002::/16)", true),
	rule("3fff::/20", "documentation (3fff::/20)", false),
	rule("fc00::/7", "unique local (fc00::/7)", false),
	rule("fe80::/10", "link-local (fe80::/10)", false),
	rule("fec0::/10", "site-local (fec0::/10)", false),
	rule("ff00::/8", "multicast (ff00::/8)", true),
}

// outsideGlobal6 denies the rest of the IPv6 space outside global unicast
// (2000::/3): unassigned or special, never a webhook server's address.
var outsideGlobal6 = rangeRule{
	prefix: netip.MustParsePrefix("2000::/3"),
	reason: "outside IPv6 global unicast (2000::/3)",
}

// CheckIP reports whether ip may be connected to. It returns nil or a
// *BlockedError whose Reason names the denied range or endpoint.
//
// Denied: loopback, private (RFC 1918), link-local, carrier-grade NAT,
// multicast, broadcast, reserved, documentation, benchmarking, unspecified,
// 0.0.0.0/8, IETF 192.0.0.0/24, unique local, site-local, IPv6 outside
// 2000::/3, every IPv6 form embedding an IPv4 address (IPv4-mapped, SIIT,
// IPv4-compatible, NAT64, 6to4, Teredo), and the cloud metadata and
// credential endpoints (169.254.169.254, 169.254.170.2, 169.254.170.23,
// 100.100.100.200, 168.63.129.16, fd00:ec2::254, fd00:ec2::23,
// fd20:ce::254), also when embedded in one of those IPv6 forms.
//
// An address inside one of allow is accepted, except the ones no allowance
// can open: the metadata endpoints in any form, unspecified, 0.0.0.0/8,
// broadcast, multicast and the IPv4-embedding IPv6 forms. A zone
// (fe80::1%eth0) is ignored for the check.
//
// CheckIP judges ip as given: ::ffff:10.0.0.1 is IPv4-mapped, and denied.
// What a connection to a resolved address is judged by is Client.Resolve.
func CheckIP(ip netip.Addr, allow []netip.Prefix) error {
	if !ip.IsValid() {
		return &BlockedError{Reason: "invalid IP address"}
	}
	ip = ip.WithZone("")
	if why, ok := metadataReason(ip); ok {
		return &BlockedError{Reason: why}
	}
	r, denied := deniedRange(ip)
	if !denied {
		return nil
	}
	if !r.never {
		for _, p := range allow {
			if p.Contains(ip) {
				return nil
			}
		}
	}
	return &BlockedError{Reason: "address " + ip.String() + " is " + r.reason}
}

// metadataReason says which metadata endpoint ip is, or embeds.
func metadataReason(ip netip.Addr) (string, bool) {
	const never = "; no allow-list opens it"
	if what, ok := metadataAddrs[ip]; ok {
		return "address " + ip.String() + " is " + what + never, true
	}
	if !ip.Is6() {
		return "", false
	}
	b := ip.As16()
	for _, f := range embedForms {
		if !f.prefix.Contains(ip) {
			continue
		}
		for _, v4 := range f.decode(b) {
			if what, ok := metadataAddrs[v4]; ok {
				return "address " + ip.String() + " embeds " + v4.String() + " (" + f.name + "), " + what + never, true
			}
		}
	}
	return "", false
}

// deniedRange returns the first rule whose range contains ip.
func deniedRange(ip netip.Addr) (rangeRule, bool) {
	for _, r := range deniedRanges {
		if r.prefix.Contains(ip) {
			return r, true
		}
	}
	if ip.Is6() && !outsideGlobal6.prefix.Contains(ip) {
		return outsideGlobal6, true
	}
	return rangeRule{}, false
}

// ParseCIDRs parses an allow-list: each entry is a CIDR ("10.0.0.0/8",
// "fd12:3456::/48") or a bare address ("10.1.2.3", taken as /32 or /128).
// Surrounding spaces are trimmed; host bits are masked off. Empty entries,
// zones, /0 (which would allow everything) and entries overlapping an
// IPv6 form that embeds IPv4 addresses (::ffff:0:0/96, ::ffff:0:0:0/96,
// ::/96, 64:ff9b::/96, 64:ff9b:1::/48, 2002::/16, 2001::/32, or a prefix
// containing one, like ::/8) are errors: those forms are never allowed, so
// such an entry could only mislead; the IPv4 range is what to list. An
// entry containing a metadata endpoint (169.254.0.0/16) is accepted, and
// the endpoint stays denied.
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, raw := range list {
		s := strings.TrimSpace(raw)
		if s == "" {
			return nil, fmt.Errorf("outbound: allow-list entry %d is empty", i+1)
		}
		var p netip.Prefix
		if strings.Contains(s, "/") {
			var err error
			p, err = netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("outbound: allow-list entry %d %q is not a CIDR like 10.0.0.0/8: %w", i+1, s, err)
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("outbound: allow-list entry %d %q is not an IP address or CIDR: %w", i+1, s, err)
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("outbound: allow-list entry %d %q has an IPv6 zone, which is not allowed", i+1, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		p = p.Masked()
		if why := allowProblem(p); why != "" {
			return nil, fmt.Errorf("outbound: allow-list entry %d %q %s", i+1, s, why)
		}
		out = append(out, p)
	}
	return out, nil
}

// unspecifiedOrLoopback6 is :: and ::1.
var unspecifiedOrLoopback6 = netip.MustParsePrefix("::/127")

// allowProblem says why a (masked) prefix cannot be an allow-list entry,
// or returns "".
func allowProblem(p netip.Prefix) string {
	for _, f := range embedForms {
		if !p.Overlaps(f.prefix) || (p.Bits() >= 127 && unspecifiedOrLoopback6.Contains(p.Addr())) {
			// :: and ::1 sit in ::/96 but are not IPv4-compatible
			// addresses: an entry "::1" allows IPv6 loopback.
			continue
		}
		ipv4 := "the IPv4 range (e.g. 10.0.0.0/8)"
		if v4, ok := embeddedPrefix(p, f); ok {
			ipv4 = "the IPv4 range " + v4.String()
		}
		return "overlaps the " + f.name + " range (" + f.cidr + "), which no allow-list opens; list " + ipv4 + " instead"
	}
	if p.Bits() == 0 {
		return "would allow every address; list the private ranges you need"
	}
	return ""
}

// embeddedPrefix returns the IPv4 range that p, inside the form f, carries
// at f.v4Bit: ::ffff:10.0.0.0/104 carries 10.0.0.0/8. It reports false when
// p is not inside f, f has no fixed place, or p carries every IPv4 address.
func embeddedPrefix(p netip.Prefix, f embedForm) (netip.Prefix, bool) {
	if f.v4Bit < 0 || p.Bits() < f.prefix.Bits() || !f.prefix.Contains(p.Addr()) || p.Bits() <= f.v4Bit {
		return netip.Prefix{}, false
	}
	b := p.Addr().As16()
	i := f.v4Bit / 8
	v4 := netip.AddrFrom4([4]byte(b[i : i+4]))
	return netip.PrefixFrom(v4, min(p.Bits()-f.v4Bit, 32)).Masked(), true
}
