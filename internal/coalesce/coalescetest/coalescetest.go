// Package coalescetest is test support: the behaviour every coalesce.Store
// must have, run by each store's tests against the real server (the
// embedded store, DynamoDB on dynalite, Redis on redis-server).
package coalescetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/coalesce"
	"github.com/regtrigger/regtrigger/internal/event"
)

// Run checks s. Keys are unique to each call of Run's subtests, so s may
// hold other documents.
func Run(t *testing.T, s coalesce.Store) {
	prefix := fmt.Sprintf("ct%d_", time.Now().UnixNano())
	t.Run("read, write, unchanged, delete", func(t *testing.T) { contract(t, s, prefix+"contract") })
	t.Run("concurrent updates lose none", func(t *testing.T) { concurrent(t, s, prefix+"concurrent") })
	t.Run("fn error writes nothing", func(t *testing.T) { fnError(t, s, prefix+"fnerror") })
	t.Run("a burst of 8 becomes one window", func(t *testing.T) { Burst(t, s, prefix+"burst") })
}

func read(t *testing.T, s coalesce.Store, key string) []byte {
	t.Helper()
	var got []byte
	err := s.Update(context.Background(), key, time.Hour, func(old []byte) ([]byte, error) {
		got = append([]byte(nil), old...)
		return nil, coalesce.ErrUnchanged
	})
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return got
}

func contract(t *testing.T, s coalesce.Store, key string) {
	ctx := context.Background()
	if got := read(t, s, key); got != nil {
		t.Fatalf("new key: %q, want nil", got)
	}
	if err := s.Update(ctx, key, time.Hour, func(old []byte) ([]byte, error) { return []byte("one"), nil }); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, key); string(got) != "one" {
		t.Fatalf("after a write: %q", got)
	}
	if err := s.Update(ctx, key, time.Hour, func(old []byte) ([]byte, error) { return append(old, "+two"...), nil }); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, key); string(got) != "one+two" {
		t.Fatalf("after a second write: %q", got)
	}
	if err := s.Update(ctx, key, time.Hour, func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, key); got != nil {
		t.Fatalf("after a delete: %q", got)
	}
}

func fnError(t *testing.T, s coalesce.Store, key string) {
	ctx := context.Background()
	if err := s.Update(ctx, key, time.Hour, func([]byte) ([]byte, error) { return []byte("kept"), nil }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := s.Update(ctx, key, time.Hour, func([]byte) ([]byte, error) { return []byte("lost"), boom }); !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the fn's error", err)
	}
	if got := read(t, s, key); string(got) != "kept" {
		t.Fatalf("after a failed fn: %q", got)
	}
}

// concurrent runs 4 writers × 10 increments of one counter.
func concurrent(t *testing.T, s coalesce.Store, key string) {
	ctx := context.Background()
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				errs <- s.Update(ctx, key, time.Hour, func(old []byte) ([]byte, error) {
					n := 0
					if old != nil {
						var err error
						if n, err = strconv.Atoi(string(old)); err != nil {
							return nil, err
						}
					}
					return []byte(strconv.Itoa(n + 1)), nil
				})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := string(read(t, s, key)); got != strconv.Itoa(writers*each) {
		t.Fatalf("counter %s after %d increments", got, writers*each)
	}
}

// BurstEvents are a multi-arch push of app:v1.2.3 to team/app as a
// registry reports it: four platform manifests pushed by digest, the index
// with its tag, then three more tags of the index.
func BurstEvents() []event.Event {
	base := event.Event{Source: "distribution", Action: event.PushImage, Namespace: "team", Repository: "app", Registry: "registry.example"}
	var evs []event.Event
	for i := 1; i <= 4; i++ {
		e := base
		e.Digest = fmt.Sprintf("sha256:%064d", i)
		e.MediaType = "application/vnd.oci.image.manifest.v1+json"
		evs = append(evs, e)
	}
	for _, tag := range []string{"v1.2.3", "v1.2", "v1", "latest"} {
		e := base
		e.Tag, e.Digest = tag, "sha256:"+fmt.Sprintf("%064d", 99)
		e.MediaType = "application/vnd.oci.image.index.v1+json"
		evs = append(evs, e)
	}
	return evs
}

// Burst joins BurstEvents one at a time from two writers (as two receivers
// would), then closes the window from two tasks at once: one closes it
// with all 8 events, the other learns it was coalesced.
func Burst(t *testing.T, s coalesce.Store, key string) {
	ctx := context.Background()
	w := coalesce.Windows{Store: s}
	now := time.Now()
	evs := BurstEvents()
	var wg sync.WaitGroup
	for half := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := half; i < len(evs); i += 2 {
				joined, err := w.Join(ctx, key, 10*time.Second, []coalesce.Member{{Task: "task" + strconv.Itoa(i), Event: evs[i]}}, now.Add(time.Duration(i)*time.Millisecond))
				if err != nil || !joined[0] {
					t.Errorf("join %d: %v %v", i, joined, err)
				}
			}
		}()
	}
	wg.Wait()
	due := now.Add(10 * time.Second)
	res := make([]coalesce.Closed, 2)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if res[i], err = w.Close(ctx, key, "task"+strconv.Itoa(i*7), due); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	closer, other := res[0], res[1]
	if closer.Events == nil {
		closer, other = other, closer
	}
	if !closer.Found || !other.Found || other.By != closer.By || len(closer.Events) != 8 || other.Events != nil || other.Count != 8 {
		t.Fatalf("close: %+v and %+v; want one closer with 8 events and one coalesced into it", closer, other)
	}
}

// DistributionBurst is a multi-arch push of team/app, one notification per manifest,
// in Distribution's format: four platform manifests and the index pushed
// as v1.2.3 (a registry that names the tag on each; Distribution itself
// leaves the platform manifests untagged, and regtrigger ignores those),
// then three more tags of the index.
func DistributionBurst(at time.Time) [][]byte {
	type target struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		Tag        string `json:"tag,omitempty"`
	}
	one := func(i int, tg target) []byte {
		ev := map[string]any{
			"id": fmt.Sprintf("burst-%d", i), "timestamp": at.Add(time.Duration(i) * 10 * time.Millisecond).UTC().Format(time.RFC3339Nano),
			"action": "push", "target": tg,
			"request": map[string]string{"host": "registry.example", "method": "PUT"},
			"actor":   map[string]string{"name": "ci"},
		}
		b, _ := json.Marshal(map[string]any{"events": []any{ev}})
		return b
	}
	var out [][]byte
	for i := 1; i <= 4; i++ {
		out = append(out, one(len(out), target{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: fmt.Sprintf("sha256:%064d", i), Repository: "team/app", Tag: "v1.2.3"}))
	}
	for _, tag := range []string{"v1.2.3", "v1.2", "v1", "latest"} {
		out = append(out, one(len(out), target{MediaType: "application/vnd.oci.image.index.v1+json", Digest: fmt.Sprintf("sha256:%064d", 99), Repository: "team/app", Tag: tag}))
	}
	return out
}

// Down is a coalesce.Store that cannot be reached: every Update fails
// with a connection error, as a store that is down would.
type Down struct{}

var _ coalesce.Store = Down{}

// Update fails.
func (Down) Update(context.Context, string, time.Duration, func([]byte) ([]byte, error)) error {
	return errors.New("dial tcp 127.0.0.1:6379: connection refused")
}
