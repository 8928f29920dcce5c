// Package redisstore is regtrigger's Redis store (TencentDB for Redis, or
// any Redis 6.2+), on github.com/redis/go-redis/v9: triggers with
// versioned conditional writes, the trigger log with a retention TTL, the
// duplicate-notification keys, the archive of finished tasks for
// redeliver, and the delayed-retry set the dispatchers schedule retries in.
// It implements the same interfaces as boltstore and dynamostore
// (trigger.Store, record.Store, receiver.Dedupe), and delivery.Health.
//
// Key layout. Every key starts with "{<prefix>}:" (prefix "regtrigger" by
// default): the braces are a cluster hash tag, so one deployment's keys
// live in one slot and the Lua scripts below may touch several of them.
//
//	{p}:trigger:<name>          hash  doc (trigger JSON), version, namespace
//	{p}:triggers                set   every trigger name                    List
//	{p}:ns:<namespace>          set   the names of a namespace's triggers   Namespace (one script call)
//	{p}:rec:<id>                str   one record's JSON, expiring after the retention
//	{p}:recs                    zset  every record id, score = time (unix ms)
//	{p}:recs:trigger:<name>     zset  a trigger's records                  logs --trigger
//	{p}:recs:status:<status>    zset  the records of one status            logs --status
//	{p}:recs:task:<id>          zset  one task's records                   logs of a task
//	{p}:dedupe:<key>            str   a duplicate key (SET NX PX)
//	{p}:archive:<task id>       str   a finished task's JSON (redeliver), expiring after the retention
//	{p}:retry                   zset  delayed retries: member <task id>#<attempt>, score = due (unix ms)
//	{p}:retry:body              hash  member -> the task message (internal/taskmsg)
//	{p}:health:target:<target>  hash  a target's circuit (health.go)
//	{p}:health:trigger:<name>   str   when a trigger's deliveries started failing
//
// Create, Update and Delete are Lua scripts that compare the stored
// version, as dynamostore's conditional writes do. Index entries of
// expired records are trimmed on the next write to that index (and an
// index key of a trigger, status or task expires with its newest record);
// reads skip ids whose record expired. Claim of due retries is one script,
// so two claimers never take the same retry at once.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regtrigger/regtrigger/internal/record"
)

// DefaultPrefix names a deployment's keys.
const DefaultPrefix = "regtrigger"

// Config configures a Store.
type Config struct {
	// Client is the Redis client (required).
	Client redis.UniversalClient
	// Prefix names the keys ("" = DefaultPrefix).
	Prefix string
	// Retention is how long records and archived tasks are kept
	// (0 = record.DefaultRetention).
	Retention time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store is the Redis store. It is safe for concurrent use.
type Store struct {
	rdb       redis.UniversalClient
	p         string // "{prefix}:"
	retention time.Duration
	now       func() time.Time
}

// New checks cfg and returns a Store. It does no I/O.
func New(cfg Config) (*Store, error) {
	if cfg.Client == nil {
		return nil, errors.New("redisstore: no Redis client")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("redisstore: prefix %q may not contain braces", cfg.Prefix)
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("redisstore: negative retention %s", cfg.Retention)
	}
	if cfg.Retention == 0 {
		cfg.Retention = record.DefaultRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{rdb: cfg.Client, p: "{" + cfg.Prefix + "}:", retention: cfg.Retention, now: cfg.Now}, nil
}

// Options are what a redis:// URL says beyond go-redis's own options.
type Options struct {
	Redis  *redis.Options
	Prefix string
}

// ParseURL reads a redis:// (or rediss:// for TLS) URL as go-redis does
// (redis://[user:password@]host:port/db?dial_timeout=3s...), plus
// prefix=NAME for the key prefix.
func ParseURL(raw string) (Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Options{}, fmt.Errorf("redis URL: %w", err)
	}
	q := u.Query()
	prefix := q.Get("prefix")
	q.Del("prefix")
	u.RawQuery = q.Encode()
	opts, err := redis.ParseURL(u.String())
	if err != nil {
		return Options{}, fmt.Errorf("redis URL %s: %w", redact(u), err)
	}
	return Options{Redis: opts, Prefix: prefix}, nil
}

// redact is u without its password, for errors.
func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	return c.String()
}

// Ping checks that Redis answers: the health check of the receiver.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Client is the store's Redis client.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

func (s *Store) key(parts ...string) string { return s.p + strings.Join(parts, ":") }

func ms(t time.Time) float64 { return float64(t.UnixMilli()) }
