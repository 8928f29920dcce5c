package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Item is one queued message with an opaque payload.
type Item struct {
	ID      string
	Payload []byte
	// Due is when the item may be leased; on an item Lease returned, when
	// the lease ends and the item is due again unless acked or rescheduled.
	Due time.Time
	// Receives counts the leases of the item, this one included.
	Receives int
}

// stored is an item's value in the queue bucket. Leased is set while a
// worker holds the item (until Due); Open clears it.
type stored struct {
	Payload  []byte    `json:"payload"`
	Due      time.Time `json:"due"`
	Receives int       `json:"receives"`
	Leased   bool      `json:"leased,omitempty"`
}

// Errors of the queue.
var (
	// ErrNoItem: no queued (or archived) item has that id.
	ErrNoItem = errors.New("no such queue item")
	// ErrQueued: the item is still in the queue.
	ErrQueued = errors.New("item is still queued")
)

// Enqueue stores items atomically (all or none). An item whose ID is
// already queued is skipped, not an error; a zero Due means now.
func (s *Store) Enqueue(ctx context.Context, items []Item) error {
	enc, err := s.encodeItems(items)
	if err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	return s.batch(ctx, "enqueue", func(tx *bolt.Tx) error { return enqueue(tx, enc) })
}

// Claimed is one entry of ClaimEnqueue: a duplicate key and the items it
// guards.
type Claimed struct {
	Key   string // "" claims nothing: the items are enqueued regardless
	TTL   time.Duration
	Items []Item
}

// ClaimEnqueue claims each entry's key as Claim does and enqueues the items
// of the entries whose key was new as Enqueue does, in one transaction:
// on error nothing was claimed or enqueued. fresh[i] reports whether entry
// i's key was new (true for an entry without a key).
func (s *Store) ClaimEnqueue(ctx context.Context, entries []Claimed) ([]bool, error) {
	enc := make([][]encodedItem, len(entries))
	for i, e := range entries {
		var err error
		if enc[i], err = s.encodeItems(e.Items); err != nil {
			return nil, fmt.Errorf("claim and enqueue: %w", err)
		}
	}
	now := s.now()
	fresh := make([]bool, len(entries))
	err := s.batch(ctx, "claim and enqueue", func(tx *bolt.Tx) error {
		// Batch may run this again after a rollback: every answer is
		// decided afresh, in order, so a key given twice is new once.
		for i, e := range entries {
			fresh[i] = true
			if e.Key != "" {
				var err error
				if fresh[i], err = claim(tx, e.Key, now, e.TTL); err != nil {
					return err
				}
			}
			if fresh[i] {
				if err := enqueue(tx, enc[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fresh, nil
}

// encodedItem is an item ready to be written: its queue key and value and
// its due entry, encoded outside the write transaction.
type encodedItem struct {
	id, value, due []byte
}

// encodeItems checks and encodes items for enqueue; a zero Due is now.
func (s *Store) encodeItems(items []Item) ([]encodedItem, error) {
	out := make([]encodedItem, len(items))
	var now time.Time
	for i, it := range items {
		if it.ID == "" {
			return nil, errors.New("queue item without an id")
		}
		if it.Due.IsZero() {
			if now.IsZero() {
				now = s.now()
			}
			it.Due = now
		}
		b, err := json.Marshal(stored{Payload: it.Payload, Due: it.Due, Receives: it.Receives})
		if err != nil {
			return nil, fmt.Errorf("encode queue item %s: %w", it.ID, err)
		}
		out[i] = encodedItem{id: []byte(it.ID), value: b, due: dueKey(it.Due, it.ID)}
	}
	return out, nil
}

// enqueue writes items that are not queued yet (the first of an id given
// twice wins).
func enqueue(tx *bolt.Tx, items []encodedItem) error {
	q, due := tx.Bucket(bQueue), tx.Bucket(bQueueDue)
	for _, it := range items {
		if q.Get(it.id) != nil {
			continue
		}
		if err := q.Put(it.id, it.value); err != nil {
			return err
		}
		if err := due.Put(it.due, nil); err != nil {
			return err
		}
	}
	return nil
}

// Lease returns up to max items whose Due is not after now, in due order,
// and hides them until now+leaseFor (like an SQS visibility timeout),
// counting the receive. An item whose stored value cannot be decoded is
// moved to the dead letters instead of blocking the queue.
//
// It looks in a read transaction first and writes only when an item is
// due, so idle workers polling the queue never commit (nor sync).
func (s *Store) Lease(ctx context.Context, max int, leaseFor time.Duration) ([]Item, error) {
	now := s.now()
	due := false
	err := s.view(ctx, "lease queue items", func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bQueueDue).Cursor().First()
		due = k != nil && !fromNanos(k[:8]).After(now)
		return nil
	})
	if err != nil || !due || max <= 0 {
		return nil, err
	}
	var out []Item
	err = s.batch(ctx, "lease queue items", func(tx *bolt.Tx) error {
		// Batch may run this again after a rollback: start afresh.
		var err error
		out, err = leaseDue(tx, now, max, leaseFor)
		if err == nil && out == nil {
			// Another worker took what the read saw: nothing to commit.
			err = errUnchanged
		}
		return err
	})
	switch {
	case errors.Is(err, errUnchanged):
		return nil, nil
	case err != nil || len(out) == 0:
		return nil, err
	}
	return out, nil
}

// leaseDue takes up to max due items in tx (see Lease). It returns nil when
// it changed nothing.
func leaseDue(tx *bolt.Tx, now time.Time, max int, leaseFor time.Duration) ([]Item, error) {
	due := tx.Bucket(bQueueDue)
	var keys [][]byte
	c := due.Cursor()
	for k, _ := c.First(); k != nil && len(keys) < max && !fromNanos(k[:8]).After(now); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	if len(keys) == 0 {
		return nil, nil
	}
	out := []Item{} // not nil: the due entries below are deleted
	for _, k := range keys {
		id := string(k[8:])
		if err := due.Delete(k); err != nil {
			return nil, err
		}
		v := tx.Bucket(bQueue).Get([]byte(id))
		if v == nil {
			continue // a due entry without its item: dropped
		}
		var st stored
		if err := json.Unmarshal(v, &st); err != nil {
			if err := deadLetter(tx, id, bytes.Clone(v), fmt.Errorf("undecodable queue entry: %w", err), now); err != nil {
				return nil, err
			}
			if err := tx.Bucket(bQueue).Delete([]byte(id)); err != nil {
				return nil, err
			}
			continue
		}
		if !bytes.Equal(nanos(st.Due), k[:8]) {
			continue // a stale due entry: the item's own one is elsewhere
		}
		st.Due, st.Leased = now.Add(leaseFor), true
		st.Receives++
		if err := putItem(tx, id, st); err != nil {
			return nil, err
		}
		out = append(out, Item{ID: id, Payload: st.Payload, Due: st.Due, Receives: st.Receives})
	}
	return out, nil
}

// Ack deletes a leased item (delivered, or failed for good); ErrNoItem if
// it is not queued.
func (s *Store) Ack(ctx context.Context, id string) error {
	return s.batch(ctx, "ack "+id, func(tx *bolt.Tx) error {
		_, err := removeItem(tx, id)
		return err
	})
}

// Archive acks a leased item and keeps its payload for Requeue (`regtrigger
// redeliver`) until the retention ends; ErrNoItem if it is not queued.
func (s *Store) Archive(ctx context.Context, id string) error {
	at := nanos(s.now())
	return s.batch(ctx, "ack "+id, func(tx *bolt.Tx) error {
		st, err := removeItem(tx, id)
		if err != nil {
			return err
		}
		archive, byTime := tx.Bucket(bArchive), tx.Bucket(bArchiveTime)
		if archive.Get([]byte(id)) != nil {
			// Archived before under the same id: forget the older time, so
			// that purging it does not take this payload.
			if err := deleteArchiveTime(byTime, id); err != nil {
				return err
			}
		}
		if err := archive.Put([]byte(id), st.Payload); err != nil {
			return err
		}
		return byTime.Put(join(at, []byte(id)), nil)
	})
}

// Reschedule replaces a leased item's payload and makes it due at due (a
// retry with its new attempt count); ErrNoItem if it is not queued.
func (s *Store) Reschedule(ctx context.Context, id string, payload []byte, due time.Time) error {
	return s.batch(ctx, "reschedule "+id, func(tx *bolt.Tx) error {
		st, err := removeItem(tx, id)
		if err != nil {
			return err
		}
		st.Payload, st.Due, st.Leased = payload, due, false
		return putItem(tx, id, st)
	})
}

// DeadLetter moves a queued item aside with the reason, for people to look
// at; ErrNoItem if it is not queued.
func (s *Store) DeadLetter(ctx context.Context, id string, reason error) error {
	return s.update(ctx, "dead-letter "+id, func(tx *bolt.Tx) error {
		st, err := removeItem(tx, id)
		if err != nil {
			return err
		}
		return deadLetter(tx, id, st.Payload, reason, s.now())
	})
}

// deadLetter writes the dead letter of id.
func deadLetter(tx *bolt.Tx, id string, payload []byte, reason error, now time.Time) error {
	b, err := json.Marshal(struct {
		ID      string    `json:"id"`
		Payload []byte    `json:"payload"`
		Reason  string    `json:"reason"`
		At      time.Time `json:"at"`
	}{id, payload, reason.Error(), now.UTC()})
	if err != nil {
		return err
	}
	return tx.Bucket(bDead).Put([]byte(id), b)
}

// DeadLetters counts the items set aside.
func (s *Store) DeadLetters(ctx context.Context) (int, error) {
	n := 0
	err := s.view(ctx, "count dead letters", func(tx *bolt.Tx) error {
		n = tx.Bucket(bDead).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// NextDue reports when the earliest item becomes due (ok is false when the
// queue is empty), so workers can sleep until then. A leased item is due
// when its lease ends.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var due time.Time
	ok := false
	err := s.view(ctx, "next due", func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bQueueDue).Cursor().First(); k != nil {
			due, ok = fromNanos(k[:8]), true
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, err
	}
	return due, ok, nil
}

// Len is the number of queued items, leased or not.
func (s *Store) Len(ctx context.Context) (int, error) {
	n := 0
	err := s.view(ctx, "queue length", func(tx *bolt.Tx) error {
		n = tx.Bucket(bQueue).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Archived returns the payload of a finished item kept for redelivery:
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
		out = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Requeue moves an archived item back to the queue, due now, with a new
// payload: ErrQueued if it is still queued, ErrNoItem if it is not kept.
func (s *Store) Requeue(ctx context.Context, id string, payload []byte) error {
	return s.update(ctx, "requeue "+id, func(tx *bolt.Tx) error {
		if tx.Bucket(bQueue).Get([]byte(id)) != nil {
			return ErrQueued
		}
		archive := tx.Bucket(bArchive)
		if archive.Get([]byte(id)) == nil {
			return ErrNoItem
		}
		if err := archive.Delete([]byte(id)); err != nil {
			return err
		}
		if err := deleteArchiveTime(tx.Bucket(bArchiveTime), id); err != nil {
			return err
		}
		return putItem(tx, id, stored{Payload: payload, Due: s.now()})
	})
}

// deleteArchiveTime removes the archive_time entries of id. The bucket is
// keyed by time, so this walks it; only redelivery (a person's command)
// gets here.
func deleteArchiveTime(byTime *bolt.Bucket, id string) error {
	var keys [][]byte
	c := byTime.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if string(k[8:]) == id {
			keys = append(keys, bytes.Clone(k))
		}
	}
	for _, k := range keys {
		if err := byTime.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// putItem writes an item and its due entry.
func putItem(tx *bolt.Tx, id string, st stored) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode queue item %s: %w", id, err)
	}
	if err := tx.Bucket(bQueue).Put([]byte(id), b); err != nil {
		return err
	}
	return tx.Bucket(bQueueDue).Put(dueKey(st.Due, id), nil)
}

func dueKey(due time.Time, id string) []byte { return join(nanos(due), []byte(id)) }

// removeItem deletes an item and its due entry, returning it; ErrNoItem if
// it is not queued. (An undecodable item is an error here; Lease moves such
// items to the dead letters before anyone could ack them.)
func removeItem(tx *bolt.Tx, id string) (stored, error) {
	q := tx.Bucket(bQueue)
	v := q.Get([]byte(id))
	if v == nil {
		return stored{}, fmt.Errorf("%w: %s", ErrNoItem, id)
	}
	var st stored
	if err := json.Unmarshal(v, &st); err != nil {
		return stored{}, fmt.Errorf("decode queue item %s: %w", id, err)
	}
	if err := tx.Bucket(bQueueDue).Delete(dueKey(st.Due, id)); err != nil {
		return stored{}, err
	}
	return st, q.Delete([]byte(id))
}

// releaseLeases makes every leased item due at now. Only Open calls it:
// the file lock means no other process holds a lease, so all are stale.
func releaseLeases(tx *bolt.Tx, now time.Time) error {
	ids := map[string]stored{}
	err := tx.Bucket(bQueue).ForEach(func(k, v []byte) error {
		var st stored
		if json.Unmarshal(v, &st) == nil && st.Leased {
			ids[string(k)] = st
		}
		return nil // an undecodable item is left for Lease to dead-letter
	})
	if err != nil {
		return err
	}
	for id, st := range ids {
		if err := tx.Bucket(bQueueDue).Delete(dueKey(st.Due, id)); err != nil {
			return err
		}
		st.Due, st.Leased = now, false
		if err := putItem(tx, id, st); err != nil {
			return err
		}
	}
	return nil
}
