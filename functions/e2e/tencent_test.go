package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tencentyun/scf-go-lib/events"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/redisstore"
	"github.com/regtrigger/regtrigger/internal/scf"
	"github.com/regtrigger/regtrigger/internal/signature"
	"github.com/regtrigger/regtrigger/internal/taskmsg"
	"github.com/regtrigger/regtrigger/internal/testserver"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// The Tencent-native functions (issue 20): the SCF binaries on Redis
// (Debian's redis-server) and Kafka (franz-go's kfake, in this process),
// both on loopback; no AWS server is used.

const tasksTopic = "regtrigger-tasks"

type tencent struct {
	redis   *testserver.Redis
	kafka   *kfake.Cluster
	store   *redisstore.Store
	reader  *kgo.Client
	kafkaOK bool
}

func newTencent(t *testing.T) *tencent {
	t.Helper()
	r, err := testserver.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, tasksTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	st, err := redisstore.New(redisstore.Config{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := kgo.NewClient(kgo.SeedBrokers(k.ListenAddrs()...), kgo.ConsumeTopics(tasksTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reader.Close)
	return &tencent{redis: r, kafka: k, store: st, reader: reader, kafkaOK: true}
}

// env is both functions' environment, as deploy/tencent/serverless.yml sets it.
func (tc *tencent) env(extra ...string) map[string]string {
	return testserver.EnvMap(append([]string{
		"REGTRIGGER_STORE=" + tc.redis.URL,
		"REGTRIGGER_QUEUE=kafka://" + strings.Join(tc.kafka.ListenAddrs(), ",") + "/" + tasksTopic + "?timeout=2s",
		"REGTRIGGER_REGISTRIES=tcr=" + sampleToken,
		"ALLOW_PRIVATE_CIDRS=127.0.0.1/32",
		"LOG_LEVEL=debug",
	}, extra...)...)
}

func (tc *tencent) addTrigger(t *testing.T, url string, mutate ...func(*trigger.Trigger)) {
	t.Helper()
	tr := trigger.Trigger{
		Name: "deploy-nginx", Enabled: true, Actions: []event.Action{event.PushImage},
		Namespace: "public", Repository: "nginx", Tag: "v*", URL: url, Format: payload.TCR, Secrets: []string{signingSecret},
	}
	for _, m := range mutate {
		m(&tr)
	}
	rules := trigger.Rules{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	if probs := rules.Validate(&tr); len(probs) > 0 {
		t.Fatal(probs)
	}
	if _, err := tc.store.Triggers().Create(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
}

// batch reads the next n records of the topic as a CKafka trigger event.
func (tc *tencent) batch(t *testing.T, n int) events.CkafkaEvent {
	t.Helper()
	var ev events.CkafkaEvent
	deadline := time.Now().Add(30 * time.Second)
	for len(ev.Records) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the topic holds %d of %d records", len(ev.Records), n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := tc.reader.PollRecords(ctx, n-len(ev.Records))
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			ev.Records = append(ev.Records, events.CkafkaRecord{Message: events.CkafkaMessage{
				Topic: r.Topic, Partition: int64(r.Partition), Offset: r.Offset, Key: string(r.Key), Body: string(r.Value)}})
		})
	}
	return ev
}

// empty reports that no record arrives within a poll.
func (tc *tencent) empty(t *testing.T) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return tc.reader.PollRecords(ctx, 1).NumRecords() == 0
}

func functionURLEvent(t *testing.T, body []byte) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(sample(t, "events/scf/function-url-tcr-push.json"), &ev); err != nil {
		t.Fatal(err)
	}
	if body != nil {
		ev["body"] = string(body)
	}
	b, _ := json.Marshal(ev)
	return b
}

func invokeBatch(t *testing.T, f *testserver.SCF, ev events.CkafkaEvent) scf.BatchSummary {
	t.Helper()
	var s scf.BatchSummary
	if err := f.InvokeJSON(context.Background(), ev, &s); err != nil {
		t.Fatalf("ckafka invoke: %v", err)
	}
	return s
}

func (tc *tencent) records(t *testing.T, q record.Query) []record.Record {
	t.Helper()
	rs, err := tc.store.Records().List(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestTencentPushToDelivery: a TCR push through the SCF receiver behind a
// function URL is produced to the topic, delivered by the SCF dispatcher
// on its CKafka trigger, signed, with records and the archive in Redis; a
// 500 is scheduled in the Redis retry set, moved back by the timer and
// delivered at the second attempt.
func TestTencentPushToDelivery(t *testing.T) {
	tc := newTencent(t)
	tg := newTarget(t, http.StatusInternalServerError, http.StatusOK)
	tc.addTrigger(t, tg.URL+"/hook")
	recv := startSCF(t, "scf-receiver", tc.env(), 30*time.Second)
	ans, got := invokeAPIGW(t, recv, functionURLEvent(t, nil))
	if ans.StatusCode != http.StatusAccepted || got["tasks"] != 1.0 {
		t.Fatalf("receiver answered %d %s", ans.StatusCode, ans.Body)
	}
	taskID := got["events"].([]any)[0].(map[string]any)["tasks"].([]any)[0].(map[string]any)["id"].(string)

	disp := startSCF(t, "scf-dispatcher", tc.env(), time.Minute)
	if s := invokeBatch(t, disp, tc.batch(t, 1)); s.Deliveries["retrying"] != 1 || s.Scheduled != 1 {
		t.Fatalf("first batch: %+v", s)
	}
	ctx := context.Background()
	due, err := tc.store.Retries().Pending(ctx, "deploy-nginx")
	if err != nil || len(due) != 1 || due[0].Task.Attempt != 1 || !due[0].At.After(time.Now()) {
		t.Fatalf("retry set: %+v, %v", due, err)
	}
	// Bring the retry due now rather than wait out the backoff.
	if err := tc.store.Retries().Schedule(ctx, due[0].Task, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	var rq scf.RequeueSummary
	if err := disp.InvokeJSON(ctx, json.RawMessage(sample(t, "events/scf/timer.json")), &rq); err != nil || rq.Requeued != 1 {
		t.Fatalf("timer: %+v, %v", rq, err)
	}
	if s := invokeBatch(t, disp, tc.batch(t, 1)); s.Deliveries["success"] != 1 || s.Scheduled != 0 {
		t.Fatalf("second batch: %+v", s)
	}

	ds := tg.deliveries()
	if len(ds) != 2 || ds[1].header.Get("webhook-id") != taskID {
		t.Fatalf("deliveries %+v", ds)
	}
	secret, _ := signature.ParseSecret(signingSecret)
	if err := signature.Verify([]signature.Secret{secret}, taskID, ds[1].header.Get("webhook-timestamp"), ds[1].body, ds[1].header.Get("webhook-signature"), time.Now(), signature.DefaultTolerance); err != nil {
		t.Errorf("signature: %v", err)
	}
	recs := tc.records(t, record.Query{TaskID: taskID})
	if len(recs) != 2 || recs[0].Status != record.Success || recs[0].Attempt != 2 || recs[1].Status != record.Retrying {
		t.Errorf("records %+v", recs)
	}
	if _, err := tc.store.Archived(ctx, taskID); err != nil {
		t.Errorf("archive: %v", err)
	}
	if left, _ := tc.store.Retries().Pending(ctx, ""); len(left) != 0 {
		t.Errorf("retries left: %+v", left)
	}
	for _, line := range jsonLines(disp.Logs(), taskID) {
		if !strings.Contains(line, `"requestId":"scf-req-`) {
			t.Errorf("log line without the SCF request id: %s", line)
		}
	}
}

// TestTencentBadInput: what the functions do when Redis or Kafka is down,
// with a poison record and with a task too large for one record.
func TestTencentBadInput(t *testing.T) {
	t.Run("poison record", func(t *testing.T) {
		tc := newTencent(t)
		disp := startSCF(t, "scf-dispatcher", tc.env(), time.Minute)
		var ev events.CkafkaEvent
		if err := json.Unmarshal(sample(t, "events/scf/ckafka-task.json"), &ev); err != nil {
			t.Fatal(err)
		}
		ev.Records[0].Message.Body = "not a task"
		s := invokeBatch(t, disp, ev)
		if s.Undecodable != 1 || len(s.Deliveries) != 0 {
			t.Errorf("summary %+v", s)
		}
		recs := tc.records(t, record.Query{Status: record.Failed})
		if len(recs) != 1 || recs[0].ErrorClass != record.ClassUndecodable || strings.Contains(recs[0].Error, "not a task") {
			t.Errorf("records %+v", recs)
		}
	})
	t.Run("task too large", func(t *testing.T) {
		tc := newTencent(t)
		tc.addTrigger(t, "http://127.0.0.1:9999/hook", func(tr *trigger.Trigger) { tr.Format = payload.Raw })
		var b map[string]any
		if err := json.Unmarshal(body(t, "events/bodies/tcr-push.json"), &b); err != nil {
			t.Fatal(err)
		}
		b["padding"] = strings.Repeat("x", 800<<10) // kept raw, base64 in the task: over 900 KiB
		big, _ := json.Marshal(b)
		recv := startSCF(t, "scf-receiver", tc.env(), 30*time.Second)
		ans, _ := invokeAPIGW(t, recv, functionURLEvent(t, big))
		if ans.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("answer %d %s", ans.StatusCode, ans.Body)
		}
		if !tc.empty(t) {
			t.Error("a task too large reached the topic")
		}
		if !recv.WaitLogs("too large", 10*time.Second) {
			t.Errorf("the receiver did not log why:\n%s", recv.Logs())
		}
	})
	t.Run("redis down", func(t *testing.T) {
		tc := newTencent(t)
		tg := newTarget(t)
		tc.addTrigger(t, tg.URL+"/hook")
		recv := startSCF(t, "scf-receiver", tc.env(), 30*time.Second)
		if ans, _ := invokeAPIGW(t, recv, functionURLEvent(t, nil)); ans.StatusCode != http.StatusAccepted {
			t.Fatalf("receiver: %d %s", ans.StatusCode, ans.Body)
		}
		batch := tc.batch(t, 1)
		tc.redis.Stop()
		if ans, _ := invokeAPIGW(t, recv, functionURLEvent(t, nil)); ans.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("receiver with Redis down: %d %s", ans.StatusCode, ans.Body)
		}
		disp := startSCF(t, "scf-dispatcher", tc.env(), time.Minute)
		s := invokeBatch(t, disp, batch)
		if s.Deliveries["retrying"] != 1 || s.Returned != 1 || len(tg.deliveries()) != 0 {
			t.Fatalf("dispatcher with Redis down: %+v, %d deliveries", s, len(tg.deliveries()))
		}
		back := tc.batch(t, 1)
		task, err := taskmsg.Decode([]byte(back.Records[0].Message.Body))
		if err != nil || task.Attempt != 0 {
			t.Fatalf("returned task: %+v, %v (the store failure must not count an attempt)", task, err)
		}
		// Redis back (empty: the trigger is stored again): delivered.
		if err := tc.redis.Restart(); err != nil {
			t.Fatal(err)
		}
		tc.addTrigger(t, tg.URL+"/hook")
		if s := invokeBatch(t, disp, back); s.Deliveries["success"] != 1 {
			t.Errorf("after Redis came back: %+v", s)
		}
	})
	t.Run("kafka down", func(t *testing.T) {
		tc := newTencent(t)
		tc.addTrigger(t, "http://127.0.0.1:9999/hook")
		recv := startSCF(t, "scf-receiver", tc.env(), 30*time.Second)
		tc.kafka.Close()
		ans, _ := invokeAPIGW(t, recv, functionURLEvent(t, nil))
		if ans.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("answer %d %s", ans.StatusCode, ans.Body)
		}
		// The duplicate key was released: the registry's retry is not a duplicate.
		if n, err := tc.store.Client().Keys(context.Background(), "{regtrigger}:dedupe:*").Result(); err != nil || len(n) != 0 {
			t.Errorf("dedupe keys left: %v, %v", n, err)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		tc := newTencent(t)
		disp := startSCF(t, "scf-dispatcher", testserver.EnvMap("REGTRIGGER_STORE="+tc.redis.URL), time.Minute)
		_, err := disp.Invoke(context.Background(), sample(t, "events/scf/ckafka-task.json"))
		var fe *testserver.FunctionError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "REGTRIGGER_QUEUE is required") {
			t.Errorf("err = %v", err)
		}
	})
}
