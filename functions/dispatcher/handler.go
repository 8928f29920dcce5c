//go:build !scf

package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/emf"
	"github.com/regtrigger/regtrigger/internal/record"
)

// handler delivers one SQS batch. Messages that could not be settled are
// reported as batch item failures (ReportBatchItemFailures), so SQS makes
// them visible again after the visibility timeout and, past the redrive
// policy's maxReceiveCount, moves them to the dead-letter queue.
type handler struct {
	engine dispatcher.Deliverer
	// decode reads a message body into a task (sqsqueue.Decode).
	decode func(body string) (delivery.Task, error)
	// notBefore is when a message's task may go out (zero: now).
	notBefore func(m events.SQSMessage) time.Time
	// requeue sends the task back to the queue to be due after delay.
	requeue func(ctx context.Context, t delivery.Task, delay time.Duration) error
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
	if nb := h.notBefore(m); nb.After(h.now()) {
		// A retry whose wait is longer than SQS's 15-minute message delay:
		// send it on with the rest of the wait, counting no attempt.
		if err := h.requeue(ctx, task, nb.Sub(h.now())); err != nil {
			log.LogAttrs(ctx, slog.LevelError, "requeue early task", slog.String("error", err.Error()))
			return false
		}
		return true
	}
	out := h.engine.Deliver(ctx, task)
	h.delivered(out)
	if out.Retry {
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

func (h *handler) delivered(out delivery.Outcome) {
	if h.metrics == nil {
		return
	}
	_ = h.metrics.Emit(map[string]string{"Function": "dispatcher", "Status": string(out.Record.Status)},
		emf.Metric{Name: "Deliveries", Unit: emf.Count, Value: 1},
		emf.Metric{Name: "DeliveryLatency", Unit: emf.Milliseconds, Value: float64(out.Record.Latency.Microseconds()) / 1000})
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
