package pebblestore

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/record"
)

// crashEnv makes the test binary a child that works on a store until it
// is killed ("queue:PATH"), or that leaves writes in a bbolt store's
// journal only ("bolt:PATH").
const crashEnv = "PEBBLESTORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(crashEnv); v != "" {
		mode, path, _ := strings.Cut(v, ":")
		switch mode {
		case "queue":
			crashChild(path)
		case "bolt":
			boltChild(path)
		}
		fmt.Println("unknown child mode", mode)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// crashWriters write concurrently, so that Pebble commits their synced
// batches in groups, as serve's handlers make it.
const crashWriters = 8

// crashChild queues tasks from crashWriters goroutines (one notification's
// claim and task per batch), finishes every other one with its record and
// reschedules the rest once, printing each acknowledged step; it never
// closes the store.
func crashChild(path string) {
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	var out sync.Mutex
	say := func(what, id string) {
		out.Lock()
		fmt.Println(what, id)
		out.Unlock()
	}
	var wg sync.WaitGroup
	for g := range crashWriters {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("t%d-%d-%d", os.Getpid(), g, i) // unique across children
				if _, err := s.ClaimEnqueue(ctx, []Claimed{{Key: "k" + id, TTL: time.Hour, Items: []Item{{ID: id, Payload: []byte("p" + id)}}}}); err != nil {
					say("enqueue:", err.Error())
					os.Exit(1)
				}
				say("queued", id)
				var err error
				what := "finished"
				if i%2 == 0 {
					err = s.Finish(ctx, id, &record.Record{TaskID: id, Trigger: "a", Status: record.Success})
				} else {
					what = "rescheduled"
					err = s.Reschedule(ctx, Item{ID: id, Payload: []byte("r" + id), Due: time.Now().Add(time.Hour)}, &record.Record{TaskID: id, Trigger: "a", Status: record.Retrying})
				}
				if err != nil {
					say("settle:", err.Error())
					os.Exit(1)
				}
				say(what, id)
			}
		})
	}
	wg.Wait()
}

// TestCrashLosesNothing kills (SIGKILL) a child in the middle of its
// writes, five times on one store, and checks after each that every
// acknowledged write is there: queued tasks queued with their payload,
// finished ones finished (not queued again: delivered twice) with their
// record, rescheduled ones due when they were rescheduled to, and every
// duplicate key claimed.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "crash")
	queued, settled := map[string]int{}, map[string]string{} // id: round; id: how
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"=queue:"+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		n := 0
		for n < 300 && sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 2 && f[0] == "queued":
				queued[f[1]] = round
				n++
			case len(f) == 2 && (f[0] == "finished" || f[0] == "rescheduled"):
				settled[f[1]] = f[0]
			default:
				t.Fatalf("child: %s", sc.Text())
			}
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if n < 300 {
			t.Fatalf("round %d: the child stopped after %d tasks", round, n)
		}

		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := s.Records().List(ctx, record.Query{Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		recorded := map[string]record.Status{}
		for _, r := range recs {
			if _, ok := recorded[r.TaskID]; !ok {
				recorded[r.TaskID] = r.Status // the newest
			}
		}
		items, err := s.Queued(ctx)
		if err != nil {
			t.Fatal(err)
		}
		inQueue := map[string]Item{}
		for _, it := range items {
			inQueue[it.ID] = it
		}
		// Every round checks the tasks of all the rounds so far: a
		// reopen loses nothing either.
		for id, from := range queued {
			it, isQueued := inQueue[id]
			// A settlement just before the kill may not have been
			// reported: then the task is queued as it was, or settled
			// with its record, never neither.
			switch settled[id] {
			case "finished":
				if isQueued {
					t.Errorf("round %d: %s (round %d) was finished, and is queued again", round, id, from)
				}
				if recorded[id] != record.Success {
					t.Errorf("round %d: %s (round %d) was finished, and its record is lost", round, id, from)
				}
			case "rescheduled":
				if !isQueued || string(it.Payload) != "r"+id || !it.Due.After(time.Now()) || recorded[id] != record.Retrying {
					t.Errorf("round %d: %s (round %d) was rescheduled: queued %v, %+v, record %q", round, id, from, isQueued, it, recorded[id])
				}
			default:
				if !isQueued && recorded[id] == "" {
					t.Errorf("round %d: %s (round %d) was queued, and is lost", round, id, from)
				}
			}
			if fresh, err := s.Claim(ctx, "k"+id, time.Hour); err != nil || fresh {
				t.Errorf("round %d: the duplicate key of %s (round %d) is lost: %v", round, id, from, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
