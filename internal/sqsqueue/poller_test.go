package sqsqueue_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
)

// counts returns the queue's visible, in-flight and delayed message counts.
func counts(t *testing.T, q *sqsqueue.Queue) (visible, inFlight, delayed int) {
	t.Helper()
	out, err := q.Client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.URL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible, types.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := func(a types.QueueAttributeName) int { v, _ := strconv.Atoi(out.Attributes[string(a)]); return v }
	return n(types.QueueAttributeNameApproximateNumberOfMessages), n(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible),
		n(types.QueueAttributeNameApproximateNumberOfMessagesDelayed)
}

func TestPollerSettles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		// settle acts on the one leased item.
		settle func(p *sqsqueue.Poller, it dispatcher.Leased) error
		// body, when set, is sent raw instead of an encoded task.
		body                       string
		visible, inFlight, delayed int
		archived                   int
	}{
		{"ack deletes and archives", func(p *sqsqueue.Poller, it dispatcher.Leased) error { return p.Ack(ctx, it.ID) }, "", 0, 0, 0, 1},
		{"retry sends on with a delay", func(p *sqsqueue.Poller, it dispatcher.Leased) error {
			it.Task.Attempt++
			return p.Retry(ctx, it.Task, time.Minute)
		}, "", 0, 0, 1, 0},
		{"undecodable is left to the redrive policy", func(p *sqsqueue.Poller, it dispatcher.Leased) error {
			if !errors.Is(it.Err, sqsqueue.ErrUndecodable) {
				t.Errorf("err = %v", it.Err)
			}
			return p.DeadLetter(ctx, it.ID, it.Err)
		}, "garbage", 0, 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := newQueue(t, newClient(endpoint, nil), queueName(t))
			var mu sync.Mutex
			var archived []delivery.Task
			p := &sqsqueue.Poller{Queue: q, Wait: 2 * time.Second, Archive: func(_ context.Context, task delivery.Task) error {
				mu.Lock()
				defer mu.Unlock()
				archived = append(archived, task)
				return nil
			}}
			task := sampleTask(7)
			if tt.body != "" {
				if _, err := q.Client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(tt.body)}); err != nil {
					t.Fatal(err)
				}
			} else if err := q.Enqueue(ctx, []delivery.Task{task}); err != nil {
				t.Fatal(err)
			}
			items, err := p.Lease(ctx, 10, time.Minute)
			if err != nil || len(items) != 1 {
				t.Fatalf("lease: %d items, %v", len(items), err)
			}
			if tt.body == "" && (items[0].ID != task.ID || items[0].Task.ID != task.ID) {
				t.Errorf("leased %+v", items[0])
			}
			if err := tt.settle(p, items[0]); err != nil {
				t.Fatal(err)
			}
			if v, f, d := counts(t, q); v != tt.visible || f != tt.inFlight || d != tt.delayed {
				t.Errorf("visible %d, in flight %d, delayed %d; want %d, %d, %d", v, f, d, tt.visible, tt.inFlight, tt.delayed)
			}
			if len(archived) != tt.archived {
				t.Errorf("%d archived", len(archived))
			}
			// Settling twice is an error, not a second delete.
			if tt.body == "" {
				if err := p.Ack(ctx, items[0].ID); err == nil {
					t.Error("a second Ack succeeded")
				}
			}
		})
	}
}

// TestPollerEarlyMessage: a message received before its not_before goes on
// with the rest of its wait; the Pool never sees it.
func TestPollerEarlyMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := newQueue(t, newClient(endpoint, nil), queueName(t))
	task := sampleTask(8)
	body, err := sqsqueue.Encode(task)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	if _, err := q.Client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(body),
		MessageAttributes: map[string]types.MessageAttributeValue{sqsqueue.AttrNotBefore: {DataType: aws.String("String"), StringValue: aws.String(later)}}}); err != nil {
		t.Fatal(err)
	}
	p := &sqsqueue.Poller{Queue: q, Wait: 2 * time.Second}
	items, err := p.Lease(ctx, 10, time.Minute)
	if err != nil || len(items) != 0 {
		t.Fatalf("lease: %+v, %v; want nothing", items, err)
	}
	if v, f, d := counts(t, q); v != 0 || f != 0 || d != 1 {
		t.Errorf("visible %d, in flight %d, delayed %d; want the message sent on and the early one gone", v, f, d)
	}
}

// TestPollerStopsBeforeDeadline: with less than a second left, Lease does
// not start a poll it could not finish.
func TestPollerStopsBeforeDeadline(t *testing.T) {
	t.Parallel()
	q := newQueue(t, newClient(endpoint, nil), queueName(t))
	if err := q.Enqueue(context.Background(), []delivery.Task{sampleTask(9)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	items, err := (&sqsqueue.Poller{Queue: q}).Lease(ctx, 10, time.Minute)
	if err != nil || len(items) != 0 {
		t.Errorf("lease: %d items, %v", len(items), err)
	}
	if v, _, _ := counts(t, q); v != 1 {
		t.Errorf("%d visible: the message must stay untouched", v)
	}
}

// countingEngine delivers by answering success for every task.
type countingEngine struct {
	mu  sync.Mutex
	ids map[string]int
}

func (e *countingEngine) Deliver(_ context.Context, task delivery.Task) delivery.Outcome {
	e.mu.Lock()
	e.ids[task.ID]++
	e.mu.Unlock()
	task.Attempt++
	return delivery.Outcome{Task: task, Record: record.Record{Status: record.Success}}
}

// TestPollerUnderPool: the dispatcher's Pool drains the queue through the
// Poller, each task delivered once, until its context ends.
func TestPollerUnderPool(t *testing.T) {
	t.Parallel()
	q := newQueue(t, newClient(endpoint, nil), queueName(t))
	var tasks []delivery.Task
	for i := range 25 {
		tasks = append(tasks, sampleTask(100+i))
	}
	if err := q.Enqueue(context.Background(), tasks); err != nil {
		t.Fatal(err)
	}
	eng := &countingEngine{ids: map[string]int{}}
	pool := &dispatcher.Pool{Queue: &sqsqueue.Poller{Queue: q, Wait: time.Second}, Engine: eng, Workers: 4, Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if err := pool.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(eng.ids) != len(tasks) {
		t.Errorf("%d of %d tasks delivered", len(eng.ids), len(tasks))
	}
	for id, n := range eng.ids {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	if v, f, d := counts(t, q); v+f+d != 0 {
		t.Errorf("queue not drained: %d visible, %d in flight, %d delayed", v, f, d)
	}
}
