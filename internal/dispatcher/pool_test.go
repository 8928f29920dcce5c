package dispatcher

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/record"
)

// memQueue is an in-memory Queue with due times, for the Pool's tests.
type memQueue struct {
	mu     sync.Mutex
	items  map[string]*memItem
	acked  []string
	dead   []string
	failOn string
}

type memItem struct {
	task   delivery.Task
	due    time.Time
	err    error
	leased bool
}

func newMemQueue(tasks ...delivery.Task) *memQueue {
	q := &memQueue{items: map[string]*memItem{}}
	for _, t := range tasks {
		q.items[t.ID] = &memItem{task: t, due: time.Now()}
	}
	return q
}

func (q *memQueue) Lease(_ context.Context, max int, leaseFor time.Duration) ([]Leased, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.failOn == "lease" {
		return nil, errors.New("queue down")
	}
	var out []Leased
	now := time.Now()
	for id, it := range q.items {
		if len(out) == max {
			break
		}
		if !it.due.After(now) {
			it.due = now.Add(leaseFor)
			it.leased = true
			out = append(out, Leased{ID: id, Task: it.task, Err: it.err})
		}
	}
	return out, nil
}

func (q *memQueue) Ack(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.items, id)
	q.acked = append(q.acked, id)
	return nil
}

func (q *memQueue) Retry(_ context.Context, t delivery.Task, d time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items[t.ID] = &memItem{task: t, due: time.Now().Add(d)}
	return nil
}

func (q *memQueue) DeadLetter(_ context.Context, id string, _ error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.items, id)
	q.dead = append(q.dead, id)
	return nil
}

func (q *memQueue) NextDue(context.Context) (time.Time, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var next time.Time
	for _, it := range q.items {
		if next.IsZero() || it.due.Before(next) {
			next = it.due
		}
	}
	return next, !next.IsZero(), nil
}

func (q *memQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// scripted answers each task's attempts from a list of statuses.
type scripted struct {
	mu       sync.Mutex
	attempts map[string]int
	fail     int           // attempts that fail before success
	block    time.Duration // how long each delivery takes
}

func (s *scripted) Deliver(ctx context.Context, t delivery.Task) delivery.Outcome {
	if s.block > 0 {
		select {
		case <-time.After(s.block):
		case <-ctx.Done():
			return delivery.Outcome{Task: t, Retry: true, Record: record.Record{Status: record.Retrying, ErrorClass: record.ClassCanceled}}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[t.ID]++
	t.Attempt++
	if s.attempts[t.ID] <= s.fail {
		return delivery.Outcome{Task: t, Retry: true, Delay: 10 * time.Millisecond}
	}
	return delivery.Outcome{Task: t}
}

func task(id string) delivery.Task { return delivery.Task{ID: id} }

func runFor(t *testing.T, p *Pool, until func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for !until() {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestPoolDeliversAndRetries(t *testing.T) {
	q := newMemQueue(task("a"), task("b"), task("c"))
	eng := &scripted{attempts: map[string]int{}, fail: 2}
	p := &Pool{Queue: q, Engine: eng, Workers: 2, Idle: 5 * time.Millisecond}
	runFor(t, p, func() bool { return q.len() == 0 })
	for _, id := range []string{"a", "b", "c"} {
		if eng.attempts[id] != 3 {
			t.Errorf("%s: %d attempts, want 3", id, eng.attempts[id])
		}
	}
}

func TestPoolDeadLettersUndecodable(t *testing.T) {
	q := newMemQueue()
	q.items["junk"] = &memItem{due: time.Now(), err: Undecodable("junk", errors.New("not JSON"))}
	recs := &keptRecords{}
	p := &Pool{Queue: q, Engine: &scripted{attempts: map[string]int{}}, Workers: 1, Idle: 5 * time.Millisecond, Records: recs}
	runFor(t, p, func() bool { return q.len() == 0 })
	if len(q.dead) != 1 || q.dead[0] != "junk" {
		t.Errorf("dead letters: %v", q.dead)
	}
	recs.mu.Lock()
	defer recs.mu.Unlock()
	if len(recs.recs) != 1 || recs.recs[0].TaskID != "junk" || recs.recs[0].Status != record.Failed || recs.recs[0].ErrorClass != record.ClassUndecodable {
		t.Errorf("records: %+v", recs.recs)
	}
}

// keptRecords keeps the records it is given.
type keptRecords struct {
	mu   sync.Mutex
	recs []record.Record
}

func (k *keptRecords) Put(_ context.Context, r record.Record) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.recs = append(k.recs, r)
	return nil
}

func TestPoolSurvivesQueueErrors(t *testing.T) {
	q := newMemQueue(task("a"))
	q.failOn = "lease"
	eng := &scripted{attempts: map[string]int{}}
	p := &Pool{Queue: q, Engine: eng, Workers: 1, Idle: 5 * time.Millisecond}
	go func() { time.Sleep(50 * time.Millisecond); q.mu.Lock(); q.failOn = ""; q.mu.Unlock() }()
	runFor(t, p, func() bool { return q.len() == 0 })
}

func TestPoolShutdownRequeuesInFlight(t *testing.T) {
	q := newMemQueue(task("slow"))
	eng := &scripted{attempts: map[string]int{}, block: time.Hour}
	p := &Pool{Queue: q, Engine: eng, Workers: 1, Idle: 5 * time.Millisecond, Drain: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	time.Sleep(50 * time.Millisecond) // the delivery is in flight
	cancel()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return after the drain period")
	}
	if q.len() != 1 {
		t.Fatal("the in-flight task was lost")
	}
	q.mu.Lock()
	it := q.items["slow"]
	q.mu.Unlock()
	if it.leased || it.due.After(time.Now().Add(time.Second)) {
		t.Errorf("the task should be due again at once, not leased: %+v", it)
	}
}

func TestPoolWake(t *testing.T) {
	q := newMemQueue()
	eng := &scripted{attempts: map[string]int{}}
	p := &Pool{Queue: q, Engine: eng, Workers: 1, Idle: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	time.Sleep(20 * time.Millisecond)
	q.mu.Lock()
	q.items["late"] = &memItem{task: task("late"), due: time.Now()}
	q.mu.Unlock()
	p.Wake()
	deadline := time.Now().Add(2 * time.Second)
	for q.len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Wake did not wake the idle worker")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recordingQueue is a memQueue that stores records with settlements.
type recordingQueue struct {
	*memQueue
	records []record.Record
	plain   int // Ack and Retry calls without a record
}

func (q *recordingQueue) Ack(ctx context.Context, id string) error {
	q.plain++
	return q.memQueue.Ack(ctx, id)
}

func (q *recordingQueue) Retry(ctx context.Context, t delivery.Task, d time.Duration) error {
	q.plain++
	return q.memQueue.Retry(ctx, t, d)
}

func (q *recordingQueue) AckRecord(ctx context.Context, id string, rec record.Record) error {
	q.mu.Lock()
	q.records = append(q.records, rec)
	q.mu.Unlock()
	return q.memQueue.Ack(ctx, id)
}

func (q *recordingQueue) RetryRecord(ctx context.Context, t delivery.Task, d time.Duration, rec record.Record) error {
	q.mu.Lock()
	q.records = append(q.records, rec)
	q.mu.Unlock()
	return q.memQueue.Retry(ctx, t, d)
}

func TestPoolHandsRecordsToARecordQueue(t *testing.T) {
	q := &recordingQueue{memQueue: newMemQueue(task("a"), task("b"))}
	eng := &scripted{attempts: map[string]int{}, fail: 1}
	p := &Pool{Queue: q, Engine: eng, Workers: 2, Idle: 5 * time.Millisecond}
	runFor(t, p, func() bool { return q.len() == 0 })
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.records) != 4 || q.plain != 0 {
		t.Errorf("%d records with settlements and %d settlements without, want 4 (a retry and a success each) and 0", len(q.records), q.plain)
	}
}

func TestPoolRefusesTwoRecordStores(t *testing.T) {
	q := &recordingQueue{memQueue: newMemQueue()}
	p := &Pool{Queue: q, Engine: &delivery.Engine{Sink: discardSink{}}, Workers: 1}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := p.Run(ctx); err == nil {
		t.Fatal("Run accepted an engine that stores records over a queue that stores them too")
	}
}

type discardSink struct{}

func (discardSink) Put(context.Context, record.Record) error { return nil }
