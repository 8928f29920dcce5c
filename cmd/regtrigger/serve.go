package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/auth"
	backendpkg "github.com/regtrigger/regtrigger/internal/backend"
	"github.com/regtrigger/regtrigger/internal/backend/embedded"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/outbound"
	"github.com/regtrigger/regtrigger/internal/pebblestore"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/registry"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// serveFlags are the settings of `regtrigger serve`.
type serveFlags struct {
	addr         string
	data         string
	triggers     string
	allow        []string
	registries   []string
	workers      int
	attempts     int
	schedule     []time.Duration
	dedupeWindow time.Duration
	retention    time.Duration
	logLevel     string
	logFormat    string
	drain        time.Duration
	store        string // "" or bolt: the --data file; redis://...: shared with other instances (serve_shared.go)
	queue        string // kafka://... with a redis:// store
}

func newServe() *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "serve [--addr 127.0.0.1:8080] [--data ./regtrigger.db] [--triggers FILE]",
		Short: "Run the receiver and the dispatcher in one process, on an embedded store",
		Long: `serve is regtrigger on one machine: the HTTP receiver registries post to, an embedded
Pebble store (triggers, log records, duplicate keys) and a durable queue feeding
concurrent delivery workers. It runs the same receive -> match -> enqueue -> deliver
-> log code as the cloud functions.

Endpoints:
  POST /v1/notify            the format is detected from the body
  POST /v1/notify/{source}   the format is forced, one of:
                             ` + strings.Join(registry.Sources(), ", ") + `
  GET  /healthz

Registries authenticate as configured per entry:
  --registry 'name[:source]=[scheme:]secret[,next-secret][ max-age=DURATION|off]'
(repeatable, or REGTRIGGER_REGISTRIES with entries separated by ';'). Schemes:
  token   the default: "Authorization: Bearer <token>", or ?token=<token> in the URL
  github  GHCR: X-Hub-Signature-256 = sha256=<HMAC-SHA256 of the body>
  jfrog   Artifactory: X-JFrog-Event-Auth = the secret, or the HMAC-SHA256 of the body
  nexus   Nexus: X-Nexus-Webhook-Signature = HMAC-SHA1 of the body
A signed body whose event time is further than max-age from now (default: the
--dedupe-window) is refused with 403, so a replay is a duplicate or refused.
Without any registry, serve accepts only clients on this machine.
See docs/authentication.md.

A bbolt store file at --data (regtrigger before Pebble) is migrated at start, once:
the file is kept beside it as FILE.migrated-bbolt (--store bolt keeps using bbolt).
Tasks accepted before a crash or restart are delivered after it; SIGINT or SIGTERM
stops accepting, lets in-flight deliveries finish for --drain and re-queues the rest.`,
		Example: `  regtrigger serve --triggers examples/local-triggers.yaml --allow-private 127.0.0.1/32
  REGTRIGGER_REGISTRIES='harbor=0123456789abcdef0123' regtrigger serve --addr :8080`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, c, f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen on this `HOST:PORT` (:8080 for every interface)")
	fl.StringVar(&f.data, "data", "./regtrigger.db", "the embedded store, a `DIR`ectory kept between runs (a bbolt file there from an older regtrigger is migrated at start); with --store bolt a bbolt file, its journal FILE-journal")
	fl.StringVar(&f.triggers, "triggers", "", "apply this trigger `FILE` once the port is bound (creates and updates; never deletes)")
	fl.StringArrayVar(&f.allow, "allow-private", nil, "allow deliveries to this private `CIDR` or address (repeatable; off by default)")
	fl.StringArrayVar(&f.registries, "registry", nil, "a registry allowed to notify, as the `SPEC` 'name[:source]=[scheme:]secret[,next-secret][ max-age=D]' (repeatable)")
	fl.IntVar(&f.workers, "workers", 4, "at most `N` concurrent deliveries")
	fl.IntVar(&f.attempts, "attempts", 8, "`N` attempts per task before it fails")
	fl.DurationSliceVar(&f.schedule, "retry-schedule", delivery.DefaultBackoff, "the `WAITS` after each failed attempt, e.g. 5s,30s,2m (the last repeats), jittered by ±20%")
	fl.DurationVar(&f.dedupeWindow, "dedupe-window", receiver.DefaultDedupeWindow, "a re-sent notification within this `DURATION` makes no new task")
	fl.DurationVar(&f.retention, "retention", record.DefaultRetention, "keep log records and finished tasks for this `DURATION`")
	fl.DurationVar(&f.drain, "drain", 15*time.Second, "on shutdown, let in-flight deliveries finish for this `DURATION`")
	fl.StringVar(&f.logLevel, "log-level", "info", "the `LEVEL`: debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "the `FORMAT` of log lines: text or json")
	fl.StringVar(&f.store, "store", "", "the `STORE`: pebble (the --data directory, the default), bolt (the --data file, regtrigger's store before Pebble), or redis://HOST:PORT/DB to share triggers, log and retries with other serve instances (with --queue)")
	fl.StringVar(&f.queue, "queue", "", "the task topic, as the `URL` kafka://BROKER[,BROKER]/TOPIC, with --store redis://...")
	return c
}

func serve(ctx context.Context, c *cobra.Command, f serveFlags) error {
	logger, err := newLogger(c.ErrOrStderr(), f.logFormat, f.logLevel)
	if err != nil {
		return usageErr("%v", err)
	}
	authn, err := registriesFrom(f.registries)
	if err != nil {
		return usageErr("--registry / REGTRIGGER_REGISTRIES: %v; docs/authentication.md has an entry for each registry", err)
	}
	prefixes, err := outbound.ParseCIDRs(f.allow)
	if err != nil {
		return usageErr("--allow-private: %v", err)
	}
	policy := delivery.DefaultPolicy()
	policy.MaxAttempts, policy.Backoff = f.attempts, f.schedule
	if err := policy.Validate(); err != nil {
		return usageErr("--attempts / --retry-schedule: %v", err)
	}
	if f.workers < 1 {
		return usageErr("--workers %d: at least 1 delivery worker is needed", f.workers)
	}
	client, err := outbound.NewClient(outbound.Config{AllowPrivate: prefixes, Timeout: outbound.MaxTimeout, UserAgent: userAgent()})
	if err != nil {
		return usageErr("--allow-private: %v", err)
	}

	rules := trigger.Rules{AllowPrivate: prefixes}
	if f.store != "" && f.store != storeBolt && f.store != storePebble {
		return serveShared(ctx, logger, f, authn, rules, policy, client)
	}
	if f.queue != "" {
		return usageErr("--queue needs --store redis://...: the embedded store keeps its own queue")
	}
	// The trigger file is read and validated before anything else is
	// touched, and applied only once the port is bound: a serve that
	// cannot start changes nothing.
	var (
		desired      []trigger.Trigger
		fileWarnings []string
	)
	if f.triggers != "" {
		// The file's warnings are logged after the store's line, which
		// stays the first.
		warn := func(msg string) { fileWarnings = append(fileWarnings, msg) }
		if desired, err = trigger.ReadFile(f.triggers, trigger.LoadOptions{Rules: rules, Warn: warn}); err != nil {
			return fail("--triggers %s: %v", f.triggers, err)
		}
	}
	kind := backendpkg.Pebble
	if f.store == storeBolt {
		kind = backendpkg.Bolt
	}
	_, statErr := os.Stat(f.data)
	fresh := errors.Is(statErr, fs.ErrNotExist)
	if kind == backendpkg.Pebble {
		if err := migrateBolt(ctx, logger, f.data, f.retention); err != nil {
			return err
		}
	}
	b, err := embedded.Open(kind+"://"+f.data, embedded.Options{Retention: f.retention})
	if err != nil {
		return openStoreErr(kind, f.data, err, "stop it, or give this serve another --data "+dataWhat(kind))
	}
	defer func() {
		// Nothing is lost if closing fails: every write was durable when
		// it returned.
		if err := b.Close(); err != nil {
			logger.Error("close the store", "error", err.Error())
		}
	}()
	if err := logStore(ctx, logger, kind, b, fresh); err != nil {
		return err
	}
	for _, w := range fileWarnings {
		logger.Warn(w, "file", f.triggers)
	}

	ln, err := listen(f.addr, "--addr")
	if err != nil {
		return err
	}
	defer ln.Close() // after Serve, a no-op; before it, the only close
	if f.triggers != "" {
		changes, err := trigger.Apply(ctx, b.Triggers, desired, trigger.ApplyOptions{Rules: rules, StoredIn: f.data})
		if err != nil {
			return fail("apply --triggers %s: %v", f.triggers, err)
		}
		for _, ch := range changes {
			logger.Info("trigger applied", "trigger", ch.Name, "change", string(ch.Kind), "file", f.triggers)
		}
	}

	queue := b.LocalQueue
	// No Sink: the queue stores each delivery's record with its settlement.
	// Each task's trigger is read from the store when it is sent; the
	// store answers from memory, emptied by every trigger write.
	// Each target's circuit lives in the store's memory: this process is
	// the only one delivering from the file.
	engine := &delivery.Engine{Sender: client, Triggers: b.Triggers, Policy: policy, Health: b.TargetHealth, Disable: b.Triggers, Windows: b.Windows, Limits: &delivery.Limits{}, Logger: logger, UserAgent: userAgent()}
	pool := &dispatcher.Pool{Queue: queue, Engine: engine, Workers: f.workers, Drain: f.drain, Records: b.Records, Logger: logger}
	queue.OnEnqueue = pool.Wake
	svc := &receiver.Service{Triggers: b.Triggers, Queue: queue, Dedupe: b.Dedupe, Records: b.Records, Windows: b.Windows, Logger: logger, DedupeWindow: f.dedupeWindow}
	endpoint := &receiver.Endpoint{Service: svc, Auth: authn, Health: b.Health}

	srv := &http.Server{
		Handler:           endpoint,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if authn.Open() {
		logger.Warn("NO REGISTRY TOKEN CONFIGURED: only clients on this machine are accepted; configure --registry name=token before exposing regtrigger")
	}
	if len(prefixes) > 0 {
		logger.Warn("deliveries to private addresses are allowed", "allow_private", f.allow)
	}
	logger.Info("regtrigger serving", "addr", ln.Addr().String(), "store", kind, "data", f.data, "workers", f.workers, "version", version)

	go purgeLoop(ctx, b.Local, logger)
	return runUntilStopped(ctx, srv, ln, pool, f.drain, logger)
}

// runUntilStopped serves HTTP on ln and runs the delivery pool until ctx
// ends (SIGINT/SIGTERM), then stops accepting notifications and waits for
// the pool to drain its in-flight deliveries.
func runUntilStopped(ctx context.Context, srv *http.Server, ln net.Listener, pool *dispatcher.Pool, drain time.Duration, logger *slog.Logger) error {
	poolDone := make(chan error, 1)
	go func() { poolDone <- pool.Run(ctx) }()
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()

	select {
	case err := <-srvDone:
		return fail("serve HTTP on %s: %v", ln.Addr(), err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: no new notifications; finishing in-flight deliveries", "drain", drain.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("http shutdown", "error", err.Error())
	}
	<-poolDone
	logger.Info("stopped")
	return nil
}

// purgeLoop removes expired log records, kept tasks and duplicate keys
// every minute: the live duplicate keys are also held in memory, which this
// bounds to about the dedupe window's worth. A purge that finds nothing
// expired writes nothing.
func purgeLoop(ctx context.Context, store backendpkg.Local, logger *slog.Logger) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		n, err := store.Purge(ctx)
		if err != nil && ctx.Err() == nil {
			logger.Error("purge expired records", "error", err.Error())
		} else if n > 0 {
			logger.Info("purged expired records", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// registriesFrom reads --registry flags and REGTRIGGER_REGISTRIES.
func registriesFrom(flags []string) (*auth.Authenticator, error) {
	spec := strings.Join(flags, ";")
	if env := os.Getenv("REGTRIGGER_REGISTRIES"); env != "" {
		spec += ";" + env
	}
	cfgs, err := auth.ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	a, err := auth.New(cfgs)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// newLogger builds the process logger.
func newLogger(w interface{ Write([]byte) (int, error) }, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

// logStore writes serve's first log line: the store and what it holds, the
// tasks it recovered in particular (queued before a stop or a crash,
// delivered from now on).
func logStore(ctx context.Context, logger *slog.Logger, kind string, b *backendpkg.Backend, fresh bool) error {
	store := b.Local
	path := store.Path()
	if fresh {
		msg := fmt.Sprintf("store %s: a new file (it and %s-journal are kept between runs; delete both to start afresh)", path, path)
		if kind == backendpkg.Pebble {
			msg = fmt.Sprintf("store %s: a new Pebble directory (kept between runs; delete it to start afresh)", path)
		}
		logger.Info(msg, "store", kind, "data", path, "triggers", 0, "queued", 0)
		return nil
	}
	ts, err := b.Triggers.List(ctx)
	if err != nil {
		return fail("read the triggers of %s: %v", path, err)
	}
	queued, err := store.Len(ctx)
	if err != nil {
		return fail("read the queue of %s: %v", path, err)
	}
	attrs := []any{"store", kind, "data", path, "triggers", len(ts), "queued", queued}
	if due, ok, err := store.NextDue(ctx); err == nil && ok {
		attrs = append(attrs, "next_due", due.UTC().Format(time.RFC3339))
	}
	if dead, err := store.DeadLetters(ctx); err == nil && dead > 0 {
		attrs = append(attrs, "dead_letters", dead)
	}
	logger.Info(fmt.Sprintf("store %s: %s, %s recovered", path, plural(len(ts), "trigger"), plural(queued, "queued task")), attrs...)
	return nil
}

// migrateBolt moves a bbolt store at data (regtrigger before Pebble) to
// a Pebble store at the same path, once, and says so.
func migrateBolt(ctx context.Context, logger *slog.Logger, data string, retention time.Duration) error {
	m, err := pebblestore.MigrateBolt(ctx, data, pebblestore.Options{Retention: retention})
	switch {
	case err != nil:
		return openStoreErr(backendpkg.Bolt, data, err, "stop it before this serve migrates the file to Pebble, or run serve --store bolt")
	case m == nil:
		return nil
	case m.Resumed:
		logger.Info(fmt.Sprintf("store %s: finished migrating it to Pebble; the bbolt file is kept at %s", data, m.OldFile), "data", data, "old_file", m.OldFile)
		return nil
	}
	attrs := []any{"data", data, "old_file", m.OldFile, "purged_records", m.Purged}
	for _, b := range []string{"triggers", "records", "tasks", "pending", "dedupe_expiry", "dead"} {
		attrs = append(attrs, b, m.Keys[b])
	}
	logger.Info(fmt.Sprintf("store %s: migrated the bbolt file to Pebble (a directory now); the bbolt file is kept at %s (and its journal at %s-journal): delete them once serve works", data, m.OldFile, m.OldFile), attrs...)
	return nil
}

// dataWhat is what --data names for an embedded store of kind.
func dataWhat(kind string) string {
	if kind == backendpkg.Pebble {
		return "directory"
	}
	return "file"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// openStoreErr explains a failure to open the store file. A lock held by
// another process names it when the system says which (on Linux), and
// what to do: whatHelps differs between serve and the management commands.
func openStoreErr(kind, path string, err error, whatHelps string) error {
	if !embedded.ErrLocked(err) {
		return fail("%v", err)
	}
	who := "another regtrigger process"
	if pid, ok := embedded.LockHolder(kind, path); ok {
		who += fmt.Sprintf(" (pid %d", pid)
		if cmd := processCommand(pid); cmd != "" {
			who += ": " + cmd
		}
		who += ")"
	}
	return fail("store %s is held by %s; a store %s has one process at a time: %s", path, who, dataWhat(kind), whatHelps)
}

// processCommand is the start of a process's command line ("regtrigger
// serve --addr ..."), where the system shows it (Linux: /proc); "" when
// it does not.
func processCommand(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return ""
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	args[0] = filepath.Base(args[0])
	if len(args) > 4 {
		args = append(args[:4], "...")
	}
	return strings.Join(args, " ")
}
