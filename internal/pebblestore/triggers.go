package pebblestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/regtrigger/regtrigger/internal/trigger"
)

var _ trigger.Store = (*Triggers)(nil)

// Triggers is the trigger side of the store (a trigger.Store).
type Triggers struct{ s *Store }

// Triggers returns the store's trigger.Store.
func (s *Store) Triggers() *Triggers { return &Triggers{s} }

// triggerCache holds the answers of Namespace (the receiver asks for every
// notification) and Get (the dispatcher asks for every task). Only this
// process can write the store, and every trigger write empties the cache,
// so it is never stale; gen counts the writes, so that an answer read
// while one ran is not kept.
type triggerCache struct {
	mu  sync.Mutex
	ns  map[string][]trigger.Trigger
	get map[string]trigger.Trigger // the zero Trigger for a missing one
	gen uint64
}

// maxCached bounds each map of the cache: notifications name any
// namespace they like, and past this many it starts over.
const maxCached = 4096

func (c *triggerCache) init() {
	c.ns, c.get = map[string][]trigger.Trigger{}, map[string]trigger.Trigger{}
}

func (c *triggerCache) changed() {
	c.mu.Lock()
	c.gen++
	clear(c.ns)
	clear(c.get)
	c.mu.Unlock()
}

// keep stores v under k in m unless a write ended since gen was read.
func keep[V any](c *triggerCache, m map[string]V, gen uint64, k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(m) >= maxCached {
		clear(m)
	}
	m[k] = v
}

func nsKey(namespace, name string) []byte { return key(kTriggerNS, namespace, byte(0), name) }

// Namespace returns the triggers of one namespace in name order: one prefix
// scan of the namespace index, or a copy of the cached answer.
func (ts *Triggers) Namespace(ctx context.Context, namespace string) ([]trigger.Trigger, error) {
	s := ts.s
	what := "load triggers for " + namespace
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s.cache.mu.Lock()
	cached, ok := s.cache.ns[namespace]
	gen := s.cache.gen
	s.cache.mu.Unlock()
	if ok {
		return slices.Clone(cached), nil
	}
	prefix := nsKey(namespace, "")
	var out []trigger.Trigger
	err := s.scan(span(prefix), false, func(k, _ []byte) (bool, error) {
		t, err := s.storedTrigger(string(k[len(prefix):]))
		if errors.Is(err, trigger.ErrNotFound) {
			return true, nil // cannot happen: writes keep the index in step
		}
		out = append(out, t)
		return err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	keep(&s.cache, s.cache.ns, gen, namespace, slices.Clone(out))
	return out, nil
}

// Get returns one trigger, or trigger.ErrNotFound, from the cache when it
// has the answer.
func (ts *Triggers) Get(ctx context.Context, name string) (trigger.Trigger, error) {
	s := ts.s
	s.cache.mu.Lock()
	cached, ok := s.cache.get[name]
	gen := s.cache.gen
	s.cache.mu.Unlock()
	if ok {
		if cached.Name == "" {
			return trigger.Trigger{}, trigger.ErrNotFound
		}
		return cached, nil
	}
	if err := ctx.Err(); err != nil {
		return trigger.Trigger{}, fmt.Errorf("get trigger %s: %w", name, err)
	}
	t, err := s.storedTrigger(name)
	if err != nil && !errors.Is(err, trigger.ErrNotFound) {
		return trigger.Trigger{}, fmt.Errorf("get trigger %s: %w", name, err)
	}
	keep(&s.cache, s.cache.get, gen, name, t)
	return t, err
}

// List returns every trigger in name order.
func (ts *Triggers) List(ctx context.Context) ([]trigger.Trigger, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list triggers: %w", err)
	}
	var out []trigger.Trigger
	err := ts.s.scan(span(kTrigger), false, func(_, v []byte) (bool, error) {
		t, err := decodeTrigger(v)
		out = append(out, t)
		return err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("list triggers: %w", err)
	}
	return out, nil
}

// write runs a trigger write (read, compare, write) alone, then empties
// the cache.
func (ts *Triggers) write(ctx context.Context, what string, fill func(b *pebble.Batch) error) error {
	s := ts.s
	s.triggerMu.Lock()
	defer s.triggerMu.Unlock()
	defer s.cache.changed()
	return s.commit(ctx, what, fill)
}

// Create stores a new trigger at version 1, or returns trigger.ErrExists.
func (ts *Triggers) Create(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	err := ts.write(ctx, "create trigger "+t.Name, func(b *pebble.Batch) error {
		if t.Name == "" {
			return errors.New("trigger without a name")
		}
		switch _, err := ts.s.storedTrigger(t.Name); {
		case err == nil:
			return trigger.ErrExists
		case !errors.Is(err, trigger.ErrNotFound):
			return err
		}
		t.Version, t.UpdatedAt = 1, ts.s.now().UTC()
		return putTrigger(b, t)
	})
	if err != nil {
		return trigger.Trigger{}, err
	}
	return t, nil
}

// Update replaces the trigger named t.Name if its stored version is
// t.Version (else trigger.ErrConflict), moving it in the namespace index
// when its namespace changed.
func (ts *Triggers) Update(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	err := ts.write(ctx, "update trigger "+t.Name, func(b *pebble.Batch) error {
		old, err := ts.s.storedTrigger(t.Name)
		if err != nil {
			return err
		}
		if old.Version != t.Version {
			return fmt.Errorf("%w: stored version %d, yours %d", trigger.ErrConflict, old.Version, t.Version)
		}
		if old.Namespace != t.Namespace {
			if err := b.Delete(nsKey(old.Namespace, old.Name), nil); err != nil {
				return err
			}
		}
		t.Version, t.UpdatedAt = old.Version+1, ts.s.now().UTC()
		return putTrigger(b, t)
	})
	if err != nil {
		return trigger.Trigger{}, err
	}
	return t, nil
}

// Delete removes a trigger if its stored version is version (0: any).
func (ts *Triggers) Delete(ctx context.Context, name string, version int64) error {
	return ts.write(ctx, "delete trigger "+name, func(b *pebble.Batch) error {
		old, err := ts.s.storedTrigger(name)
		if err != nil {
			return err
		}
		if version != 0 && old.Version != version {
			return fmt.Errorf("%w: stored version %d, yours %d", trigger.ErrConflict, old.Version, version)
		}
		return errors.Join(b.Delete(nsKey(old.Namespace, name), nil), b.Delete(key(kTrigger, name), nil))
	})
}

// storedTrigger reads a trigger, or trigger.ErrNotFound.
func (s *Store) storedTrigger(name string) (trigger.Trigger, error) {
	v, err := s.get(key(kTrigger, name))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return trigger.Trigger{}, trigger.ErrNotFound
	case err != nil:
		return trigger.Trigger{}, err
	}
	return decodeTrigger(v)
}

// putTrigger writes a trigger and its namespace index entry.
func putTrigger(b *pebble.Batch, t trigger.Trigger) error {
	v, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode trigger: %w", err)
	}
	return errors.Join(b.Set(key(kTrigger, t.Name), v, nil), b.Set(nsKey(t.Namespace, t.Name), nil, nil))
}

func decodeTrigger(v []byte) (trigger.Trigger, error) {
	var t trigger.Trigger
	if err := json.Unmarshal(v, &t); err != nil {
		return trigger.Trigger{}, fmt.Errorf("decode stored trigger: %w", err)
	}
	return t, nil
}
