package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/trigger"
)

// Triggers is a trigger.Store (not *Store itself: record.Store has a List
// method too, with other arguments).
var _ trigger.Store = (*Triggers)(nil)

// Triggers is the trigger side of the store.
type Triggers struct{ s *Store }

// Triggers returns the store's trigger.Store.
func (s *Store) Triggers() *Triggers { return &Triggers{s} }

// nsKey is the triggers_ns key of a trigger; nsKey(ns, "") is the prefix of
// the namespace.
func nsKey(namespace, name string) []byte { return []byte(namespace + "\x00" + name) }

// Namespace returns the triggers of one namespace in name order: one prefix
// scan of the namespace index, or a copy of the answer cached in memory
// (the receiver asks for every notification). Only this process can write
// the file, and every trigger write here empties the cache, so the cache
// is never stale.
func (ts *Triggers) Namespace(ctx context.Context, namespace string) ([]trigger.Trigger, error) {
	s := ts.s
	what := "load triggers for " + namespace
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s.nsMu.Lock()
	cached, ok := s.nsCache[namespace]
	gen := s.nsGen
	s.nsMu.Unlock()
	if ok {
		return slices.Clone(cached), nil
	}
	var out []trigger.Trigger
	err := s.view(ctx, what, func(tx *bolt.Tx) error {
		prefix := nsKey(namespace, "")
		all := tx.Bucket(bTriggers)
		c := tx.Bucket(bTriggersNS).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			v := all.Get(k[len(prefix):])
			if v == nil {
				continue // cannot happen: writes keep the index in step
			}
			t, err := decodeTrigger(v)
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.nsMu.Lock()
	// Keep it unless a trigger write ended since the read began.
	if s.nsGen == gen {
		if len(s.nsCache) >= maxCachedNamespaces {
			clear(s.nsCache)
		}
		s.nsCache[namespace] = slices.Clone(out)
	}
	s.nsMu.Unlock()
	return out, nil
}

// maxCachedNamespaces bounds the namespace cache: notifications name any
// namespace they like, and past this many it starts over.
const maxCachedNamespaces = 4096

// triggersChanged empties the namespace cache after a trigger write.
func (s *Store) triggersChanged() {
	s.nsMu.Lock()
	s.nsGen++
	clear(s.nsCache)
	clear(s.getCache)
	s.nsMu.Unlock()
}

// Get returns one trigger, or trigger.ErrNotFound. The dispatcher asks for
// every task it sends, so answers (a missing trigger too) are cached in
// memory like Namespace's, and as Namespace's the cache is emptied by every
// trigger write: it is never stale.
func (ts *Triggers) Get(ctx context.Context, name string) (trigger.Trigger, error) {
	s := ts.s
	s.nsMu.Lock()
	cached, ok := s.getCache[name]
	gen := s.nsGen
	s.nsMu.Unlock()
	if ok {
		if cached.Name == "" {
			return trigger.Trigger{}, trigger.ErrNotFound
		}
		return cached, nil
	}
	var t trigger.Trigger
	err := s.view(ctx, "get trigger "+name, func(tx *bolt.Tx) error {
		v := tx.Bucket(bTriggers).Get([]byte(name))
		if v == nil {
			return trigger.ErrNotFound
		}
		var err error
		t, err = decodeTrigger(v)
		return err
	})
	if err != nil && !errors.Is(err, trigger.ErrNotFound) {
		return trigger.Trigger{}, err
	}
	s.nsMu.Lock()
	if s.nsGen == gen {
		if len(s.getCache) >= maxCachedNamespaces {
			clear(s.getCache)
		}
		s.getCache[name] = t // the zero Trigger for a missing one
	}
	s.nsMu.Unlock()
	return t, err
}

// List returns every trigger in name order.
func (ts *Triggers) List(ctx context.Context) ([]trigger.Trigger, error) {
	var out []trigger.Trigger
	err := ts.s.view(ctx, "list triggers", func(tx *bolt.Tx) error {
		return tx.Bucket(bTriggers).ForEach(func(_, v []byte) error {
			t, err := decodeTrigger(v)
			if err != nil {
				return err
			}
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Create stores a new trigger at version 1, or returns trigger.ErrExists.
func (ts *Triggers) Create(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	err := ts.s.update(ctx, "create trigger "+t.Name, func(tx *bolt.Tx) error {
		if t.Name == "" {
			return errors.New("trigger without a name")
		}
		if tx.Bucket(bTriggers).Get([]byte(t.Name)) != nil {
			return trigger.ErrExists
		}
		t.Version, t.UpdatedAt = 1, ts.s.now().UTC()
		return putTrigger(tx, t)
	})
	ts.s.triggersChanged()
	if err != nil {
		return trigger.Trigger{}, err
	}
	return t, nil
}

// Update replaces the trigger named t.Name if its stored version is
// t.Version (else trigger.ErrConflict), moving it in the namespace index
// when its namespace changed.
func (ts *Triggers) Update(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	err := ts.s.update(ctx, "update trigger "+t.Name, func(tx *bolt.Tx) error {
		old, err := storedTrigger(tx, t.Name)
		if err != nil {
			return err
		}
		if old.Version != t.Version {
			return fmt.Errorf("%w: stored version %d, yours %d", trigger.ErrConflict, old.Version, t.Version)
		}
		if old.Namespace != t.Namespace {
			if err := tx.Bucket(bTriggersNS).Delete(nsKey(old.Namespace, old.Name)); err != nil {
				return err
			}
		}
		t.Version, t.UpdatedAt = old.Version+1, ts.s.now().UTC()
		return putTrigger(tx, t)
	})
	ts.s.triggersChanged()
	if err != nil {
		return trigger.Trigger{}, err
	}
	return t, nil
}

// Delete removes a trigger if its stored version is version (0: any).
func (ts *Triggers) Delete(ctx context.Context, name string, version int64) error {
	defer ts.s.triggersChanged()
	return ts.s.update(ctx, "delete trigger "+name, func(tx *bolt.Tx) error {
		old, err := storedTrigger(tx, name)
		if err != nil {
			return err
		}
		if version != 0 && old.Version != version {
			return fmt.Errorf("%w: stored version %d, yours %d", trigger.ErrConflict, old.Version, version)
		}
		if err := tx.Bucket(bTriggersNS).Delete(nsKey(old.Namespace, name)); err != nil {
			return err
		}
		return tx.Bucket(bTriggers).Delete([]byte(name))
	})
}

// storedTrigger reads a trigger inside a transaction, or trigger.ErrNotFound.
func storedTrigger(tx *bolt.Tx, name string) (trigger.Trigger, error) {
	v := tx.Bucket(bTriggers).Get([]byte(name))
	if v == nil {
		return trigger.Trigger{}, trigger.ErrNotFound
	}
	return decodeTrigger(v)
}

// putTrigger writes a trigger and its namespace index entry.
func putTrigger(tx *bolt.Tx, t trigger.Trigger) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode trigger: %w", err)
	}
	if err := tx.Bucket(bTriggers).Put([]byte(t.Name), b); err != nil {
		return err
	}
	return tx.Bucket(bTriggersNS).Put(nsKey(t.Namespace, t.Name), nil)
}

func decodeTrigger(v []byte) (trigger.Trigger, error) {
	var t trigger.Trigger
	if err := json.Unmarshal(v, &t); err != nil {
		return trigger.Trigger{}, fmt.Errorf("decode stored trigger: %w", err)
	}
	return t, nil
}
