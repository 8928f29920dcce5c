// Package cloud assembles what the cloud functions run on — the DynamoDB
// store, the SQS queue, the guarded outbound client and the delivery engine —
// from config.Config. Every entry point (the Lambda functions, the Tencent
// SCF functions) builds one Stack per container at start and reuses it for
// every invocation, so clients, connection pools and the trigger cache
// survive between invocations.
//
// Nothing here talks to the network when it is built: the AWS SDK resolves
// credentials on the first call, and a missing table or queue shows up as an
// error of the first request that needs it (503 for the registry, a batch
// failure for the queue).
//
// Endpoints and credentials come from the AWS SDK's standard configuration:
// on Lambda the execution role; elsewhere AWS_REGION, AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY and, for an API-compatible server or a VPC endpoint,
// AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_SQS (or AWS_ENDPOINT_URL).
package cloud

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/regtrigger/regtrigger/internal/auth"
	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dynamostore"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
)

// Receiver needs these settings; Dispatcher the other list.
var (
	ReceiverRequires   = []string{config.EnvTriggersTable, config.EnvRecordsTable, config.EnvDedupeTable, config.EnvQueueURL}
	DispatcherRequires = []string{config.EnvTriggersTable, config.EnvRecordsTable, config.EnvDedupeTable, config.EnvQueueURL}
)

// Stack is one container's adapters.
type Stack struct {
	Config   config.Config
	Store    *dynamostore.Store
	Triggers *dynamostore.CachedTriggers
	Queue    *sqsqueue.Queue
	// Version is the build's version, sent as User-Agent regtrigger/<Version>.
	Version string
}

// FromEnv reads the configuration (required names the settings the caller
// cannot do without) and builds the adapters: the start of every entry point.
func FromEnv(ctx context.Context, getenv func(string) string, version string, required ...string) (*Stack, error) {
	cfg, err := config.FromEnv(getenv, required...)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg, version)
}

// New builds the adapters for cfg with the SDK's default AWS configuration.
func New(ctx context.Context, cfg config.Config, version string) (*Stack, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return FromAWS(awsCfg, cfg, version)
}

// FromAWS builds the adapters on an existing AWS configuration.
func FromAWS(awsCfg aws.Config, cfg config.Config, version string) (*Stack, error) {
	store, err := dynamostore.New(dynamostore.Config{
		Client:        dynamodb.NewFromConfig(awsCfg),
		TriggersTable: cfg.TriggersTable,
		RecordsTable:  cfg.RecordsTable,
		DedupeTable:   cfg.DedupeTable,
		Retention:     cfg.Retention,
	})
	if err != nil {
		return nil, err
	}
	return &Stack{
		Config:   cfg,
		Store:    store,
		Triggers: &dynamostore.CachedTriggers{Store: store.Triggers(), TTL: cfg.TriggerCacheTTL},
		Queue:    &sqsqueue.Queue{Client: sqs.NewFromConfig(awsCfg), URL: cfg.QueueURL},
		Version:  version,
	}, nil
}

// Endpoint is the receiver: registry authentication, parsing, matching on
// the cached triggers, duplicate keys in DynamoDB, tasks into SQS. It
// stores no untriggered record (receiver.Service.SampleUntriggered is
// off): its role may not write the records table.
func (s *Stack) Endpoint(logger *slog.Logger) (*receiver.Endpoint, error) {
	authn, err := auth.New(s.Config.Registries)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvRegistries, err)
	}
	svc := &receiver.Service{
		Triggers:     s.Triggers,
		Queue:        s.Queue,
		Dedupe:       s.Store,
		Windows:      s.Store.Windows(),
		Logger:       logger,
		DedupeWindow: s.Config.DedupeWindow,
	}
	return &receiver.Endpoint{Service: svc, Auth: authn, Health: s.health}, nil
}

// health reads the triggers table (through the cache): the one dependency
// every notification needs.
func (s *Stack) health(ctx context.Context) error {
	if _, err := s.Triggers.Namespace(ctx, "regtrigger-health"); err != nil {
		return fmt.Errorf("trigger store: %w", err)
	}
	return nil
}

// Engine is the delivery engine: the guarded outbound client with the
// configured private allowances, each task's trigger read from the
// triggers table when it is sent, the retry policy with the configured
// attempt limit, log records into DynamoDB.
func (s *Stack) Engine(logger *slog.Logger) (*delivery.Engine, error) {
	ua := "regtrigger/" + s.Version
	client, err := outbound.NewClient(outbound.Config{AllowPrivate: s.Config.AllowPrivate, Timeout: outbound.MaxTimeout, UserAgent: ua})
	if err != nil {
		return nil, fmt.Errorf("outbound client: %w", err)
	}
	policy := delivery.DefaultPolicy()
	policy.MaxAttempts = s.Config.MaxAttempts
	if err := policy.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvMaxAttempts, err)
	}
	// Each task's trigger is read when it is sent (a GetItem), cached for
	// TRIGGER_CACHE_TTL so that a batch for one trigger reads it once.
	triggers := &delivery.TriggerCache{Triggers: s.Store.Triggers(), TTL: s.Config.TriggerCacheTTL}
	// Each target's circuit and each trigger's failures are items of the
	// dedupe table, shared by every container; a trigger failing for its
	// auto-disable-after is disabled with a conditional PutItem. The
	// triggers' max-concurrency and rate hold per container.
	return &delivery.Engine{Sender: client, Triggers: triggers, Policy: policy, Health: s.Store.Health(), Disable: s.Store.Triggers(), Windows: s.Store.Windows(), Limits: &delivery.Limits{}, Sink: s.Store.Records(), Logger: logger, UserAgent: ua}, nil
}
