package trigger

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestApplyLabelsStoredTriggers: a stored trigger Apply keeps is validated
// under the Rules given; its problems say it is stored, and where, so that
// a valid file is not blamed for it.
func TestApplyLabelsStoredTriggers(t *testing.T) {
	loopback := named("local-sink")
	loopback.URL = "http://127.0.0.1:9000/hook"
	allow := Rules{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	tests := []struct {
		name  string
		opts  ApplyOptions
		want  []string // in the error, in order
		valid bool
	}{
		{"without the allow-list serve used", ApplyOptions{DryRun: true, StoredIn: "./regtrigger.db"},
			[]string{"stored trigger local-sink (in ./regtrigger.db, not in the file): url:", "loopback", "allow it with --allow-private 127.0.0.1/32"}, false},
		{"the store unnamed", ApplyOptions{DryRun: true}, []string{"stored trigger local-sink (in the store, not in the file)"}, false},
		{"with the same allow-list", ApplyOptions{DryRun: true, Rules: allow, StoredIn: "./regtrigger.db"}, nil, true},
		{"pruned, so not validated", ApplyOptions{DryRun: true, Prune: true, StoredIn: "./regtrigger.db"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Apply(context.Background(), newMemStore(loopback), []Trigger{named("from-file")}, tt.opts)
			if tt.valid {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			rest := err.Error()
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q (or not in order)", err, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestAllowHint(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"loopback", "http://127.0.0.1:9000/", "; allow it with --allow-private 127.0.0.1/32 (serve's setting"},
		{"private", "http://10.1.2.3:8080/", "; allow it with --allow-private 10.1.2.3/32"},
		{"IPv6 loopback", "http://[::1]:8080/", "; allow it with --allow-private ::1/128"},
		{"metadata: no allow-list opens it", "http://169.254.169.254/", ""},
		{"public address: nothing to allow", "http://203.0.114.1/", ""},
		{"a name: the address is checked at delivery", "http://localhost:9000/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := urlAllowHint(tt.url)
			if tt.want == "" && got != "" || !strings.HasPrefix(got, tt.want) {
				t.Errorf("urlAllowHint(%s) = %q, want prefix %q", tt.url, got, tt.want)
			}
		})
	}
}
