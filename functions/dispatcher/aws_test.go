//go:build !scf

package main

// The handler on real AWS-compatible servers: dynalite and fauxqs
// (internal/testserver), started once by the first test that needs them
// and stopped by TestMain. Each test gets its own tables and queue
// (internal/teststack); the handler is built by newHandler, as main builds
// it, from the environment template.yaml sets, and invoked the way Lambda's
// SQS event source mapping invokes it: batches received from the queue,
// the messages it does not report as failures deleted.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/emf"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
	"github.com/regtrigger/regtrigger/internal/testserver"
	"github.com/regtrigger/regtrigger/internal/teststack"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range []*testserver.Server{awsServers.dynalite, awsServers.fauxqs} {
		if s != nil {
			s.Stop()
		}
	}
	if cliBuild.dir != "" {
		os.RemoveAll(cliBuild.dir)
	}
	os.Exit(code)
}

// awsServers are dynalite and fauxqs, started on first use.
var awsServers struct {
	once             sync.Once
	dynalite, fauxqs *testserver.Server
	err              error
}

// cloudRig is one test's tables and queue, and the dispatcher's
// environment for them.
type cloudRig struct {
	*teststack.Stack
	env   map[string]string
	queue *sqsqueue.Queue // as the receiver enqueues
	// cliEnv is the environment of a `regtrigger` run against the tables.
	cliEnv []string
}

// allowLoopback is the operator's explicit allowance for a webhook server
// on this machine: ALLOW_PRIVATE_CIDRS for the dispatcher, the same rule
// for the triggers' validation.
const allowLoopback = "127.0.0.1/32"

func newCloudRig(t *testing.T) *cloudRig {
	t.Helper()
	awsServers.once.Do(func() {
		if awsServers.dynalite, awsServers.err = testserver.Dynalite(); awsServers.err == nil {
			awsServers.fauxqs, awsServers.err = testserver.Fauxqs()
		}
	})
	if awsServers.err != nil {
		t.Fatalf("start the AWS test servers: %v", awsServers.err)
	}
	dynamoURL, sqsURL := awsServers.dynalite.URL, awsServers.fauxqs.URL
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := teststack.New(ctx, dynamoURL, sqsURL, "dispatcher")
	if err != nil {
		t.Fatal(err)
	}
	// The SDK's standard variables, as on Lambda: newHandler's
	// cloud.FromEnv loads the default AWS configuration.
	awsEnv := testserver.AWSEnv(dynamoURL, sqsURL)
	for _, kv := range awsEnv {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	var cliEnv []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "AWS_") && !strings.HasPrefix(k, "REGTRIGGER_") && !slices.Contains(config.Env, k) {
			cliEnv = append(cliEnv, kv)
		}
	}
	return &cloudRig{
		Stack: st,
		env: map[string]string{
			config.EnvTriggersTable: st.Tables.Triggers, config.EnvRecordsTable: st.Tables.Records, config.EnvDedupeTable: st.Tables.Dedupe,
			config.EnvQueueURL: st.QueueURL, config.EnvAllowPrivate: allowLoopback,
		},
		queue:  &sqsqueue.Queue{Client: st.SQS, URL: st.QueueURL},
		cliEnv: append(cliEnv, awsEnv...),
	}
}

// addTrigger stores a validated trigger of namespace public for pushes to
// nginx, posting to url.
func (r *cloudRig) addTrigger(t *testing.T, name, url string, mutate func(*trigger.Trigger)) trigger.Trigger {
	t.Helper()
	tr := trigger.Trigger{Name: name, Enabled: true, Actions: []event.Action{event.PushImage},
		Namespace: "public", Repository: "nginx", URL: url, Format: payload.TCR}
	if mutate != nil {
		mutate(&tr)
	}
	rules := trigger.Rules{AllowPrivate: []netip.Prefix{netip.MustParsePrefix(allowLoopback)}}
	if probs := rules.Validate(&tr); len(probs) > 0 {
		t.Fatalf("trigger %s: %v", name, probs)
	}
	stored, err := r.Store.Triggers().Create(context.Background(), tr)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// enqueue puts one task per id for tr on the queue, as the receiver does.
func (r *cloudRig) enqueue(t *testing.T, tr trigger.Trigger, ids ...string) {
	t.Helper()
	tasks := make([]delivery.Task, len(ids))
	for i, id := range ids {
		ev := event.Event{Source: "tcr", Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1." + strconv.Itoa(i), OccurredAt: time.Now().UTC()}
		tasks[i] = delivery.NewTask(id, &tr, ev, time.Now())
	}
	if err := r.queue.Enqueue(context.Background(), tasks); err != nil {
		t.Fatal(err)
	}
}

// records is the records table's list for q.
func (r *cloudRig) records(t *testing.T, q record.Query) []record.Record {
	t.Helper()
	q.Limit = 1000
	rs, err := r.Store.Records().List(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// queued is the queue's count of messages visible, in flight and delayed.
func (r *cloudRig) queued(t *testing.T) int {
	t.Helper()
	names := []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed}
	out, err := r.SQS.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(r.QueueURL), AttributeNames: names})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range names {
		v, _ := strconv.Atoi(out.Attributes[string(name)])
		n += v
	}
	return n
}

// container is one dispatcher container: the handler main builds, its
// log lines (JSON, as on Lambda) and its EMF metric lines kept.
type container struct {
	h       *handler
	engine  *delivery.Engine
	logs    *lockedBuffer
	metrics *lockedBuffer
}

// start builds a container from the rig's environment plus extra.
func (r *cloudRig) start(t *testing.T, extra map[string]string) *container {
	t.Helper()
	env := map[string]string{}
	for k, v := range r.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	c := &container{logs: &lockedBuffer{}, metrics: &lockedBuffer{}}
	logger := slog.New(slog.NewJSONHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := newHandler(context.Background(), func(k string) string { return env[k] }, logger)
	if err != nil {
		t.Fatal(err)
	}
	h.metrics = emf.New(c.metrics) // main's goes to stdout, where Lambda reads it
	c.h, c.engine = h, h.engine.(*delivery.Engine)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("container logs:\n%s\nmetrics:\n%s", c.logs, c.metrics)
		}
	})
	return c
}

// poll is one invocation by the event source mapping: up to 10 messages
// received (waiting up to a second for one), handed to the handler as an
// SQS event, and those it does not report as batch item failures deleted.
// It returns the number of messages handed over.
func (r *cloudRig) poll(t *testing.T, c *container) int {
	t.Helper()
	ctx := context.Background()
	out, err := r.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(r.QueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) == 0 {
		return 0
	}
	var ev events.SQSEvent
	receipts := map[string]string{}
	for _, m := range out.Messages {
		attrs := map[string]events.SQSMessageAttribute{}
		for k, v := range m.MessageAttributes {
			attrs[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue}
		}
		id := aws.ToString(m.MessageId)
		receipts[id] = aws.ToString(m.ReceiptHandle)
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: id, ReceiptHandle: receipts[id], Body: aws.ToString(m.Body),
			MessageAttributes: attrs, Attributes: m.Attributes, EventSource: "aws:sqs",
		})
	}
	resp, err := c.h.handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range resp.BatchItemFailures {
		delete(receipts, f.ItemIdentifier)
	}
	var entries []sqstypes.DeleteMessageBatchRequestEntry
	for _, rh := range receipts {
		entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(len(entries))), ReceiptHandle: aws.String(rh)})
	}
	if len(entries) > 0 {
		del, err := r.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(r.QueueURL), Entries: entries})
		if err != nil {
			t.Fatal(err)
		}
		if len(del.Failed) > 0 {
			t.Fatalf("delete settled messages: %+v", del.Failed)
		}
	}
	return len(ev.Records)
}

// hit is one request the target received.
type hit struct {
	id     string // webhook-id: the task
	status int
	open   bool // the target's circuit was open in the store when it came
	at     time.Time
}

// webhook is a webhook server on loopback. status gives the answer to
// each request, from the requests so far and whether the target's circuit
// is open in the store (read at each request).
type webhook struct {
	*httptest.Server
	mu     sync.Mutex
	hits   []hit
	status func(hits []hit, open bool) int
}

func (r *cloudRig) newWebhook(t *testing.T, status func(hits []hit, open bool) int) *webhook {
	t.Helper()
	wh := &webhook{status: status}
	health := r.Store.Health()
	wh.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		st, err := health.Read(req.Context(), delivery.TargetKey(wh.URL), "")
		if err != nil {
			t.Errorf("read the target's circuit: %v", err)
		}
		wh.mu.Lock()
		h := hit{id: req.Header.Get("webhook-id"), open: st.Target.Open(), at: time.Now()}
		h.status = wh.status(wh.hits, h.open)
		wh.hits = append(wh.hits, h)
		wh.mu.Unlock()
		w.WriteHeader(h.status)
	}))
	t.Cleanup(wh.Close)
	return wh
}

func (wh *webhook) requests() []hit {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	return slices.Clone(wh.hits)
}

// cliBuild is the regtrigger binary, built once.
var cliBuild struct {
	once     sync.Once
	dir, bin string
	err      error
}

// cli runs `regtrigger args...` on --store dynamodb, its tables named by
// the environment as a user's shell would, and returns its standard output.
func (r *cloudRig) cli(t *testing.T, args ...string) string {
	t.Helper()
	cliBuild.once.Do(func() {
		if cliBuild.dir, cliBuild.err = os.MkdirTemp("", "regtrigger-cli-"); cliBuild.err == nil {
			cliBuild.bin = filepath.Join(cliBuild.dir, "regtrigger")
			cliBuild.err = testserver.Build(cliBuild.bin, "./cmd/regtrigger")
		}
	})
	if cliBuild.err != nil {
		t.Fatal(cliBuild.err)
	}
	cmd := exec.Command(cliBuild.bin, args...)
	cmd.Env = append(slices.Clone(r.cliEnv), "REGTRIGGER_STORE=dynamodb",
		config.EnvTriggersTable+"="+r.Tables.Triggers, config.EnvRecordsTable+"="+r.Tables.Records)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("regtrigger %v: exit %d\n%s", args, ee.ExitCode(), stderr.String())
		}
		t.Fatalf("regtrigger %v: %v", args, err)
	}
	return stdout.String()
}

// lockedBuffer is a bytes.Buffer the handler's goroutines may write to at
// once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// count is how many lines of b hold sub.
func (b *lockedBuffer) count(sub string) int {
	n := 0
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
