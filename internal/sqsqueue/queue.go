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
	"github.com/regtrigger/regtrigger/internal/receiver"
)

// Message attribute names. They repeat what the body holds, for logs and
// consoles, except not_before, which only the attribute carries.
const (
	AttrTaskID    = "task_id"
	AttrAttempt   = "attempt"
	AttrNotBefore = "not_before"
)

// Batching and entry-retry limits.
const (
	// MaxBatchEntries is SQS's limit of entries per SendMessageBatch.
	MaxBatchEntries = 10
	// entryAttempts is how often an entry that failed on the server's side
	// is sent before Enqueue gives up (the first send included).
	entryAttempts = 4
	// entryBackoff is the first wait before re-sending failed entries; it
	// doubles each time (50, 100, 200 ms).
	entryBackoff = 50 * time.Millisecond
)

// Queue is an SQS queue of delivery tasks. URL is the queue URL; a name
// ending in ".fifo" makes it a FIFO queue (see docs/sqs.md), otherwise it is
// a standard queue, the default.
type Queue struct {
	Client *sqs.Client
	URL    string
}

var _ receiver.Queue = (*Queue)(nil)

// FIFO reports whether the queue is a FIFO queue.
func (q *Queue) FIFO() bool { return strings.HasSuffix(q.URL, ".fifo") }

// EntryFailure is one task SQS did not take.
type EntryFailure struct {
	TaskID      string
	Code        string
	Message     string
	SenderFault bool
}

// BatchError reports tasks that could not be queued. Queued tasks were
// queued: they are delivered even though Enqueue failed.
type BatchError struct {
	Failed []EntryFailure
	Queued int
	Total  int
}

func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sqs: %d of %d task(s) not queued (%d queued):", len(e.Failed), e.Total, e.Queued)
	for i, f := range e.Failed {
		if i == 5 {
			fmt.Fprintf(&b, " and %d more", len(e.Failed)-i)
			break
		}
		fmt.Fprintf(&b, " %s (%s: %s)", f.TaskID, f.Code, f.Message)
	}
	return b.String()
}

// Enqueue sends tasks with SendMessageBatch, at most 10 (and at most
// MaxMessageBytes) per call; entry ids are the tasks' indexes in tasks.
//
// Every task is encoded first: one that is too large (ErrTooLarge) fails the
// call before anything is sent. Entries that fail on SQS's side are sent
// again, alone, a few times with a short backoff; entries refused for the
// sender's fault (too big for the queue, invalid content) are not. If any
// task still is not queued, Enqueue returns a *BatchError naming it and
// sends no further batch.
//
// At that point the tasks of earlier batches, and the rest of the failed
// batch, are already queued: the receiver answers 503 and the registry sends
// the notification again, which enqueues them a second time. That is
// at-least-once delivery, and safe: task ids are derived from the event and
// the trigger, so both copies go out with the same webhook-id and the
// receiving end can drop the second.
func (q *Queue) Enqueue(ctx context.Context, tasks []delivery.Task) error {
	if len(tasks) == 0 {
		return nil
	}
	entries := make([]types.SendMessageBatchRequestEntry, len(tasks))
	var tooLarge []error
	for i, t := range tasks {
		body, err := Encode(t)
		if err != nil {
			tooLarge = append(tooLarge, err)
			continue
		}
		var delay int32 // a coalesce window's end, at most 10 minutes away
		if !q.FIFO() && !t.NotBefore.IsZero() {
			delay = seconds(min(max(time.Until(t.NotBefore), 0), MaxMessageDelay))
		}
		entries[i] = q.entry(strconv.Itoa(i), t, body, delay, time.Time{})
	}
	if len(tooLarge) > 0 {
		return fmt.Errorf("sqs enqueue: nothing sent: %w", errors.Join(tooLarge...))
	}

	queued := 0
	for _, group := range groups(entries) {
		n, failed, err := q.sendBatch(ctx, group)
		queued += n
		if err != nil {
			return fmt.Errorf("sqs enqueue (%d of %d tasks queued): %w", queued, len(tasks), err)
		}
		if len(failed) > 0 {
			for i := range failed {
				idx, _ := strconv.Atoi(failed[i].TaskID) // our own entry ids
				failed[i].TaskID = tasks[idx].ID
			}
			return &BatchError{Failed: failed, Queued: queued, Total: len(tasks)}
		}
	}
	return nil
}

// entry builds one batch entry. notBefore is zero unless the task must not
// go out before then.
func (q *Queue) entry(id string, t delivery.Task, body string, delaySeconds int32, notBefore time.Time) types.SendMessageBatchRequestEntry {
	attrs := map[string]types.MessageAttributeValue{
		AttrTaskID:  {DataType: aws.String("String"), StringValue: aws.String(t.ID)},
		AttrAttempt: {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(t.Attempt))},
	}
	if !notBefore.IsZero() {
		attrs[AttrNotBefore] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(notBefore.UTC().Format(time.RFC3339Nano))}
	}
	e := types.SendMessageBatchRequestEntry{
		Id:                aws.String(id),
		MessageBody:       aws.String(body),
		MessageAttributes: attrs,
		DelaySeconds:      delaySeconds,
	}
	if q.FIFO() {
		// One group per task: tasks never wait for each other. The
		// deduplication id makes a registry's retry within SQS's 5-minute
		// window a no-op for the tasks already queued.
		e.MessageGroupId = aws.String(t.ID)
		e.MessageDeduplicationId = aws.String(t.ID + "-" + strconv.Itoa(t.Attempt))
	}
	return e
}

// size is what SQS counts against its message size limit: the body and
// each attribute's name, type and value.
func size(e types.SendMessageBatchRequestEntry) int {
	n := len(aws.ToString(e.MessageBody))
	for k, v := range e.MessageAttributes {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	return n
}

// groups splits entries into batches of at most MaxBatchEntries entries
// and MaxMessageBytes in total (SQS's limit for a whole batch).
func groups(entries []types.SendMessageBatchRequestEntry) [][]types.SendMessageBatchRequestEntry {
	var out [][]types.SendMessageBatchRequestEntry
	var cur []types.SendMessageBatchRequestEntry
	total := 0
	for _, e := range entries {
		s := size(e)
		if len(cur) == MaxBatchEntries || (len(cur) > 0 && total+s > MaxMessageBytes) {
			out = append(out, cur)
			cur, total = nil, 0
		}
		cur = append(cur, e)
		total += s
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// sendBatch sends one batch, re-sending the entries that failed on SQS's
// side. It returns how many entries were queued and the entries that were
// not (TaskID holding the entry id). err is set when a whole call failed
// (after the SDK's own retries): the service is unreachable or refuses us.
func (q *Queue) sendBatch(ctx context.Context, entries []types.SendMessageBatchRequestEntry) (int, []EntryFailure, error) {
	queued := 0
	pending := entries
	var final []EntryFailure
	wait := entryBackoff
	for attempt := 1; len(pending) > 0; attempt++ {
		out, err := q.Client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: pending})
		if err != nil {
			return queued, nil, fmt.Errorf("send message batch: %w", err)
		}
		queued += len(out.Successful)
		ok := make(map[string]bool, len(out.Successful))
		for _, s := range out.Successful {
			ok[aws.ToString(s.Id)] = true
		}
		failures := make(map[string]types.BatchResultErrorEntry, len(out.Failed))
		for _, f := range out.Failed {
			failures[aws.ToString(f.Id)] = f
		}
		var retry []types.SendMessageBatchRequestEntry
		var retryFailures []EntryFailure
		for _, e := range pending {
			id := aws.ToString(e.Id)
			if ok[id] {
				continue
			}
			f, found := failures[id]
			ef := EntryFailure{TaskID: id, Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), SenderFault: f.SenderFault}
			if !found {
				ef.Code, ef.Message = "Missing", "neither successful nor failed in the answer"
			}
			if ef.SenderFault {
				final = append(final, ef)
				continue
			}
			retry = append(retry, e)
			retryFailures = append(retryFailures, ef)
		}
		if len(retry) == 0 {
			break
		}
		if attempt == entryAttempts {
			final = append(final, retryFailures...)
			break
		}
		if err := sleep(ctx, wait); err != nil {
			return queued, nil, fmt.Errorf("re-send %d failed entries: %w", len(retry), err)
		}
		wait *= 2
		pending = retry
	}
	return queued, final, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
