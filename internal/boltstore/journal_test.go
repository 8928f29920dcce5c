package boltstore

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/localqueue"
	"github.com/regtrigger/regtrigger/internal/record"
)

// txid is the id of the last committed write transaction: it grows by one
// at each commit.
func txid(t testing.TB, s *Store) int {
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

// failing is a journal write that fails: the journal's durable LSN never
// reaches it.
type failing struct{}

func (failing) LSN() uint64 { return math.MaxUint64 }

func (failing) Wait() error { return errors.New("disk full") }

func TestFailedJournalWriteUndoesMemory(t *testing.T) {
	s := open(t, "", newClock(t0))
	if fresh, err := s.Claim(ctx, "old", time.Hour); err != nil || !fresh {
		t.Fatal(fresh, err)
	}
	real := s.submit
	s.submit = func([]byte) waiter { return failing{} }
	_, err := s.ClaimEnqueue(ctx, []Claimed{
		{Key: "k", TTL: time.Hour, Items: []Item{{ID: "i1"}}},
		{Key: "old", TTL: time.Hour, Items: []Item{{ID: "i2"}}},
	})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err %v", err)
	}
	if err := s.Records().Put(ctx, record.Record{TaskID: "x"}); err == nil {
		t.Error("a record was stored with a failing journal")
	}
	s.submit = real
	if n, _ := s.Len(ctx); n != 0 {
		t.Errorf("a failed enqueue left %d items queued in memory", n)
	}
	fresh, err := s.ClaimEnqueue(ctx, []Claimed{
		{Key: "k", TTL: time.Hour, Items: []Item{{ID: "i1", Payload: []byte("1")}}},
		{Key: "old", TTL: time.Hour, Items: []Item{{ID: "i2"}}},
	})
	if err != nil || fmt.Sprint(fresh) != "[true false]" {
		t.Fatalf("after the failure: fresh %v, %v; want k new again and old still a duplicate", fresh, err)
	}
	if got := lease(t, s); got != "i1:1" {
		t.Errorf("queued %q", got)
	}
	// The failed writes never reach the file.
	if n := keys(t, s, bRecords); n != 0 {
		t.Errorf("%d records in the file", n)
	}
	s.submit = func([]byte) waiter { return failing{} }
	if err := s.Finish(ctx, "i1", nil); err == nil {
		t.Fatal("finish with a failing journal")
	}
	s.submit = real
	if n, _ := s.Len(ctx); n != 1 {
		t.Errorf("a failed finish took the task off the queue (%d queued)", n)
	}
}

func TestLeaseDoesNotWrite(t *testing.T) {
	c := newClock(t0)
	s := open(t, "", c)
	if err := s.Enqueue(ctx, []Item{{ID: "now"}, {ID: "later", Due: t0.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.flush(ctx); err != nil {
		t.Fatal(err)
	}
	id, sum, lsn := txid(t, s), fileSum(t, s), s.journal.Last()
	if got := lease(t, s); got != "now:" {
		t.Fatalf("leased %q", got)
	}
	for range 10 {
		if got := lease(t, s); got != "" {
			t.Fatalf("leased %q", got)
		}
		if _, _, err := s.NextDue(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Len(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if txid(t, s) != id || fileSum(t, s) != sum || s.journal.Last() != lsn {
		t.Fatalf("leases wrote: tx %d -> %d, file changed %v, journal %d -> %d", id, txid(t, s), fileSum(t, s) != sum, lsn, s.journal.Last())
	}
}

func TestCheckpointAppliesInBatches(t *testing.T) {
	s := open(t, "", newClock(t0))
	before := txid(t, s)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			if _, err := s.ClaimEnqueue(ctx, []Claimed{{Key: fmt.Sprint("k", i), TTL: time.Hour, Items: []Item{{ID: fmt.Sprint(i)}}}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// Applied within checkpointDelay, in few transactions.
	deadline := time.Now().Add(5 * time.Second)
	for s.waiting() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.waiting() > 0 {
		t.Fatal("the writes were not applied within 5 s")
	}
	if commits := txid(t, s) - before; commits > 5 {
		t.Errorf("200 writes took %d commits", commits)
	}
	if n := keys(t, s, bTasks); n != 200 {
		t.Errorf("%d tasks in the file", n)
	}
	// The journal keeps no segment it does not need.
	segs, _ := filepath.Glob(s.path + "-journal/seg-*")
	if len(segs) != 1 {
		t.Errorf("journal segments after the checkpoint: %v", segs)
	}
}

func TestCheckpointFailureShowsInPing(t *testing.T) {
	s := open(t, "", newClock(t0))
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.unapplied = append(s.unapplied, &op{kind: 99, lsn: s.journal.Durable()})
	s.mu.Unlock()
	if err := s.flush(ctx); err == nil || !strings.Contains(err.Error(), "unknown journal operation") {
		t.Fatalf("flush: %v", err)
	}
	if err := s.Ping(ctx); err == nil || !strings.Contains(err.Error(), "apply the journal") {
		t.Errorf("ping after a failed checkpoint: %v", err)
	}
	s.mu.Lock()
	s.unapplied = s.unapplied[1:]
	s.mu.Unlock()
	if err := s.Records().Put(ctx, record.Record{TaskID: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := s.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("ping after a good checkpoint: %v", err)
	}
}

// The crash test runs this test binary again as a child that writes to a
// store and reports each acknowledged write on stdout, then is killed.
const crashEnv = "REGTRIGGER_BOLTSTORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(crashEnv); v != "" {
		mode, path, _ := strings.Cut(v, ":")
		switch mode {
		case "queue":
			crashChild(path)
		case "backlog":
			backlogChild(path)
		case "legacy":
			legacyChild(path)
		}
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// runChild runs this test binary as a child in mode on path.
func runChild(t *testing.T, mode, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+mode+":"+path)
	return cmd
}

// backlogChild: the bbolt file cannot be written for a while (every
// checkpoint fails, as on a full disk) while the journal goes on
// acknowledging; then the process dies without closing the store.
func backlogChild(path string) {
	s, err := Open(path, Options{JournalSegmentSize: 64 << 10})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	s.mu.Lock()
	s.unapplied = append(s.unapplied, &op{kind: 99, lsn: 0}) // refused by apply
	s.mu.Unlock()
	var wg sync.WaitGroup
	for g := range backlogWriters {
		wg.Go(func() {
			for i := range backlogRecords / backlogWriters {
				if err := s.Records().Put(ctx, record.Record{TaskID: fmt.Sprint("t", g, "-", i), Trigger: "a", Status: record.Success}); err != nil {
					fmt.Println("put:", err)
					os.Exit(1)
				}
			}
		})
	}
	wg.Wait()
	fmt.Println("acknowledged")
	os.Exit(0)
}

// More records than one replay transaction holds, over many segments.
const backlogWriters, backlogRecords = 32, applyBatch + 800

func TestReplayOfABacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "s.db")
	out, err := runChild(t, "backlog", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "acknowledged") {
		t.Fatalf("child: %v %s", err, out)
	}
	segs, _ := filepath.Glob(path + "-journal/seg-*")
	if len(segs) < 3 {
		t.Fatalf("%d journal segments after the crash: the test wants a backlog over several", len(segs))
	}
	s := open(t, path, newClock(time.Now()))
	if n := keys(t, s, bRecords); n != backlogRecords {
		t.Errorf("%d records after the replay, want %d", n, backlogRecords)
	}
	if segs, _ := filepath.Glob(path + "-journal/seg-*"); len(segs) != 0 {
		t.Errorf("segments left after the replay: %v", segs)
	}
}

// crashChild queues tasks one at a time, finishing every other one with a
// record, and prints each acknowledged step; it never closes the store.
func crashChild(path string) {
	s, err := Open(path, Options{JournalSegmentSize: 64 << 10})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		id := fmt.Sprint("t", i)
		if _, err := s.ClaimEnqueue(ctx, []Claimed{{Key: "k" + id, TTL: time.Hour, Items: []Item{{ID: id, Payload: []byte("p" + id)}}}}); err != nil {
			fmt.Println("enqueue:", err)
			os.Exit(1)
		}
		fmt.Println("queued", id)
		if i%2 == 0 {
			if err := s.Finish(ctx, id, &record.Record{TaskID: id, Trigger: "a", Status: record.Success}); err != nil {
				fmt.Println("finish:", err)
				os.Exit(1)
			}
			fmt.Println("finished", id)
		}
	}
}

func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := runChild(t, "queue", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it (SIGKILL, as a crash) after a few hundred acknowledged
	// steps, in the middle of its work.
	queued, finished := map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(queued) < 300 {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "queued":
			queued[f[1]] = true
		case len(f) == 2 && f[0] == "finished":
			finished[f[1]] = true
		default:
			t.Fatalf("child: %s", sc.Text())
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if len(queued) < 300 {
		t.Fatalf("the child stopped after %d tasks", len(queued))
	}

	s := open(t, path, newClock(time.Now()))
	recs, err := s.Records().List(ctx, record.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, r := range recs {
		recorded[r.TaskID] = true
	}
	for id := range queued {
		// A task finished just before the kill may not have been
		// reported: then it is either still queued or finished with its
		// record, never neither.
		_, err := s.queuedEntry(id)
		switch {
		case finished[id] && err == nil:
			t.Errorf("%s was finished, and is queued again", id)
		case finished[id] && !recorded[id]:
			t.Errorf("%s was finished, and its record is lost", id)
		case err != nil && !recorded[id]:
			t.Errorf("%s was queued, and is lost", id)
		}
	}
	if n, _ := s.Len(ctx); n < len(queued)-len(finished)-1 {
		t.Errorf("%d queued after the crash, want about %d", n, len(queued)-len(finished))
	}
	for key := range queued {
		if fresh, err := s.Claim(ctx, "k"+key, time.Hour); err != nil || fresh {
			t.Errorf("duplicate key of %s lost: %v", key, err)
		}
	}
}

func TestLargeWritesBypassTheJournal(t *testing.T) {
	c := newClock(t0)
	path := filepath.Join(t.TempDir(), "s.db")
	s := open(t, path, c) // 64 KiB segments: writes over 8 KiB go to the file
	big := bytes.Repeat([]byte("x"), 20<<10)
	if err := s.Enqueue(ctx, []Item{{ID: "small", Payload: []byte("s")}}); err != nil {
		t.Fatal(err)
	}
	lsn := s.journal.Last()
	if err := s.Enqueue(ctx, []Item{{ID: "big", Payload: big}}); err != nil {
		t.Fatal(err)
	}
	if s.journal.Last() != lsn {
		t.Error("a 20 KiB write went to the journal")
	}
	// In the file at once, after what was journaled before it.
	var inFile, smallInFile bool
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bTasks).ForEach(func(_, v []byte) error {
			inFile = inFile || bytes.Equal(v, big)
			smallInFile = smallInFile || string(v) == "s"
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if !inFile || !smallInFile {
		t.Errorf("in the file: big %v, the write before it %v", inFile, smallInFile)
	}
	if err := s.Reschedule(ctx, Item{ID: "big", Payload: append(big, 'y'), Due: t0}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path, c)
	items, err := s.Lease(ctx, 10, time.Minute)
	if err != nil || len(items) != 2 || items[1].ID != "big" || len(items[1].Payload) != len(big)+1 {
		t.Fatalf("after reopen: %d items, %v", len(items), err)
	}
}

// gated is a journal write that is durable, but whose caller is slow to
// learn it (a GC pause, a busy CPU).
type gated struct {
	waiter
	gate chan struct{}
}

func (g gated) Wait() error { err := g.waiter.Wait(); <-g.gate; return err }

// slowCaller runs write, whose journal write's caller is held until the
// returned function is called (which then waits for write to end; calls
// after the first do nothing).
func slowCaller(t *testing.T, s *Store, write func()) (release func()) {
	t.Helper()
	gate, submitted := make(chan struct{}), make(chan struct{})
	real := s.submit
	s.mu.Lock()
	s.submit = func(b []byte) waiter {
		s.submit = real // called under s.mu
		close(submitted)
		return gated{real(b), gate}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(write)
	<-submitted
	var once sync.Once
	return func() { once.Do(func() { close(gate); wg.Wait() }) }
}

func TestFlushAppliesWhatIsDurableNotWhatCallersKnow(t *testing.T) {
	// An earlier write's caller has not returned yet; a later one has: a
	// read that flushes must see the later one.
	s := open(t, "", newClock(t0))
	release := slowCaller(t, s, func() {
		if err := s.Records().Put(ctx, record.Record{TaskID: "slow", Status: record.Success}); err != nil {
			t.Error(err)
		}
	})
	defer release()
	if err := s.Records().Put(ctx, record.Record{TaskID: "mine", Status: record.Success}); err != nil {
		t.Fatal(err)
	}
	if got := recs(t, s.Records(), record.Query{TaskID: "mine"}); got != "mine:success" {
		t.Errorf("List after Put = %q", got)
	}
	// And a Release after the claim returned deletes it for good.
	if fresh, err := s.Claim(ctx, "k", time.Hour); err != nil || !fresh {
		t.Fatal(fresh, err)
	}
	if err := s.Release(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	release()
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, newClock(t0))
	if fresh, err := s.Claim(ctx, "k", time.Hour); err != nil || !fresh {
		t.Errorf("a released key after a restart: fresh=%v, %v", fresh, err)
	}
}

func TestOneSettlementAtATime(t *testing.T) {
	// A task's lease ended while its worker delivered; a second worker
	// leased and delivered it too. Both settle: one wins, the other is
	// told, and the file keeps one pending entry.
	path := filepath.Join(t.TempDir(), "s.db")
	c := newClock(t0)
	s := open(t, path, c)
	if err := s.Enqueue(ctx, []Item{{ID: "x", Payload: []byte("p")}}); err != nil {
		t.Fatal(err)
	}
	if its, _ := s.Lease(ctx, 1, time.Minute); len(its) != 1 {
		t.Fatal("no lease")
	}
	c.Add(2 * time.Minute)
	if its, _ := s.Lease(ctx, 1, time.Minute); len(its) != 1 {
		t.Fatal("no second lease")
	}
	release := slowCaller(t, s, func() {
		if err := s.Reschedule(ctx, Item{ID: "x", Payload: []byte("p1"), Due: t0.Add(time.Hour)}, nil); err != nil {
			t.Error(err)
		}
	})
	for _, settle := range []func() error{
		func() error {
			return s.Reschedule(ctx, Item{ID: "x", Payload: []byte("p2"), Due: t0.Add(2 * time.Hour)}, nil)
		},
		func() error { return s.Finish(ctx, "x", nil) },
		func() error { return s.DeadLetter(ctx, "x", errors.New("r")) },
	} {
		if err := settle(); !errors.Is(err, ErrSettling) {
			t.Errorf("a second settlement: %v, want ErrSettling", err)
		}
	}
	release()
	if n := keys(t, s, bPending); n != 1 {
		t.Errorf("%d pending entries for one task", n)
	}
	s.Close()
	c.Add(time.Hour)
	s = open(t, path, c)
	if got := lease(t, s); got != "x:p1" {
		t.Errorf("after a restart: %q", got)
	}
}

func TestKeysBboltRefusesAreRefusedFirst(t *testing.T) {
	s := open(t, "", newClock(t0))
	long := strings.Repeat("x", localqueue.MaxKeyPart+1)
	if err := s.Records().Put(ctx, record.Record{TaskID: long}); err == nil {
		t.Error("a record with a 1 KiB task id was taken")
	}
	if err := s.Records().Put(ctx, record.Record{TaskID: "t", Trigger: long}); err == nil {
		t.Error("a record with a 1 KiB trigger name was taken")
	}
	if err := s.Enqueue(ctx, []Item{{ID: long}}); err == nil {
		t.Error("a task with a 1 KiB id was taken")
	}
	if err := s.Records().Put(ctx, record.Record{TaskID: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Error(err)
	}
}
