package receiver

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/coalesce"
	"github.com/regtrigger/regtrigger/internal/coalesce/coalescetest"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

func coalescingRig(w coalesce.Store) *rig {
	r := newRig()
	ts := triggers()
	window := ts[0]
	window.Name, window.Coalesce = "window", trigger.Duration(10*time.Second)
	r.trig.ts = append(ts, window)
	r.svc.Windows = w
	return r
}

func TestReceiveJoinsCoalesceWindows(t *testing.T) {
	w := &coalesce.MemStore{}
	r := coalescingRig(w)
	now := r.svc.Now()
	a := decodeAccepted(t, r.svc.Receive(context.Background(), Request{Body: tcrBody(t)}))
	if a.Tasks != 2 || len(r.queue.tasks) != 2 {
		t.Fatalf("answer %+v, queue %+v", a, r.queue.tasks)
	}
	for _, task := range r.queue.tasks {
		switch task.Trigger.Name {
		case "window":
			if !task.Coalescing || !task.NotBefore.Equal(now.Add(10*time.Second)) {
				t.Errorf("task of the trigger with a window: coalescing %v, not before %v", task.Coalescing, task.NotBefore)
			}
			c, err := coalesce.Windows{Store: w}.Close(context.Background(), coalesce.Key("window", task.Event), task.ID, now.Add(10*time.Second))
			if err != nil || c.By != task.ID || len(c.Events) != 1 {
				t.Errorf("its window: %+v, %v", c, err)
			}
		default:
			if task.Coalescing || !task.NotBefore.IsZero() {
				t.Errorf("task of a trigger without a window waits: %+v", task)
			}
		}
	}
}

// A window store that is down refuses the notification before anything
// is claimed: the registry's retry goes through.
func TestReceiveWindowStoreDownLosesNothing(t *testing.T) {
	r := coalescingRig(coalescetest.Down{})
	if resp := r.svc.Receive(context.Background(), Request{Body: tcrBody(t)}); resp.Status != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	if len(r.queue.tasks) != 0 || len(r.dedup.keys) != 0 {
		t.Fatalf("after a refusal: %d tasks queued, %d keys claimed", len(r.queue.tasks), len(r.dedup.keys))
	}
	r.svc.Windows = &coalesce.MemStore{}
	if a := decodeAccepted(t, r.svc.Receive(context.Background(), Request{Body: tcrBody(t)})); a.Tasks != 2 {
		t.Fatalf("the retry made %d tasks", a.Tasks)
	}
}
