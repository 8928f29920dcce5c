package outbound

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"http://example.com/", "https://example.com:443/a?b#c", "http://example.com:8080",
		"http://127.0.0.1/", "http://[::1]:80/", "http://[fe80::1%25eth0]/", "http://2130706433/",
		"http://0x7f.1/", "http://bücher.example/", "http://１２７.０.０.１/", "http://u:p@example.com/",
		"https://example.com:8443/", "http://localhost./", "mailto:a@b", "http://example.com:65536/",
		"http://[::ffff:127.0.0.1]/", "HTTP://EXAMPLE.COM./", "http://%zz/", "http://a..b/",
	} {
		f.Add(s)
	}
	allow := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	f.Fuzz(func(t *testing.T, raw string) {
		red := Redact(raw)
		if strings.ContainsAny(red, "?#") {
			t.Fatalf("Redact(%q) = %q keeps a query or fragment", raw, red)
		}
		for _, cfg := range []Config{{}, {AllowPrivate: allow}} {
			u, err := cfg.CheckURL(raw)
			if err != nil {
				if _, ok := err.(*BlockedError); !ok {
					t.Fatalf("CheckURL(%q) error %T is not *BlockedError", raw, err)
				}
				continue
			}
			if u.Scheme != "http" && u.Scheme != "https" {
				t.Fatalf("CheckURL(%q) allowed scheme %q", raw, u.Scheme)
			}
			if u.User != nil {
				t.Fatalf("CheckURL(%q) allowed userinfo", raw)
			}
			host := u.Hostname()
			if host == "" || host == "localhost" || strings.HasSuffix(host, ".localhost") {
				t.Fatalf("CheckURL(%q) allowed host %q", raw, host)
			}
			port := 80
			if u.Scheme == "https" {
				port = 443
			}
			if p := u.Port(); p != "" {
				n, err := strconv.Atoi(p)
				if err != nil {
					t.Fatalf("CheckURL(%q) returned port %q", raw, p)
				}
				port = n
			}
			if !portAllowed(u.Scheme, port) {
				t.Fatalf("CheckURL(%q) allowed %s port %d", raw, u.Scheme, port)
			}
			if ip, err := netip.ParseAddr(host); err == nil {
				if err := CheckIP(ip, cfg.AllowPrivate); err != nil {
					t.Fatalf("CheckURL(%q) allowed denied address: %v", raw, err)
				}
			}
			// The normalised form is stable.
			u2, err := cfg.CheckURL(u.String())
			if err != nil {
				t.Fatalf("CheckURL(%q) = %s, which is then denied: %v", raw, u, err)
			}
			if u2.String() != u.String() {
				t.Fatalf("CheckURL not idempotent: %q -> %s -> %s", raw, u, u2)
			}
		}
	})
}

func FuzzCheckIP(f *testing.F) {
	for _, s := range []string{
		"8.8.8.8", "127.0.0.1", "169.254.169.254", "::1", "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe",
		"2002:a9fe:a9fe::", "fd00:ec2::254", "100.100.100.200", "2606:4700::1", "fe80::1",
	} {
		a := netip.MustParseAddr(s)
		f.Add(a.AsSlice(), uint8(a.BitLen()))
	}
	metadata := []netip.Addr{
		netip.MustParseAddr("169.254.169.254"),
		netip.MustParseAddr("fd00:ec2::254"),
		netip.MustParseAddr("100.100.100.200"),
	}
	f.Fuzz(func(t *testing.T, b []byte, bits uint8) {
		ip, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		// Without allowance, an accepted address is none of what the
		// standard library itself classifies as local or special.
		if CheckIP(ip, nil) == nil {
			switch {
			case ip.IsLoopback(), ip.IsPrivate(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(),
				ip.IsInterfaceLocalMulticast(), ip.IsMulticast(), ip.IsUnspecified(), ip.Is4In6():
				t.Fatalf("CheckIP(%s) allowed a local or special address", ip)
			case ip.Is6() && !netip.MustParsePrefix("2000::/3").Contains(ip):
				t.Fatalf("CheckIP(%s) allowed IPv6 outside global unicast", ip)
			}
		}
		// With an allowance around the address, metadata, multicast and
		// embedded forms stay denied.
		p, err := ip.Prefix(int(bits) % (ip.BitLen() + 1))
		if err != nil {
			t.Fatal(err)
		}
		if CheckIP(ip, []netip.Prefix{p}) == nil {
			for _, m := range metadata {
				if ip == m {
					t.Fatalf("CheckIP(%s, %s) allowed a metadata address", ip, p)
				}
			}
			if ip.IsMulticast() || ip.IsUnspecified() || ip.Is4In6() {
				t.Fatalf("CheckIP(%s, %s) allowed an address no allowance opens", ip, p)
			}
		}
	})
}
