package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/coalesce"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/storetest"
)

// clock is the settable test clock of storetest.
type clock = storetest.Clock

func newClock(at time.Time) *clock { return storetest.NewClock(at) }

var (
	ctx = context.Background()
	t0  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// TestBehaviour runs the embedded stores' behaviour tests on boltstore.
func TestBehaviour(t *testing.T) { storetest.Run(t, opener) }

// opener opens boltstores for storetest.
func opener(t testing.TB, path string, c *clock) *storetest.Opened {
	s := open(t, path, c)
	return &storetest.Opened{
		Store: s, TriggerStore: s.Triggers(), RecordStore: s.Records(),
		TaskQueue: func() *TaskQueue { return NewTaskQueue(s) },
		Count:     func(t testing.TB, k storetest.Kind) int { return keys(t, s, []byte(k)) },
		LosePayload: func(t testing.TB, id string) {
			e, err := s.queuedEntry(id)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.flush(ctx); err != nil { // the payload is in the file, not in memory
				t.Fatal(err)
			}
			if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bTasks).Delete(e.Key[:]) }); err != nil {
				t.Fatal(err)
			}
		},
		Values: func() int {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.queue.Values()
		},
		MaxValues: maxValues,
		CachedNamespaces: func() int {
			s.nsMu.Lock()
			defer s.nsMu.Unlock()
			return len(s.nsCache)
		},
		MaxCached: maxCachedNamespaces,
		Commits:   func(t testing.TB) int { return txid(t, s) },
		Windows:   func() coalesce.Store { return s.Windows() },
	}
}

// open opens a store in a new file (or path) with a one-day retention and
// closes it after the test; c nil is the system's clock.
func open(t testing.TB, path string, c *clock) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "s.db")
	}
	opts := Options{Retention: 24 * time.Hour, JournalSegmentSize: 64 << 10}
	if c != nil {
		opts.Now = c.Now
	}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func lease(t testing.TB, s *Store) string { t.Helper(); return storetest.Lease(t, s) }

func recs(t testing.TB, rs *Records, q record.Query) string {
	t.Helper()
	return storetest.Recs(t, rs, q)
}

// keys counts the keys of a bucket, once the journal is applied.
func keys(t testing.TB, s *Store, bucket []byte) int {
	t.Helper()
	if err := s.flush(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucket).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOpenCreatesBucketsAndSchema(t *testing.T) {
	s := open(t, "", newClock(t0))
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if tx.Bucket(b) == nil {
				t.Errorf("bucket %s missing", b)
			}
		}
		if v := tx.Bucket(bMeta).Get(keySchema); string(v) != "3" {
			t.Errorf("schema = %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenLockedFailsQuickly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path, newClock(t0))
	start := time.Now()
	_, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	want := "database " + path + " is in use by another regtrigger process (close it or use another --data file)"
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("waited %v for the lock", d)
	}
	// After Close the file can be opened again.
	s.Close()
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	s2.Close()
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		path string
		opts Options
		want string
		is   error
	}{
		{"tiny garbage", write("tiny", []byte("hello")), Options{}, "not a bbolt database", nil},
		{"short garbage", write("short", bytes.Repeat([]byte("x"), 5000)), Options{}, "not a bbolt database", nil},
		{"text file", write("text", []byte(strings.Repeat("not a database ", 1000))), Options{}, "not a bbolt database", nil},
		{"zeros", write("zeros", make([]byte, 1<<16)), Options{}, "not a bbolt database", nil},
		{"missing directory", filepath.Join(dir, "no", "such", "s.db"), Options{}, "directory " + filepath.Join(dir, "no", "such") + " does not exist", nil},
		{"parent is a file", filepath.Join(write("file", nil), "s.db"), Options{}, "is not a directory", nil},
		{"path is a directory", dir, Options{}, "is a directory", nil},
		{"must exist", filepath.Join(dir, "new.db"), Options{MustExist: true}, "no store file", ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := os.ReadFile(tt.path)
			s, err := Open(tt.path, tt.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if after, _ := os.ReadFile(tt.path); !bytes.Equal(before, after) {
				t.Error("Open changed the file")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "new.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("MustExist created the file: %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(keySchema, []byte("4")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "newer regtrigger (schema 4") {
		t.Fatalf("open: %v", err)
	}
	// The refusal released the file.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("file still locked: %v", err)
	}
	db.Close()
}

// queuedEntry returns a copy of the entry of id; ErrNoItem if id is not
// queued.
func (s *Store) queuedEntry(id string) (entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.queue.ByID[id]
	if e == nil {
		return entry{}, fmt.Errorf("%w: %s", ErrNoItem, id)
	}
	return *e, nil
}
