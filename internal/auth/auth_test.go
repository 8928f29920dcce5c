package auth

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const (
	tokA  = "aaaaaaaaaaaaaaaaaaaa-1"
	tokA2 = "aaaaaaaaaaaaaaaaaaaa-2"
	tokB  = "bbbbbbbbbbbbbbbbbbbb-1"
)

func TestCheck(t *testing.T) {
	a, err := New([]Config{{Name: "tcr-prod", Source: "tcr", Tokens: []string{tokA, tokA2}}, {Name: "hub", Tokens: []string{tokB}}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		header string
		query  string
		want   string
		err    error
	}{
		{"bearer", "Bearer " + tokA, "", "tcr-prod", nil},
		{"bearer lowercase scheme", "bearer " + tokA, "", "tcr-prod", nil},
		{"rotation token", "Bearer " + tokA2, "", "tcr-prod", nil},
		{"query token", "", "token=" + tokB, "hub", nil},
		{"header wins over query", "Bearer " + tokA, "token=" + tokB, "tcr-prod", nil},
		{"no token", "", "", "", ErrNoToken},
		{"basic scheme ignored", "Basic " + tokA, "", "", ErrNoToken},
		{"wrong token", "Bearer " + strings.Repeat("x", 22), "", "", ErrBadToken},
		{"prefix of a token", "Bearer " + tokA[:10], "", "", ErrBadToken},
		{"token plus suffix", "Bearer " + tokA + "x", "", "", ErrBadToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Authorization", tt.header)
			}
			q, _ := url.ParseQuery(tt.query)
			r, err := a.Check(Credentials{Header: h, Query: q, Loopback: true})
			if !errors.Is(err, tt.err) || r.Name != tt.want {
				t.Fatalf("got %q, %v; want %q, %v", r.Name, err, tt.want, tt.err)
			}
			if tt.want == "tcr-prod" && r.Source != "tcr" {
				t.Errorf("pinned source lost: %q", r.Source)
			}
		})
	}
}

func TestOpenMode(t *testing.T) {
	a, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Open() {
		t.Fatal("no registries should mean open (loopback-only) mode")
	}
	if _, err := a.Check(Credentials{Header: http.Header{}, Loopback: true}); err != nil {
		t.Errorf("loopback refused: %v", err)
	}
	if _, err := a.Check(Credentials{Header: http.Header{}, Loopback: false}); !errors.Is(err, ErrLoopbackOnly) {
		t.Errorf("remote client accepted: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  []Config
		want string
	}{
		{"short token", []Config{{Name: "a", Tokens: []string{"short"}}}, "shorter than 16"},
		{"three tokens", []Config{{Name: "a", Tokens: []string{tokA, tokA2, tokB}}}, "give 1 or 2"},
		{"no token", []Config{{Name: "a"}}, "give 1 or 2"},
		{"bad name", []Config{{Name: "A B", Tokens: []string{tokA}}}, "name must be"},
		{"duplicate", []Config{{Name: "a", Tokens: []string{tokA}}, {Name: "a", Tokens: []string{tokB}}}, "twice"},
		{"whitespace", []Config{{Name: "a", Tokens: []string{"aaaaaaaa bbbbbbbbbb"}}}, "whitespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			for _, c := range tt.cfg {
				for _, tok := range c.Tokens {
					if len(tok) >= 8 && strings.Contains(err.Error(), tok) {
						t.Errorf("error leaks a token: %v", err)
					}
				}
			}
		})
	}
}

func TestParseSpec(t *testing.T) {
	cfgs, err := ParseSpec("tcr-prod:tcr=" + tokA + "," + tokA2 + "; hub=" + tokB + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 2 || cfgs[0].Name != "tcr-prod" || cfgs[0].Source != "tcr" || len(cfgs[0].Tokens) != 2 || cfgs[1].Name != "hub" || cfgs[1].Tokens[0] != tokB {
		t.Fatalf("got %+v", cfgs)
	}
	if _, err := ParseSpec("just-a-token-without-name"); err == nil || strings.Contains(err.Error(), "just-a-token") {
		t.Fatalf("want an error that does not echo the entry, got %v", err)
	}
	if cfgs, err := ParseSpec(""); err != nil || len(cfgs) != 0 {
		t.Fatalf("empty spec: %v %v", cfgs, err)
	}
}
