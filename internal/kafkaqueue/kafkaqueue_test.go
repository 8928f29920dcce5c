package kafkaqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/event"
)

const topic = "tasks"

// cluster is an in-process Kafka (franz-go's kfake) on loopback.
func cluster(t *testing.T) Config {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return Config{Brokers: c.ListenAddrs(), Topic: topic, Group: "g-" + strings.ReplaceAll(t.Name(), "/", "-")}
}

func task(id string) delivery.Task {
	return delivery.Task{ID: id, Trigger: delivery.TriggerRef{Namespace: "public", Name: "a", Version: 1},
		Event: event.Event{Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1"}}
}

// memRetries is a Scheduler in memory.
type memRetries struct {
	mu   sync.Mutex
	at   map[string]time.Time
	fail error
}

func (m *memRetries) Schedule(_ context.Context, t delivery.Task, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.at == nil {
		m.at = map[string]time.Time{}
	}
	m.at[fmt.Sprintf("%s#%d", t.ID, t.Attempt)] = at
	return nil
}

func producer(t *testing.T, cfg Config) *Producer {
	t.Helper()
	p, err := NewProducer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func consumer(t *testing.T, cfg Config, r Scheduler) *Consumer {
	t.Helper()
	c, err := NewConsumer(cfg, ConsumerOptions{Retries: r})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// leaseN leases until n tasks came (or a minute passed, which fails).
func leaseN(t *testing.T, c *Consumer, n int) []dispatcher.Leased {
	t.Helper()
	var out []dispatcher.Leased
	deadline := time.Now().Add(time.Minute)
	for len(out) < n {
		if time.Now().After(deadline) {
			t.Fatalf("leased %d of %d", len(out), n)
		}
		got, err := c.Lease(context.Background(), n-len(out), time.Minute)
		if err != nil {
			t.Logf("lease: %v", err)
		}
		out = append(out, got...)
	}
	return out
}

// TestSettledAreCommitted: acknowledged tasks are committed; a task left
// unsettled comes back to the group's next member, with those after it.
func TestSettledAreCommitted(t *testing.T) {
	cfg := cluster(t)
	cfg.Topic = topic
	p := producer(t, cfg)
	// One partition's order matters here: same key, same partition.
	var tasks []delivery.Task
	for i := 0; i < 4; i++ {
		tasks = append(tasks, task(fmt.Sprintf("tsk_%d", i)))
	}
	ctx := context.Background()
	for _, tk := range tasks {
		if err := p.Enqueue(ctx, []delivery.Task{tk}); err != nil {
			t.Fatal(err)
		}
	}
	c := consumer(t, cfg, &memRetries{})
	got := leaseN(t, c, 4)
	for _, l := range got {
		if l.Err != nil {
			t.Fatal(l.Err)
		}
		if l.ID == "tsk_1" {
			continue // left unsettled
		}
		if err := c.Ack(ctx, l.ID); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()

	again := consumer(t, cfg, &memRetries{})
	defer again.Close()
	back := leaseN(t, again, 1)
	if back[0].ID != "tsk_1" {
		t.Fatalf("came back: %s", back[0].ID)
	}
}

func TestRetryAndEarly(t *testing.T) {
	cfg := cluster(t)
	p := producer(t, cfg)
	ctx := context.Background()
	early := task("tsk_early")
	early.Attempt = 2
	if err := p.Produce(ctx, []delivery.Task{early}, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := p.Enqueue(ctx, []delivery.Task{task("tsk_now")}); err != nil {
		t.Fatal(err)
	}
	r := &memRetries{}
	c := consumer(t, cfg, r)
	defer c.Close()
	got := leaseN(t, c, 1)
	if got[0].ID != "tsk_now" {
		t.Fatalf("leased %s; the early task must wait in the retry set", got[0].ID)
	}
	next := got[0].Task
	next.Attempt++
	if err := c.Retry(ctx, next, time.Minute); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at["tsk_early#2"].Before(time.Now().Add(50*time.Minute)) || r.at["tsk_now#1"].IsZero() {
		t.Errorf("scheduled %v", r.at)
	}
}

// TestRetrySetDown: a retry the set cannot take waits in memory and is
// handed out again when due, unsettled meanwhile.
func TestRetrySetDown(t *testing.T) {
	cfg := cluster(t)
	p := producer(t, cfg)
	ctx := context.Background()
	if err := p.Enqueue(ctx, []delivery.Task{task("tsk_a")}); err != nil {
		t.Fatal(err)
	}
	r := &memRetries{fail: errors.New("redis down")}
	c := consumer(t, cfg, r)
	defer c.Close()
	got := leaseN(t, c, 1)
	if err := c.Retry(ctx, got[0].Task, 0); err != nil {
		t.Fatal(err)
	}
	back := leaseN(t, c, 1)
	if back[0].ID != "tsk_a" {
		t.Fatalf("%+v", back)
	}
}

// TestPoison: a record that is not a task is handed out with an error,
// and dead-lettering it commits past it.
func TestPoison(t *testing.T) {
	cfg := cluster(t)
	raw, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx := context.Background()
	if err := raw.ProduceSync(ctx, &kgo.Record{Value: []byte("not a task")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c := consumer(t, cfg, &memRetries{})
	got := leaseN(t, c, 1)
	if !errors.Is(got[0].Err, dispatcher.ErrUndecodable) {
		t.Fatalf("%+v", got[0])
	}
	if err := c.DeadLetter(ctx, got[0].ID, got[0].Err); err != nil {
		t.Fatal(err)
	}
	c.Close()
	again := consumer(t, cfg, &memRetries{})
	defer again.Close()
	if l, _ := again.Lease(ctx, 1, time.Minute); len(l) != 0 {
		t.Errorf("the poison record came back: %+v", l)
	}
}

func TestTooLarge(t *testing.T) {
	cfg := cluster(t)
	p := producer(t, cfg)
	big := task("tsk_big")
	big.Raw = bytes.Repeat([]byte("x"), MaxBodyBytes)
	err := p.Enqueue(context.Background(), []delivery.Task{task("tsk_small"), big})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	c := consumer(t, cfg, &memRetries{})
	defer c.Close()
	if l, _ := c.Lease(context.Background(), 1, time.Minute); len(l) != 0 {
		t.Errorf("produced despite a task too large: %+v", l)
	}
}

// TestKafkaDown: a produce to an unreachable broker fails once its
// delivery timeout passes, so the receiver can answer 503.
func TestKafkaDown(t *testing.T) {
	p := producer(t, Config{Brokers: []string{"127.0.0.1:1"}, Topic: topic, DeliveryTimeout: time.Second})
	if err := p.Enqueue(context.Background(), []delivery.Task{task("tsk_a")}); err == nil {
		t.Fatal("produce to no broker succeeded")
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		name, url string
		want      Config
		wantErr   bool
	}{
		{"two brokers", "kafka://10.0.0.1:9092,10.0.0.2:9092/regtrigger-tasks", Config{Brokers: []string{"10.0.0.1:9092", "10.0.0.2:9092"}, Topic: "regtrigger-tasks"}, false},
		{"group and timeout", "kafka://k:9092/t?group=g&timeout=3s", Config{Brokers: []string{"k:9092"}, Topic: "t", Group: "g", DeliveryTimeout: 3 * time.Second}, false},
		{"no topic", "kafka://k:9092", Config{}, true},
		{"no broker", "kafka:///t", Config{}, true},
		{"other scheme", "sqs://x/y", Config{}, true},
		{"bad timeout", "kafka://k:9092/t?timeout=soon", Config{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseURL(tt.url)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && (strings.Join(got.Brokers, ",") != strings.Join(tt.want.Brokers, ",") || got.Topic != tt.want.Topic ||
				got.Group != tt.want.Group || got.DeliveryTimeout != tt.want.DeliveryTimeout) {
				t.Errorf("%+v", got)
			}
		})
	}
}

// A task of a coalesce window, enqueued due at the window's end, is parked
// in the retry set until then: no attempt, no record of its wait.
func TestEnqueueHonoursNotBefore(t *testing.T) {
	cfg := cluster(t)
	p := producer(t, cfg)
	ctx := context.Background()
	windowed := task("tsk_window")
	windowed.NotBefore = time.Now().Add(10 * time.Second)
	if err := p.Enqueue(ctx, []delivery.Task{windowed, task("tsk_alone")}); err != nil {
		t.Fatal(err)
	}
	r := &memRetries{}
	c := consumer(t, cfg, r)
	defer c.Close()
	if got := leaseN(t, c, 1); got[0].ID != "tsk_alone" {
		t.Fatalf("leased %s first; the windowed task must wait in the retry set", got[0].ID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if at := r.at["tsk_window#0"]; at.Before(windowed.NotBefore.Add(-time.Millisecond)) {
		t.Errorf("parked until %v, want its window's end %v (all: %v)", at, windowed.NotBefore, r.at)
	}
}
