package boltstore

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/coalesce"
	"github.com/regtrigger/regtrigger/internal/coalesce/coalescetest"
)

func TestWindowsContract(t *testing.T) {
	coalescetest.Run(t, open(t, "", newClock(time.Now())).Windows())
}

// TestWindowsSurviveRestart joins half a burst, restarts the store, joins
// the rest and closes the window: one delivery of all 8 events. Purge
// then keeps the document until its expiry.
func TestWindowsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	c := newClock(time.Now())
	s := open(t, path, c)
	evs := coalescetest.BurstEvents()
	join := func(s *Store, from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			m := coalesce.Member{Task: "t" + string(rune('0'+i)), Event: evs[i]}
			if joined, err := (coalesce.Windows{Store: s.Windows()}).Join(ctx, "k", 10*time.Second, []coalesce.Member{m}, c.now()); err != nil || !joined[0] {
				t.Fatalf("join %d: %v %v", i, joined, err)
			}
			c.add(100 * time.Millisecond)
		}
	}
	join(s, 0, 4)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, c)
	join(s, 4, 8)
	c.add(10 * time.Second)
	got, err := coalesce.Windows{Store: s.Windows()}.Close(ctx, "k", "t0", c.now())
	if err != nil || got.By != "t0" || len(got.Events) != 8 {
		t.Fatalf("close after a restart: %+v, %v; want t0 with 8 events", got, err)
	}
	if n, err := s.purgeWindows(ctx, c.now()); err != nil || n != 0 {
		t.Fatalf("purge before the expiry: %d, %v", n, err)
	}
	c.add(coalesce.TTL + time.Second)
	if n, err := s.purgeWindows(ctx, c.now()); err != nil || n != 1 {
		t.Fatalf("purge after the expiry: %d, %v; want 1", n, err)
	}
	if n := keys(t, s, bCoalesce); n != 0 {
		t.Fatalf("%d documents left", n)
	}
}

// BenchmarkWindowsBurst is what a burst of 8 costs the embedded store: 8
// joins (each a bbolt transaction) and the 8 closes of its tasks (one
// writes).
func BenchmarkWindowsBurst(b *testing.B) {
	ctx := context.Background()
	s := open(b, "", newClock(time.Now()))
	w := coalesce.Windows{Store: s.Windows()}
	evs := coalescetest.BurstEvents()
	for i := 0; b.Loop(); i++ {
		key := "bench" + strconv.Itoa(i)
		now := time.Now()
		for j, ev := range evs {
			if _, err := w.Join(ctx, key, 10*time.Second, []coalesce.Member{{Task: "t" + strconv.Itoa(j), Event: ev}}, now); err != nil {
				b.Fatal(err)
			}
		}
		for j := range evs {
			if _, err := w.Close(ctx, key, "t"+strconv.Itoa(j), now.Add(10*time.Second)); err != nil {
				b.Fatal(err)
			}
		}
	}
}
