package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/scf"
	"github.com/regtrigger/regtrigger/internal/signature"
	"github.com/regtrigger/regtrigger/internal/testserver"
)

// sampleToken is the registry token in events/scf's samples.
const sampleToken = "example-token-0123456789"

// scfEnv is the stack's environment as SCF passes it: with each invocation
// (scf-go-lib applies it with os.Setenv), not to the process.
func (s *stack) scfEnv(extra ...string) map[string]string {
	env := s.env(append([]string{"REGTRIGGER_REGISTRIES=tcr=" + sampleToken, "LOG_LEVEL=debug"}, extra...)...)
	return testserver.EnvMap(env...)
}

func startSCF(t *testing.T, name string, env map[string]string, timeout time.Duration) *testserver.SCF {
	t.Helper()
	f, err := testserver.StartSCF(bins[name])
	if err != nil {
		t.Fatal(err)
	}
	f.Environment, f.Timeout = env, timeout
	t.Cleanup(func() {
		f.Stop()
		if t.Failed() {
			t.Logf("%s printed:\n%s", name, f.Logs())
		}
	})
	return f
}

type apigwAnswer struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

func invokeAPIGW(t *testing.T, f *testserver.SCF, event []byte) (apigwAnswer, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := f.Invoke(ctx, event)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var ans apigwAnswer
	if err := json.Unmarshal(out, &ans); err != nil {
		t.Fatalf("answer %s: %v", out, err)
	}
	var b map[string]any
	if err := json.Unmarshal([]byte(ans.Body), &b); err != nil {
		t.Fatalf("answer body %q: %v", ans.Body, err)
	}
	return ans, b
}

// apigwEvent is an API Gateway trigger event posting body to path. Its
// queryString has each parameter as a string, as API Gateway sends one
// value (scf-go-lib's own test event: {"a": ["b", "c"], "x": "y", "i": true}).
func apigwEvent(t *testing.T, path string, header map[string]string, query map[string]string, body []byte) []byte {
	t.Helper()
	var ev scf.Request
	if err := json.Unmarshal(sample(t, "events/scf/apigw-tcr-push.json"), &ev); err != nil {
		t.Fatal(err)
	}
	ev.Path, ev.Context.Path, ev.Body = path, path, string(body)
	ev.Headers = map[string]string{"content-type": "application/json"}
	for k, v := range header {
		ev.Headers[k] = v
	}
	ev.QueryString = nil
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	qs := map[string]any{}
	for k, v := range query {
		qs[k] = v
	}
	m["queryString"] = qs
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	return b
}

// scfGoLibAPIGW is the API Gateway event of scf-go-lib's own test
// (events/apigw_test.go at the version go.mod pins), with a query string of
// a list, a string and a flag: a GET of a path the receiver does not serve.
const scfGoLibAPIGW = ` {"headerParameters": {}, "headers": {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/webp,image/apng,*/*;q=0.8", "accept-encoding": "gzip, deflate, br", "accept-language": "zh-CN,zh;q=0.9,en;q=0.8", "connection": "keep-alive", "endpoint-timeout": "15", "host": "service-xxx-123456.ap-shanghai.apigateway.myqcloud.com", "upgrade-insecure-requests": "1", "user-agent": "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/72.0.3626.121 Safari/537.36", "x-anonymous-consumer": "true", "x-qualifier": "$LATEST"}, "httpMethod": "GET", "path": "/ritchiechen-apigw-test", "pathParameters": {}, "queryString": {"a": ["b", "c"], "x": "y", "i": true}, "queryStringParameters": {}, "requestContext": {"httpMethod": "ANY", "identity": {}, "path": "/ritchiechen-apigw-test", "serviceId": "service-xxx", "sourceIp": "8.8.8.8", "stage": "test"}}`

func sample(t *testing.T, path string) []byte { return body(t, path) }

// TestSCFPushToDelivery: the sample TCR push, through the SCF receiver
// binary, is delivered by the SCF dispatcher binary on its timer, signed,
// with the record written to DynamoDB.
func TestSCFPushToDelivery(t *testing.T) {
	s := newStack(t)
	tg := newTarget(t)
	s.addTrigger(t, "deploy-nginx", tg.URL+"/hook")
	recv := startSCF(t, "scf-receiver", s.scfEnv(), 30*time.Second)
	ans, got := invokeAPIGW(t, recv, sample(t, "events/scf/apigw-tcr-push.json"))
	if ans.StatusCode != http.StatusAccepted || got["tasks"] != 1.0 {
		t.Fatalf("receiver answered %d %s", ans.StatusCode, ans.Body)
	}
	taskID := got["events"].([]any)[0].(map[string]any)["tasks"].([]any)[0].(map[string]any)["id"].(string)

	// A budget just over the minimum, ended early by DRAIN_IDLE.
	disp := startSCF(t, "scf-dispatcher", s.scfEnv("DRAIN_IDLE=2s"), scf.MinBudget+5*time.Second)
	var sum scf.Summary
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if err := disp.InvokeJSON(ctx, json.RawMessage(sample(t, "events/scf/timer.json")), &sum); err != nil {
		t.Fatalf("dispatcher: %v", err)
	}
	if sum.Deliveries["success"] != 1 || len(sum.Deliveries) != 1 {
		t.Errorf("summary %+v", sum)
	}
	if took := time.Since(start); took > scf.MinBudget-scf.Reserve+10*time.Second {
		t.Logf("the idle queue did not end the invocation early (%v)", took)
	}
	ds := tg.deliveries()
	if len(ds) != 1 || ds[0].header.Get("webhook-id") != taskID {
		t.Fatalf("deliveries %+v", ds)
	}
	secret, _ := signature.ParseSecret(signingSecret)
	if err := signature.Verify([]signature.Secret{secret}, taskID, ds[0].header.Get("webhook-timestamp"), ds[0].body, ds[0].header.Get("webhook-signature"), time.Now(), signature.DefaultTolerance); err != nil {
		t.Errorf("signature: %v", err)
	}
	recs := s.records(t, record.Query{TaskID: taskID})
	if len(recs) != 1 || recs[0].Status != record.Success {
		t.Errorf("records %+v", recs)
	}
	if _, err := s.store.Records().Archived(context.Background(), taskID); err != nil {
		t.Errorf("archive: %v", err)
	}
	if v := s.receive0(t); v != 0 {
		t.Errorf("%d messages left on the queue", v)
	}
	if !disp.WaitLogs(`"queue drained"`, 10*time.Second) {
		t.Error("the dispatcher did not log its summary")
	}
	for _, line := range jsonLines(disp.Logs(), taskID) {
		if !strings.Contains(line, `"requestId":"scf-req-1"`) {
			t.Errorf("log line without the SCF request id: %s", line)
		}
	}
}

// TestSCFReceiverAnswers: real registry bodies through the SCF receiver,
// answered exactly as serve and the Lambda function answer them.
func TestSCFReceiverAnswers(t *testing.T) {
	s := newStack(t)
	recv := startSCF(t, "scf-receiver", s.scfEnv(), 30*time.Second)
	bearer := map[string]string{"authorization": "Bearer " + sampleToken}
	tests := []struct {
		name   string
		event  []byte
		status int
	}{
		{"sample: ACR, query token, base64", sample(t, "events/scf/apigw-acr-push-query-token.json"), http.StatusAccepted},
		{"harbor", apigwEvent(t, "/v1/notify", bearer, nil, body(t, "events/bodies/harbor-push.json")), http.StatusAccepted},
		{"docker hub, query token", apigwEvent(t, "/v1/notify/dockerhub", nil, map[string]string{"token": sampleToken}, body(t, "events/bodies/dockerhub-push.json")), http.StatusAccepted},
		{"distribution", apigwEvent(t, "/v1/notify", map[string]string{"authorization": "Bearer " + sampleToken, "content-type": "application/vnd.docker.distribution.events.v2+json"}, nil, body(t, "events/bodies/distribution-push.json")), http.StatusAccepted},
		{"wrong token", apigwEvent(t, "/v1/notify", map[string]string{"authorization": "Bearer wrong-token-0123456789"}, nil, body(t, "events/bodies/tcr-push.json")), http.StatusUnauthorized},
		{"not json", apigwEvent(t, "/v1/notify", bearer, nil, []byte("hello")), http.StatusBadRequest},
		{"unknown format", apigwEvent(t, "/v1/notify", bearer, nil, []byte(`{"a":1}`)), http.StatusUnsupportedMediaType},
		{"unknown path", apigwEvent(t, "/v2/elsewhere", bearer, nil, body(t, "events/bodies/tcr-push.json")), http.StatusNotFound},
		{"scf-go-lib's test event", []byte(scfGoLibAPIGW), http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans, b := invokeAPIGW(t, recv, tt.event)
			if ans.StatusCode != tt.status {
				t.Errorf("status %d, want %d: %s", ans.StatusCode, tt.status, ans.Body)
			}
			if tt.status >= 400 && b["error"] == nil {
				t.Errorf("error answer without error: %s", ans.Body)
			}
			if tt.status == http.StatusUnauthorized && ans.Headers["Www-Authenticate"] == "" {
				t.Errorf("no WWW-Authenticate: %v", ans.Headers)
			}
		})
	}
}

// TestSCFRetry: a 500 from the target is a retrying record and a delayed
// message; the drain does not see it again within the invocation.
func TestSCFRetry(t *testing.T) {
	s := newStack(t)
	tg := newTarget(t, http.StatusInternalServerError)
	s.addTrigger(t, "deploy-nginx", tg.URL+"/hook")
	recv := startSCF(t, "scf-receiver", s.scfEnv(), 30*time.Second)
	if ans, _ := invokeAPIGW(t, recv, sample(t, "events/scf/apigw-tcr-push.json")); ans.StatusCode != http.StatusAccepted {
		t.Fatalf("receiver: %d %s", ans.StatusCode, ans.Body)
	}
	disp := startSCF(t, "scf-dispatcher", s.scfEnv("DRAIN_IDLE=2s"), scf.MinBudget+5*time.Second)
	var sum scf.Summary
	if err := disp.InvokeJSON(context.Background(), json.RawMessage(sample(t, "events/scf/timer.json")), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Deliveries["retrying"] != 1 || len(tg.deliveries()) != 1 {
		t.Errorf("summary %+v, %d deliveries", sum, len(tg.deliveries()))
	}
	if n := s.delayed(t); n != 1 {
		t.Errorf("%d delayed messages, want the retry", n)
	}
}

// TestSCFRefusals: a dispatcher without time to drain, and functions
// without their settings, fail with the reason.
func TestSCFRefusals(t *testing.T) {
	s := newStack(t)
	t.Run("dispatcher budget", func(t *testing.T) {
		disp := startSCF(t, "scf-dispatcher", s.scfEnv(), 30*time.Second)
		_, err := disp.Invoke(context.Background(), sample(t, "events/scf/timer.json"))
		if err == nil || !strings.Contains(err.Error(), "timeout is too short") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("dispatcher unconfigured", func(t *testing.T) {
		disp := startSCF(t, "scf-dispatcher", map[string]string{}, time.Minute)
		_, err := disp.Invoke(context.Background(), sample(t, "events/scf/timer.json"))
		if err == nil || !strings.Contains(err.Error(), "TRIGGERS_TABLE is required") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("receiver unconfigured", func(t *testing.T) {
		recv := startSCF(t, "scf-receiver", map[string]string{}, 30*time.Second)
		ans, _ := invokeAPIGW(t, recv, sample(t, "events/scf/apigw-tcr-push.json"))
		if ans.StatusCode != http.StatusServiceUnavailable || !recv.WaitLogs("TRIGGERS_TABLE is required", 10*time.Second) {
			t.Errorf("answer %d %s; logs:\n%s", ans.StatusCode, ans.Body, recv.Logs())
		}
	})
}
