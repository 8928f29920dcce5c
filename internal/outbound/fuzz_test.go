package outbound

import (
	"errors"
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
		// Metadata endpoints, in each form.
		"http://169.254.169.254/latest/meta-data/", "http://169.254.170.2/v2/credentials", "http://169.254.170.23/",
		"http://100.100.100.200/", "http://168.63.129.16:32526/", "http://[fd00:ec2::254]/", "http://[fd00:ec2::23]/",
		"http://[fd20:ce::254]/", "http://[::ffff:169.254.169.254]/", "http://[::ffff:a9fe:a9fe]/",
		"http://[::ffff:0:a9fe:a9fe]/", "http://[::169.254.169.254]/", "http://[64:ff9b::a9fe:a9fe]/",
		"http://[64:ff9b:1:a9fe:a9:fe00::]/", "http://[2002:a83f:8110::1]/", "http://[2001:0:4136:e378:8000:63bf:5601:5601]/",
		"http://[FD00:EC2:0:0:0:0:0:254]/", "http://[fd00:ec2::254%25eth0]/", "http://0xa9fea9fe/", "http://169.254.169.254./",
	} {
		f.Add(s)
	}
	allow := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	f.Fuzz(func(t *testing.T, raw string) {
		red := Redact(raw)
		if strings.ContainsAny(red, "?#") {
			t.Fatalf("Redact(%q) = %q keeps a query or fragment", raw, red)
		}
		for _, cfg := range []Config{{}, {AllowPrivate: allow}, {AllowPrivate: everyMetadataRange}} {
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
				if isMetadata(ip) || inEmbeddedRange(ip) {
					t.Fatalf("CheckURL(%q) allowed %s, a metadata endpoint or an IPv4-embedding form", raw, ip)
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
		"169.254.170.2", "169.254.170.23", "168.63.129.16", "fd00:ec2::23", "fd20:ce::254",
		"::ffff:0:a9fe:a9fe", "::a9fe:a9fe", "64:ff9b:1:a9fe:a9:fe00::", "2001:0:4136:e378:8000:63bf:5601:5601",
		"::ffff:168.63.129.16", "2002:a83f:8110::",
	} {
		a := netip.MustParseAddr(s)
		f.Add(a.AsSlice(), uint8(a.BitLen()), []byte{})
		f.Add(a.AsSlice(), uint8(0), []byte{})
	}
	f.Add(netip.MustParseAddr("::ffff:169.254.169.254").AsSlice(), uint8(96), netip.MustParseAddr("::").AsSlice())
	f.Add(netip.MustParseAddr("2002:a9fe:a9fe::1").AsSlice(), uint8(3), netip.MustParseAddr("2000::").AsSlice())
	f.Fuzz(func(t *testing.T, b []byte, bits uint8, other []byte) {
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
		// And with any other prefix at all (other's address with the same
		// bits), including ones ParseCIDRs refuses, like ::/0.
		allow := []netip.Prefix{p}
		if o, ok := netip.AddrFromSlice(other); ok {
			if q, err := o.Prefix(int(bits) % (o.BitLen() + 1)); err == nil {
				allow = append(allow, q)
			}
		}
		if CheckIP(ip, allow) == nil {
			if isMetadata(ip) {
				t.Fatalf("CheckIP(%s, %v) allowed a metadata address", ip, allow)
			}
			if inEmbeddedRange(ip) {
				t.Fatalf("CheckIP(%s, %v) allowed an IPv4-embedding form", ip, allow)
			}
			if ip.IsMulticast() || ip.IsUnspecified() || ip.Is4In6() {
				t.Fatalf("CheckIP(%s, %v) allowed an address no allowance opens", ip, allow)
			}
		}
	})
}

// FuzzMetadataForms hides each metadata endpoint in each IPv6 form that
// embeds IPv4, with the bits the form leaves free set by the fuzzer, and
// wants it refused under any allow-list, also through CheckURL and as the
// dialler judges a resolved address (checkDialled); the canonical
// encodings must also name the endpoint.
func FuzzMetadataForms(f *testing.F) {
	for i := range metadataV4 {
		for j := range embeddings {
			f.Add(uint8(i), uint8(j), []byte{}, uint8(0), []byte{})
		}
	}
	f.Add(uint8(0), uint8(9), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint8(0), netip.MustParseAddr("::").AsSlice())
	f.Add(uint8(4), uint8(8), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, uint8(16), netip.MustParseAddr("2002::").AsSlice())
	f.Add(uint8(1), uint8(6), []byte{0xa9, 0xfe}, uint8(48), netip.MustParseAddr("64:ff9b:1::").AsSlice())
	f.Add(uint8(2), uint8(0), []byte{}, uint8(8), netip.MustParseAddr("169.254.0.0").AsSlice())
	f.Fuzz(func(t *testing.T, mi, ei uint8, filler []byte, bits uint8, allowAddr []byte) {
		m := metadataV4[int(mi)%len(metadataV4)]
		e := embeddings[int(ei)%len(embeddings)]
		ip := e.embed(m.addr)
		b := ip.As16()
		for i, pos := range e.free {
			if i < len(filler) {
				b[pos] = filler[i]
			}
		}
		ip = netip.AddrFrom16(b)
		canonical := len(filler) == 0

		allow := []netip.Prefix{netip.PrefixFrom(ip, 128), netip.PrefixFrom(m.addr, 32)}
		if a, ok := netip.AddrFromSlice(allowAddr); ok {
			if p, err := a.Prefix(int(bits) % (a.BitLen() + 1)); err == nil {
				allow = append(allow, p)
			}
		}
		for _, addr := range []netip.Addr{ip, m.addr} {
			err := CheckIP(addr, allow)
			var be *BlockedError
			if !errors.As(err, &be) {
				t.Fatalf("CheckIP(%s, %v) = %v, want blocked", addr, allow, err)
			}
			if !strings.Contains(be.Reason, "no allow-list opens it") && (canonical || addr == m.addr) {
				t.Fatalf("CheckIP(%s) reason %q does not name a metadata endpoint", addr, be.Reason)
			}
			if canonical && !strings.Contains(be.Reason, m.what) {
				t.Fatalf("CheckIP(%s) reason %q does not name %q", addr, be.Reason, m.what)
			}
		}
		// Resolved to this address, as the dialler judges it.
		c := &Client{allow: allow}
		if err := c.checkDialled(ip); !errors.Is(err, ErrBlocked) {
			t.Fatalf("checkDialled(%s, %v) = %v, want blocked", ip, allow, err)
		}
		// As a URL literal.
		cfg := Config{AllowPrivate: allow}
		if u, err := cfg.CheckURL("http://[" + ip.String() + "]:8080/"); err == nil {
			t.Fatalf("CheckURL allowed %s", u)
		}
	})
}

// FuzzParseCIDRs: an entry ParseCIDRs accepts overlaps no IPv4-embedding
// form, except :: and ::1, and no list of such entries opens a metadata
// endpoint in any form.
func FuzzParseCIDRs(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/8", "127.0.0.1", "::1", "::", "::/127", "fd00::/8", "169.254.0.0/16", "168.63.129.16",
		"::ffff:0:0/96", "::ffff:10.0.0.0/104", "::ffff:0:0:0/96", "::/96", "::2/127", "64:ff9b::/96",
		"64:ff9b:1::/48", "2002::/16", "2001::/32", "2000::/3", "::/0", "::/8", "0.0.0.0/0", "fd00:ec2::254/128",
		" 100.64.0.0/10 ", "2001:1::/32", "fe80::1%eth0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseCIDRs([]string{s})
		if err != nil {
			return
		}
		if _, err := NewClient(Config{AllowPrivate: ps}); err != nil {
			t.Fatalf("ParseCIDRs(%q) = %v, which NewClient refuses: %v", s, ps, err)
		}
		for _, p := range ps {
			for _, r := range embeddedRanges {
				if p.Overlaps(r) && !(p.Bits() >= 127 && netip.MustParsePrefix("::/127").Contains(p.Addr())) {
					t.Fatalf("ParseCIDRs(%q) accepted %v, which overlaps %v", s, p, r)
				}
			}
		}
		for _, m := range metadataV4 {
			for _, e := range embeddings {
				for _, ip := range []netip.Addr{m.addr, e.embed(m.addr)} {
					if CheckIP(ip, ps) == nil {
						t.Fatalf("ParseCIDRs(%q) = %v opens %s", s, ps, ip)
					}
				}
			}
		}
		for _, m := range metadataV6 {
			if CheckIP(m.addr, ps) == nil {
				t.Fatalf("ParseCIDRs(%q) = %v opens %s", s, ps, m.addr)
			}
		}
	})
}
