package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

const (
	tokA  = "aaaaaaaaaaaaaaaaaaaa-1"
	tokA2 = "aaaaaaaaaaaaaaaaaaaa-2"
	tokB  = "bbbbbbbbbbbbbbbbbbbb-1"
	ghS1  = "github-secret-0123456789-one"
	ghS2  = "github-secret-0123456789-two"
	jfS1  = "jfrog-secret-0123456789-one"
	jfS2  = "jfrog-secret-0123456789-two"
	nxS1  = "nexus-secret-0123456789-one"
	nxS2  = "nexus-secret-0123456789-two"
)

var allSecrets = []string{tokA, tokA2, tokB, ghS1, ghS2, jfS1, jfS2, nxS1, nxS2}

func fixture(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile("../registry/testdata/registry-payloads/" + path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func macHex(h func() hash.Hash, key string, body []byte) string {
	m := hmac.New(h, []byte(key))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func ghSig(key string, body []byte) string { return "sha256=" + macHex(sha256.New, key, body) }
func nxSig(key string, body []byte) string { return macHex(sha1.New, key, body) }
func jfSig(key string, body []byte) string { return macHex(sha256.New, key, body) }

// altered changes one byte of a body, as a forger would.
func altered(body []byte) []byte {
	b := bytes.Clone(body)
	i := bytes.IndexByte(b, ':')
	b[i+1] ^= 0x01
	return b
}

func allSchemes(t *testing.T) *Authenticator {
	t.Helper()
	a, err := New([]Config{
		{Name: "tcr-prod", Source: "tcr", Tokens: []string{tokA, tokA2}},
		{Name: "hub", Tokens: []string{tokB}},
		{Name: "ghcr", Scheme: SchemeGitHub, Tokens: []string{ghS1, ghS2}},
		{Name: "jfrog", Scheme: SchemeJFrog, Tokens: []string{jfS1, jfS2}},
		{Name: "nexus", Scheme: SchemeNexus, Tokens: []string{nxS1, nxS2}, MaxAge: 30 * time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCheck(t *testing.T) {
	a := allSchemes(t)
	ghcr := fixture(t, "ghcr/package-published-docker-octokit.json")
	jfrog := fixture(t, "jfrog-artifactory/docker-pushed.json")
	nexus := fixture(t, "nexus/component-created-docker-real-fluxrecv.json")
	hexOf := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	tests := []struct {
		name   string
		header []string // name, value pairs, added in order
		query  string
		body   []byte
		want   string // the registry; "" for a refusal
		err    error
		reason string // part of the error message
	}{
		// token
		{name: "bearer", header: []string{"Authorization", "Bearer " + tokA}, want: "tcr-prod"},
		{name: "bearer lowercase scheme", header: []string{"Authorization", "bearer " + tokA}, want: "tcr-prod"},
		{name: "token rotation", header: []string{"Authorization", "Bearer " + tokA2}, want: "tcr-prod"},
		{name: "query token", query: "token=" + tokB, want: "hub"},
		{name: "header wins over query", header: []string{"Authorization", "Bearer " + tokA}, query: "token=" + tokB, want: "tcr-prod"},
		{name: "unknown bearer (an OIDC ID token) and a query token", header: []string{"Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}, query: "token=" + tokB, want: "hub"},
		{name: "no credentials", err: ErrNoCredentials, reason: "Bearer <token>"},
		{name: "basic scheme ignored", header: []string{"Authorization", "Basic " + tokA}, err: ErrNoCredentials},
		{name: "wrong token", header: []string{"Authorization", "Bearer " + strings.Repeat("x", 22)}, err: ErrBadToken},
		{name: "prefix of a token", header: []string{"Authorization", "Bearer " + tokA[:10]}, err: ErrBadToken},
		{name: "token plus suffix", header: []string{"Authorization", "Bearer " + tokA + "x"}, err: ErrBadToken},
		{name: "a signing secret is no token", header: []string{"Authorization", "Bearer " + ghS1}, err: ErrBadToken},

		// github
		{name: "github", header: []string{HeaderGitHub, ghSig(ghS1, ghcr)}, body: ghcr, want: "ghcr"},
		{name: "github rotation secret", header: []string{HeaderGitHub, ghSig(ghS2, ghcr)}, body: ghcr, want: "ghcr"},
		{name: "github upper-case hex", header: []string{HeaderGitHub, "sha256=" + strings.ToUpper(ghSig(ghS1, ghcr)[7:])}, body: ghcr, want: "ghcr"},
		{name: "github wrong secret", header: []string{HeaderGitHub, ghSig("some-other-secret-0123", ghcr)}, body: ghcr, err: ErrBadSignature, reason: "wrong secret"},
		{name: "github body altered after signing", header: []string{HeaderGitHub, ghSig(ghS1, ghcr)}, body: altered(ghcr), err: ErrBadSignature, reason: "body was changed"},
		{name: "github signed with the nexus secret", header: []string{HeaderGitHub, ghSig(nxS1, ghcr)}, body: ghcr, err: ErrBadSignature},
		{name: "github prefix missing", header: []string{HeaderGitHub, ghSig(ghS1, ghcr)[7:]}, body: ghcr, err: ErrMalformedSignature, reason: "prefix is missing"},
		{name: "github sha1 in the sha256 header", header: []string{HeaderGitHub, "sha1=" + nxSig(ghS1, ghcr)}, body: ghcr, err: ErrMalformedSignature, reason: "HMAC-SHA1"},
		{name: "github not hex", header: []string{HeaderGitHub, "sha256=" + hexOf('z', 64)}, body: ghcr, err: ErrMalformedSignature, reason: "not hexadecimal"},
		{name: "github wrong length", header: []string{HeaderGitHub, ghSig(ghS1, ghcr)[:70]}, body: ghcr, err: ErrMalformedSignature, reason: "63 characters, want 64"},
		{name: "github empty", header: []string{HeaderGitHub, ""}, body: ghcr, err: ErrMalformedSignature},
		{name: "github header sent twice", header: []string{HeaderGitHub, ghSig(ghS1, ghcr), HeaderGitHub, ghSig(ghS1, ghcr)}, body: ghcr, err: ErrMalformedSignature, reason: "sent 2 times"},
		{name: "github legacy sha1 alone", header: []string{HeaderGitHubSHA1, "sha1=" + nxSig(ghS1, ghcr)}, body: ghcr, err: ErrNoCredentials, reason: "legacy"},
		{name: "github legacy sha1 next to sha256", header: []string{HeaderGitHubSHA1, "sha1=" + nxSig(ghS1, ghcr), HeaderGitHub, ghSig(ghS1, ghcr)}, body: ghcr, want: "ghcr"},
		{name: "github bad signature but a good token", header: []string{HeaderGitHub, ghSig("some-other-secret-0123", ghcr), "Authorization", "Bearer " + tokA}, body: ghcr, want: "tcr-prod"},
		{name: "github good signature and a good token: the signature wins", header: []string{HeaderGitHub, ghSig(ghS1, ghcr)}, query: "token=" + tokB, body: ghcr, want: "ghcr"},
		{name: "github bad signature and a bad token: both reasons", header: []string{HeaderGitHub, ghSig("some-other-secret-0123", ghcr)}, query: "token=" + strings.Repeat("y", 20), body: ghcr, err: ErrBadToken, reason: "token query parameter"},

		// jfrog
		{name: "jfrog classic token", header: []string{HeaderJFrog, jfS1}, body: jfrog, want: "jfrog"},
		{name: "jfrog classic rotation", header: []string{HeaderJFrog, jfS2}, body: jfrog, want: "jfrog"},
		{name: "jfrog payload signing", header: []string{HeaderJFrog, jfSig(jfS1, jfrog)}, body: jfrog, want: "jfrog"},
		{name: "jfrog payload signing rotation", header: []string{HeaderJFrog, jfSig(jfS2, jfrog)}, body: jfrog, want: "jfrog"},
		{name: "jfrog wrong secret", header: []string{HeaderJFrog, "some-other-secret-0123"}, body: jfrog, err: ErrBadSignature},
		{name: "jfrog signed with a wrong secret", header: []string{HeaderJFrog, jfSig("some-other-secret-0123", jfrog)}, body: jfrog, err: ErrBadSignature},
		{name: "jfrog body altered after signing", header: []string{HeaderJFrog, jfSig(jfS1, jfrog)}, body: altered(jfrog), err: ErrBadSignature, reason: "body was changed"},
		{name: "jfrog the nexus secret as is", header: []string{HeaderJFrog, nxS1}, body: jfrog, err: ErrBadSignature},
		{name: "jfrog github-style value", header: []string{HeaderJFrog, "sha256=" + jfSig(jfS1, jfrog)}, body: jfrog, err: ErrBadSignature},
		{name: "jfrog empty", header: []string{HeaderJFrog, " "}, body: jfrog, err: ErrMalformedSignature, reason: "empty"},

		// nexus
		{name: "nexus", header: []string{HeaderNexus, nxSig(nxS1, nexus)}, body: nexus, want: "nexus"},
		{name: "nexus rotation secret", header: []string{HeaderNexus, nxSig(nxS2, nexus)}, body: nexus, want: "nexus"},
		{name: "nexus wrong secret", header: []string{HeaderNexus, nxSig("some-other-secret-0123", nexus)}, body: nexus, err: ErrBadSignature, reason: "nexus scheme"},
		{name: "nexus body altered after signing", header: []string{HeaderNexus, nxSig(nxS1, nexus)}, body: altered(nexus), err: ErrBadSignature},
		{name: "nexus signed with the github secret", header: []string{HeaderNexus, nxSig(ghS1, nexus)}, body: nexus, err: ErrBadSignature},
		{name: "nexus SHA-256 length", header: []string{HeaderNexus, jfSig(nxS1, nexus)}, body: nexus, err: ErrMalformedSignature, reason: "64 characters, want 40"},
		{name: "nexus with a prefix", header: []string{HeaderNexus, "sha1=" + nxSig(nxS1, nexus)}, body: nexus, err: ErrMalformedSignature, reason: "45 characters"},
		{name: "nexus not hex", header: []string{HeaderNexus, hexOf('g', 40)}, body: nexus, err: ErrMalformedSignature, reason: "not hexadecimal"},
		{name: "nexus signature in the github header", header: []string{HeaderGitHub, nxSig(nxS1, nexus)}, body: nexus, err: ErrMalformedSignature},
		{name: "github signature in the nexus header", header: []string{HeaderNexus, ghSig(ghS1, nexus)}, body: nexus, err: ErrMalformedSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i+1 < len(tt.header); i += 2 {
				h.Add(tt.header[i], tt.header[i+1])
			}
			q, _ := url.ParseQuery(tt.query)
			r, err := a.Check(Credentials{Header: h, Query: q, Body: tt.body})
			if r.Name != tt.want || (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Fatalf("got %q, %v; want %q, %v", r.Name, err, tt.want, tt.err)
			}
			if err == nil {
				if tt.want == "tcr-prod" && r.Source != "tcr" {
					t.Errorf("pinned source lost: %q", r.Source)
				}
				return
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.reason) {
				t.Errorf("error %q does not say %q", msg, tt.reason)
			}
			presented := append([]string{}, allSecrets...)
			for i := 1; i < len(tt.header); i += 2 {
				presented = append(presented, strings.TrimPrefix(tt.header[i], "Bearer "))
			}
			for _, v := range q {
				presented = append(presented, v...)
			}
			for _, v := range presented {
				if len(v) >= 8 && strings.Contains(msg, v) {
					t.Errorf("error %q holds a secret or a presented value", msg)
				}
			}
		})
	}
}

func TestCheckUnusedScheme(t *testing.T) {
	body := []byte(`{"a":1}`)
	tokens, err := New([]Config{{Name: "hub", Tokens: []string{tokB}}})
	if err != nil {
		t.Fatal(err)
	}
	github, err := New([]Config{{Name: "ghcr", Scheme: SchemeGitHub, Tokens: []string{ghS1}}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		a      *Authenticator
		header []string
		err    error
		reason string
	}{
		{"github signature, no github registry", tokens, []string{HeaderGitHub, ghSig(ghS1, body)}, ErrBadSignature, "no registry uses the github scheme"},
		{"nexus signature, no nexus registry", github, []string{HeaderNexus, nxSig(ghS1, body)}, ErrBadSignature, "no registry uses the nexus scheme"},
		{"jfrog header, no jfrog registry", github, []string{HeaderJFrog, ghS1}, ErrBadSignature, "no registry uses the jfrog scheme"},
		{"token, no token registry", github, []string{"Authorization", "Bearer " + tokB}, ErrBadToken, "no registry uses the token scheme"},
		{"nothing: the hint names the configured form", github, nil, ErrNoCredentials, "send X-Hub-Signature-256 (GitHub)"},
		{"nothing: token form only", tokens, nil, ErrNoCredentials, `send "Authorization: Bearer <token>" or ?token=<token>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i+1 < len(tt.header); i += 2 {
				h.Add(tt.header[i], tt.header[i+1])
			}
			_, err := tt.a.Check(Credentials{Header: h, Body: body})
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("got %v, want %v saying %q", err, tt.err, tt.reason)
			}
		})
	}
}

func TestCheckReturnsTheRegistrySettings(t *testing.T) {
	a := allSchemes(t)
	body := fixture(t, "nexus/asset-created-doc.json")
	r, err := a.Check(Credentials{Header: http.Header{HeaderNexus: {nxSig(nxS1, body)}}, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "nexus" || r.Scheme != SchemeNexus || !r.Scheme.Signed() || r.MaxAge != 30*time.Minute {
		t.Errorf("got %#v, max age %v", r, r.MaxAge)
	}
	r, err = a.Check(Credentials{Header: http.Header{"Authorization": {"Bearer " + tokB}}})
	if err != nil || r.Scheme != SchemeToken || r.Scheme.Signed() || r.MaxAge != 0 {
		t.Errorf("token registry: %v %v", r, err)
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
		{"short token", []Config{{Name: "a", Tokens: []string{"short"}}}, "token 1 is shorter than 16"},
		{"short secret", []Config{{Name: "a", Scheme: SchemeGitHub, Tokens: []string{ghS1, "short"}}}, "secret 2 is shorter than 16"},
		{"three tokens", []Config{{Name: "a", Tokens: []string{tokA, tokA2, tokB}}}, "give 1 or 2 tokens"},
		{"no secret", []Config{{Name: "a", Scheme: SchemeNexus}}, "give 1 or 2 secrets, not 0"},
		{"bad name", []Config{{Name: "A B", Tokens: []string{tokA}}}, "name must be"},
		{"duplicate", []Config{{Name: "a", Tokens: []string{tokA}}, {Name: "a", Tokens: []string{tokB}}}, "twice"},
		{"whitespace", []Config{{Name: "a", Tokens: []string{"aaaaaaaa bbbbbbbbbb"}}}, "whitespace"},
		{"control character", []Config{{Name: "a", Scheme: SchemeJFrog, Tokens: []string{"aaaaaaaa\x00bbbbbbbbbb"}}}, "control character"},
		{"unknown scheme", []Config{{Name: "a", Scheme: "gitlab", Tokens: []string{tokA}}}, `unknown scheme "gitlab"`},
		{"one secret for two registries", []Config{{Name: "a", Scheme: SchemeGitHub, Tokens: []string{ghS1}}, {Name: "b", Scheme: SchemeGitHub, Tokens: []string{ghS2, ghS1}}}, `secret 2 is also a secret of registry "a"`},
		{"max age on a token registry", []Config{{Name: "a", Tokens: []string{tokA}, MaxAge: time.Hour}}, "max-age applies only to"},
		{"max age too short", []Config{{Name: "a", Scheme: SchemeNexus, Tokens: []string{nxS1}, MaxAge: time.Second}}, "max-age 1s is out of range"},
		{"max age too long", []Config{{Name: "a", Scheme: SchemeNexus, Tokens: []string{nxS1}, MaxAge: 48 * time.Hour}}, "out of range"},
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
						t.Errorf("error leaks a secret: %v", err)
					}
				}
			}
		})
	}
	// Every problem at once.
	_, err := New([]Config{{Name: "A"}, {Name: "b", Tokens: []string{"short"}}, {Name: "c", Scheme: SchemeGitHub, Tokens: []string{ghS1}, MaxAge: time.Second}})
	for _, want := range []string{`"A"`, `"b"`, `"c"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name registry %s: %v", want, err)
		}
	}
	// The same token on the same scheme of one registry (say, mid-rotation) is allowed.
	if _, err := New([]Config{{Name: "a", Tokens: []string{tokA, tokA}}}); err != nil {
		t.Errorf("repeated token in one registry: %v", err)
	}
	// The same secret on different schemes cannot be confused.
	if _, err := New([]Config{{Name: "a", Tokens: []string{tokA}}, {Name: "b", Scheme: SchemeJFrog, Tokens: []string{tokA}}}); err != nil {
		t.Errorf("one secret on two schemes: %v", err)
	}
}

func TestRegistryPrintingHidesSecrets(t *testing.T) {
	a := allSchemes(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	for _, r := range a.Registries() {
		logger.Info("registry", "registry", r)
		out := fmt.Sprintf("%v %+v %#v %s", r, r, r, r) + logs.String()
		for _, s := range allSecrets {
			if strings.Contains(out, s) {
				t.Fatalf("printing %s shows a secret: %s", r.Name, out)
			}
		}
		if !strings.Contains(out, r.Name) {
			t.Errorf("printing does not name the registry: %s", out)
		}
	}
	// Secrets as bytes or hashes would print as lists of numbers.
	out := fmt.Sprintf("%v %+v", a.Registries(), a.Registries())
	sum := sha256.Sum256([]byte(ghS1))
	for _, raw := range []string{fmt.Sprint([]byte(ghS1)), fmt.Sprint(sum)} {
		if strings.Contains(out, strings.Trim(raw, "[]")) {
			t.Errorf("secret bytes printed: %s", out)
		}
	}
}
