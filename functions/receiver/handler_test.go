//go:build !scf

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/regtrigger/regtrigger/internal/auth"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/emf"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

const token = "registry-token-0123456789"

type fakeTriggers struct{ err error }

func (f fakeTriggers) Namespace(context.Context, string) ([]trigger.Trigger, error) {
	if f.err != nil {
		return nil, f.err
	}
	return []trigger.Trigger{{Name: "t", Enabled: true, Actions: []event.Action{event.PushImage}, Namespace: "public", URL: "https://example.com/hook", Format: payload.TCR}}, nil
}

type fakeQueue struct{ tasks []delivery.Task }

func (q *fakeQueue) Enqueue(_ context.Context, ts []delivery.Task) error {
	q.tasks = append(q.tasks, ts...)
	return nil
}

func newTestHandler(t *testing.T, triggers receiver.Triggers) (*handler, *fakeQueue, *bytes.Buffer) {
	t.Helper()
	a, err := auth.New([]auth.Config{{Name: "tcr", Tokens: []string{token}}})
	if err != nil {
		t.Fatal(err)
	}
	q := &fakeQueue{}
	var metrics bytes.Buffer
	logger := slog.New(slog.DiscardHandler)
	return &handler{
		endpoint: &receiver.Endpoint{Service: &receiver.Service{Triggers: triggers, Queue: q, Logger: logger}, Auth: a},
		logger:   logger, metrics: emf.New(&metrics),
	}, q, &metrics
}

func tcrBody(t *testing.T) []byte {
	b, err := os.ReadFile("../../events/bodies/tcr-push.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func request(method, path, query string, header map[string]string, body string, b64 bool) events.APIGatewayV2HTTPRequest {
	r := events.APIGatewayV2HTTPRequest{RawPath: path, RawQueryString: query, Headers: header, Body: body, IsBase64Encoded: b64}
	r.RequestContext.RequestID = "id-1"
	r.RequestContext.HTTP.Method = method
	return r
}

func TestHTTPInvocations(t *testing.T) {
	body := string(tcrBody(t))
	bearer := map[string]string{"authorization": "Bearer " + token}
	big := `{"x":"` + strings.Repeat("a", receiver.MaxBody) + `"}`
	tests := []struct {
		name   string
		req    events.APIGatewayV2HTTPRequest
		status int
		tasks  int
		header string // a response header that must be set
	}{
		{"bearer header", request("POST", "/v1/notify", "", bearer, body, false), 202, 1, ""},
		{"query token and base64", request("POST", "/v1/notify/tcr", "token="+token, nil, base64.StdEncoding.EncodeToString([]byte(body)), true), 202, 1, ""},
		{"bare function URL path", request("POST", "", "", bearer, body, false), 202, 1, ""},
		{"no token", request("POST", "/v1/notify", "", nil, body, false), 401, 0, "Www-Authenticate"},
		{"bad base64", request("POST", "/v1/notify", "", bearer, "%%%", true), 400, 0, ""},
		{"bad query string", request("POST", "/v1/notify", "token=%zz", nil, body, false), 400, 0, ""},
		{"too large plain", request("POST", "/v1/notify", "", bearer, big, false), 413, 0, ""},
		{"too large base64", request("POST", "/v1/notify", "", bearer, base64.StdEncoding.EncodeToString([]byte(big)), true), 413, 0, ""},
		{"too large but no token", request("POST", "/v1/notify", "", nil, big, false), 401, 0, ""},
		{"no method means POST", request("", "/v1/notify", "", bearer, body, false), 202, 1, ""},
		{"health", request("GET", "/healthz", "", nil, "", false), 200, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, q, metrics := newTestHandler(t, fakeTriggers{})
			raw, _ := json.Marshal(tt.req)
			out, err := h.invoke(context.Background(), raw)
			if err != nil {
				t.Fatalf("an HTTP request must get an HTTP answer, not %v", err)
			}
			resp := out.(events.APIGatewayV2HTTPResponse)
			if resp.StatusCode != tt.status || len(q.tasks) != tt.tasks {
				t.Fatalf("status %d, %d tasks; want %d, %d: %s", resp.StatusCode, len(q.tasks), tt.status, tt.tasks, resp.Body)
			}
			if resp.Headers["Content-Type"] != "application/json" || !json.Valid([]byte(resp.Body)) {
				t.Errorf("answer %v %q", resp.Headers, resp.Body)
			}
			if tt.header != "" && resp.Headers[tt.header] == "" {
				t.Errorf("header %s missing: %v", tt.header, resp.Headers)
			}
			if !strings.Contains(metrics.String(), `"Status":"`) {
				t.Errorf("no metric line: %s", metrics)
			}
		})
	}
}

func TestResponseHeaders(t *testing.T) {
	got := response(receiver.Response{Status: 200, Header: http.Header{"One": {"a"}, "Two": {"b", "c"}}, Body: []byte(`{}`)})
	if got.Headers["One"] != "a" || len(got.MultiValueHeaders["Two"]) != 2 || got.Body != "{}\n" {
		t.Errorf("%+v", got)
	}
}

func TestEventBridgeInvocations(t *testing.T) {
	push, err := os.ReadFile("../../internal/registry/testdata/registry-payloads/aws-ecr/image-action-push.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		triggers receiver.Triggers
		body     []byte
		retry    bool
		tasks    int
	}{
		{"push enqueued", ecrTriggers{}, push, false, 1},
		{"store down is retried", fakeTriggers{err: errors.New("dynamodb down")}, push, true, 0},
		{"refused event is not retried", ecrTriggers{}, []byte(`{"version":"0","id":"x","detail-type":"ECR Image Action","source":"aws.ecr","detail":{"action-type":"PUSH"}}`), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, q, metrics := newTestHandler(t, tt.triggers)
			out, err := h.invoke(context.Background(), tt.body)
			if out != nil || errors.Is(err, errRetry) != tt.retry || (!tt.retry && err != nil) {
				t.Fatalf("invoke = %v, %v; want retry %v", out, err, tt.retry)
			}
			if len(q.tasks) != tt.tasks {
				t.Errorf("%d tasks, want %d", len(q.tasks), tt.tasks)
			}
			if tt.tasks > 0 && (q.tasks[0].Event.Source != "ecr" || q.tasks[0].Event.ResourceURL == "") {
				t.Errorf("task event %+v", q.tasks[0].Event)
			}
			if !strings.Contains(metrics.String(), `"Notifications":1`) {
				t.Errorf("metrics %s", metrics)
			}
		})
	}
}

// ecrTriggers has one trigger for every repository of the namespace the
// ECR fixture's repository splits into.
type ecrTriggers struct{}

func (ecrTriggers) Namespace(_ context.Context, ns string) ([]trigger.Trigger, error) {
	return []trigger.Trigger{{Name: "ecr", Enabled: true, Actions: []event.Action{event.PushImage}, Namespace: ns, URL: "https://example.com/hook", Format: payload.TCR}}, nil
}

func TestUnknownInvocations(t *testing.T) {
	h, _, _ := newTestHandler(t, fakeTriggers{})
	for _, raw := range []string{`[]`, `{"Records":[]}`, `"x"`, `{"detail-type":"ECR Image Action"}`} {
		if _, err := h.invoke(context.Background(), json.RawMessage(raw)); err == nil {
			t.Errorf("%s: accepted", raw)
		}
	}
}
