package outbound

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckIP(t *testing.T) {
	tests := []struct {
		name string
		ip   string
		why  string // "" means allowed
	}{
		// Public addresses.
		{"public v4", "8.8.8.8", ""},
		{"public v4 edge of 100.64/10", "100.63.255.255", ""},
		{"public v4 after CGNAT", "100.128.0.0", ""},
		{"public v4 after 172.16/12", "172.32.0.1", ""},
		{"public v4 before 172.16/12", "172.15.255.255", ""},
		{"public v4 198.20", "198.20.0.1", ""},
		{"public v6", "2606:4700:4700::1111", ""},
		{"public v6 2001:4860", "2001:4860:4860::8888", ""},
		{"public v6 2001:1::1 (not Teredo)", "2001:1::1", ""},

		// IPv4 special ranges.
		{"this network", "0.0.0.0", "this network"},
		{"this network 0.1.2.3", "0.1.2.3", "this network"},
		{"private 10/8", "10.0.0.1", "private (10.0.0.0/8)"},
		{"private 10/8 end", "10.255.255.255", "private (10.0.0.0/8)"},
		{"CGNAT start", "100.64.0.0", "carrier-grade NAT"},
		{"CGNAT end", "100.127.255.255", "carrier-grade NAT"},
		{"loopback", "127.0.0.1", "loopback"},
		{"loopback other", "127.1.2.3", "loopback"},
		{"link-local", "169.254.1.1", "link-local"},
		{"metadata", "169.254.169.254", "metadata"},
		{"aliyun metadata", "100.100.100.200", "metadata"},
		{"private 172.16/12", "172.16.0.1", "private (172.16.0.0/12)"},
		{"private 172.31", "172.31.255.255", "private (172.16.0.0/12)"},
		{"IETF 192.0.0/24", "192.0.0.8", "IETF protocol assignments"},
		{"documentation 192.0.2/24", "192.0.2.1", "documentation"},
		{"6to4 relay anycast", "192.88.99.1", "6to4 relay"},
		{"private 192.168/16", "192.168.1.1", "private (192.168.0.0/16)"},
		{"benchmarking 198.18", "198.18.0.1", "benchmarking"},
		{"benchmarking 198.19", "198.19.255.255", "benchmarking"},
		{"documentation 198.51.100/24", "198.51.100.7", "documentation"},
		{"documentation 203.0.113/24", "203.0.113.9", "documentation"},
		{"multicast", "224.0.0.1", "multicast"},
		{"multicast high", "239.255.255.250", "multicast"},
		{"reserved 240/4", "240.0.0.1", "reserved"},
		{"reserved 250", "250.1.2.3", "reserved"},
		{"broadcast", "255.255.255.255", "broadcast"},

		// IPv6 special ranges.
		{"v6 unspecified", "::", "unspecified"},
		{"v6 loopback", "::1", "loopback"},
		{"v4-mapped loopback", "::ffff:127.0.0.1", "IPv4-mapped"},
		{"v4-mapped public", "::ffff:8.8.8.8", "IPv4-mapped"},
		{"v4-mapped metadata", "::ffff:169.254.169.254", "IPv4-mapped"},
		{"v4-compatible", "::127.0.0.1", "IPv4-compatible"},
		{"v4-compatible public", "::8.8.8.8", "IPv4-compatible"},
		{"NAT64", "64:ff9b::a9fe:a9fe", "NAT64"},
		{"NAT64 public", "64:ff9b::808:808", "NAT64"},
		{"local NAT64", "64:ff9b:1::1", "local-use NAT64"},
		{"discard-only", "100::1", "discard-only"},
		{"Teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"benchmarking v6", "2001:2::1", "benchmarking"},
		{"documentation 2001:db8", "2001:db8::1", "documentation"},
		{"6to4", "2002:7f00:1::1", "6to4"},
		{"6to4 metadata", "2002:a9fe:a9fe::1", "6to4"},
		{"documentation 3fff", "3fff::1", "documentation"},
		{"ULA fc", "fc00::1", "unique local"},
		{"ULA fd", "fd12:3456::1", "unique local"},
		{"aws metadata v6", "fd00:ec2::254", "metadata"},
		{"link-local v6", "fe80::1", "link-local"},
		{"link-local v6 with zone", "fe80::1%eth0", "link-local"},
		{"site-local", "fec0::1", "site-local"},
		{"multicast v6", "ff02::1", "multicast"},
		{"multicast v6 global", "ff0e::1", "multicast"},
		{"unassigned v6 4000::", "4000::1", "outside IPv6 global unicast"},
		{"unassigned v6 1::", "1::1", "outside IPv6 global unicast"},
		{"unassigned v6 e000::", "e000::1", "outside IPv6 global unicast"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.ip)
			err := CheckIP(ip, nil)
			if tt.why == "" {
				if err != nil {
					t.Fatalf("CheckIP(%s) = %v, want allowed", ip, err)
				}
				return
			}
			var be *BlockedError
			if !errors.As(err, &be) || !errors.Is(err, ErrBlocked) {
				t.Fatalf("CheckIP(%s) = %v, want *BlockedError", ip, err)
			}
			if !strings.Contains(be.Reason, tt.why) {
				t.Errorf("CheckIP(%s) reason %q, want it to mention %q", ip, be.Reason, tt.why)
			}
		})
	}
}

func TestCheckIPAllow(t *testing.T) {
	prefixes := func(s ...string) []netip.Prefix {
		p, err := ParseCIDRs(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		ip    string
		allow []netip.Prefix
		ok    bool
	}{
		{"loopback allowed by /32", "127.0.0.1", prefixes("127.0.0.1"), true},
		{"loopback neighbour not allowed", "127.0.0.2", prefixes("127.0.0.1"), false},
		{"loopback allowed by /8", "127.9.9.9", prefixes("127.0.0.0/8"), true},
		{"v6 loopback allowed", "::1", prefixes("::1"), true},
		{"v4 allowance does not cover mapped form", "::ffff:127.0.0.1", prefixes("127.0.0.0/8"), false},
		{"VPC range", "10.20.30.40", prefixes("10.0.0.0/8"), true},
		{"other private range", "192.168.0.1", prefixes("10.0.0.0/8"), false},
		{"CGNAT allowed", "100.64.1.1", prefixes("100.64.0.0/10"), true},
		{"ULA allowed", "fd12::1", prefixes("fd00::/8"), true},
		{"metadata inside allowed link-local", "169.254.169.254", prefixes("169.254.0.0/16"), false},
		{"metadata exactly allowed", "169.254.169.254", prefixes("169.254.169.254"), false},
		{"aliyun metadata inside allowed CGNAT", "100.100.100.200", prefixes("100.64.0.0/10"), false},
		{"aws v6 metadata inside allowed ULA", "fd00:ec2::254", prefixes("fd00::/8"), false},
		{"multicast cannot be allowed", "224.0.0.1", prefixes("224.0.0.0/4"), false},
		{"broadcast cannot be allowed", "255.255.255.255", prefixes("255.255.255.255"), false},
		{"unspecified cannot be allowed", "0.0.0.0", prefixes("0.0.0.0/8"), false},
		{"v6 unspecified cannot be allowed", "::", prefixes("::/8"), false},
		{"mapped cannot be allowed", "::ffff:10.0.0.1", prefixes("::ffff:0:0/96"), false},
		{"NAT64 cannot be allowed", "64:ff9b::a00:1", prefixes("64:ff9b::/96"), false},
		{"6to4 cannot be allowed", "2002:a00:1::1", prefixes("2002::/16"), false},
		{"Teredo cannot be allowed", "2001::1", prefixes("2001::/32"), false},
		{"public stays allowed", "8.8.8.8", prefixes("10.0.0.0/8"), true},
		{"unmasked programmatic prefix", "10.1.2.3", []netip.Prefix{netip.MustParsePrefix("10.9.9.9/8")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckIP(netip.MustParseAddr(tt.ip), tt.allow)
			if tt.ok && err != nil {
				t.Fatalf("CheckIP(%s, %v) = %v, want allowed", tt.ip, tt.allow, err)
			}
			if !tt.ok && !errors.Is(err, ErrBlocked) {
				t.Fatalf("CheckIP(%s, %v) = %v, want blocked", tt.ip, tt.allow, err)
			}
		})
	}
}

func TestCheckIPInvalid(t *testing.T) {
	if err := CheckIP(netip.Addr{}, nil); !errors.Is(err, ErrBlocked) {
		t.Fatalf("CheckIP(zero Addr) = %v, want blocked", err)
	}
}
