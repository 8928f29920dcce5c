package cloud

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/regtrigger/regtrigger/internal/coalesce/coalescetest"
	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// TestBurstCoalescesOnAWS: a burst of 8 events sent half to one receiver
// and half to another (two Lambda instances: two stacks, two trigger
// caches) on dynalite and fauxqs, dispatched by two engines in turn: one
// delivery per trigger with a coalesce window, listing every tag and
// digest, and 8 for the trigger without one. The window's state is only in
// DynamoDB, the wait only in SQS's message delay.
func TestBurstCoalescesOnAWS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dynalite and fauxqs")
	}
	st := newAWSStack(t, "coalesce")
	ctx := context.Background()
	var mu sync.Mutex
	got := map[string][][]byte{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[r.URL.Path] = append(got[r.URL.Path], b)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	push := []event.Action{event.PushImage}
	for _, tr := range []trigger.Trigger{
		{Name: "deploy", Enabled: true, Actions: push, Namespace: "team", Repository: "app", URL: hook.URL + "/deploy", Format: "tcr", Coalesce: trigger.Duration(2 * time.Second)},
		{Name: "events", Enabled: true, Actions: push, Namespace: "team", Repository: "app", URL: hook.URL + "/events", Format: "cloudevents", Coalesce: trigger.Duration(2 * time.Second)},
		{Name: "each", Enabled: true, Actions: push, Namespace: "team", Repository: "app", URL: hook.URL + "/each", Format: "tcr"},
	} {
		if _, err := st.Store.Triggers().Create(ctx, tr); err != nil {
			t.Fatal(err)
		}
	}

	// Two instances of each function, as Lambda runs them.
	env := map[string]string{
		config.EnvTriggersTable: st.Tables.Triggers, config.EnvRecordsTable: st.Tables.Records, config.EnvDedupeTable: st.Tables.Dedupe,
		config.EnvQueueURL: st.QueueURL, config.EnvRegistries: "registry=" + measureToken, config.EnvAllowPrivate: "127.0.0.1/32",
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] }, ReceiverRequires...)
	if err != nil {
		t.Fatal(err)
	}
	var endpoints []*receiver.Endpoint
	var engines []*delivery.Engine
	var stacks []*Stack
	for range 2 {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stack, err := FromAWS(awsCfg, cfg, "test")
		if err != nil {
			t.Fatal(err)
		}
		logger := slog.New(slog.DiscardHandler)
		ep, err := stack.Endpoint(logger)
		if err != nil {
			t.Fatal(err)
		}
		e, err := stack.Engine(logger)
		if err != nil {
			t.Fatal(err)
		}
		stacks, endpoints, engines = append(stacks, stack), append(endpoints, ep), append(engines, e)
	}
	for i, body := range coalescetest.DistributionBurst(time.Now()) {
		resp := endpoints[i*2/8].Handle(ctx, receiver.Inbound{
			Method: http.MethodPost, Path: "/v1/notify",
			Header: http.Header{"Authorization": {"Bearer " + measureToken}, "Content-Type": {"application/vnd.docker.distribution.events.v1+json"}},
			Body:   body,
		})
		if resp.Status != http.StatusAccepted {
			t.Fatalf("notification %d: %d %s", i, resp.Status, resp.Body)
		}
	}

	// Dispatch as the event source mapping would, alternating the two
	// instances, until every task has settled.
	var recs []record.Record
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; len(recs) < 3*8; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tasks settled within 30 s: %+v", len(recs), 3*8, recs)
		}
		stack := stacks[n%2]
		ms, err := stack.Queue.Receive(ctx, 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Err != nil {
				t.Fatalf("undecodable message: %v", m.Err)
			}
			out := engines[n%2].Deliver(ctx, m.Task)
			if out.Retry {
				t.Fatalf("task %s retried: %+v", m.Task.ID, out.Record)
			}
			recs = append(recs, out.Record)
			if err := stack.Queue.Delete(ctx, m.ReceiptHandle); err != nil {
				t.Fatal(err)
			}
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if len(got["/each"]) != 8 || len(got["/deploy"]) != 1 || len(got["/events"]) != 1 {
		t.Fatalf("deliveries: each %d, deploy %d, events %d; want 8, 1, 1", len(got["/each"]), len(got["/deploy"]), len(got["/events"]))
	}
	var tcr struct {
		EventData struct {
			Resources []struct{ Digest, Tag string } `json:"resources"`
		} `json:"event_data"`
	}
	if err := json.Unmarshal(got["/deploy"][0], &tcr); err != nil || len(tcr.EventData.Resources) != 8 {
		t.Errorf("tcr body lists %d resources (%v), want 8: %s", len(tcr.EventData.Resources), err, got["/deploy"][0])
	}
	var ce struct {
		Data struct {
			Events []event.Event `json:"events"`
		} `json:"data"`
	}
	if err := json.Unmarshal(got["/events"][0], &ce); err != nil || len(ce.Data.Events) != 8 {
		t.Errorf("cloudevents data.events: %d (%v), want 8", len(ce.Data.Events), err)
	}
	count := map[string]map[record.Status]int{}
	for _, r := range recs {
		if count[r.Trigger] == nil {
			count[r.Trigger] = map[record.Status]int{}
		}
		count[r.Trigger][r.Status]++
	}
	for name, want := range map[string]map[record.Status]int{
		"deploy": {record.Success: 1, record.Coalesced: 7},
		"events": {record.Success: 1, record.Coalesced: 7},
		"each":   {record.Success: 8},
	} {
		for s, n := range want {
			if count[name][s] != n {
				t.Errorf("%s: %d %s records, want %d (all: %v)", name, count[name][s], s, n, count[name])
			}
		}
	}
}
