package scf

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tencentyun/scf-go-lib/events"
	"github.com/tencentyun/scf-go-lib/functioncontext"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/record"
)

func withRequestID(id string) context.Context {
	return functioncontext.NewContext(context.Background(), &functioncontext.FunctionContext{RequestID: id})
}

func TestInbound(t *testing.T) {
	body := `{"type":"pushImage"}`
	tests := []struct {
		name    string
		event   string
		ctx     context.Context
		check   func(t *testing.T, in receiver.Inbound)
		refused int
	}{
		{"headers, query arrays and flags", `{"httpMethod":"post","path":"/v1/notify/tcr","headers":{"authorization":"Bearer x","Content-Type":"application/json"},
			"queryString":{"token":"t1","many":["a","b"],"flag":true},"body":` + jsonString(body) + `,"requestContext":{"requestId":"gw-1"}}`, context.Background(),
			func(t *testing.T, in receiver.Inbound) {
				if in.Method != "POST" || in.Path != "/v1/notify/tcr" || in.Header.Get("Authorization") != "Bearer x" || in.Header.Get("content-type") != "application/json" {
					t.Errorf("%+v", in)
				}
				if in.Query.Get("token") != "t1" || len(in.Query["many"]) != 2 || !in.Query.Has("flag") {
					t.Errorf("query %v", in.Query)
				}
				if string(in.Body) != body || in.ID != "gw-1" || in.Loopback || in.TooLarge {
					t.Errorf("%+v", in)
				}
			}, 0},
		{"base64 body, SCF request id first", `{"httpMethod":"POST","path":"/","isBase64Encoded":true,"body":"` + base64.StdEncoding.EncodeToString([]byte(body)) + `","requestContext":{"requestId":"gw-2"}}`, withRequestID("scf-1"),
			func(t *testing.T, in receiver.Inbound) {
				if string(in.Body) != body || in.ID != "scf-1" {
					t.Errorf("%+v", in)
				}
			}, 0},
		{"method from the request context", `{"path":"/v1/notify","requestContext":{"httpMethod":"POST"}}`, context.Background(),
			func(t *testing.T, in receiver.Inbound) {
				if in.Method != "POST" {
					t.Errorf("method %q", in.Method)
				}
			}, 0},
		{"too large is not decoded", `{"httpMethod":"POST","path":"/","isBase64Encoded":true,"body":"` + strings.Repeat("A", base64.StdEncoding.EncodedLen(receiver.MaxBody)+4) + `"}`, context.Background(),
			func(t *testing.T, in receiver.Inbound) {
				if !in.TooLarge || in.Body != nil {
					t.Errorf("TooLarge %v, %d bytes", in.TooLarge, len(in.Body))
				}
			}, 0},
		{"bad base64", `{"httpMethod":"POST","path":"/","isBase64Encoded":true,"body":"%%%"}`, context.Background(), nil, http.StatusBadRequest},
		{"client address from API Gateway", `{"httpMethod":"POST","path":"/","requestContext":{"sourceIp":"198.51.100.7"}}`, context.Background(),
			func(t *testing.T, in receiver.Inbound) {
				if in.Remote != "198.51.100.7" {
					t.Errorf("remote %q", in.Remote)
				}
			}, 0},
		{"client address from a function URL", `{"httpMethod":"POST","path":"/","headers":{"x-scf-remote-addr":"198.51.100.8"}}`, context.Background(),
			func(t *testing.T, in receiver.Inbound) {
				if in.Remote != "198.51.100.8" {
					t.Errorf("remote %q", in.Remote)
				}
			}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			if err := json.Unmarshal([]byte(tt.event), &req); err != nil {
				t.Fatal(err)
			}
			in, bad := Inbound(tt.ctx, req)
			if bad.Status != tt.refused {
				t.Fatalf("refused with %d, want %d", bad.Status, tt.refused)
			}
			if tt.check != nil {
				tt.check(t, in)
			}
		})
	}
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestResponse(t *testing.T) {
	got := Response(receiver.Response{Status: 401, Header: http.Header{"Www-Authenticate": {"Bearer"}, "Two": {"a", "b"}}, Body: []byte(`{"status":401}`)})
	want := events.APIGatewayResponse{StatusCode: 401, Headers: map[string]string{"Content-Type": "application/json", "Www-Authenticate": "Bearer", "Two": "a, b"}, Body: "{\"status\":401}\n"}
	if got.StatusCode != want.StatusCode || got.Body != want.Body || len(got.Headers) != 3 || got.Headers["Two"] != "a, b" || got.IsBase64Encoded {
		t.Errorf("%+v", got)
	}
}

func TestLoggerAddsRequestID(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(&buf, slog.LevelInfo).With(slog.String("task_id", "tsk_1"))
	l.InfoContext(withRequestID("scf-7"), "delivery")
	l.InfoContext(context.Background(), "no invocation")
	l.DebugContext(withRequestID("scf-8"), "below the level")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"requestId":"scf-7"`) || !strings.Contains(lines[0], `"task_id":"tsk_1"`) || strings.Contains(lines[1], "requestId") {
		t.Errorf("lines:\n%s", buf.String())
	}
}

// memQueue is a dispatcher.Queue of n tasks in memory.
type memQueue struct {
	mu     sync.Mutex
	tasks  []delivery.Task
	acked  int
	leases int
}

func (q *memQueue) Lease(ctx context.Context, max int, _ time.Duration) ([]dispatcher.Leased, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.leases++
	if len(q.tasks) == 0 {
		return nil, nil
	}
	t := q.tasks[0]
	q.tasks = q.tasks[1:]
	return []dispatcher.Leased{{ID: t.ID, Task: t}}, nil
}
func (q *memQueue) Ack(context.Context, string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.acked++
	return nil
}
func (q *memQueue) Retry(context.Context, delivery.Task, time.Duration) error { return nil }
func (q *memQueue) DeadLetter(context.Context, string, error) error           { return nil }
func (q *memQueue) NextDue(context.Context) (time.Time, bool, error)          { return time.Time{}, false, nil }

type okEngine struct{}

func (okEngine) Deliver(_ context.Context, t delivery.Task) delivery.Outcome {
	t.Attempt++
	return delivery.Outcome{Task: t, Record: record.Record{Status: record.Success}}
}

func TestDrainerBudget(t *testing.T) {
	d := &Drainer{Queue: &memQueue{}, Engine: okEngine{}, Logger: slog.New(slog.DiscardHandler)}
	for _, tt := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"no deadline", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{"too short", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), MinBudget-time.Second)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			if _, err := d.Invoke(ctx, events.TimerEvent{}); !errors.Is(err, ErrBudget) {
				t.Errorf("err = %v, want ErrBudget", err)
			}
		})
	}
}

// TestDrainerStopsWhenIdle: with Idle set, an invocation with a long budget
// delivers what is queued and returns once the queue stays empty, well
// before Reserve of its deadline.
func TestDrainerStopsWhenIdle(t *testing.T) {
	q := &memQueue{}
	for _, id := range []string{"a", "b", "c"} {
		q.tasks = append(q.tasks, delivery.Task{ID: id})
	}
	d := &Drainer{Queue: q, Engine: okEngine{}, Workers: 2, Idle: 300 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	done := make(chan Summary, 1)
	go func() {
		s, err := d.Invoke(ctx, events.TimerEvent{TriggerName: "t"})
		if err != nil {
			t.Error(err)
		}
		done <- s
	}()
	select {
	case s := <-done:
		if s.Deliveries["success"] != 3 || q.acked != 3 {
			t.Errorf("summary %+v, %d acked", s, q.acked)
		}
	case <-time.After(time.Minute):
		t.Fatal("an idle queue did not end the invocation")
	}
}
