// Package boltstore is regtrigger's embedded store for `regtrigger serve`:
// one bbolt file holds the triggers, the trigger log, the duplicate-
// notification keys and the durable delivery queue.
//
// Store.Triggers is a trigger.Store and Store.Records a record.Store (one
// type cannot be both: the two interfaces each have a List method, with
// different arguments). The Store itself has the duplicate keys (Claim,
// Release), the queue (Enqueue, Lease, Ack, Reschedule, NextDue, Len) and
// Purge; TaskQueue adapts the queue to delivery tasks.
//
// Key design. Every time is big-endian Unix nanoseconds (8 bytes, times
// before 1970 clamped to 0), so byte order is time order and a cursor walks
// time forwards with Next or backwards with Prev:
//
//	meta            "schema"                -> layout version (decimal)
//	triggers        name                    -> trigger JSON
//	triggers_ns     namespace 0x00 name     -> (empty)   Namespace is one prefix scan
//	records         time seq(8)             -> record JSON; newest first is a reverse
//	                                                    scan; seq (the bucket's sequence)
//	                                                    keeps equal times apart
//	records_trigger trigger 0x00 time seq   -> (empty)   one trigger's records, newest
//	                                                    first, without a full scan
//	records_task    task 0x00 time seq      -> (empty)   one task's records
//	dedupe          key                     -> expiry time
//	queue           id                      -> item JSON {payload, due, receives, leased}
//	queue_due       due id                  -> (empty)   due order; Lease walks from First
//	archive         id                      -> payload of a finished task, for redeliver
//	archive_time    time id                 -> (empty)   archive in age order, for Purge
//	dead            id                      -> undecodable item and the reason
//
// Trigger names, namespaces and task ids never contain 0x00, so the 0x00
// separator keeps "a" and "a.b" apart. Index values are empty: an index key
// ends with the record key, which is looked up in records.
//
// Durability: bbolt syncs the file at every commit (twice: the data pages,
// then the meta page), and a method returns only after its commit, so
// whatever it reported done is on disk. NoSync is never set; the freelist
// is not written at each commit (NoFreelistSync), bbolt rebuilds it at Open
// by scanning the file.
//
// Group commit. bbolt has one writer at a time and each commit costs its
// fsyncs, so the writes that many goroutines make at once (Claim, Enqueue,
// ClaimEnqueue, Lease, Ack/Archive, Reschedule, Records.Put) share
// transactions: a write that finds no commit running is committed at once,
// and the writes that arrive while one runs all go into the next (see
// committer; DB.Batch's contract without its timer). Each caller still
// returns only after the commit that holds its write. A function may run
// more than once (when another one of its transaction fails, that
// transaction is rolled back and the rest run again), so those functions
// compute their answers afresh at every run and take effect only through
// the transaction. The rare writes (Release, DeadLetter, Requeue, Purge,
// triggers) keep their own transaction. Reads never write: Lease looks for
// a due item in a read transaction first, and a write transaction that
// changed nothing is rolled back, not committed (bbolt would sync it).
//
// bbolt takes an exclusive file lock, so one process owns the file: a
// second `serve`, or a CLI command while serve runs, gets ErrLocked. The
// same lock is why every lease found at Open is stale.
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
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/regtrigger/regtrigger/internal/record"
)

// SchemaVersion is the layout version written in the meta bucket. Open
// refuses a file with a newer one.
const SchemaVersion = 1

var (
	bMeta           = []byte("meta")
	bTriggers       = []byte("triggers")
	bTriggersNS     = []byte("triggers_ns")
	bRecords        = []byte("records")
	bRecordsTrigger = []byte("records_trigger")
	bRecordsTask    = []byte("records_task")
	bDedupe         = []byte("dedupe")
	bQueue          = []byte("queue")
	bQueueDue       = []byte("queue_due")
	bArchive        = []byte("archive")
	bArchiveTime    = []byte("archive_time")
	bDead           = []byte("dead")
	allBuckets      = [][]byte{bMeta, bTriggers, bTriggersNS, bRecords, bRecordsTrigger, bRecordsTask, bDedupe, bQueue, bQueueDue, bArchive, bArchiveTime, bDead}

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
}

// MaxBatch bounds how many writes share one transaction (as bbolt's
// DB.MaxBatchSize, whose default it is).
const MaxBatch = 1000

// Store is the embedded store. It is safe for concurrent use.
type Store struct {
	db        *bolt.DB
	path      string
	retention time.Duration
	now       func() time.Time
	commits   *committer
	// runBatch is commits.run; tests replace it to re-run functions.
	runBatch func(fn func(*bolt.Tx) error) error
}

// Open opens (or creates) the store file at path, creates the buckets,
// checks the schema version and makes every leased queue item due now.
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
	s := &Store{db: db, path: path, retention: opts.Retention, now: opts.Now}
	s.commits = &committer{db: db, max: MaxBatch}
	s.runBatch = s.commits.run
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// notBolt reports whether bbolt's Open error means the file is not a
// (readable) bbolt database. bbolt has no sentinel for a file shorter than
// two pages, so that one is told by its text.
func notBolt(err error) bool {
	return errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrVersionMismatch) ||
		errors.Is(err, berrors.ErrChecksum) || (err != nil && strings.HasPrefix(err.Error(), "file size too small"))
}

// init creates the buckets, checks the schema and releases stale leases:
// the file lock means no other process can be delivering, so every leased
// item is due again now.
func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		meta := tx.Bucket(bMeta)
		if v := meta.Get(keySchema); v != nil {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return fmt.Errorf("unreadable schema version %q", v)
			}
			if n > SchemaVersion {
				return fmt.Errorf("written by a newer regtrigger (schema %d, this one knows %d): upgrade regtrigger", n, SchemaVersion)
			}
		} else if err := meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
		if err := releaseLeases(tx, s.now()); err != nil {
			return fmt.Errorf("release stale leases: %w", err)
		}
		return nil
	})
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

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

// batch runs fn in a write transaction that concurrent batch calls may
// share (the committer), after checking ctx; errors say op. fn may run more than
// once, each time in a new transaction: it must set every result it
// reports at each run, and change nothing outside the transaction.
func (s *Store) batch(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.runBatch(fn); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
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
