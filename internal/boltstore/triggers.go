package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/trigger"
)

var _ trigger.Store = (*Triggers)(nil)

// Triggers is the trigger side of the store.
type Triggers struct{ s *Store }

// Triggers returns the store's trigger.Store.
func (s *Store) Triggers() *Triggers { return &Triggers{s} }

func nsKey(namespace, name string) []byte { return []byte(namespace + "\x00" + name) }

// Namespace returns the triggers of one namespace in name order.
func (ts *Triggers) Namespace(ctx context.Context, namespace string) ([]trigger.Trigger, error) {
	var out []trigger.Trigger
	err := ts.s.view(ctx, "load triggers for "+namespace, func(tx *bolt.Tx) error {
		prefix := nsKey(namespace, "")
		c := tx.Bucket(bTriggersNS).Cursor()
		all := tx.Bucket(bTriggers)
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			t, err := decodeTrigger(all.Get(k[len(prefix):]))
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

// Get returns one trigger.
func (ts *Triggers) Get(ctx context.Context, name string) (trigger.Trigger, error) {
	var t trigger.Trigger
	err := ts.s.view(ctx, "get trigger "+name, func(tx *bolt.Tx) error {
		v := tx.Bucket(bTriggers).Get([]byte(name))
		if v == nil {
			return trigger.ErrNotFound
		}
		var err error
		t, err = decodeTrigger(v)
		return err
	})
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
	return out, err
}

// Create stores a new trigger at version 1.
func (ts *Triggers) Create(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	err := ts.s.update(ctx, "create trigger "+t.Name, func(tx *bolt.Tx) error {
		if tx.Bucket(bTriggers).Get([]byte(t.Name)) != nil {
			return trigger.ErrExists
		}
		t.Version, t.UpdatedAt = 1, ts.s.now().UTC()
		return putTrigger(tx, t)
	})
	if err != nil {
		return trigger.Trigger{}, err
	}
	return t, nil
}

// Update replaces a trigger if its stored version is t.Version.
func (ts *Triggers) Update(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	err := ts.s.update(ctx, "update trigger "+t.Name, func(tx *bolt.Tx) error {
		v := tx.Bucket(bTriggers).Get([]byte(t.Name))
		if v == nil {
			return trigger.ErrNotFound
		}
		old, err := decodeTrigger(v)
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
	if err != nil {
		return trigger.Trigger{}, err
	}
	return t, nil
}

// Delete removes a trigger if its stored version is version (0: any).
func (ts *Triggers) Delete(ctx context.Context, name string, version int64) error {
	return ts.s.update(ctx, "delete trigger "+name, func(tx *bolt.Tx) error {
		v := tx.Bucket(bTriggers).Get([]byte(name))
		if v == nil {
			return trigger.ErrNotFound
		}
		old, err := decodeTrigger(v)
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

func putTrigger(tx *bolt.Tx, t trigger.Trigger) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bTriggers).Put([]byte(t.Name), b); err != nil {
		return err
	}
	return tx.Bucket(bTriggersNS).Put(nsKey(t.Namespace, t.Name), nil)
}

func decodeTrigger(v []byte) (trigger.Trigger, error) {
	var t trigger.Trigger
	if err := json.Unmarshal(v, &t); err != nil {
		return t, fmt.Errorf("decode stored trigger: %w", err)
	}
	return t, nil
}
