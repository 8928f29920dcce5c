// Package auth authenticates the registries that send notifications.
//
// Each registry is configured with a name and one or two tokens (two while
// rotating). A sender presents its token as a bearer token in the
// Authorization header, or as the `token` query parameter for registries
// that can only vary the URL (Aliyun ACR, Docker Hub). A registry entry may
// also pin the format its bodies are parsed as.
//
// Tokens are compared in constant time: both sides are hashed with SHA-256
// first, so neither the content nor the length of a token leaks through
// timing.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// MinTokenLength is the shortest token accepted in configuration.
const MinTokenLength = 16

// MaxTokens is how many tokens one registry may have (current and next).
const MaxTokens = 2

// Registry is one configured sender.
type Registry struct {
	Name string
	// Source pins the body format ("" detects it).
	Source string
	tokens [][sha256.Size]byte
}

// Errors of Check.
var (
	// ErrNoToken: the request carries no token.
	ErrNoToken = errors.New("no token: send it as \"Authorization: Bearer <token>\" or ?token=<token>")
	// ErrBadToken: the token matches no configured registry.
	ErrBadToken = errors.New("the token matches no configured registry")
	// ErrLoopbackOnly: no token is configured and the client is not on this machine.
	ErrLoopbackOnly = errors.New("no registry token is configured: only clients on this machine are accepted")
)

// Authenticator checks requests against the configured registries.
type Authenticator struct {
	registries []Registry
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Config is one registry as written in configuration.
type Config struct {
	Name   string
	Source string
	Tokens []string
}

// New builds an Authenticator. With no registries it is Open: it accepts
// only loopback clients, and callers should say so loudly.
func New(cfgs []Config) (*Authenticator, error) {
	a := &Authenticator{}
	seen := map[string]bool{}
	var errs []error
	for _, c := range cfgs {
		switch {
		case !nameRE.MatchString(c.Name):
			errs = append(errs, fmt.Errorf("registry %q: name must be lowercase letters, digits, '.', '_' or '-'", c.Name))
			continue
		case seen[c.Name]:
			errs = append(errs, fmt.Errorf("registry %q is configured twice", c.Name))
			continue
		case len(c.Tokens) == 0 || len(c.Tokens) > MaxTokens:
			errs = append(errs, fmt.Errorf("registry %q: give 1 or %d tokens, not %d", c.Name, MaxTokens, len(c.Tokens)))
			continue
		}
		seen[c.Name] = true
		r := Registry{Name: c.Name, Source: c.Source}
		for i, t := range c.Tokens {
			if len(t) < MinTokenLength {
				errs = append(errs, fmt.Errorf("registry %q: token %d is shorter than %d characters", c.Name, i+1, MinTokenLength))
				continue
			}
			if strings.ContainsAny(t, " \t\r\n") {
				errs = append(errs, fmt.Errorf("registry %q: token %d contains whitespace", c.Name, i+1))
				continue
			}
			r.tokens = append(r.tokens, sha256.Sum256([]byte(t)))
		}
		a.registries = append(a.registries, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

// Open reports whether no registry is configured (loopback-only mode).
func (a *Authenticator) Open() bool { return len(a.registries) == 0 }

// Registries returns the configured registry names and pinned sources.
func (a *Authenticator) Registries() []Registry { return a.registries }

// Credentials is what a request offers.
type Credentials struct {
	Header http.Header
	Query  url.Values
	// Loopback is true when the client address is on this machine.
	Loopback bool
}

// Check returns the registry the request authenticates as. In Open mode a
// loopback client is accepted as the anonymous registry "local".
func (a *Authenticator) Check(c Credentials) (Registry, error) {
	if a.Open() {
		if c.Loopback {
			return Registry{Name: "local"}, nil
		}
		return Registry{}, ErrLoopbackOnly
	}
	tok := bearer(c.Header.Get("Authorization"))
	if tok == "" {
		tok = c.Query.Get("token")
	}
	if tok == "" {
		return Registry{}, ErrNoToken
	}
	sum := sha256.Sum256([]byte(tok))
	found := -1
	// Compare against every token of every registry, so the time taken does
	// not depend on which one matched.
	for i, r := range a.registries {
		for _, t := range r.tokens {
			if subtle.ConstantTimeCompare(sum[:], t[:]) == 1 {
				found = i
			}
		}
	}
	if found < 0 {
		return Registry{}, ErrBadToken
	}
	return a.registries[found], nil
}

// bearer extracts the token of "Bearer <token>" (scheme case-insensitive).
func bearer(h string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// ParseSpec reads registries from the compact form used by flags and
// environment variables: entries separated by ';' or newlines, each
// `name[:source]=token[,token2]`. Example:
//
//	tcr-prod:tcr=3f9c...e1;hub=8a7b...,c0d1...
func ParseSpec(spec string) ([]Config, error) {
	var out []Config
	for i, entry := range strings.FieldsFunc(spec, func(r rune) bool { return r == ';' || r == '\n' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		head, toks, ok := strings.Cut(entry, "=")
		if !ok {
			// Do not echo the entry: it may be a token.
			return nil, fmt.Errorf("registry entry %d: want name[:source]=token[,token2]", i+1)
		}
		name, source, _ := strings.Cut(strings.TrimSpace(head), ":")
		c := Config{Name: name, Source: source}
		for _, t := range strings.Split(toks, ",") {
			if t = strings.TrimSpace(t); t != "" {
				c.Tokens = append(c.Tokens, t)
			}
		}
		out = append(out, c)
	}
	return out, nil
}
