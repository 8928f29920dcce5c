package scf

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/regtrigger/regtrigger/internal/auth"
	"github.com/regtrigger/regtrigger/internal/backend"
	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/receiver"
)

// The Tencent-native functions: TencentDB for Redis (REGTRIGGER_STORE) and
// a CKafka topic (REGTRIGGER_QUEUE), opened by internal/backend. Native
// reports whether a function's environment asks for them; otherwise the
// functions keep the DynamoDB + SQS wiring of internal/cloud.

// NativeRequires are the settings both native functions need.
var NativeRequires = []string{config.EnvStore, config.EnvQueue}

// Native reports whether getenv selects the Tencent-native store.
func Native(getenv func(string) string) bool { return getenv(config.EnvStore) != "" }

// openNative opens the store and queue of cfg, refusing a store that is
// not Redis: the native functions are Redis + Kafka only.
func openNative(ctx context.Context, cfg config.Config) (*backend.Backend, error) {
	if kind, err := backend.Kind(cfg.Store); err != nil || kind != backend.Redis {
		return nil, fmt.Errorf("%s: want redis://host:port/db (TencentDB for Redis), not %q", config.EnvStore, cfg.Store)
	}
	b, err := backend.Open(ctx, cfg.Store, cfg.Queue, backend.Options{Retention: cfg.Retention})
	if err != nil {
		return nil, err
	}
	if b.Producer == nil {
		b.Close()
		return nil, fmt.Errorf("%s is required (kafka://broker/topic)", config.EnvQueue)
	}
	return b, nil
}

// NativeReceiver is the receiver on Redis and Kafka: the triggers of a
// namespace read with one script call, duplicate keys and untriggered
// records in Redis, tasks produced to the topic. Redis or Kafka down is a
// 503, so the registry retries.
func NativeReceiver(ctx context.Context, cfg config.Config, logger *slog.Logger) (*Receiver, error) {
	authn, err := auth.New(cfg.Registries)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvRegistries, err)
	}
	if authn.Open() {
		return nil, fmt.Errorf("no registry is configured (%s): every notification would be refused", config.EnvRegistries)
	}
	b, err := openNative(ctx, cfg)
	if err != nil {
		return nil, err
	}
	svc := &receiver.Service{Triggers: b.Triggers, Queue: b.Queue, Dedupe: b.Dedupe, Records: b.Records, Windows: b.Windows, Logger: logger, DedupeWindow: cfg.DedupeWindow}
	return &Receiver{Endpoint: &receiver.Endpoint{Service: svc, Auth: authn, Health: b.Health}}, nil
}

// NativeDispatcher is the CKafka-triggered dispatcher and the requeue
// timer over one Redis store and topic.
func NativeDispatcher(ctx context.Context, cfg config.Config, logger *slog.Logger, version string) (*Consumer, *Requeuer, error) {
	b, err := openNative(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	ua := "regtrigger/" + version
	client, err := outbound.NewClient(outbound.Config{AllowPrivate: cfg.AllowPrivate, Timeout: outbound.MaxTimeout, UserAgent: ua})
	if err != nil {
		return nil, nil, fmt.Errorf("outbound client: %w", err)
	}
	policy := delivery.DefaultPolicy()
	policy.MaxAttempts = cfg.MaxAttempts
	if err := policy.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", config.EnvMaxAttempts, err)
	}
	triggers := &delivery.TriggerCache{Triggers: b.Triggers, TTL: cfg.TriggerCacheTTL}
	engine := &delivery.Engine{Sender: client, Triggers: triggers, Policy: policy, Health: b.TargetHealth, Disable: b.Triggers, Windows: b.Windows, Limits: &delivery.Limits{}, Sink: b.Records, Logger: logger, UserAgent: ua}
	retries := b.Redis.Retries()
	c := &Consumer{Engine: engine, Retries: retries, Produce: b.Producer.Enqueue, Archive: b.Archive, Records: b.Records,
		Workers: cfg.Concurrency, Logger: logger}
	r := &Requeuer{Requeue: retries.Requeue, Produce: b.Producer.Enqueue, Logger: logger}
	return c, r, nil
}
