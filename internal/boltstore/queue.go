package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/localqueue"
	"github.com/regtrigger/regtrigger/internal/record"
)

// The queue's items and errors are localqueue's, shared by the embedded
// stores.
type (
	Item    = localqueue.Item
	Claimed = localqueue.Claimed
)

// Errors of the queue.
var (
	ErrNoItem   = localqueue.ErrNoItem
	ErrQueued   = localqueue.ErrQueued
	ErrSettling = localqueue.ErrSettling
)

// Enqueue stores items atomically (all or none). An item whose ID is
// already queued is skipped, not an error; a zero Due means now.
func (s *Store) Enqueue(ctx context.Context, items []Item) error {
	_, err := s.claimEnqueue(ctx, "enqueue", []Claimed{{Items: items}})
	return err
}

// ClaimEnqueue claims each entry's key as Claim does and enqueues the items
// of the entries whose key was new as Enqueue does, in one write:
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
	o := &op{kind: opEnqueue}

	// Decide in memory, and reserve: keys as claimed, ids as queued.
	s.mu.Lock()
	for i, c := range entries {
		fresh[i] = true
		if c.Key != "" {
			k, ok := s.claims.Claim(c.Key, now, c.TTL)
			if fresh[i] = ok; !ok {
				continue
			}
			o.claims = append(o.claims, k)
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
			o.tasks = append(o.tasks, taskWrite{key: s.nextKeyLocked(now), due: due, id: it.ID, payload: it.Payload, value: it.Value})
		}
	}
	if len(o.claims) == 0 && len(o.tasks) == 0 {
		s.mu.Unlock()
		return fresh, nil
	}
	w := s.submitLocked(o)
	s.mu.Unlock()

	err := w.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked(o, err)
	for _, t := range o.tasks {
		delete(s.queue.Reserved, t.id)
		if err == nil {
			e := &entry{ID: t.id, Key: t.key, Stored: t.due, Due: t.due, X: unapplied{lsn: o.lsn}}
			if !s.inFileLocked(o) {
				e.X.payload = t.payload // until the checkpointer writes it
			}
			s.queue.Add(e)
			s.queue.KeepValue(e, t.value)
		}
	}
	if err != nil {
		s.claims.Undo(o.claims)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return fresh, nil
}

// nextKeyLocked takes the next task key.
func (s *Store) nextKeyLocked(now time.Time) taskKey {
	s.seq++
	var k taskKey
	copy(k[:8], nanos(now))
	binary.BigEndian.PutUint64(k[8:], s.seq)
	return k
}

// Lease returns up to max items whose Due is not after now, in due order,
// and hides them until now+leaseFor (like an SQS visibility timeout),
// counting the receive. Leases live in memory only: it writes nothing. A
// payload still in memory is handed out as it is (never changed in place,
// only replaced): do not change it.
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
	inFile := false
	for i, e := range leased {
		out[i] = Item{ID: e.ID, Payload: e.X.payload, Value: e.Value, Due: e.Due, Receives: e.Receives}
		inFile = inFile || e.X.payload == nil
	}
	if !inFile {
		return out, nil
	}
	err := s.view(ctx, what, func(tx *bolt.Tx) error {
		tasks := tx.Bucket(bTasks)
		for i, e := range leased {
			if e.X.payload == nil {
				// A missing payload (a damaged file) leases as empty:
				// the caller cannot decode it and sets it aside.
				out[i].Payload = bytes.Clone(tasks.Get(e.Key[:]))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Finish takes a task off the queue for good (delivered, or failed for
// good) and stores rec, the record of its last attempt, in the same write
// when it is not nil. The payload stays for Requeue (`regtrigger
// redeliver`) until the retention ends. ErrNoItem if id is not queued.
func (s *Store) Finish(ctx context.Context, id string, rec *record.Record) error {
	return s.settle(ctx, "finish "+id, id, rec, func(o *op) { o.kind = opFinish }, func(e *entry) { s.queue.Remove(e) })
}

// Reschedule replaces the payload (and value) of the queued task it.ID and
// makes it due at it.Due (a retry with its new attempt count), storing rec
// in the same write when it is not nil; ErrNoItem if it is not queued.
func (s *Store) Reschedule(ctx context.Context, it Item, rec *record.Record) error {
	return s.settle(ctx, "reschedule "+it.ID, it.ID, rec,
		func(o *op) { o.kind, o.due, o.id, o.payload = opReschedule, it.Due, it.ID, it.Payload },
		func(e *entry) {
			s.queue.SetDue(e, it.Due)
			e.X.payload = it.Payload
			s.queue.KeepValue(e, it.Value)
		})
}

// settle journals the end of a task's lease: the op build makes, with the
// task's key and stored due time and the record; once it is durable, done
// updates the task's entry (under s.mu).
func (s *Store) settle(ctx context.Context, what, id string, rec *record.Record, build func(*op), done func(*entry)) error {
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
	o := &op{task: e.Key, stored: e.Stored, rec: enc}
	build(o)
	w := s.submitLocked(o)
	s.mu.Unlock()

	err = w.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	e.Settling = false
	s.settleLocked(o, err)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if s.queue.ByID[id] == e {
		e.X.lsn = o.lsn
		done(e)
		if s.inFileLocked(o) {
			e.X.payload = nil
		}
	}
	return nil
}

// startSettlingLocked marks the queued task id as being settled (finished,
// rescheduled or dead-lettered) and returns its entry: ErrNoItem if it is
// not queued, ErrSettling if another settlement of it is under way (two
// built from one stored due time would leave two pending entries in the
// file). The caller holds s.mu and clears entry.settling when done.
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
	defer func() {
		s.mu.Lock()
		cur.Settling = false
		s.mu.Unlock()
	}()
	if err := s.flush(ctx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	err = s.update(ctx, what, func(tx *bolt.Tx) error {
		tasks := tx.Bucket(bTasks)
		payload := e.X.payload
		if payload == nil {
			payload = bytes.Clone(tasks.Get(e.Key[:]))
		}
		if err := deadLetter(tx, id, payload, reason, s.now()); err != nil {
			return err
		}
		if err := tx.Bucket(bPending).Delete(pendingKey(e.Stored, e.Key)); err != nil {
			return err
		}
		return tasks.Delete(e.Key[:])
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	if cur := s.queue.ByID[id]; cur != nil && cur.Key == e.Key {
		s.queue.Remove(cur)
	}
	s.mu.Unlock()
	return nil
}

// deadRecord is a dead letter as the dead bucket keeps it.
type deadRecord struct {
	ID      string    `json:"id"`
	Payload []byte    `json:"payload"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// deadLetter writes the dead letter of id.
func deadLetter(tx *bolt.Tx, id string, payload []byte, reason error, now time.Time) error {
	b, err := json.Marshal(deadRecord{id, payload, reason.Error(), now.UTC()})
	if err != nil {
		return err
	}
	return tx.Bucket(bDead).Put([]byte(id), b)
}

// DeadLetters counts the tasks set aside.
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
	if err := s.flush(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var out []byte
	err := s.view(ctx, what, func(tx *bolt.Tx) error {
		_, v := keptTask(tx, id)
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

func (s *Store) isQueued(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.Queued(id)
}

// keptTask finds the payload of a finished task: the records of its
// attempts name its task key, the newest first. It returns nil when no
// record names a kept payload.
func keptTask(tx *bolt.Tx, id string) (taskKey, []byte) {
	tasks := tx.Bucket(bTasks)
	c := tx.Bucket(bRecordsTask).Cursor()
	prefix := []byte(id + "\x00")
	// The first key after the id's range (id 0x01), then back.
	var k, v []byte
	if k, _ = c.Seek(join([]byte(id), []byte{1})); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		if len(v) != len(taskKey{}) {
			continue
		}
		if p := tasks.Get(v); p != nil {
			return taskKey(v), p
		}
	}
	return taskKey{}, nil
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
	e := &entry{ID: id, Key: s.nextKeyLocked(now), Stored: now, Due: now}
	s.mu.Unlock()

	err := s.flush(ctx)
	if err == nil {
		err = s.update(ctx, what, func(tx *bolt.Tx) error {
			if _, old := keptTask(tx, id); old == nil {
				return ErrNoItem
			}
			tasks := tx.Bucket(bTasks)
			if err := tasks.Put(e.Key[:], payload); err != nil {
				return err
			}
			if err := tasks.SetSequence(max(tasks.Sequence(), binary.BigEndian.Uint64(e.Key[8:]))); err != nil {
				return err
			}
			return tx.Bucket(bPending).Put(pendingKey(now, e.Key), []byte(id))
		})
	} else {
		err = fmt.Errorf("%s: %w", what, err)
	}
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
// due before the lease). For `regtrigger tasks list` and cancel: it reads
// the file for payloads the memory does not hold.
func (s *Store) Queued(ctx context.Context) ([]Item, error) {
	const what = "list queued items"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	s.mu.Lock()
	out := make([]Item, 0, len(s.queue.ByID))
	keys := make([]taskKey, 0, len(s.queue.ByID))
	inFile := false
	for _, e := range s.queue.ByID {
		out = append(out, Item{ID: e.ID, Payload: e.X.payload, Value: e.Value, Due: e.Stored, Receives: e.Receives})
		keys = append(keys, e.Key)
		inFile = inFile || e.X.payload == nil
	}
	s.mu.Unlock()
	if !inFile {
		return out, nil
	}
	err := s.view(ctx, what, func(tx *bolt.Tx) error {
		tasks := tx.Bucket(bTasks)
		for i := range out {
			if out[i].Payload == nil {
				out[i].Payload = bytes.Clone(tasks.Get(keys[i][:]))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
