// Package config reads the settings of the cloud functions from their
// environment, with one clear error per bad value. `regtrigger serve` takes
// the same settings as flags.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/auth"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/record"
)

// Environment variable names.
const (
	EnvRegistries      = "REGTRIGGER_REGISTRIES" // auth.SpecSyntax entries separated by ';' (docs/authentication.md)
	EnvTriggersTable   = "TRIGGERS_TABLE"
	EnvRecordsTable    = "RECORDS_TABLE"
	EnvDedupeTable     = "DEDUPE_TABLE"
	EnvQueueURL        = "QUEUE_URL"
	EnvTriggerCacheTTL = "TRIGGER_CACHE_TTL" // Go duration, default 10s
	EnvDedupeWindow    = "DEDUPE_WINDOW"     // Go duration, default 10m
	EnvRetentionDays   = "RETENTION_DAYS"    // default 30
	EnvAllowPrivate    = "ALLOW_PRIVATE_CIDRS"
	EnvMaxAttempts     = "MAX_ATTEMPTS" // default 8
	EnvConcurrency     = "CONCURRENCY"  // deliveries at once in one batch, default 10
	EnvLogLevel        = "LOG_LEVEL"    // debug, info, warn, error
	EnvDrainIdle       = "DRAIN_IDLE"   // SCF timer dispatcher: stop after this long without work (Go duration, default 0 = never)
	// The Tencent-native SCF functions (docs/tencent-scf.md): the store
	// and queue URLs internal/backend opens, instead of the tables above.
	EnvStore = "REGTRIGGER_STORE" // redis://[:password@]host:port/db
	EnvQueue = "REGTRIGGER_QUEUE" // kafka://broker[,broker]/topic
)

// Env lists every environment variable FromEnv reads. The deployment
// templates' tests (internal/deploy) check that the functions are given
// only variables from this list.
var Env = []string{
	EnvRegistries, EnvTriggersTable, EnvRecordsTable, EnvDedupeTable, EnvQueueURL,
	EnvTriggerCacheTTL, EnvDedupeWindow, EnvRetentionDays, EnvAllowPrivate,
	EnvMaxAttempts, EnvConcurrency, EnvLogLevel, EnvDrainIdle, EnvStore, EnvQueue,
}

// Config is everything either function needs; each reads its part.
type Config struct {
	Registries    []auth.Config
	TriggersTable string
	RecordsTable  string
	DedupeTable   string
	QueueURL      string
	// Store and Queue are the Tencent-native functions' store and queue
	// URLs (REGTRIGGER_STORE, REGTRIGGER_QUEUE); empty on AWS.
	Store, Queue    string
	TriggerCacheTTL time.Duration
	DedupeWindow    time.Duration
	Retention       time.Duration
	AllowPrivate    []netip.Prefix
	MaxAttempts     int
	Concurrency     int
	LogLevel        slog.Level
	// DrainIdle ends an SCF timer invocation early once the queue has given
	// no work for this long (0: drain for the whole time budget).
	DrainIdle time.Duration
}

// FromEnv reads the configuration. required names the variables the
// calling function cannot do without; every problem is reported at once.
func FromEnv(getenv func(string) string, required ...string) (Config, error) {
	c := Config{
		TriggerCacheTTL: 10 * time.Second,
		DedupeWindow:    receiver.DefaultDedupeWindow,
		Retention:       record.DefaultRetention,
		MaxAttempts:     8,
		Concurrency:     10,
		LogLevel:        slog.LevelInfo,
	}
	var errs []error
	for _, name := range required {
		if strings.TrimSpace(getenv(name)) == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	c.TriggersTable = getenv(EnvTriggersTable)
	c.RecordsTable = getenv(EnvRecordsTable)
	c.DedupeTable = getenv(EnvDedupeTable)
	c.QueueURL = getenv(EnvQueueURL)
	c.Store, c.Queue = getenv(EnvStore), getenv(EnvQueue)
	if v := getenv(EnvRegistries); v != "" {
		regs, err := auth.ParseSpec(v)
		if err == nil {
			// Validated here too (secret lengths, max-age ranges), so a bad
			// entry is reported with every other problem at start.
			_, err = auth.New(regs)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvRegistries, err))
		}
		c.Registries = regs
	}
	duration := func(name string, dst *time.Duration, max time.Duration) {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > max {
				errs = append(errs, fmt.Errorf("%s=%q: want a duration like 10s, at most %v", name, v, max))
				return
			}
			*dst = d
		}
	}
	duration(EnvTriggerCacheTTL, &c.TriggerCacheTTL, time.Hour)
	duration(EnvDedupeWindow, &c.DedupeWindow, 24*time.Hour)
	duration(EnvDrainIdle, &c.DrainIdle, 15*time.Minute)
	integer := func(name string, dst *int, lo, hi int) {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < lo || n > hi {
				errs = append(errs, fmt.Errorf("%s=%q: want a whole number from %d to %d", name, v, lo, hi))
				return
			}
			*dst = n
		}
	}
	days := 30
	integer(EnvRetentionDays, &days, 1, 3650)
	c.Retention = time.Duration(days) * 24 * time.Hour
	integer(EnvMaxAttempts, &c.MaxAttempts, 1, 100)
	integer(EnvConcurrency, &c.Concurrency, 1, 100)
	if v := getenv(EnvAllowPrivate); v != "" {
		p, err := outbound.ParseCIDRs(strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvAllowPrivate, err))
		}
		c.AllowPrivate = p
	}
	if v := getenv(EnvLogLevel); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: use debug, info, warn or error", EnvLogLevel, v))
		}
	}
	return c, errors.Join(errs...)
}
