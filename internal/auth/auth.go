// Package auth authenticates the registries that send notifications.
//
// Each configured registry has a name, a scheme and one or two secrets (two
// while rotating), and may pin the format its bodies are parsed as. The
// scheme says how the registry proves a request is its own:
//
//   - token (the default): a bearer token in the Authorization header, or
//     the `token` query parameter for registries that can only vary the URL
//     (Aliyun ACR, Docker Hub, Azure Event Grid, Google Pub/Sub push).
//   - github (GHCR webhooks): X-Hub-Signature-256: sha256=<hex HMAC-SHA256
//     of the body>.
//   - jfrog (JFrog Artifactory): X-JFrog-Event-Auth holding the secret as
//     is, or the hex HMAC-SHA256 of the body when "Use secret for payload
//     signing" is on.
//   - nexus (Sonatype Nexus 3): X-Nexus-Webhook-Signature: hex HMAC-SHA1 of
//     the body.
//
// Check looks at every credential a request presents and compares each
// against every secret of every registry of the matching scheme, in
// constant time (tokens are hashed with SHA-256 first, so neither their
// content nor their length leaks; MACs are compared with hmac.Equal), so
// the time taken does not say which registry or secret matched. Signatures
// are checked on the raw body, before anything parses it.
//
// Errors never hold a secret or a value the request presented: they name
// the header and say what was wrong with it.
package auth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// MinTokenLength is the shortest token or secret accepted in configuration.
const MinTokenLength = 16

// MaxTokens is how many tokens or secrets one registry may have (current and next).
const MaxTokens = 2

// MaxAgeOff turns the event-age check off for one registry (Config.MaxAge).
const MaxAgeOff time.Duration = -1

// The range of an explicit max age. Below a minute, ordinary delivery delays
// and clock differences would refuse real notifications; 24 h is the longest
// dedupe window the configuration accepts.
const (
	MinMaxAge = time.Minute
	MaxMaxAge = 24 * time.Hour
)

// Scheme is how a registry authenticates its requests.
type Scheme string

// The schemes.
const (
	SchemeToken  Scheme = "token"
	SchemeGitHub Scheme = "github"
	SchemeJFrog  Scheme = "jfrog"
	SchemeNexus  Scheme = "nexus"
)

// schemes are the known schemes in the order Check prefers a match: the
// ones that cover the body first.
var schemes = []Scheme{SchemeGitHub, SchemeNexus, SchemeJFrog, SchemeToken}

// Signed reports whether requests of this scheme carry a signature of the
// body (or, for jfrog, may): those are the registries whose event times are
// checked against a max age, so a captured request cannot be replayed later.
func (s Scheme) Signed() bool { return s == SchemeGitHub || s == SchemeJFrog || s == SchemeNexus }

func (s Scheme) known() bool {
	for _, k := range schemes {
		if s == k {
			return true
		}
	}
	return false
}

// The headers the signature schemes use.
const (
	HeaderGitHub     = "X-Hub-Signature-256"
	HeaderGitHubSHA1 = "X-Hub-Signature" // legacy; never accepted alone (see offers)
	HeaderJFrog      = "X-JFrog-Event-Auth"
	HeaderNexus      = "X-Nexus-Webhook-Signature"
)

// Registry is one configured sender. Its String, GoString and LogValue
// name it without its secrets, so printing or logging one is safe.
type Registry struct {
	Name string
	// Source pins the body format ("" detects it).
	Source string
	// Scheme is how the registry authenticates ("" only for the anonymous
	// loopback registry of Open mode).
	Scheme Scheme
	// MaxAge bounds how far a signed registry's event time may be from now:
	// 0 means the receiver's dedupe window, MaxAgeOff no check. Always 0
	// for the token scheme.
	MaxAge time.Duration

	hashed [][sha256.Size]byte // SHA-256 of each secret, for comparing presented tokens
	keys   [][]byte            // each secret as an HMAC key (signature schemes only)
}

// String names the registry without its secrets.
func (r Registry) String() string {
	if r.Scheme == "" {
		return r.Name
	}
	return r.Name + " (" + string(r.Scheme) + ")"
}

// GoString keeps %#v from printing the secrets.
func (r Registry) GoString() string {
	return fmt.Sprintf("auth.Registry{Name: %q, Source: %q, Scheme: %q}", r.Name, r.Source, r.Scheme)
}

// LogValue keeps slog from printing the secrets.
func (r Registry) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", r.Name), slog.String("source", r.Source), slog.String("scheme", string(r.Scheme)))
}

// Errors of Check; every error Check returns wraps one of them (errors.Is).
var (
	// ErrNoCredentials: the request carries nothing to authenticate with.
	ErrNoCredentials = errors.New("no credentials")
	// ErrBadToken: the token matches no registry of the token scheme.
	ErrBadToken = errors.New("the token matches no configured registry")
	// ErrBadSignature: a signature header is well formed but matches no
	// secret of its scheme (a wrong secret, or a body changed after
	// signing), or no registry uses that scheme.
	ErrBadSignature = errors.New("the signature matches no configured registry")
	// ErrMalformedSignature: a signature header is not in its scheme's form.
	ErrMalformedSignature = errors.New("malformed signature header")
	// ErrLoopbackOnly: no registry is configured and the client is not on this machine.
	ErrLoopbackOnly = errors.New("no registry is configured: only clients on this machine are accepted")
)

// Error is one reason Check refused a request. Kind is one of the Err*
// values above; Header names the header or query parameter concerned.
// Reason says what was wrong in words that never include a secret or the
// presented value.
type Error struct {
	Kind   error
	Header string
	Reason string
}

func (e *Error) Error() string {
	if e.Header == "" {
		return e.Reason
	}
	return e.Header + ": " + e.Reason
}

// Unwrap lets errors.Is find the Kind.
func (e *Error) Unwrap() error { return e.Kind }

// Authenticator checks requests against the configured registries.
type Authenticator struct {
	registries []Registry
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Config is one registry as written in configuration.
type Config struct {
	Name   string
	Source string
	// Scheme is how the registry authenticates; "" means SchemeToken.
	Scheme Scheme
	// Tokens are the bearer tokens (token scheme) or the shared secrets
	// (github, jfrog, nexus): one, or two while rotating.
	Tokens []string
	// MaxAge overrides the event-age bound of a signature scheme (0: the
	// receiver's dedupe window; MaxAgeOff: no check). See Registry.MaxAge.
	MaxAge time.Duration
}

// New builds an Authenticator, reporting every configuration problem at
// once. With no registries it is Open: it accepts only loopback clients, and
// callers should say so loudly.
func New(cfgs []Config) (*Authenticator, error) {
	a := &Authenticator{}
	seen := map[string]bool{}
	owner := map[string]string{} // scheme + secret hash -> registry name
	var errs []error
	for _, c := range cfgs {
		if c.Scheme == "" {
			c.Scheme = SchemeToken
		}
		word := "secret"
		if c.Scheme == SchemeToken {
			word = "token"
		}
		switch {
		case !nameRE.MatchString(c.Name):
			errs = append(errs, fmt.Errorf("registry %q: name must be lowercase letters, digits, '.', '_' or '-'", c.Name))
			continue
		case seen[c.Name]:
			errs = append(errs, fmt.Errorf("registry %q is configured twice", c.Name))
			continue
		case !c.Scheme.known():
			errs = append(errs, fmt.Errorf("registry %q: unknown scheme %q: use token, github, jfrog or nexus", c.Name, c.Scheme))
			continue
		case len(c.Tokens) == 0 || len(c.Tokens) > MaxTokens:
			errs = append(errs, fmt.Errorf("registry %q: give 1 or %d %ss, not %d", c.Name, MaxTokens, word, len(c.Tokens)))
			continue
		}
		seen[c.Name] = true
		if err := checkMaxAge(c); err != nil {
			errs = append(errs, err)
		}
		r := Registry{Name: c.Name, Source: c.Source, Scheme: c.Scheme, MaxAge: c.MaxAge}
		for i, t := range c.Tokens {
			if len(t) < MinTokenLength {
				errs = append(errs, fmt.Errorf("registry %q: %s %d is shorter than %d characters", c.Name, word, i+1, MinTokenLength))
				continue
			}
			if strings.ContainsFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
				errs = append(errs, fmt.Errorf("registry %q: %s %d contains whitespace or a control character", c.Name, word, i+1))
				continue
			}
			sum := sha256.Sum256([]byte(t))
			// Two registries of one scheme with one secret could not be
			// told apart (and would share a pinned source and max age by
			// accident): refuse it rather than pick one.
			key := string(c.Scheme) + "\x00" + string(sum[:])
			if other, dup := owner[key]; dup && other != c.Name {
				errs = append(errs, fmt.Errorf("registry %q: %s %d is also a %s of registry %q; give each registry its own", c.Name, word, i+1, word, other))
				continue
			}
			owner[key] = c.Name
			r.hashed = append(r.hashed, sum)
			if c.Scheme.Signed() {
				r.keys = append(r.keys, []byte(t))
			}
		}
		a.registries = append(a.registries, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

func checkMaxAge(c Config) error {
	switch {
	case c.MaxAge == 0:
		return nil
	case !c.Scheme.Signed():
		return fmt.Errorf("registry %q: max-age applies only to the github, jfrog and nexus schemes: a token does not cover the body, so its event time proves nothing", c.Name)
	case c.MaxAge == MaxAgeOff:
		return nil
	case c.MaxAge < MinMaxAge || c.MaxAge > MaxMaxAge:
		return fmt.Errorf("registry %q: max-age %v is out of range: give %v to %v, or off", c.Name, c.MaxAge, MinMaxAge, MaxMaxAge)
	}
	return nil
}

// Open reports whether no registry is configured (loopback-only mode).
func (a *Authenticator) Open() bool { return len(a.registries) == 0 }

// Registries returns the configured registries (their secrets stay hidden).
func (a *Authenticator) Registries() []Registry { return a.registries }

// Credentials is what a request offers.
type Credentials struct {
	Header http.Header
	Query  url.Values
	// Body is the raw request body, as the signature schemes signed it.
	Body []byte
	// Loopback is true when the client address is on this machine.
	Loopback bool
}

// Check returns the registry the request authenticates as. In Open mode a
// loopback client is accepted as the anonymous registry "local".
//
// Every credential the request presents is checked (a GHCR hook may carry
// X-Hub-Signature-256 and a ?token= in its URL); when several match, the
// first scheme in the order github, nexus, jfrog, token wins, then the first
// configured registry. When none matches, the error joins the reason of
// each presented credential.
func (a *Authenticator) Check(c Credentials) (Registry, error) {
	if a.Open() {
		if c.Loopback {
			return Registry{Name: "local"}, nil
		}
		return Registry{}, ErrLoopbackOnly
	}
	offered, errs := offers(c.Header, c.Query)
	found := -1
	// Verify every offer fully before choosing, so the time taken does not
	// depend on which offer, registry or secret matched.
	for _, o := range offered {
		i, err := a.verify(o, c.Body)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if i >= 0 && found < 0 {
			found = i
		}
	}
	if found >= 0 {
		return a.registries[found], nil
	}
	if len(errs) == 0 {
		return Registry{}, &Error{Kind: ErrNoCredentials, Reason: "no credentials: " + a.expected()}
	}
	return Registry{}, errors.Join(errs...)
}

// expected says which credentials the configured registries accept.
func (a *Authenticator) expected() string {
	var forms []string
	for _, s := range schemes {
		if !a.uses(s) {
			continue
		}
		switch s {
		case SchemeToken:
			forms = append(forms, `"Authorization: Bearer <token>" or ?token=<token>`)
		case SchemeGitHub:
			forms = append(forms, HeaderGitHub+" (GitHub)")
		case SchemeJFrog:
			forms = append(forms, HeaderJFrog+" (JFrog)")
		case SchemeNexus:
			forms = append(forms, HeaderNexus+" (Nexus)")
		}
	}
	return "send " + strings.Join(forms, ", or ")
}

func (a *Authenticator) uses(s Scheme) bool {
	for _, r := range a.registries {
		if r.Scheme == s {
			return true
		}
	}
	return false
}
