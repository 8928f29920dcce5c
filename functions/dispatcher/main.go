//go:build !scf

// Command dispatcher is regtrigger's queue-triggered Lambda function: the SQS
// event source hands it batches of delivery tasks; it makes each guarded
// webhook call through the delivery engine, writes the log records to
// DynamoDB, makes a retry's message wait out its delay (its visibility) and
// reports it, with the messages it could not settle, as a batch item
// failure (ReportBatchItemFailures), so only finished tasks are deleted.
//
// main only wires: configuration from the environment (internal/config),
// adapters once per container (internal/cloud), then lambda.Start.
package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/regtrigger/regtrigger/internal/cloud"
	"github.com/regtrigger/regtrigger/internal/emf"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	logger := lambdacontext.NewLogger()
	h, err := newHandler(context.Background(), os.Getenv, logger)
	if err != nil {
		logger.Error("dispatcher cannot start", slog.String("error", err.Error()))
		os.Exit(1)
	}
	lambda.Start(h.handle)
}

// newHandler reads the configuration and builds the adapters. It does no
// network I/O.
func newHandler(ctx context.Context, getenv func(string) string, logger *slog.Logger) (*handler, error) {
	stack, err := cloud.FromEnv(ctx, getenv, version, cloud.DispatcherRequires...)
	if err != nil {
		return nil, err
	}
	engine, err := stack.Engine(logger)
	if err != nil {
		return nil, err
	}
	return &handler{
		engine:      engine,
		decode:      sqsqueue.Decode,
		notBefore:   notBefore,
		requeue:     stack.Queue.Reschedule,
		hold:        stack.Queue.Hold,
		retention:   sqsqueue.MessageRetention,
		maxReceives: sqsqueue.MaxReceiveCount,
		archive:     stack.Store.Records().Archive,
		records:     stack.Store.Records(),
		concurrency: stack.Config.Concurrency,
		logger:      logger,
		metrics:     emf.New(os.Stdout),
		now:         time.Now,
	}, nil
}

// notBefore reads the due time a long retry's message carries.
func notBefore(m events.SQSMessage) time.Time {
	a, ok := m.MessageAttributes[sqsqueue.AttrNotBefore]
	if !ok || a.StringValue == nil {
		return time.Time{}
	}
	return sqsqueue.ParseNotBefore(*a.StringValue)
}
