package cloud

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dynamostore"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/testserver"
	"github.com/regtrigger/regtrigger/internal/teststack"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// The trigger's secrets in the trust test: a token in the URL's query, a
// bearer token in a header and a signing secret.
const (
	trustQuery  = "querytoken-5f1c"
	trustHeader = "Bearer headertoken-9a2e"
	trustSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

var trustSecrets = []string{trustQuery, strings.TrimPrefix(trustHeader, "Bearer "), trustSecret}

// wireRecorder is an aws.HTTPClient that keeps the bodies of every SQS
// request and answer, and of every DynamoDB request naming the records
// table: everything that reaches the queue, the dead-letter queue, the
// trigger log and the task archive.
type wireRecorder struct {
	next    aws.HTTPClient
	records string // the records table's name

	mu     sync.Mutex
	bodies []string
}

func (w *wireRecorder) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := w.next.Do(req)
	if err != nil {
		return resp, err
	}
	sqsCall := strings.HasPrefix(req.Header.Get("X-Amz-Target"), "AmazonSQS.")
	if !sqsCall && !bytes.Contains(body, []byte(w.records)) {
		return resp, nil
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	w.mu.Lock()
	w.bodies = append(w.bodies, string(body))
	if sqsCall {
		w.bodies = append(w.bodies, string(answer))
	}
	w.mu.Unlock()
	return resp, nil
}

func (w *wireRecorder) leaks() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, b := range w.bodies {
		for _, s := range trustSecrets {
			if strings.Contains(b, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// trustRig is the cloud functions' adapters (FromAWS, as in the functions)
// on dynalite and fauxqs, with every queue and records-table body recorded.
type trustRig struct {
	st       *teststack.Stack
	stack    *Stack
	engine   *delivery.Engine
	endpoint *receiver.Endpoint
	wire     *wireRecorder
	triggers trigger.Store
}

func newTrustRig(t *testing.T) *trustRig {
	t.Helper()
	st := newAWSStack(t, "trust")
	ctx := context.Background()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wire := &wireRecorder{next: awsCfg.HTTPClient, records: st.Tables.Records}
	awsCfg.HTTPClient = wire
	env := map[string]string{
		config.EnvTriggersTable: st.Tables.Triggers, config.EnvRecordsTable: st.Tables.Records, config.EnvDedupeTable: st.Tables.Dedupe,
		config.EnvQueueURL: st.QueueURL, config.EnvRegistries: "tcr=" + measureToken, config.EnvAllowPrivate: "127.0.0.1/32",
		// Edits reach the dispatcher at once (the default is 10 s).
		config.EnvTriggerCacheTTL: "1ms",
	}
	cfg, err := config.FromEnv(func(k string) string { return env[k] }, ReceiverRequires...)
	if err != nil {
		t.Fatal(err)
	}
	stack, err := FromAWS(awsCfg, cfg, "trust")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	engine, err := stack.Engine(logger)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := stack.Endpoint(logger)
	if err != nil {
		t.Fatal(err)
	}
	return &trustRig{st: st, stack: stack, engine: engine, endpoint: ep, wire: wire, triggers: st.Store.Triggers()}
}

func (r *trustRig) notify(t *testing.T, tag string) {
	t.Helper()
	resp := r.endpoint.Handle(context.Background(), receiver.Inbound{
		Method: http.MethodPost, Path: "/v1/notify",
		Header: http.Header{"Authorization": {"Bearer " + measureToken}, "Content-Type": {"application/json"}},
		Body:   tcrPush("public", "nginx", []string{tag}, time.Now()),
	})
	if resp.Status != http.StatusAccepted || !bytes.Contains(resp.Body, []byte(`"tasks":1`)) {
		t.Fatalf("notify %s: %d %s", tag, resp.Status, resp.Body)
	}
}

// dispatch does what the dispatcher function does with every message on
// the queue: deliver, then send a retry back or archive the finished task,
// and delete the message. It returns the records, in the order made.
func (r *trustRig) dispatch(t *testing.T, e *delivery.Engine) []record.Record {
	t.Helper()
	ctx := context.Background()
	var recs []record.Record
	for empty := 0; empty < 2; {
		ms, err := r.stack.Queue.Receive(ctx, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			empty++
			time.Sleep(100 * time.Millisecond)
			continue
		}
		empty = 0
		for _, m := range ms {
			if m.Err != nil {
				t.Fatalf("undecodable message: %v", m.Err)
			}
			out := e.Deliver(ctx, m.Task)
			recs = append(recs, out.Record)
			if out.Retry {
				if err := r.stack.Queue.Reschedule(ctx, out.Task, time.Hour); err != nil {
					t.Fatal(err)
				}
			} else if err := r.stack.Store.Records().Archive(ctx, out.Task); err != nil {
				t.Fatal(err)
			}
			if err := r.stack.Queue.Delete(ctx, m.ReceiptHandle); err != nil {
				t.Fatal(err)
			}
		}
	}
	return recs
}

func (r *trustRig) edit(t *testing.T, change func(*trigger.Trigger)) trigger.Trigger {
	t.Helper()
	tr, err := r.triggers.Get(context.Background(), "deploy")
	if err != nil {
		t.Fatal(err)
	}
	change(&tr)
	tr, err = r.triggers.Update(context.Background(), tr)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// hook is a webhook target that counts the requests it gets.
type hook struct {
	*httptest.Server
	mu   sync.Mutex
	got  []http.Header
	code int
}

func newHook(t *testing.T, code int) *hook {
	h := &hook{code: code}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.mu.Lock()
		h.got = append(h.got, req.Header.Clone())
		h.mu.Unlock()
		w.WriteHeader(h.code)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

// TestQueuedTasksFollowTheirTriggerOnAWS: on DynamoDB and SQS, a queued task
// refers to its trigger; the dispatcher sends to the trigger as it is when
// it sends, and no secret of the trigger is in any queue message, trigger
// log record or archived task.
func TestQueuedTasksFollowTheirTriggerOnAWS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dynalite and fauxqs")
	}
	r := newTrustRig(t)
	ctx := context.Background()
	first, second := newHook(t, http.StatusOK), newHook(t, http.StatusOK)
	_, err := r.triggers.Create(ctx, trigger.Trigger{
		Name: "deploy", Enabled: true, Actions: []event.Action{event.PushImage}, Namespace: "public", Repository: "nginx",
		URL: first.URL + "/hook?token=" + trustQuery, Headers: map[string]string{"Authorization": trustHeader},
		Secrets: []string{trustSecret}, Format: "tcr",
	})
	if err != nil {
		t.Fatal(err)
	}
	one := func(t *testing.T, recs []record.Record) record.Record {
		t.Helper()
		if len(recs) != 1 {
			t.Fatalf("%d records, want 1: %+v", len(recs), recs)
		}
		return recs[0]
	}

	t.Run("delivered to the current trigger, revision recorded", func(t *testing.T) {
		r.notify(t, "v1")
		rec := one(t, r.dispatch(t, r.engine))
		if rec.Status != record.Success || rec.TriggerVersion != 1 || first.count() != 1 {
			t.Errorf("record %+v, %d requests", rec, first.count())
		}
		if h := first.got[0]; h.Get("Authorization") != trustHeader || h.Get("Webhook-Signature") == "" {
			t.Errorf("headers sent: %v", h)
		}
	})
	t.Run("edited after the match: the new URL", func(t *testing.T) {
		r.notify(t, "v2")
		r.edit(t, func(tr *trigger.Trigger) { tr.URL = second.URL + "/hook?token=" + trustQuery })
		rec := one(t, r.dispatch(t, r.engine))
		if rec.Status != record.Success || rec.TriggerVersion != 2 || second.count() != 1 || first.count() != 1 {
			t.Errorf("record %+v; requests: old URL %d, new URL %d", rec, first.count(), second.count())
		}
	})
	t.Run("disabled after the match: skipped", func(t *testing.T) {
		r.notify(t, "v3")
		r.edit(t, func(tr *trigger.Trigger) { tr.Enabled = false })
		rec := one(t, r.dispatch(t, r.engine))
		if rec.Status != record.Skipped || rec.ErrorClass != record.ClassTriggerDisabled || second.count() != 1 {
			t.Errorf("record %+v, %d requests", rec, second.count())
		}
		r.edit(t, func(tr *trigger.Trigger) { tr.Enabled = true })
	})
	t.Run("queued work cancelled", func(t *testing.T) {
		r.notify(t, "v4")
		r.edit(t, func(tr *trigger.Trigger) { tr.CancelThrough = tr.Version })
		r.notify(t, "v5") // matched after the cancel: delivered
		recs := r.dispatch(t, r.engine)
		got := map[string]record.Status{}
		for _, rec := range recs {
			got[rec.Tag] = rec.Status
		}
		if got["v4"] != record.Cancelled || got["v5"] != record.Success || second.count() != 2 {
			t.Errorf("statuses %v, %d requests", got, second.count())
		}
	})
	t.Run("trigger store down: retried, not counted", func(t *testing.T) {
		r.notify(t, "v6")
		port, err := testserver.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		down, err := dynamostore.New(dynamostore.Config{
			Client:        dynamodb.NewFromConfig(testserver.AWSConfig(fmt.Sprint("http://127.0.0.1:", port)), func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }),
			TriggersTable: r.st.Tables.Triggers, RecordsTable: r.st.Tables.Records, DedupeTable: r.st.Tables.Dedupe,
		})
		if err != nil {
			t.Fatal(err)
		}
		e := *r.engine
		e.Triggers = down.Triggers()
		rec := one(t, r.dispatch(t, &e))
		if rec.Status != record.Retrying || rec.ErrorClass != record.ClassStore || rec.Attempt != 0 {
			t.Errorf("record %+v", rec)
		}
		// Its retry waits on the queue (an hour) for a store that works.
	})
	t.Run("deleted after the match: cancelled", func(t *testing.T) {
		r.notify(t, "v7")
		if err := r.triggers.Delete(ctx, "deploy", 0); err != nil {
			t.Fatal(err)
		}
		rec := one(t, r.dispatch(t, r.engine))
		if rec.Status != record.Cancelled || rec.ErrorClass != record.ClassTriggerDeleted || rec.Error != "trigger deleted" {
			t.Errorf("record %+v", rec)
		}
	})
	t.Run("a trigger that never existed: cancelled", func(t *testing.T) {
		ghost := delivery.Task{ID: "tsk_ghost", Trigger: delivery.TriggerRef{Namespace: "public", Name: "ghost"},
			Event: event.Event{Source: "tcr", Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v8"}}
		if err := r.stack.Queue.Enqueue(ctx, []delivery.Task{ghost}); err != nil {
			t.Fatal(err)
		}
		rec := one(t, r.dispatch(t, r.engine))
		if rec.Status != record.Cancelled || !strings.Contains(rec.Error, `no trigger named "ghost"`) {
			t.Errorf("record %+v", rec)
		}
	})

	t.Run("a message queued before the upgrade", func(t *testing.T) {
		failing := newHook(t, http.StatusServiceUnavailable)
		_, err := r.triggers.Create(ctx, trigger.Trigger{
			Name: "deploy", Enabled: true, Actions: []event.Action{event.PushImage}, Namespace: "public",
			URL: failing.URL + "/hook?token=" + trustQuery, Headers: map[string]string{"Authorization": trustHeader},
			Secrets: []string{trustSecret}, Format: "tcr",
		})
		if err != nil {
			t.Fatal(err)
		}
		// Contract v1: the whole trigger in the message.
		legacy := `{"v":1,"task":{"id":"tsk_legacy","trigger":{"name":"deploy","enabled":true,"actions":["pushImage"],` +
			`"namespace":"public","url":"` + failing.URL + `/hook?token=` + trustQuery + `","headers":{"Authorization":"` + trustHeader + `"},` +
			`"format":"tcr","secrets":["` + trustSecret + `"],"version":1},"event":{"source":"tcr","action":"pushImage",` +
			`"namespace":"public","repository":"nginx","tag":"v9","occurred_at":"2026-01-01T00:00:00Z"},"attempt":0,"created_at":"2026-01-01T00:00:01Z"}}`
		_, err = r.st.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(r.st.QueueURL), MessageBody: aws.String(legacy)})
		if err != nil {
			t.Fatal(err)
		}
		rec := one(t, r.dispatch(t, r.engine))
		if rec.Status != record.Retrying || rec.Tag != "v9" || failing.count() != 1 {
			t.Errorf("legacy message: record %+v, %d requests", rec, failing.count())
		}
		// The message sent before the upgrade held the secrets (it was
		// sent by another client, unrecorded); fauxqs's answer handing it
		// over still does. The retry sent back is contract v2 and holds none.
		r.wire.mu.Lock()
		kept, retries := r.wire.bodies[:0], 0
		for _, b := range r.wire.bodies {
			if strings.Contains(b, "tsk_legacy") && strings.Contains(b, `\"v\":1`) {
				continue
			}
			if strings.Contains(b, "tsk_legacy") {
				retries++
			}
			kept = append(kept, b)
		}
		r.wire.bodies = kept
		r.wire.mu.Unlock()
		if retries == 0 {
			t.Error("no retry of the legacy task was sent")
		}
	})

	if leaks := r.wire.leaks(); len(leaks) > 0 {
		t.Errorf("secrets of the trigger reached SQS or the records table: %v", leaks)
	}
	if n := len(r.wire.bodies); n < 20 {
		t.Errorf("only %d bodies recorded: the check saw too little", n)
	}
}
