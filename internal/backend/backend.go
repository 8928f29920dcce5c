// Package backend maps a store URL and a queue URL to regtrigger's
// adapters: the one place `regtrigger serve`, the CLI and the Tencent SCF
// functions turn "where do triggers, records and tasks live" into
// trigger.Store, record.Store, receiver.Dedupe and receiver.Queue.
//
//	store                          queue                              what
//	pebble://DIR                   (none: the store's own)            the embedded Pebble store (serve; package embedded)
//	bolt://PATH or a plain PATH    (none: the store file's own)       the embedded bbolt store (serve --store bolt; package embedded)
//	redis://[:pw@]host:port/db     kafka://broker[,broker]/topic      TencentDB for Redis + CKafka (SCF, several serve)
//	rediss://...  (TLS)            (none: triggers and logs only)     the CLI managing a Redis store
//	dynamodb                       (none: QUEUE_URL)                  the AWS functions' tables and queue, named by
//	                                                                  TRIGGERS_TABLE, RECORDS_TABLE, DEDUPE_TABLE, QUEUE_URL
//
// Open opens the remote stores; the embedded ones, which the cloud
// functions never use, are opened by package backend/embedded, so that
// the functions do not link them.
//
// A redis:// URL may add prefix=NAME (the key prefix, default
// "regtrigger"); a kafka:// URL group=NAME (serve's consumer group) and
// timeout=10s (the longest produce). Open does no network I/O: an
// unreachable server shows up as an error of the first call that needs it.
package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regtrigger/regtrigger/internal/cloud"
	"github.com/regtrigger/regtrigger/internal/coalesce"
	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/kafkaqueue"
	"github.com/regtrigger/regtrigger/internal/localqueue"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/redisstore"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// The kinds of store.
const (
	Bolt   = "bolt"
	Pebble = "pebble"
	Redis  = "redis"
	Dynamo = "dynamodb"
)

// ErrNoQueue: the backend was opened without a queue and the caller needs one.
var ErrNoQueue = errors.New("no queue configured")

// Options tune Open.
type Options struct {
	// Retention of log records and archived tasks (0 = the default).
	Retention time.Duration
	// Getenv reads the AWS functions' settings for dynamodb (nil: os.Getenv).
	Getenv func(string) string
	// Version is the build's version, for the dynamodb stack's User-Agent.
	Version string
}

// Backend is an opened store and queue.
type Backend struct {
	Kind     string
	Triggers trigger.Store
	Records  record.Store
	Dedupe   receiver.Dedupe
	// Queue is where the receiver puts tasks; nil without a queue.
	Queue receiver.Queue
	// Archive keeps a finished task for redeliver; Archived reads it back.
	Archive  func(ctx context.Context, t delivery.Task) error
	Archived func(ctx context.Context, id string) (delivery.Task, error)
	// Health checks the store the receiver needs for every notification.
	Health func(ctx context.Context) error
	// TargetHealth keeps the delivery policies' state (circuits,
	// triggers failing since); nil without one.
	TargetHealth delivery.Health
	// Windows keeps the coalesce windows (a trigger's coalesce option).
	Windows coalesce.Store

	// Local is the embedded store (bolt, pebble) and LocalQueue its
	// queue, for serve's dispatcher and the CLI's task commands; nil for
	// the others.
	Local      Local
	LocalQueue *localqueue.TaskQueue

	// Kind-specific parts, for the wiring that needs more.
	Redis    *redisstore.Store
	Kafka    kafkaqueue.Config
	Producer *kafkaqueue.Producer
	Cloud    *cloud.Stack

	closers []func() error
}

// Local is what serve and the CLI use of an embedded store beyond the
// interfaces above: *boltstore.Store and *pebblestore.Store (package
// embedded checks).
type Local interface {
	// Path is the store's file or directory.
	Path() string
	Len(ctx context.Context) (int, error)
	NextDue(ctx context.Context) (time.Time, bool, error)
	DeadLetters(ctx context.Context) (int, error)
	Purge(ctx context.Context) (int, error)
}

// OnClose adds f to what Close calls (last added, first called).
func (b *Backend) OnClose(f func() error) { b.closers = append(b.closers, f) }

// Close releases the store and queue clients.
func (b *Backend) Close() error {
	var errs []error
	for i := len(b.closers) - 1; i >= 0; i-- {
		errs = append(errs, b.closers[i]())
	}
	return errors.Join(errs...)
}

// Kind says which store a URL names.
func Kind(storeURL string) (string, error) {
	switch {
	case strings.HasPrefix(storeURL, "redis://"), strings.HasPrefix(storeURL, "rediss://"):
		return Redis, nil
	case storeURL == Dynamo || strings.HasPrefix(storeURL, "dynamodb://"):
		return Dynamo, nil
	case strings.HasPrefix(storeURL, "bolt://"):
		return Bolt, nil
	case strings.HasPrefix(storeURL, "pebble://"):
		return Pebble, nil
	case storeURL == "":
		return "", errors.New("no store: give bolt://PATH, pebble://DIR, redis://HOST:PORT or dynamodb")
	case strings.Contains(storeURL, "://"):
		return "", fmt.Errorf("store %q: use bolt://PATH, pebble://DIR, redis://HOST:PORT/DB (rediss:// for TLS) or dynamodb", storeURL)
	}
	return Bolt, nil // a plain path
}

// Open opens the store storeURL names and, unless queueURL is empty, the
// queue. bolt has its own queue and refuses another; redis takes a
// kafka:// queue; dynamodb takes its queue from QUEUE_URL.
func Open(ctx context.Context, storeURL, queueURL string, o Options) (*Backend, error) {
	kind, err := Kind(storeURL)
	if err != nil {
		return nil, err
	}
	switch kind {
	case Redis:
		return openRedis(storeURL, queueURL, o)
	case Dynamo:
		if queueURL != "" && !strings.HasPrefix(queueURL, "sqs://") {
			return nil, fmt.Errorf("queue %q: the dynamodb store's queue is the SQS queue of %s", queueURL, config.EnvQueueURL)
		}
		return openDynamo(ctx, o)
	}
	return nil, fmt.Errorf("store %q: the %s store is embedded: open it with package backend/embedded", storeURL, kind)
}

func openRedis(storeURL, queueURL string, o Options) (*Backend, error) {
	ro, err := redisstore.ParseURL(storeURL)
	if err != nil {
		return nil, err
	}
	client := redis.NewClient(ro.Redis)
	s, err := redisstore.New(redisstore.Config{Client: client, Prefix: ro.Prefix, Retention: o.Retention})
	if err != nil {
		client.Close()
		return nil, err
	}
	b := &Backend{
		Kind: Redis, Triggers: s.Triggers(), Records: s.Records(), Dedupe: s,
		Archive: s.Archive, Archived: s.Archived, Health: s.Ping, TargetHealth: s.Health(), Windows: s.Windows(), Redis: s,
		closers: []func() error{client.Close},
	}
	if queueURL == "" {
		return b, nil
	}
	kc, err := kafkaqueue.ParseURL(queueURL)
	if err != nil {
		b.Close()
		return nil, err
	}
	p, err := kafkaqueue.NewProducer(kc)
	if err != nil {
		b.Close()
		return nil, err
	}
	b.Kafka, b.Producer, b.Queue = kc, p, p
	b.closers = append(b.closers, func() error { p.Close(); return nil })
	return b, nil
}

func openDynamo(ctx context.Context, o Options) (*Backend, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	st, err := cloud.FromEnv(ctx, getenv, o.Version, cloud.ReceiverRequires...)
	if err != nil {
		return nil, err
	}
	records := st.Store.Records()
	return &Backend{
		Kind: Dynamo, Triggers: st.Store.Triggers(), Records: records, Dedupe: st.Store, Queue: st.Queue,
		Archive: records.Archive, Archived: records.Archived, TargetHealth: st.Store.Health(), Windows: st.Store.Windows(), Cloud: st,
		Health: func(ctx context.Context) error {
			_, err := st.Triggers.Namespace(ctx, "regtrigger-health")
			return err
		},
	}, nil
}

// Consumer joins the task topic's consumer group for serve's Pool, with
// retries scheduled in the Redis retry set and finished tasks archived.
func (b *Backend) Consumer(o kafkaqueue.ConsumerOptions) (*kafkaqueue.Consumer, error) {
	if b.Producer == nil || b.Redis == nil {
		return nil, fmt.Errorf("a %s store has no Kafka consumer: %w", b.Kind, ErrNoQueue)
	}
	o.Retries = b.Redis.Retries()
	o.Archive = b.Archive
	c, err := kafkaqueue.NewConsumer(b.Kafka, o)
	if err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() error { c.Close(); return nil })
	return c, nil
}
