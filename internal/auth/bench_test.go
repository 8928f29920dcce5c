package auth

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
)

// benchAuthenticator has five registries of mixed schemes, one secret
// each: two token registries, and one each of github, jfrog and nexus.
// (A registry rotating its secret has two; Check then computes one more
// HMAC per request of that scheme.)
func benchAuthenticator(b *testing.B) *Authenticator {
	b.Helper()
	a, err := New([]Config{
		{Name: "tcr-prod", Source: "tcr", Tokens: []string{tokA}},
		{Name: "hub", Tokens: []string{tokB}},
		{Name: "ghcr", Scheme: SchemeGitHub, Tokens: []string{ghS1}},
		{Name: "jfrog", Scheme: SchemeJFrog, Tokens: []string{jfS1}},
		{Name: "nexus", Scheme: SchemeNexus, Tokens: []string{nxS1}},
	})
	if err != nil {
		b.Fatal(err)
	}
	return a
}

// benchBody is n bytes of a real GHCR body repeated: an HMAC's cost depends
// on the length only, and Check never parses the body.
func benchBody(b *testing.B, n int) []byte {
	b.Helper()
	unit := fixture(b, "ghcr/package-published-docker-octokit.json")
	return bytes.Repeat(unit, n/len(unit)+1)[:n]
}

// BenchmarkCheck measures Check for a token (bearer) and for each
// signature scheme on a 1 KiB body and on a 1 MiB body, the receiver's
// MaxBody. Throughput (b.SetBytes) is of the body the scheme covers; the
// token scheme does not read the body, so it reports none. jfrog-token is
// the classic JFrog webhook sending its secret as is: Check computes the
// HMAC of the body anyway, so that the time does not say which form
// matched.
func BenchmarkCheck(b *testing.B) {
	a := benchAuthenticator(b)
	sizes := []struct {
		name string
		n    int
	}{{"1KiB", 1 << 10}, {"1MiB", 1 << 20}}
	b.Run("scheme=token", func(b *testing.B) {
		c := Credentials{Header: header("Authorization", "Bearer "+tokB), Body: benchBody(b, 1<<10)}
		benchCheck(b, a, c, "hub", 0)
	})
	for _, sc := range []struct {
		name, want string
		header     func(body []byte) http.Header
	}{
		{"github", "ghcr", func(body []byte) http.Header {
			return header(HeaderGitHub, ghSig(ghS1, body), "X-GitHub-Event", "package")
		}},
		{"nexus", "nexus", func(body []byte) http.Header {
			return header(HeaderNexus, nxSig(nxS1, body), "X-Nexus-Webhook-Id", "rm:repository:component")
		}},
		{"jfrog-hmac", "jfrog", func(body []byte) http.Header {
			return header(HeaderJFrog, jfSig(jfS1, body))
		}},
		{"jfrog-token", "jfrog", func([]byte) http.Header {
			return header(HeaderJFrog, jfS1)
		}},
	} {
		for _, size := range sizes {
			b.Run(fmt.Sprintf("scheme=%s/body=%s", sc.name, size.name), func(b *testing.B) {
				body := benchBody(b, size.n)
				c := Credentials{Header: sc.header(body), Body: body}
				benchCheck(b, a, c, sc.want, size.n)
			})
		}
	}
}

// header builds a header from name, value pairs (Set canonicalises
// HeaderJFrog's spelling, as net/http does on receipt).
func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func benchCheck(b *testing.B, a *Authenticator, c Credentials, want string, bytes int) {
	b.Helper()
	if r, err := a.Check(c); err != nil || r.Name != want {
		b.Fatalf("Check = %v, %v; want %s", r, err, want)
	}
	b.ReportAllocs()
	if bytes > 0 {
		b.SetBytes(int64(bytes))
	}
	for b.Loop() {
		if _, err := a.Check(c); err != nil {
			b.Fatal(err)
		}
	}
}
