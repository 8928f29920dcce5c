package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/signature"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// fakeSender answers every Post with a fixed response or error and keeps
// what it was sent.
type fakeSender struct {
	resp   *outbound.Response
	err    error
	wait   bool // block until the context ends
	mu     sync.Mutex
	header http.Header
	body   []byte
	url    string
}

func (f *fakeSender) Post(ctx context.Context, rawURL string, h http.Header, body []byte) (*outbound.Response, error) {
	f.mu.Lock()
	f.header, f.body, f.url = h.Clone(), body, rawURL
	f.mu.Unlock()
	if f.wait {
		<-ctx.Done()
		return nil, fmt.Errorf("post: %w", ctx.Err())
	}
	return f.resp, f.err
}

// memSink keeps records in memory.
type memSink struct {
	mu   sync.Mutex
	recs []record.Record
	err  error
}

func (m *memSink) Put(_ context.Context, r record.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, r)
	return m.err
}

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// testTrigger is the trigger of testTask, as the store holds it.
func testTrigger() trigger.Trigger {
	return trigger.Trigger{
		Name: "deploy", Enabled: true, Actions: []event.Action{event.PushImage}, Namespace: "public",
		URL:     "https://hooks.example.com/deploy?token=supersecret",
		Headers: map[string]string{"Authorization": "Bearer topsecret", "X-Team": "web"},
		Format:  payload.TCR, Secrets: []string{testSecret}, Version: 1,
	}
}

func testEvent() event.Event {
	return event.Event{
		Source: "tcr", Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1",
		Digest: "sha256:abc", ResourceURL: "r.example.com/public/nginx:v1",
		OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Operator: "me",
	}
}

var createdAt = time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC)

func testTask() Task {
	tr := testTrigger()
	return NewTask("task-1", &tr, testEvent(), createdAt)
}

var fixedNow = time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC)

// newEngine delivers to testTrigger; tests of another trigger set
// Triggers.
func newEngine(s Sender, sink record.Sink, logs *bytes.Buffer) *Engine {
	return &Engine{
		Sender: s, Sink: sink, UserAgent: "regtrigger/test", Triggers: FixedTriggers(testTrigger()),
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    func() time.Time { return fixedNow },
		Rand:   func() float64 { return 0.5 }, // no jitter
	}
}

func TestOutcomes(t *testing.T) {
	timeoutErr := &net.OpError{Op: "dial", Err: timeoutError{}}
	tests := []struct {
		name      string
		sender    *fakeSender
		attempt   int // attempts already made
		status    record.Status
		class     string
		retry     bool
		delay     time.Duration
		httpCode  int
		errSubstr string
	}{
		{name: "200", sender: &fakeSender{resp: &outbound.Response{Status: 200}}, status: record.Success, httpCode: 200},
		{name: "204", sender: &fakeSender{resp: &outbound.Response{Status: 204}}, status: record.Success, httpCode: 204},
		{name: "302 not followed", sender: &fakeSender{resp: &outbound.Response{Status: 302, Location: "http://169.254.169.254/latest?x=secret"}}, status: record.Failed, class: record.ClassRedirect, httpCode: 302},
		{name: "400 final", sender: &fakeSender{resp: &outbound.Response{Status: 400}}, status: record.Failed, class: record.ClassHTTP4xx, httpCode: 400},
		{name: "404 final", sender: &fakeSender{resp: &outbound.Response{Status: 404}}, status: record.Failed, class: record.ClassHTTP4xx, httpCode: 404},
		{name: "408 retried", sender: &fakeSender{resp: &outbound.Response{Status: 408}}, status: record.Retrying, class: record.ClassHTTP408, retry: true, delay: 30 * time.Second, httpCode: 408},
		{name: "429 honours Retry-After", sender: &fakeSender{resp: &outbound.Response{Status: 429, Header: http.Header{"Retry-After": {"120"}}}}, status: record.Retrying, class: record.ClassHTTP429, retry: true, delay: 2 * time.Minute, httpCode: 429},
		{name: "429 Retry-After bounded", sender: &fakeSender{resp: &outbound.Response{Status: 429, Header: http.Header{"Retry-After": {"999999"}}}}, status: record.Retrying, class: record.ClassHTTP429, retry: true, delay: 6 * time.Hour, httpCode: 429},
		{name: "500 retried", sender: &fakeSender{resp: &outbound.Response{Status: 500}}, status: record.Retrying, class: record.ClassHTTP5xx, retry: true, delay: 30 * time.Second, httpCode: 500},
		{name: "503 third attempt", sender: &fakeSender{resp: &outbound.Response{Status: 503}}, attempt: 2, status: record.Retrying, class: record.ClassHTTP5xx, retry: true, delay: 10 * time.Minute, httpCode: 503},
		{name: "500 last attempt fails", sender: &fakeSender{resp: &outbound.Response{Status: 500}}, attempt: 7, status: record.Failed, class: record.ClassHTTP5xx, httpCode: 500, errSubstr: "gave up after 8 attempts"},
		{name: "network error retried", sender: &fakeSender{err: errors.New("connection refused")}, status: record.Retrying, class: record.ClassNetwork, retry: true, delay: 30 * time.Second},
		{name: "timeout retried", sender: &fakeSender{err: timeoutErr}, status: record.Retrying, class: record.ClassTimeout, retry: true, delay: 30 * time.Second},
		{name: "blocked is final", sender: &fakeSender{err: &outbound.BlockedError{URL: "http://10.0.0.1/", Reason: "private address"}}, status: record.Blocked, class: record.ClassBlocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{}
			var logs bytes.Buffer
			task := testTask()
			task.Attempt = tt.attempt
			out := newEngine(tt.sender, sink, &logs).Deliver(context.Background(), task)
			r := out.Record
			if r.Status != tt.status || r.ErrorClass != tt.class || out.Retry != tt.retry || out.Delay != tt.delay || r.HTTPStatus != tt.httpCode {
				t.Fatalf("got status=%s class=%q retry=%v delay=%v http=%d; want %s %q %v %v %d",
					r.Status, r.ErrorClass, out.Retry, out.Delay, r.HTTPStatus, tt.status, tt.class, tt.retry, tt.delay, tt.httpCode)
			}
			if r.Attempt != tt.attempt+1 || out.Task.Attempt != tt.attempt+1 {
				t.Errorf("attempt %d / task attempt %d, want %d", r.Attempt, out.Task.Attempt, tt.attempt+1)
			}
			if tt.errSubstr != "" && !strings.Contains(r.Error, tt.errSubstr) {
				t.Errorf("error %q does not mention %q", r.Error, tt.errSubstr)
			}
			if tt.retry && !r.NextAttemptAt.Equal(fixedNow.Add(tt.delay)) {
				t.Errorf("next attempt at %v, want %v", r.NextAttemptAt, fixedNow.Add(tt.delay))
			}
			if len(sink.recs) != 1 || sink.recs[0].Status != tt.status {
				t.Errorf("sink got %v", sink.recs)
			}
			if r.Target != "hooks.example.com" || r.TaskID != "task-1" || r.Trigger != "deploy" || r.Repository != "nginx" || r.TriggerVersion != 1 || r.Time.IsZero() {
				t.Errorf("record fields: %+v", r)
			}
			assertNoSecrets(t, logs.String())
			b, _ := json.Marshal(r)
			assertNoSecrets(t, string(b))
		})
	}
}

func assertNoSecrets(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{"supersecret", "topsecret", testSecret, "x=secret"} {
		if strings.Contains(s, secret) {
			t.Errorf("%q leaks into %s", secret, s)
		}
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestRequestHeadersAndSignature(t *testing.T) {
	s := &fakeSender{resp: &outbound.Response{Status: 200}}
	task := testTask()
	tr := testTrigger()
	tr.Secrets = append(tr.Secrets, "whsec_dGhpcyBpcyBhIHRlc3Qgc2VjcmV0IGtleSEh")
	var logs bytes.Buffer
	e := newEngine(s, nil, &logs)
	e.Triggers = FixedTriggers(tr)
	e.Deliver(context.Background(), task)
	h := s.header
	if h.Get("Authorization") != "Bearer topsecret" || h.Get("X-Team") != "web" {
		t.Errorf("trigger headers not sent: %v", h)
	}
	if h.Get("User-Agent") != "regtrigger/test" || h.Get("Content-Type") != "application/json" {
		t.Errorf("owned headers: %v", h)
	}
	if h.Get("webhook-id") != "task-1" || h.Get("webhook-timestamp") != fmt.Sprint(fixedNow.Unix()) {
		t.Errorf("webhook-id/timestamp: %v", h)
	}
	sigs := strings.Fields(h.Get("webhook-signature"))
	if len(sigs) != 2 {
		t.Fatalf("want two signatures during rotation, got %q", h.Get("webhook-signature"))
	}
	for _, sec := range tr.Secrets {
		key, err := signature.ParseSecret(sec)
		if err != nil {
			t.Fatal(err)
		}
		if err := signature.Verify([]signature.Secret{key}, "task-1", h.Get("webhook-timestamp"), s.body, h.Get("webhook-signature"), fixedNow, 5*time.Minute); err != nil {
			t.Errorf("signature does not verify with one of the secrets: %v", err)
		}
	}
	if s.url != tr.URL {
		t.Errorf("posted to %q", s.url)
	}
}

func TestNoSecretNoSignature(t *testing.T) {
	s := &fakeSender{resp: &outbound.Response{Status: 200}}
	tr := testTrigger()
	tr.Secrets = nil
	var logs bytes.Buffer
	e := newEngine(s, nil, &logs)
	e.Triggers = FixedTriggers(tr)
	e.Deliver(context.Background(), testTask())
	if s.header.Get("webhook-signature") != "" || s.header.Get("webhook-id") == "" {
		t.Errorf("headers: %v", s.header)
	}
}

func TestRawFormatSendsOriginalBody(t *testing.T) {
	s := &fakeSender{resp: &outbound.Response{Status: 200}}
	tr := testTrigger()
	tr.Format = payload.Raw
	ev := testEvent()
	ev.Raw = []byte(`{"original": true}`)
	task := NewTask("task-1", &tr, ev, fixedNow)
	// The task survives a JSON round trip (a queue), raw body included.
	b, err := json.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	var back Task
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	e := newEngine(s, nil, &logs)
	e.Triggers = FixedTriggers(tr)
	e.Deliver(context.Background(), back)
	if string(s.body) != `{"original": true}` {
		t.Errorf("raw body = %q", s.body)
	}
}

func TestRawKeptOnlyForRawFormat(t *testing.T) {
	tr, ev := testTrigger(), testEvent()
	ev.Raw = []byte("{}")
	if NewTask("x", &tr, ev, fixedNow).Raw != nil {
		t.Error("a tcr task should not carry the raw body")
	}
}

func TestPayloadErrorIsFinal(t *testing.T) {
	s := &fakeSender{resp: &outbound.Response{Status: 200}}
	tr := testTrigger()
	tr.Format = payload.Raw // changed to raw after the event matched: no body kept
	var logs bytes.Buffer
	e := newEngine(s, nil, &logs)
	e.Triggers = FixedTriggers(tr)
	out := e.Deliver(context.Background(), testTask())
	if out.Record.Status != record.Failed || out.Record.ErrorClass != record.ClassPayload || out.Retry || !strings.Contains(out.Record.Error, "not kept") {
		t.Errorf("got %+v", out)
	}
	if s.url != "" {
		t.Error("nothing should be sent")
	}
}

func TestDeadlineFromTrigger(t *testing.T) {
	s := &fakeSender{wait: true}
	tr := testTrigger()
	tr.Timeout = trigger.Duration(50 * time.Millisecond)
	var logs bytes.Buffer
	e := newEngine(s, nil, &logs)
	e.Triggers = FixedTriggers(tr)
	out := e.Deliver(context.Background(), testTask())
	if out.Record.ErrorClass != record.ClassTimeout || !out.Retry {
		t.Errorf("got %+v", out.Record)
	}
}

func TestShutdownDoesNotCountAttempt(t *testing.T) {
	s := &fakeSender{wait: true}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	var logs bytes.Buffer
	task := testTask()
	task.Attempt = 3
	out := newEngine(s, nil, &logs).Deliver(ctx, task)
	if !out.Retry || out.Record.ErrorClass != record.ClassCanceled || out.Task.Attempt != 3 {
		t.Errorf("got retry=%v class=%q attempt=%d", out.Retry, out.Record.ErrorClass, out.Task.Attempt)
	}
}

func TestSinkFailureIsLogged(t *testing.T) {
	s := &fakeSender{resp: &outbound.Response{Status: 200}}
	var logs bytes.Buffer
	out := newEngine(s, &memSink{err: errors.New("disk full")}, &logs).Deliver(context.Background(), testTask())
	if out.Record.Status != record.Success {
		t.Errorf("status %s", out.Record.Status)
	}
	if !strings.Contains(logs.String(), "disk full") {
		t.Errorf("sink error not logged: %s", logs.String())
	}
}

func TestLogLine(t *testing.T) {
	s := &fakeSender{resp: &outbound.Response{Status: 500}}
	var logs bytes.Buffer
	newEngine(s, nil, &logs).Deliver(context.Background(), testTask())
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &line); err != nil {
		t.Fatalf("log is not one JSON line: %v\n%s", err, logs.String())
	}
	for _, k := range []string{"task_id", "trigger", "action", "namespace", "repository", "tag", "target", "status", "http_status", "attempt", "error_class", "next_attempt_at"} {
		if _, ok := line[k]; !ok {
			t.Errorf("log line lacks %q: %v", k, line)
		}
	}
}

func TestPolicy(t *testing.T) {
	p := DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for n := 1; n < p.MaxAttempts; n++ {
		total += p.Delay(n, 0, nil)
	}
	if total < 20*time.Hour || total > 28*time.Hour {
		t.Errorf("default schedule spans %v, want about a day", total)
	}
	lo, hi := p.Delay(1, 0, func() float64 { return 0 }), p.Delay(1, 0, func() float64 { return 0.999999 })
	if lo != 24*time.Second || hi < 35*time.Second || hi > 36*time.Second {
		t.Errorf("jitter range %v..%v, want 24s..36s", lo, hi)
	}
	if d := p.Delay(50, 0, nil); d != 15*time.Hour {
		t.Errorf("past the schedule: %v", d)
	}
	for _, bad := range []Policy{{MaxAttempts: 0}, {MaxAttempts: 3}, {MaxAttempts: 2, Backoff: []time.Duration{-1}}, {MaxAttempts: 2, Backoff: []time.Duration{1}, Jitter: 1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v should be invalid", bad)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"30", 30 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.v != "" {
			h.Set("Retry-After", tt.v)
		}
		if got := RetryAfter(h, now); got != tt.want {
			t.Errorf("Retry-After %q = %v, want %v", tt.v, got, tt.want)
		}
	}
}

// headerBySet is how the engine first built the request headers, one
// Header.Set at a time: the reference header must match.
func headerBySet(e *Engine, id string, t *trigger.Trigger, ctype string, now time.Time, body []byte) http.Header {
	h := http.Header{}
	for k, v := range t.Headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", ctype)
	if e.UserAgent != "" {
		h.Set("User-Agent", e.UserAgent)
	}
	h.Set(signature.HeaderID, id)
	h.Set(signature.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	if len(t.Secrets) > 0 {
		var secrets []signature.Secret
		for _, s := range t.Secrets {
			sec, _ := signature.ParseSecret(s)
			secrets = append(secrets, sec)
		}
		h.Set(signature.HeaderSignature, signature.Sign(secrets, id, now, body))
	}
	return h
}

func TestHeaderAsSet(t *testing.T) {
	const second = "whsec_dGhpcyBpcyBhIHRlc3Qgc2VjcmV0IGtleSEh"
	tests := []struct {
		name      string
		headers   map[string]string
		secrets   []string
		userAgent string
	}{
		{name: "test task", headers: map[string]string{"Authorization": "Bearer topsecret", "X-Team": "web"}, secrets: []string{testSecret}, userAgent: "regtrigger/test"},
		{name: "no headers, no secret, no user agent"},
		{name: "keys not canonical", headers: map[string]string{"x-team": "web", "X-API-KEY": "k", "x_under": "u", "x-é": "v"}, userAgent: "ua"},
		{name: "the trigger's Content-Type and User-Agent are replaced", headers: map[string]string{"content-type": "text/plain", "User-Agent": "mine"}, userAgent: "regtrigger/x"},
		{name: "the trigger's User-Agent stays without the engine's", headers: map[string]string{"user-agent": "mine"}},
		{name: "rotation", secrets: []string{testSecret, second}},
		{name: "three secrets", secrets: []string{testSecret, second, testSecret}, userAgent: "ua"},
	}
	body := []byte(`{"type":"pushImage"}`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Engine{UserAgent: tt.userAgent}
			tr := testTrigger()
			tr.Headers, tr.Secrets = tt.headers, tt.secrets
			got, err := e.header("task-1", &tr, payload.ContentTypeJSON, fixedNow, body)
			if err != nil {
				t.Fatal(err)
			}
			if want := headerBySet(e, "task-1", &tr, payload.ContentTypeJSON, fixedNow, body); !reflect.DeepEqual(got, want) {
				t.Errorf("header\n got %v\nwant %v", got, want)
			}
			// Adding to one header leaves the others as they were.
			before := got.Clone()
			for k := range got {
				got.Add(k, "added")
			}
			for k, vs := range before {
				if len(got[k]) != len(vs)+1 || !slices.Equal(got[k][:len(vs)], vs) {
					t.Errorf("%s: %q after adding to every header, was %q", k, got[k], vs)
				}
			}
		})
	}
}

func TestHeaderBadSecret(t *testing.T) {
	tr := testTrigger()
	tr.Secrets = []string{testSecret, "not-a-secret"}
	if _, err := (&Engine{}).header("task-1", &tr, payload.ContentTypeJSON, fixedNow, nil); !errors.Is(err, signature.ErrSecret) {
		t.Errorf("error %v, want a secret error", err)
	}
}
