package dynamostore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// memTriggers is a trigger.Store fake answering Namespace from memory and
// counting the reads; the other methods are not used.
type memTriggers struct {
	trigger.Store
	byNS  map[string][]trigger.Trigger
	reads atomic.Int64
}

func (m *memTriggers) Namespace(_ context.Context, ns string) ([]trigger.Trigger, error) {
	m.reads.Add(1)
	return append([]trigger.Trigger(nil), m.byNS[ns]...), nil
}

// BenchmarkCachedTriggersHit measures the warm path of the receiver's
// trigger read: CachedTriggers.Namespace answering from its cache (the
// clock, the lock, the map and the copy of the slice the caller gets), for
// a namespace of 1 and of 10 triggers, and for 10 from concurrent
// goroutines (lock contention). The store is an in-memory fake read once
// before the timer starts; a read during the loop fails the benchmark.
// Misses cost a DynamoDB Query, which no local server measures faithfully,
// so they are not benchmarked here.
func BenchmarkCachedTriggersHit(b *testing.B) {
	for _, c := range []struct {
		n        int
		parallel bool
	}{{1, false}, {10, false}, {10, true}} {
		name := fmt.Sprintf("triggers=%d", c.n)
		if c.parallel {
			name += "/parallel"
		}
		b.Run(name, func(b *testing.B) {
			ts := make([]trigger.Trigger, c.n)
			for i := range ts {
				ts[i] = trigger.Trigger{Name: fmt.Sprintf("deploy-%d", i), Enabled: true, Namespace: "public", Repository: "team/**",
					Tag: "release-*", Actions: []event.Action{event.PushImage}, URL: "https://hooks.example.com/deploy",
					Headers: map[string]string{"Authorization": "Bearer x"}, Format: "tcr", Version: 1, UpdatedAt: time.Now()}
			}
			store := &memTriggers{byNS: map[string][]trigger.Trigger{"public": ts}}
			ct := &CachedTriggers{Store: store, TTL: time.Hour}
			if got, err := ct.Namespace(context.Background(), "public"); err != nil || len(got) != c.n {
				b.Fatalf("%d triggers, %v", len(got), err)
			}
			b.ReportAllocs()
			if c.parallel {
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					for pb.Next() {
						if _, err := ct.Namespace(ctx, "public"); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				ctx := context.Background()
				for b.Loop() {
					if _, err := ct.Namespace(ctx, "public"); err != nil {
						b.Fatal(err)
					}
				}
			}
			if r := store.reads.Load(); r != 1 {
				b.Fatalf("the store was read %d times; every read after the first should be a cache hit", r)
			}
		})
	}
}
