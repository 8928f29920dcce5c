package trigger

import (
	"errors"
	"fmt"
	"net/netip"
	"net/textproto"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/pattern"
	"github.com/regtrigger/regtrigger/internal/payload"
)

// Problem is one thing wrong with one trigger.
type Problem struct {
	// Trigger is the trigger's name, or "#N" (1-based position) without one.
	Trigger string `json:"trigger"`
	// Field is the field at fault, as spelled in the trigger file.
	Field string `json:"field,omitempty"`
	// Line is the line in the trigger file, when known.
	Line int `json:"line,omitempty"`
	// StoredIn is set for a trigger that is not in the file but in the
	// store (Apply validates the stored triggers it keeps along with the
	// file's): where it is stored, e.g. the store file.
	StoredIn string `json:"stored_in,omitempty"`
	// Message says what is wrong and what is allowed.
	Message string `json:"message"`

	env bool // a ${NAME} reference that could not be expanded
}

func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.StoredIn != "":
		fmt.Fprintf(&b, "stored trigger %s (in %s, not in the file)", p.Trigger, p.StoredIn)
	default:
		fmt.Fprintf(&b, "trigger %s", p.Trigger)
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists every problem found in a trigger or a set.
type ValidationError struct {
	Problems []Problem
}

// ErrInvalid is matched by every *ValidationError.
var ErrInvalid = errors.New("invalid trigger")

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("%d problem(s):\n  %s", len(e.Problems), strings.Join(lines, "\n  "))
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// reservedHeaders cannot be set by a trigger: the transport, the payload
// format or the signature owns them.
var reservedHeaders = map[string]string{
	"Host":                "set from the URL",
	"Content-Length":      "set by the transport",
	"Transfer-Encoding":   "set by the transport",
	"Connection":          "hop-by-hop",
	"Keep-Alive":          "hop-by-hop",
	"Te":                  "hop-by-hop",
	"Trailer":             "hop-by-hop",
	"Upgrade":             "hop-by-hop",
	"Proxy-Connection":    "hop-by-hop",
	"Proxy-Authorization": "hop-by-hop",
	"Content-Type":        "set by the payload format",
	"Content-Encoding":    "set by the transport",
	"Webhook-Id":          "signature header",
	"Webhook-Timestamp":   "signature header",
	"Webhook-Signature":   "signature header",
}

// Rules are the deployment's settings validation depends on.
type Rules struct {
	// AllowPrivate is the outbound allow-list (serve --allow-private): URLs
	// with a literal address in these ranges are accepted.
	AllowPrivate []netip.Prefix
}

// Validate checks one trigger with the default Rules.
func Validate(t *Trigger) []Problem { return Rules{}.Validate(t) }

// Validate checks one trigger on its own and returns its problems (nil when
// valid). It does no I/O: the URL check is the static part (scheme, port,
// userinfo, literal addresses); the dialled address is checked at delivery.
func (r Rules) Validate(t *Trigger) []Problem {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Trigger: t.Name, Field: field, Message: fmt.Sprintf(format, args...)})
	}

	switch {
	case t.Name == "":
		add("name", "is required")
	case len(t.Name) > MaxNameLength:
		add("name", "is %d characters long, at most %d are allowed", len(t.Name), MaxNameLength)
	case !nameRE.MatchString(t.Name):
		add("name", "%q: use lowercase letters, digits, '-', '.' and '_', starting with a letter or digit", t.Name)
	}
	if len(t.Description) > MaxDescription {
		add("description", "is %d characters long, at most %d are allowed", len(t.Description), MaxDescription)
	}

	if len(t.Actions) == 0 {
		add("actions", "choose at least one of %v", event.Actions)
	}
	seen := map[event.Action]bool{}
	for _, a := range t.Actions {
		switch {
		case !a.Valid():
			add("actions", "unknown action %q (known: %v)", a, event.Actions)
		case seen[a]:
			add("actions", "%q is listed twice", a)
		}
		seen[a] = true
	}

	switch {
	case t.Namespace == "":
		add("namespace", "is required (the registry namespace, project or organisation, matched exactly)")
	case strings.ContainsAny(t.Namespace, "*?{}[]/ "):
		add("namespace", "%q: a namespace is matched exactly and cannot contain wildcards, '/' or spaces", t.Namespace)
	}
	if _, err := pattern.Repository(t.Repository); err != nil {
		add("repository", "%v", err)
	}
	if _, err := pattern.Tag(t.Tag); err != nil {
		add("tag", "%v", err)
	}
	if len(t.ExcludeTags) > MaxExcludeTags {
		add("exclude-tags", "%d globs, at most %d", len(t.ExcludeTags), MaxExcludeTags)
	}
	for _, x := range t.ExcludeTags {
		if _, err := pattern.Exclusion(x); err != nil {
			add("exclude-tags", "%v", err)
		}
	}

	switch {
	case t.URL == "":
		add("url", "is required")
	case len(t.URL) > MaxURLLength:
		add("url", "is %d characters long, at most %d are allowed", len(t.URL), MaxURLLength)
	default:
		if _, err := (outbound.Config{AllowPrivate: r.AllowPrivate}).CheckURL(t.URL); err != nil {
			add("url", "%v%s", err, urlAllowHint(t.URL))
		}
	}

	if len(t.Headers) > MaxHeaders {
		add("headers", "%d headers, at most %d are allowed", len(t.Headers), MaxHeaders)
	}
	names := make([]string, 0, len(t.Headers))
	for k := range t.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	canon := map[string]string{}
	for _, k := range names {
		v := t.Headers[k]
		c := textproto.CanonicalMIMEHeaderKey(k)
		switch {
		case !httpguts.ValidHeaderFieldName(k):
			add("headers", "%q is not a valid header name", k)
		case reservedHeaders[c] != "":
			add("headers", "%q cannot be set (%s)", k, reservedHeaders[c])
		case canon[c] != "":
			add("headers", "%q and %q are the same header", canon[c], k)
		case !httpguts.ValidHeaderFieldValue(v):
			// Never echo the value: it may be a credential.
			add("headers", "the value of %q contains CR, LF, NUL or another control character", k)
		case len(v) > MaxHeaderValueLen:
			add("headers", "the value of %q is %d bytes long, at most %d are allowed", k, len(v), MaxHeaderValueLen)
		}
		canon[c] = k
	}

	format, err := payload.ParseFormat(string(t.Format))
	if err != nil {
		add("format", "%v", err)
	}
	switch {
	case format == payload.Template:
		if _, err := payload.ParseTemplate(t.Template, t.ContentType); err != nil {
			add("template", "%v", err)
		}
	case t.Template != "" || t.ContentType != "":
		add("template", "template and content-type are for format template (this trigger's format is %s)", format)
	}
	if format.PushOnly() {
		for _, a := range t.Actions {
			if a != event.PushImage {
				add("actions", "format %s carries pushes only (its receivers read every body as a push): %s cannot be sent", format, a)
			}
		}
	}

	if len(t.Secrets) > MaxSecrets {
		add("secret", "%d secrets, at most %d (the current and the next, during rotation)", len(t.Secrets), MaxSecrets)
	} else if err == nil {
		if err := payload.ValidateSecrets(format, t.Secrets); err != nil {
			add("secret", "%v", err)
		}
	}

	switch d := time.Duration(t.Timeout); {
	case d < 0:
		add("timeout", "must be positive")
	case d > MaxTimeout:
		add("timeout", "%v is longer than the %v maximum", d, MaxTimeout)
	case d > 0 && d < 100*time.Millisecond:
		add("timeout", "%v is too short; use at least 100ms", d)
	}
	if t.AutoDisableAfter != nil && *t.AutoDisableAfter < 0 {
		add("auto-disable-after", "must not be negative (0 = never)")
	}
	switch {
	case t.MaxConcurrency > MaxConcurrency:
		add("max-concurrency", "%d is more than the %d maximum", t.MaxConcurrency, MaxConcurrency)
	case t.MaxConcurrency < 0:
		add("max-concurrency", "must be positive")
	}
	switch {
	case t.Rate > MaxRate:
		add("rate", "%v requests per second is more than the %d maximum", t.Rate, MaxRate)
	case t.Rate < 0 || t.Rate != t.Rate:
		add("rate", "must be positive")
	case t.Rate > 0 && t.Rate < 0.001:
		add("rate", "%v requests per second is less than one in 1000 s: use at least 0.001", t.Rate)
	}
	switch d := time.Duration(t.Coalesce); {
	case d < 0:
		add("coalesce", "must be positive (0 = off)")
	case d > MaxCoalesce:
		add("coalesce", "%v is longer than the %v maximum", d, MaxCoalesce)
	case d > 0 && d < MinCoalesce:
		add("coalesce", "%v is too short; use at least %v", d, MinCoalesce)
	case d > 0 && format == payload.Raw:
		add("coalesce", "format raw sends the registry's own body, and a coalesced delivery has no single body: use another format, or no coalesce")
	}
	return ps
}

// AllowHint says how to allow deliveries to ip when only the allow-list
// keeps them out (a loopback or private address): "allow it with
// --allow-private 127.0.0.1/32". It is "" for an address no allow-list
// opens (metadata endpoints, multicast, ...).
func AllowHint(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	own := netip.PrefixFrom(ip, ip.BitLen())
	if outbound.CheckIP(ip, nil) == nil || outbound.CheckIP(ip, []netip.Prefix{own}) != nil {
		return ""
	}
	return "allow it with --allow-private " + own.String()
}

// urlAllowHint is AllowHint for the literal address of a URL, as the end
// of a sentence: "; allow it with ... (serve's setting: give apply and
// match the same)".
func urlAllowHint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return ""
	}
	if h := AllowHint(ip); h != "" {
		return "; " + h + " (serve's setting: give triggers apply and match the same)"
	}
	return ""
}

// PatternKey identifies the triggers that count towards MaxPerPattern.
func PatternKey(namespace, repository string) string {
	r := strings.TrimPrefix(repository, "/")
	if r == "**" {
		r = ""
	}
	return namespace + "\x00" + r
}

// ValidateSet checks every trigger and the rules that span triggers: unique
// names and at most MaxPerPattern triggers per namespace and repository
// pattern. It returns a *ValidationError listing every problem, or nil.
func ValidateSet(ts []Trigger) error { return Rules{}.ValidateSet(ts) }

// ValidateSet is ValidateSet under these Rules.
func (r Rules) ValidateSet(ts []Trigger) error { return r.validateSet(ts, nil) }

func (r Rules) validateSet(ts []Trigger, lines []int) error {
	var ps []Problem
	line := func(i int) int {
		if i < len(lines) {
			return lines[i]
		}
		return 0
	}
	byName := map[string]int{}
	perPattern := map[string][]string{}
	for i := range ts {
		t := &ts[i]
		label := t.Name
		if label == "" {
			label = fmt.Sprintf("#%d", i+1)
		}
		for _, p := range r.Validate(t) {
			p.Trigger, p.Line = label, line(i)
			ps = append(ps, p)
		}
		if t.Name != "" {
			if j, dup := byName[t.Name]; dup {
				msg := fmt.Sprintf("the name is already used by trigger #%d", j+1)
				if l := line(j); l > 0 {
					msg = fmt.Sprintf("the name is already used at line %d", l)
				}
				ps = append(ps, Problem{Trigger: label, Field: "name", Line: line(i), Message: msg})
			} else {
				byName[t.Name] = i
			}
		}
		k := PatternKey(t.Namespace, t.Repository)
		perPattern[k] = append(perPattern[k], label)
		if n := len(perPattern[k]); n == MaxPerPattern+1 {
			ps = append(ps, Problem{Trigger: label, Field: "repository", Line: line(i), Message: fmt.Sprintf(
				"more than %d triggers share namespace %q and repository pattern %q (%s, ...)",
				MaxPerPattern, t.Namespace, t.Repository, strings.Join(perPattern[k][:3], ", "))})
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}
