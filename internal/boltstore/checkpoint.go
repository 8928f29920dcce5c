package boltstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/journal"
)

// How the journaled writes reach the bbolt file. A bbolt commit syncs the
// file twice and rewrites every page it touches, so it is worth many
// writes: the checkpointer applies them at once when checkpointOps wait,
// and otherwise checkpointDelay (Options.CheckpointDelay) after the first
// one.
const (
	checkpointOps   = 1024
	checkpointDelay = 100 * time.Millisecond
	// applyBatch bounds the writes of one bbolt transaction (a backlog
	// after the file could not be written for a while, or a replay).
	applyBatch = 8192
)

// keyJournalLSN is the meta key holding the LSN of the last journal record
// applied to the file, and keyJournalID the id of the journal that belongs
// to the file.
var (
	keyJournalLSN = []byte("journal_lsn")
	keyJournalID  = []byte("journal_id")
)

// errClosed: the store is closed.
var errClosed = errors.New("store closed")

// waiter is a journal submission (*journal.Pending).
type waiter interface {
	LSN() uint64
	Wait() error
}

// submitLocked writes o to the journal and queues it to be applied; the
// caller holds s.mu (so that ops are queued in journal order), then waits
// on the answer without it, then calls settleLocked. An op larger than
// maxJournalRecord (a notification with thousands of tasks, a raw body of
// a megabyte for several triggers) is written to the file directly
// instead, when it is waited on.
func (s *Store) submitLocked(o *op) waiter {
	b := o.encode(nil)
	if len(b) > s.maxJournalRecord {
		o.direct = true
		return directWrite{s: s, o: o}
	}
	w := s.submit(b)
	o.lsn = w.LSN()
	s.unapplied = append(s.unapplied, o)
	return w
}

// directWrite is an op too large for the journal: Wait applies everything
// journaled before it, then it, in a bbolt transaction of its own.
type directWrite struct {
	s *Store
	o *op
}

func (directWrite) LSN() uint64 { return 0 }

func (d directWrite) Wait() error {
	if err := d.s.flush(context.Background()); err != nil {
		return err
	}
	return d.s.db.Update(d.o.apply)
}

// settleLocked records the outcome of o's journal write: durable, the
// checkpointer is told; failed, o is taken out of the queue (the
// checkpointer applies only ops at or below the journal's durable LSN, and
// after a failed write that never passes a failed op).
func (s *Store) settleLocked(o *op, err error) {
	if o.direct {
		return
	}
	if err == nil {
		select {
		case s.wake <- struct{}{}:
		default: // it has a wake-up to come already
		}
		return
	}
	if i := slices.Index(s.unapplied, o); i >= 0 {
		s.unapplied = slices.Delete(s.unapplied, i, i+1)
	}
}

// inFileLocked reports whether the write of o is in the file already
// (applied by the checkpointer, or written directly): memory need not keep
// its payload.
func (s *Store) inFileLocked(o *op) bool { return o.direct || o.lsn <= s.applied }

// checkpoints is the checkpointer: it applies the durable journaled writes
// to the file when woken, and stops after a last apply when the store
// closes.
func (s *Store) checkpoints() {
	defer close(s.stopped)
	var timer <-chan time.Time
	for {
		select {
		case <-s.closing:
			// What cannot be applied now is replayed at the next Open.
			s.closeErr = s.applyDurable()
			return
		case <-s.wake:
			if s.waiting() >= checkpointOps {
				s.applyDurable()
				timer = nil
			}
		case <-timer:
			timer = nil
			s.applyDurable()
		case reply := <-s.flushes:
			reply <- s.applyDurable()
			timer = nil
		}
		// What is left (not durable yet, or the file failed) goes later.
		if timer == nil && s.waiting() > 0 {
			timer = time.After(s.checkpointDelay)
		}
	}
}

// waiting is how many journaled writes wait to be applied.
func (s *Store) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.unapplied)
}

// flush applies every durable journaled write to the file before
// returning: the reads and rare writes that go to the file directly call
// it first.
func (s *Store) flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case s.flushes <- reply:
	case <-s.stopped:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// applyDurable applies every queued op the journal holds durably and
// releases the journal up to them. Only the checkpointer calls it. A
// failure is kept for Ping and tried again at the next checkpoint.
func (s *Store) applyDurable() error {
	before := s.appliedLSN()
	err := s.applyJournaled()
	if last := s.appliedLSN(); last > before {
		err = errors.Join(err, s.journal.Release(last))
	}
	return err
}

func (s *Store) appliedLSN() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

// applyJournaled applies the ops at the head of the queue whose journal
// records are durable — a caller may have returned for a later one, so the
// journal's durable LSN decides, not the callers — applyBatch per
// transaction.
func (s *Store) applyJournaled() error {
	for {
		durable := s.journal.Durable()
		s.mu.Lock()
		n := 0
		for n < len(s.unapplied) && n < applyBatch && s.unapplied[n].lsn <= durable {
			n++
		}
		ops := slices.Clone(s.unapplied[:n])
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		last := ops[n-1].lsn
		err := s.db.Update(func(tx *bolt.Tx) error { return applyOps(tx, ops, last) })
		s.mu.Lock()
		if err != nil {
			s.checkpointErr = fmt.Errorf("apply the journal to %s: %w", s.path, err)
			err = s.checkpointErr
			s.mu.Unlock()
			return err
		}
		s.checkpointErr = nil
		s.unapplied = slices.Delete(s.unapplied, 0, n)
		s.applied = last
		s.forgetPayloadsLocked(ops, last)
		s.mu.Unlock()
	}
}

// applyOps applies ops in tx and notes the last LSN applied.
func applyOps(tx *bolt.Tx, ops []*op, last uint64) error {
	for _, o := range ops {
		if err := o.apply(tx); err != nil {
			return fmt.Errorf("journal record %d: %w", o.lsn, err)
		}
	}
	return tx.Bucket(bMeta).Put(keyJournalLSN, u64(last))
}

// forgetPayloadsLocked drops the payloads memory kept for tasks whose
// payload is now in the file (and was not replaced since).
func (s *Store) forgetPayloadsLocked(ops []*op, last uint64) {
	forget := func(k taskKey) {
		if e := s.queue.ByKey[k]; e != nil && e.X.lsn <= last {
			e.X.payload = nil
		}
	}
	for _, o := range ops {
		switch o.kind {
		case opEnqueue:
			for _, t := range o.tasks {
				forget(t.key)
			}
		case opReschedule:
			forget(o.task)
		}
	}
}

// openJournal opens the journal that belongs to the file, replays into
// the file what the file does not have yet, and releases it.
func (s *Store) openJournal(segmentSize int64) error {
	var id journal.ID
	var applied uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if v := meta.Get(keyJournalID); len(v) == len(id) {
			copy(id[:], v)
		} else {
			id = newJournalID()
			if err := meta.Put(keyJournalID, id[:]); err != nil {
				return err
			}
		}
		if v := meta.Get(keyJournalLSN); len(v) == 8 {
			applied = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the journal's id: %w", err)
	}
	j, err := journal.Open(s.path+"-journal", id, journal.Options{SegmentSize: segmentSize, Applied: applied})
	if err != nil {
		return err
	}
	s.journal = j
	s.applied = applied
	err = j.Replay(applied, func(lsn uint64, data []byte) error {
		o, err := decodeOp(data)
		if err != nil {
			return fmt.Errorf("journal record %d: %w", lsn, err)
		}
		o.lsn = lsn
		s.unapplied = append(s.unapplied, o)
		if len(s.unapplied) == applyBatch {
			return s.applyJournaled()
		}
		return nil
	})
	if err == nil {
		err = s.applyJournaled()
	}
	if err == nil {
		err = j.Release(max(applied, j.Last()))
	}
	if err != nil {
		j.Close()
		return fmt.Errorf("replay the journal: %w", err)
	}
	return nil
}

// newJournalID is a random journal id.
func newJournalID() journal.ID {
	var id journal.ID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails
	return id
}
