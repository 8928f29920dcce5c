package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/record"
)

// clock is a settable test clock.
type clock struct{ t atomic.Int64 }

func newClock(at time.Time) *clock   { c := &clock{}; c.t.Store(at.UnixNano()); return c }
func (c *clock) now() time.Time      { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.t.Add(int64(d)) }

var (
	ctx = context.Background()
	t0  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// open opens a store in a new file (or path) with a one-day retention and
// closes it after the test.
func open(t testing.TB, path string, c *clock) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "s.db")
	}
	s, err := Open(path, Options{Now: c.now, Retention: 24 * time.Hour, JournalSegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// keys counts the keys of a bucket, once the journal is applied.
func keys(t *testing.T, s *Store, bucket []byte) int {
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

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	c := newClock(t0)
	s, err := Open(path, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Triggers().Create(ctx, tr("a", "ns")); err != nil {
		t.Fatal(err)
	}
	if err := s.Records().Put(ctx, record.Record{TaskID: "t1", Trigger: "a", Status: record.Success}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "k", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, c)
	if _, err := s.Triggers().Get(ctx, "a"); err != nil {
		t.Error(err)
	}
	if l, err := s.Triggers().Namespace(ctx, "ns"); err != nil || len(l) != 1 {
		t.Errorf("namespace: %v %v", l, err)
	}
	if recs, err := s.Records().List(ctx, record.Query{Trigger: "a"}); err != nil || len(recs) != 1 {
		t.Errorf("records: %v %v", recs, err)
	}
	if fresh, err := s.Claim(ctx, "k", time.Hour); err != nil || fresh {
		t.Errorf("claim after reopen: %v %v", fresh, err)
	}
}

func TestCanceledContext(t *testing.T) {
	s := open(t, "", newClock(t0))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ts, rs := s.Triggers(), s.Records()
	calls := []struct {
		op string
		fn func() error
	}{
		{"load triggers for ns", func() error { _, err := ts.Namespace(cctx, "ns"); return err }},
		{"get trigger a", func() error { _, err := ts.Get(cctx, "a"); return err }},
		{"list triggers", func() error { _, err := ts.List(cctx); return err }},
		{"create trigger a", func() error { _, err := ts.Create(cctx, tr("a", "ns")); return err }},
		{"update trigger a", func() error { _, err := ts.Update(cctx, tr("a", "ns")); return err }},
		{"delete trigger a", func() error { return ts.Delete(cctx, "a", 0) }},
		{"store record", func() error { return rs.Put(cctx, record.Record{TaskID: "t"}) }},
		{"list records", func() error { _, err := rs.List(cctx, record.Query{}); return err }},
		{"purge records", func() error { _, err := s.Purge(cctx); return err }},
		{"claim duplicate key", func() error { _, err := s.Claim(cctx, "k", time.Minute); return err }},
		{"release duplicate key", func() error { return s.Release(cctx, "k") }},
		{"enqueue", func() error { return s.Enqueue(cctx, []Item{{ID: "x"}}) }},
		{"lease queue items", func() error { _, err := s.Lease(cctx, 1, time.Minute); return err }},
		{"finish x", func() error { return s.Finish(cctx, "x", nil) }},
		{"reschedule x", func() error { return s.Reschedule(cctx, Item{ID: "x", Due: t0}, nil) }},
		{"dead-letter x", func() error { return s.DeadLetter(cctx, "x", errors.New("r")) }},
		{"find task x", func() error { _, err := s.Archived(cctx, "x"); return err }},
		{"requeue x", func() error { return s.Requeue(cctx, "x", nil) }},
		{"read the store", func() error { return s.Ping(cctx) }},
		{"next due", func() error { _, _, err := s.NextDue(cctx); return err }},
		{"queue length", func() error { _, err := s.Len(cctx); return err }},
	}
	for _, c := range calls {
		t.Run(c.op, func(t *testing.T) {
			err := c.fn()
			if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), c.op+": ") {
				t.Errorf("got %v, want %q: context canceled", err, c.op)
			}
		})
	}
	if n := keys(t, s, bTasks) + keys(t, s, bPending) + keys(t, s, bTriggers) + keys(t, s, bRecords) + keys(t, s, bDedupe); n != 0 {
		t.Errorf("a canceled call wrote %d keys", n)
	}
}

// queuedEntry returns a copy of the entry of id; ErrNoItem if id is not
// queued.
func (s *Store) queuedEntry(id string) (entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.queue.byID[id]
	if e == nil {
		return entry{}, fmt.Errorf("%w: %s", ErrNoItem, id)
	}
	return *e, nil
}
