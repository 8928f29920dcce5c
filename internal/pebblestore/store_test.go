package pebblestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/regtrigger/regtrigger/internal/coalesce"
	"github.com/regtrigger/regtrigger/internal/storetest"
)

var ctx = context.Background()

// TestBehaviour runs the embedded stores' behaviour tests on pebblestore.
func TestBehaviour(t *testing.T) { storetest.Run(t, opener) }

// BenchmarkStore runs the embedded stores' benchmarks on pebblestore
// (Pebble does not count its commits: no commits/op).
func BenchmarkStore(b *testing.B) { storetest.Bench(b, opener) }

// opener opens pebblestores for storetest.
func opener(t testing.TB, path string, c *storetest.Clock) *storetest.Opened {
	s := open(t, path, c)
	return &storetest.Opened{
		Store: s, TriggerStore: s.Triggers(), RecordStore: s.Records(),
		TaskQueue: func() *TaskQueue { return NewTaskQueue(s) },
		Count:     func(t testing.TB, k storetest.Kind) int { return count(t, s, kinds[k]) },
		LosePayload: func(t testing.TB, id string) {
			s.mu.Lock()
			e := s.queue.ByID[id]
			s.mu.Unlock()
			if e == nil {
				t.Fatalf("%s is not queued", id)
			}
			if err := s.db.Delete(taskPayloadKey(e.Key), pebble.Sync); err != nil {
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
			s.cache.mu.Lock()
			defer s.cache.mu.Unlock()
			return len(s.cache.ns)
		},
		MaxCached: maxCached,
		Windows:   func() coalesce.Store { return s.Windows() },
	}
}

// kinds maps storetest's kinds of key to the first byte of the keys.
var kinds = map[storetest.Kind]byte{
	"triggers": kTrigger, "triggers_ns": kTriggerNS, "records": kRecord, "records_trigger": kRecTrigger,
	"records_task": kRecTask, "tasks": kTask, "pending": kPending, "dedupe_expiry": kDedupe,
	"coalesce": kWindow,
}

// open opens a store in a new directory (or path) with a one-day
// retention and closes it after the test; c nil is the system's clock.
func open(t testing.TB, path string, c *storetest.Clock) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "s.db")
	}
	opts := Options{Retention: 24 * time.Hour}
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

// count counts the keys of one kind.
func count(t testing.TB, s *Store, kind byte) int {
	t.Helper()
	n := 0
	if err := s.scan(span(kind), false, func(_, _ []byte) (bool, error) { n++; return true, nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOpenLockedFailsQuickly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	s := open(t, path, nil)
	start := time.Now()
	_, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	want := "store " + path + " is in use by another regtrigger process (close it or use another store directory)"
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("waited %v for the lock", d)
	}
	switch pid, ok := LockHolder(path); {
	case runtime.GOOS != "linux":
	case !ok:
		if _, err := os.Stat("/proc/locks"); err == nil {
			t.Error("the holder of an open store is not found")
		}
	case pid != os.Getpid():
		t.Errorf("lock holder %d, want this process %d", pid, os.Getpid())
	}
	s.Close()
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	s2.Close()
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("a bbolt file, say"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		opts Options
		want string
		is   error
	}{
		{"missing parent", filepath.Join(dir, "no", "such", "s"), Options{}, "directory " + filepath.Join(dir, "no", "such") + " does not exist", nil},
		{"parent is a file", filepath.Join(file, "s"), Options{}, "is not a directory", nil},
		{"path is a file", file, Options{}, "not a directory (a bbolt file? use bolt://", nil},
		{"must exist", filepath.Join(dir, "new"), Options{MustExist: true}, "no store directory", ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("MustExist created the directory: %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	s := open(t, path, nil)
	if err := s.db.Set(keySchema, []byte("2"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "newer regtrigger (schema 2") {
		t.Fatalf("open: %v", err)
	}
	// The refusal released the directory.
	if _, err := Open(path, Options{LockTimeout: 100 * time.Millisecond}); err == nil || errors.Is(err, ErrLocked) {
		t.Fatalf("reopen: %v, want the schema refusal again", err)
	}
}

// TestFilesArePrivate: the directory holds the triggers' secrets; nothing
// in it may be readable by others, whatever the umask.
func TestFilesArePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	s := open(t, path, nil)
	if _, err := s.Triggers().Create(ctx, storetest.Trigger("a", "ns")); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil { // an sstable too
		t.Fatal(err)
	}
	err := filepath.Walk(path, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", p, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
