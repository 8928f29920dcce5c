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

// metadataAddrs are cloud instance-metadata endpoints. They are denied even
// when an allowed prefix contains them.
var metadataAddrs = map[netip.Addr]string{
	netip.MustParseAddr("169.254.169.254"): "cloud metadata endpoint (AWS, GCP, Azure, Tencent, ...)",
	netip.MustParseAddr("fd00:ec2::254"):   "cloud metadata endpoint (AWS IPv6)",
	netip.MustParseAddr("100.100.100.200"): "cloud metadata endpoint (Alibaba Cloud)",
}

// deniedRanges is checked in order; more specific ranges come before the
// ranges that contain them so that the reason is the precise one.
//
// IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible,
// NAT64, 6to4, Teredo) are denied as whole prefixes rather than by
// extracting and checking the embedded address: it is simpler, it cannot be
// fooled by a wrong extraction, and no webhook needs them (give the IPv4
// address instead). They cannot be allowed, so an allowance can never be
// used to reach, say, the metadata address through ::ffff:169.254.169.254.
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
// *BlockedError whose Reason names the denied range.
//
// Denied: loopback, private (RFC 1918), link-local, carrier-grade NAT,
// cloud metadata endpoints, multicast, broadcast, reserved, documentation,
// benchmarking, unspecified, 0.0.0.0/8, IETF 192.0.0.0/24, unique local,
// site-local, IPv6 outside 2000::/3, and every IPv6 form embedding an IPv4
// address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo).
//
// An address inside one of allow is accepted, except the ones no allowance
// can open: the metadata endpoints (169.254.169.254, fd00:ec2::254,
// 100.100.100.200), unspecified, 0.0.0.0/8, broadcast, multicast and the
// IPv4-embedding IPv6 forms. A zone (fe80::1%eth0) is ignored for the check.
func CheckIP(ip netip.Addr, allow []netip.Prefix) error {
	if !ip.IsValid() {
		return &BlockedError{Reason: "invalid IP address"}
	}
	ip = ip.WithZone("")
	if why, ok := metadataAddrs[ip]; ok {
		return &BlockedError{Reason: "address " + ip.String() + " is a " + why}
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
// zones and /0 (which would allow everything) are errors.
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
		if p.Bits() == 0 {
			return nil, fmt.Errorf("outbound: allow-list entry %d %q would allow every address; list the private ranges you need", i+1, s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
