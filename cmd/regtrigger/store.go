package main

// The management commands (triggers, logs, redeliver) work on one of two
// backends: the bbolt file `serve` uses, or the DynamoDB tables and SQS queue
// of the cloud functions. This file is the one place that chooses and opens
// it; the commands see only trigger.Store, record.Store and taskQueue.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/spf13/cobra"

	"github.com/regtrigger/regtrigger/internal/backend/embedded"
	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dynamostore"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/localqueue"
	"github.com/regtrigger/regtrigger/internal/pebblestore"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// The backends, and the variable that picks one when --store is not given.
const (
	storeBolt   = "bolt"
	storePebble = "pebble"
	storeDynamo = "dynamodb"
	envStore    = "REGTRIGGER_STORE"
)

// Flag names.
const (
	flagStore         = "store"
	flagData          = "data"
	flagTriggersTable = "triggers-table"
	flagRecordsTable  = "records-table"
	flagQueueURL      = "queue-url"
	flagQueue         = "queue"
)

// unusedTable is the dedupe table name handed to dynamostore.New, which
// wants all three names although no management command touches the dedupe
// table. It is not a valid DynamoDB table name, so a call that used it by
// mistake would fail instead of reaching a real table.
const unusedTable = "(dedupe table: not used by the CLI)"

// needs says which parts of the backend a command works on; only their
// flags are registered and only they are required for --store dynamodb.
type needs struct {
	triggers bool // the triggers table
	records  bool // the records table (the trigger log and the task archive)
	queue    bool // the delivery queue
}

// taskQueue is the queue side of a backend as the commands manage it: the
// finished tasks kept for redeliver and the tasks still queued.
type taskQueue interface {
	// Archived returns a finished task kept for redeliver, or an error
	// matching errNotKept or errStillQueued.
	Archived(ctx context.Context, id string) (delivery.Task, error)
	// Requeue puts a task on the queue again.
	Requeue(ctx context.Context, t delivery.Task) error
	// Queued lists the queued tasks of a trigger ("" = all) as far as the
	// backend can see them.
	Queued(ctx context.Context, trigger string) (queueView, error)
	// Cancel takes a trigger's queued tasks off the queue now, recording
	// why, and reports how many; later reports that it cannot, and the
	// trigger's CancelThrough (already set) cancels them when they come due.
	Cancel(ctx context.Context, trigger, why string) (removed int, later bool, err error)
}

// queueView is what Queued can tell.
type queueView struct {
	Tasks []queuedTask
	// Partial: the backend cannot list every queued task; Note says which
	// ones are shown.
	Partial bool
	Note    string
}

// queuedTask is one queued task as the commands print it.
type queuedTask struct {
	ID         string       `json:"id"`
	Trigger    string       `json:"trigger"`
	Revision   int64        `json:"revision,omitempty"`
	Action     event.Action `json:"action"`
	Namespace  string       `json:"namespace"`
	Repository string       `json:"repository"`
	Tag        string       `json:"tag,omitempty"`
	Attempts   int          `json:"attempts"`
	Due        time.Time    `json:"due,omitzero"`
}

var (
	// errNotKept: no finished task with that id is kept.
	errNotKept = errors.New("no finished task with that id is kept")
	// errStillQueued: the task is still waiting for delivery.
	errStillQueued = errors.New("task is still queued")
)

// storeFlags select and open the backend of one command.
type storeFlags struct {
	needs needs
	cmd   *cobra.Command // where the flags live, to tell given from default

	store                                 string
	data                                  string
	triggersTable, recordsTable, queueURL string
	queue                                 string // the kafka:// task topic of a redis:// store
}

// registerStore adds the backend flags for n to c, as persistent flags so
// that subcommands (triggers list, ...) take them too.
func registerStore(c *cobra.Command, n needs) *storeFlags {
	f := &storeFlags{needs: n, cmd: c}
	pf := c.PersistentFlags()
	pf.StringVar(&f.store, flagStore, "", "where triggers and the log live, the `STORE`: pebble (the --data directory serve uses), bolt (the --data file of serve --store bolt), dynamodb (the cloud functions' tables) or redis://HOST:PORT/DB (the Tencent functions' or several serves' Redis); default $"+envStore+", else pebble")
	pf.StringVar(&f.data, flagData, "./regtrigger.db", "the embedded store `PATH` serve uses: a directory (--store pebble), or a file (--store bolt)")
	if n.triggers {
		pf.StringVar(&f.triggersTable, flagTriggersTable, "", "the DynamoDB triggers table's `NAME` (--store dynamodb; default $"+config.EnvTriggersTable+")")
	}
	if n.records {
		pf.StringVar(&f.recordsTable, flagRecordsTable, "", "the DynamoDB records table's `NAME` (--store dynamodb; default $"+config.EnvRecordsTable+")")
	}
	if n.queue {
		pf.StringVar(&f.queueURL, flagQueueURL, "", "the SQS delivery queue's `URL` (--store dynamodb; default $"+config.EnvQueueURL+")")
		pf.StringVar(&f.queue, flagQueue, "", "the task topic, as the `URL` kafka://BROKER[,BROKER]/TOPIC (--store redis://...; default $"+config.EnvQueue+")")
	}
	return f
}

// storeHelp is the paragraph of a command's help that explains the backends.
func storeHelp(n needs) string {
	var what strings.Builder
	line := func(flag, env string) { fmt.Fprintf(&what, "  --%-22s or $%s\n", flag, env) }
	if n.triggers {
		line(flagTriggersTable+" NAME", config.EnvTriggersTable)
	}
	if n.records {
		line(flagRecordsTable+" NAME", config.EnvRecordsTable)
	}
	if n.queue {
		line(flagQueueURL+" URL", config.EnvQueueURL)
	}
	return `Stores: --store pebble (the default) works on the store serve uses, --data; one
process holds it at a time, so stop serve first (--store bolt: a bbolt file, as
regtrigger kept before Pebble). --store dynamodb works on the cloud
functions' resources, named as the functions read them and as the deployed stack's
outputs give them:
` + what.String() + `Region, credentials and endpoints come from the standard AWS configuration
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS,
AWS_MAX_ATTEMPTS). REGTRIGGER_STORE=dynamodb makes dynamodb the default in a shell.
The store is chosen only this way, never guessed from which flags or variables are
set: table variables left in a shell cannot turn a command meant for the local file
into a change to production.`
}

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// kind returns the chosen backend, refusing flags of the other one.
func (f *storeFlags) kind() (string, error) {
	flags := f.cmd.PersistentFlags()
	kind, from := f.store, "--"+flagStore+" "+f.store
	if !flags.Changed(flagStore) {
		kind, from = os.Getenv(envStore), envStore+"="+os.Getenv(envStore)
		if kind == "" {
			kind, from = storePebble, "the default"
		}
	}
	redisStore := strings.HasPrefix(kind, "redis://") || strings.HasPrefix(kind, "rediss://")
	if kind != storeBolt && kind != storePebble && kind != storeDynamo && !redisStore {
		return "", usageErr("%s: use %s, %s or %s, or redis://HOST:PORT/DB", from, storeBolt, storePebble, storeDynamo)
	}
	other := []string{flagData, flagQueue}
	switch {
	case kind == storeBolt, kind == storePebble:
		other = []string{flagTriggersTable, flagRecordsTable, flagQueueURL, flagQueue}
	case redisStore:
		other = []string{flagData, flagTriggersTable, flagRecordsTable, flagQueueURL}
	}
	shown := kind
	if redisStore { // its URL may hold a password: never echo it
		shown, from = "redis", "a redis:// URL"
	}
	for _, name := range other {
		if flags.Lookup(name) != nil && flags.Changed(name) {
			return "", usageErr("--%s does not apply to the %s store (%s): pick the store with --%s", name, shown, from, flagStore)
		}
	}
	return kind, nil
}

// openMode says how a missing bbolt file is treated.
type openMode int

const (
	// mustExist: managing a store that does not exist is a mistake worth saying.
	mustExist openMode = iota
	// mayCreate: triggers apply creates the file.
	mayCreate
	// readIfExists: a dry run reads a missing file as an empty store.
	readIfExists
)

// backend is an opened store.
type backend struct {
	triggers trigger.Store
	records  record.Store
	tasks    taskQueue
	close    func() error
}

// open opens the chosen backend.
func (f *storeFlags) open(ctx context.Context, mode openMode) (*backend, error) {
	kind, err := f.kind()
	if err != nil {
		return nil, err
	}
	if kind == storeDynamo {
		return f.openDynamo(ctx)
	}
	if kind != storeBolt && kind != storePebble {
		return f.openRedis(ctx, kind)
	}
	return f.openLocal(kind, mode)
}

// with runs fn on the opened backend and closes it.
func (f *storeFlags) with(ctx context.Context, mode openMode, fn func(b *backend) error) error {
	b, err := f.open(ctx, mode)
	if err != nil {
		return err
	}
	defer b.close()
	return fn(b)
}

func (f *storeFlags) withTriggers(ctx context.Context, mode openMode, fn func(trigger.Store) error) error {
	return f.with(ctx, mode, func(b *backend) error { return fn(b.triggers) })
}

func (f *storeFlags) withRecords(ctx context.Context, fn func(record.Store) error) error {
	return f.with(ctx, mustExist, func(b *backend) error { return fn(b.records) })
}

// openLocal opens the embedded store of kind (bolt, pebble) at --data.
func (f *storeFlags) openLocal(kind string, mode openMode) (*backend, error) {
	data := f.data
	if kind == storePebble && pebblestore.IsBolt(data) {
		return nil, fail("%s is a bbolt file (regtrigger's store before Pebble): start `regtrigger serve --data %s` once to migrate it (the file is kept as %s%s), or use --store bolt", data, data, data, pebblestore.MigratedSuffix)
	}
	if mode == readIfExists {
		if _, err := os.Stat(data); errors.Is(err, fs.ErrNotExist) {
			return &backend{triggers: noStore{}, close: func() error { return nil }}, nil
		}
	}
	b, err := embedded.Open(kind+"://"+data, embedded.Options{MustExist: mode == mustExist})
	if err != nil {
		return nil, openStoreErr(kind, data, err, "stop serve first, or apply triggers at start with serve --triggers FILE")
	}
	return &backend{
		triggers: b.Triggers,
		records:  b.Records,
		tasks:    localTasks{b.LocalQueue},
		close:    b.Close,
	}, nil
}

// openDynamo checks the names the command needs, loads the AWS
// configuration as the functions do (internal/cloud) and builds the
// adapters. Only credentials may cost I/O here (a profile's SSO, the
// instance role); tables and queue are first touched by the command.
func (f *storeFlags) openDynamo(ctx context.Context) (*backend, error) {
	var missing []string
	name := func(needed bool, value *string, what, flag, env string) {
		if !needed {
			return
		}
		if *value == "" {
			*value = os.Getenv(env)
		}
		if *value == "" {
			missing = append(missing, fmt.Sprintf("the %s (--%s or $%s)", what, flag, env))
		}
	}
	name(f.needs.triggers, &f.triggersTable, "triggers table", flagTriggersTable, config.EnvTriggersTable)
	name(f.needs.records, &f.recordsTable, "records table", flagRecordsTable, config.EnvRecordsTable)
	name(f.needs.queue, &f.queueURL, "queue URL", flagQueueURL, config.EnvQueueURL)
	if len(missing) > 0 {
		return nil, usageErr("--store dynamodb needs %s; the deployed stack's outputs give the names", strings.Join(missing, " and "))
	}
	// The functions' retention, so that logs hides exactly what they
	// consider expired.
	cfg, err := config.FromEnv(func(k string) string {
		if k == config.EnvRetentionDays {
			return os.Getenv(k)
		}
		return ""
	})
	if err != nil {
		return nil, usageErr("%v", err)
	}

	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fail("load the AWS configuration: %v", err)
	}
	if awsCfg.Region == "" {
		return nil, usageErr("--store dynamodb needs an AWS region: set AWS_REGION, or a region in the profile (AWS_PROFILE)")
	}
	if awsCfg.Credentials == nil {
		return nil, fail("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	if _, err := awsCfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fail("no usable AWS credentials: %v\n(set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, as for the aws CLI)", err)
	}

	table := func(t string) string {
		if t == "" {
			return unusedTable
		}
		return t
	}
	store, err := dynamostore.New(dynamostore.Config{
		Client:        dynamodb.NewFromConfig(awsCfg),
		TriggersTable: table(f.triggersTable),
		RecordsTable:  table(f.recordsTable),
		DedupeTable:   unusedTable,
		Retention:     cfg.Retention,
	})
	if err != nil {
		return nil, fail("%v", err)
	}
	triggersRes := awsResource{kind: "DynamoDB table", name: f.triggersTable, flag: flagTriggersTable, env: config.EnvTriggersTable, region: awsCfg.Region}
	recordsRes := awsResource{kind: "DynamoDB table", name: f.recordsTable, flag: flagRecordsTable, env: config.EnvRecordsTable, region: awsCfg.Region}
	queueRes := awsResource{kind: "SQS queue", name: f.queueURL, flag: flagQueueURL, env: config.EnvQueueURL, region: awsCfg.Region}
	records := explainedRecords{store.Records(), recordsRes}
	return &backend{
		triggers: explainedTriggers{store.Triggers(), triggersRes},
		records:  records,
		tasks: cloudTasks{
			archive: store.Records(), archiveRes: recordsRes, log: records,
			queue: &sqsqueue.Queue{Client: sqs.NewFromConfig(awsCfg), URL: f.queueURL}, queueRes: queueRes,
		},
		close: func() error { return nil },
	}, nil
}

// localTasks is an embedded store's TaskQueue with the CLI's errors. It
// sees every queued task and takes cancelled ones off the queue at once.
type localTasks struct{ q *localqueue.TaskQueue }

func (b localTasks) Archived(ctx context.Context, id string) (delivery.Task, error) {
	t, err := b.q.Archived(ctx, id)
	switch {
	case errors.Is(err, localqueue.ErrNoItem):
		return t, fmt.Errorf("%w: %w", errNotKept, err)
	case errors.Is(err, localqueue.ErrQueued):
		return t, fmt.Errorf("%w: %w", errStillQueued, err)
	}
	return t, err
}

func (b localTasks) Requeue(ctx context.Context, t delivery.Task) error {
	err := b.q.Requeue(ctx, t)
	switch {
	case errors.Is(err, localqueue.ErrNoItem):
		return fmt.Errorf("%w: %w", errNotKept, err)
	case errors.Is(err, localqueue.ErrQueued):
		return fmt.Errorf("%w: %w", errStillQueued, err)
	}
	return err
}

func (b localTasks) Queued(ctx context.Context, trigger string) (queueView, error) {
	qs, err := b.q.Queued(ctx, trigger)
	if err != nil {
		return queueView{}, err
	}
	v := queueView{Tasks: make([]queuedTask, len(qs))}
	for i, q := range qs {
		t := q.Task
		v.Tasks[i] = queuedTask{ID: t.ID, Trigger: t.Trigger.Name, Revision: t.Trigger.Version, Action: t.Event.Action,
			Namespace: t.Event.Namespace, Repository: t.Event.Repository, Tag: t.Event.Tag, Attempts: t.Attempt, Due: q.Due}
	}
	return v, nil
}

func (b localTasks) Cancel(ctx context.Context, trigger, why string) (int, bool, error) {
	done, err := b.q.Cancel(ctx, trigger, why)
	return len(done), false, err
}

// cloudTasks is the cloud backend's queue side: the archive in the records
// table for redeliver, the SQS queue to send to, and the trigger log to
// tell which tasks wait for a retry.
//
// SQS can neither look a message up by id nor list or delete chosen
// messages. So Archived cannot return errStillQueued (the archive keeps a
// task after it was redelivered: redelivering twice sends it twice, with
// one webhook-id), Queued shows only the tasks the log says wait for a
// retry, and Cancel removes nothing: the trigger's CancelThrough cancels
// each task when the dispatcher receives it.
type cloudTasks struct {
	archive interface {
		Archived(ctx context.Context, id string) (delivery.Task, error)
	}
	archiveRes awsResource
	log        record.Store
	queue      interface {
		Enqueue(ctx context.Context, tasks []delivery.Task) error
	}
	queueRes awsResource
}

func (c cloudTasks) Archived(ctx context.Context, id string) (delivery.Task, error) {
	t, err := c.archive.Archived(ctx, id)
	if errors.Is(err, dynamostore.ErrNotArchived) {
		return t, fmt.Errorf("%w: %w", errNotKept, err)
	}
	return t, c.archiveRes.explain(err)
}

func (c cloudTasks) Requeue(ctx context.Context, t delivery.Task) error {
	if err := c.queue.Enqueue(ctx, []delivery.Task{t}); err != nil {
		return c.queueRes.explain(fmt.Errorf("queue task %s: %w", t.ID, err))
	}
	return nil
}

// maxLogScan bounds how many records Queued reads.
const maxLogScan = 1000

func (c cloudTasks) Queued(ctx context.Context, trigger string) (queueView, error) {
	recs, err := c.log.List(ctx, record.Query{Trigger: trigger, Limit: maxLogScan})
	if err != nil {
		return queueView{}, fmt.Errorf("read the trigger log: %w", err)
	}
	v := queueView{Partial: true, Note: "SQS cannot list its messages: shown are the tasks whose last attempt in the trigger log " +
		"is retrying; tasks not attempted yet are queued too but not shown"}
	seen := map[string]bool{}
	for _, r := range recs { // newest first: the first record of a task is its last
		if r.TaskID == "" || seen[r.TaskID] || r.Status == record.Untriggered {
			continue
		}
		seen[r.TaskID] = true
		if r.Status == record.Retrying {
			v.Tasks = append(v.Tasks, queuedTask{ID: r.TaskID, Trigger: r.Trigger, Revision: r.TriggerVersion, Action: r.Action,
				Namespace: r.Namespace, Repository: r.Repository, Tag: r.Tag, Attempts: r.Attempt, Due: r.NextAttemptAt})
		}
	}
	slices.SortFunc(v.Tasks, func(a, b queuedTask) int { return a.Due.Compare(b.Due) })
	return v, nil
}

func (cloudTasks) Cancel(context.Context, string, string) (int, bool, error) { return 0, true, nil }

// awsResource is a table or queue as the user named it, to turn SDK errors
// into ones that say what to fix.
type awsResource struct {
	kind      string // "DynamoDB table" or "SQS queue"
	name      string
	flag, env string
	region    string
}

// hintError is an error with a line saying what to do about it.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() + "\n(" + e.hint + ")" }
func (e *hintError) Unwrap() error { return e.err }

// explain adds a hint to the AWS errors a user can fix (unreachable
// endpoint, missing table or queue, access denied, refused credentials)
// and returns every other error, nil included, as it is.
func (r awsResource) explain(err error) error {
	if err == nil {
		return nil
	}
	if hint := r.hint(err); hint != "" {
		return &hintError{err: err, hint: hint}
	}
	return err
}

func (r awsResource) hint(err error) string {
	service, endpointEnv := "DynamoDB", "AWS_ENDPOINT_URL_DYNAMODB"
	if r.kind == "SQS queue" {
		service, endpointEnv = "SQS", "AWS_ENDPOINT_URL_SQS"
	}
	var send *smithyhttp.RequestSendError
	if errors.As(err, &send) {
		where := ""
		var ue *url.Error
		if errors.As(err, &ue) {
			if u, perr := url.Parse(ue.URL); perr == nil {
				where = " at " + u.Scheme + "://" + u.Host
			}
		}
		return fmt.Sprintf("cannot reach %s%s: check AWS_REGION (%s), %s if you use one, and the network", service, where, r.region, endpointEnv)
	}
	var (
		noTable *dynamotypes.ResourceNotFoundException
		noQueue *sqstypes.QueueDoesNotExist
		api     smithy.APIError
	)
	switch {
	case errors.As(err, &noTable), errors.As(err, &noQueue):
		return r.missing()
	case !errors.As(err, &api):
		return ""
	}
	switch code := api.ErrorCode(); {
	case code == "AWS.SimpleQueueService.NonExistentQueue" || code == "QueueDoesNotExist":
		return r.missing()
	case strings.HasPrefix(code, "AccessDenied"):
		return fmt.Sprintf("access denied: the AWS identity in use needs %s on the %s %q", r.permission(err), r.kind, r.name)
	case code == "UnrecognizedClientException" || code == "InvalidClientTokenId" || code == "InvalidSignatureException" ||
		code == "SignatureDoesNotMatch" || code == "ExpiredToken" || code == "ExpiredTokenException":
		return fmt.Sprintf("%s refused the credentials (%s): check AWS_PROFILE or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, and that they are current", service, code)
	}
	return ""
}

func (r awsResource) missing() string {
	return fmt.Sprintf("the %s %q does not exist in region %s: check --%s / $%s (the deployed stack's outputs name it) and AWS_REGION", r.kind, r.name, r.region, r.flag, r.env)
}

// permission names the IAM action the failed operation needs.
func (r awsResource) permission(err error) string {
	var op *smithy.OperationError
	if !errors.As(err, &op) {
		return "the permissions listed in docs/dynamodb.md"
	}
	switch op.ServiceID {
	case "SQS":
		action := op.OperationName
		if action == "SendMessageBatch" { // authorised as SendMessage
			action = "SendMessage"
		}
		return "sqs:" + action
	case "DynamoDB":
		if op.OperationName == "Query" {
			return "dynamodb:Query (on the table and its indexes, table/" + r.name + "/index/*)"
		}
		return "dynamodb:" + op.OperationName
	}
	return op.ServiceID + ":" + op.OperationName
}

// explainedTriggers is the DynamoDB trigger store with explained errors.
type explainedTriggers struct {
	s   trigger.Store
	res awsResource
}

var _ trigger.Store = explainedTriggers{}

func (e explainedTriggers) Namespace(ctx context.Context, namespace string) ([]trigger.Trigger, error) {
	ts, err := e.s.Namespace(ctx, namespace)
	return ts, e.res.explain(err)
}

func (e explainedTriggers) Get(ctx context.Context, name string) (trigger.Trigger, error) {
	t, err := e.s.Get(ctx, name)
	return t, e.res.explain(err)
}

func (e explainedTriggers) List(ctx context.Context) ([]trigger.Trigger, error) {
	ts, err := e.s.List(ctx)
	return ts, e.res.explain(err)
}

func (e explainedTriggers) Create(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	t, err := e.s.Create(ctx, t)
	return t, e.res.explain(err)
}

func (e explainedTriggers) Update(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	t, err := e.s.Update(ctx, t)
	return t, e.res.explain(err)
}

func (e explainedTriggers) Delete(ctx context.Context, name string, version int64) error {
	return e.res.explain(e.s.Delete(ctx, name, version))
}

// explainedRecords is the DynamoDB record store with explained errors.
type explainedRecords struct {
	s   record.Store
	res awsResource
}

var _ record.Store = explainedRecords{}

func (e explainedRecords) Put(ctx context.Context, r record.Record) error {
	return e.res.explain(e.s.Put(ctx, r))
}

func (e explainedRecords) List(ctx context.Context, q record.Query) ([]record.Record, error) {
	rs, err := e.s.List(ctx, q)
	return rs, e.res.explain(err)
}

// noStore is the store a dry run sees when no store file exists yet: empty.
// Dry runs never write, so its writes are never called.
type noStore struct{}

var _ trigger.Store = noStore{}

func (noStore) Namespace(context.Context, string) ([]trigger.Trigger, error) { return nil, nil }
func (noStore) Get(_ context.Context, name string) (trigger.Trigger, error) {
	return trigger.Trigger{}, trigger.ErrNotFound
}
func (noStore) List(context.Context) ([]trigger.Trigger, error) { return nil, nil }
func (noStore) Create(context.Context, trigger.Trigger) (trigger.Trigger, error) {
	return trigger.Trigger{}, errors.New("no store file")
}
func (noStore) Update(context.Context, trigger.Trigger) (trigger.Trigger, error) {
	return trigger.Trigger{}, errors.New("no store file")
}
func (noStore) Delete(context.Context, string, int64) error { return errors.New("no store file") }
