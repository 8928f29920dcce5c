package boltstore

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// txid is the id of the last committed write transaction: it grows by one
// at each commit.
func txid(t *testing.T, s *Store) int {
	t.Helper()
	var id int
	if err := s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// fileSum is the checksum of the store file's bytes.
func fileSum(t *testing.T, s *Store) [32]byte {
	t.Helper()
	b, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// rerunFirst makes the next batched function run twice, as a batch does
// when another function of its transaction fails: first in a transaction
// that is rolled back, then between rounds between() runs (another
// caller's commit), then for real.
func rerunFirst(s *Store, between func()) (runs *int) {
	n := 0
	real := s.runBatch
	s.runBatch = func(fn func(*bolt.Tx) error) error {
		s.runBatch = real
		counted := func(tx *bolt.Tx) error { n++; return fn(tx) }
		errRollback := errors.New("a neighbour failed")
		if err := s.db.Update(func(tx *bolt.Tx) error {
			if err := counted(tx); err != nil {
				return err
			}
			return errRollback
		}); !errors.Is(err, errRollback) {
			return err
		}
		between()
		return real(counted)
	}
	return &n
}

func TestClaimRerunDecidesAfresh(t *testing.T) {
	s := open(t, "", newClock(t0))
	// The first run sees a new key; before the re-run another caller
	// claims it: the re-run must answer "duplicate", not keep "new".
	runs := rerunFirst(s, func() {
		if err := s.db.Update(func(tx *bolt.Tx) error { _, err := claim(tx, "k", t0, time.Hour); return err }); err != nil {
			t.Fatal(err)
		}
	})
	fresh, err := s.Claim(ctx, "k", time.Hour)
	if err != nil || fresh {
		t.Fatalf("re-run claim = %v, %v; want false (claimed in between)", fresh, err)
	}
	if *runs != 2 {
		t.Fatalf("the claim ran %d times, want 2", *runs)
	}
	// The other way round: a duplicate in the first run, released before
	// the re-run, is new.
	rerunFirst(s, func() {
		if err := s.Release(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	})
	if fresh, err := s.Claim(ctx, "k", time.Hour); err != nil || !fresh {
		t.Fatalf("re-run claim after release = %v, %v; want true", fresh, err)
	}
}

func TestClaimEnqueueRerunDecidesAfresh(t *testing.T) {
	s := open(t, "", newClock(t0))
	rerunFirst(s, func() {
		if fresh, err := s.Claim(ctx, "b", time.Hour); err != nil || !fresh {
			t.Fatal(fresh, err)
		}
	})
	fresh, err := s.ClaimEnqueue(ctx, []Claimed{
		{Key: "a", TTL: time.Hour, Items: []Item{{ID: "a1"}}},
		{Key: "b", TTL: time.Hour, Items: []Item{{ID: "b1"}}},
	})
	if err != nil || fmt.Sprint(fresh) != "[true false]" {
		t.Fatalf("fresh %v, %v; want [true false]", fresh, err)
	}
	if got := lease(t, s); got != "a1:" {
		t.Errorf("queued %q, want only a1", got)
	}
}

func TestLeaseRerunStartsAfresh(t *testing.T) {
	s := open(t, "", newClock(t0))
	if err := s.Enqueue(ctx, []Item{{ID: "a", Payload: []byte("1")}, {ID: "b", Payload: []byte("2")}}); err != nil {
		t.Fatal(err)
	}
	// Another worker takes a between the two runs: the re-run returns b
	// alone, not a and b.
	rerunFirst(s, func() {
		if err := s.db.Update(func(tx *bolt.Tx) error { _, err := leaseDue(tx, t0, 1, time.Minute); return err }); err != nil {
			t.Fatal(err)
		}
	})
	if got := lease(t, s); got != "b:2" {
		t.Errorf("lease = %q, want b:2", got)
	}
}

func TestConcurrentClaimsOfOneKeyOneWins(t *testing.T) {
	s := open(t, "", newClock(t0))
	const n = 64
	var wg sync.WaitGroup
	answers := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			if i%8 == 0 {
				// A neighbour that fails makes its transaction run again.
				errs[i] = s.batch(ctx, "fail", func(*bolt.Tx) error { return errors.New("boom") })
				return
			}
			answers[i], errs[i] = s.Claim(ctx, "k", time.Hour)
		})
	}
	wg.Wait()
	won := 0
	for i := range n {
		switch {
		case i%8 == 0:
			if errs[i] == nil || !strings.Contains(errs[i].Error(), "boom") {
				t.Errorf("failing call %d: %v", i, errs[i])
			}
		case errs[i] != nil:
			t.Errorf("claim %d: %v", i, errs[i])
		case answers[i]:
			won++
		}
	}
	if won != 1 {
		t.Errorf("%d claims of one key won, want 1", won)
	}
}

func TestWritesDuringACommitShareTheNext(t *testing.T) {
	s := open(t, "", newClock(t0))
	// Hold the writer, so that every claim below waits for one commit.
	hold, held := make(chan struct{}), make(chan struct{})
	go s.db.Update(func(*bolt.Tx) error { close(held); <-hold; return nil })
	<-held
	before := txid(t, s)
	const n = 50
	var wg sync.WaitGroup
	answers := make([]bool, n)
	for i := range n {
		wg.Go(func() {
			fresh, err := s.Claim(ctx, fmt.Sprint("k", i%10), time.Hour)
			if err != nil {
				t.Error(err)
			}
			answers[i] = fresh
		})
	}
	// One batch may have been taken (it waits for the writer); the
	// others wait for the next.
	for deadline := time.Now().Add(5 * time.Second); ; {
		s.commits.mu.Lock()
		waiting := len(s.commits.pending)
		s.commits.mu.Unlock()
		if waiting >= n-1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	// The holding transaction, then at most two batches.
	if commits := txid(t, s) - before; commits > 3 {
		t.Errorf("%d claims took %d commits, want at most 3", n, commits)
	}
	won := 0
	for _, a := range answers {
		if a {
			won++
		}
	}
	if won != 10 {
		t.Errorf("%d claims of 10 keys won, want 10", won)
	}
}

func TestCommitterFailuresStayWithTheirCaller(t *testing.T) {
	s := open(t, "", newClock(t0))
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			if i == 7 {
				errs[i] = s.batch(ctx, "ack", func(tx *bolt.Tx) error {
					if err := tx.Bucket(bDedupe).Put([]byte("partial"), nil); err != nil {
						return err
					}
					return ErrNoItem
				})
				return
			}
			_, errs[i] = s.Claim(ctx, fmt.Sprint("k", i), time.Hour)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (i == 7) != errors.Is(err, ErrNoItem) || (i != 7 && err != nil) {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if n := keys(t, s, bDedupe); n != 19 {
		t.Errorf("%d keys, want the 19 claims and not the failed call's", n)
	}
	// A panic reaches its own caller.
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "kaboom") {
			t.Errorf("recovered %v", p)
		}
	}()
	_ = s.batch(ctx, "panic", func(*bolt.Tx) error { panic("kaboom") })
	t.Error("no panic")
}

func TestIdleLeaseDoesNotCommit(t *testing.T) {
	c := newClock(t0)
	s := open(t, "", c)
	if err := s.Enqueue(ctx, []Item{{ID: "later", Due: t0.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	id, sum := txid(t, s), fileSum(t, s)
	real := s.runBatch
	writes := 0
	s.runBatch = func(fn func(*bolt.Tx) error) error { writes++; return real(fn) }
	for range 10 {
		if got := lease(t, s); got != "" {
			t.Fatalf("leased %q", got)
		}
		if _, _, err := s.NextDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if txid(t, s) != id || fileSum(t, s) != sum || writes != 0 {
		t.Fatalf("idle leases wrote: tx %d -> %d, file changed %v, %d write transactions", id, txid(t, s), fileSum(t, s) != sum, writes)
	}
	// The read sees an item due, but another worker takes it before the
	// write: that write is rolled back, not committed.
	c.add(time.Hour)
	s.runBatch = func(fn func(*bolt.Tx) error) error {
		s.runBatch = real
		if err := s.db.Update(func(tx *bolt.Tx) error { _, err := leaseDue(tx, c.now(), 1, time.Minute); return err }); err != nil {
			return err
		}
		id = txid(t, s)
		return real(fn)
	}
	if got := lease(t, s); got != "" {
		t.Fatalf("leased %q twice", got)
	}
	if txid(t, s) != id {
		t.Errorf("a lease that found nothing committed (tx %d -> %d)", id, txid(t, s))
	}
}

func TestClaimEnqueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	c := newClock(t0)
	s, err := Open(path, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, []Item{{ID: "queued", Payload: []byte("old")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "dup", time.Hour); err != nil {
		t.Fatal(err)
	}
	fresh, err := s.ClaimEnqueue(ctx, []Claimed{
		{Key: "new", TTL: time.Hour, Items: []Item{{ID: "n1", Payload: []byte("1")}, {ID: "n2", Payload: []byte("2")}}},
		{Key: "dup", TTL: time.Hour, Items: []Item{{ID: "d1", Payload: []byte("x")}}},
		{Key: "new", TTL: time.Hour, Items: []Item{{ID: "again", Payload: []byte("x")}}}, // twice in one call: new once
		{Items: []Item{{ID: "nokey", Payload: []byte("3")}, {ID: "queued", Payload: []byte("new")}}},
		{Key: "empty", TTL: time.Hour},
	})
	if err != nil || fmt.Sprint(fresh) != "[true false false true true]" {
		t.Fatalf("fresh %v, %v", fresh, err)
	}
	// Atomic: an item without an id refuses the whole call.
	if _, err := s.ClaimEnqueue(ctx, []Claimed{{Key: "x", TTL: time.Hour, Items: []Item{{ID: "x1"}}}, {Key: "y", Items: []Item{{ID: ""}}}}); err == nil {
		t.Fatal("an item without an id was accepted")
	}
	// What was answered is on disk.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, c)
	if got := lease(t, s); got != "n1:1 n2:2 nokey:3 queued:old" {
		t.Errorf("queue after reopen: %q", got)
	}
	for key, want := range map[string]bool{"new": false, "dup": false, "empty": false, "x": true} {
		if fresh, err := s.Claim(ctx, key, time.Hour); err != nil || fresh != want {
			t.Errorf("claim %s after reopen = %v, %v; want %v", key, fresh, err, want)
		}
	}
}

func TestTaskQueueClaimEnqueue(t *testing.T) {
	s := open(t, "", newClock(t0))
	q := NewTaskQueue(s)
	wakes := 0
	q.OnEnqueue = func() { wakes++ }
	task := delivery.Task{ID: "tsk_1", Trigger: trigger.Trigger{Name: "t"}}
	fresh, err := q.ClaimEnqueue(ctx, []receiver.Claim{{Key: "k", TTL: time.Hour, Tasks: []delivery.Task{task}}})
	if err != nil || len(fresh) != 1 || !fresh[0] || wakes != 1 {
		t.Fatalf("fresh %v, %v, %d wakes", fresh, err, wakes)
	}
	if fresh, err = q.ClaimEnqueue(ctx, []receiver.Claim{{Key: "k", TTL: time.Hour, Tasks: []delivery.Task{task}}}); err != nil || fresh[0] || wakes != 1 {
		t.Fatalf("duplicate: fresh %v, %v, %d wakes", fresh, err, wakes)
	}
	leased, err := q.Lease(ctx, 10, time.Minute)
	if err != nil || len(leased) != 1 || leased[0].Task.ID != "tsk_1" || leased[0].Err != nil {
		t.Fatalf("leased %+v, %v", leased, err)
	}
	other := open(t, "", newClock(t0))
	if !q.OwnsDedupe(s) || q.OwnsDedupe(other) || q.OwnsDedupe(nil) {
		t.Error("OwnsDedupe must be true for its own store only")
	}
}
