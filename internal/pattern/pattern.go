// Package pattern compiles the repository patterns and tag filters of trigger
// rules into matchers.
//
// The syntax follows the registries' own documentation (Tencent TCR, Harbor):
//
//   - `*` matches any run of characters without `/`.
//   - `**` matches anything including `/`, but only as a whole path segment
//     (`path/**`, `**/app`, `a/**/b`); anywhere else (`path**`) it behaves as `*`.
//   - `?` matches one character other than `/`.
//   - `{a, b}` matches any alternative; spaces around the alternatives are
//     ignored. Alternatives may nest and may contain the other wildcards.
//   - Every other printable ASCII character matches itself. `[`, `]` and `\` are refused: the
//     registries do not document character classes or escapes, and no
//     repository or tag name can contain them.
//
// Repository patterns are relative to the namespace; one leading `/` is
// optional. An empty pattern and `**` match every repository.
//
// Tag filters are empty (every tag), a glob with the same rules, `regex:`
// followed by an RE2 expression that must match the whole tag, `semver:`
// followed by a version range (github.com/Masterminds/semver/v3: `>=1.4 <2`,
// `^1.2`, `~1.2.3`, `1.x`, ranges joined by `||`), or a list of at most 10
// exact tags separated by `;`. A semver filter matches tags that are
// semantic versions (a leading `v` allowed, `1.2` read as 1.2.0) in the
// range; prereleases (`1.5.0-rc.1`) only when the range names one (then
// every prerelease within it, as semver/v3 has it).
//
// Patterns are compiled once, with github.com/gobwas/glob and `/` as the
// separator, after translating the rules above; matching never compiles.
package pattern

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/gobwas/glob"
)

// MaxTags is the most exact tags a tag list may hold.
const MaxTags = 10

// RegexPrefix introduces an RE2 tag filter.
const RegexPrefix = "regex:"

// SemverPrefix introduces a semantic-version range tag filter.
const SemverPrefix = "semver:"

// Matcher reports whether a name matches a compiled pattern.
type Matcher interface {
	Match(name string) bool
}

// Error describes why a pattern cannot be compiled.
type Error struct {
	Pattern string
	Reason  string
}

func (e *Error) Error() string { return fmt.Sprintf("invalid pattern %q: %s", e.Pattern, e.Reason) }

// ErrInvalid is matched by every *Error.
var ErrInvalid = errors.New("invalid pattern")

// Is makes errors.Is(err, ErrInvalid) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// all matches everything.
type all struct{}

func (all) Match(string) bool { return true }

// exact matches one literal string.
type exact string

func (e exact) Match(s string) bool { return s == string(e) }

// set matches any of a few literal strings. A linear scan beats a map for at
// most MaxTags short strings.
type set []string

func (t set) Match(s string) bool {
	for _, v := range t {
		if v == s {
			return true
		}
	}
	return false
}

// re matches a whole string with an RE2 expression.
type re struct{ *regexp.Regexp }

func (r re) Match(s string) bool { return r.MatchString(s) }

// All is the Matcher of an empty pattern.
var All Matcher = all{}

// Repository compiles a repository pattern (relative to a namespace).
func Repository(p string) (Matcher, error) {
	g, err := Translate(strings.TrimPrefix(p, "/"))
	if err != nil {
		return nil, &Error{Pattern: p, Reason: err.Error()}
	}
	return compile(p, g)
}

// semverRange matches tags that are semantic versions in a range.
type semverRange struct{ c *semver.Constraints }

func (r semverRange) Match(s string) bool {
	v, err := semver.NewVersion(s)
	return err == nil && r.c.Check(v)
}

// Semver reads tag as a semantic version, as a semver filter does (for
// explaining a miss).
func Semver(tag string) (*semver.Version, bool) {
	v, err := semver.NewVersion(tag)
	return v, err == nil
}

// Tag compiles a tag filter.
func Tag(p string) (Matcher, error) {
	if rest, ok := strings.CutPrefix(p, SemverPrefix); ok {
		if strings.TrimSpace(rest) == "" {
			return nil, &Error{Pattern: p, Reason: "empty version range after " + SemverPrefix}
		}
		c, err := semver.NewConstraint(rest)
		if err != nil {
			return nil, &Error{Pattern: p, Reason: fmt.Sprintf("bad version range: %v", err)}
		}
		return semverRange{c}, nil
	}
	if rest, ok := strings.CutPrefix(p, RegexPrefix); ok {
		if strings.TrimSpace(rest) == "" {
			return nil, &Error{Pattern: p, Reason: "empty regular expression after " + RegexPrefix}
		}
		r, err := regexp.Compile(`^(?:` + rest + `)$`)
		if err != nil {
			return nil, &Error{Pattern: p, Reason: fmt.Sprintf("bad RE2 expression: %v", err)}
		}
		return re{r}, nil
	}
	if strings.Contains(p, ";") {
		tags, err := List(p)
		if err != nil {
			return nil, &Error{Pattern: p, Reason: err.Error()}
		}
		return set(tags), nil
	}
	g, err := Translate(p)
	if err != nil {
		return nil, &Error{Pattern: p, Reason: err.Error()}
	}
	return compile(p, g)
}

// Exclusion compiles one exclude-tags glob: the glob rules of a tag filter
// (no regex:, semver: or list), and never empty.
func Exclusion(p string) (Matcher, error) {
	switch {
	case strings.TrimSpace(p) == "":
		return nil, &Error{Pattern: p, Reason: "an exclusion cannot be empty (it would exclude nothing, or an empty tag)"}
	case strings.HasPrefix(p, RegexPrefix), strings.HasPrefix(p, SemverPrefix), strings.Contains(p, ";"):
		return nil, &Error{Pattern: p, Reason: "an exclusion is a glob (such as *-rc* or sha-*), not a regex:, semver: or list"}
	}
	return Tag(p)
}

// List splits a `;`-separated list of exact tags, trimming spaces and
// dropping empty items. It refuses more than MaxTags tags, duplicates and
// wildcards (a list holds exact tags only).
func List(p string) ([]string, error) {
	var tags []string
	seen := map[string]bool{}
	for _, t := range strings.Split(p, ";") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if strings.ContainsAny(t, "*?{},[]\\ ") {
			return nil, fmt.Errorf("tag list item %q: a list holds exact tags only, without wildcards or spaces", t)
		}
		if seen[t] {
			return nil, fmt.Errorf("tag list item %q appears twice", t)
		}
		seen[t] = true
		tags = append(tags, t)
	}
	if len(tags) == 0 {
		return nil, errors.New("tag list is empty")
	}
	if len(tags) > MaxTags {
		return nil, fmt.Errorf("tag list has %d tags, at most %d are allowed", len(tags), MaxTags)
	}
	return tags, nil
}

// MaxAlternatives bounds how many plain patterns one pattern may expand to.
const MaxAlternatives = 64

// globs matches when any of its plain (brace-free) globs matches.
type globs []plain

func (gs globs) Match(s string) bool {
	for _, g := range gs {
		if g.Match(s) {
			return true
		}
	}
	return false
}

// plain is one brace-free glob. min is the number of bytes any match needs
// (the pattern without its stars): gobwas/glob v0.2.3 lets a prefix and a
// suffix overlap ("a/**/b" would match "a/b"), and checking the length first
// closes that hole and makes short names fail fast.
type plain struct {
	g   glob.Glob
	min int
}

func (p plain) Match(s string) bool { return len(s) >= p.min && p.g.Match(s) }

// compile turns a translated pattern into a Matcher. Alternatives are
// expanded here rather than handed to gobwas/glob, whose v0.2.3 matcher for
// "{a*,b?}/x" misses matches.
func compile(orig, g string) (Matcher, error) {
	switch {
	case g == "" || g == "**":
		return All, nil
	case !strings.ContainsAny(g, "*?{"):
		return exact(g), nil
	}
	// Mark the super-stars before expansion: "{a*,b}*" expands to "a**",
	// whose two stars come from different places and must stay a plain star.
	alts, err := expand(strings.ReplaceAll(g, "**", superStar), nil)
	if err != nil {
		return nil, &Error{Pattern: orig, Reason: err.Error()}
	}
	var literal set
	var gs globs
	for _, a := range alts {
		a = collapseStars(a)
		if a == "**" {
			return All, nil
		}
		if !strings.ContainsAny(a, "*?") {
			literal = append(literal, a)
			continue
		}
		m, err := glob.Compile(a, '/')
		if err != nil {
			return nil, &Error{Pattern: orig, Reason: err.Error()}
		}
		gs = append(gs, plain{g: m, min: len(a) - strings.Count(a, "*")})
	}
	switch {
	case len(gs) == 0 && len(literal) == 1:
		return exact(literal[0]), nil
	case len(gs) == 0:
		return literal, nil
	case len(literal) == 0 && len(gs) == 1:
		return gs[0], nil
	case len(literal) == 0:
		return gs, nil
	}
	return anyOf{literal, gs}, nil
}

// superStar stands for a translated "**" during brace expansion. Translate
// refuses control characters, so it cannot occur in a pattern.
const superStar = "\x00"

// collapseStars rewrites each run of stars and super-stars: "**" if the run
// holds a super-star, "*" otherwise.
func collapseStars(a string) string {
	if !strings.ContainsAny(a, "*"+superStar) {
		return a
	}
	var b strings.Builder
	for i := 0; i < len(a); {
		if a[i] != '*' && a[i] != superStar[0] {
			b.WriteByte(a[i])
			i++
			continue
		}
		super := false
		for ; i < len(a) && (a[i] == '*' || a[i] == superStar[0]); i++ {
			super = super || a[i] == superStar[0]
		}
		if super {
			b.WriteString("**")
		} else {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// anyOf matches when any of its matchers does.
type anyOf []Matcher

func (ms anyOf) Match(s string) bool {
	for _, m := range ms {
		if m.Match(s) {
			return true
		}
	}
	return false
}

// expand performs brace expansion on a translated (balanced, space-free)
// pattern, appending the results to out and removing duplicates.
func expand(g string, out []string) ([]string, error) {
	open := strings.IndexByte(g, '{')
	if open < 0 {
		for _, o := range out {
			if o == g {
				return out, nil
			}
		}
		if len(out) >= MaxAlternatives {
			return nil, fmt.Errorf("expands to more than %d alternatives", MaxAlternatives)
		}
		return append(out, g), nil
	}
	level, start := 0, open+1
	var parts []string
	for i := open + 1; i < len(g); i++ {
		switch g[i] {
		case '{':
			level++
		case '}':
			if level > 0 {
				level--
				continue
			}
			parts = append(parts, g[start:i])
			prefix, suffix := g[:open], g[i+1:]
			var err error
			for _, p := range parts {
				if out, err = expand(prefix+p+suffix, out); err != nil {
					return nil, err
				}
			}
			return out, nil
		case ',':
			if level == 0 {
				parts = append(parts, g[start:i])
				start = i + 1
			}
		}
	}
	return nil, errors.New("unbalanced '{': missing '}'")
}

// Translate rewrites a pattern in the documented syntax into gobwas/glob
// syntax: spaces around alternatives are dropped and a `**` that is not a
// whole path segment becomes `*`. It refuses characters the syntax does not
// allow and unbalanced braces.
func Translate(p string) (string, error) {
	var b strings.Builder
	b.Grow(len(p))
	depth := 0
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '*':
			j := i
			for j < len(p) && p[j] == '*' {
				j++
			}
			if j-i >= 2 && segmentStart(p, i, depth) && segmentEnd(p, j, depth) {
				b.WriteString("**")
			} else {
				b.WriteByte('*')
			}
			i = j
			continue
		case c == '{':
			depth++
			b.WriteByte(c)
			i = skipSpaces(p, i+1)
			continue
		case c == '}' || (c == ',' && depth > 0):
			if depth == 0 {
				return "", fmt.Errorf("unbalanced '}' at offset %d", i)
			}
			if c == '}' {
				depth--
			}
			b.WriteByte(c)
			i++
			if c == ',' {
				i = skipSpaces(p, i)
			}
			continue
		case c == ',':
			return "", fmt.Errorf("',' at offset %d is outside '{...}'", i)
		case c == '[' || c == ']' || c == '\\':
			return "", fmt.Errorf("%q at offset %d is not supported (no character classes or escapes)", c, i)
		case c == ' ':
			j := skipSpaces(p, i)
			if depth == 0 || (j < len(p) && p[j] != ',' && p[j] != '}') {
				return "", fmt.Errorf("space at offset %d (spaces are allowed only around alternatives in '{...}')", i)
			}
			i = j
			continue
		case c < 0x20 || c == 0x7f:
			return "", fmt.Errorf("control character at offset %d", i)
		case c >= 0x80:
			return "", fmt.Errorf("non-ASCII character at offset %d (registry names are ASCII)", i)
		}
		b.WriteByte(c)
		i++
	}
	if depth != 0 {
		return "", errors.New("unbalanced '{': missing '}'")
	}
	return b.String(), nil
}

// segmentStart reports whether position i begins a path segment: the start
// of the pattern, after '/', or at the start of an alternative.
func segmentStart(p string, i, depth int) bool {
	if i == 0 {
		return true
	}
	k := i - 1
	for depth > 0 && k >= 0 && p[k] == ' ' {
		k--
	}
	if k < 0 {
		return true
	}
	switch p[k] {
	case '/':
		return true
	case '{', ',':
		return depth > 0 && segmentStart(p, braceStart(p, k), depth-1)
	}
	return false
}

// segmentEnd reports whether position j ends a path segment: the end of the
// pattern, before '/', or at the end of an alternative.
func segmentEnd(p string, j, depth int) bool {
	k := j
	for depth > 0 && k < len(p) && p[k] == ' ' {
		k++
	}
	if k >= len(p) {
		return true
	}
	switch p[k] {
	case '/':
		return true
	case '}', ',':
		return depth > 0 && segmentEnd(p, braceEnd(p, k)+1, depth-1)
	}
	return false
}

// braceStart returns the index of the '{' that opens the group containing k.
func braceStart(p string, k int) int {
	level := 0
	for ; k >= 0; k-- {
		switch p[k] {
		case '}':
			level++
		case '{':
			if level == 0 {
				return k
			}
			level--
		}
	}
	return 0
}

// braceEnd returns the index of the '}' that closes the group containing k.
func braceEnd(p string, k int) int {
	level := 0
	for ; k < len(p); k++ {
		switch p[k] {
		case '{':
			level++
		case '}':
			if level == 0 {
				return k
			}
			level--
		}
	}
	return len(p) - 1
}

func skipSpaces(p string, i int) int {
	for i < len(p) && p[i] == ' ' {
		i++
	}
	return i
}
