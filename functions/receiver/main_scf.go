//go:build scf

package main

// The Tencent SCF entry point (`make build-scf`): the same receiver behind an
// SCF function URL (or an API Gateway trigger, whose event has the same
// fields). With REGTRIGGER_STORE set it runs on TencentDB for Redis and
// CKafka (internal/scf.NativeReceiver); otherwise on DynamoDB and SQS. SCF's Go runtime starts this binary and calls it
// over net/rpc on _LAMBDA_SERVER_PORT (scf-go-lib). The adapters are built
// on the first invocation, not at start: scf-go-lib applies the function's
// environment per invocation, and a configuration error is then the
// invocation's answer rather than a process that dies before SCF can log why.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/tencentyun/scf-go-lib/cloudfunction"
	"github.com/tencentyun/scf-go-lib/events"

	"github.com/regtrigger/regtrigger/internal/cloud"
	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/scf"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var (
		once sync.Once
		h    *scf.Receiver
		err  error
	)
	logger := scf.NewLogger(os.Stdout, slog.LevelInfo)
	cloudfunction.Start(func(ctx context.Context, req scf.Request) (events.APIGatewayResponse, error) {
		once.Do(func() { h, logger, err = newReceiver(ctx) })
		if err != nil {
			logger.ErrorContext(ctx, "receiver cannot start", slog.String("error", err.Error()))
			// Still an HTTP answer: 503 makes the registry retry later.
			return scf.Response(receiver.ErrorResponse(http.StatusServiceUnavailable, "receiver misconfigured", "see the function's log")), nil
		}
		return h.Invoke(ctx, req)
	})
}

func newReceiver(ctx context.Context) (*scf.Receiver, *slog.Logger, error) {
	if scf.Native(os.Getenv) {
		cfg, err := config.FromEnv(os.Getenv, scf.NativeRequires...)
		if err != nil {
			return nil, scf.NewLogger(os.Stdout, slog.LevelInfo), err
		}
		logger := scf.NewLogger(os.Stdout, cfg.LogLevel)
		r, err := scf.NativeReceiver(ctx, cfg, logger)
		return r, logger, err
	}
	stack, err := cloud.FromEnv(ctx, os.Getenv, version, cloud.ReceiverRequires...)
	if err != nil {
		return nil, scf.NewLogger(os.Stdout, slog.LevelInfo), err
	}
	logger := scf.NewLogger(os.Stdout, stack.Config.LogLevel)
	endpoint, err := stack.Endpoint(logger)
	if err != nil {
		return nil, logger, err
	}
	if endpoint.Auth.Open() {
		return nil, logger, fmt.Errorf("no registry is configured (%s): every notification would be refused", config.EnvRegistries)
	}
	return &scf.Receiver{Endpoint: endpoint}, logger, nil
}
