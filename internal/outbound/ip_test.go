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
		{"ECS credentials", "169.254.170.2", "ECS task credentials"},
		{"EKS Pod Identity", "169.254.170.23", "EKS Pod Identity"},
		{"link-local next to ECS credentials", "169.254.170.3", "link-local"},
		{"aliyun metadata", "100.100.100.200", "metadata"},
		{"Azure WireServer, a public address", "168.63.129.16", "Azure WireServer"},
		{"public next to Azure WireServer", "168.63.129.17", ""},
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
		{"v4-mapped metadata", "::ffff:169.254.169.254", "embeds 169.254.169.254 (IPv4-mapped)"},
		{"SIIT", "::ffff:0:127.0.0.1", "SIIT"},
		{"SIIT public", "::ffff:0:8.8.8.8", "SIIT"},
		{"v4-compatible", "::127.0.0.1", "IPv4-compatible"},
		{"v4-compatible public", "::8.8.8.8", "IPv4-compatible"},
		{"NAT64 metadata", "64:ff9b::a9fe:a9fe", "embeds 169.254.169.254 (NAT64)"},
		{"NAT64", "64:ff9b::a00:1", "NAT64"},
		{"NAT64 public", "64:ff9b::808:808", "NAT64"},
		{"local NAT64", "64:ff9b:1::1", "local-use NAT64"},
		{"discard-only", "100::1", "discard-only"},
		{"Teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"benchmarking v6", "2001:2::1", "benchmarking"},
		{"documentation 2001:db8", "2001:db8::1", "documentation"},
		{"6to4", "2002:7f00:1::1", "6to4"},
		{"6to4 metadata", "2002:a9fe:a9fe::1", "embeds 169.254.169.254 (6to4)"},
		{"documentation 3fff", "3fff::1", "documentation"},
		{"ULA fc", "fc00::1", "unique local"},
		{"ULA fd", "fd12:3456::1", "unique local"},
		{"aws metadata v6", "fd00:ec2::254", "metadata"},
		{"EKS Pod Identity v6", "fd00:ec2::23", "EKS Pod Identity"},
		{"GCP metadata v6", "fd20:ce::254", "Google Cloud metadata"},
		{"ULA next to GCP metadata", "fd20:ce::255", "unique local"},
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
		// Prefixes ParseCIDRs refuses (the IPv4-embedding forms) are given
		// directly: CheckIP must deny those forms whatever it is handed.
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
		{"v6 unspecified cannot be allowed", "::", []netip.Prefix{netip.MustParsePrefix("::/8")}, false},
		{"v6 unspecified listed alone", "::", prefixes("::"), false},
		{"mapped cannot be allowed", "::ffff:10.0.0.1", []netip.Prefix{netip.MustParsePrefix("::ffff:0:0/96")}, false},
		{"NAT64 cannot be allowed", "64:ff9b::a00:1", []netip.Prefix{netip.MustParsePrefix("64:ff9b::/96")}, false},
		{"6to4 cannot be allowed", "2002:a00:1::1", []netip.Prefix{netip.MustParsePrefix("2002::/16")}, false},
		{"Teredo cannot be allowed", "2001::1", []netip.Prefix{netip.MustParsePrefix("2001::/32")}, false},
		{"SIIT cannot be allowed", "::ffff:0:a00:1", []netip.Prefix{netip.MustParsePrefix("::ffff:0:0:0/96")}, false},
		{"ECS credentials inside allowed link-local", "169.254.170.2", prefixes("169.254.0.0/16"), false},
		{"EKS Pod Identity exactly allowed", "169.254.170.23", prefixes("169.254.170.23"), false},
		{"Azure WireServer exactly allowed", "168.63.129.16", prefixes("168.63.129.16"), false},
		{"GCP v6 metadata inside allowed ULA", "fd20:ce::254", prefixes("fd00::/8"), false},
		{"mapped metadata with every range given directly", "::ffff:169.254.169.254", []netip.Prefix{netip.MustParsePrefix("::/0")}, false},
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

// TestMetadataEveryForm tries every metadata endpoint in every form the
// guard decodes, against allow-lists up to one holding the very range of
// the form, and wants each refused with a reason naming the endpoint.
func TestMetadataEveryForm(t *testing.T) {
	allows := []struct {
		name  string
		allow []netip.Prefix
	}{
		{"no allow-list", nil},
		{"allow-list containing every endpoint", everyMetadataRange},
	}
	type tc struct {
		name  string
		ip    netip.Addr
		want  []string // substrings of the reason
		allow []netip.Prefix
	}
	var tests []tc
	for _, m := range metadataV4 {
		cases := []tc{{name: m.addr.String(), ip: m.addr, want: []string{m.what, "no allow-list opens it"}}}
		for _, e := range embeddings {
			ip := e.embed(m.addr)
			cases = append(cases, tc{name: e.name + " " + ip.String(), ip: ip, want: []string{"embeds " + m.addr.String() + " (" + e.name + ")", m.what}})
		}
		for _, c := range cases {
			for _, a := range allows {
				c.name, c.allow = c.name+"/"+a.name, a.allow
				tests = append(tests, c)
				c.name = strings.TrimSuffix(c.name, "/"+a.name)
			}
			// The embedding form's own range, given directly (ParseCIDRs
			// would refuse it), and the address itself.
			c.name, c.allow = c.name+"/its own address allowed", []netip.Prefix{netip.PrefixFrom(c.ip, c.ip.BitLen())}
			tests = append(tests, c)
		}
	}
	for _, m := range metadataV6 {
		c := tc{name: m.addr.String(), ip: m.addr, want: []string{m.what, "no allow-list opens it"}}
		for _, a := range allows {
			tests = append(tests, tc{name: c.name + "/" + a.name, ip: c.ip, want: c.want, allow: a.allow})
		}
		tests = append(tests, tc{name: c.name + "/its own address allowed", ip: c.ip, want: c.want, allow: []netip.Prefix{netip.PrefixFrom(c.ip, 128)}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckIP(tt.ip, tt.allow)
			var be *BlockedError
			if !errors.As(err, &be) || !errors.Is(err, ErrBlocked) {
				t.Fatalf("CheckIP(%s, %v) = %v, want a *BlockedError", tt.ip, tt.allow, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(be.Reason, w) {
					t.Errorf("CheckIP(%s) reason %q, want it to mention %q", tt.ip, be.Reason, w)
				}
			}
		})
	}
}

// TestEmbedFormsAreNeverAllowed pins that each range decoded for metadata
// is also denied as a whole, whatever the allow-list: the decoding only
// names what an address hides, it never decides that one is allowed.
func TestEmbedFormsAreNeverAllowed(t *testing.T) {
	for _, f := range embedForms {
		t.Run(f.name, func(t *testing.T) {
			found := false
			for _, r := range deniedRanges {
				if r.prefix == f.prefix {
					found = true
					if !r.never {
						t.Errorf("%s: denied range %v can be allowed", f.name, r.prefix)
					}
				}
			}
			if !found {
				t.Errorf("%s: no denied range %v", f.name, f.prefix)
			}
			// An address in the middle of the form, inside every
			// allow-list there is, is denied with the form's reason.
			ip := embedAt(f.prefix.Addr().As16(), netip.MustParseAddr("10.1.2.3"), 12, 13, 14, 15)
			if err := CheckIP(ip, []netip.Prefix{netip.MustParsePrefix("::/0")}); err == nil {
				t.Errorf("CheckIP(%s, ::/0) allowed", ip)
			}
		})
	}
}
