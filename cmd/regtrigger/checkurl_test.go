package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestCheckURL runs check-url as a user does and checks its exit status
// and what it says: 0 allowed (and the test send succeeded), 1 refused or
// the test send failed, 2 a usage error. Local targets are reached only
// through --allow-private, as a user reaches them; no URL here makes the
// CLI resolve a name or connect beyond this machine.
func TestCheckURL(t *testing.T) {
	var hits atomic.Int32
	status := atomic.Int32{}
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	// An allow-list containing every metadata endpoint: none is opened.
	everyRange := []string{"--allow-private", "169.254.0.0/16", "--allow-private", "100.64.0.0/10", "--allow-private", "168.63.0.0/16", "--allow-private", "fd00::/8"}
	local := []string{"--allow-private", "127.0.0.1/32"}
	with := func(allow []string, args ...string) []string {
		return append(append([]string{"check-url"}, allow...), args...)
	}

	type tc struct {
		name     string
		args     []string
		status   int32 // the test server's answer; 0 for 200
		code     int
		want     []string // in stdout+stderr
		wantHits int32    // requests the test server must get
	}
	tests := []tc{
		// Static rules.
		{name: "https on 8443", args: with(nil, "https://example.com:8443/"), code: 1, want: []string{"only 443"}},
		{name: "public literal", args: with(nil, "http://8.8.8.8/"), code: 0, want: []string{"address  8.8.8.8", "verdict  allowed"}},
		{name: "loopback without allow-list", args: with(nil, "http://127.0.0.1:9/"), code: 1, want: []string{"loopback", "allow it with --allow-private 127.0.0.1/32"}},
		{name: "loopback allowed", args: with(local, "http://127.0.0.1:1025/"), code: 0, want: []string{"verdict  allowed"}},
		{name: "other loopback not allowed", args: with(local, "http://127.0.0.2:1025/"), code: 1, want: []string{"address 127.0.0.2 is loopback"}},
		{name: "mapped loopback literal", args: with(local, "http://[::ffff:127.0.0.1]:"+port+"/"), code: 1, want: []string{"IPv4-mapped"}},
		{name: "link-local in the allow-list", args: with(everyRange, "http://169.254.1.1:8080/"), code: 0, want: []string{"verdict  allowed"}},

		// Test sends.
		{name: "send allowed", args: with(local, "--send", srv.URL+"/hook"), code: 0, want: []string{"verdict  allowed", "answer   HTTP 200", "result   success"}, wantHits: 1},
		{name: "send with a secret", args: with(local, "--send", "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", srv.URL+"/hook"), code: 0, want: []string{"result   success"}, wantHits: 1},
		{name: "send answered 500", args: with(local, "--send", srv.URL+"/hook"), status: 500, code: 1, want: []string{"answer   HTTP 500", "test delivery"}, wantHits: 1},
		{name: "send to a closed port", args: with(local, "--send", "http://"+closed+"/hook"), code: 1, want: []string{"test delivery"}},
		{name: "send without allow-list", args: with(nil, "--send", srv.URL+"/hook"), code: 1, want: []string{"loopback"}},

		// Usage errors.
		{name: "allow-list entry not a CIDR", args: with([]string{"--allow-private", "nonsense"}, "http://127.0.0.1:1025/"), code: 2, want: []string{"allow-private"}},
		{name: "allow-list entry IPv4-mapped", args: with([]string{"--allow-private", "::ffff:0:0/96"}, "http://127.0.0.1:1025/"), code: 2, want: []string{
			`--allow-private: outbound: allow-list entry 1 "::ffff:0:0/96" overlaps the IPv4-mapped range (::ffff:0:0/96), which no allow-list opens; list the IPv4 range (e.g. 10.0.0.0/8) instead`}},
		{name: "allow-list entry ::/0", args: with([]string{"--allow-private", "::/0"}, "http://127.0.0.1:1025/"), code: 2, want: []string{"list the IPv4 range"}},
		{name: "send with an unknown format", args: with(local, "--send", "--format", "bogus", srv.URL+"/hook"), code: 2, want: []string{"format"}},
		{name: "send with too long a timeout", args: with(local, "--send", "--timeout", "1m", srv.URL+"/hook"), code: 2, want: []string{"timeout"}},
		{name: "no URL", args: with(local), code: 2, want: []string{"accepts 1 arg"}},
	}

	// Every metadata endpoint, and the first in every IPv6 form embedding
	// it, with and without an allow-list containing them: refused, naming
	// what it is.
	metadata := []struct{ url, what string }{
		{"http://169.254.169.254/latest/meta-data/", "instance metadata service"},
		{"http://169.254.170.2/v2/credentials/x", "ECS task credentials"},
		{"http://169.254.170.23/v1/credentials", "EKS Pod Identity"},
		{"http://[fd00:ec2::254]/latest/meta-data/", "AWS instance metadata service (IMDS) over IPv6"},
		{"http://[fd00:ec2::23]/v1/credentials", "EKS Pod Identity agent (credentials) over IPv6"},
		{"http://[fd20:ce::254]/computeMetadata/v1/", "Google Cloud metadata server"},
		{"http://100.100.100.200/latest/meta-data/", "Alibaba Cloud"},
		{"http://168.63.129.16/", "Azure WireServer"},
		{"http://168.63.129.16:32526/vmSettings", "Azure WireServer"},
		{"http://[::ffff:169.254.169.254]/", "embeds 169.254.169.254 (IPv4-mapped)"},
		{"http://[::ffff:a9fe:a9fe]/", "embeds 169.254.169.254 (IPv4-mapped)"},
		{"http://[::ffff:0:169.254.169.254]/", "embeds 169.254.169.254 (IPv4-translated (SIIT))"},
		{"http://[::169.254.169.254]/", "embeds 169.254.169.254 (IPv4-compatible)"},
		{"http://[64:ff9b::169.254.169.254]/", "embeds 169.254.169.254 (NAT64)"},
		{"http://[64:ff9b:1::a9fe:a9fe]/", "embeds 169.254.169.254 (local-use NAT64)"},
		{"http://[64:ff9b:1:a9fe:a9:fe00::]/", "embeds 169.254.169.254 (local-use NAT64)"},
		{"http://[2002:a9fe:a9fe::1]/", "embeds 169.254.169.254 (6to4)"},
		{"http://[2001:0:4136:e378:8000:63bf:5601:5601]/", "embeds 169.254.169.254 (Teredo)"},
		{"http://[::ffff:168.63.129.16]:32526/", "embeds 168.63.129.16 (IPv4-mapped)"},
		{"http://[2002:a9fe:aa02::]/", "embeds 169.254.170.2 (6to4)"},
	}
	for _, m := range metadata {
		tests = append(tests,
			tc{name: "metadata " + m.url, args: with(nil, m.url), code: 1, want: []string{"verdict  blocked", m.what, "no allow-list opens it"}},
			tc{name: "metadata " + m.url + " with every range allowed", args: with(everyRange, "--send", m.url), code: 1, want: []string{"verdict  blocked", m.what, "no allow-list opens it"}},
		)
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.status
			if s == 0 {
				s = http.StatusOK
			}
			status.Store(s)
			before := hits.Load()
			code, out, errs := cliRun(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(out+errs, w) {
					t.Errorf("output lacks %q\nstdout: %s\nstderr: %s", w, out, errs)
				}
			}
			if got := hits.Load() - before; got != tt.wantHits {
				t.Errorf("test server got %d requests, want %d", got, tt.wantHits)
			}
		})
	}
}
