package cloud

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/teststack"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// measureEnv switches on the measurements: they start dynalite and fauxqs
// and take a minute, so `make test` skips them.
const measureEnv = "REGTRIGGER_MEASURE"

// TestRequestsPerNotification counts the AWS requests the receiver makes per
// notification, and the dispatcher per delivery, by X-Amz-Target, with the
// production adapters (FromAWS, the default 10 s trigger cache) on dynalite
// and fauxqs. It prints what docs/benchmarks.md reports (issue 5):
//
//	REGTRIGGER_MEASURE=1 go test -run TestRequestsPerNotification -v -count=1 ./internal/cloud
//
// Besides the counts it estimates the request units AWS would bill: item
// sizes by DynamoDB's rules (names + values), each write counted once for the
// table and once per global secondary index holding the item (every index
// of the templates projects ALL); SQS requests per 64 KiB of request body.
func TestRequestsPerNotification(t *testing.T) {
	if os.Getenv(measureEnv) == "" {
		t.Skip("a measurement: set " + measureEnv + "=1")
	}
	m := newMeasureRig(t)

	// Five namespaces, each with a trigger that fires (repository app,
	// tags v*) and one near miss (tags release-*).
	const namespaces = 5
	tg := newFlakyTarget(t, 10)
	for i := range namespaces {
		ns := fmt.Sprintf("team-%d", i)
		m.addTrigger(t, "deploy-"+ns, ns, "v*", tg.URL+"/hook")
		m.addTrigger(t, "release-"+ns, ns, "release-*", tg.URL+"/release")
	}

	type scenario struct {
		id, name      string
		notifications int
		tags          int // tags per notification
		namespace     func(i int) string
	}
	for _, sc := range []scenario{
		{"one-tag", "1,000 one-tag notifications over 5 namespaces (1 trigger + 1 near miss each)", 1000, 1, func(i int) string { return fmt.Sprintf("team-%d", i%namespaces) }},
		{"burst", "burst: 100 notifications naming 10 tags each, 5 namespaces", 100, 10, func(i int) string { return fmt.Sprintf("team-%d", i%namespaces) }},
		{"no-triggers", "1,000 notifications for a namespace without triggers", 1000, 1, func(int) string { return "nobody" }},
	} {
		t.Run(sc.id, func(t *testing.T) {
			stack, counts := m.newStack(t) // a fresh container: an empty trigger cache
			ep, err := stack.Endpoint(slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			var took []time.Duration
			start := time.Now()
			tasks := 0
			for i := range sc.notifications {
				tags := make([]string, sc.tags)
				for j := range tags {
					tags[j] = fmt.Sprintf("v%d.%d.%d", i, j, start.UnixNano()%1e6)
				}
				t0 := time.Now()
				resp := ep.Handle(context.Background(), receiver.Inbound{
					Method: http.MethodPost, Path: "/v1/notify",
					Header: http.Header{"Authorization": {"Bearer " + measureToken}, "Content-Type": {"application/json"}},
					Body:   tcrPush(sc.namespace(i), "app", tags, start),
				})
				took = append(took, time.Since(t0))
				if resp.Status != http.StatusAccepted {
					t.Fatalf("notification %d: %d %s", i, resp.Status, resp.Body)
				}
				var a receiver.Accepted
				if err := json.Unmarshal(resp.Body, &a); err != nil {
					t.Fatal(err)
				}
				tasks += a.Tasks
			}
			elapsed := time.Since(start)
			per := 1000.0 / float64(sc.notifications)
			t.Logf("%s: %d notifications, %d events, %d tasks in %v (p50 %v, mean %v per notification; trigger cache TTL %v)",
				sc.name, sc.notifications, sc.notifications*sc.tags, tasks, elapsed.Round(time.Millisecond), pct(took, 50), mean(took), stack.Triggers.TTL)
			t.Logf("per 1,000 notifications:\n%s", counts.table(per))
		})
	}

	// The dispatcher's side for the tasks of the first scenario: the
	// queue holds 1,000 of them (and 1,000 more of the burst). Lambda's
	// event source mapping receives up to 10 messages at a time and
	// deletes those the function settled; the function makes each delivery
	// (a record PutItem), archives finished tasks (PutItem) and sends
	// retries back (SendMessageBatch of one entry). Every 10th request to
	// the target answers 503 (a retry).
	t.Run("dispatcher", func(t *testing.T) {
		stack, counts := m.newStack(t)
		engine, err := stack.Engine(slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var delivered, retried, batches int
		var took []time.Duration
		seen := map[string]bool{} // tasks of the receiver's scenarios
		start := time.Now()
		for len(seen) < 2000 && time.Since(start) < 3*time.Minute {
			rs, err := stack.Queue.Receive(ctx, 10, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) == 0 {
				continue
			}
			batches++
			t0 := time.Now()
			var wg sync.WaitGroup
			var mu sync.Mutex
			var settled []sqstypes.DeleteMessageBatchRequestEntry
			for i, r := range rs {
				if r.Err != nil {
					t.Fatal(r.Err)
				}
				seen[r.Task.ID] = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					out := engine.Deliver(ctx, r.Task)
					var err error
					if out.Retry {
						err = stack.Queue.Reschedule(ctx, out.Task, out.Delay)
					} else {
						err = stack.Store.Records().Archive(ctx, out.Task)
					}
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Error(err)
						return
					}
					if out.Retry {
						retried++
					} else {
						delivered++
					}
					settled = append(settled, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: aws.String(r.ReceiptHandle)})
				}()
			}
			wg.Wait()
			took = append(took, time.Since(t0))
			if _, err := stack.Queue.Client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(stack.Queue.URL), Entries: settled}); err != nil {
				t.Fatal(err)
			}
		}
		n := delivered + retried
		if len(seen) < 2000 {
			t.Fatalf("%d of 2000 tasks received", len(seen))
		}
		t.Logf("dispatcher: %d attempts of %d tasks in %d batches of up to 10 (%d finished, %d retries scheduled) in %v; p50 %v, mean %v per batch (deliveries in parallel)",
			n, len(seen), batches, delivered, retried, time.Since(start).Round(time.Millisecond), pct(took, 50), mean(took))
		t.Logf("per 1,000 delivery attempts (ReceiveMessage and DeleteMessageBatch are the event source mapping's on Lambda):\n%s", counts.table(1000/float64(n)))
	})
}

const measureToken = "measure-token-0123456789abcdef"

// measureRig is dynalite and fauxqs with one set of tables and a queue.
type measureRig struct {
	base *teststack.Stack
	gsis map[string][]string // table -> the key attributes of its indexes (projection ALL)
	env  map[string]string
}

func newMeasureRig(t *testing.T) *measureRig {
	t.Helper()
	st := newAWSStack(t, "measure")
	ctx := context.Background()
	m := &measureRig{base: st, gsis: map[string][]string{}, env: map[string]string{
		config.EnvTriggersTable: st.Tables.Triggers, config.EnvRecordsTable: st.Tables.Records, config.EnvDedupeTable: st.Tables.Dedupe,
		config.EnvQueueURL: st.QueueURL, config.EnvRegistries: "tcr=" + measureToken, config.EnvAllowPrivate: "127.0.0.1/32",
	}}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx) // the variables newAWSStack set
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(awsCfg)
	for _, table := range []string{st.Tables.Triggers, st.Tables.Records, st.Tables.Dedupe} {
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.Table.GlobalSecondaryIndexes {
			if g.Projection == nil || g.Projection.ProjectionType != "ALL" {
				t.Fatalf("index %s of %s does not project ALL: the estimate below assumes it", aws.ToString(g.IndexName), table)
			}
			m.gsis[table] = append(m.gsis[table], aws.ToString(g.KeySchema[0].AttributeName))
		}
	}
	return m
}

// newStack is a new container's adapters (cloud.FromAWS on the SDK's
// default configuration) whose every request is counted.
func (m *measureRig) newStack(t *testing.T) (*Stack, *requestCounter) {
	t.Helper()
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Every request still goes through the SDK's own client.
	counts := &requestCounter{gsis: m.gsis, calls: map[string]*callCount{}, next: awsCfg.HTTPClient}
	awsCfg.HTTPClient = counts
	cfg, err := config.FromEnv(func(k string) string { return m.env[k] }, ReceiverRequires...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := FromAWS(awsCfg, cfg, "measure")
	if err != nil {
		t.Fatal(err)
	}
	return s, counts
}

func (m *measureRig) addTrigger(t *testing.T, name, namespace, tag, url string) {
	t.Helper()
	tr := trigger.Trigger{
		Name: name, Enabled: true, Actions: []event.Action{event.PushImage},
		Namespace: namespace, Repository: "app", Tag: tag, URL: url, Format: payload.TCR,
		Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
	}
	rules := trigger.Rules{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	if probs := rules.Validate(&tr); len(probs) > 0 {
		t.Fatalf("trigger %s: %v", name, probs)
	}
	if _, err := m.base.Store.Triggers().Create(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
}

// newFlakyTarget is a webhook target answering 204, and 503 to every
// every-th request.
func newFlakyTarget(t *testing.T, every int64) *httptest.Server {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if n.Add(1)%every == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// tcrPush is a Tencent TCR push of namespace/repo naming tags.
func tcrPush(namespace, repo string, tags []string, at time.Time) []byte {
	type resource struct {
		Digest      string `json:"digest"`
		Tag         string `json:"tag"`
		ResourceURL string `json:"resource_url"`
	}
	var rs []resource
	for _, tag := range tags {
		rs = append(rs, resource{Digest: "sha256:89a42c3ba15f09a3fbe39856bddacdf9e94cd03df7403cad4fc1056ee268fc9", Tag: tag,
			ResourceURL: "measure.tencentcloudcr.com/" + namespace + "/" + repo + ":" + tag})
	}
	b, _ := json.Marshal(map[string]any{
		"type": "pushImage", "occur_at": at.Unix(), "operator": "measure",
		"event_data": map[string]any{
			"resources":  rs,
			"repository": map[string]any{"name": repo, "namespace": namespace, "repo_full_name": namespace + "/" + repo, "repo_type": "private"},
		},
	})
	return b
}

// requestCounter is an aws.HTTPClient that counts every HTTP request the
// SDK sends (retries included: AWS bills them) by X-Amz-Target, and
// estimates its billed units.
type requestCounter struct {
	gsis  map[string][]string
	next  aws.HTTPClient // the SDK's client, which sends the request
	mu    sync.Mutex
	calls map[string]*callCount
}

type callCount struct {
	n      int
	failed int     // answered with a 4xx or 5xx (a failed condition is still billed)
	bytes  int64   // request bodies
	sqsReq int     // SQS billed requests: one per 64 KiB of body
	wru    float64 // DynamoDB write request units, tables and indexes
	rru    float64 // DynamoDB read request units
}

func (c *requestCounter) Do(r *http.Request) (*http.Response, error) {
	target := r.Header.Get("X-Amz-Target")
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := c.next.Do(r)
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))

	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.calls[target]
	if cc == nil {
		cc = &callCount{}
		c.calls[target] = cc
	}
	cc.n++
	cc.bytes += int64(len(body))
	if resp.StatusCode >= 400 {
		cc.failed++
	}
	switch {
	case strings.HasPrefix(target, "AmazonSQS."):
		cc.sqsReq += max(1, int(math.Ceil(float64(len(body))/65536)))
	case strings.HasPrefix(target, "DynamoDB_20120810."):
		w, rd := c.units(strings.TrimPrefix(target, "DynamoDB_20120810."), body, out)
		cc.wru += w
		cc.rru += rd
	}
	return resp, nil
}

// units estimates the request units of one DynamoDB call (on-demand): a
// write is ceil(item KB) for the table plus the same for each index whose
// key the item has; a query reads the returned items' total size in 4 KB
// units, halved (eventually consistent, as index queries are), at least
// 0.5; a delete or a failed conditional write costs at least 1.
func (c *requestCounter) units(op string, req, resp []byte) (wru, rru float64) {
	var in struct {
		TableName string
		Item      map[string]json.RawMessage
		Key       map[string]json.RawMessage
	}
	_ = json.Unmarshal(req, &in)
	switch op {
	case "PutItem":
		size := itemSize(in.Item)
		kb := math.Max(1, math.Ceil(float64(size)/1024))
		wru = kb
		for _, key := range c.gsis[in.TableName] {
			if _, ok := in.Item[key]; ok {
				wru += kb
			}
		}
	case "DeleteItem", "UpdateItem":
		wru = 1
	case "Query", "Scan":
		var out struct{ Items []map[string]json.RawMessage }
		_ = json.Unmarshal(resp, &out)
		size := 0
		for _, it := range out.Items {
			size += itemSize(it)
		}
		rru = math.Max(0.5, math.Ceil(float64(size)/4096)*0.5)
	case "GetItem":
		rru = 1
	case "BatchGetItem":
		// Each key read is billed as a read of its own (an item under
		// 4 KB, or none): 1 unit strongly consistent, else 0.5.
		var b struct {
			RequestItems map[string]struct {
				Keys           []json.RawMessage
				ConsistentRead bool
			}
		}
		_ = json.Unmarshal(req, &b)
		for _, t := range b.RequestItems {
			per := 0.5
			if t.ConsistentRead {
				per = 1
			}
			rru += per * float64(len(t.Keys))
		}
	}
	return wru, rru
}

// itemSize is an item's size by DynamoDB's rules: each attribute's name
// plus its value (strings and binaries their bytes, numbers about one byte
// per two digits plus one, booleans and nulls one byte, lists and maps 3
// bytes plus one per element plus their contents).
func itemSize(item map[string]json.RawMessage) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(raw json.RawMessage) int {
	var v map[string]json.RawMessage
	if json.Unmarshal(raw, &v) != nil {
		return len(raw)
	}
	for kind, x := range v {
		switch kind {
		case "S":
			var s string
			_ = json.Unmarshal(x, &s)
			return len(s)
		case "N":
			var s string
			_ = json.Unmarshal(x, &s)
			digits := strings.Trim(strings.NewReplacer("-", "", ".", "").Replace(s), "0")
			return (len(digits)+1)/2 + 1
		case "B":
			var s string
			_ = json.Unmarshal(x, &s)
			b, _ := base64.StdEncoding.DecodeString(s)
			return len(b)
		case "BOOL", "NULL":
			return 1
		case "M":
			var m map[string]json.RawMessage
			_ = json.Unmarshal(x, &m)
			return 3 + len(m) + itemSize(m)
		case "L":
			var l []json.RawMessage
			_ = json.Unmarshal(x, &l)
			n := 3 + len(l)
			for _, e := range l {
				n += valueSize(e)
			}
			return n
		}
	}
	return len(raw)
}

// table formats the counts scaled by per (e.g. 1000/notifications).
func (c *requestCounter) table(per float64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	targets := make([]string, 0, len(c.calls))
	for k := range c.calls {
		targets = append(targets, k)
	}
	sort.Strings(targets)
	var b strings.Builder
	fmt.Fprintf(&b, "  %-36s %8s %8s %10s %10s %8s %8s\n", "X-Amz-Target", "calls", "failed", "KiB sent", "SQS units", "WRU", "RRU")
	var sqsReq, wru, rru float64
	for _, k := range targets {
		cc := c.calls[k]
		fmt.Fprintf(&b, "  %-36s %8.1f %8.1f %10.1f %10.1f %8.1f %8.1f\n", k, float64(cc.n)*per, float64(cc.failed)*per, float64(cc.bytes)*per/1024,
			float64(cc.sqsReq)*per, cc.wru*per, cc.rru*per)
		sqsReq += float64(cc.sqsReq) * per
		wru += cc.wru * per
		rru += cc.rru * per
	}
	fmt.Fprintf(&b, "  %-36s %8s %8s %10s %10.1f %8.1f %8.1f", "total", "", "", "", sqsReq, wru, rru)
	return b.String()
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)].Round(10 * time.Microsecond)
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return (sum / time.Duration(len(ds))).Round(10 * time.Microsecond)
}
