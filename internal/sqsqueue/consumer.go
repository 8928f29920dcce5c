package sqsqueue

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/regtrigger/regtrigger/internal/delivery"
)

// Received is one message taken off the queue by Receive. Err is set (it
// matches ErrUndecodable) and Task empty when the body is not a task; leave
// such a message alone and the redrive policy moves it to the dead-letter
// queue.
type Received struct {
	MessageID     string
	ReceiptHandle string
	Task          delivery.Task
	// NotBefore is when the task is due (zero: now). A task received
	// earlier goes back with Reschedule(ctx, Task, time.Until(NotBefore)).
	NotBefore time.Time
	Err       error
}

// Receive long-polls for up to n messages (at most 10) for up to wait (at
// most 20 s), for platforms that have no SQS trigger and poll on a timer.
// Received messages stay invisible for the queue's visibility timeout;
// Delete them once settled.
func (q *Queue) Receive(ctx context.Context, n int, wait time.Duration) ([]Received, error) {
	return q.receive(ctx, n, wait, 0)
}

// receive is Receive with the messages hidden for visibility instead of the
// queue's visibility timeout (0 keeps the queue's).
func (q *Queue) receive(ctx context.Context, n int, wait, visibility time.Duration) ([]Received, error) {
	in := &sqs.ReceiveMessageInput{
		QueueUrl:              aws.String(q.URL),
		MaxNumberOfMessages:   int32(min(max(n, 1), MaxBatchEntries)),
		WaitTimeSeconds:       seconds(min(max(wait, 0), 20*time.Second)),
		MessageAttributeNames: []string{"All"},
	}
	if visibility > 0 {
		in.VisibilityTimeout = seconds(min(visibility, MaxVisibilityTimeout))
	}
	out, err := q.Client.ReceiveMessage(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("sqs receive: %w", err)
	}
	rs := make([]Received, len(out.Messages))
	for i, m := range out.Messages {
		rs[i] = received(m)
	}
	return rs, nil
}

func received(m types.Message) Received {
	r := Received{MessageID: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), NotBefore: NotBefore(m.MessageAttributes)}
	t, err := Decode(aws.ToString(m.Body))
	if err != nil {
		r.Err = fmt.Errorf("message %s: %w", r.MessageID, err)
		return r
	}
	r.Task = t
	return r
}

// Delete removes a received message for good.
func (q *Queue) Delete(ctx context.Context, receiptHandle string) error {
	_, err := q.Client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: aws.String(receiptHandle)})
	if err != nil {
		return fmt.Errorf("sqs delete message: %w", err)
	}
	return nil
}
