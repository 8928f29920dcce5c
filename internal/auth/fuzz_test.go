package auth

import (
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzCheck feeds arbitrary signature header values and bodies to Check
// and compares the outcome with an independent computation of what each
// scheme accepts: it must never panic, accept exactly the right values,
// and refuse everything else with a typed error that holds no secret.
func FuzzCheck(f *testing.F) {
	body := fixture(f, "nexus/component-created-docker-real-fluxrecv.json")
	f.Add(uint8(0), ghSig(ghS1, body), body)
	f.Add(uint8(0), ghSig(ghS2, body), body)
	f.Add(uint8(0), "sha256=", body)
	f.Add(uint8(0), "sha1="+nxSig(ghS1, body), body)
	f.Add(uint8(0), " sha256="+strings.ToUpper(ghSig(ghS1, body)[7:])+" ", body)
	f.Add(uint8(1), nxSig(nxS1, body), body)
	f.Add(uint8(1), nxSig(nxS1, body)[:39]+"g", body)
	f.Add(uint8(1), "", []byte{})
	f.Add(uint8(2), jfS1, body)
	f.Add(uint8(2), jfSig(jfS2, body), body)
	f.Add(uint8(2), "\t", []byte("{}"))
	a, err := New([]Config{
		{Name: "ghcr", Scheme: SchemeGitHub, Tokens: []string{ghS1, ghS2}},
		{Name: "nexus", Scheme: SchemeNexus, Tokens: []string{nxS1, nxS2}},
		{Name: "jfrog", Scheme: SchemeJFrog, Tokens: []string{jfS1, jfS2}},
	})
	if err != nil {
		f.Fatal(err)
	}
	headers := []string{HeaderGitHub, HeaderNexus, HeaderJFrog}
	f.Fuzz(func(t *testing.T, kind uint8, value string, body []byte) {
		k := int(kind) % len(headers)
		h := http.Header{}
		h.Set(headers[k], value)
		r, err := a.Check(Credentials{Header: h, Body: body})

		v := strings.TrimSpace(value)
		want := ""
		switch k {
		case 0:
			for _, s := range []string{ghS1, ghS2} {
				if strings.HasPrefix(v, "sha256=") && strings.EqualFold(v[7:], ghSig(s, body)[7:]) {
					want = "ghcr"
				}
			}
		case 1:
			for _, s := range []string{nxS1, nxS2} {
				if strings.EqualFold(v, nxSig(s, body)) {
					want = "nexus"
				}
			}
		case 2:
			for _, s := range []string{jfS1, jfS2} {
				if v != "" && (v == s || strings.EqualFold(v, jfSig(s, body))) {
					want = "jfrog"
				}
			}
		}
		if r.Name != want || (err == nil) != (want != "") {
			t.Fatalf("%s: %q: got %q, %v; want %q", headers[k], value, r.Name, err, want)
		}
		if err == nil {
			return
		}
		if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformedSignature) {
			t.Fatalf("untyped error %v", err)
		}
		for _, s := range allSecrets {
			if strings.Contains(err.Error(), s) {
				t.Fatalf("error holds a secret: %v", err)
			}
		}
		// A value of the right shape must get past parsing.
		if k < 2 {
			_, perr := parseSignature([]Scheme{SchemeGitHub, SchemeNexus}[k], value)
			size := []int{sha256.Size, sha1.Size}[k]
			hexPart := strings.TrimPrefix(v, []string{"sha256=", ""}[k])
			shaped := len(hexPart) == 2*size && strings.Trim(strings.ToLower(hexPart), "0123456789abcdef") == "" &&
				(k == 1 || strings.HasPrefix(v, "sha256="))
			if shaped != (perr == nil) {
				t.Fatalf("%s: %q: shaped %v, parse error %v", headers[k], value, shaped, perr)
			}
			if !shaped && !errors.Is(err, ErrMalformedSignature) {
				t.Fatalf("%s: %q: a malformed value gave %v", headers[k], value, err)
			}
		}
	})
}
