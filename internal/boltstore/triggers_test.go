package boltstore

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

func tr(name, ns string) trigger.Trigger {
	return trigger.Trigger{Name: name, Enabled: true, Namespace: ns, Actions: []event.Action{event.PushImage}, URL: "https://example.com/" + name}
}

func names(l []trigger.Trigger) string {
	n := make([]string, len(l))
	for i, t := range l {
		n[i] = t.Name
	}
	return strings.Join(n, ",")
}

func TestTriggerCreateGetList(t *testing.T) {
	c := newClock(t0)
	ts := open(t, "", c).Triggers()
	// Created out of order, in three namespaces; "a.b" shares a prefix with "a".
	for _, x := range []trigger.Trigger{tr("b", "ns1"), tr("a.b", "ns1"), tr("a", "ns1"), tr("c", "ns2"), tr("d", "ns")} {
		c.add(time.Second)
		got, err := ts.Create(ctx, x)
		if err != nil {
			t.Fatalf("create %s: %v", x.Name, err)
		}
		if got.Version != 1 || !got.UpdatedAt.Equal(c.now()) {
			t.Errorf("create %s returned version %d at %v", x.Name, got.Version, got.UpdatedAt)
		}
		stored, err := ts.Get(ctx, x.Name)
		if err != nil || stored.Version != 1 || !stored.UpdatedAt.Equal(got.UpdatedAt) || stored.URL != x.URL {
			t.Errorf("get %s: %+v %v", x.Name, stored, err)
		}
	}
	tests := []struct {
		ns   string
		want string
	}{
		{"ns1", "a,a.b,b"},
		{"ns2", "c"},
		{"ns", "d"}, // not ns1 or ns2, though it is their prefix
		{"n", ""},
		{"", ""},
	}
	for _, tt := range tests {
		l, err := ts.Namespace(ctx, tt.ns)
		if err != nil || names(l) != tt.want {
			t.Errorf("Namespace(%q) = %s, %v; want %s", tt.ns, names(l), err, tt.want)
		}
	}
	if l, err := ts.List(ctx); err != nil || names(l) != "a,a.b,b,c,d" {
		t.Errorf("List = %s, %v", names(l), err)
	}
}

func TestTriggerErrors(t *testing.T) {
	ts := open(t, "", newClock(t0)).Triggers()
	a, err := ts.Create(ctx, tr("a", "ns"))
	if err != nil {
		t.Fatal(err)
	}
	a.Description = "changed"
	if a, err = ts.Update(ctx, a); err != nil || a.Version != 2 {
		t.Fatalf("update: %+v %v", a, err)
	}
	at := func(v int64) trigger.Trigger { x := tr("a", "ns"); x.Version = v; return x }
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"create taken name", func() error { _, err := ts.Create(ctx, tr("a", "other")); return err }, trigger.ErrExists},
		{"get missing", func() error { _, err := ts.Get(ctx, "zz"); return err }, trigger.ErrNotFound},
		{"update missing", func() error { _, err := ts.Update(ctx, tr("zz", "ns")); return err }, trigger.ErrNotFound},
		{"update old version", func() error { _, err := ts.Update(ctx, at(1)); return err }, trigger.ErrConflict},
		{"update future version", func() error { _, err := ts.Update(ctx, at(3)); return err }, trigger.ErrConflict},
		{"update without version", func() error { _, err := ts.Update(ctx, at(0)); return err }, trigger.ErrConflict},
		{"delete missing", func() error { return ts.Delete(ctx, "zz", 0) }, trigger.ErrNotFound},
		{"delete old version", func() error { return ts.Delete(ctx, "a", 1) }, trigger.ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	// None of them changed the stored trigger.
	if got, err := ts.Get(ctx, "a"); err != nil || got.Version != 2 || got.Namespace != "ns" || got.Description != "changed" {
		t.Errorf("after the failed writes: %+v %v", got, err)
	}
	if err := ts.Delete(ctx, "a", 2); err != nil {
		t.Fatalf("delete at the stored version: %v", err)
	}
	if _, err := ts.Get(ctx, "a"); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	if l, _ := ts.Namespace(ctx, "ns"); len(l) != 0 {
		t.Errorf("deleted trigger still in its namespace: %s", names(l))
	}
	// A deleted name can be created again, at version 1.
	if a, err := ts.Create(ctx, tr("a", "ns")); err != nil || a.Version != 1 {
		t.Errorf("create again: %+v %v", a, err)
	}
	if err := ts.Delete(ctx, "a", 0); err != nil {
		t.Errorf("delete any version: %v", err)
	}
}

func TestTriggerNamespaceMove(t *testing.T) {
	c := newClock(t0)
	s := open(t, "", c)
	ts := s.Triggers()
	for _, x := range []trigger.Trigger{tr("a", "ns1"), tr("b", "ns1"), tr("c", "ns2")} {
		if _, err := ts.Create(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := ts.Get(ctx, "b")
	b.Namespace = "ns2"
	c.add(time.Minute)
	b, err := ts.Update(ctx, b)
	if err != nil || b.Version != 2 || !b.UpdatedAt.Equal(c.now()) {
		t.Fatalf("move: %+v %v", b, err)
	}
	check := func(when string, want map[string]string) {
		t.Helper()
		for ns, w := range want {
			if l, err := ts.Namespace(ctx, ns); err != nil || names(l) != w {
				t.Errorf("%s: Namespace(%s) = %s, %v; want %s", when, ns, names(l), err, w)
			}
		}
		if n := keys(t, s, bTriggersNS); n != keys(t, s, bTriggers) {
			t.Errorf("%s: %d index entries for %d triggers", when, n, keys(t, s, bTriggers))
		}
	}
	check("after the move", map[string]string{"ns1": "a", "ns2": "b,c"})
	if l, _ := ts.Namespace(ctx, "ns2"); l[0].Version != 2 {
		t.Errorf("Namespace returned the old version: %+v", l[0])
	}
	// An update that keeps the namespace keeps one index entry.
	b.Description = "x"
	if b, err = ts.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	check("after an update in place", map[string]string{"ns1": "a", "ns2": "b,c"})
	// Move it back, then delete it.
	b.Namespace = "ns1"
	if b, err = ts.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	check("after moving back", map[string]string{"ns1": "a,b", "ns2": "c"})
	if err := ts.Delete(ctx, "b", b.Version); err != nil {
		t.Fatal(err)
	}
	check("after delete", map[string]string{"ns1": "a", "ns2": "c"})
}

func TestConcurrentUpdatesOneWins(t *testing.T) {
	ts := open(t, "", newClock(t0)).Triggers()
	base, err := ts.Create(ctx, tr("a", "ns"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			x := base
			x.Description = fmt.Sprint(i)
			<-start
			_, errs[i] = ts.Update(ctx, x)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("updates %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, trigger.ErrConflict):
			t.Errorf("update %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no update won")
	}
	got, _ := ts.Get(ctx, "a")
	if got.Version != 2 || got.Description != fmt.Sprint(winner) {
		t.Errorf("stored %+v, want the winner's (%d) at version 2", got, winner)
	}
}

func TestNamespaceCacheFollowsWrites(t *testing.T) {
	s := open(t, "", newClock(t0))
	ts := s.Triggers()
	urls := func() string {
		t.Helper()
		l, err := ts.Namespace(ctx, "ns")
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(l))
		for i, x := range l {
			out[i] = strings.TrimPrefix(x.URL, "https://example.com/")
		}
		return strings.Join(out, ",")
	}
	if got := urls(); got != "" {
		t.Fatalf("empty namespace: %q", got)
	}
	a, err := ts.Create(ctx, tr("a", "ns"))
	if err != nil {
		t.Fatal(err)
	}
	if got := urls(); got != "a" {
		t.Errorf("after create: %q", got)
	}
	// A caller changing its answer does not change the next one's.
	l, _ := ts.Namespace(ctx, "ns")
	l[0].URL = "changed"
	if got := urls(); got != "a" {
		t.Errorf("after a caller changed its copy: %q", got)
	}
	a.URL = "https://example.com/a2"
	if _, err := ts.Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := urls(); got != "a2" {
		t.Errorf("after update: %q", got)
	}
	if err := ts.Delete(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	if got := urls(); got != "" {
		t.Errorf("after delete: %q", got)
	}
	// A failed write empties the cache too, harmlessly.
	if err := ts.Delete(ctx, "a", 0); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("delete again: %v", err)
	}
	// Many namespaces: the cache stays bounded.
	for i := range maxCachedNamespaces + 10 {
		if _, err := ts.Namespace(ctx, fmt.Sprint("other", i)); err != nil {
			t.Fatal(err)
		}
	}
	s.nsMu.Lock()
	n := len(s.nsCache)
	s.nsMu.Unlock()
	if n > maxCachedNamespaces {
		t.Errorf("%d namespaces cached", n)
	}
}

// TestGetSeesEveryWrite: Get answers from memory, and every trigger write
// empties that memory, so the dispatcher never sends with a stale trigger.
func TestGetSeesEveryWrite(t *testing.T) {
	s := open(t, "", newClock(t0))
	ts := s.Triggers()
	if _, err := ts.Get(ctx, "a"); !errors.Is(err, trigger.ErrNotFound) {
		t.Fatalf("before create: %v", err)
	}
	created, err := ts.Create(ctx, tr("a", "ns"))
	if err != nil {
		t.Fatal(err)
	}
	for step, want := range []string{"https://example.com/a", "https://example.com/edited"} {
		got, err := ts.Get(ctx, "a")
		if err != nil || got.URL != want {
			t.Fatalf("step %d: %q, %v; want %q", step, got.URL, err, want)
		}
		if _, err := ts.Get(ctx, "a"); err != nil { // from memory
			t.Fatal(err)
		}
		if step == 0 {
			created.URL = "https://example.com/edited"
			if created, err = ts.Update(ctx, created); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ts.Delete(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Get(ctx, "a"); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
}
