//go:build scf

package main

// The Tencent SCF entry point (`make build-scf`). Two wirings, picked by
// the environment:
//
//   - REGTRIGGER_STORE=redis://... and REGTRIGGER_QUEUE=kafka://... (the
//     Tencent-native one): a CKafka trigger hands the function batches of
//     tasks (internal/scf.Consumer, which always answers success and
//     schedules its own retries in Redis), and a timer trigger every
//     5 seconds moves due retries back to the topic (internal/scf.Requeuer).
//   - otherwise, DynamoDB and SQS: a timer trigger drains the queue for
//     most of each invocation (internal/scf.Drainer).
//
// Adapters are built on the first invocation (see
// functions/receiver/main_scf.go for why).

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/tencentyun/scf-go-lib/cloudfunction"
	"github.com/tencentyun/scf-go-lib/events"

	"github.com/regtrigger/regtrigger/internal/cloud"
	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/scf"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// functions are the handlers of one container.
type functions struct {
	consumer *scf.Consumer // native: CKafka batches
	requeuer *scf.Requeuer // native: the timer
	drainer  *scf.Drainer  // DynamoDB + SQS: the timer
}

func main() {
	var (
		once sync.Once
		fns  *functions
		err  error
	)
	logger := scf.NewLogger(os.Stdout, slog.LevelInfo)
	cloudfunction.Start(func(ctx context.Context, raw json.RawMessage) (any, error) {
		once.Do(func() { fns, err = newFunctions(ctx) })
		if err != nil {
			logger.ErrorContext(ctx, "dispatcher cannot start", slog.String("error", err.Error()))
			return nil, err
		}
		return fns.invoke(ctx, raw)
	})
}

// event is what tells the triggers' events apart.
type event struct {
	Type    string            `json:"Type"`
	Records []json.RawMessage `json:"Records"`
}

func (f *functions) invoke(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("event is not JSON: %w", err)
	}
	switch {
	case ev.Records != nil && f.consumer != nil:
		var ck events.CkafkaEvent
		if err := json.Unmarshal(raw, &ck); err != nil {
			return nil, fmt.Errorf("CKafka event: %w", err)
		}
		return f.consumer.Invoke(ctx, ck)
	case ev.Type == "Timer":
		var tm events.TimerEvent
		if err := json.Unmarshal(raw, &tm); err != nil {
			return nil, fmt.Errorf("timer event: %w", err)
		}
		if f.requeuer != nil {
			return f.requeuer.Invoke(ctx, tm)
		}
		return f.drainer.Invoke(ctx, tm)
	}
	if ev.Records != nil {
		return nil, fmt.Errorf("a CKafka batch, but %s and %s are not set", config.EnvStore, config.EnvQueue)
	}
	return nil, fmt.Errorf("unexpected event: neither a CKafka batch nor a timer")
}

func newFunctions(ctx context.Context) (*functions, error) {
	if scf.Native(os.Getenv) {
		cfg, err := config.FromEnv(os.Getenv, scf.NativeRequires...)
		if err != nil {
			return nil, err
		}
		logger := scf.NewLogger(os.Stdout, cfg.LogLevel)
		c, r, err := scf.NativeDispatcher(ctx, cfg, logger, version)
		if err != nil {
			return nil, err
		}
		return &functions{consumer: c, requeuer: r}, nil
	}
	stack, err := cloud.FromEnv(ctx, os.Getenv, version, cloud.DispatcherRequires...)
	if err != nil {
		return nil, err
	}
	cfg := stack.Config
	logger := scf.NewLogger(os.Stdout, cfg.LogLevel)
	engine, err := stack.Engine(logger)
	if err != nil {
		return nil, err
	}
	poller := &sqsqueue.Poller{Queue: stack.Queue, Archive: stack.Store.Records().Archive}
	if cfg.DrainIdle > 0 {
		// An empty long poll must end before the idle time does.
		poller.Wait = max(time.Second, min(cfg.DrainIdle/2, 20*time.Second))
	}
	d := &scf.Drainer{Queue: poller, Engine: engine, Records: stack.Store.Records(), Workers: cfg.Concurrency, Idle: cfg.DrainIdle, Logger: logger}
	return &functions{drainer: d}, nil
}
