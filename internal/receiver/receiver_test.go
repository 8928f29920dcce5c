package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/auth"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// Small fakes of the adapters, next to the consumer.

type fakeTriggers struct {
	ts    []trigger.Trigger
	err   error
	calls int
}

func (f *fakeTriggers) Namespace(_ context.Context, ns string) ([]trigger.Trigger, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	var out []trigger.Trigger
	for _, t := range f.ts {
		if t.Namespace == ns {
			out = append(out, t)
		}
	}
	return out, nil
}

type fakeQueue struct {
	tasks []delivery.Task
	err   error
}

func (q *fakeQueue) Enqueue(_ context.Context, ts []delivery.Task) error {
	if q.err != nil {
		return q.err
	}
	q.tasks = append(q.tasks, ts...)
	return nil
}

type fakeDedupe struct {
	mu   sync.Mutex
	keys map[string]bool
	err  error
}

func (d *fakeDedupe) Claim(_ context.Context, k string, _ time.Duration) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return false, d.err
	}
	if d.keys[k] {
		return false, nil
	}
	d.keys[k] = true
	return true, nil
}

func (d *fakeDedupe) Release(_ context.Context, k string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.keys, k)
	return nil
}

type fakeSink struct{ recs []record.Record }

func (s *fakeSink) Put(_ context.Context, r record.Record) error {
	s.recs = append(s.recs, r)
	return nil
}

func tcrBody(t *testing.T) []byte {
	b, err := os.ReadFile("../registry/testdata/registry-payloads/tencent-tcr/pushImage.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func triggers() []trigger.Trigger {
	mk := func(name, tag string, actions ...event.Action) trigger.Trigger {
		return trigger.Trigger{Name: name, Enabled: true, Namespace: "public", Repository: "nginx", Tag: tag, Actions: actions, URL: "https://example.com/" + name, Version: 1}
	}
	return []trigger.Trigger{
		mk("fires", "v1.*", event.PushImage),
		mk("wrong-tag", "release-*", event.PushImage),
		mk("wrong-action", "", event.DeleteImage),
	}
}

type rig struct {
	svc   *Service
	trig  *fakeTriggers
	queue *fakeQueue
	dedup *fakeDedupe
	sink  *fakeSink
	logs  *bytes.Buffer
}

func newRig() *rig {
	r := &rig{trig: &fakeTriggers{ts: triggers()}, queue: &fakeQueue{}, dedup: &fakeDedupe{keys: map[string]bool{}}, sink: &fakeSink{}, logs: &bytes.Buffer{}}
	r.svc = &Service{Triggers: r.trig, Queue: r.queue, Dedupe: r.dedup, Records: r.sink,
		Logger: slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }}
	return r
}

func decodeAccepted(t *testing.T, resp Response) Accepted {
	t.Helper()
	if resp.Status != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	var a Accepted
	if err := json.Unmarshal(resp.Body, &a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestReceiveEnqueuesAndExplainsNearMisses(t *testing.T) {
	r := newRig()
	a := decodeAccepted(t, r.svc.Receive(context.Background(), Request{ID: "req_1", Body: tcrBody(t)}))
	if a.Source != "tcr" || a.Tasks != 1 || len(a.Events) != 1 || len(a.Events[0].Tasks) != 1 || a.Events[0].Tasks[0].Trigger != "fires" {
		t.Fatalf("answer %+v", a)
	}
	if len(r.queue.tasks) != 1 || r.queue.tasks[0].ID != a.Events[0].Tasks[0].ID || r.queue.tasks[0].Trigger.Name != "fires" {
		t.Fatalf("queue %+v", r.queue.tasks)
	}
	// The reasons are in the answer and the Debug log, not in the store.
	reasons := map[string]string{}
	for _, sk := range a.Events[0].Skipped {
		reasons[sk.Trigger] = sk.Reason
	}
	if !strings.Contains(reasons["wrong-tag"], "tag") || !strings.Contains(reasons["wrong-action"], "action") || len(reasons) != 2 {
		t.Errorf("untriggered reasons %v", reasons)
	}
	if n := strings.Count(r.logs.String(), `"msg":"untriggered"`); n != 2 {
		t.Errorf("%d untriggered log lines, want 2", n)
	}
	if len(r.sink.recs) != 0 {
		t.Errorf("%d untriggered records stored without sampling", len(r.sink.recs))
	}
	if !strings.Contains(r.logs.String(), `"request_id":"req_1"`) {
		t.Errorf("request id not logged: %s", r.logs)
	}
}

// TestReceiveSamplesUntriggered: SampleUntriggered stores one untriggered
// record in every N, counted across notifications.
func TestReceiveSamplesUntriggered(t *testing.T) {
	tests := []struct {
		name   string
		sample int
		want   int // records of 4 notifications, 2 near misses each
	}{
		{"off", 0, 0},
		{"all", 1, 8},
		{"every third", 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig()
			r.svc.SampleUntriggered = tt.sample
			for i := range 4 {
				body := bytes.ReplaceAll(tcrBody(t), []byte("1.10.0"), []byte(fmt.Sprintf("1.10.%d", i)))
				decodeAccepted(t, r.svc.Receive(context.Background(), Request{Body: body}))
			}
			if len(r.sink.recs) != tt.want {
				t.Fatalf("%d records, want %d", len(r.sink.recs), tt.want)
			}
			for _, rec := range r.sink.recs {
				if rec.Status != record.Untriggered || rec.Reason == "" {
					t.Errorf("record %+v", rec)
				}
			}
		})
	}
}

// TestReceiveNothingSelectedCostsNothing: an event no trigger fires (an
// action no trigger selects, a disabled trigger, another tag) claims no
// duplicate key and stores no record; it is answered as new every time.
func TestReceiveNothingSelectedCostsNothing(t *testing.T) {
	r := newRig()
	r.trig.ts = append(r.trig.ts[1:], trigger.Trigger{Name: "off", Enabled: false, Namespace: "public", Repository: "nginx",
		Actions: []event.Action{event.PushImage}, URL: "https://example.com/off", Version: 1})
	for i := range 2 {
		a := decodeAccepted(t, r.svc.Receive(context.Background(), Request{Body: tcrBody(t)}))
		if a.Tasks != 0 || a.Events[0].Duplicate || len(a.Events[0].Skipped) != 3 {
			t.Fatalf("notification %d: %+v", i, a)
		}
	}
	if len(r.dedup.keys) != 0 || len(r.sink.recs) != 0 || len(r.queue.tasks) != 0 {
		t.Errorf("%d keys claimed, %d records, %d tasks", len(r.dedup.keys), len(r.sink.recs), len(r.queue.tasks))
	}
}

func TestReceiveDuplicateMakesNoTask(t *testing.T) {
	r := newRig()
	first := decodeAccepted(t, r.svc.Receive(context.Background(), Request{Body: tcrBody(t)}))
	second := decodeAccepted(t, r.svc.Receive(context.Background(), Request{Body: tcrBody(t)}))
	if first.Tasks != 1 || second.Tasks != 0 || !second.Events[0].Duplicate {
		t.Fatalf("first %+v second %+v", first, second)
	}
	if len(r.queue.tasks) != 1 {
		t.Fatalf("queue holds %d tasks", len(r.queue.tasks))
	}
}

func TestTaskIDsAreStable(t *testing.T) {
	a := decodeAccepted(t, newRig().svc.Receive(context.Background(), Request{Body: tcrBody(t)}))
	b := decodeAccepted(t, newRig().svc.Receive(context.Background(), Request{Body: tcrBody(t)}))
	if a.Events[0].Tasks[0].ID != b.Events[0].Tasks[0].ID || !strings.HasPrefix(a.Events[0].Tasks[0].ID, "tsk_") {
		t.Errorf("task ids %q and %q", a.Events[0].Tasks[0].ID, b.Events[0].Tasks[0].ID)
	}
}

func TestReceiveFailuresLoseNothing(t *testing.T) {
	t.Run("store down", func(t *testing.T) {
		r := newRig()
		r.trig.err = errors.New("connection refused")
		if resp := r.svc.Receive(context.Background(), Request{Body: tcrBody(t)}); resp.Status != http.StatusServiceUnavailable {
			t.Fatalf("status %d", resp.Status)
		}
	})
	t.Run("dedupe store down", func(t *testing.T) {
		r := newRig()
		r.dedup.err = errors.New("timeout")
		if resp := r.svc.Receive(context.Background(), Request{Body: tcrBody(t)}); resp.Status != http.StatusServiceUnavailable {
			t.Fatalf("status %d", resp.Status)
		}
	})
	t.Run("queue down releases the duplicate key so the registry's retry goes through", func(t *testing.T) {
		r := newRig()
		r.queue.err = errors.New("queue down")
		if resp := r.svc.Receive(context.Background(), Request{Body: tcrBody(t)}); resp.Status != http.StatusServiceUnavailable {
			t.Fatalf("status %d", resp.Status)
		}
		if len(r.sink.recs) != 0 {
			t.Error("untriggered records written for a refused notification")
		}
		r.queue.err = nil
		a := decodeAccepted(t, r.svc.Receive(context.Background(), Request{Body: tcrBody(t)}))
		if a.Tasks != 1 {
			t.Fatalf("the retry made %d tasks", a.Tasks)
		}
	})
}

func TestReceiveRefusesBadBodies(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		source string
		status int
	}{
		{"not JSON", "<xml/>", "", http.StatusBadRequest},
		{"unknown format", `{"a":1}`, "", http.StatusUnsupportedMediaType},
		{"malformed harbor", `{"type":"pushImage","occur_at":1,"event_data":{}}`, "", http.StatusUnprocessableEntity},
		{"unsupported type", `{"type":"NEW_THING","occur_at":1,"event_data":{}}`, "", http.StatusUnprocessableEntity},
		{"unknown source", `{}`, "gitea", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig()
			resp := r.svc.Receive(context.Background(), Request{Body: []byte(tt.body), Source: tt.source})
			if resp.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tt.status, resp.Body)
			}
			var p Problem
			if err := json.Unmarshal(resp.Body, &p); err != nil || p.Detail == "" {
				t.Errorf("problem body %s", resp.Body)
			}
		})
	}
}

func TestMatcherCompiledOncePerVersion(t *testing.T) {
	r := newRig()
	for i := 0; i < 3; i++ {
		r.svc.Receive(context.Background(), Request{Body: tcrBody(t)})
	}
	m1, _ := r.svc.matcherFor(context.Background(), "public")
	m2, _ := r.svc.matcherFor(context.Background(), "public")
	if m1 != m2 {
		t.Error("the matcher was rebuilt for unchanged triggers")
	}
	r.trig.ts[0].Version = 2
	if m3, _ := r.svc.matcherFor(context.Background(), "public"); m3 == m1 {
		t.Error("the matcher was not rebuilt after a trigger changed")
	}
}

func TestHTTPHandler(t *testing.T) {
	const tok = "0123456789abcdef0123"
	authn, err := auth.New([]auth.Config{{Name: "tcr", Tokens: []string{tok}}})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig()
	srv := httptest.NewServer(&Endpoint{Service: r.svc, Auth: authn})
	defer srv.Close()
	post := func(path string, body []byte, h ...string) int {
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	tests := []struct {
		name   string
		path   string
		body   []byte
		header []string
		want   int
	}{
		{"bearer", "/v1/notify", tcrBody(t), []string{"Authorization", "Bearer " + tok}, http.StatusAccepted},
		{"query token", "/v1/notify/tcr?token=" + tok, tcrBody(t), nil, http.StatusAccepted},
		{"no token", "/v1/notify", tcrBody(t), nil, http.StatusUnauthorized},
		{"bad token", "/v1/notify", tcrBody(t), []string{"Authorization", "Bearer nope-nope-nope-nope"}, http.StatusUnauthorized},
		{"too large", "/v1/notify", bytes.Repeat([]byte("a"), MaxBody+1), []string{"Authorization", "Bearer " + tok}, http.StatusRequestEntityTooLarge},
		{"forced wrong source", "/v1/notify/dockerhub", tcrBody(t), []string{"Authorization", "Bearer " + tok}, http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := post(tt.path, tt.body, tt.header...); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz: %v %v", resp, err)
	}
	resp, _ = http.Get(srv.URL + "/v1/notify")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/notify: %d", resp.StatusCode)
	}
	resp, _ = http.Get(srv.URL + "/elsewhere")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /elsewhere: %d", resp.StatusCode)
	}
	if got := post("/v1/notify/tcr/extra?token="+tok, tcrBody(t)); got != http.StatusNotFound {
		t.Errorf("nested source path: %d", got)
	}
	if got := post("/?token="+tok, tcrBody(t)); got != http.StatusAccepted {
		t.Errorf("bare function URL root: %d", got)
	}
}

func TestOpenModeRefusesRemoteClients(t *testing.T) {
	if !isLoopback("127.0.0.1:5555") || !isLoopback("[::1]:80") || isLoopback("10.0.0.1:80") || isLoopback("garbage") {
		t.Error("isLoopback")
	}
}

// TestFingerprintTaskID pins the duplicate keys and task ids: they are
// stored (dedupe keys, queued tasks, log records) and sent as webhook-id,
// so a change of how they are computed would let a re-sent notification
// through as new and give its deliveries new ids. The values are those of
// the first implementation (sha256 over the NUL-joined fields, hex).
func TestFingerprintTaskID(t *testing.T) {
	tests := []struct {
		name           string
		ev             event.Event
		fp, id, idLong string // idLong: for a 64-character trigger name
	}{
		{
			name:   "zero event",
			fp:     "09cbf30546fb8c389bfde13c3c0b21daaef9cfd189c29c903124b43f879d87d5",
			id:     "tsk_968e50b2d0d28796939107b15ebb56d8",
			idLong: "tsk_0877f94cb77646ed8e13f5d652839084",
		},
		{
			name: "tcr push",
			ev: event.Event{Source: "tcr", Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1.10.0",
				Digest: "sha256:" + strings.Repeat("ab", 32), ResourceURL: "r.example.com/public/nginx:v1.10.0",
				OccurredAt: time.Date(2026, 12, 1, 23, 59, 58, 123456789, time.UTC)},
			fp:     "95bffe7985f567c3f03b9079d3af66589a35f97e637591148082ddfab0ecf318",
			id:     "tsk_59c2b718ef8faa4cf4b151a001e1fd2c",
			idLong: "tsk_5b013bf426f5128286e072c5b212c73e",
		},
		{
			name:   "delete by digest before 1970",
			ev:     event.Event{Source: "harbor", Action: event.DeleteImage, Namespace: "team", Repository: "a/b/c", Digest: "sha256:00", OccurredAt: time.Unix(-5, 0)},
			fp:     "c78b9259415a02db704d91456c15733c9ad3fd1e7d3ce70a2cc4c8b5d86bbc52",
			id:     "tsk_7336588931fb1018d72d9701d8bcf2e3",
			idLong: "tsk_17629285c190dc18f6d39bf7c827c563",
		},
		{
			name: "fields longer than the stack buffer, non-ASCII tag, other zone",
			ev: event.Event{Source: "ghcr", Action: event.PushImage, Namespace: "ns", Repository: strings.Repeat("deep/", 60) + "repo",
				Tag: "ünïcode", ResourceURL: "ghcr.io/x", OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))},
			fp:     "14745db9db21d4726ceb79d1708f18c4c1a81bff3eb4f50aae07f71375493442",
			id:     "tsk_e49682f9a2bf3231ba9e604e9f122586",
			idLong: "tsk_e81763a8bc322b0288ac0cb71110c1c2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := Fingerprint(tt.ev)
			if fp != tt.fp {
				t.Errorf("Fingerprint = %s, want %s", fp, tt.fp)
			}
			if id := TaskID(fp, "deploy"); id != tt.id {
				t.Errorf("TaskID(deploy) = %s, want %s", id, tt.id)
			}
			if id := TaskID(fp, strings.Repeat("n", 64)); id != tt.idLong {
				t.Errorf("TaskID(64 n) = %s, want %s", id, tt.idLong)
			}
		})
	}
}
