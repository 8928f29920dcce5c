// Package boltstore is regtrigger's embedded store for `regtrigger serve`:
// one bbolt file holds the triggers, the trigger log, the duplicate-
// notification keys and the durable delivery queue.
//
// Key design (all integers big-endian so byte order is time order):
//
//	triggers        name                    -> trigger JSON
//	triggers_ns     namespace 0x00 name     -> (empty)      one prefix scan per namespace
//	records         time(8) seq(8)          -> record JSON  newest first = reverse cursor
//	records_trigger trigger 0x00 time seq   -> (empty)      by trigger, newest first
//	records_task    task 0x00 time seq      -> (empty)      by task id
//	dedupe          key                     -> expiry(8)
//	queue           id                      -> item JSON (payload, due, receives)
//	queue_due       due(8) id               -> (empty)      due order
//	archive         id                      -> finished task JSON, kept for redeliver
//	archive_time    time(8) id              -> (empty)      for purging
//	dead            id                      -> undecodable message and reason
//
// bbolt takes an exclusive file lock, so one process owns the file: a
// second `serve`, or a CLI command while serve runs, gets ErrLocked.
package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/regtrigger/regtrigger/internal/record"
)

// SchemaVersion is the layout version written in the meta bucket.
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
)

// Errors of Open.
var (
	// ErrLocked: another process holds the file.
	ErrLocked = errors.New("store is in use by another process")
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

// Store is the embedded store. It is safe for concurrent use.
type Store struct {
	db        *bolt.DB
	path      string
	retention time.Duration
	now       func() time.Time
}

// Open opens (or creates) the store file at path.
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
	if dir := filepath.Dir(path); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("open store %s: directory %s does not exist", path, dir)
		}
	}
	if _, err := os.Stat(path); err != nil && opts.MustExist {
		return nil, fmt.Errorf("%w at %s: start `regtrigger serve --data %s` once, or pass --data with the right file", ErrMissing, path, path)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, FreelistType: bolt.FreelistMapType})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s is held by another regtrigger process (stop it, or use another --data file)", ErrLocked, path)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return nil, fmt.Errorf("open store %s: not a regtrigger store (bbolt says: %v)", path, err)
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, retention: opts.Retention, now: opts.Now}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
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
		if v := meta.Get([]byte("schema")); v != nil {
			n, _ := strconv.Atoi(string(v))
			if n > SchemaVersion {
				return fmt.Errorf("open store %s: written by a newer regtrigger (schema %d, this one knows %d)", s.path, n, SchemaVersion)
			}
		} else if err := meta.Put([]byte("schema"), []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return err
		}
		return releaseLeases(tx, s.now())
	})
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Path is the file the store lives in.
func (s *Store) Path() string { return s.path }

func (s *Store) update(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.db.Update(fn); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

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

func join(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
