package trigger

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
)

// ChangeKind says what Apply did (or would do) to one trigger.
type ChangeKind string

// The kinds of change.
const (
	Created   ChangeKind = "created"
	Updated   ChangeKind = "updated"
	Deleted   ChangeKind = "deleted"
	Unchanged ChangeKind = "unchanged"
)

// Change is one line of Apply's report.
type Change struct {
	Name string     `json:"name"`
	Kind ChangeKind `json:"change"`
	// Fields lists the fields an update changes (secret and header values
	// are named, never shown).
	Fields []string `json:"fields,omitempty"`
}

// ApplyOptions tunes Apply.
type ApplyOptions struct {
	// Prune deletes stored triggers the file does not mention.
	Prune bool
	// DryRun reports the changes without writing.
	DryRun bool
	// Rules are the deployment's validation settings.
	Rules Rules
	// StoredIn names the store in problems with a stored trigger Apply
	// keeps (without Prune), e.g. "./regtrigger.db"; "" says "the store".
	StoredIn string
}

// Apply makes the store hold the desired triggers, declaratively: it
// creates the missing ones, updates the ones that differ and, with Prune,
// deletes the ones not desired. The desired set is validated first, together
// with the stored triggers it keeps, so the per-pattern limit holds for the
// result. Writes are conditional on the versions read, so a concurrent
// change makes Apply fail with ErrConflict instead of being overwritten.
func Apply(ctx context.Context, s Store, desired []Trigger, opts ApplyOptions) ([]Change, error) {
	stored, err := s.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list stored triggers: %w", err)
	}
	byName := make(map[string]Trigger, len(stored))
	for _, t := range stored {
		byName[t.Name] = t
	}
	wanted := make(map[string]bool, len(desired))
	final := append([]Trigger(nil), desired...)
	for _, t := range desired {
		wanted[t.Name] = true
	}
	if !opts.Prune {
		for _, t := range stored {
			if !wanted[t.Name] {
				final = append(final, t)
			}
		}
	}
	if err := opts.Rules.ValidateSet(final); err != nil {
		// Say which problems are in triggers the file does not hold: the
		// file may be fine, and the stored ones were validated under
		// these Rules, perhaps not the ones they were stored with.
		var ve *ValidationError
		if errors.As(err, &ve) {
			where := opts.StoredIn
			if where == "" {
				where = "the store"
			}
			for i, p := range ve.Problems {
				if _, stored := byName[p.Trigger]; stored && !wanted[p.Trigger] {
					ve.Problems[i].StoredIn = where
				}
			}
		}
		return nil, err
	}

	var changes []Change
	for _, t := range desired {
		old, exists := byName[t.Name]
		switch {
		case !exists:
			changes = append(changes, Change{Name: t.Name, Kind: Created})
			if !opts.DryRun {
				if _, err := s.Create(ctx, t); err != nil {
					return changes, fmt.Errorf("create trigger %s: %w", t.Name, err)
				}
			}
		default:
			if !old.Enabled && old.DisabledReason != "" && t.Enabled {
				// Disabled by the dispatcher (auto-disable-after): a file
				// saying enabled — as serve --triggers re-applies at every
				// start — does not undo that; `triggers enable` does.
				t.Enabled, t.DisabledReason, t.DisabledAt = false, old.DisabledReason, old.DisabledAt
			}
			fields := Diff(old, t)
			if len(fields) == 0 {
				changes = append(changes, Change{Name: t.Name, Kind: Unchanged})
				continue
			}
			changes = append(changes, Change{Name: t.Name, Kind: Updated, Fields: fields})
			if !opts.DryRun {
				t.Version, t.CancelThrough = old.Version, old.CancelThrough
				if _, err := s.Update(ctx, t); err != nil {
					return changes, fmt.Errorf("update trigger %s: %w", t.Name, err)
				}
			}
		}
	}
	if opts.Prune {
		for _, t := range stored {
			if wanted[t.Name] {
				continue
			}
			changes = append(changes, Change{Name: t.Name, Kind: Deleted})
			if !opts.DryRun {
				if err := s.Delete(ctx, t.Name, t.Version); err != nil {
					return changes, fmt.Errorf("delete trigger %s: %w", t.Name, err)
				}
			}
		}
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Name < changes[j].Name })
	return changes, nil
}

// Diff names the fields in which two triggers differ, ignoring the store's
// Version, UpdatedAt and CancelThrough.
func Diff(a, b Trigger) []string {
	var out []string
	add := func(name string, same bool) {
		if !same {
			out = append(out, name)
		}
	}
	add("description", a.Description == b.Description)
	add("enabled", a.Enabled == b.Enabled)
	add("actions", reflect.DeepEqual(nonNil(a.Actions), nonNil(b.Actions)))
	add("namespace", a.Namespace == b.Namespace)
	add("repository", a.Repository == b.Repository)
	add("tag", a.Tag == b.Tag)
	add("exclude-tags", reflect.DeepEqual(nonNil(a.ExcludeTags), nonNil(b.ExcludeTags)))
	add("url", a.URL == b.URL)
	add("headers", len(a.Headers) == len(b.Headers) && (len(a.Headers) == 0 || reflect.DeepEqual(a.Headers, b.Headers)))
	add("format", a.Format == b.Format)
	add("secret", len(a.Secrets) == len(b.Secrets) && (len(a.Secrets) == 0 || reflect.DeepEqual(a.Secrets, b.Secrets)))
	add("timeout", a.Timeout == b.Timeout)
	add("template", a.Template == b.Template)
	add("content-type", a.ContentType == b.ContentType)
	add("auto-disable-after", a.DisableAfter() == b.DisableAfter())
	add("max-concurrency", a.MaxConcurrency == b.MaxConcurrency)
	add("rate", a.Rate == b.Rate)
	add("coalesce", a.Coalesce == b.Coalesce)
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
