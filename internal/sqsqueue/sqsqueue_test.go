package sqsqueue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
	"github.com/regtrigger/regtrigger/internal/taskmsg"
	"github.com/regtrigger/regtrigger/internal/testserver"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func sampleTask(i int) delivery.Task {
	at := time.Date(2026, 3, 1, 12, 0, i%60, 0, time.UTC)
	tr := delivery.TriggerRef{Namespace: "public", Name: "deploy-" + strconv.Itoa(i), Version: int64(i%5 + 1)}
	ev := event.Event{Source: "tcr", Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1." + strconv.Itoa(i),
		Digest: "sha256:0123", ResourceURL: "ccr.example.com/public/nginx:v1." + strconv.Itoa(i), OccurredAt: at, Operator: "alice"}
	return delivery.Task{ID: fmt.Sprintf("tsk_%032d", i), Trigger: tr, Event: ev, Attempt: i % 3, CreatedAt: at}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for name, task := range map[string]delivery.Task{
		"plain": sampleTask(1),
		"raw body": func() delivery.Task {
			x := sampleTask(2)
			x.Raw = []byte(`{"a":"\u0000 é 😀"}`)
			return x
		}(),
		"noncharacters":  func() delivery.Task { x := sampleTask(3); x.Event.Repository = "a\uFFFEb\uFFFFc"; return x }(),
		"control and ls": func() delivery.Task { x := sampleTask(4); x.Event.Operator = "x\x01\u2028y"; return x }(),
	} {
		t.Run(name, func(t *testing.T) {
			body, err := sqsqueue.Encode(task)
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(body, "\uFFFE\uFFFF\x01") {
				t.Errorf("body holds characters SQS refuses")
			}
			if !strings.HasPrefix(body, `{"v":2,"task":{`) {
				t.Errorf("body starts %.20q", body)
			}
			got, err := sqsqueue.Decode(body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, task) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, task)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, err := sqsqueue.Encode(sampleTask(1))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"empty":           "",
		"garbage":         "not json " + secret,
		"array":           `[1,2]`,
		"unknown version": strings.Replace(good, `{"v":2,`, `{"v":3,`, 1),
		"no version":      strings.Replace(good, `{"v":2,`, `{`, 1),
		"no task":         `{"v":2}`,
		"task not object": `{"v":2,"task":"` + secret + `"}`,
		"no trigger name": `{"v":2,"task":{"id":"tsk_1","trigger":{"namespace":"x"}}}`,
		"legacy, no name": `{"v":1,"task":{"id":"tsk_1","trigger":{"url":"https://x.example.com/?token=sekrit"}}}`,
		"truncated":       good[:len(good)/2],
	} {
		t.Run(name, func(t *testing.T) {
			_, err := sqsqueue.Decode(body)
			if !errors.Is(err, sqsqueue.ErrUndecodable) || !errors.Is(err, dispatcher.ErrUndecodable) {
				t.Fatalf("err = %v, want ErrUndecodable", err)
			}
			if strings.Contains(err.Error(), "sekrit") || strings.Contains(err.Error(), secret) {
				t.Errorf("error quotes the body: %v", err)
			}
		})
	}
}

func TestEncodeTooLarge(t *testing.T) {
	task := sampleTask(1)
	task.Raw = make([]byte, 200<<10) // 200 KiB raw is ~267 KiB in base64
	_, err := sqsqueue.Encode(task)
	if !errors.Is(err, sqsqueue.ErrTooLarge) || !strings.Contains(err.Error(), task.ID) {
		t.Fatalf("err = %v, want ErrTooLarge naming %s", err, task.ID)
	}
	task.Raw = make([]byte, 150<<10) // ~200 KiB encoded: fits
	if _, err := sqsqueue.Encode(task); err != nil {
		t.Fatal(err)
	}
}

func newQueue(t *testing.T, c *sqs.Client, name string) *sqsqueue.Queue {
	t.Helper()
	url, _, err := sqsqueue.CreateQueues(context.Background(), c, name, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &sqsqueue.Queue{Client: c, URL: url}
}

// receiveAll receives until want messages arrived or within passed; it
// deletes what it receives.
func receiveAll(t *testing.T, q *sqsqueue.Queue, want int, within time.Duration) []sqsqueue.Received {
	t.Helper()
	ctx := context.Background()
	var all []sqsqueue.Received
	for deadline := time.Now().Add(within); len(all) < want && time.Now().Before(deadline); {
		rs, err := q.Receive(ctx, 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if err := q.Delete(ctx, r.ReceiptHandle); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, rs...)
	}
	return all
}

func TestEnqueueBatches(t *testing.T) {
	t.Parallel()
	ct := &countingTransport{}
	q := newQueue(t, newClient(endpoint, ct), queueName(t))
	tasks := make([]delivery.Task, 25)
	want := map[string]delivery.Task{}
	for i := range tasks {
		tasks[i] = sampleTask(i)
		want[tasks[i].ID] = tasks[i]
	}
	tasks[7].Event.Operator = "noncharacter \uFFFF inside"
	want[tasks[7].ID] = tasks[7]
	if err := q.Enqueue(context.Background(), tasks); err != nil {
		t.Fatal(err)
	}
	if n := ct.count("SendMessageBatch"); n != 3 {
		t.Errorf("%d SendMessageBatch calls, want 3", n)
	}
	got := receiveAll(t, q, 25, 30*time.Second) // generous: fauxqs under a loaded -race run is slow
	if len(got) != 25 {
		t.Fatalf("received %d messages, want 25", len(got))
	}
	for _, r := range got {
		if r.Err != nil {
			t.Fatalf("message %s: %v", r.MessageID, r.Err)
		}
		if !reflect.DeepEqual(r.Task, want[r.Task.ID]) {
			t.Errorf("task %s changed on the way:\n got %+v\nwant %+v", r.Task.ID, r.Task, want[r.Task.ID])
		}
		if !r.NotBefore.IsZero() {
			t.Errorf("task %s: not_before %v on a fresh task", r.Task.ID, r.NotBefore)
		}
		delete(want, r.Task.ID)
	}
	if len(want) != 0 {
		t.Errorf("%d tasks missing", len(want))
	}
}

func TestEnqueueAttributes(t *testing.T) {
	t.Parallel()
	c := newClient(endpoint, nil)
	q := newQueue(t, c, queueName(t))
	task := sampleTask(2)
	if err := q.Enqueue(context.Background(), []delivery.Task{task}); err != nil {
		t.Fatal(err)
	}
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MessageAttributeNames: []string{"All"}, WaitTimeSeconds: 2})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %v, %d messages", err, len(out.Messages))
	}
	a := out.Messages[0].MessageAttributes
	if got := aws.ToString(a[sqsqueue.AttrTaskID].StringValue); got != task.ID {
		t.Errorf("task_id = %q", got)
	}
	if got := a[sqsqueue.AttrAttempt]; aws.ToString(got.StringValue) != "2" || aws.ToString(got.DataType) != "Number" {
		t.Errorf("attempt = %q (%s)", aws.ToString(got.StringValue), aws.ToString(got.DataType))
	}
	if _, ok := a[sqsqueue.AttrNotBefore]; ok {
		t.Error("not_before on a fresh task")
	}
}

func TestEnqueueTooLargeSendsNothing(t *testing.T) {
	t.Parallel()
	ct := &countingTransport{}
	q := newQueue(t, newClient(endpoint, ct), queueName(t))
	big := sampleTask(1)
	big.Raw = make([]byte, 1<<20)
	err := q.Enqueue(context.Background(), []delivery.Task{sampleTask(0), big, sampleTask(2)})
	if !errors.Is(err, sqsqueue.ErrTooLarge) || !strings.Contains(err.Error(), big.ID) {
		t.Fatalf("err = %v, want ErrTooLarge naming %s", err, big.ID)
	}
	if n := ct.count("SendMessageBatch"); n != 0 {
		t.Errorf("%d SendMessageBatch calls, want none", n)
	}
}

// TestEnqueueEntryFailure makes SQS itself refuse one entry of a batch: a
// queue whose MaximumMessageSize (1 KiB) is below one task's size.
func TestEnqueueEntryFailure(t *testing.T) {
	t.Parallel()
	ct := &countingTransport{}
	c := newClient(endpoint, ct)
	out, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(queueName(t)),
		Attributes: map[string]string{"MaximumMessageSize": "1024"}})
	if err != nil {
		t.Fatal(err)
	}
	q := &sqsqueue.Queue{Client: c, URL: aws.ToString(out.QueueUrl)}
	tasks := []delivery.Task{sampleTask(0), sampleTask(1), sampleTask(2), sampleTask(3)}
	tasks[2].Event.Operator = strings.Repeat("long ", 300)
	err = q.Enqueue(context.Background(), tasks)
	var be *sqsqueue.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *BatchError", err)
	}
	if len(be.Failed) != 1 || be.Failed[0].TaskID != tasks[2].ID || !be.Failed[0].SenderFault || be.Queued != 3 {
		t.Errorf("BatchError = %+v", be)
	}
	if !strings.Contains(err.Error(), tasks[2].ID) {
		t.Errorf("error does not name the task: %v", err)
	}
	if n := ct.count("SendMessageBatch"); n != 1 {
		t.Errorf("%d SendMessageBatch calls: a sender fault must not be re-sent", n)
	}
	got := receiveAll(t, q, 3, 5*time.Second)
	if len(got) != 3 {
		t.Fatalf("received %d, want the 3 valid tasks", len(got))
	}
	for _, r := range got {
		if r.Err != nil || r.Task.ID == tasks[2].ID {
			t.Errorf("received %s (%v)", r.Task.ID, r.Err)
		}
	}
}

func TestRescheduleDelay(t *testing.T) {
	t.Parallel()
	q := newQueue(t, newClient(endpoint, nil), queueName(t))
	ctx := context.Background()
	task := sampleTask(5)
	task.Attempt = 3
	start := time.Now()
	if err := q.Reschedule(ctx, task, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if rs, err := q.Receive(ctx, 10, 0); err != nil || len(rs) != 0 {
		t.Fatalf("right away: %d messages, %v; want none", len(rs), err)
	}
	rs, err := q.Receive(ctx, 10, 5*time.Second)
	if err != nil || len(rs) != 1 {
		t.Fatalf("after the delay: %d messages, %v", len(rs), err)
	}
	if waited := time.Since(start); waited < 1500*time.Millisecond {
		t.Errorf("visible after %v, before the 1.5s delay (rounded up to 2s)", waited)
	}
	if rs[0].Err != nil || rs[0].Task.Attempt != 3 || !reflect.DeepEqual(rs[0].Task, task) {
		t.Errorf("received %+v (%v)", rs[0].Task, rs[0].Err)
	}
	if !rs[0].NotBefore.IsZero() {
		t.Errorf("not_before %v for a short delay", rs[0].NotBefore)
	}
}

// TestRescheduleLong checks a delay over SQS's 15 minutes: the message is
// delayed (not receivable now) and carries not_before.
func TestRescheduleLong(t *testing.T) {
	t.Parallel()
	c := newClient(endpoint, nil)
	q := newQueue(t, c, queueName(t))
	ctx := context.Background()
	before := time.Now()
	if err := q.Reschedule(ctx, sampleTask(6), 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if rs, err := q.Receive(ctx, 10, time.Second); err != nil || len(rs) != 0 {
		t.Fatalf("%d messages, %v; want none (delayed 15 min)", len(rs), err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.URL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		t.Fatal(err)
	}
	if n := attrs.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesDelayed)]; n != "1" {
		t.Errorf("ApproximateNumberOfMessagesDelayed = %q, want 1", n)
	}

	// fauxqs's inspection endpoint shows the delayed message as stored.
	name := q.URL[strings.LastIndex(q.URL, "/")+1:]
	resp, err := http.Get(endpoint + "/_fauxqs/queues/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var state struct {
		Messages struct {
			Delayed []struct {
				SentTimestamp     int64                                  `json:"sentTimestamp"`
				DelayUntil        int64                                  `json:"delayUntil"`
				MessageAttributes map[string]types.MessageAttributeValue `json:"messageAttributes"`
			} `json:"delayed"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&state); err != nil {
		t.Fatal(err)
	}
	if len(state.Messages.Delayed) != 1 {
		t.Fatalf("%d delayed messages", len(state.Messages.Delayed))
	}
	m := state.Messages.Delayed[0]
	if d := time.Duration(m.DelayUntil-m.SentTimestamp) * time.Millisecond; d != sqsqueue.MaxMessageDelay {
		t.Errorf("message delay %v, want %v", d, sqsqueue.MaxMessageDelay)
	}
	nb := sqsqueue.NotBefore(m.MessageAttributes)
	if want := before.Add(2 * time.Hour); nb.Before(want) || nb.After(want.Add(time.Second)) {
		t.Errorf("not_before = %v, want about %v", nb, want)
	}
}

func TestNotBefore(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.UTC)
	for _, tc := range []struct {
		attrs map[string]types.MessageAttributeValue
		want  time.Time
	}{
		{nil, time.Time{}},
		{map[string]types.MessageAttributeValue{sqsqueue.AttrNotBefore: {DataType: aws.String("String"), StringValue: aws.String(at.Format(time.RFC3339Nano))}}, at},
		{map[string]types.MessageAttributeValue{sqsqueue.AttrNotBefore: {DataType: aws.String("String"), StringValue: aws.String("2026-03-01T13:00:00+01:00")}}, at.Truncate(time.Second)},
		{map[string]types.MessageAttributeValue{sqsqueue.AttrNotBefore: {DataType: aws.String("String"), StringValue: aws.String("tomorrow")}}, time.Time{}},
	} {
		if got := sqsqueue.NotBefore(tc.attrs); !got.Equal(tc.want) {
			t.Errorf("NotBefore(%v) = %v, want %v", tc.attrs, got, tc.want)
		}
	}
}

// TestRedrive: a message nobody settles goes to the dead-letter queue after
// MaxReceiveCount receives. The first comes back by the 1 s visibility
// timeout, the others are handed back at once with Hold(0).
func TestRedrive(t *testing.T) {
	t.Parallel()
	c := newClient(endpoint, nil)
	ctx := context.Background()
	url, dlqURL, err := sqsqueue.CreateQueues(ctx, c, queueName(t), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	q, dlq := &sqsqueue.Queue{Client: c, URL: url}, &sqsqueue.Queue{Client: c, URL: dlqURL}
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("not a task")}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= sqsqueue.MaxReceiveCount; i++ {
		rs, err := q.Receive(ctx, 1, 3*time.Second)
		if err != nil || len(rs) != 1 {
			t.Fatalf("receive %d: %d messages, %v", i, len(rs), err)
		}
		if !errors.Is(rs[0].Err, sqsqueue.ErrUndecodable) {
			t.Fatalf("receive %d: err = %v", i, rs[0].Err)
		}
		if i == 1 {
			continue // comes back after the visibility timeout
		}
		if err := q.Hold(ctx, rs[0].ReceiptHandle, 0); err != nil {
			t.Fatal(err)
		}
	}
	if rs, err := q.Receive(ctx, 1, time.Second); err != nil || len(rs) != 0 {
		t.Fatalf("after %d receives: %d messages, %v; want it moved", sqsqueue.MaxReceiveCount, len(rs), err)
	}
	rs, err := dlq.Receive(ctx, 1, 2*time.Second)
	if err != nil || len(rs) != 1 || !errors.Is(rs[0].Err, sqsqueue.ErrUndecodable) {
		t.Fatalf("dead-letter queue: %d messages, %v", len(rs), err)
	}
}

func TestHoldCapsAndRefusesStaleHandle(t *testing.T) {
	t.Parallel()
	q := newQueue(t, newClient(endpoint, nil), queueName(t))
	ctx := context.Background()
	if err := q.Enqueue(ctx, []delivery.Task{sampleTask(1)}); err != nil {
		t.Fatal(err)
	}
	rs, err := q.Receive(ctx, 1, 2*time.Second)
	if err != nil || len(rs) != 1 {
		t.Fatalf("%d messages, %v", len(rs), err)
	}
	// 48 h is capped at SQS's 12 h (fauxqs, like SQS, refuses more).
	if err := q.Hold(ctx, rs[0].ReceiptHandle, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := q.Delete(ctx, rs[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	if err := q.Hold(ctx, rs[0].ReceiptHandle, time.Second); err == nil {
		t.Error("Hold of a deleted message succeeded")
	}
}

func TestFIFO(t *testing.T) {
	t.Parallel()
	c := newClient(endpoint, nil)
	q := newQueue(t, c, queueName(t)+".fifo")
	if !q.FIFO() {
		t.Fatal("not FIFO")
	}
	ctx := context.Background()
	tasks := []delivery.Task{sampleTask(0), sampleTask(1), sampleTask(2)}
	for range 2 { // the second enqueue is a registry's retry: deduplicated
		if err := q.Enqueue(ctx, tasks); err != nil {
			t.Fatal(err)
		}
	}
	got := receiveAll(t, q, 3, 5*time.Second)
	if rs, err := q.Receive(ctx, 10, 0); err != nil || len(rs) != 0 {
		t.Errorf("duplicates: %d more messages, %v", len(rs), err)
	}
	if len(got) != 3 {
		t.Fatalf("received %d, want 3", len(got))
	}
	if err := q.Reschedule(ctx, tasks[0], time.Minute); !errors.Is(err, sqsqueue.ErrDelayUnsupported) {
		t.Errorf("delayed reschedule on FIFO: err = %v", err)
	}
	// Delay 0 (same task and attempt as before) is a new message, not a duplicate.
	if err := q.Reschedule(ctx, tasks[0], 0); err != nil {
		t.Fatal(err)
	}
	if got := receiveAll(t, q, 1, 3*time.Second); len(got) != 1 || got[0].Task.ID != tasks[0].ID {
		t.Errorf("rescheduled: %d messages", len(got))
	}
}

// TestQueueDown: with nothing listening, Enqueue fails with the
// connection's error, not by running out the caller's deadline.
func TestQueueDown(t *testing.T) {
	t.Parallel()
	port, err := testserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	down := fmt.Sprintf("http://127.0.0.1:%d", port)
	// A few quick SDK retries, as a receiver with a short deadline would use.
	c := newClient(down, nil, func(o *sqs.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 3
			so.MaxBackoff = 50 * time.Millisecond
		})
	})
	q := &sqsqueue.Queue{Client: c, URL: down + "/000000000000/missing"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = q.Enqueue(ctx, []delivery.Task{sampleTask(1), sampleTask(2)})
	if err == nil {
		t.Fatal("Enqueue succeeded with the queue down")
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Enqueue ran out the deadline instead of failing on the refused connection: %v", err)
	}
	if strings.Contains(err.Error(), "sekrit") {
		t.Errorf("error leaks a secret: %v", err)
	}
	t.Logf("queue down: %v", err)
}

// TestEnqueueSplitsBySize: ten 40 KiB tasks exceed SQS's 256 KiB per batch,
// so they go in two calls.
func TestEnqueueSplitsBySize(t *testing.T) {
	t.Parallel()
	ct := &countingTransport{}
	q := newQueue(t, newClient(endpoint, ct), queueName(t))
	tasks := make([]delivery.Task, 10)
	for i := range tasks {
		tasks[i] = sampleTask(i)
		tasks[i].Event.Operator = strings.Repeat("x", 40<<10)
	}
	if err := q.Enqueue(context.Background(), tasks); err != nil {
		t.Fatal(err)
	}
	if n := ct.count("SendMessageBatch"); n != 2 {
		t.Errorf("%d SendMessageBatch calls, want 2", n)
	}
	if got := receiveAll(t, q, 10, 5*time.Second); len(got) != 10 {
		t.Errorf("received %d, want 10", len(got))
	}
}

// TestHoldForRetry is what the Lambda dispatcher does for a retry (see
// functions/dispatcher): the received message is held for the delay and
// comes back with the same body, the same SentTimestamp and its receive
// count up by one, which is how the next attempt is counted. fauxqs 1.9.2
// implements ChangeMessageVisibility and both system attributes.
func TestHoldForRetry(t *testing.T) {
	t.Parallel()
	c := newClient(endpoint, nil)
	q := newQueue(t, c, queueName(t))
	ctx := context.Background()
	if err := q.Enqueue(ctx, []delivery.Task{sampleTask(0)}); err != nil {
		t.Fatal(err)
	}
	receive := func(wait int32) []types.Message {
		t.Helper()
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 1, WaitTimeSeconds: wait,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{
				types.MessageSystemAttributeNameApproximateReceiveCount, types.MessageSystemAttributeNameSentTimestamp},
		})
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}
	first := receive(1)
	if len(first) != 1 || first[0].Attributes["ApproximateReceiveCount"] != "1" || first[0].Attributes["SentTimestamp"] == "" {
		t.Fatalf("first receive: %+v", first)
	}
	if err := q.Hold(ctx, aws.ToString(first[0].ReceiptHandle), time.Second); err != nil {
		t.Fatal(err)
	}
	if again := receive(0); len(again) != 0 {
		t.Fatalf("a held message was handed out at once: %+v", again)
	}
	second := receive(5) // long poll: back once the second is over
	if len(second) != 1 {
		t.Fatal("the held message did not come back")
	}
	m := second[0]
	if aws.ToString(m.MessageId) != aws.ToString(first[0].MessageId) || aws.ToString(m.Body) != aws.ToString(first[0].Body) ||
		m.Attributes["ApproximateReceiveCount"] != "2" || m.Attributes["SentTimestamp"] != first[0].Attributes["SentTimestamp"] {
		t.Errorf("second receive: id %s count %s sent %s (first: %s, sent %s)", aws.ToString(m.MessageId), m.Attributes["ApproximateReceiveCount"],
			m.Attributes["SentTimestamp"], aws.ToString(first[0].MessageId), first[0].Attributes["SentTimestamp"])
	}
}

// TestSameContractAsTaskmsg: an SQS body decodes as a Kafka or Redis one
// (package taskmsg) and back, so tasks move between queues unchanged.
func TestSameContractAsTaskmsg(t *testing.T) {
	task := sampleTask(2)
	s, err := sqsqueue.Encode(task)
	if err != nil {
		t.Fatal(err)
	}
	got, err := taskmsg.Decode([]byte(s))
	if err != nil || !reflect.DeepEqual(got, task) {
		t.Fatalf("taskmsg.Decode: %+v, %v", got, err)
	}
	b, err := taskmsg.Encode(task, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = sqsqueue.Decode(string(b)); err != nil || !reflect.DeepEqual(got, task) {
		t.Fatalf("sqsqueue.Decode: %+v, %v", got, err)
	}
}
