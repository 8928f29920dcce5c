package boltstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Item is one queued message with an opaque payload.
type Item struct {
	ID       string    `json:"id"`
	Payload  []byte    `json:"payload"`
	Due      time.Time `json:"due"`
	Receives int       `json:"receives"`
	// Leased is true while a worker holds the item (until Due).
	Leased bool `json:"leased,omitempty"`
}

// Errors of the queue.
var (
	// ErrNoItem: no queued (or archived) item has that id.
	ErrNoItem = errors.New("no such queue item")
	// ErrQueued: the item is still in the queue.
	ErrQueued = errors.New("item is still queued")
)

// Enqueue stores items atomically; an id already queued is skipped.
func (s *Store) Enqueue(ctx context.Context, items []Item) error {
	return s.update(ctx, "enqueue", func(tx *bolt.Tx) error {
		for _, it := range items {
			if it.ID == "" {
				return errors.New("queue item without an id")
			}
			if tx.Bucket(bQueue).Get([]byte(it.ID)) != nil {
				continue
			}
			if it.Due.IsZero() {
				it.Due = s.now()
			}
			if err := putItem(tx, it); err != nil {
				return err
			}
		}
		return nil
	})
}

// Lease returns up to max due items in due order and hides them until
// now+leaseFor, counting the receive.
func (s *Store) Lease(ctx context.Context, max int, leaseFor time.Duration) ([]Item, error) {
	var out []Item
	now := s.now()
	err := s.update(ctx, "lease queue items", func(tx *bolt.Tx) error {
		c := tx.Bucket(bQueueDue).Cursor()
		var keys [][]byte
		for k, _ := c.First(); k != nil && len(keys) < max; k, _ = c.Next() {
			if fromNanos(k[:8]).After(now) {
				break
			}
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			it, err := getItem(tx, string(k[8:]))
			if err != nil {
				return err
			}
			if err := tx.Bucket(bQueueDue).Delete(k); err != nil {
				return err
			}
			it.Due, it.Leased = now.Add(leaseFor), true
			it.Receives++
			if err := putItem(tx, it); err != nil {
				return err
			}
			out = append(out, it)
		}
		return nil
	})
	return out, err
}

// Ack removes an item for good; with keep, it is archived for redelivery
// until the retention ends.
func (s *Store) Ack(ctx context.Context, id string, keep bool) error {
	return s.update(ctx, "ack "+id, func(tx *bolt.Tx) error {
		it, err := removeItem(tx, id)
		if err != nil || !keep {
			return err
		}
		now := s.now()
		if err := tx.Bucket(bArchive).Put([]byte(id), it.Payload); err != nil {
			return err
		}
		return tx.Bucket(bArchiveTime).Put(join(nanos(now), []byte(id)), nil)
	})
}

// Reschedule replaces an item's payload and makes it due at due.
func (s *Store) Reschedule(ctx context.Context, id string, payload []byte, due time.Time) error {
	return s.update(ctx, "reschedule "+id, func(tx *bolt.Tx) error {
		it, err := removeItem(tx, id)
		if err != nil {
			return err
		}
		it.Payload, it.Due, it.Leased = payload, due, false
		return putItem(tx, it)
	})
}

// DeadLetter moves an item aside with the reason, for people to look at.
func (s *Store) DeadLetter(ctx context.Context, id string, reason error) error {
	return s.update(ctx, "dead-letter "+id, func(tx *bolt.Tx) error {
		it, err := removeItem(tx, id)
		if err != nil {
			return err
		}
		b, err := json.Marshal(struct {
			Item   Item      `json:"item"`
			Reason string    `json:"reason"`
			At     time.Time `json:"at"`
		}{it, reason.Error(), s.now().UTC()})
		if err != nil {
			return err
		}
		return tx.Bucket(bDead).Put([]byte(id), b)
	})
}

// DeadLetters counts the items set aside.
func (s *Store) DeadLetters(ctx context.Context) (int, error) {
	n := 0
	err := s.view(ctx, "count dead letters", func(tx *bolt.Tx) error {
		n = tx.Bucket(bDead).Stats().KeyN
		return nil
	})
	return n, err
}

// NextDue reports when the earliest item becomes due.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var due time.Time
	ok := false
	err := s.view(ctx, "next due", func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bQueueDue).Cursor().First(); k != nil {
			due, ok = fromNanos(k[:8]), true
		}
		return nil
	})
	return due, ok, err
}

// Len is the number of queued items, leased or not.
func (s *Store) Len(ctx context.Context) (int, error) {
	n := 0
	err := s.view(ctx, "queue length", func(tx *bolt.Tx) error {
		n = tx.Bucket(bQueue).Stats().KeyN
		return nil
	})
	return n, err
}

// Archived returns the payload of a finished item kept for redelivery.
// ErrQueued if it is still queued, ErrNoItem if it is not kept.
func (s *Store) Archived(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	err := s.view(ctx, "find task "+id, func(tx *bolt.Tx) error {
		if tx.Bucket(bQueue).Get([]byte(id)) != nil {
			return ErrQueued
		}
		v := tx.Bucket(bArchive).Get([]byte(id))
		if v == nil {
			return ErrNoItem
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// Requeue moves an archived item back to the queue with a new payload.
func (s *Store) Requeue(ctx context.Context, id string, payload []byte) error {
	return s.update(ctx, "requeue "+id, func(tx *bolt.Tx) error {
		if tx.Bucket(bQueue).Get([]byte(id)) != nil {
			return ErrQueued
		}
		if tx.Bucket(bArchive).Get([]byte(id)) == nil {
			return ErrNoItem
		}
		if err := tx.Bucket(bArchive).Delete([]byte(id)); err != nil {
			return err
		}
		c := tx.Bucket(bArchiveTime).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if string(k[8:]) == id {
				if err := c.Delete(); err != nil {
					return err
				}
				break
			}
		}
		return putItem(tx, Item{ID: id, Payload: payload, Due: s.now()})
	})
}

func putItem(tx *bolt.Tx, it Item) error {
	b, err := json.Marshal(it)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bQueue).Put([]byte(it.ID), b); err != nil {
		return err
	}
	return tx.Bucket(bQueueDue).Put(join(nanos(it.Due), []byte(it.ID)), nil)
}

func getItem(tx *bolt.Tx, id string) (Item, error) {
	v := tx.Bucket(bQueue).Get([]byte(id))
	if v == nil {
		return Item{}, fmt.Errorf("%w: %s", ErrNoItem, id)
	}
	var it Item
	if err := json.Unmarshal(v, &it); err != nil {
		return Item{}, fmt.Errorf("decode queue item %s: %w", id, err)
	}
	return it, nil
}

// removeItem deletes an item and its due entry, returning it.
func removeItem(tx *bolt.Tx, id string) (Item, error) {
	it, err := getItem(tx, id)
	if err != nil {
		return it, err
	}
	if err := tx.Bucket(bQueueDue).Delete(join(nanos(it.Due), []byte(id))); err != nil {
		return it, err
	}
	return it, tx.Bucket(bQueue).Delete([]byte(id))
}

// releaseLeases makes every leased item due at now.
func releaseLeases(tx *bolt.Tx, now time.Time) error {
	var leased []Item
	err := tx.Bucket(bQueue).ForEach(func(_, v []byte) error {
		var it Item
		if err := json.Unmarshal(v, &it); err != nil {
			return nil // kept as is; Lease will dead-letter it through the adapter
		}
		if it.Leased {
			leased = append(leased, it)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, it := range leased {
		if _, err := removeItem(tx, it.ID); err != nil {
			return err
		}
		it.Due, it.Leased = now, false
		if err := putItem(tx, it); err != nil {
			return err
		}
	}
	return nil
}
