package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

func tr(name, ns string) trigger.Trigger {
	return trigger.Trigger{Name: name, Enabled: true, Actions: []event.Action{event.PushImage}, Namespace: ns,
		URL: "https://hooks.example.com/" + name, Format: payload.TCR, Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}
}

// TestTriggerVersions: the same version semantics as dynamostore and
// boltstore, step by step on one store.
func TestTriggerVersions(t *testing.T) {
	ctx := context.Background()
	ts := newStore(t, nil).Triggers()
	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"create", func() error { _, err := ts.Create(ctx, tr("a", "public")); return err }, nil},
		{"create again", func() error { _, err := ts.Create(ctx, tr("a", "public")); return err }, trigger.ErrExists},
		{"update at v1", func() error {
			x := tr("a", "public")
			x.Version = 1
			x.Description = "one"
			_, err := ts.Update(ctx, x)
			return err
		}, nil},
		{"update stale v1", func() error { x := tr("a", "public"); x.Version = 1; _, err := ts.Update(ctx, x); return err }, trigger.ErrConflict},
		{"update missing", func() error { x := tr("zz", "public"); x.Version = 1; _, err := ts.Update(ctx, x); return err }, trigger.ErrNotFound},
		{"move to another namespace at v2", func() error { x := tr("a", "team"); x.Version = 2; _, err := ts.Update(ctx, x); return err }, nil},
		{"delete stale", func() error { return ts.Delete(ctx, "a", 2) }, trigger.ErrConflict},
		{"get missing", func() error { _, err := ts.Get(ctx, "nope"); return err }, trigger.ErrNotFound},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := st.do(); !errors.Is(err, st.want) || (st.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, st.want)
			}
		})
	}
	got, err := ts.Get(ctx, "a")
	if err != nil || got.Version != 3 || got.Namespace != "team" || got.Description != "" || len(got.Secrets) != 1 {
		t.Fatalf("get: %+v, %v", got, err)
	}
	if old, _ := ts.Namespace(ctx, "public"); len(old) != 0 {
		t.Errorf("the old namespace still lists %v", old)
	}
	if now, _ := ts.Namespace(ctx, "team"); len(now) != 1 || now[0].Version != 3 {
		t.Errorf("team: %+v", now)
	}
	if err := ts.Delete(ctx, "a", 3); err != nil {
		t.Fatal(err)
	}
	if err := ts.Delete(ctx, "a", 0); !errors.Is(err, trigger.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
	if all, _ := ts.List(ctx); len(all) != 0 {
		t.Errorf("list after delete: %v", all)
	}
}

// TestConcurrentUpdates: of writers racing on one version, one wins.
func TestConcurrentUpdates(t *testing.T) {
	ctx := context.Background()
	ts := newStore(t, nil).Triggers()
	if _, err := ts.Create(ctx, tr("a", "public")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			x := tr("a", "public")
			x.Version, x.Description = 1, fmt.Sprint(i)
			if _, err := ts.Update(ctx, x); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, trigger.ErrConflict) {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d writers won", wins)
	}
}

func TestNamespaceAndList(t *testing.T) {
	ctx := context.Background()
	ts := newStore(t, nil).Triggers()
	for _, x := range []trigger.Trigger{tr("c", "public"), tr("a", "public"), tr("b", "team")} {
		if _, err := ts.Create(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	names := func(xs []trigger.Trigger) string {
		var n []string
		for _, x := range xs {
			n = append(n, x.Name)
		}
		return strings.Join(n, ",")
	}
	pub, err := ts.Namespace(ctx, "public")
	if err != nil || names(pub) != "a,c" {
		t.Errorf("public: %s, %v", names(pub), err)
	}
	all, err := ts.List(ctx)
	if err != nil || names(all) != "a,b,c" {
		t.Errorf("list: %s, %v", names(all), err)
	}
}

func TestRecords(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := newStore(t, func() time.Time { return now })
	rs := s.Records()
	put := func(task, trig string, st record.Status, ago time.Duration) {
		t.Helper()
		if err := rs.Put(ctx, record.Record{TaskID: task, Trigger: trig, Status: st, Attempt: 1, Time: now.Add(-ago)}); err != nil {
			t.Fatal(err)
		}
	}
	put("t1", "a", record.Retrying, 30*time.Minute)
	put("t1", "a", record.Success, 20*time.Minute)
	put("t2", "b", record.Failed, 10*time.Minute)
	put("t3", "a", record.Untriggered, time.Minute)
	put("old", "a", record.Success, 2*time.Hour) // past the retention: not kept
	tests := []struct {
		name string
		q    record.Query
		want string
	}{
		{"all, newest first", record.Query{}, "t3,t2,t1,t1"},
		{"trigger", record.Query{Trigger: "a"}, "t3,t1,t1"},
		{"status", record.Query{Status: record.Success}, "t1"},
		{"task", record.Query{TaskID: "t1"}, "t1,t1"},
		{"trigger and status", record.Query{Trigger: "a", Status: record.Retrying}, "t1"},
		{"since", record.Query{Since: now.Add(-15 * time.Minute)}, "t3,t2"},
		{"limit", record.Query{Limit: 2}, "t3,t2"},
		{"nothing", record.Query{Trigger: "zz"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rs.List(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, r.TaskID)
			}
			if strings.Join(ids, ",") != tt.want {
				t.Errorf("got %v, want %s", ids, tt.want)
			}
		})
	}
	// The record expires in Redis with the retention.
	keys, err := s.rdb.Keys(ctx, s.key("rec", "*")).Result()
	if err != nil || len(keys) != 4 {
		t.Fatalf("%d record keys, %v", len(keys), err)
	}
	ttl, err := s.rdb.PTTL(ctx, keys[0]).Result()
	if err != nil || ttl <= 0 || ttl > time.Hour {
		t.Errorf("record TTL %v, %v", ttl, err)
	}
}

func TestDedupe(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil)
	first, err := s.Claim(ctx, "k", time.Minute)
	if err != nil || !first {
		t.Fatalf("first claim: %v %v", first, err)
	}
	if again, _ := s.Claim(ctx, "k", time.Minute); again {
		t.Error("second claim won")
	}
	if err := s.Release(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Claim(ctx, "k", time.Minute); !after {
		t.Error("claim after release lost")
	}
	if ttl, _ := s.rdb.PTTL(ctx, s.key("dedupe", "k")).Result(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("dedupe TTL %v", ttl)
	}
}

func task(id string, attempt int) delivery.Task {
	return delivery.Task{ID: id, Trigger: delivery.TriggerRef{Namespace: "public", Name: "a", Version: 1}, Attempt: attempt,
		Event: event.Event{Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1"}}
}

func TestArchive(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, nil)
	if _, err := s.Archived(ctx, "tsk_x"); !errors.Is(err, ErrNotArchived) {
		t.Fatalf("missing: %v", err)
	}
	if err := s.Archive(ctx, task("tsk_x", 3)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Archived(ctx, "tsk_x")
	if err != nil || got.Attempt != 3 || got.Trigger.Name != "a" {
		t.Fatalf("%+v, %v", got, err)
	}
}

// TestRetriesClaim: due retries are claimed once, in due order; claimed
// ones come back after the lease unless Done; later ones wait.
func TestRetriesClaim(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := newStore(t, nil).Retries()
	for i, at := range []time.Duration{-2 * time.Second, -time.Second, time.Minute} {
		if err := r.Schedule(ctx, task(fmt.Sprintf("tsk_%d", i), 1), now.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.Claim(ctx, now, 30*time.Second, 10)
	if err != nil || len(got) != 2 || got[0].Task.ID != "tsk_0" || got[1].Task.ID != "tsk_1" || got[0].Task.Attempt != 1 {
		t.Fatalf("claim: %+v, %v", got, err)
	}
	if again, _ := r.Claim(ctx, now, 30*time.Second, 10); len(again) != 0 {
		t.Errorf("claimed twice: %+v", again)
	}
	if err := r.Done(ctx, got[0].Member); err != nil {
		t.Fatal(err)
	}
	// After the lease: the one not Done comes back, and the later one is due.
	back, err := r.Claim(ctx, now.Add(time.Hour), time.Minute, 10)
	if err != nil || len(back) != 2 || back[0].Task.ID != "tsk_1" || back[1].Task.ID != "tsk_2" {
		t.Fatalf("after the lease: %+v, %v", back, err)
	}
	pending, err := r.Pending(ctx, "a")
	if err != nil || len(pending) != 2 {
		t.Errorf("pending %+v, %v", pending, err)
	}
}

// TestRetriesClaimRace: claimers racing over many due retries take each
// exactly once.
func TestRetriesClaimRace(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	r := newStore(t, nil).Retries()
	const n = 200
	for i := 0; i < n; i++ {
		if err := r.Schedule(ctx, task(fmt.Sprintf("tsk_%03d", i), 1), now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var seen []string
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := r.Claim(ctx, now, time.Hour, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, d := range got {
					seen = append(seen, d.Task.ID)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Strings(seen)
	if len(seen) != n {
		t.Fatalf("%d claims of %d retries", len(seen), n)
	}
	for i := 1; i < n; i++ {
		if seen[i] == seen[i-1] {
			t.Fatalf("%s claimed twice", seen[i])
		}
	}
}

// TestRedisDown: every operation fails with an error (no panic, no hang
// past the client's timeouts) when Redis cannot be reached.
func TestRedisDown(t *testing.T) {
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	s, err := New(Config{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		do   func() error
	}{
		{"ping", func() error { return s.Ping(ctx) }},
		{"namespace", func() error { _, err := s.Triggers().Namespace(ctx, "public"); return err }},
		{"get", func() error { _, err := s.Triggers().Get(ctx, "a"); return err }},
		{"claim", func() error { _, err := s.Claim(ctx, "k", time.Minute); return err }},
		{"record", func() error { return s.Records().Put(ctx, record.Record{TaskID: "t"}) }},
		{"schedule", func() error { return s.Retries().Schedule(ctx, task("t", 1), time.Now()) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			err := op.do()
			if err == nil || errors.Is(err, trigger.ErrNotFound) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		name, url, addr, prefix string
		db                      int
		wantErr                 bool
	}{
		{"plain", "redis://127.0.0.1:6379/0", "127.0.0.1:6379", "", 0, false},
		{"prefix and db", "redis://:secret@10.0.0.5:6379/2?prefix=prod", "10.0.0.5:6379", "prod", 2, false},
		{"bad scheme", "http://x", "", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseURL(tt.url)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if o.Redis.Addr != tt.addr || o.Prefix != tt.prefix || o.Redis.DB != tt.db {
				t.Errorf("%+v %q", o.Redis, o.Prefix)
			}
		})
	}
}

// TestRequeue: due retries are produced and removed; a failed produce
// leaves them claimed, to come back after the lease; bad bodies go.
func TestRequeue(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := newStore(t, nil)
	r := s.Retries()
	for i := 0; i < 3; i++ {
		if err := r.Schedule(ctx, task(fmt.Sprintf("tsk_%d", i), 2), now.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Schedule(ctx, task("tsk_later", 1), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.HSet(ctx, r.bodies(), "junk#1", "not a task").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.ZAdd(ctx, r.zset(), redis.Z{Score: ms(now.Add(-time.Second)), Member: "junk#1"}).Err(); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	if _, _, err := r.Requeue(ctx, clock, func(context.Context, []delivery.Task) error { return errors.New("kafka down") }); err == nil {
		t.Fatal("a failed produce was not reported")
	}
	var produced []delivery.Task
	ok := func(_ context.Context, ts []delivery.Task) error { produced = append(produced, ts...); return nil }
	if moved, _, err := r.Requeue(ctx, clock, ok); err != nil || moved != 0 {
		t.Fatalf("within the lease: moved %d, %v", moved, err)
	}
	moved, _, err := r.Requeue(ctx, func() time.Time { return now.Add(RequeueLease + time.Second) }, ok)
	if err != nil || moved != 3 || len(produced) != 3 || produced[0].Attempt != 2 {
		t.Fatalf("moved %d: %+v, %v", moved, produced, err)
	}
	if left, _ := r.Pending(ctx, ""); len(left) != 1 || left[0].Task.ID != "tsk_later" {
		t.Errorf("left %+v", left)
	}
}
