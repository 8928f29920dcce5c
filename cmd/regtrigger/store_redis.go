package main

// The management commands on a Redis store (--store redis://...): the
// store of the Tencent SCF functions and of serve instances sharing one
// Redis and Kafka. Opened through internal/backend, like serve.

import (
	"context"
	"errors"
	"fmt"
	"os"

	backendpkg "github.com/regtrigger/regtrigger/internal/backend"
	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/redisstore"
)

func (f *storeFlags) openRedis(ctx context.Context, storeURL string) (*backend, error) {
	queue := f.queue
	if queue == "" && f.needs.queue {
		queue = os.Getenv(config.EnvQueue)
	}
	cfg, err := config.FromEnv(func(k string) string {
		if k == config.EnvRetentionDays {
			return os.Getenv(k)
		}
		return ""
	})
	if err != nil {
		return nil, usageErr("%v", err)
	}
	b, err := backendpkg.Open(ctx, storeURL, queue, backendpkg.Options{Retention: cfg.Retention})
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return &backend{
		triggers: b.Triggers,
		records:  b.Records,
		tasks:    redisTasks{store: b.Redis, queue: b.Queue},
		close:    b.Close,
	}, nil
}

// redisTasks is the Redis store's queue side: the archive, the task topic
// to send to, and the retry set, the only queued tasks it can see (Kafka
// cannot list or remove chosen records).
type redisTasks struct {
	store *redisstore.Store
	queue interface {
		Enqueue(ctx context.Context, tasks []delivery.Task) error
	}
}

func (r redisTasks) Archived(ctx context.Context, id string) (delivery.Task, error) {
	t, err := r.store.Archived(ctx, id)
	if errors.Is(err, redisstore.ErrNotArchived) {
		return t, fmt.Errorf("%w: %w", errNotKept, err)
	}
	return t, err
}

func (r redisTasks) Requeue(ctx context.Context, t delivery.Task) error {
	if r.queue == nil {
		return fmt.Errorf("redeliver on a Redis store needs the task topic: --%s kafka://BROKER/TOPIC or $%s", flagQueue, config.EnvQueue)
	}
	if err := r.queue.Enqueue(ctx, []delivery.Task{t}); err != nil {
		return fmt.Errorf("queue task %s: %w", t.ID, err)
	}
	return nil
}

func (r redisTasks) Queued(ctx context.Context, trigger string) (queueView, error) {
	due, err := r.store.Retries().Pending(ctx, trigger)
	if err != nil {
		return queueView{}, err
	}
	v := queueView{Partial: true, Note: "Kafka cannot list its records: shown are the tasks waiting in the Redis retry set; " +
		"tasks on the topic not attempted yet are queued too but not shown"}
	for _, d := range due {
		t := d.Task
		v.Tasks = append(v.Tasks, queuedTask{ID: t.ID, Trigger: t.Trigger.Name, Revision: t.Trigger.Version, Action: t.Event.Action,
			Namespace: t.Event.Namespace, Repository: t.Event.Repository, Tag: t.Event.Tag, Attempts: t.Attempt, Due: d.At})
	}
	return v, nil
}

// Cancel removes nothing: the trigger's CancelThrough cancels each task
// when a dispatcher takes it.
func (redisTasks) Cancel(context.Context, string, string) (int, bool, error) { return 0, true, nil }
