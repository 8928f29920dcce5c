package trigger

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/regtrigger/regtrigger/internal/event"
)

// memStore is a small in-memory Store for Apply's tests.
type memStore struct {
	mu sync.Mutex
	m  map[string]Trigger
	// failOn makes the named operation fail.
	failOn string
}

func newMemStore(ts ...Trigger) *memStore {
	s := &memStore{m: map[string]Trigger{}}
	for _, t := range ts {
		t.Version = 1
		s.m[t.Name] = t
	}
	return s
}

func (s *memStore) Namespace(_ context.Context, ns string) ([]Trigger, error) {
	all, _ := s.List(context.Background())
	var out []Trigger
	for _, t := range all {
		if t.Namespace == ns {
			out = append(out, t)
		}
	}
	return out, nil
}

func (s *memStore) Get(_ context.Context, name string) (Trigger, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[name]
	if !ok {
		return Trigger{}, ErrNotFound
	}
	return t, nil
}

func (s *memStore) List(context.Context) ([]Trigger, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failOn == "list" {
		return nil, errors.New("store down")
	}
	out := make([]Trigger, 0, len(s.m))
	for _, t := range s.m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *memStore) Create(_ context.Context, t Trigger) (Trigger, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[t.Name]; ok {
		return Trigger{}, ErrExists
	}
	t.Version = 1
	s.m[t.Name] = t
	return t, nil
}

func (s *memStore) Update(_ context.Context, t Trigger) (Trigger, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[t.Name]
	switch {
	case !ok:
		return Trigger{}, ErrNotFound
	case s.failOn == "update" || old.Version != t.Version:
		return Trigger{}, ErrConflict
	}
	t.Version++
	s.m[t.Name] = t
	return t, nil
}

func (s *memStore) Delete(_ context.Context, name string, version int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[name]
	switch {
	case !ok:
		return ErrNotFound
	case version != 0 && old.Version != version:
		return ErrConflict
	}
	delete(s.m, name)
	return nil
}

var _ Store = (*memStore)(nil)

func named(name string) Trigger {
	t := valid()
	t.Name = name
	return t
}

func TestApply(t *testing.T) {
	changedURL := named("b")
	changedURL.URL = "https://other.example.com/"
	tests := []struct {
		name    string
		stored  []Trigger
		desired []Trigger
		opts    ApplyOptions
		want    string
		after   []string
	}{
		{"create into empty", nil, []Trigger{named("a"), named("b")}, ApplyOptions{}, "[{a created []} {b created []}]", []string{"a", "b"}},
		{"unchanged and updated", []Trigger{named("a"), named("b")}, []Trigger{named("a"), changedURL}, ApplyOptions{}, "[{a unchanged []} {b updated [url]}]", []string{"a", "b"}},
		{"keeps unmentioned without prune", []Trigger{named("a"), named("z")}, []Trigger{named("a")}, ApplyOptions{}, "[{a unchanged []}]", []string{"a", "z"}},
		{"prune deletes unmentioned", []Trigger{named("a"), named("z")}, []Trigger{named("a")}, ApplyOptions{Prune: true}, "[{a unchanged []} {z deleted []}]", []string{"a"}},
		{"dry run writes nothing", []Trigger{named("z")}, []Trigger{named("a")}, ApplyOptions{Prune: true, DryRun: true}, "[{a created []} {z deleted []}]", []string{"z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMemStore(tt.stored...)
			changes, err := Apply(context.Background(), s, tt.desired, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range changes {
				got = append(got, fmt.Sprintf("{%s %s %v}", c.Name, c.Kind, c.Fields))
			}
			if fmt.Sprint(got) != tt.want {
				t.Errorf("changes %v, want %v", got, tt.want)
			}
			all, _ := s.List(context.Background())
			var names []string
			for _, t := range all {
				names = append(names, t.Name)
			}
			if fmt.Sprint(names) != fmt.Sprint(tt.after) {
				t.Errorf("store holds %v, want %v", names, tt.after)
			}
		})
	}
}

func TestApplyLimitCountsKeptTriggers(t *testing.T) {
	var stored []Trigger
	for i := 0; i < MaxPerPattern; i++ {
		stored = append(stored, named(fmt.Sprintf("kept%d", i)))
	}
	_, err := Apply(context.Background(), newMemStore(stored...), []Trigger{named("new")}, ApplyOptions{})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("11 triggers on one pattern after apply: want invalid, got %v", err)
	}
	if _, err := Apply(context.Background(), newMemStore(stored...), []Trigger{named("new")}, ApplyOptions{Prune: true}); err != nil {
		t.Fatalf("with prune the old ones go: %v", err)
	}
}

func TestApplyErrors(t *testing.T) {
	s := newMemStore(named("a"))
	s.failOn = "update"
	changed := named("a")
	changed.Actions = []event.Action{event.DeleteImage}
	if _, err := Apply(context.Background(), s, []Trigger{changed}, ApplyOptions{}); !errors.Is(err, ErrConflict) {
		t.Errorf("want a conflict, got %v", err)
	}
	s.failOn = "list"
	if _, err := Apply(context.Background(), s, nil, ApplyOptions{}); err == nil {
		t.Error("a store that is down must fail the apply")
	}
	bad := named("Bad Name")
	if _, err := Apply(context.Background(), newMemStore(), []Trigger{bad}, ApplyOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("want invalid, got %v", err)
	}
}

func TestDiff(t *testing.T) {
	a := named("a")
	b := a
	b.Version, b.Headers, b.Actions = 7, map[string]string{}, append([]event.Action(nil), a.Actions...)
	if d := Diff(a, b); len(d) != 0 {
		t.Errorf("only store fields differ, got %v", d)
	}
	b.Secrets = []string{"whsec_x"}
	b.Tag = "v1"
	if d := Diff(a, b); fmt.Sprint(d) != "[tag secret]" {
		t.Errorf("got %v", d)
	}
}
