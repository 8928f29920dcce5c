// Package boltstore is regtrigger's embedded store for `regtrigger serve`:
// one bbolt file holds the triggers, the trigger log, the duplicate-
// notification keys and the durable delivery queue, with a write-ahead
// journal beside it (<file>-journal/) that makes the frequent writes cheap.
//
// Store.Triggers is a trigger.Store and Store.Records a record.Store (one
// type cannot be both: the two interfaces each have a List method, with
// different arguments). The Store itself has the duplicate keys (Claim,
// Release), the queue (Enqueue, ClaimEnqueue, Lease, Finish, Reschedule,
// DeadLetter, Requeue, NextDue, Len) and Purge; TaskQueue adapts the queue
// to delivery tasks.
//
// Writes. A bbolt commit syncs the file twice and rewrites every page it
// touches: a millisecond or more for one notification's writes. So the
// writes serve makes per notification and per delivery (ClaimEnqueue,
// Finish, Reschedule, Records.Put) go to the journal (package journal):
// one append and one fdatasync, shared by the writes that arrive together,
// before the method returns. A checkpointer applies them to the bbolt file
// in journal order, many per transaction (checkpoint.go), and releases the
// journal; Open replays what the file did not get before a crash. What a
// write decides (is a duplicate key new, is an id queued) is decided in
// memory when it starts, and undone if its journal write fails. The rare
// writes (Release, DeadLetter, Requeue, Purge) and the reads that need the
// file to be complete (Records.List, Archived) first wait for the
// checkpointer to apply everything the journal holds, then use the file
// directly; so does a write too large for the journal. Trigger writes,
// which nothing journaled touches, go to the file directly.
//
// Durability: every method returns only once its write is durable, in the
// journal or in the file. bbolt's NoSync is never set; the freelist is not
// written at each commit (NoFreelistSync), bbolt rebuilds it at Open by
// scanning the file.
//
// Key design. Every time is big-endian Unix nanoseconds (8 bytes, times
// before 1970 clamped to 0), so byte order is time order and a cursor walks
// time forwards with Next or backwards with Prev. Keys that grow with time
// matter for speed as well as order: bbolt rewrites every page a commit
// touches, so writes whose keys follow the newest ones land on the same few
// pages, where writes keyed by a hash would each dirty a page of their own.
// Of the writes every notification and delivery makes, only records_task is
// keyed by something else (the task id).
//
//	meta            "schema"                -> layout version (decimal)
//	                "journal_id"            -> the id of the journal that belongs to the file
//	                "journal_lsn"           -> the last journal record applied to the file
//	triggers        name                    -> trigger JSON
//	triggers_ns     namespace 0x00 name     -> (empty)   Namespace is one prefix scan
//	records         time seq(8)             -> record JSON; newest first is a reverse
//	                                                    scan; seq (the bucket's sequence)
//	                                                    keeps equal times apart
//	records_trigger trigger 0x00 time seq   -> (empty)   one trigger's records, newest
//	                                                    first, without a full scan
//	records_task    task 0x00 time seq      -> task key of the attempt's task (or empty):
//	                                                    one task's records, and where its
//	                                                    payload is kept for redeliver
//	tasks           time seq(8)             -> task payload, written once when queued
//	                                                    (time: when); kept after the task
//	                                                    finished, for redeliver, until the
//	                                                    retention ends
//	pending         due taskkey             -> task id   the queued tasks in due order
//	dedupe_expiry   expiry hash(16)         -> (empty)   duplicate keys (SHA-256 of the
//	                                                    key, first 16 bytes) until expiry
//	dead            id                      -> undecodable task and the reason
//	coalesce        window key              -> expiry(8) and the key's coalesce windows
//	                                                    (package coalesce; Windows)
//
// The task key (16 bytes: time and a sequence) names a task's payload. A
// task is queued while its pending entry exists; finishing it deletes only
// that entry. Trigger names, namespaces and task ids never contain 0x00,
// so the 0x00 separator keeps "a" and "a.b" apart.
//
// Memory. The queued tasks and the live duplicate keys are also held in
// memory (read from the file at Open): Lease, NextDue, Len and the
// duplicate check answer from memory, without a transaction, and leases
// live only there. The file lock means no other process can hold a lease,
// so a lease needs no write: after a crash every queued task is due at its
// stored time again. A task's payload stays in memory until the file has
// it. The triggers of the namespaces notifications name are cached too.
//
// Schema 1 (regtrigger before the layout above) kept whole queue items,
// leases and a second copy of each finished task; Open converts such a file
// in one transaction (migrate.go), losing no queued task.
//
// bbolt takes an exclusive file lock, so one process owns the file and its
// journal: a second `serve`, or a CLI command while serve runs, gets
// ErrLocked.
package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/journal"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// SchemaVersion is the layout version written in the meta bucket. Open
// refuses a file with a newer one and converts an older one.
const SchemaVersion = 3

var (
	bMeta           = []byte("meta")
	bTriggers       = []byte("triggers")
	bTriggersNS     = []byte("triggers_ns")
	bRecords        = []byte("records")
	bRecordsTrigger = []byte("records_trigger")
	bRecordsTask    = []byte("records_task")
	bTasks          = []byte("tasks")
	bPending        = []byte("pending")
	bDedupe         = []byte("dedupe_expiry")
	bDead           = []byte("dead")
	bCoalesce       = []byte("coalesce")
	allBuckets      = [][]byte{bMeta, bTriggers, bTriggersNS, bRecords, bRecordsTrigger, bRecordsTask, bTasks, bPending, bDedupe, bDead, bCoalesce}

	keySchema = []byte("schema")
)

// Errors of Open.
var (
	// ErrLocked: another process (or another Store in this one) holds the file.
	ErrLocked = errors.New("in use by another regtrigger process")
	// ErrMissing: MustExist was set and there is no store file.
	ErrMissing = errors.New("no store file")
)

// Options tune Open.
type Options struct {
	// Retention is how long log records and finished tasks are kept
	// (default record.DefaultRetention).
	Retention time.Duration
	// LockTimeout bounds the wait for the file lock (default 1s).
	LockTimeout time.Duration
	// MustExist refuses to create a new file (for management commands).
	MustExist bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CheckpointDelay is how long the checkpointer lets journaled writes
	// gather before it applies them to the file, unless a thousand wait
	// (default 100 ms). A longer one leaves more to replay after a crash.
	CheckpointDelay time.Duration
	// JournalSegmentSize is the size of the journal's segment files
	// (default DefaultJournalSegmentSize); it bounds the size of one
	// write (a task's payload).
	JournalSegmentSize int64
}

// DefaultJournalSegmentSize is the size of a journal segment: with a
// notification's task and its delivery's record about 1.5 KiB, some five
// thousand notifications. Normally four exist at a time: the one written,
// the one before it until the checkpointer has applied it, and two spares.
const DefaultJournalSegmentSize = 8 << 20

// Store is the embedded store. It is safe for concurrent use.
type Store struct {
	db        *bolt.DB
	path      string
	retention time.Duration
	now       func() time.Time
	journal   *journal.Journal
	// submit writes a journal record (journal.Submit); tests replace it.
	submit func([]byte) waiter
	// maxJournalRecord: larger writes go to the file directly.
	maxJournalRecord int
	checkpointDelay  time.Duration

	// mu guards the memory side of the queue and of the duplicate keys,
	// and the journaled writes not yet applied to the file.
	mu            sync.Mutex
	queue         *schedule
	claims        claims
	seq           uint64 // the last task sequence taken
	unapplied     []*op  // in journal order
	applied       uint64 // the last journal record in the file
	checkpointErr error  // the last checkpoint's failure, until one succeeds

	// The checkpointer's signals.
	wake    chan struct{} // journaled writes became durable
	flushes chan chan error
	closing chan struct{}
	stopped chan struct{}

	// The caches of Triggers.Namespace and Triggers.Get; nsGen counts
	// trigger writes.
	nsMu     sync.Mutex
	nsCache  map[string][]trigger.Trigger
	getCache map[string]trigger.Trigger
	nsGen    uint64

	// health is the delivery policies' state (Health), in memory.
	health delivery.MemHealth

	closeOnce sync.Once
	closeErr  error
}

// Health is the delivery policies' state — each target's circuit and each
// trigger's first failure since its last success — kept in memory, not
// in the file: the file lock means one process delivers from this store,
// so no other needs to see it. A restart forgets it: circuits start
// closed (the next failures open them again) and auto-disable-after
// counts from the first failure after the start.
func (s *Store) Health() *delivery.MemHealth { return &s.health }

// Open opens (or creates) the store file at path, creates the buckets,
// checks the schema version (converting an older file) and reads the queued
// tasks and the live duplicate keys into memory.
func Open(path string, opts Options) (*Store, error) {
	if opts.Retention <= 0 {
		opts.Retention = record.DefaultRetention
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CheckpointDelay <= 0 {
		opts.CheckpointDelay = checkpointDelay
	}
	dir := filepath.Dir(path)
	switch st, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("open store %s: directory %s does not exist (create it, or use another --data file)", path, dir)
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	case !st.IsDir():
		return nil, fmt.Errorf("open store %s: %s is not a directory", path, dir)
	}
	if opts.MustExist {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s: start `regtrigger serve --data %s` once, or pass --data with the right file", ErrMissing, path, path)
		}
	}
	openDB := func() (*bolt.DB, error) {
		db, err := bolt.Open(path, 0o600, &bolt.Options{
			Timeout:        opts.LockTimeout,
			FreelistType:   bolt.FreelistMapType,
			NoFreelistSync: true,
		})
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("database %s is %w (close it or use another --data file)", path, ErrLocked)
		case notBolt(err):
			return nil, fmt.Errorf("open store %s: the file is not a bbolt database (bbolt says: %v); is --data the right file?", path, err)
		case err != nil:
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
		// The file holds the triggers' secrets: only its owner may read
		// it, whatever the umask or an earlier chmod made of it.
		if err := os.Chmod(path, 0o600); err != nil {
			db.Close()
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
		return db, nil
	}
	db, err := openDB()
	if err != nil {
		return nil, err
	}
	s := &Store{
		db: db, path: path, retention: opts.Retention, now: opts.Now, queue: newSchedule(), claims: claims{}, nsCache: map[string][]trigger.Trigger{}, getCache: map[string]trigger.Trigger{},
		wake: make(chan struct{}, 1), flushes: make(chan chan error), closing: make(chan struct{}), stopped: make(chan struct{}),
	}
	s.checkpointDelay = opts.CheckpointDelay
	s.submit = func(b []byte) waiter { return s.journal.Submit(b) }
	if opts.JournalSegmentSize <= 0 {
		opts.JournalSegmentSize = DefaultJournalSegmentSize
	}
	// A segment holds at least eight of the largest journal records.
	s.maxJournalRecord = int(opts.JournalSegmentSize / 8)
	if err := s.init(opts.JournalSegmentSize, openDB); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	go s.checkpoints()
	return s, nil
}

// notBolt reports whether bbolt's Open error means the file is not a
// (readable) bbolt database. bbolt has no sentinel for a file shorter than
// two pages, so that one is told by its text.
func notBolt(err error) bool {
	return errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrVersionMismatch) ||
		errors.Is(err, berrors.ErrChecksum) || (err != nil && strings.HasPrefix(err.Error(), "file size too small"))
}

// init creates the buckets, checks the schema (converting a schema 1
// file), replays the journal (converting a schema 2 file after it, see
// scrub.go), then reads the queue and the live duplicate keys into memory.
func (s *Store) init(segmentSize int64, reopen func() (*bolt.DB, error)) error {
	version := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bMeta)
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", bMeta, err)
		}
		if v := meta.Get(keySchema); v != nil {
			if version, err = strconv.Atoi(string(v)); err != nil {
				return fmt.Errorf("unreadable schema version %q", v)
			}
			if version > SchemaVersion {
				return fmt.Errorf("written by a newer regtrigger (schema %d, this one knows %d): upgrade regtrigger", version, SchemaVersion)
			}
		}
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		switch version {
		case 0: // a new file
			version = SchemaVersion
		case 1:
			if err := migrateV1(tx, s.now()); err != nil {
				return fmt.Errorf("convert the schema 1 file: %w", err)
			}
			version = 2
		}
		return meta.Put(keySchema, []byte(strconv.Itoa(version)))
	})
	if err != nil {
		return err
	}
	if err := s.openJournal(segmentSize); err != nil {
		return err
	}
	if version == 2 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			if _, err := scrubTasks(tx); err != nil {
				return err
			}
			return tx.Bucket(bMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
		})
		if err != nil {
			s.journal.Close()
			return fmt.Errorf("convert the schema 2 file: %w", err)
		}
	}
	switch pending, err := s.scrubPending(); {
	case err != nil:
		s.journal.Close()
		return fmt.Errorf("convert the schema 2 file: %w", err)
	case pending:
		if err := s.finishScrub(reopen); err != nil {
			if s.journal != nil {
				s.journal.Close()
			}
			return fmt.Errorf("convert the schema 2 file: %w", err)
		}
		if err := s.openJournal(segmentSize); err != nil {
			return err
		}
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		s.seq = tx.Bucket(bTasks).Sequence()
		if err := loadSchedule(s.queue, tx); err != nil {
			return fmt.Errorf("read the queue: %w", err)
		}
		if err := loadClaims(tx, s.claims, s.now()); err != nil {
			return fmt.Errorf("read the duplicate keys: %w", err)
		}
		return nil
	})
	if err != nil {
		s.journal.Close()
	}
	return err
}

// Ping reports whether the store can take writes, for health checks: the
// journal has not failed, the last checkpoint did not fail, and the file
// can be read.
func (s *Store) Ping(ctx context.Context) error {
	const op = "read the store"
	if err := s.journal.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	s.mu.Lock()
	err := s.checkpointErr
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.view(ctx, op, func(tx *bolt.Tx) error {
		if tx.Bucket(bMeta).Get(keySchema) == nil {
			return errors.New("no schema version")
		}
		return nil
	})
}

// Close applies what the journal holds to the file and closes both. Calls
// after the first do nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.stopped // the checkpointer's last apply sets closeErr
		s.closeErr = errors.Join(s.closeErr, s.journal.Close(), s.db.Close())
	})
	return s.closeErr
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.path }

// update runs fn in a write transaction, after checking ctx; errors say op.
func (s *Store) update(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.db.Update(fn); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// appending returns the bucket name of tx for writes whose keys follow the
// newest ones (times, sequences): its pages fill up before they split.
// bbolt's default splits them half full, which suits keys that land
// anywhere but leaves an appended bucket with twice the pages to write.
func appending(tx *bolt.Tx, name []byte) *bolt.Bucket {
	b := tx.Bucket(name)
	b.FillPercent = 1.0
	return b
}

// errUnchanged rolls back a write transaction that changed nothing, so
// that bbolt does not commit (and sync) it.
var errUnchanged = errors.New("nothing changed")

// view runs fn in a read transaction, after checking ctx; errors say op.
func (s *Store) view(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.db.View(fn); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// nanos encodes a time for ordering; times before 1970 sort first.
func nanos(t time.Time) []byte {
	n := t.UnixNano()
	if n < 0 {
		n = 0
	}
	return u64(uint64(n))
}

func fromNanos(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)))
}

// join concatenates key parts into a new slice.
func join(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
