package storetest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/coalesce"
	"github.com/regtrigger/regtrigger/internal/coalesce/coalescetest"
)

// bCoalesce is the kind of the coalesce windows' documents.
const bCoalesce Kind = "coalesce"

// testWindowsContract runs the coalesce.Store contract on the store's
// windows.
func testWindowsContract(t *testing.T, open Opener) {
	coalescetest.Run(t, open(t, "", NewClock(time.Now())).Windows())
}

// testWindowsSurviveRestart joins half a burst, reopens the store, joins
// the rest and closes the window: one delivery of all 8 events. Purge
// keeps the document until its expiry, then deletes it.
func testWindowsSurviveRestart(t *testing.T, open Opener) {
	path := t.TempDir() + "/store"
	c := NewClock(time.Now())
	s := open(t, path, c)
	evs := coalescetest.BurstEvents()
	join := func(s *Opened, from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			m := coalesce.Member{Task: "t" + strconv.Itoa(i), Event: evs[i]}
			if joined, err := (coalesce.Windows{Store: s.Windows()}).Join(ctx, "k", 10*time.Second, []coalesce.Member{m}, c.Now()); err != nil || !joined[0] {
				t.Fatalf("join %d: %v %v", i, joined, err)
			}
			c.Add(100 * time.Millisecond)
		}
	}
	join(s, 0, 4)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, c)
	join(s, 4, 8)
	c.Add(10 * time.Second)
	got, err := coalesce.Windows{Store: s.Windows()}.Close(ctx, "k", "t0", c.Now())
	if err != nil || got.By != "t0" || len(got.Events) != 8 {
		t.Fatalf("close after a restart: %+v, %v; want t0 with 8 events", got, err)
	}
	if _, err := s.Purge(ctx); err != nil || keys(t, s, bCoalesce) != 1 {
		t.Fatalf("purge before the expiry: %v, %d documents left; want 1", err, keys(t, s, bCoalesce))
	}
	c.Add(coalesce.TTL + time.Second)
	if _, err := s.Purge(ctx); err != nil || keys(t, s, bCoalesce) != 0 {
		t.Fatalf("purge after the expiry: %v, %d documents left", err, keys(t, s, bCoalesce))
	}
}

// benchWindowsBurst is what a burst of 8 costs the store: 8 joins (each
// a durable write) and the 8 closes of its tasks (one writes).
func benchWindowsBurst(b *testing.B, open Opener) {
	s := open(b, "", NewClock(time.Now()))
	w := coalesce.Windows{Store: s.Windows()}
	evs := coalescetest.BurstEvents()
	bctx := context.Background()
	for i := 0; b.Loop(); i++ {
		key := "bench" + strconv.Itoa(i)
		now := time.Now()
		for j, ev := range evs {
			if _, err := w.Join(bctx, key, 10*time.Second, []coalesce.Member{{Task: "t" + strconv.Itoa(j), Event: ev}}, now); err != nil {
				b.Fatal(err)
			}
		}
		for j := range evs {
			if _, err := w.Close(bctx, key, "t"+strconv.Itoa(j), now.Add(10*time.Second)); err != nil {
				b.Fatal(err)
			}
		}
	}
}
