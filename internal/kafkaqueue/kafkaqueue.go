// Package kafkaqueue is the Kafka adapter of regtrigger's delivery queue
// (Tencent CKafka, or any Kafka 2.4+), on github.com/twmb/franz-go.
//
// The receiver produces one record per task to the task topic (Producer,
// a receiver.Queue); its value is the versioned task body of
// internal/taskmsg, the same contract as every SQS message, and its key
// the task id. Headers repeat task_id and attempt for consoles, and carry
// not_before (RFC 3339) on a task sent back before it is due.
//
// Two consumers read the topic:
//   - `regtrigger serve` joins a consumer group (Consumer, a
//     dispatcher.Queue for the same Pool as everywhere else), committing
//     a partition's offset only past tasks that are settled;
//   - on Tencent SCF, the CKafka trigger invokes the dispatcher with
//     batches (internal/scf), which settles every record itself.
//
// Kafka cannot delay a record, so retries wait in the Redis sorted set of
// internal/redisstore and a requeue loop produces them back when due.
// Bodies are never logged, and no error returned here quotes one.
package kafkaqueue

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/taskmsg"
)

// Header names.
const (
	HeaderTaskID    = "task_id"
	HeaderAttempt   = "attempt"
	HeaderNotBefore = "not_before"
)

// MaxBodyBytes is the largest encoded task produced: under franz-go's
// default batch limit (1,000,012 bytes) and CKafka's default maximum
// message size (1 MB), with room for the key, headers and batch framing.
const MaxBodyBytes = 900 << 10

// DefaultGroup is serve's consumer group.
const DefaultGroup = "regtrigger-dispatcher"

// DefaultDeliveryTimeout bounds one produce, so that a receiver answers
// 503 in time when Kafka cannot be reached.
const DefaultDeliveryTimeout = 10 * time.Second

// ErrTooLarge marks a task too large for one record; nothing is produced.
var ErrTooLarge = taskmsg.ErrTooLarge

// Config says where the task topic is.
type Config struct {
	Brokers []string
	Topic   string
	// Group is the consumer group of Consumer (default DefaultGroup).
	Group string
	// DeliveryTimeout bounds a produce (default DefaultDeliveryTimeout).
	DeliveryTimeout time.Duration
}

// ParseURL reads kafka://broker1:9092,broker2:9092/topic[?group=NAME&timeout=10s].
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("kafka URL: %w", err)
	}
	if u.Scheme != "kafka" {
		return Config{}, fmt.Errorf("kafka URL %q: the scheme must be kafka://", raw)
	}
	c := Config{Topic: strings.Trim(u.Path, "/"), Group: u.Query().Get("group")}
	for _, b := range strings.Split(u.Host, ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.Brokers = append(c.Brokers, b)
		}
	}
	if v := u.Query().Get("timeout"); v != "" {
		if c.DeliveryTimeout, err = time.ParseDuration(v); err != nil || c.DeliveryTimeout <= 0 {
			return Config{}, fmt.Errorf("kafka URL: timeout=%q: want a duration like 10s", v)
		}
	}
	return c, c.check()
}

func (c *Config) check() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("kafka: no broker (kafka://host:port[,host:port]/topic)")
	case c.Topic == "" || strings.Contains(c.Topic, "/"):
		return fmt.Errorf("kafka: topic %q: name one topic (kafka://host:port/topic)", c.Topic)
	}
	return nil
}

func (c *Config) timeout() time.Duration {
	if c.DeliveryTimeout > 0 {
		return c.DeliveryTimeout
	}
	return DefaultDeliveryTimeout
}

// Producer produces tasks to the topic. It is safe for concurrent use.
type Producer struct {
	client *kgo.Client
	topic  string
}

var _ receiver.Queue = (*Producer)(nil)

// NewProducer connects lazily: no I/O until the first produce.
func NewProducer(cfg Config) (*Producer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RecordDeliveryTimeout(cfg.timeout()),
		kgo.ProduceRequestTimeout(cfg.timeout()),
		kgo.DialTimeout(min(cfg.timeout(), 5*time.Second)),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	return &Producer{client: cl, topic: cfg.Topic}, nil
}

// Close flushes nothing (every produce is synchronous) and closes.
func (p *Producer) Close() { p.client.Close() }

// Enqueue produces every task, due now. Every task is encoded first: one
// too large (ErrTooLarge) fails the call before anything is produced. On
// any other error some tasks may already be on the topic; the registry's
// retry produces them again with the same ids (at least once).
func (p *Producer) Enqueue(ctx context.Context, tasks []delivery.Task) error {
	return p.Produce(ctx, tasks, time.Time{})
}

// Produce is Enqueue with a not_before header (zero: none) on every record,
// or the task's own NotBefore (a coalesce window's end) when later: the
// consumer parks a record that comes early in the retry set.
func (p *Producer) Produce(ctx context.Context, tasks []delivery.Task, notBefore time.Time) error {
	if len(tasks) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(tasks))
	var tooLarge []error
	for i, t := range tasks {
		nb := notBefore
		if t.NotBefore.After(nb) {
			nb = t.NotBefore
		}
		r, err := Record(t, nb)
		if err != nil {
			tooLarge = append(tooLarge, err)
			continue
		}
		r.Topic = p.topic
		recs[i] = r
	}
	if len(tooLarge) > 0 {
		return fmt.Errorf("kafka produce: nothing sent: %w", errors.Join(tooLarge...))
	}
	if err := p.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("kafka produce of %d task(s) to %s: %w", len(tasks), p.topic, err)
	}
	return nil
}

// Record is the Kafka record of t.
func Record(t delivery.Task, notBefore time.Time) (*kgo.Record, error) {
	body, err := taskmsg.Encode(t, MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	r := &kgo.Record{Key: []byte(t.ID), Value: body, Headers: []kgo.RecordHeader{
		{Key: HeaderTaskID, Value: []byte(t.ID)},
		{Key: HeaderAttempt, Value: []byte(strconv.Itoa(t.Attempt))},
	}}
	if !notBefore.IsZero() {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderNotBefore, Value: []byte(notBefore.UTC().Format(time.RFC3339Nano))})
	}
	return r, nil
}

// NotBefore reads a record's not_before header (zero: due now).
func NotBefore(headers []kgo.RecordHeader) time.Time {
	for _, h := range headers {
		if h.Key == HeaderNotBefore {
			t, err := time.Parse(time.RFC3339Nano, string(h.Value))
			if err == nil {
				return t
			}
		}
	}
	return time.Time{}
}
