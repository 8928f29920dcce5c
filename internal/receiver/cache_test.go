package receiver

import (
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// TestMatcherCache checks when the cached matcher of a namespace is reused
// and when it is compiled again: any change of the triggers' names,
// versions, update times, number or order compiles again.
func TestMatcherCache(t *testing.T) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	mk := func(name string, version int64, updated time.Time) trigger.Trigger {
		return trigger.Trigger{Name: name, Enabled: true, Namespace: "ns", Repository: "**", Actions: []event.Action{event.PushImage},
			URL: "https://hooks.example.com/" + name, Version: version, UpdatedAt: updated}
	}
	base := []trigger.Trigger{mk("a", 1, at), mk("b", 3, at)}
	tests := []struct {
		name  string
		next  []trigger.Trigger
		reuse bool
	}{
		{"same revisions", []trigger.Trigger{mk("a", 1, at), mk("b", 3, at)}, true},
		{"same instant in another zone", []trigger.Trigger{mk("a", 1, at.In(time.FixedZone("X", 3600))), mk("b", 3, at)}, true},
		{"version bumped", []trigger.Trigger{mk("a", 2, at), mk("b", 3, at)}, false},
		{"updated later", []trigger.Trigger{mk("a", 1, at), mk("b", 3, at.Add(time.Nanosecond))}, false},
		{"renamed", []trigger.Trigger{mk("a", 1, at), mk("c", 3, at)}, false},
		{"added", []trigger.Trigger{mk("a", 1, at), mk("b", 3, at), mk("c", 1, at)}, false},
		{"removed", []trigger.Trigger{mk("a", 1, at)}, false},
		{"none left", nil, false},
		{"reordered", []trigger.Trigger{mk("b", 3, at), mk("a", 1, at)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c matcherCache
			first, err := c.get("ns", base)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.get("other", []trigger.Trigger{mk("x", 1, at)}); err != nil {
				t.Fatal(err)
			}
			next, err := c.get("ns", tt.next)
			if err != nil {
				t.Fatal(err)
			}
			if reused := next == first; reused != tt.reuse {
				t.Fatalf("matcher reused = %v, want %v", reused, tt.reuse)
			}
			if next.Len() != len(tt.next) {
				t.Errorf("matcher holds %d triggers, want %d", next.Len(), len(tt.next))
			}
			if again, _ := c.get("ns", tt.next); again != next {
				t.Error("the new matcher is not cached")
			}
		})
	}
}
