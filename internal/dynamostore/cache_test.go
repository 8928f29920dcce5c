package dynamostore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/trigger"
)

// countingStore is a trigger.Store fake that counts Namespace reads.
type countingStore struct {
	trigger.Store // nil: other methods are not used, except as noted
	reads         atomic.Int32
	fail          atomic.Bool
	mu            sync.Mutex
	byNS          map[string][]trigger.Trigger
}

func (f *countingStore) Namespace(_ context.Context, ns string) ([]trigger.Trigger, error) {
	f.reads.Add(1)
	if f.fail.Load() {
		return nil, errors.New("store down")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]trigger.Trigger(nil), f.byNS[ns]...), nil
}

func (f *countingStore) Create(_ context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byNS[t.Namespace] = append(f.byNS[t.Namespace], t)
	return t, nil
}

func TestCachedTriggers(t *testing.T) {
	f := &countingStore{byNS: map[string][]trigger.Trigger{"ns": {tr("a", "ns")}}}
	c := newClock(time.Now())
	ct := &CachedTriggers{Store: f, TTL: 10 * time.Second, Now: c.now}
	get := func(ns string) []trigger.Trigger {
		t.Helper()
		l, err := ct.Namespace(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := get("ns"); names(l) != "a" || f.reads.Load() != 1 {
		t.Fatalf("first read: %s, %d reads", names(l), f.reads.Load())
	}
	c.add(9 * time.Second)
	if l := get("ns"); names(l) != "a" || f.reads.Load() != 1 {
		t.Fatalf("within the TTL the store must not be read: %d reads", f.reads.Load())
	}
	// Callers own their slice.
	l := get("ns")
	l[0].Name = "changed"
	if l := get("ns"); names(l) != "a" {
		t.Errorf("a caller's change leaked into the cache: %s", names(l))
	}
	// Empty answers are cached per namespace.
	get("empty")
	get("empty")
	if f.reads.Load() != 2 {
		t.Errorf("empty namespace: %d reads", f.reads.Load())
	}
	c.add(time.Second)
	get("ns")
	if f.reads.Load() != 3 {
		t.Errorf("after the TTL the store must be read again: %d reads", f.reads.Load())
	}
	// Errors are returned and not cached.
	c.add(time.Minute)
	f.fail.Store(true)
	if _, err := ct.Namespace(ctx, "ns"); err == nil {
		t.Error("error hidden")
	}
	f.fail.Store(false)
	get("ns")
	if f.reads.Load() != 5 {
		t.Errorf("an error must not be cached: %d reads", f.reads.Load())
	}
	// A write through the cache drops it.
	if _, err := ct.Create(ctx, tr("b", "ns")); err != nil {
		t.Fatal(err)
	}
	if l := get("ns"); names(l) != "a,b" || f.reads.Load() != 6 {
		t.Errorf("after create: %s, %d reads", names(l), f.reads.Load())
	}
}

func TestCachedTriggersDefaultTTLAndConcurrency(t *testing.T) {
	f := &countingStore{byNS: map[string][]trigger.Trigger{"ns": {tr("a", "ns")}}}
	c := newClock(time.Now())
	ct := &CachedTriggers{Store: f, Now: c.now}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if l, err := ct.Namespace(ctx, "ns"); err != nil || len(l) != 1 {
					t.Error(l, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// No single-flight: concurrent first misses may each read; after that, none.
	if n := f.reads.Load(); n < 1 || n > 20 {
		t.Errorf("%d reads", n)
	}
	before := f.reads.Load()
	c.add(DefaultCacheTTL - time.Millisecond)
	ct.Namespace(ctx, "ns")
	if f.reads.Load() != before {
		t.Error("default TTL is not 10s")
	}
	c.add(time.Millisecond)
	ct.Namespace(ctx, "ns")
	if f.reads.Load() != before+1 {
		t.Error("default TTL is not 10s")
	}
}

// TestCachedDynamoTriggers runs the cache over the real store.
func TestCachedDynamoTriggers(t *testing.T) {
	s := newStore(t, newClock(time.Now()), 0)
	ct := &CachedTriggers{Store: s.Triggers()}
	var _ trigger.Store = ct
	if _, err := ct.Create(ctx, tr("a", "ns")); err != nil {
		t.Fatal(err)
	}
	if l, err := ct.Namespace(ctx, "ns"); err != nil || names(l) != "a" {
		t.Fatalf("%s %v", names(l), err)
	}
	// A write elsewhere is not seen until the TTL passes.
	if _, err := s.Triggers().Create(ctx, tr("b", "ns")); err != nil {
		t.Fatal(err)
	}
	if l, _ := ct.Namespace(ctx, "ns"); names(l) != "a" {
		t.Errorf("cached: %s", names(l))
	}
	ct.Invalidate()
	if l, _ := ct.Namespace(ctx, "ns"); names(l) != "a,b" {
		t.Errorf("after invalidate: %s", names(l))
	}
}
