package pebblestore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/regtrigger/regtrigger/internal/localqueue"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/record"
)

// The queue's items and errors are localqueue's, shared by the embedded
// stores.
type (
	Item      = localqueue.Item
	Claimed   = localqueue.Claimed
	TaskQueue = localqueue.TaskQueue
	Queued    = localqueue.Queued
)

// Errors of the queue.
var (
	ErrNoItem   = localqueue.ErrNoItem
	ErrQueued   = localqueue.ErrQueued
	ErrSettling = localqueue.ErrSettling
)

var (
	_ localqueue.Store = (*Store)(nil)
	_ receiver.Dedupe  = (*Store)(nil)
)

// NewTaskQueue returns the task queue of s: a delivery's record is written
// with its settlement, in one synced batch.
func NewTaskQueue(s *Store) *TaskQueue { return localqueue.NewTaskQueue(s, s.now) }

// pendingKey is a task's pending entry: due, then task key.
func pendingKey(due time.Time, k taskKey) []byte { return key(kPending, due, k) }

func taskPayloadKey(k taskKey) []byte { return key(kTask, k) }

// Enqueue stores items atomically (all or none). An item whose ID is
// already queued is skipped, not an error; a zero Due means now.
func (s *Store) Enqueue(ctx context.Context, items []Item) error {
	_, err := s.claimEnqueue(ctx, "enqueue", []Claimed{{Items: items}})
	return err
}

// ClaimEnqueue claims each entry's key as Claim does and enqueues the items
// of the entries whose key was new as Enqueue does, in one synced batch:
// on error nothing was claimed or enqueued. fresh[i] reports whether entry
// i's key was new (true for an entry without a key).
//
// Whether a key is new is decided in memory when the call starts: of two
// concurrent calls with one key, the second is told it is a duplicate even
// if the first one's commit then fails (the first caller gets the error,
// and the registry retries that notification).
func (s *Store) ClaimEnqueue(ctx context.Context, entries []Claimed) ([]bool, error) {
	return s.claimEnqueue(ctx, "claim and enqueue", entries)
}

// newTask is a task of a claimEnqueue, written and then queued in memory.
type newTask struct {
	e     *entry
	value any
}

func (s *Store) claimEnqueue(ctx context.Context, what string, entries []Claimed) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	for _, c := range entries {
		for _, it := range c.Items {
			if err := localqueue.CheckKeyPart("queue item id", it.ID); err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
		}
	}
	now := s.now()
	fresh := make([]bool, len(entries))
	b := s.db.NewBatch()
	defer b.Close()
	var (
		keys  []claimed
		tasks []newTask
		err   error
	)
	// Decide in memory, and reserve: keys as claimed, ids as queued.
	s.mu.Lock()
	for i, c := range entries {
		fresh[i] = true
		if c.Key != "" {
			k, ok := s.claims.Claim(c.Key, now, c.TTL)
			if fresh[i] = ok; !ok {
				continue
			}
			keys = append(keys, k)
			err = errors.Join(err, b.Set(expiryKey(k.Expiry, k.Hash), nil, nil))
		}
		for _, it := range c.Items {
			if s.queue.Queued(it.ID) {
				continue
			}
			s.queue.Reserved[it.ID] = true
			due := it.Due
			if due.IsZero() {
				due = now
			}
			e := &entry{ID: it.ID, Key: s.nextKey(now), Stored: due, Due: due}
			tasks = append(tasks, newTask{e, it.Value})
			err = errors.Join(err, b.Set(taskPayloadKey(e.Key), it.Payload, nil), b.Set(pendingKey(due, e.Key), []byte(it.ID), nil))
		}
	}
	s.mu.Unlock()
	if err == nil && !b.Empty() {
		err = b.Commit(pebble.Sync)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tasks {
		delete(s.queue.Reserved, t.e.ID)
		if err == nil {
			s.queue.Add(t.e)
			s.queue.KeepValue(t.e, t.value)
		}
	}
	if err != nil {
		s.claims.Undo(keys)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return fresh, nil
}

// nextKey takes the next task key.
func (s *Store) nextKey(now time.Time) taskKey {
	var k taskKey
	copy(k[:8], nanos(now))
	binary.BigEndian.PutUint64(k[8:], s.seq.Add(1))
	return k
}

// Lease returns up to max items whose Due is not after now, in due order,
// and hides them until now+leaseFor (like an SQS visibility timeout),
// counting the receive. Leases live in memory only: it writes nothing.
func (s *Store) Lease(ctx context.Context, max int, leaseFor time.Duration) ([]Item, error) {
	const what = "lease queue items"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if max <= 0 {
		return nil, nil
	}
	if leaseFor <= 0 {
		return nil, fmt.Errorf("%s: the lease must last (got %v)", what, leaseFor)
	}
	s.mu.Lock()
	leased := s.queue.Lease(s.now(), max, leaseFor)
	s.mu.Unlock()
	out := make([]Item, len(leased))
	for i, e := range leased {
		p, err := s.payload(e.Key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out[i] = Item{ID: e.ID, Payload: p, Value: e.Value, Due: e.Due, Receives: e.Receives}
	}
	return out, nil
}

// payload reads a task's payload; a missing one (a damaged store) reads
// as empty: the leaser cannot decode it and sets it aside.
func (s *Store) payload(k taskKey) ([]byte, error) {
	p, err := s.get(taskPayloadKey(k))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	return p, err
}

// Finish takes a task off the queue for good (delivered, or failed for
// good) and stores rec, the record of its last attempt, in the same batch
// when it is not nil. The payload stays for Requeue (`regtrigger
// redeliver`) until the retention ends. ErrNoItem if id is not queued.
func (s *Store) Finish(ctx context.Context, id string, rec *record.Record) error {
	return s.settle(ctx, "finish "+id, id, rec,
		func(b *pebble.Batch, e *entry) error { return b.Delete(pendingKey(e.Stored, e.Key), nil) },
		func(e *entry) { s.queue.Remove(e) })
}

// Reschedule replaces the payload (and value) of the queued task it.ID and
// makes it due at it.Due (a retry with its new attempt count), storing rec
// in the same batch when it is not nil; ErrNoItem if it is not queued.
func (s *Store) Reschedule(ctx context.Context, it Item, rec *record.Record) error {
	return s.settle(ctx, "reschedule "+it.ID, it.ID, rec,
		func(b *pebble.Batch, e *entry) error {
			return errors.Join(b.Set(taskPayloadKey(e.Key), it.Payload, nil),
				b.Delete(pendingKey(e.Stored, e.Key), nil),
				b.Set(pendingKey(it.Due, e.Key), []byte(it.ID), nil))
		},
		func(e *entry) {
			s.queue.SetDue(e, it.Due)
			s.queue.KeepValue(e, it.Value)
		})
}

// settle commits the end of a task's lease: what fill writes for the
// task's entry, and the record; once it is durable, done updates the entry
// (under s.mu).
func (s *Store) settle(ctx context.Context, what, id string, rec *record.Record, fill func(*pebble.Batch, *entry) error, done func(*entry)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	enc, err := localqueue.EncodeRecord(rec, s.now())
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	s.mu.Lock()
	e, err := s.startSettlingLocked(what, id)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	snapshot := *e
	s.mu.Unlock()

	err = s.commit(ctx, what, func(b *pebble.Batch) error {
		if err := fill(b, &snapshot); err != nil {
			return err
		}
		return s.putRecord(b, enc, snapshot.Key[:])
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	e.Settling = false
	if err != nil {
		return err
	}
	if s.queue.ByID[id] == e {
		done(e)
	}
	return nil
}

// startSettlingLocked marks the queued task id as being settled (finished,
// rescheduled or dead-lettered) and returns its entry: ErrNoItem if it is
// not queued, ErrSettling if another settlement of it is under way (two
// built from one stored due time would leave two pending entries). The
// caller holds s.mu and clears entry.settling when done.
func (s *Store) startSettlingLocked(what, id string) (*entry, error) {
	e := s.queue.ByID[id]
	switch {
	case e == nil:
		return nil, fmt.Errorf("%s: %w: %s", what, ErrNoItem, id)
	case e.Settling:
		return nil, fmt.Errorf("%s: %w", what, ErrSettling)
	}
	e.Settling = true
	return e, nil
}

// DeadLetter moves a queued task aside with the reason, for people to look
// at; ErrNoItem if it is not queued.
func (s *Store) DeadLetter(ctx context.Context, id string, reason error) error {
	what := "dead-letter " + id
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	s.mu.Lock()
	cur, err := s.startSettlingLocked(what, id)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	e := *cur
	s.mu.Unlock()
	err = s.commit(ctx, what, func(b *pebble.Batch) error {
		payload, err := s.payload(e.Key)
		if err != nil {
			return err
		}
		d, err := json.Marshal(deadRecord{id, payload, reason.Error(), s.now().UTC()})
		if err != nil {
			return err
		}
		return errors.Join(b.Set(key(kDead, id), d, nil), b.Delete(pendingKey(e.Stored, e.Key), nil), b.Delete(taskPayloadKey(e.Key), nil))
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	cur.Settling = false
	if err != nil {
		return err
	}
	s.queue.Remove(cur)
	return nil
}

// deadRecord is a dead letter as the 'x' keys keep it (boltstore's layout).
type deadRecord struct {
	ID      string    `json:"id"`
	Payload []byte    `json:"payload"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// DeadLetters counts the tasks set aside.
func (s *Store) DeadLetters(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	n := 0
	err := s.scan(span(kDead), false, func(_, _ []byte) (bool, error) { n++; return true, nil })
	if err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	return n, nil
}

// NextDue reports when the earliest item becomes due (ok is false when the
// queue is empty). A leased item is due when its lease ends.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, fmt.Errorf("next due: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	due, ok := s.queue.Next()
	return due, ok, nil
}

// Len is the number of queued items, leased or not.
func (s *Store) Len(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("queue length: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue.ByID), nil
}

// Archived returns the payload of a finished task kept for redelivery:
// ErrQueued if it is still queued, ErrNoItem if it is not kept.
func (s *Store) Archived(ctx context.Context, id string) ([]byte, error) {
	what := "find task " + id
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if s.isQueued(id) {
		return nil, fmt.Errorf("%s: %w", what, ErrQueued)
	}
	_, p, err := s.keptTask(id)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w", what, err)
	case p == nil:
		return nil, fmt.Errorf("%s: %w", what, ErrNoItem)
	}
	return p, nil
}

func (s *Store) isQueued(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.Queued(id)
}

// keptTask finds the payload of a finished task: the records of its
// attempts name its task key, the newest first. The payload is nil when
// no record names a kept one.
func (s *Store) keptTask(id string) (taskKey, []byte, error) {
	var (
		tk      taskKey
		payload []byte
	)
	err := s.scan(span(kRecTask, id, byte(0)), true, func(_, v []byte) (bool, error) {
		if len(v) != len(taskKey{}) {
			return true, nil
		}
		p, err := s.get(key(kTask, v))
		switch {
		case errors.Is(err, pebble.ErrNotFound):
			return true, nil
		case err != nil:
			return false, err
		}
		tk, payload = taskKey(v), p
		return false, nil
	})
	return tk, payload, err
}

// Requeue queues a finished task again, due now, with a new payload:
// ErrQueued if it is still queued, ErrNoItem if it is not kept.
func (s *Store) Requeue(ctx context.Context, id string, payload []byte) error {
	what := "requeue " + id
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	now := s.now()
	s.mu.Lock()
	if s.queue.Queued(id) {
		s.mu.Unlock()
		return fmt.Errorf("%s: %w", what, ErrQueued)
	}
	s.queue.Reserved[id] = true
	e := &entry{ID: id, Key: s.nextKey(now), Stored: now, Due: now}
	s.mu.Unlock()

	err := s.commit(ctx, what, func(b *pebble.Batch) error {
		switch _, old, err := s.keptTask(id); {
		case err != nil:
			return err
		case old == nil:
			return ErrNoItem
		}
		return errors.Join(b.Set(taskPayloadKey(e.Key), payload, nil), b.Set(pendingKey(now, e.Key), []byte(id), nil))
	})
	s.mu.Lock()
	delete(s.queue.Reserved, id)
	if err == nil {
		s.queue.Add(e)
	}
	s.mu.Unlock()
	return err
}

// Queued returns every queued item, leased or not, in no particular order,
// with its payload and, as Due, when it is due (a leased item: when it was
// due before the lease). For `regtrigger tasks list` and cancel.
func (s *Store) Queued(ctx context.Context) ([]Item, error) {
	const what = "list queued items"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s.mu.Lock()
	out := make([]Item, 0, len(s.queue.ByID))
	keys := make([]taskKey, 0, len(s.queue.ByID))
	for _, e := range s.queue.ByID {
		out = append(out, Item{ID: e.ID, Value: e.Value, Due: e.Stored, Receives: e.Receives})
		keys = append(keys, e.Key)
	}
	s.mu.Unlock()
	for i := range out {
		var err error
		if out[i].Payload, err = s.payload(keys[i]); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	return out, nil
}

// Claim records key until now+ttl and reports whether it was new: true if
// the key was absent or expired, false if it is live (a duplicate
// notification). Purge removes expired keys.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	fresh, err := s.claimEnqueue(ctx, "claim duplicate key", []Claimed{{Key: key, TTL: ttl}})
	if err != nil {
		return false, err
	}
	return fresh[0], nil
}

// Release forgets key, so that the registry's retry of a notification whose
// tasks could not be enqueued is not taken for a duplicate.
func (s *Store) Release(ctx context.Context, key string) error {
	h := hashKey(key)
	s.mu.Lock()
	expiry, ok := s.claims[h]
	s.mu.Unlock()
	if !ok {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("release duplicate key: %w", err)
		}
		return nil
	}
	err := s.commit(ctx, "release duplicate key", func(b *pebble.Batch) error {
		return b.Delete(expiryKey(expiry, h), nil)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.claims[h] == expiry {
		delete(s.claims, h)
	}
	s.mu.Unlock()
	return nil
}
