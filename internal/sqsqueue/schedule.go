package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/regtrigger/regtrigger/internal/delivery"
)

// MaxMessageDelay is SQS's longest per-message delay (DelaySeconds).
const MaxMessageDelay = 15 * time.Minute

// MaxVisibilityTimeout is SQS's longest visibility timeout.
const MaxVisibilityTimeout = 12 * time.Hour

// ErrDelayUnsupported is returned by Reschedule on a FIFO queue: SQS does not
// accept a per-message delay there (see docs/sqs.md).
var ErrDelayUnsupported = errors.New("sqs: a FIFO queue cannot delay a single message")

// Reschedule sends task as a new message that becomes due after delay; the
// caller then acknowledges the message it came from (the Lambda function
// reports it as a success). The task's attempt count travels in the new body,
// so retries survive, which a visibility change of the old message (same
// body) could not do.
//
// SQS delays a message by at most 15 minutes. For a longer delay the message
// is sent with the full 15 minutes and a not_before attribute (RFC 3339, UTC)
// holding the due time; a dispatcher that receives it earlier calls
// Reschedule again with the rest of the wait and the task unchanged, which
// counts no attempt. Use NotBefore or ParseNotBefore to read the attribute.
//
// On a FIFO queue only delay 0 is possible; a positive delay fails with
// ErrDelayUnsupported.
func (q *Queue) Reschedule(ctx context.Context, task delivery.Task, delay time.Duration) error {
	delay = max(delay, 0)
	if q.FIFO() && delay > 0 {
		return fmt.Errorf("reschedule task %s by %v: %w", task.ID, delay, ErrDelayUnsupported)
	}
	body, err := Encode(task)
	if err != nil {
		return fmt.Errorf("reschedule: %w", err)
	}
	var notBefore time.Time
	if delay > MaxMessageDelay {
		notBefore = time.Now().Add(delay)
	}
	e := q.entry("0", task, body, seconds(min(delay, MaxMessageDelay)), notBefore)
	if q.FIFO() {
		// Unique, so the copy is not taken for the message it replaces.
		e.MessageDeduplicationId = aws.String(task.ID + "-" + strconv.Itoa(task.Attempt) + "-r" + strconv.FormatInt(time.Now().UnixNano(), 36))
	}
	_, failed, err := q.sendBatch(ctx, []types.SendMessageBatchRequestEntry{e})
	if err != nil {
		return fmt.Errorf("reschedule task %s: %w", task.ID, err)
	}
	if len(failed) > 0 {
		failed[0].TaskID = task.ID
		return fmt.Errorf("reschedule task %s: %w", task.ID, &BatchError{Failed: failed, Total: 1})
	}
	return nil
}

// Hold keeps a received message invisible for delay (at most 12 hours, SQS's
// limit; longer values are capped) via ChangeMessageVisibility. The message
// keeps its body, so this is not a retry with a new attempt count: it serves
// to give a message back (delay 0) or to keep it aside without counting an
// attempt. Every later receive counts against the redrive policy's
// maxReceiveCount.
func (q *Queue) Hold(ctx context.Context, receiptHandle string, delay time.Duration) error {
	d := min(max(delay, 0), MaxVisibilityTimeout)
	_, err := q.Client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(q.URL),
		ReceiptHandle:     aws.String(receiptHandle),
		VisibilityTimeout: seconds(d),
	})
	if err != nil {
		return fmt.Errorf("sqs change message visibility: %w", err)
	}
	return nil
}

// NotBefore returns the due time a message's attributes carry, or the zero
// time when it is due at once (no attribute, or one that cannot be read).
func NotBefore(attrs map[string]types.MessageAttributeValue) time.Time {
	v, ok := attrs[AttrNotBefore]
	if !ok {
		return time.Time{}
	}
	return ParseNotBefore(aws.ToString(v.StringValue))
}

// ParseNotBefore reads the value of a not_before attribute, as found in a
// Lambda SQS event's messageAttributes; zero for an empty or bad value.
func ParseNotBefore(value string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(value))
	if err != nil {
		return time.Time{}
	}
	return t
}

// seconds rounds d up to whole seconds, as SQS wants them.
func seconds(d time.Duration) int32 {
	return int32((d + time.Second - 1) / time.Second)
}
