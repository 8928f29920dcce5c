package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/fixture"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/registry"
	"github.com/regtrigger/regtrigger/internal/signature"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
	"github.com/regtrigger/regtrigger/internal/testserver"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

func startLambda(t *testing.T, name string, env []string) *testserver.Lambda {
	t.Helper()
	l, err := emulator.Start(bins[name], env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Stop()
		if t.Failed() {
			t.Logf("%s printed:\n%s", name, l.Logs())
		}
	})
	return l
}

// urlRequest is a Function URL invocation (payload format 2.0).
func urlRequest(method, path, query string, header map[string]string, body []byte, b64 bool) events.LambdaFunctionURLRequest {
	req := events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: path, RawQueryString: query, Headers: map[string]string{"content-type": "application/json", "user-agent": "Go-http-client/1.1"},
		RequestContext: events.LambdaFunctionURLRequestContext{
			RequestID: "url-req-1", HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: method, Path: path, SourceIP: "203.0.113.7"},
		},
		Body: string(body), IsBase64Encoded: b64,
	}
	if b64 {
		req.Body = base64.StdEncoding.EncodeToString(body)
	}
	for k, v := range header {
		req.Headers[strings.ToLower(k)] = v
	}
	return req
}

type httpAnswer struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

func invokeHTTP(t *testing.T, l *testserver.Lambda, req events.LambdaFunctionURLRequest) (httpAnswer, map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ans httpAnswer
	if err := l.InvokeJSON(ctx, req, &ans); err != nil {
		t.Fatalf("invoke: %v", err)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(ans.Body), &body); err != nil {
		t.Fatalf("answer body %q: %v", ans.Body, err)
	}
	return ans, body
}

// receive takes the queue's visible messages as an SQS event for the
// dispatcher, as the event source mapping would build it.
func (s *stack) receive(t *testing.T, want int) events.SQSEvent {
	t.Helper()
	var ev events.SQSEvent
	deadline := time.Now().Add(10 * time.Second)
	for len(ev.Records) < want && time.Now().Before(deadline) {
		out, err := s.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(s.queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			attrs := map[string]events.SQSMessageAttribute{}
			for k, v := range m.MessageAttributes {
				attrs[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue}
			}
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
				MessageAttributes: attrs, Attributes: m.Attributes, EventSource: "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:000000000000:tasks",
			})
		}
	}
	if len(ev.Records) != want {
		t.Fatalf("queue holds %d visible messages, want %d", len(ev.Records), want)
	}
	return ev
}

// notVisible is the queue's count of messages received and not deleted.
func (s *stack) notVisible(t *testing.T) int {
	t.Helper()
	out, err := s.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(s.queueURL), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return n
}

// delayed is the queue's count of messages waiting out a delay.
func (s *stack) delayed(t *testing.T) int {
	t.Helper()
	out, err := s.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(s.queueURL), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesDelayed)])
	return n
}

func (s *stack) records(t *testing.T, q record.Query) []record.Record {
	t.Helper()
	rs, err := s.store.Records().List(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func dispatch(t *testing.T, l *testserver.Lambda, ev events.SQSEvent) events.SQSEventResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var resp events.SQSEventResponse
	if err := l.InvokeJSON(ctx, ev, &resp); err != nil {
		t.Fatalf("dispatcher: %v", err)
	}
	return resp
}

// TestLambdaPushToDelivery: a TCR push notification posted to the receiver
// function's URL becomes one SQS task, which the dispatcher function
// delivers, signed, to the trigger's webhook, with a success record in
// DynamoDB and JSON log lines carrying the request id.
func TestLambdaPushToDelivery(t *testing.T) {
	s := newStack(t)
	tg := newTarget(t)
	s.addTrigger(t, "deploy-nginx", tg.URL+"/hook?token=sekrit-query")
	s.addTrigger(t, "release-only", tg.URL+"/release", func(tr *trigger.Trigger) { tr.Tag = "release-*" })
	recv := startLambda(t, "lambda-receiver", s.env())
	disp := startLambda(t, "lambda-dispatcher", s.env())

	ans, got := invokeHTTP(t, recv, urlRequest("POST", "/v1/notify", "", map[string]string{"Authorization": "Bearer " + registryToken}, body(t, "events/bodies/tcr-push.json"), false))
	if ans.StatusCode != http.StatusAccepted || got["tasks"] != 1.0 || got["source"] != "tcr" {
		t.Fatalf("receiver answered %d %s", ans.StatusCode, ans.Body)
	}
	if ans.Headers["Content-Type"] != "application/json" {
		t.Errorf("content type %q", ans.Headers["Content-Type"])
	}
	evs := got["events"].([]any)
	ev0 := evs[0].(map[string]any)
	taskID := ev0["tasks"].([]any)[0].(map[string]any)["id"].(string)
	if skipped := ev0["untriggered"].([]any); len(skipped) != 1 || skipped[0].(map[string]any)["trigger"] != "release-only" {
		t.Errorf("untriggered %v", skipped)
	}

	batch := s.receive(t, 1)
	resp := dispatch(t, disp, batch)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %+v", resp.BatchItemFailures)
	}
	ds := tg.deliveries()
	if len(ds) != 1 {
		t.Fatalf("%d deliveries", len(ds))
	}
	d := ds[0]
	if d.header.Get("webhook-id") != taskID || d.header.Get("X-Deploy") != "yes" || !strings.HasPrefix(d.header.Get("User-Agent"), "regtrigger/") {
		t.Errorf("headers %v", d.header)
	}
	secret, _ := signature.ParseSecret(signingSecret)
	if err := signature.Verify([]signature.Secret{secret}, d.header.Get("webhook-id"), d.header.Get("webhook-timestamp"), d.body, d.header.Get("webhook-signature"), time.Now(), signature.DefaultTolerance); err != nil {
		t.Errorf("signature: %v", err)
	}
	var tcr struct {
		Type      string `json:"type"`
		EventData struct {
			Resources []struct {
				Tag string `json:"tag"`
			} `json:"resources"`
		} `json:"event_data"`
	}
	if err := json.Unmarshal(d.body, &tcr); err != nil || tcr.Type != "pushImage" || tcr.EventData.Resources[0].Tag != "v1.10.0" {
		t.Errorf("body %s (%v)", d.body, err)
	}

	recs := s.records(t, record.Query{TaskID: taskID})
	if len(recs) != 1 || recs[0].Status != record.Success || recs[0].HTTPStatus != 200 || recs[0].Attempt != 1 {
		t.Fatalf("records %+v", recs)
	}
	if strings.Contains(recs[0].Target, "sekrit") {
		t.Errorf("record leaks the query: %q", recs[0].Target)
	}
	if task, err := s.store.Records().Archived(context.Background(), taskID); err != nil || task.Attempt != 1 {
		t.Errorf("finished task not kept for redelivery: %+v, %v", task, err)
	}
	// Near misses are in the answer (above) and the Debug log, not in the
	// records table: the receiver's role cannot even write it.
	if un := s.records(t, record.Query{Trigger: "release-only"}); len(un) != 0 {
		t.Errorf("untriggered records %+v, want none", un)
	}

	// The last lines each function prints for these invocations.
	if !recv.WaitLogs(`"TasksEnqueued":1`, 10*time.Second) || !disp.WaitLogs(`"Deliveries":1`, 10*time.Second) {
		t.Errorf("metrics missing:\nreceiver:\n%s\ndispatcher:\n%s", recv.Logs(), disp.Logs())
	}
	for name, l := range map[string]*testserver.Lambda{"receiver": recv, "dispatcher": disp} {
		logs := l.Logs()
		if strings.Contains(logs, "sekrit") || strings.Contains(logs, signingSecret) || strings.Contains(logs, registryToken) {
			t.Errorf("%s logs leak a secret:\n%s", name, logs)
		}
		lines := jsonLines(logs, taskID)
		if len(lines) == 0 && name == "dispatcher" {
			t.Errorf("dispatcher logged no line with the task id:\n%s", logs)
		}
		for _, line := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Errorf("%s: not JSON: %s", name, line)
			} else if m["requestId"] == nil && m["_aws"] == nil {
				t.Errorf("%s: a log line without requestId: %s", name, line)
			}
		}
	}
}

// TestLambdaRetryThenFail: a 500 makes the dispatcher hold the message for
// the retry's delay (its visibility) and report it as a batch item failure,
// so the event source mapping keeps it and nothing new is sent; received
// again, its receive count is its attempt count, and with the attempt limit
// reached the task fails for good: the message is reported settled (the
// event source mapping deletes it) and nothing is re-sent.
func TestLambdaRetryThenFail(t *testing.T) {
	s := newStack(t)
	tg := newTarget(t, http.StatusInternalServerError)
	s.addTrigger(t, "deploy-nginx", tg.URL+"/hook")
	recv := startLambda(t, "lambda-receiver", s.env())
	disp := startLambda(t, "lambda-dispatcher", s.env())

	ans, _ := invokeHTTP(t, recv, urlRequest("POST", "/v1/notify", "", map[string]string{"Authorization": "Bearer " + registryToken}, body(t, "events/bodies/tcr-push.json"), false))
	if ans.StatusCode != http.StatusAccepted {
		t.Fatalf("receiver: %d %s", ans.StatusCode, ans.Body)
	}
	batch := s.receive(t, 1)
	if resp := dispatch(t, disp, batch); len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != batch.Records[0].MessageId {
		t.Fatalf("a retry waiting in its message is a batch item failure: %+v", resp.BatchItemFailures)
	}
	if n, hidden := s.delayed(t), s.notVisible(t); n != 0 || hidden != 1 {
		t.Fatalf("%d delayed and %d invisible messages, want the one message held and no new one", n, hidden)
	}
	recs := s.records(t, record.Query{Trigger: "deploy-nginx"})
	if len(recs) != 1 || recs[0].Status != record.Retrying || recs[0].HTTPStatus != 500 || recs[0].NextAttemptAt.IsZero() {
		t.Fatalf("records %+v", recs)
	}

	// The message as its second receive (the retry) reaches a dispatcher
	// that allows two attempts: this was the last.
	batch.Records[0].Attributes["ApproximateReceiveCount"] = "2"
	last := startLambda(t, "lambda-dispatcher", s.env("MAX_ATTEMPTS=2"))
	if resp := dispatch(t, last, batch); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %+v", resp.BatchItemFailures)
	}
	if n := s.delayed(t); n != 0 {
		t.Errorf("%d delayed messages: a failed task must not be re-sent", n)
	}
	recs = s.records(t, record.Query{Trigger: "deploy-nginx", Status: record.Failed})
	if len(recs) != 1 || recs[0].ErrorClass != record.ClassHTTP5xx || recs[0].Attempt != 2 {
		t.Errorf("failed records %+v", recs)
	}
}

// TestLambdaReceiverAnswers: the receiver function answers like serve —
// tokens in the header or the query, base64 bodies, duplicates, refusals.
func TestLambdaReceiverAnswers(t *testing.T) {
	s := newStack(t)
	tg := newTarget(t)
	s.addTrigger(t, "deploy-nginx", tg.URL+"/hook")
	recv := startLambda(t, "lambda-receiver", s.env())
	tcr := body(t, "events/bodies/tcr-push.json")
	bearer := map[string]string{"Authorization": "Bearer " + registryToken}

	tests := []struct {
		name   string
		req    events.LambdaFunctionURLRequest
		status int
		check  func(t *testing.T, ans httpAnswer, body map[string]any)
	}{
		{"bearer token", urlRequest("POST", "/v1/notify", "", bearer, tcr, false), http.StatusAccepted, func(t *testing.T, _ httpAnswer, b map[string]any) {
			if b["tasks"] != 1.0 {
				t.Errorf("tasks %v", b["tasks"])
			}
		}},
		{"same notification again", urlRequest("POST", "/v1/notify", "", bearer, tcr, false), http.StatusAccepted, func(t *testing.T, _ httpAnswer, b map[string]any) {
			ev := b["events"].([]any)[0].(map[string]any)
			if b["tasks"] != 0.0 || ev["duplicate"] != true {
				t.Errorf("a duplicate made tasks: %v", b)
			}
		}},
		{"query token, base64 body, forced source", urlRequest("POST", "/v1/notify/harbor", "token="+registryToken, nil, body(t, "events/bodies/harbor-push.json"), true), http.StatusAccepted, nil},
		{"no token", urlRequest("POST", "/v1/notify", "", nil, tcr, false), http.StatusUnauthorized, func(t *testing.T, a httpAnswer, _ map[string]any) {
			if !strings.HasPrefix(a.Headers["Www-Authenticate"], "Bearer") {
				t.Errorf("no WWW-Authenticate: %v", a.Headers)
			}
		}},
		{"wrong token", urlRequest("POST", "/v1/notify", "token=wrong-token-0123456789", nil, tcr, false), http.StatusUnauthorized, nil},
		{"not JSON", urlRequest("POST", "/v1/notify", "", bearer, []byte("<xml/>"), false), http.StatusBadRequest, nil},
		{"unknown format", urlRequest("POST", "/v1/notify", "", bearer, []byte(`{"hello":"world"}`), false), http.StatusUnsupportedMediaType, nil},
		{"unknown source", urlRequest("POST", "/v1/notify/nope", "", bearer, tcr, false), http.StatusNotFound, nil},
		{"too large", urlRequest("POST", "/v1/notify", "", bearer, []byte(`{"x":"`+strings.Repeat("a", 1<<20)+`"}`), true), http.StatusRequestEntityTooLarge, nil},
		{"health", urlRequest("GET", "/healthz", "", nil, nil, false), http.StatusOK, nil},
		{"wrong method", urlRequest("GET", "/v1/notify", "", bearer, nil, false), http.StatusMethodNotAllowed, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans, b := invokeHTTP(t, recv, tt.req)
			if ans.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", ans.StatusCode, tt.status, ans.Body)
			}
			if tt.status >= 400 && (b["error"] == nil || b["status"] != float64(tt.status)) {
				t.Errorf("error answer %s", ans.Body)
			}
			if tt.check != nil {
				tt.check(t, ans, b)
			}
		})
	}
	// One task: the duplicate made none, and the Harbor body is for a
	// namespace without triggers.
	s.receive(t, 1)
}

// TestLambdaStoreOrQueueDown: with DynamoDB or SQS unreachable the receiver
// answers 503 (the registry retries) and accepts nothing.
func TestLambdaStoreOrQueueDown(t *testing.T) {
	s := newStack(t)
	tg := newTarget(t)
	s.addTrigger(t, "deploy-nginx", tg.URL+"/hook")
	port, err := testserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://127.0.0.1:" + strconv.Itoa(port)
	tcr := body(t, "events/bodies/tcr-push.json")
	for _, tt := range []struct{ name, env string }{
		{"dynamodb down", "AWS_ENDPOINT_URL_DYNAMODB=" + closed},
		{"sqs down", "AWS_ENDPOINT_URL_SQS=" + closed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			recv := startLambda(t, "lambda-receiver", s.env(tt.env, "AWS_MAX_ATTEMPTS=2"))
			ans, b := invokeHTTP(t, recv, urlRequest("POST", "/v1/notify", "", map[string]string{"Authorization": "Bearer " + registryToken}, tcr, false))
			if ans.StatusCode != http.StatusServiceUnavailable || !strings.Contains(b["detail"].(string), "retry") {
				t.Errorf("answer %d %s", ans.StatusCode, ans.Body)
			}
		})
	}
	// The SQS failure released its duplicate key: the registry's retry,
	// once the queue is back, is accepted and queued.
	recv := startLambda(t, "lambda-receiver", s.env())
	ans, b := invokeHTTP(t, recv, urlRequest("POST", "/v1/notify", "", map[string]string{"Authorization": "Bearer " + registryToken}, tcr, false))
	if ans.StatusCode != http.StatusAccepted || b["tasks"] != 1.0 {
		t.Errorf("retry after the outage: %d %s", ans.StatusCode, ans.Body)
	}
}

// TestLambdaDispatcherUndecodable: a message that is not a task is reported
// as a batch item failure (the redrive policy then dead-letters it); the
// good message next to it is delivered.
func TestLambdaDispatcherUndecodable(t *testing.T) {
	s := newStack(t)
	tg := newTarget(t)
	tr := s.addTrigger(t, "deploy-nginx", tg.URL+"/hook")
	disp := startLambda(t, "lambda-dispatcher", s.env())
	good, err := sqsqueue.Encode(taskFor(tr))
	if err != nil {
		t.Fatal(err)
	}
	resp := dispatch(t, disp, events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m-garbage", Body: `{"v":99,"task":{}}`},
		{MessageId: "m-good", Body: good},
	}})
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m-garbage" {
		t.Errorf("failures %+v", resp.BatchItemFailures)
	}
	if n := len(tg.deliveries()); n != 1 {
		t.Errorf("%d deliveries", n)
	}
}

// TestLambdaBadConfiguration: a function without its settings stops in
// its init, at the first invocation, with every problem named, before
// taking the event.
func TestLambdaBadConfiguration(t *testing.T) {
	for _, name := range []string{"lambda-receiver", "lambda-dispatcher"} {
		t.Run(name, func(t *testing.T) {
			l := startLambda(t, name, []string{"MAX_ATTEMPTS=zero", "AWS_LAMBDA_LOG_FORMAT=JSON"})
			out, err := l.Invoke(context.Background(), []byte(`{}`))
			if err == nil {
				t.Fatalf("invoked without configuration: %s", out)
			}
			var fe *testserver.FunctionError
			if errors.As(err, &fe) {
				t.Fatalf("the event reached the handler: %v", err)
			}
			for _, want := range []string{"TRIGGERS_TABLE is required", "QUEUE_URL is required", "MAX_ATTEMPTS="} {
				if !l.WaitLogs(want, 10*time.Second) {
					t.Errorf("missing %q in:\n%s", want, l.Logs())
				}
			}
		})
	}
}

// TestLambdaUnknownInvocation: an event that is neither HTTP nor
// EventBridge is a function error, not a silent success.
func TestLambdaUnknownInvocation(t *testing.T) {
	s := newStack(t)
	recv := startLambda(t, "lambda-receiver", s.env())
	_, err := recv.Invoke(context.Background(), []byte(`{"Records":[]}`))
	var fe *testserver.FunctionError
	if !errors.As(err, &fe) || !strings.Contains(fe.Message, "unknown invocation") {
		t.Errorf("err = %v", err)
	}
}

// taskFor is a task of a TCR push of public/nginx:v1.0 for tr.
func taskFor(tr trigger.Trigger) delivery.Task {
	ev := event.Event{Source: "tcr", Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1.0",
		ResourceURL: "demo.tencentcloudcr.com/public/nginx:v1.0", OccurredAt: time.Now().UTC()}
	return delivery.NewTask("tsk_e2e_"+strconv.FormatInt(time.Now().UnixNano(), 36), &tr, ev, time.Now())
}

// receive0 counts the visible and in-flight messages of the queue.
func (s *stack) receive0(t *testing.T) int {
	t.Helper()
	out, err := s.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(s.queueURL), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	b, _ := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return a + b
}

// TestLambdaEventBridgeECR: an EventBridge rule invoking the receiver
// directly with an ECR push queues a task (no token: IAM authorised the
// invocation); with the store down the invocation fails so that Lambda
// retries it.
func TestLambdaEventBridgeECR(t *testing.T) {
	s := newStack(t)
	tg := newTarget(t)
	ecr := body(t, "internal/registry/testdata/registry-payloads/aws-ecr/image-action-push.json")
	evs, err := registry.Parse(registry.Notification{Body: ecr}, "ecr")
	if err != nil || len(evs) != 1 {
		t.Fatalf("parse the fixture: %v", err)
	}
	s.addTrigger(t, "ecr-push", tg.URL+"/hook", func(tr *trigger.Trigger) {
		tr.Namespace, tr.Repository, tr.Tag = evs[0].Namespace, evs[0].Repository, ""
	})
	recv := startLambda(t, "lambda-receiver", s.env())
	out, err := recv.Invoke(context.Background(), ecr)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if string(out) != "null" {
		t.Errorf("answer %s", out)
	}
	batch := s.receive(t, 1)
	task, err := sqsqueue.Decode(batch.Records[0].Body)
	if err != nil || task.Event.Source != "ecr" || task.Event.ResourceURL == "" {
		t.Errorf("task %+v, %v", task.Event, err)
	}

	port, err := testserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	down := startLambda(t, "lambda-receiver", s.env("AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:"+strconv.Itoa(port), "AWS_MAX_ATTEMPTS=1"))
	_, err = down.Invoke(context.Background(), ecr)
	var fe *testserver.FunctionError
	if !errors.As(err, &fe) || !strings.Contains(fe.Message, "retry") {
		t.Errorf("store down: err = %v, want a function error so Lambda retries", err)
	}
}

// TestLambdaEveryRegistryFormat posts every body of the corpus to the
// receiver function's URL as its registry would (its headers, the token in
// the query): each is accepted with the events `regtrigger inspect` reads,
// and each event of a namespace with a trigger becomes one queued task.
func TestLambdaEveryRegistryFormat(t *testing.T) {
	s := newStack(t)
	root, err := testserver.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	corpus := fixture.Open(filepath.Join(root, fixture.Dir))
	m, err := corpus.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		fixture.Entry
		body   []byte
		header map[string]string
		events []event.Event
	}
	var entries []entry
	tg := newTarget(t)
	withTrigger := map[string]bool{}
	for _, e := range m {
		b, err := corpus.Body(e)
		if err != nil {
			t.Fatal(err)
		}
		h, err := corpus.Header(e)
		if err != nil {
			t.Fatal(err)
		}
		header := map[string]string{}
		for k := range fixture.WithoutCredentials(h) {
			header[k] = h.Get(k)
		}
		evs, _ := registry.Parse(registry.Notification{Body: b, Header: h}, "")
		for _, ev := range evs {
			if !withTrigger[ev.Namespace] {
				withTrigger[ev.Namespace] = true
				s.addTrigger(t, "ns-"+strconv.Itoa(len(withTrigger)), tg.URL+"/hook", func(tr *trigger.Trigger) {
					tr.Namespace, tr.Repository, tr.Tag, tr.Actions = ev.Namespace, "", "", event.Actions
				})
			}
		}
		entries = append(entries, entry{Entry: e, body: b, header: header, events: evs})
	}
	recv := startLambda(t, "lambda-receiver", s.env())
	tasks := 0
	for _, e := range entries {
		t.Run(e.File, func(t *testing.T) {
			b, header, evs := e.body, e.header, e.events
			ans, got := invokeHTTP(t, recv, urlRequest("POST", "/v1/notify", "token="+registryToken, header, b, false))
			if e.Format == "distribution-event-fragment" {
				if ans.StatusCode != http.StatusUnsupportedMediaType {
					t.Errorf("fragment: %d %s", ans.StatusCode, ans.Body)
				}
				return
			}
			if ans.StatusCode != http.StatusAccepted {
				t.Fatalf("%d %s", ans.StatusCode, ans.Body)
			}
			answered, _ := got["events"].([]any)
			if len(answered) != len(evs) {
				t.Fatalf("answer names %d events, inspect reads %d: %s", len(answered), len(evs), ans.Body)
			}
			for i, raw := range answered {
				ev := raw.(map[string]any)
				n := len(ev["tasks"].([]any))
				if ev["duplicate"] != true && n != 1 {
					t.Errorf("event %d (%s/%s) made %d tasks, want 1", i, evs[i].Namespace, evs[i].Repository, n)
				}
				tasks += n
			}
		})
	}
	if tasks == 0 {
		t.Fatal("no task from the whole corpus")
	}
	if n := s.receive0(t); n != tasks {
		t.Errorf("%d messages queued for %d tasks", n, tasks)
	}
}

// TestLambdaSampleEvents feeds the sample events of events/lambda (those
// `sam local invoke` uses) to the built binaries, with the receiver's
// registries from events/lambda/env.json.
func TestLambdaSampleEvents(t *testing.T) {
	s := newStack(t)
	var env map[string]map[string]string
	if err := json.Unmarshal(body(t, "events/lambda/env.json"), &env); err != nil {
		t.Fatal(err)
	}
	registries := "REGTRIGGER_REGISTRIES=" + env["ReceiverFunction"]["REGTRIGGER_REGISTRIES"]
	tg := newTarget(t)
	// Triggers for the samples' namespaces: TCR's public, Aliyun's and ECR's.
	for i, file := range []string{"events/bodies/tcr-push.json", "events/bodies/acr-push.json", "internal/registry/testdata/registry-payloads/aws-ecr/image-action-push.json"} {
		evs, err := registry.Parse(registry.Notification{Body: body(t, file)}, "")
		if err != nil {
			t.Fatal(err)
		}
		s.addTrigger(t, "sample-"+strconv.Itoa(i), tg.URL+"/hook", func(tr *trigger.Trigger) {
			tr.Namespace, tr.Repository, tr.Tag = evs[0].Namespace, "", ""
		})
	}
	recv := startLambda(t, "lambda-receiver", s.env(registries))
	for _, file := range []string{"events/lambda/function-url-tcr-bearer.json", "events/lambda/function-url-acr-base64-token.json"} {
		var ans httpAnswer
		if err := recv.InvokeJSON(context.Background(), json.RawMessage(body(t, file)), &ans); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if ans.StatusCode != http.StatusAccepted || !strings.Contains(ans.Body, `"tasks":1`) {
			t.Errorf("%s: %d %s", file, ans.StatusCode, ans.Body)
		}
	}
	if out, err := recv.Invoke(context.Background(), body(t, "events/lambda/eventbridge-ecr-push.json")); err != nil || string(out) != "null" {
		t.Errorf("eventbridge sample: %s, %v", out, err)
	}
	if n := s.receive0(t); n != 3 {
		t.Errorf("%d tasks queued, want one per sample", n)
	}

	// The SQS sample's task delivers to deploy.example.com, which does not
	// resolve here: a settled message (retry scheduled or blocked), no batch
	// failure, and a record of the attempt.
	disp := startLambda(t, "lambda-dispatcher", s.env())
	var sample events.SQSEvent
	if err := json.Unmarshal(body(t, "events/lambda/sqs-task.json"), &sample); err != nil {
		t.Fatal(err)
	}
	if resp := dispatch(t, disp, sample); len(resp.BatchItemFailures) != 0 {
		t.Errorf("failures %+v", resp.BatchItemFailures)
	}
	task, err := sqsqueue.Decode(sample.Records[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if recs := s.records(t, record.Query{TaskID: task.ID}); len(recs) != 1 || recs[0].Status == record.Success {
		t.Errorf("records of the sample task %+v", recs)
	}
}
