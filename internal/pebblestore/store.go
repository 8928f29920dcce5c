// Package pebblestore is an embedded store for `regtrigger serve` on
// Pebble (github.com/cockroachdb/pebble/v2): one Pebble database, a
// directory, holds the triggers, the trigger log, the duplicate-
// notification keys and the durable delivery queue. It has the behaviour
// and the API of boltstore, so serve, the CLI and internal/backend use
// either (store URL pebble://DIR).
//
// Store.Triggers is a trigger.Store and Store.Records a record.Store. The
// Store itself has the duplicate keys (Claim, Release), the queue (Enqueue,
// ClaimEnqueue, Lease, Finish, Reschedule, DeadLetter, Requeue, NextDue,
// Len, Queued, Archived) and Purge; NewTaskQueue adapts the queue to
// delivery tasks (localqueue.TaskQueue).
//
// Writes. Every method that writes commits one Pebble batch with
// pebble.Sync before it returns: a notification's duplicate keys and
// tasks (ClaimEnqueue) are one batch, a delivery's settlement and its
// record (Finish, Reschedule) another. Pebble's write-ahead log commits
// concurrent synced batches together (one fdatasync for the group), which
// is what boltstore's own journal did; there is no journal here. What a
// write decides (is a duplicate key new, is an id queued) is decided in
// memory when it starts, and undone if its commit fails.
//
// Key design. One keyspace; the first byte says what a key is. Every time
// is big-endian Unix nanoseconds (8 bytes, times before 1970 clamped to 0),
// so byte order is time order and an iterator walks time forwards or
// backwards. seq is the store's sequence (8 bytes): see Store.seq.
//
//	'm' "schema"                     -> layout version (decimal)
//	't' name                         -> trigger JSON (the only value holding secrets)
//	'n' namespace 0x00 name          -> (empty)      Namespace is one prefix scan
//	'r' time seq                     -> record JSON; newest first is a reverse scan
//	'g' trigger 0x00 time seq        -> (empty)      one trigger's records, newest first
//	'a' task 0x00 time seq           -> task key of the attempt's task (or empty): one
//	                                                 task's records, and where its
//	                                                 payload is kept for redeliver
//	'k' taskkey(16)                  -> task payload (a delivery.Task: a reference to its
//	                                                 trigger, no copy); kept after the task
//	                                                 finished, for redeliver, until the
//	                                                 retention ends
//	'p' due taskkey                  -> task id      the queued tasks in due order
//	'd' expiry hash(16)              -> (empty)      duplicate keys (SHA-256 of the key,
//	                                                 first 16 bytes) until expiry
//	'x' id                           -> undecodable task and the reason
//	'w' window key                   -> expiry(8) and the key's coalesce windows
//	                                                 (package coalesce; Windows)
//
// The task key (16 bytes: when it was queued, and seq) names a task's
// payload. A task is queued while its pending entry exists; finishing it
// deletes only that entry. Trigger names, namespaces and task ids never
// contain 0x00, so the 0x00 separator keeps "a" and "a.b" apart.
//
// Memory. The queued tasks and the live duplicate keys are also held in
// memory (read at Open): Lease, NextDue, Len and the duplicate check answer
// from memory, and leases live only there. The directory lock means no
// other process can hold a lease, so a lease needs no write: after a crash
// every queued task is due at its stored time again. The triggers of the
// namespaces notifications name, and the triggers tasks name, are cached
// too, emptied by every trigger write.
//
// Pebble locks the directory (a POSIX lock on DIR/LOCK), so one process
// owns the store: a second `serve`, or a CLI command while serve runs, gets
// ErrLocked. The directory is made 0700 and every file Pebble creates in
// it 0600: it holds the triggers' secrets.
package pebblestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/filelock"
	"github.com/regtrigger/regtrigger/internal/record"
)

// SchemaVersion is the layout version under 'm' "schema". Open refuses a
// store with a newer one.
const SchemaVersion = 1

// The key kinds (see the package doc).
const (
	kMeta       byte = 'm'
	kTrigger    byte = 't'
	kTriggerNS  byte = 'n'
	kRecord     byte = 'r'
	kRecTrigger byte = 'g'
	kRecTask    byte = 'a'
	kTask       byte = 'k'
	kPending    byte = 'p'
	kDedupe     byte = 'd'
	kDead       byte = 'x'
	kWindow     byte = 'w'
)

var keySchema = key(kMeta, "schema")

// Errors of Open.
var (
	// ErrLocked: another process (or another Store in this one) holds the directory.
	ErrLocked = errors.New("in use by another regtrigger process")
	// ErrMissing: MustExist was set and there is no store.
	ErrMissing = errors.New("no store directory")
)

// Options tune Open.
type Options struct {
	// Retention is how long log records and finished tasks are kept
	// (default record.DefaultRetention).
	Retention time.Duration
	// LockTimeout bounds the wait for the directory lock (default 1s).
	LockTimeout time.Duration
	// MustExist refuses to create a new store (for management commands).
	MustExist bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store is the embedded store. It is safe for concurrent use.
type Store struct {
	db        *pebble.DB
	lock      *pebble.Lock
	dir       string
	retention time.Duration
	now       func() time.Time

	// seq numbers task keys and records: the highest stored at Open, or
	// the clock's nanoseconds then if higher, so that a store whose clock
	// moves forwards never takes one twice.
	seq atomic.Uint64

	// mu guards the memory side of the queue and of the duplicate keys.
	mu     sync.Mutex
	queue  *schedule
	claims claims

	// triggerMu serialises trigger writes (read, compare version, write).
	triggerMu sync.Mutex
	cache     triggerCache

	health delivery.MemHealth

	closeOnce sync.Once
	closeErr  error
	// windowMu makes each coalesce window Update one step (Windows).
	windowMu sync.Mutex
}

// Health is the delivery policies' state, kept in memory as boltstore's
// is: the directory lock means one process delivers from this store.
func (s *Store) Health() *delivery.MemHealth { return &s.health }

// Open opens (or creates) the store in the directory dir, checks the
// schema version and reads the queued tasks and the live duplicate keys
// into memory.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Retention <= 0 {
		opts.Retention = record.DefaultRetention
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	parent := filepath.Dir(dir)
	switch st, err := os.Stat(parent); {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("open store %s: directory %s does not exist (create it, or use another store directory)", dir, parent)
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	case !st.IsDir():
		return nil, fmt.Errorf("open store %s: %s is not a directory", dir, parent)
	}
	switch st, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist) && opts.MustExist:
		return nil, fmt.Errorf("%w at %s: start `regtrigger serve --data %s` once, or pass --data with the right directory", ErrMissing, dir, dir)
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	case !st.IsDir():
		return nil, fmt.Errorf("open store %s: not a directory (a bbolt file? use bolt://%s)", dir, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	// The store holds the triggers' secrets: only its owner may enter the
	// directory, whatever the umask or an earlier chmod made of it.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	lock, err := lockDir(dir, opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	db, err := pebble.Open(dir, &pebble.Options{
		FS:                 privateFS{vfs.Default},
		Lock:               lock,
		Logger:             pebbleLogger{},
		ErrorIfNotExists:   opts.MustExist,
		FormatMajorVersion: pebble.FormatNewest,
	})
	switch {
	case errors.Is(err, pebble.ErrDBDoesNotExist):
		lock.Close()
		return nil, fmt.Errorf("%w at %s: start `regtrigger serve --data %s` once, or pass --data with the right directory", ErrMissing, dir, dir)
	case err != nil:
		lock.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &Store{db: db, lock: lock, dir: dir, retention: opts.Retention, now: opts.Now, queue: newSchedule(), claims: claims{}}
	s.cache.init()
	if err := s.init(); err != nil {
		s.db.Close()
		lock.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	return s, nil
}

// lockDir takes Pebble's directory lock, waiting up to timeout for another
// holder to let go.
func lockDir(dir string, timeout time.Duration) (*pebble.Lock, error) {
	deadline := time.Now().Add(timeout)
	for {
		lock, err := pebble.LockDirectory(dir, vfs.Default)
		switch {
		case err == nil:
			// Pebble creates LOCK (empty) with the umask's mode.
			if err := os.Chmod(filepath.Join(dir, "LOCK"), 0o600); err != nil {
				lock.Close()
				return nil, fmt.Errorf("open store %s: %w", dir, err)
			}
			return lock, nil
		case !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) && err.Error() != "lock held by current process":
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		case time.Now().After(deadline):
			return nil, fmt.Errorf("store %s is %w (close it or use another store directory)", dir, ErrLocked)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LockHolder returns the id of the process that holds the lock of the
// store directory dir, when the system says (filelock.Holder).
func LockHolder(dir string) (pid int, ok bool) { return filelock.Holder(filepath.Join(dir, "LOCK")) }

// init checks the schema, then reads the queue, the live duplicate keys
// and the highest sequence into memory.
func (s *Store) init() error {
	v, err := s.get(keySchema)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set(keySchema, []byte(strconv.Itoa(SchemaVersion)), pebble.Sync); err != nil {
			return fmt.Errorf("write the schema version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read the schema version: %w", err)
	default:
		version, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("unreadable schema version %q", v)
		}
		if version > SchemaVersion {
			return fmt.Errorf("written by a newer regtrigger (schema %d, this one knows %d): upgrade regtrigger", version, SchemaVersion)
		}
	}
	seq := uint64(max(s.now().UnixNano(), 0))
	err = s.scan(span(kPending), false, func(k, v []byte) (bool, error) {
		if len(k) != 25 {
			return false, fmt.Errorf("pending entry %x: %d bytes, want 25", k, len(k))
		}
		e := &entry{ID: string(v), Stored: fromNanos(k[1:9])}
		copy(e.Key[:], k[9:])
		e.Due = e.Stored
		s.queue.Add(e)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("read the queue: %w", err)
	}
	if err := loadClaims(s, s.claims, s.now()); err != nil {
		return fmt.Errorf("read the duplicate keys: %w", err)
	}
	for _, kind := range []byte{kTask, kRecord} {
		err := s.scan(span(kind), true, func(k, _ []byte) (bool, error) {
			if len(k) == 17 {
				seq = max(seq, binary.BigEndian.Uint64(k[9:]))
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("read the last sequence: %w", err)
		}
	}
	s.seq.Store(seq)
	return nil
}

// Ping reports whether the store can be read, for health checks.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("read the store: %w", err)
	}
	if _, err := s.get(keySchema); err != nil {
		return fmt.Errorf("read the store: %w", err)
	}
	return nil
}

// Close closes the database and releases the directory lock. Calls after
// the first do nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.db.Close(), s.lock.Close())
	})
	return s.closeErr
}

// Path is the directory the store lives in.
func (s *Store) Path() string { return s.dir }

// Metrics are Pebble's own figures (files, levels, compactions, memory),
// for the measurements in docs/benchmarks.md.
func (s *Store) Metrics() *pebble.Metrics { return s.db.Metrics() }

// get returns a copy of the value of k, or pebble.ErrNotFound.
func (s *Store) get(k []byte) ([]byte, error) {
	v, closer, err := s.db.Get(k)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	return out, closer.Close()
}

// commit fills a batch and commits it with pebble.Sync (nothing when it
// stays empty), after checking ctx; errors say what.
func (s *Store) commit(ctx context.Context, what string, fill func(b *pebble.Batch) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := fill(b); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// bounds is a key range: lower inclusive, upper exclusive.
type bounds struct{ lower, upper []byte }

// span is the range of the keys starting with the parts.
func span(parts ...any) bounds {
	p := key(parts...)
	return bounds{p, prefixEnd(p)}
}

// prefixEnd is the first key after every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // every key
}

// scan calls fn for each key in r, in order (reverse: newest first), until
// fn returns false. k and v are valid only during the call.
func (s *Store) scan(r bounds, reverse bool, fn func(k, v []byte) (bool, error)) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: r.lower, UpperBound: r.upper})
	if err != nil {
		return err
	}
	valid, step := it.First, it.Next
	if reverse {
		valid, step = it.Last, it.Prev
	}
	for ok := valid(); ok; ok = step() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		more, err := fn(it.Key(), v)
		if err != nil || !more {
			return errors.Join(err, it.Close())
		}
	}
	return it.Close()
}

// key concatenates key parts: a byte (the kind, a separator), a string,
// a []byte, a time (nanos) or a uint64 (8 bytes).
func key(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch v := p.(type) {
		case byte:
			out = append(out, v)
		case string:
			out = append(out, v...)
		case []byte:
			out = append(out, v...)
		case taskKey:
			out = append(out, v[:]...)
		case time.Time:
			out = append(out, nanos(v)...)
		case uint64:
			out = binary.BigEndian.AppendUint64(out, v)
		default:
			panic(fmt.Sprintf("pebblestore: key part %T", p))
		}
	}
	return out
}

// nanos encodes a time for ordering; times before 1970 sort first.
func nanos(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(max(t.UnixNano(), 0)))
}

func fromNanos(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)))
}

// privateFS creates every file and directory for its owner only.
type privateFS struct{ vfs.FS }

func (f privateFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.Create(name, category)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(name, 0o600); err != nil {
		file.Close()
		return nil, err
	}
	return file, nil
}

func (f privateFS) MkdirAll(dir string, _ os.FileMode) error { return f.FS.MkdirAll(dir, 0o700) }

// pebbleLogger passes Pebble's errors to the process log and drops its
// informational lines (every flush and compaction).
type pebbleLogger struct{}

func (pebbleLogger) Infof(string, ...any) {}
func (pebbleLogger) Errorf(format string, args ...any) {
	slog.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (pebbleLogger) Fatalf(format string, args ...any) {
	slog.Error("pebble: " + fmt.Sprintf(format, args...))
	os.Exit(70)
}
