// Package trigger defines trigger rules — which registry events call which
// webhook — with their file format and validation.
//
// A Trigger names a namespace (exact), a repository pattern and a tag filter
// (see package pattern), the actions it fires on, and the webhook it calls:
// URL, extra headers, payload format, signing secrets and deadline.
package trigger

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/payload"
)

// Limits taken from the registries' documentation and DESIGN.md.
const (
	MaxNameLength     = 64
	MaxPerPattern     = 10 // triggers sharing one namespace and repository pattern
	MaxHeaders        = 20
	MaxHeaderValueLen = 4096
	MaxURLLength      = 2048
	MaxSecrets        = 2 // two during rotation
	MaxDescription    = 512
	MaxExcludeTags    = 10 // exclude-tags globs per trigger
	DefaultTimeout    = 10 * time.Second
	MaxTimeout        = 30 * time.Second
	// DefaultAutoDisableAfter is how long every delivery of a trigger may
	// fail before it is disabled, as Svix does.
	DefaultAutoDisableAfter = 5 * 24 * time.Hour
	MaxConcurrency          = 1000  // max-concurrency at most
	MaxRate                 = 10000 // rate (requests per second) at most
	// MinCoalesce and MaxCoalesce bound a coalesce window: a burst is a
	// multi-arch push or a pipeline's tags, seconds apart; holding a
	// delivery longer than ten minutes is a schedule, not a burst.
	MinCoalesce = time.Second
	MaxCoalesce = 10 * time.Minute
)

// Trigger is one rule. Its JSON form is what stores keep.
type Trigger struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Enabled     bool           `json:"enabled"`
	Actions     []event.Action `json:"actions"`
	Namespace   string         `json:"namespace"`
	Repository  string         `json:"repository,omitempty"`
	Tag         string         `json:"tag,omitempty"`
	// ExcludeTags are globs of tags that never fire the trigger, whatever
	// its tag filter says ("*-rc*", "sha-*").
	ExcludeTags []string          `json:"exclude_tags,omitempty"`
	URL         string            `json:"url"`
	Headers     map[string]string `json:"headers,omitempty"`
	Format      payload.Format    `json:"format"`
	// Secrets are Standard Webhooks signing secrets (whsec_...). With two,
	// every request carries both signatures, so receivers can rotate.
	Secrets []string `json:"secrets,omitempty"`
	// Timeout is the delivery deadline; zero means DefaultTimeout.
	Timeout Duration `json:"timeout,omitempty"`
	// Template is the body of format template (Go text/template, see
	// package payload), ContentType its Content-Type (default JSON).
	Template    string `json:"template,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	// AutoDisableAfter disables the trigger when all its deliveries have
	// failed for that long; nil means DefaultAutoDisableAfter, 0 never.
	AutoDisableAfter *Duration `json:"auto_disable_after,omitempty"`
	// MaxConcurrency bounds the trigger's requests in flight at once, and
	// Rate its requests per second, in one dispatcher process (0: no
	// limit). Tasks over either wait; they are not failed.
	MaxConcurrency int     `json:"max_concurrency,omitempty"`
	Rate           float64 `json:"rate,omitempty"`
	// Coalesce > 0 turns the events of one burst into one delivery: the
	// events for one repository and action that arrive within Coalesce of
	// the first and share its digest or a tag (see package coalesce) are
	// sent together, Coalesce after the first arrived. 0 sends each event.
	Coalesce Duration `json:"coalesce,omitempty"`

	// DisabledReason says why the dispatcher disabled the trigger
	// (auto-disable-after), DisabledAt when; both are cleared when it is
	// enabled again. A trigger file never sets them.
	DisabledReason string    `json:"disabled_reason,omitempty"`
	DisabledAt     time.Time `json:"disabled_at,omitzero"`

	// Version is the store's revision of this trigger, for conditional
	// updates; zero for a trigger not yet stored.
	Version int64 `json:"version,omitempty"`
	// UpdatedAt is when the store last wrote it.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// CancelThrough cancels the trigger's queued tasks: a task matched
	// against revision CancelThrough or an older one is cancelled when it
	// comes due, on every platform (SQS cannot remove single messages).
	// Revisions, not times, so that no clock needs to agree with another.
	// Set by `regtrigger tasks cancel` and `triggers disable
	// --cancel-queued`; a trigger file never sets it and apply keeps it.
	CancelThrough int64 `json:"cancel_through,omitempty"`
}

// Selects reports whether the trigger fires on action a.
func (t *Trigger) Selects(a event.Action) bool {
	for _, x := range t.Actions {
		if x == a {
			return true
		}
	}
	return false
}

// Deadline is the delivery deadline to use.
func (t *Trigger) Deadline() time.Duration {
	if t.Timeout <= 0 {
		return DefaultTimeout
	}
	return time.Duration(t.Timeout)
}

// DisableAfter is how long all deliveries may fail before the trigger is
// disabled; 0 means never.
func (t *Trigger) DisableAfter() time.Duration {
	if t.AutoDisableAfter == nil {
		return DefaultAutoDisableAfter
	}
	return max(time.Duration(*t.AutoDisableAfter), 0)
}

// Redacted returns a copy safe to print: the URL's query, header values and
// secrets replaced.
func (t Trigger) Redacted() Trigger {
	if i := strings.IndexByte(t.URL, '?'); i >= 0 {
		t.URL = t.URL[:i] + "?<redacted>"
	}
	if len(t.Headers) > 0 {
		h := make(map[string]string, len(t.Headers))
		for k := range t.Headers {
			h[k] = "<redacted>"
		}
		t.Headers = h
	}
	if len(t.Secrets) > 0 {
		s := make([]string, len(t.Secrets))
		for i := range s {
			s[i] = "<redacted>"
		}
		t.Secrets = s
	}
	return t
}

// Duration is a time.Duration written as a Go duration string ("5s").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"5s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
