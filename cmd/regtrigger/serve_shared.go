package main

// serve on a shared Redis and Kafka (--store redis://... --queue
// kafka://...): several instances behind one load balancer share the
// triggers, the log, the duplicate keys and the retry set in Redis, and
// the task topic's partitions through one consumer group. Each runs the
// same receiver, Pool and delivery engine as on the embedded store, plus
// the requeue loop the SCF timer function runs (due retries back to the
// topic; the claim is atomic, so the instances never move one twice).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/regtrigger/regtrigger/internal/auth"
	backendpkg "github.com/regtrigger/regtrigger/internal/backend"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/kafkaqueue"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// requeueEvery is how often serve moves due retries to the topic.
const requeueEvery = time.Second

func serveShared(ctx context.Context, logger *slog.Logger, f serveFlags, authn *auth.Authenticator, rules trigger.Rules, policy delivery.Policy, client *outbound.Client) error {
	kind, err := backendpkg.Kind(f.store)
	if err != nil || kind != backendpkg.Redis {
		return &exitError{code: 2, err: fmt.Errorf("--store %q: use redis://HOST:PORT/DB (or leave it out for the --data file)", f.store)}
	}
	if f.queue == "" {
		return &exitError{code: 2, err: errors.New("--store redis://... needs --queue kafka://BROKER/TOPIC")}
	}
	// As on the embedded store: validate the trigger file first, apply it
	// only once the port is bound.
	var desired []trigger.Trigger
	if f.triggers != "" {
		if desired, err = trigger.ReadFile(f.triggers, trigger.LoadOptions{Rules: rules, Warn: func(msg string) { logger.Warn(msg, "file", f.triggers) }}); err != nil {
			return fail("--triggers %s: %v", f.triggers, err)
		}
	}
	b, err := backendpkg.Open(ctx, f.store, f.queue, backendpkg.Options{Retention: f.retention})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer b.Close()
	if err := b.Health(ctx); err != nil {
		return fail("%v", err)
	}
	ln, err := listen(f.addr, "--addr")
	if err != nil {
		return err
	}
	defer ln.Close() // after Serve, a no-op; before it, the only close
	if f.triggers != "" {
		changes, err := trigger.Apply(ctx, b.Triggers, desired, trigger.ApplyOptions{Rules: rules, StoredIn: "the Redis store"})
		if err != nil {
			return fail("apply --triggers %s: %v", f.triggers, err)
		}
		for _, ch := range changes {
			logger.Info("trigger applied", "trigger", ch.Name, "change", string(ch.Kind), "file", f.triggers)
		}
	}
	consumer, err := b.Consumer(kafkaqueue.ConsumerOptions{Logger: logger})
	if err != nil {
		return fail("%v", err)
	}
	// Other instances and the CLI write the triggers: read them through a
	// short cache, as the functions do.
	triggers := &delivery.TriggerCache{Triggers: b.Triggers, TTL: 2 * time.Second}
	// The circuits are in Redis, shared by every instance; max-concurrency
	// and rate hold per instance (docs/delivery.md).
	engine := &delivery.Engine{Sender: client, Triggers: triggers, Policy: policy, Health: b.TargetHealth, Disable: b.Triggers, Windows: b.Windows, Limits: &delivery.Limits{}, Sink: b.Records, Logger: logger, UserAgent: userAgent()}
	pool := &dispatcher.Pool{Queue: consumer, Engine: engine, Workers: f.workers, Drain: f.drain, Records: b.Records, Logger: logger}
	svc := &receiver.Service{Triggers: b.Triggers, Queue: b.Queue, Dedupe: b.Dedupe, Records: b.Records, Windows: b.Windows, Logger: logger, DedupeWindow: f.dedupeWindow}
	endpoint := &receiver.Endpoint{Service: svc, Auth: authn, Health: b.Health}

	srv := &http.Server{
		Handler: endpoint, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if authn.Open() {
		logger.Warn("NO REGISTRY TOKEN CONFIGURED: only clients on this machine are accepted; configure --registry name=token before exposing regtrigger")
	}
	logger.Info("regtrigger serving", "addr", ln.Addr().String(), "store", "redis", "queue", f.queue, "workers", f.workers, "version", version)

	go requeueLoop(ctx, b, logger)
	return runUntilStopped(ctx, srv, ln, pool, f.drain, logger)
}

// requeueLoop moves due retries from Redis to the topic every second.
func requeueLoop(ctx context.Context, b *backendpkg.Backend, logger *slog.Logger) {
	t := time.NewTicker(requeueEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		moved, _, err := b.Redis.Retries().Requeue(ctx, time.Now, b.Producer.Enqueue)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Error("requeue due retries", "error", err.Error())
		case moved > 0:
			logger.Debug("due retries requeued", "count", moved)
		}
	}
}
