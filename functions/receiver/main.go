//go:build !scf

// Command receiver is regtrigger's HTTP-triggered Lambda function: registries
// post notifications to its Function URL (or an API Gateway HTTP API route);
// it authenticates them, matches the namespace's triggers from DynamoDB and
// sends one task per (trigger, event) to SQS — the same receiver.Endpoint
// `regtrigger serve` runs. With the EnableEcrEvents template parameter an
// EventBridge rule also invokes it directly with ECR image actions.
//
// main only wires: configuration from the environment (internal/config),
// adapters once per container (internal/cloud), then lambda.Start.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/regtrigger/regtrigger/internal/cloud"
	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/emf"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// JSON when the function's LoggingConfig says so (AWS_LAMBDA_LOG_FORMAT),
	// with the invocation's requestId on every line.
	logger := lambdacontext.NewLogger()
	h, err := newHandler(context.Background(), os.Getenv, logger)
	if err != nil {
		logger.Error("receiver cannot start", slog.String("error", err.Error()))
		os.Exit(1)
	}
	lambda.Start(h.invoke)
}

// newHandler reads the configuration and builds the adapters. It does no
// network I/O.
func newHandler(ctx context.Context, getenv func(string) string, logger *slog.Logger) (*handler, error) {
	stack, err := cloud.FromEnv(ctx, getenv, version, cloud.ReceiverRequires...)
	if err != nil {
		return nil, err
	}
	endpoint, err := stack.Endpoint(logger)
	if err != nil {
		return nil, err
	}
	if endpoint.Auth.Open() {
		// Open mode accepts loopback clients only, and a function's clients
		// never are: every notification would be refused.
		logger.Warn("no registry is configured (" + config.EnvRegistries + "): every notification will be refused with 403")
	}
	return &handler{endpoint: endpoint, logger: logger, metrics: emf.New(os.Stdout)}, nil
}
