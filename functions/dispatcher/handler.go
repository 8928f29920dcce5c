//go:build !scf

package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/emf"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
)

// handler delivers one SQS batch. Messages that could not be settled are
// reported as batch item failures (ReportBatchItemFailures), so SQS makes
// them visible again after the visibility timeout and, past the redrive
// policy's maxReceiveCount, moves them to the dead-letter queue.
//
// A retry waits in the message itself: its visibility is set to the delay
// (ChangeMessageVisibility, up to 12 h) and it is reported as a batch item
// failure, so the event source mapping does not delete it and SQS hands it
// out again when the delay is over. The attempts made on a message are its
// receives: the body's attempt count plus ApproximateReceiveCount - 1. A
// wait the message cannot cover — over 12 h, past the queue's retention, or
// too close to maxReceiveCount — is a new message instead (requeue, with
// not_before past SQS's 15-minute delay), whose early receives are held the
// same way rather than re-sent. See docs/sqs.md.
type handler struct {
	engine dispatcher.Deliverer
	// decode reads a message body into a task (sqsqueue.Decode).
	decode func(body string) (delivery.Task, error)
	// notBefore is when a message's task may go out (zero: now).
	notBefore func(m events.SQSMessage) time.Time
	// requeue sends the task back to the queue as a new message, due after
	// delay.
	requeue func(ctx context.Context, t delivery.Task, delay time.Duration) error
	// hold keeps a received message invisible for delay
	// (sqsqueue.Queue.Hold); nil: every retry is a requeue.
	hold func(ctx context.Context, receiptHandle string, delay time.Duration) error
	// retention is the queue's message retention (sqsqueue.MessageRetention)
	// and maxReceives its redrive policy's maxReceiveCount: a message is
	// held only while both leave room.
	retention   time.Duration
	maxReceives int
	// archive keeps a finished task for `regtrigger redeliver`; nil keeps none.
	archive func(ctx context.Context, t delivery.Task) error
	// records keeps the record of an undecodable message; nil keeps none.
	records     record.Sink
	concurrency int
	logger      *slog.Logger
	metrics     *emf.Writer
	now         func() time.Time
}

func (h *handler) handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var (
		mu       sync.Mutex
		failures []events.SQSBatchItemFailure
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, max(h.concurrency, 1))
	for _, m := range ev.Records {
		wg.Add(1)
		sem <- struct{}{}
		go func(m events.SQSMessage) {
			defer func() { <-sem; wg.Done() }()
			if !h.one(ctx, m) {
				mu.Lock()
				failures = append(failures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
				mu.Unlock()
			}
		}(m)
	}
	wg.Wait()
	return events.SQSEventResponse{BatchItemFailures: failures}, nil
}

// one settles one message and reports whether SQS may delete it.
func (h *handler) one(ctx context.Context, m events.SQSMessage) bool {
	log := h.logger.With(slog.String("message_id", m.MessageId))
	task, err := h.decode(m.Body)
	if err != nil {
		// Left to SQS: after maxReceiveCount it reaches the dead-letter
		// queue, and the rest of the batch goes on. Its record is written
		// at the first receive only.
		log.LogAttrs(ctx, slog.LevelError, "undecodable task message", slog.String("error", err.Error()))
		h.count("Undecodable", "")
		if h.records != nil && m.Attributes["ApproximateReceiveCount"] == "1" {
			err = fmt.Errorf("message %s: %w; SQS moves it to the dead-letter queue after the redrive policy's receives", m.MessageId, err)
			if err := h.records.Put(ctx, record.UndecodableRecord(m.MessageId, err, h.now())); err != nil {
				log.LogAttrs(ctx, slog.LevelError, "store dead-letter record", slog.String("error", err.Error()))
			}
		}
		return false
	}
	log = log.With(slog.String("task_id", task.ID))
	receives := receiveCount(m)
	if nb := h.notBefore(m); nb.After(h.now()) {
		// A retry whose wait is longer than the message could cover when
		// it was sent: wait out the rest, counting no attempt.
		// Held for at most 12 h at a time: the not_before tells the next
		// receive whether it is early again.
		wait := nb.Sub(h.now())
		if h.wait(ctx, log, m, receives, min(wait, sqsqueue.MaxVisibilityTimeout)) {
			return false
		}
		if err := h.requeue(ctx, task, wait); err != nil {
			log.LogAttrs(ctx, slog.LevelError, "requeue early task", slog.String("error", err.Error()))
			return false
		}
		return true
	} else if nb.IsZero() {
		// Every earlier receive of this message was an attempt (held for
		// its retry, or one whose settling failed).
		task.Attempt += receives - 1
	}
	out := h.engine.Deliver(ctx, task)
	h.delivered(out)
	if out.Retry {
		// A message with a not_before was received past it: its receives
		// were not all attempts, so its retry is a new message. So is the
		// retry of a receive that made no attempt (the trigger could not
		// be read, the function was stopping): held, its next receive
		// would count one.
		// And so is the retry of a task that closed its coalesce window:
		// the message does not carry the window's events, the new one does.
		attempted := out.Task.Attempt > task.Attempt
		gathered := len(out.Task.Coalesced) > len(task.Coalesced)
		if attempted && !gathered && h.notBefore(m).IsZero() && h.wait(ctx, log, m, receives, out.Delay) {
			return false
		}
		if err := h.requeue(ctx, out.Task, out.Delay); err != nil {
			// The original message comes back after the visibility timeout:
			// the delivery is repeated (at least once), the attempt not counted.
			log.LogAttrs(ctx, slog.LevelError, "requeue task for retry", slog.String("error", err.Error()))
			return false
		}
		return true
	}
	if h.archive != nil {
		// Finished: keep it for redelivery. Losing that copy loses no
		// delivery, so a failure here does not bring the message back.
		if err := h.archive(ctx, out.Task); err != nil {
			log.LogAttrs(ctx, slog.LevelWarn, "archive finished task", slog.String("error", err.Error()))
		}
	}
	return true
}

// holdMargin is kept between a held message's due time and the end of its
// retention, for a late receive and one failed settling.
const holdMargin = time.Hour

// wait makes the message itself wait for delay — its visibility set to the
// delay, to be reported as a batch item failure — when the queue lets it:
// at most 12 h, due before the message's retention ends (less holdMargin),
// and with a receive to spare under maxReceiveCount after the next one. It
// reports whether the message now waits; false leaves it to a requeue.
func (h *handler) wait(ctx context.Context, log *slog.Logger, m events.SQSMessage, receives int, delay time.Duration) bool {
	if h.hold == nil || delay > sqsqueue.MaxVisibilityTimeout || receives+2 > h.maxReceives || sqsqueue.Legacy(m.Body) {
		// A legacy message embeds its trigger's secrets: never kept.
		return false
	}
	if sent := sentAt(m); sent.IsZero() || h.now().Add(delay+holdMargin).After(sent.Add(h.retention)) {
		return false
	}
	if err := h.hold(ctx, m.ReceiptHandle, delay); err != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "hold message for retry, sending a new one", slog.String("error", err.Error()))
		return false
	}
	return true
}

// receiveCount is the message's ApproximateReceiveCount, at least 1.
func receiveCount(m events.SQSMessage) int {
	n, err := strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// sentAt is the message's SentTimestamp (zero when missing).
func sentAt(m events.SQSMessage) time.Time {
	ms, err := strconv.ParseInt(m.Attributes["SentTimestamp"], 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func (h *handler) delivered(out delivery.Outcome) {
	if h.metrics == nil {
		return
	}
	_ = h.metrics.Emit(map[string]string{"Function": "dispatcher", "Status": string(out.Record.Status)},
		emf.Metric{Name: "Deliveries", Unit: emf.Count, Value: 1},
		emf.Metric{Name: "DeliveryLatency", Unit: emf.Milliseconds, Value: float64(out.Record.Latency.Microseconds()) / 1000})
	switch out.Record.ErrorClass {
	case record.ClassCircuitOpen:
		// Held back by an open circuit: nothing was sent.
		h.count("CircuitOpen", "")
	case record.ClassAutoDisabled:
		h.count("TriggersAutoDisabled", "")
	}
}

func (h *handler) count(name, status string) {
	if h.metrics == nil {
		return
	}
	dims := map[string]string{"Function": "dispatcher"}
	if status != "" {
		dims["Status"] = status
	}
	_ = h.metrics.Emit(dims, emf.Metric{Name: name, Unit: emf.Count, Value: 1})
}
