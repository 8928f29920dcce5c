// Package matcher decides which triggers an event fires, and says why each
// other trigger of the event's namespace did not.
//
// Patterns are compiled once, when the Matcher is built; Match never
// compiles and allocates only the result slice it returns.
package matcher

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/pattern"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// Reason says why a trigger did not fire. The empty Reason means it fired.
type Reason string

// Reasons, in the order they are checked.
const (
	Fired                Reason = ""
	Disabled             Reason = "disabled"
	ActionNotSelected    Reason = "action not selected"
	RepositoryNotMatched Reason = "repository not matched"
	TagNotMatched        Reason = "tag not matched"
	TagExcluded          Reason = "tag excluded"
)

// Result is the verdict of one trigger on one event.
type Result struct {
	Trigger *trigger.Trigger
	Reason  Reason
}

// Fired reports whether the trigger fires.
func (r Result) Fired() bool { return r.Reason == Fired }

// Explain describes the verdict for people: the reason with the values
// compared. It runs for every trigger an event does not fire (the reason
// of each untriggered record), so it appends into a stack buffer rather
// than formatting with fmt; values are quoted as %q quotes them.
func (r Result) Explain(ev event.Event) string {
	t := r.Trigger
	var buf [256]byte
	b := buf[:0]
	switch r.Reason {
	case Fired:
		return "fired"
	case Disabled:
		return "trigger is disabled"
	case ActionNotSelected:
		b = append(b, "action "...)
		b = append(b, ev.Action...)
		b = append(b, " not in ["...)
		for i, a := range t.Actions {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, a...)
		}
		b = append(b, ']')
	case RepositoryNotMatched:
		b = append(b, "repository "...)
		b = strconv.AppendQuote(b, ev.Repository)
		b = append(b, " does not match "...)
		b = strconv.AppendQuote(b, t.Repository)
	case TagNotMatched:
		if ev.Tag == "" {
			b = append(b, "event has no tag; filter "...)
			b = strconv.AppendQuote(b, t.Tag)
			b = append(b, " needs one"...)
			break
		}
		b = append(b, "tag "...)
		b = strconv.AppendQuote(b, ev.Tag)
		if rng, ok := strings.CutPrefix(t.Tag, pattern.SemverPrefix); ok {
			switch v, isVersion := pattern.Semver(ev.Tag); {
			case !isVersion:
				b = append(b, " is not a semantic version; filter "...)
				b = strconv.AppendQuote(b, t.Tag)
			case v.Prerelease() != "" && !strings.Contains(rng, "-"):
				b = append(b, " is a prerelease, and the range "...)
				b = strconv.AppendQuote(b, rng)
				b = append(b, " names none"...)
			default:
				b = append(b, " is outside the range "...)
				b = strconv.AppendQuote(b, rng)
			}
			break
		}
		b = append(b, " does not match "...)
		b = strconv.AppendQuote(b, t.Tag)
	case TagExcluded:
		b = append(b, "tag "...)
		b = strconv.AppendQuote(b, ev.Tag)
		b = append(b, " is excluded by "...)
		for _, x := range t.ExcludeTags {
			if m, err := pattern.Exclusion(x); err == nil && m.Match(ev.Tag) {
				b = strconv.AppendQuote(b, x)
				break
			}
		}
	default:
		return string(r.Reason)
	}
	return string(b)
}

// rule is a trigger with its patterns compiled.
type rule struct {
	trigger *trigger.Trigger
	repo    pattern.Matcher
	tag     pattern.Matcher
	exclude []pattern.Matcher
}

// Matcher holds compiled triggers, indexed by namespace. It is safe for
// concurrent use and immutable once built: build a new one when the
// triggers change.
type Matcher struct {
	byNamespace map[string][]rule
	size        int
}

// New compiles the triggers. It refuses a trigger whose patterns do not
// compile, naming it; run trigger.ValidateSet first for the full story.
func New(ts []trigger.Trigger) (*Matcher, error) {
	m := &Matcher{byNamespace: make(map[string][]rule), size: len(ts)}
	for i := range ts {
		t := ts[i] // a copy: later changes by the caller do not leak in
		repo, err := pattern.Repository(t.Repository)
		if err != nil {
			return nil, fmt.Errorf("trigger %q: repository: %w", t.Name, err)
		}
		tag, err := pattern.Tag(t.Tag)
		if err != nil {
			return nil, fmt.Errorf("trigger %q: tag: %w", t.Name, err)
		}
		var exclude []pattern.Matcher
		for _, x := range t.ExcludeTags {
			xm, err := pattern.Exclusion(x)
			if err != nil {
				return nil, fmt.Errorf("trigger %q: exclude-tags: %w", t.Name, err)
			}
			exclude = append(exclude, xm)
		}
		m.byNamespace[t.Namespace] = append(m.byNamespace[t.Namespace], rule{trigger: &t, repo: repo, tag: tag, exclude: exclude})
	}
	return m, nil
}

// Len is the number of triggers held.
func (m *Matcher) Len() int { return m.size }

// Match returns a Result for every trigger of the event's namespace, in the
// order the triggers were given. Triggers of other namespaces are not
// mentioned: they were never candidates.
func (m *Matcher) Match(ev event.Event) []Result {
	rules := m.byNamespace[ev.Namespace]
	if len(rules) == 0 {
		return nil
	}
	return m.AppendMatch(make([]Result, 0, len(rules)), ev)
}

// AppendMatch appends the Results for ev to dst, so a caller can reuse one slice.
func (m *Matcher) AppendMatch(dst []Result, ev event.Event) []Result {
	for _, r := range m.byNamespace[ev.Namespace] {
		dst = append(dst, Result{Trigger: r.trigger, Reason: r.judge(ev)})
	}
	return dst
}

// Fired returns only the triggers that fire for ev.
func (m *Matcher) Fired(ev event.Event) []*trigger.Trigger {
	var out []*trigger.Trigger
	for _, r := range m.byNamespace[ev.Namespace] {
		if r.judge(ev) == Fired {
			out = append(out, r.trigger)
		}
	}
	return out
}

func (r rule) judge(ev event.Event) Reason {
	switch {
	case !r.trigger.Enabled:
		return Disabled
	case !r.trigger.Selects(ev.Action):
		return ActionNotSelected
	case !r.repo.Match(ev.Repository):
		return RepositoryNotMatched
	case !r.tag.Match(ev.Tag):
		return TagNotMatched
	}
	if ev.Tag != "" {
		for _, x := range r.exclude {
			if x.Match(ev.Tag) {
				return TagExcluded
			}
		}
	}
	return Fired
}
