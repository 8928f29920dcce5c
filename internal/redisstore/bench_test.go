package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkNamespace: the receiver's one read per notification, a
// namespace of 10 triggers, over loopback.
func BenchmarkNamespace(b *testing.B) {
	ctx := context.Background()
	s := newStoreB(b)
	for i := 0; i < 10; i++ {
		if _, err := s.Triggers().Create(ctx, tr(fmt.Sprintf("t%02d", i), "public")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if ts, err := s.Triggers().Namespace(ctx, "public"); err != nil || len(ts) != 10 {
			b.Fatal(len(ts), err)
		}
	}
}

// BenchmarkScheduleClaimDone: one retry through the retry set (schedule,
// claim, done: three round trips).
func BenchmarkScheduleClaimDone(b *testing.B) {
	ctx := context.Background()
	r := newStoreB(b).Retries()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Schedule(ctx, task("tsk_b", 1), now); err != nil {
			b.Fatal(err)
		}
		due, err := r.Claim(ctx, now, time.Minute, 10)
		if err != nil || len(due) != 1 {
			b.Fatal(len(due), err)
		}
		if err := r.Done(ctx, due[0].Member); err != nil {
			b.Fatal(err)
		}
	}
}

func newStoreB(b *testing.B) *Store { return newStore(b, nil) }
