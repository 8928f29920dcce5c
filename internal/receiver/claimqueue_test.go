package receiver

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/regtrigger/regtrigger/internal/delivery"
)

// fakeClaimQueue is a ClaimQueue owning one fakeDedupe's keys, as the
// embedded store's queue owns its duplicate keys.
type fakeClaimQueue struct {
	fakeQueue
	keys   *fakeDedupe
	claims int // ClaimEnqueue calls
	err    error
}

func (q *fakeClaimQueue) ClaimEnqueue(_ context.Context, cs []Claim) ([]bool, error) {
	q.claims++
	if q.err != nil {
		return nil, q.err
	}
	fresh := make([]bool, len(cs))
	var tasks []delivery.Task
	q.keys.mu.Lock()
	defer q.keys.mu.Unlock()
	for i, c := range cs {
		if fresh[i] = c.Key == "" || !q.keys.keys[c.Key]; fresh[i] {
			if c.Key != "" {
				q.keys.keys[c.Key] = true
			}
			tasks = append(tasks, c.Tasks...)
		}
	}
	q.tasks = append(q.tasks, tasks...)
	return fresh, nil
}

func (q *fakeClaimQueue) OwnsDedupe(d Dedupe) bool { return d == Dedupe(q.keys) }

// claimRig is a rig whose queue claims the duplicate keys itself; the
// Dedupe's own Claim fails, so a call to it shows.
func claimRig() (*rig, *fakeClaimQueue) {
	r := newRig()
	q := &fakeClaimQueue{keys: r.dedup}
	r.dedup.err = errors.New("Dedupe.Claim called beside a ClaimQueue")
	r.svc.Queue = q
	return r, q
}

func TestReceiveClaimsAndEnqueuesInOneStep(t *testing.T) {
	r, q := claimRig()
	first := decodeAccepted(t, r.svc.Receive(context.Background(), Request{Body: tcrBody(t)}))
	second := decodeAccepted(t, r.svc.Receive(context.Background(), Request{Body: tcrBody(t)}))
	if first.Tasks != 1 || first.Events[0].Duplicate || len(first.Events[0].Skipped) != 2 {
		t.Fatalf("first %+v", first)
	}
	if second.Tasks != 0 || !second.Events[0].Duplicate || len(second.Events[0].Tasks) != 0 || len(second.Events[0].Skipped) != 0 {
		t.Fatalf("second %+v", second)
	}
	if q.claims != 2 || len(q.tasks) != 1 || q.tasks[0].ID != first.Events[0].Tasks[0].ID {
		t.Fatalf("%d ClaimEnqueue calls, queue %+v", q.claims, q.tasks)
	}
	if len(r.sink.recs) != 0 {
		t.Errorf("%d untriggered records stored, want none without sampling", len(r.sink.recs))
	}
}

func TestReceiveClaimEnqueueFailureAcceptsNothing(t *testing.T) {
	r, q := claimRig()
	q.err = errors.New("disk full")
	if resp := r.svc.Receive(context.Background(), Request{Body: tcrBody(t)}); resp.Status != http.StatusServiceUnavailable {
		t.Fatalf("status %d", resp.Status)
	}
	if len(r.sink.recs) != 0 || len(q.tasks) != 0 {
		t.Fatalf("a refused notification left %d records, %d tasks", len(r.sink.recs), len(q.tasks))
	}
	q.err = nil
	if a := decodeAccepted(t, r.svc.Receive(context.Background(), Request{Body: tcrBody(t)})); a.Tasks != 1 {
		t.Fatalf("the retry made %d tasks", a.Tasks)
	}
}

func TestReceiveClaimQueueOfAnotherDedupeIsNotUsed(t *testing.T) {
	r := newRig()
	q := &fakeClaimQueue{keys: &fakeDedupe{keys: map[string]bool{}}} // not r.dedup
	r.svc.Queue = q
	a := decodeAccepted(t, r.svc.Receive(context.Background(), Request{Body: tcrBody(t)}))
	if a.Tasks != 1 || q.claims != 0 || len(q.tasks) != 1 || len(r.dedup.keys) != 1 {
		t.Fatalf("answer %+v, %d ClaimEnqueue calls, %d tasks, %d keys in Dedupe", a, q.claims, len(q.tasks), len(r.dedup.keys))
	}
	// Without a Dedupe there is nothing to claim: plain Enqueue.
	r.svc.Dedupe = nil
	if a := decodeAccepted(t, r.svc.Receive(context.Background(), Request{Body: tcrBody(t)})); a.Tasks != 1 || q.claims != 0 {
		t.Fatalf("answer %+v, %d ClaimEnqueue calls", a, q.claims)
	}
}
