package outbound

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string // normalised URL; "" means denied
		why  string // substring of the BlockedError reason when denied
	}{
		// Schemes.
		{"http default port", "http://example.com/hook", "http://example.com/hook", ""},
		{"https default port", "https://example.com/hook", "https://example.com/hook", ""},
		{"uppercase scheme", "HTTPS://example.com/", "https://example.com/", ""},
		{"ftp scheme", "ftp://example.com/", "", "scheme"},
		{"file scheme", "file:///etc/passwd", "", "scheme"},
		{"gopher scheme", "gopher://example.com:70/", "", "scheme"},
		{"javascript opaque", "javascript:alert(1)", "", "opaque"},
		{"mailto opaque", "mailto:ops@example.com", "", "opaque"},
		{"http opaque", "http:example.com/hook", "", "opaque"},
		{"no scheme", "example.com/hook", "", "scheme"},
		{"scheme-relative", "//example.com/hook", "", "scheme"},
		{"empty string", "", "", "scheme"},

		// Ports.
		{"http 80 explicit", "http://example.com:80/", "http://example.com:80/", ""},
		{"http 21", "http://example.com:21/", "http://example.com:21/", ""},
		{"http 70", "http://example.com:70/", "http://example.com:70/", ""},
		{"http 210", "http://example.com:210/", "http://example.com:210/", ""},
		{"http 280", "http://example.com:280/", "http://example.com:280/", ""},
		{"http 443", "http://example.com:443/", "http://example.com:443/", ""},
		{"http 488", "http://example.com:488/", "http://example.com:488/", ""},
		{"http 591", "http://example.com:591/", "http://example.com:591/", ""},
		{"http 777", "http://example.com:777/", "http://example.com:777/", ""},
		{"http 1024", "http://example.com:1024/", "", "port 1024"},
		{"http 1025", "http://example.com:1025/", "http://example.com:1025/", ""},
		{"http 8080", "http://example.com:8080/", "http://example.com:8080/", ""},
		{"http 65535", "http://example.com:65535/", "http://example.com:65535/", ""},
		{"http 65536", "http://example.com:65536/", "", "out of range"},
		{"http huge port", "http://example.com:99999999999999999999/", "", "out of range"},
		{"http 0", "http://example.com:0/", "", "port 0"},
		{"http 22", "http://example.com:22/", "", "port 22"},
		{"http 25", "http://example.com:25/", "", "port 25"},
		{"http 6379 is high so allowed", "http://example.com:6379/", "http://example.com:6379/", ""},
		{"http leading zeros", "http://example.com:0080/", "http://example.com:80/", ""},
		{"empty port means default", "http://example.com:/", "http://example.com/", ""},
		{"non-numeric port", "http://example.com:http/", "", "invalid port"},
		{"https 443 explicit", "https://example.com:443/", "https://example.com:443/", ""},
		{"https 8443", "https://example.com:8443/", "", "only 443"},
		{"https 80", "https://example.com:80/", "", "only 443"},
		{"https 1025", "https://example.com:1025/", "", "only 443"},

		// Userinfo.
		{"user and password", "http://user:pass@example.com/", "", "userinfo"},
		{"user only", "http://user@example.com/", "", "userinfo"},
		{"empty userinfo", "http://@example.com/", "", "userinfo"},
		{"userinfo hiding host", "http://example.com@127.0.0.1/", "", "userinfo"},

		// Host names.
		{"empty host", "http:///hook", "", "empty host"},
		{"port but no host", "http://:8080/", "", "empty host"},
		{"uppercase host", "http://EXAMPLE.COM/Path", "http://example.com/Path", ""},
		{"trailing dot", "http://example.com./", "http://example.com/", ""},
		{"two trailing dots", "http://example.com../", "", "empty label"},
		{"only a dot", "http://./", "", "empty label"},
		{"empty label", "http://a..example.com/", "", "invalid host name"},
		{"IDNA unicode", "http://bücher.example/", "http://xn--bcher-kva.example/", ""},
		{"IDNA uppercase unicode", "http://BÜCHER.example/", "http://xn--bcher-kva.example/", ""},
		{"IDNA punycode kept", "http://xn--bcher-kva.example/", "http://xn--bcher-kva.example/", ""},
		{"IDNA fullwidth to IP", "http://１２７.０.０.１/", "", "loopback"},
		{"IDNA fullwidth dot", "http://example。com/", "http://example.com/", ""},
		{"percent-encoded host", "http://exa%6Dple.com/", "", "malformed"},
		{"percent-encoded unicode host", "http://b%C3%BCcher.example/", "http://xn--bcher-kva.example/", ""},
		{"underscore", "http://a_b.example.com/", "", "invalid host name"},
		{"space in host", "http://exa mple.com/", "", "malformed"},
		{"label too long", "http://" + strings.Repeat("a", 64) + ".com/", "", "invalid host name"},
		{"localhost", "http://localhost/", "", "localhost"},
		{"LOCALHOST", "http://LOCALHOST:8080/", "", "localhost"},
		{"localhost trailing dot", "http://localhost./", "", "localhost"},
		{"sub.localhost", "http://app.localhost/", "", "localhost"},
		{"localhost.example is a name", "http://localhost.example.com/", "http://localhost.example.com/", ""},
		{"single label", "http://intranet/", "http://intranet/", ""},

		// Numeric hosts a C resolver or a browser would read as IPv4.
		{"decimal integer", "http://2130706433/", "", "numeric host"},
		{"hex integer", "http://0x7f000001/", "", "numeric host"},
		{"hex dotted", "http://0x7f.1/", "", "numeric host"},
		{"octal dotted", "http://0177.0.0.1/", "", "numeric host"},
		{"short form", "http://127.1/", "", "numeric host"},
		{"leading zero octet", "http://127.000.000.001/", "", "numeric host"},
		{"public decimal integer", "http://134744072/", "", "numeric host"},
		{"name ending in number", "http://example.123/", "", "numeric host"},
		{"0x prefixed name is a name", "http://0xzz.example/", "http://0xzz.example/", ""},

		// IPv4 literals.
		{"public IPv4", "http://8.8.8.8/", "http://8.8.8.8/", ""},
		{"public IPv4 high port", "http://1.1.1.1:8080/x", "http://1.1.1.1:8080/x", ""},
		{"loopback IPv4", "http://127.0.0.1/", "", "loopback"},
		{"loopback IPv4 high", "http://127.255.0.9:9000/", "", "loopback"},
		{"private 10", "http://10.0.0.1/", "", "private"},
		{"private 192.168", "http://192.168.1.1/", "", "private"},
		{"metadata", "http://169.254.169.254/latest/meta-data/", "", "metadata"},
		{"aliyun metadata", "http://100.100.100.200/latest/meta-data/", "", "metadata"},
		{"zero address", "http://0.0.0.0/", "", "this network"},
		{"IPv4 trailing dot", "http://127.0.0.1./", "", "loopback"},
		{"public IPv4 trailing dot", "http://8.8.8.8./", "http://8.8.8.8/", ""},

		// IPv6 literals.
		{"public IPv6", "http://[2606:4700:4700::1111]/", "http://[2606:4700:4700::1111]/", ""},
		{"public IPv6 with port", "http://[2606:4700:4700::1111]:8080/", "http://[2606:4700:4700::1111]:8080/", ""},
		{"IPv6 uppercase", "http://[2606:4700:4700::ABCD]/", "http://[2606:4700:4700::abcd]/", ""},
		{"IPv6 loopback", "http://[::1]/", "", "loopback"},
		{"IPv6 loopback long", "http://[0:0:0:0:0:0:0:1]:8080/", "", "loopback"},
		{"IPv6 unspecified", "http://[::]/", "", "unspecified"},
		{"IPv4-mapped loopback", "http://[::ffff:127.0.0.1]/", "", "IPv4-mapped"},
		{"IPv4-mapped metadata", "http://[::ffff:a9fe:a9fe]/", "", "IPv4-mapped"},
		{"IPv4-mapped public", "http://[::ffff:8.8.8.8]/", "", "IPv4-mapped"},
		{"NAT64", "http://[64:ff9b::7f00:1]/", "", "NAT64"},
		{"link-local with zone", "http://[fe80::1%25eth0]/", "", "zone"},
		{"public with zone", "http://[2606:4700:4700::1111%25eth0]/", "", "zone"},
		{"aws metadata v6", "http://[fd00:ec2::254]/", "", "metadata"},
		{"unbracketed IPv6", "http://::1/", "", "malformed"},
		{"bracketed IPv4", "http://[127.0.0.1]/", "", "invalid IP literal"},
		{"unclosed bracket", "http://[::1/", "", "malformed"},

		// Fragments are dropped, queries kept.
		{"fragment dropped", "https://example.com/hook#frag", "https://example.com/hook", ""},
		{"query kept", "https://example.com/hook?token=abc", "https://example.com/hook?token=abc", ""},
		{"escaped path kept", "https://example.com/a%2Fb", "https://example.com/a%2Fb", ""},

		// Malformed.
		{"control character", "http://example.com/\x00", "", "malformed"},
		{"bad escape in host", "http://%zz/", "", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := CheckURL(tt.raw)
			if tt.want != "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want %s", tt.raw, err, tt.want)
				}
				if got := u.String(); got != tt.want {
					t.Fatalf("CheckURL(%q) = %s, want %s", tt.raw, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckURL(%q) = %s, want denied (%s)", tt.raw, u, tt.why)
			}
			var be *BlockedError
			if !errors.As(err, &be) || !errors.Is(err, ErrBlocked) {
				t.Fatalf("CheckURL(%q) error %T %v is not a *BlockedError", tt.raw, err, err)
			}
			if !strings.Contains(be.Reason, tt.why) {
				t.Errorf("CheckURL(%q) reason %q, want it to mention %q", tt.raw, be.Reason, tt.why)
			}
		})
	}
}

func TestConfigCheckURLAllowPrivate(t *testing.T) {
	cfg := Config{AllowPrivate: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("fd00::/8"),
	}}
	tests := []struct {
		name  string
		raw   string
		allow bool
		why   string
	}{
		{"allowed loopback high port", "http://127.0.0.1:8080/", true, ""},
		{"other loopback not allowed", "http://127.0.0.2:8080/", false, "loopback"},
		{"allowed private", "http://10.1.2.3/", true, ""},
		{"allowance keeps port rules", "http://10.1.2.3:22/", false, "port 22"},
		{"allowance keeps https rule", "https://10.1.2.3:8443/", false, "only 443"},
		{"allowance keeps userinfo rule", "http://u:p@10.1.2.3/", false, "userinfo"},
		{"allowance keeps localhost rule", "http://localhost:8080/", false, "localhost"},
		{"metadata stays denied", "http://169.254.169.254/", false, "metadata"},
		{"other link-local allowed", "http://169.254.1.1/", true, ""},
		{"aws v6 metadata stays denied", "http://[fd00:ec2::254]/", false, "metadata"},
		{"allowed ULA", "http://[fd00::5]:8080/", true, ""},
		{"mapped form of allowed stays denied", "http://[::ffff:10.1.2.3]/", false, "IPv4-mapped"},
		{"private outside allowance", "http://192.168.0.1/", false, "private"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cfg.CheckURL(tt.raw)
			if tt.allow {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want allowed", tt.raw, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("CheckURL(%q) = %v, want denied mentioning %q", tt.raw, err, tt.why)
			}
		})
	}
	// The package-level CheckURL allows no private range.
	if _, err := CheckURL("http://127.0.0.1:8080/"); err == nil {
		t.Fatal("package CheckURL allowed loopback")
	}
}

func TestCheckURLErrorsAreRedacted(t *testing.T) {
	for _, raw := range []string{
		"http://user:s3cr3t@example.com/?token=s3cr3t",
		"ftp://example.com/?token=s3cr3t",
		"https://example.com:8443/p?token=s3cr3t#s3cr3t",
		"http://127.0.0.1/p?token=s3cr3t",
		"http://%zz/?token=s3cr3t",
		"http://example.com/\x00?token=s3cr3t",
		"http://user:s3cr3t@[::1/",
		"mailto:s3cr3t@example.com",
	} {
		_, err := CheckURL(raw)
		if err == nil {
			t.Fatalf("CheckURL(%q) allowed", raw)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("CheckURL(%q) error leaks the secret: %v", raw, err)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"plain", "https://example.com/hook", "https://example.com/hook"},
		{"query and fragment", "https://example.com/hook?token=x#y", "https://example.com/hook"},
		{"userinfo", "https://user:pw@example.com:443/a/b", "https://example.com:443/a/b"},
		{"ipv6", "http://[::1]:8080/x?q", "http://[::1]:8080/x"},
		{"escaped path", "http://example.com/a%2Fb?q", "http://example.com/a%2Fb"},
		{"no path", "http://example.com?q=1", "http://example.com"},
		{"opaque", "mailto:user@example.com", "mailto:[opaque]"},
		{"unparseable", "http://user:pw@%zz/p?token=x", "http://%zz/p"},
		{"unparseable control", "http://exa\nmple.com/p?x", "http://exa_mple.com/p"},
		{"relative", "/path?q", "/path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.raw); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestParseCIDRs(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr string
	}{
		{"nil", nil, []string{}, ""},
		{"cidr", []string{"10.0.0.0/8"}, []string{"10.0.0.0/8"}, ""},
		{"bare v4", []string{"127.0.0.1"}, []string{"127.0.0.1/32"}, ""},
		{"bare v6", []string{"fd00::1"}, []string{"fd00::1/128"}, ""},
		{"spaces and masking", []string{" 10.1.2.3/8 ", "fd12:3456::1/48"}, []string{"10.0.0.0/8", "fd12:3456::/48"}, ""},
		{"empty entry", []string{"10.0.0.0/8", " "}, nil, "entry 2 is empty"},
		{"garbage", []string{"ten"}, nil, "not an IP address or CIDR"},
		{"bad cidr", []string{"10.0.0.0/33"}, nil, "not a CIDR"},
		{"zone", []string{"fe80::1%eth0"}, nil, "zone"},
		{"everything v4", []string{"0.0.0.0/0"}, nil, "every address"},
		{"everything v6", []string{"::/0"}, nil, "overlaps the IPv4-mapped range (::ffff:0:0/96)"},
		{"IPv4-mapped", []string{"::ffff:0:0/96"}, nil, "overlaps the IPv4-mapped range (::ffff:0:0/96), which no allow-list opens; list the IPv4 range (e.g. 10.0.0.0/8) instead"},
		{"inside IPv4-mapped", []string{"::ffff:10.0.0.0/104"}, nil, "list the IPv4 range 10.0.0.0/8 instead"},
		{"mapped address", []string{"::ffff:10.1.2.3"}, nil, "list the IPv4 range 10.1.2.3/32 instead"},
		{"SIIT", []string{"::ffff:0:0:0/96"}, nil, "overlaps the IPv4-translated (SIIT) range (::ffff:0:0:0/96)"},
		{"inside SIIT", []string{"::ffff:0:c0a8:0/112"}, nil, "list the IPv4 range 192.168.0.0/16 instead"},
		{"IPv4-compatible", []string{"::/96"}, nil, "overlaps the IPv4-compatible range (::/96)"},
		{"NAT64", []string{"64:ff9b::/96"}, nil, "overlaps the NAT64 range (64:ff9b::/96)"},
		{"inside NAT64", []string{"64:ff9b::a00:0/104"}, nil, "list the IPv4 range 10.0.0.0/8 instead"},
		{"local-use NAT64", []string{"64:ff9b:1::/48"}, nil, "overlaps the local-use NAT64 range (64:ff9b:1::/48)"},
		{"inside local-use NAT64", []string{"64:ff9b:1:ff::/64"}, nil, "list the IPv4 range (e.g. 10.0.0.0/8) instead"},
		{"6to4", []string{"2002::/16"}, nil, "overlaps the 6to4 range (2002::/16)"},
		{"inside 6to4", []string{"2002:a00::/24"}, nil, "list the IPv4 range 10.0.0.0/8 instead"},
		{"Teredo", []string{"2001::/32"}, nil, "overlaps the Teredo range (2001::/32)"},
		{"inside Teredo", []string{"2001:0:4136:e378::/64"}, nil, "overlaps the Teredo range (2001::/32)"},
		{"broader ::/8", []string{"::/8"}, nil, "overlaps the IPv4-mapped range"},
		{"broader ::/1", []string{"::/1"}, nil, "overlaps the IPv4-mapped range"},
		{"broader 2000::/3", []string{"2000::/3"}, nil, "overlaps the 6to4 range"},
		{"broader 2001::/16", []string{"2001::/16"}, nil, "overlaps the Teredo range"},
		{"second entry", []string{"10.0.0.0/8", "2002::/16"}, nil, "entry 2"},
		{"next to Teredo", []string{"2001:1::/32"}, []string{"2001:1::/32"}, ""},
		{"ULA", []string{"fd00::/8"}, []string{"fd00::/8"}, ""},
		{"v6 loopback", []string{"::1"}, []string{"::1/128"}, ""},
		{"v6 loopback and unspecified", []string{"::/127"}, []string{"::/127"}, ""},
		{"IPv4-compatible next to loopback", []string{"::2/127"}, nil, "overlaps the IPv4-compatible range"},
		{"contains a metadata address", []string{"169.254.0.0/16"}, []string{"169.254.0.0/16"}, ""},
		{"a metadata address", []string{"168.63.129.16"}, []string{"168.63.129.16/32"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCIDRs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCIDRs(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCIDRs(%q): %v", tt.in, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseCIDRs(%q) = %v, want %v", tt.in, got, tt.want)
			}
			for i := range got {
				if got[i].String() != tt.want[i] {
					t.Errorf("ParseCIDRs(%q)[%d] = %v, want %v", tt.in, i, got[i], tt.want[i])
				}
			}
		})
	}
}
