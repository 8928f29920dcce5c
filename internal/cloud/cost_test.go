package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
)

// Prices assumed by TestCostPerScenario: on-demand, us-east-1, as looked
// up for docs/benchmarks.md on 2026-12-02 (sources there and in
// docs/aws.md). Lambda duration and log ingestion are added in the docs,
// from measured durations and log lines.
const (
	priceWRU       = 0.625 / 1e6 // DynamoDB on-demand write request unit
	priceRRU       = 0.125 / 1e6 // DynamoDB on-demand read request unit
	priceSQS       = 0.40 / 1e6  // SQS standard, per 64 KiB request
	priceInvoke    = 0.20 / 1e6  // Lambda request
	priceGBs       = 0.0000133334
	receiverGBs    = 0.25 * 0.030 // 256 MB for 30 ms (assumed on AWS)
	dispatcherGBs  = 0.25 * 0.200 // 256 MB for 200 ms per batch (assumed with real webhooks)
	costPerMillion = 1e6
)

// TestCostPerScenario counts the AWS requests and estimated billed units of
// each scenario of issue 19 through the counting client of
// TestRequestsPerNotification (production adapters, dynalite and fauxqs),
// and prints the cost per million of each:
//
//		REGTRIGGER_MEASURE=1 go test -run TestCostPerScenario -v -count=1 ./internal/cloud
//
//	  - matched: a one-tag notification firing one trigger, delivered at the
//	    first attempt (the receiver, then the dispatcher as its event source
//	    mapping and handler do it: ReceiveMessage of 10, deliveries, archive,
//	    DeleteMessageBatch);
//	  - near miss: a notification for a namespace whose triggers do not fire;
//	  - no trigger: a namespace without triggers;
//	  - always failing: a task whose target always answers 503, through all
//	    8 attempts. Each retry holds its message (ChangeMessageVisibility, as
//	    functions/dispatcher does) with a delay of 0 instead of the real one,
//	    so the test does not wait a day; the requests are the same except
//	    for the one wait over 12 h of the default schedule, which the
//	    dispatcher makes a new message whose two early receives are held
//	    again: those are added to the count by hand (one SendMessageBatch,
//	    two ReceiveMessage and two ChangeMessageVisibility shares).
func TestCostPerScenario(t *testing.T) {
	if os.Getenv(measureEnv) == "" {
		t.Skip("a measurement: set " + measureEnv + "=1")
	}
	m := newMeasureRig(t)
	ok := newFlakyTarget(t, 1<<62)  // never fails
	failing := newFlakyTarget(t, 1) // always 503
	m.addTrigger(t, "deploy-matched", "matched", "v*", ok.URL+"/hook")
	m.addTrigger(t, "release-only", "near", "release-*", ok.URL+"/hook")
	m.addTrigger(t, "deploy-failing", "failing", "v*", failing.URL+"/hook")

	type result struct {
		name       string
		units      int // notifications or tasks
		invokes    float64
		gbs        float64
		counts     *requestCounter
		extraSQS   float64 // SQS requests added by hand (see above)
		extraCalls string
	}
	var results []result

	notify := func(t *testing.T, stack *Stack, namespace string, n int) int {
		t.Helper()
		ep, err := stack.Endpoint(slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		tasks := 0
		for i := range n {
			resp := ep.Handle(context.Background(), receiver.Inbound{
				Method: http.MethodPost, Path: "/v1/notify",
				Header: http.Header{"Authorization": {"Bearer " + measureToken}, "Content-Type": {"application/json"}},
				Body:   tcrPush(namespace, "app", []string{fmt.Sprintf("v%d.%d", i, start.UnixNano()%1e6)}, start),
			})
			if resp.Status != http.StatusAccepted {
				t.Fatalf("notification %d: %d %s", i, resp.Status, resp.Body)
			}
			var a receiver.Accepted
			if err := json.Unmarshal(resp.Body, &a); err != nil {
				t.Fatal(err)
			}
			tasks += a.Tasks
		}
		return tasks
	}

	// drain runs the dispatcher over the queue until want tasks finished:
	// batches of up to 10, each retry held (delay 0), the finished
	// archived and deleted. It returns the batches (invocations).
	//
	// alone: each task's own retry ladder, as if every failing task had a
	// target of its own (without it the circuit breaker holds back the
	// tasks of one dead target after its first failures, which is cheaper
	// still but measures the circuit, not a task).
	drain := func(t *testing.T, stack *Stack, want int, alone bool) int {
		t.Helper()
		engine, err := stack.Engine(slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if alone {
			engine.Health = nil
		}
		ctx := context.Background()
		finished, batches := 0, 0
		deadline := time.Now().Add(3 * time.Minute)
		for finished < want && time.Now().Before(deadline) {
			out, err := stack.Queue.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
				QueueUrl: aws.String(stack.Queue.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
				MessageAttributeNames:       []string{"All"},
				MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Messages) == 0 {
				continue
			}
			batches++
			var settled []sqstypes.DeleteMessageBatchRequestEntry
			for i, msg := range out.Messages {
				task, err := sqsqueue.Decode(aws.ToString(msg.Body))
				if err != nil {
					t.Fatal(err)
				}
				n, _ := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
				task.Attempt += n - 1
				res := engine.Deliver(ctx, task)
				if res.Retry {
					if err := stack.Queue.Hold(ctx, aws.ToString(msg.ReceiptHandle), 0); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := stack.Store.Records().Archive(ctx, res.Task); err != nil {
					t.Fatal(err)
				}
				finished++
				settled = append(settled, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: msg.ReceiptHandle})
			}
			if len(settled) > 0 {
				if _, err := stack.Queue.Client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(stack.Queue.URL), Entries: settled}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if finished < want {
			t.Fatalf("%d of %d tasks finished", finished, want)
		}
		return batches
	}

	t.Run("matched", func(t *testing.T) {
		const n = 1000
		stack, counts := m.newStack(t)
		if tasks := notify(t, stack, "matched", n); tasks != n {
			t.Fatalf("%d tasks", tasks)
		}
		batches := drain(t, stack, n, false)
		results = append(results, result{name: "matched delivery (one trigger fires, delivered at once)", units: n,
			invokes: float64(n + batches), gbs: n*receiverGBs + float64(batches)*dispatcherGBs, counts: counts})
	})
	t.Run("near-miss", func(t *testing.T) {
		const n = 1000
		stack, counts := m.newStack(t)
		if tasks := notify(t, stack, "near", n); tasks != 0 {
			t.Fatalf("%d tasks", tasks)
		}
		results = append(results, result{name: "near miss (the namespace's trigger does not fire)", units: n, invokes: n, gbs: n * receiverGBs, counts: counts})
	})
	t.Run("no-trigger", func(t *testing.T) {
		const n = 1000
		stack, counts := m.newStack(t)
		notify(t, stack, "nobody", n)
		results = append(results, result{name: "no trigger in the namespace", units: n, invokes: n, gbs: n * receiverGBs, counts: counts})
	})
	t.Run("always-failing", func(t *testing.T) {
		const n = 100
		stack, counts := m.newStack(t)
		if tasks := notify(t, stack, "failing", n); tasks != n {
			t.Fatalf("%d tasks", tasks)
		}
		batches := drain(t, stack, n, true)
		// The wait over 12 h (15 h ± 20 %): one new message, two early
		// receives held. Each receive is a share of a batch of 10.
		extra := float64(n) * (1 + 2*0.1 + 2)
		results = append(results, result{name: "always-failing task (8 attempts, default schedule)", units: n,
			invokes: float64(n+batches) + 0.2*n, gbs: n*receiverGBs + (float64(batches)+0.2*n)*dispatcherGBs, counts: counts,
			extraSQS: extra, extraCalls: "+1 SendMessageBatch, +0.2 ReceiveMessage, +2 ChangeMessageVisibility per task"})
	})

	var b strings.Builder
	fmt.Fprintf(&b, "\n%-58s %8s %8s %8s %8s %9s %9s %9s %9s\n", "scenario, per unit", "WRU", "RRU", "SQS req", "invokes", "$DynamoDB", "$SQS", "$Lambda", "$/M total")
	for _, r := range results {
		var wru, rru, sqsReq float64
		r.counts.mu.Lock()
		for _, cc := range r.counts.calls {
			wru += cc.wru
			rru += cc.rru
			sqsReq += float64(cc.sqsReq)
		}
		r.counts.mu.Unlock()
		sqsReq += r.extraSQS
		per := 1 / float64(r.units)
		dyn := (wru*priceWRU + rru*priceRRU) * per * costPerMillion
		sq := sqsReq * priceSQS * per * costPerMillion
		lam := (r.invokes*priceInvoke + r.gbs*priceGBs) * per * costPerMillion
		fmt.Fprintf(&b, "%-58s %8.2f %8.3f %8.2f %8.2f %9.3f %9.3f %9.3f %9.3f\n", r.name, wru*per, rru*per, sqsReq*per, r.invokes*per, dyn, sq, lam, dyn+sq+lam)
		t.Logf("%s, per 1,000 units:\n%s", r.name, r.counts.table(1000*per))
		if r.extraCalls != "" {
			t.Logf("  added by hand: %s", r.extraCalls)
		}
	}
	t.Logf("cost per million (without log ingestion; Lambda at 30 ms per notification and 200 ms per batch, 256 MB):%s", b.String())
}
