//go:build scf

package main

// The Tencent SCF entry point (`make build-scf`): SCF has no SQS trigger, so
// the dispatcher runs on a timer trigger and drains the queue for most of
// each invocation (internal/scf.Drainer), with the same Pool, delivery
// engine and log records as everywhere else. Adapters are built on the
// first invocation (see functions/receiver/main_scf.go for why).

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/tencentyun/scf-go-lib/cloudfunction"
	"github.com/tencentyun/scf-go-lib/events"

	"github.com/regtrigger/regtrigger/internal/cloud"
	"github.com/regtrigger/regtrigger/internal/scf"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var (
		once sync.Once
		d    *scf.Drainer
		err  error
	)
	logger := scf.NewLogger(os.Stdout, slog.LevelInfo)
	cloudfunction.Start(func(ctx context.Context, ev events.TimerEvent) (scf.Summary, error) {
		once.Do(func() { d, logger, err = newDrainer(ctx) })
		if err != nil {
			logger.ErrorContext(ctx, "dispatcher cannot start", slog.String("error", err.Error()))
			return scf.Summary{}, err
		}
		return d.Invoke(ctx, ev)
	})
}

func newDrainer(ctx context.Context) (*scf.Drainer, *slog.Logger, error) {
	stack, err := cloud.FromEnv(ctx, os.Getenv, version, cloud.DispatcherRequires...)
	if err != nil {
		return nil, scf.NewLogger(os.Stdout, slog.LevelInfo), err
	}
	cfg := stack.Config
	logger := scf.NewLogger(os.Stdout, cfg.LogLevel)
	engine, err := stack.Engine(logger)
	if err != nil {
		return nil, logger, err
	}
	poller := &sqsqueue.Poller{Queue: stack.Queue, Archive: stack.Store.Records().Archive}
	if cfg.DrainIdle > 0 {
		// An empty long poll must end before the idle time does.
		poller.Wait = max(time.Second, min(cfg.DrainIdle/2, 20*time.Second))
	}
	return &scf.Drainer{Queue: poller, Engine: engine, Records: stack.Store.Records(), Workers: cfg.Concurrency, Idle: cfg.DrainIdle, Logger: logger}, logger, nil
}
