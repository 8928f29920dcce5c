package main

// The management commands on --store dynamodb: the built binary against
// dynalite and fauxqs (internal/testserver), started once, by the first test
// that needs them, and stopped by TestMain. Each test gets its own tables
// and queue; the CLI reaches them the way a user's shell would, through the
// AWS SDK's standard environment variables.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dynamostore"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
	"github.com/regtrigger/regtrigger/internal/testserver"
	"github.com/regtrigger/regtrigger/internal/teststack"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// awsServers are dynalite and fauxqs, started on first use.
var awsServers struct {
	once             sync.Once
	dynalite, fauxqs *testserver.Server
	err              error
}

// startAWSServers starts dynalite and fauxqs once and returns their URLs.
func startAWSServers(t *testing.T) (dynamoURL, sqsURL string) {
	t.Helper()
	awsServers.once.Do(func() {
		if awsServers.dynalite, awsServers.err = testserver.Dynalite(); awsServers.err != nil {
			return
		}
		awsServers.fauxqs, awsServers.err = testserver.Fauxqs()
	})
	if awsServers.err != nil {
		t.Fatalf("start the AWS test servers: %v", awsServers.err)
	}
	return awsServers.dynalite.URL, awsServers.fauxqs.URL
}

// stopAWSServers stops what startAWSServers started (TestMain calls it).
func stopAWSServers() {
	for _, s := range []*testserver.Server{awsServers.dynalite, awsServers.fauxqs} {
		if s != nil {
			s.Stop()
		}
	}
}

// cloudStack is one test's tables and queue, and the CLI's environment.
type cloudStack struct {
	store    *dynamostore.Store
	sqs      *sqs.Client
	names    dynamostore.TableNames
	queueURL string
	env      []string
}

func newCloudStack(t *testing.T) *cloudStack {
	t.Helper()
	dynamoURL, sqsURL := startAWSServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := teststack.New(ctx, dynamoURL, sqsURL, "cli")
	if err != nil {
		t.Fatal(err)
	}
	return &cloudStack{store: st.Store, sqs: st.SQS, names: st.Tables, queueURL: st.QueueURL, env: cliEnv(dynamoURL, sqsURL)}
}

// cliEnv is this process's environment without anything that would choose
// a store, a table or an AWS account, plus the test servers' settings.
func cliEnv(dynamoURL, sqsURL string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "REGTRIGGER_") ||
			slices.Contains([]string{"TRIGGERS_TABLE", "RECORDS_TABLE", "DEDUPE_TABLE", "QUEUE_URL", "RETENTION_DAYS"}, k) {
			continue
		}
		env = append(env, kv)
	}
	return append(env, testserver.AWSEnv(dynamoURL, sqsURL)...)
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// runCLI runs the binary with env (later entries win over earlier ones).
func runCLI(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run regtrigger %v: %v", args, err)
	}
	return r
}

// step is one CLI run and what it must give.
type step struct {
	name string
	args []string
	env  []string // added to the stack's environment
	code int
	want []string // in stdout or stderr
	not  []string // in neither
	// count: substring -> how often stdout holds it
	count map[string]int
	// check runs after the command, on its result.
	check func(t *testing.T, r result)
}

func (s *cloudStack) run(t *testing.T, steps []step) {
	t.Helper()
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := runCLI(t, append(append([]string(nil), s.env...), st.env...), st.args...)
			all := r.stdout + r.stderr
			if r.code != st.code {
				t.Errorf("regtrigger %v: exit %d, want %d\nstdout: %s\nstderr: %s", st.args, r.code, st.code, r.stdout, r.stderr)
			}
			for _, w := range st.want {
				if !strings.Contains(all, w) {
					t.Errorf("regtrigger %v: output lacks %q\nstdout: %s\nstderr: %s", st.args, w, r.stdout, r.stderr)
				}
			}
			for _, n := range st.not {
				if strings.Contains(all, n) {
					t.Errorf("regtrigger %v: output holds %q\nstdout: %s\nstderr: %s", st.args, n, r.stdout, r.stderr)
				}
			}
			for sub, n := range st.count {
				if got := strings.Count(r.stdout, sub); got != n {
					t.Errorf("regtrigger %v: %q %d times, want %d\nstdout: %s", st.args, sub, got, n, r.stdout)
				}
			}
			if st.check != nil {
				st.check(t, r)
			}
		})
	}
}

// secrets are the values that must never be printed.
var secrets = []string{"querysecret", "headersecret", e2eSecret}

// jsonTriggers decodes `triggers list|get -o json`.
func jsonTriggers(t *testing.T, out string) []trigger.Trigger {
	t.Helper()
	return decodeLines[trigger.Trigger](t, out)
}

func triggerNames(ts []trigger.Trigger) []string {
	names := make([]string, len(ts))
	for i, tr := range ts {
		names[i] = tr.Name
	}
	return names
}

// storedNames lists the triggers table directly.
func (s *cloudStack) storedNames(t *testing.T) []string {
	t.Helper()
	ts, err := s.store.Triggers().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return triggerNames(ts)
}

func (s *cloudStack) stored(t *testing.T, name string) trigger.Trigger {
	t.Helper()
	tr, err := s.store.Triggers().Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestDynamoTriggerManagement(t *testing.T) {
	s := newCloudStack(t)
	dir := t.TempDir()
	file := writeTriggers(t, dir, "http://hooks.example.com:8080")
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	updated := filepath.Join(dir, "updated.yaml")
	if err := os.WriteFile(updated, bytes.Replace(orig, []byte(`tag: "v1.*"`), []byte(`tag: "v2.*"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(dir, "small.yaml")
	if err := os.WriteFile(small, []byte("triggers:\n  - name: only\n    actions: [pushImage]\n    namespace: x\n    url: https://example.com/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := []string{"--store", "dynamodb", "--triggers-table", s.names.Triggers}
	args := func(a ...string) []string { return append(a, db...) }
	all := []string{"deploy-nginx", "only-deletes", "wrong-tag"}

	s.run(t, []step{
		{name: "dry run on empty tables", args: args("triggers", "apply", "-f", file, "--dry-run"),
			count: map[string]int{"would be created": 3},
			check: func(t *testing.T, _ result) {
				if got := s.storedNames(t); len(got) != 0 {
					t.Errorf("a dry run stored %v", got)
				}
			}},
		{name: "apply creates", args: args("triggers", "apply", "-f", file), count: map[string]int{"created": 3},
			check: func(t *testing.T, _ result) {
				if got := s.storedNames(t); !slices.Equal(got, all) {
					t.Errorf("stored %v, want %v", got, all)
				}
				tr := s.stored(t, "deploy-nginx")
				if tr.Version != 1 || tr.Headers["X-Deploy-Key"] != "headersecret" || !slices.Equal(tr.Secrets, []string{e2eSecret}) || !strings.HasSuffix(tr.URL, "?key=querysecret") {
					t.Errorf("stored %+v", tr)
				}
			}},
		{name: "apply again changes nothing", args: args("triggers", "apply", "-f", file), count: map[string]int{"unchanged": 3},
			check: func(t *testing.T, _ result) {
				if v := s.stored(t, "deploy-nginx").Version; v != 1 {
					t.Errorf("version %d after an unchanged apply", v)
				}
			}},
		{name: "apply updates with a conditional write", args: args("triggers", "apply", "-f", updated, "-o", "json"),
			want: []string{`{"name":"deploy-nginx","change":"updated","fields":["tag"]}`}, count: map[string]int{"unchanged": 2},
			check: func(t *testing.T, _ result) {
				if tr := s.stored(t, "deploy-nginx"); tr.Version != 2 || tr.Tag != "v2.*" {
					t.Errorf("after update: version %d tag %q", tr.Version, tr.Tag)
				}
			}},
		{name: "list as a table", args: args("triggers", "list"),
			want: []string{"NAME", "ENABLED", "deploy-nginx", "only-deletes", "wrong-tag", "?<redacted>", "v2.*"}, not: secrets},
		{name: "list as json", args: args("triggers", "list", "-o", "json"), not: secrets,
			check: func(t *testing.T, r result) {
				ts := jsonTriggers(t, r.stdout)
				if got := triggerNames(ts); !slices.Equal(got, all) {
					t.Errorf("listed %v, want %v", got, all)
				}
				if h := ts[0].Headers["X-Deploy-Key"]; h != "<redacted>" {
					t.Errorf("header shown as %q", h)
				}
			}},
		{name: "get as json", args: args("triggers", "get", "deploy-nginx", "-o", "json"), not: secrets,
			check: func(t *testing.T, r result) {
				ts := jsonTriggers(t, r.stdout)
				if len(ts) != 1 || ts[0].Name != "deploy-nginx" || ts[0].Version != 2 || !slices.Equal(ts[0].Secrets, []string{"<redacted>"}) {
					t.Errorf("get: %+v", ts)
				}
			}},
		{name: "get as a table", args: args("triggers", "get", "deploy-nginx", "-o", "table"), not: secrets,
			want: []string{"name:", "deploy-nginx", "X-Deploy-Key: <redacted>", "1 set (not shown)"}},
		{name: "get as yaml", args: args("triggers", "get", "deploy-nginx", "-o", "yaml"), not: secrets,
			want: []string{"name: deploy-nginx\n", "X-Deploy-Key: <redacted>"}},
		{name: "disable", args: args("triggers", "disable", "deploy-nginx"), want: []string{"deploy-nginx disabled"},
			check: func(t *testing.T, _ result) {
				if s.stored(t, "deploy-nginx").Enabled {
					t.Error("still enabled in the table")
				}
			}},
		{name: "disable again", args: args("triggers", "disable", "deploy-nginx"), want: []string{"deploy-nginx was already disabled"}},
		{name: "list shows it disabled", args: args("triggers", "list", "-o", "json"), want: []string{`"name":"deploy-nginx","enabled":false`}},
		{name: "enable", args: args("triggers", "enable", "deploy-nginx"), want: []string{"deploy-nginx enabled"},
			check: func(t *testing.T, _ result) {
				if !s.stored(t, "deploy-nginx").Enabled {
					t.Error("still disabled in the table")
				}
			}},
		{name: "delete", args: args("triggers", "delete", "wrong-tag"), want: []string{"wrong-tag deleted"},
			check: func(t *testing.T, _ result) {
				if _, err := s.store.Triggers().Get(context.Background(), "wrong-tag"); !errors.Is(err, trigger.ErrNotFound) {
					t.Errorf("after delete: %v", err)
				}
			}},
		{name: "get a deleted trigger", args: args("triggers", "get", "wrong-tag"), code: 1, want: []string{`no trigger named "wrong-tag"`}},
		{name: "delete an unknown trigger", args: args("triggers", "delete", "nope"), code: 1, want: []string{`no trigger named "nope"`}},
		{name: "enable an unknown trigger", args: args("triggers", "enable", "nope"), code: 1, want: []string{`no trigger named "nope"`}},
		{name: "prune dry run", args: args("triggers", "apply", "-f", small, "--prune", "--dry-run"),
			count: map[string]int{"would be deleted": 2, "would be created": 1},
			check: func(t *testing.T, _ result) {
				if got := s.storedNames(t); !slices.Equal(got, []string{"deploy-nginx", "only-deletes"}) {
					t.Errorf("a dry run changed the table: %v", got)
				}
			}},
		{name: "prune", args: args("triggers", "apply", "-f", small, "--prune"), count: map[string]int{"deleted": 2, "created": 1},
			check: func(t *testing.T, _ result) {
				if got := s.storedNames(t); !slices.Equal(got, []string{"only"}) {
					t.Errorf("after prune: %v", got)
				}
			}},
		{name: "invalid file", args: args("triggers", "apply", "-f", "../../internal/trigger/testdata/invalid.yaml"), code: 1, want: []string{"problem(s)"},
			check: func(t *testing.T, _ result) {
				if got := s.storedNames(t); !slices.Equal(got, []string{"only"}) {
					t.Errorf("an invalid file changed the table: %v", got)
				}
			}},
		{name: "store and table from the environment", args: []string{"triggers", "list"},
			env:  []string{"REGTRIGGER_STORE=dynamodb", "TRIGGERS_TABLE=" + s.names.Triggers},
			want: []string{"only", "https://example.com/"}},
		{name: "bad output", args: args("triggers", "list", "-o", "xml"), code: 2, want: []string{"--output"}},
	})
}

func TestDynamoLogs(t *testing.T) {
	s := newCloudStack(t)
	now := time.Now().UTC()
	put := []record.Record{
		{TaskID: "tsk_1", Trigger: "a", Status: record.Success, HTTPStatus: 200, Attempt: 1, Time: now.Add(-3 * time.Hour)},
		{TaskID: "tsk_2", Trigger: "a", Status: record.Failed, HTTPStatus: 404, Attempt: 1, ErrorClass: record.ClassHTTP4xx, Error: "404 Not Found", Time: now.Add(-2 * time.Hour)},
		{TaskID: "tsk_3", Trigger: "b", Status: record.Retrying, HTTPStatus: 503, Attempt: 1, ErrorClass: record.ClassHTTP5xx, Time: now.Add(-30 * time.Minute)},
		{TaskID: "tsk_3", Trigger: "b", Status: record.Success, HTTPStatus: 200, Attempt: 2, Time: now.Add(-20 * time.Minute)},
		{TaskID: "tsk_5", Trigger: "c", Status: record.Untriggered, Reason: "tag latest does not match v1.*", Time: now.Add(-10 * time.Minute)},
	}
	for _, r := range put {
		r.Action, r.Namespace, r.Repository, r.Tag = event.PushImage, "public", "nginx", "v1.2"
		if err := s.store.Records().Put(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	db := []string{"--store", "dynamodb", "--records-table", s.names.Records}

	// keys names records by task and attempt, in the order listed.
	keys := func(t *testing.T, out string) []string {
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			var r record.Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			got = append(got, r.TaskID+"/"+strconv.Itoa(r.Attempt))
		}
		return got
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"everything, newest first", nil, []string{"tsk_5/0", "tsk_3/2", "tsk_3/1", "tsk_2/1", "tsk_1/1"}},
		{"one trigger", []string{"--trigger", "a"}, []string{"tsk_2/1", "tsk_1/1"}},
		{"one status", []string{"--status", "success"}, []string{"tsk_3/2", "tsk_1/1"}},
		{"one task", []string{"--task", "tsk_3"}, []string{"tsk_3/2", "tsk_3/1"}},
		{"since", []string{"--since", "1h"}, []string{"tsk_5/0", "tsk_3/2", "tsk_3/1"}},
		{"limit", []string{"--limit", "2"}, []string{"tsk_5/0", "tsk_3/2"}},
		{"trigger and status", []string{"--trigger", "b", "--status", "retrying"}, []string{"tsk_3/1"}},
		{"task and status", []string{"--task", "tsk_3", "--status", "success"}, []string{"tsk_3/2"}},
		{"status and since", []string{"--status", "failed", "--since", "1h"}, nil},
		{"unknown trigger", []string{"--trigger", "nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, s.env, append(append([]string{"logs", "-o", "json"}, db...), tc.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if got := keys(t, r.stdout); !slices.Equal(got, tc.want) {
				t.Errorf("records %v, want %v", got, tc.want)
			}
		})
	}

	s.run(t, []step{
		{name: "table", args: append([]string{"logs", "--trigger", "a"}, db...),
			want: []string{"TIME", "TRIGGER", "STATUS", "failed", "404", "http_4xx: 404 Not Found", "public/nginx", "tsk_2"}},
		{name: "untriggered shows the reason", args: append([]string{"logs", "--status", "untriggered"}, db...),
			want: []string{"untriggered", "tag latest does not match v1.*"}},
		{name: "bad status", args: append([]string{"logs", "--status", "bogus"}, db...), code: 2, want: []string{"--status"}},
		{name: "table from the environment", args: []string{"logs", "--task", "tsk_2"},
			env:  []string{"REGTRIGGER_STORE=dynamodb", "RECORDS_TABLE=" + s.names.Records},
			want: []string{"tsk_2", "failed"}, not: []string{"tsk_1"}},
	})
}

// receive takes the messages waiting in the queue.
func (s *cloudStack) receive(t *testing.T) []sqstypes.Message {
	t.Helper()
	out, err := s.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(s.queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
		MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range out.Messages {
		if _, err := s.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(s.queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	return out.Messages
}

// archivedTask stores the deploy-nginx trigger (unless it is stored) and
// archives a finished task of it after attempts attempts, as the
// dispatcher does.
func (s *cloudStack) archivedTask(t *testing.T, id string, attempts int) delivery.Task {
	t.Helper()
	tr := trigger.Trigger{
		Name: "deploy-nginx", Enabled: true, Actions: []event.Action{event.PushImage}, Namespace: "public",
		URL: "https://hooks.example.com/deploy?key=querysecret", Headers: map[string]string{"X-Deploy-Key": "headersecret"},
		Secrets: []string{e2eSecret}, Format: "tcr",
	}
	stored, err := s.store.Triggers().Create(context.Background(), tr)
	if errors.Is(err, trigger.ErrExists) {
		stored, err = s.store.Triggers().Get(context.Background(), tr.Name)
	}
	if err != nil {
		t.Fatal(err)
	}
	ev := event.Event{Source: "tcr", Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: "v1.2"}
	task := delivery.NewTask(id, &stored, ev, time.Now().Add(-time.Hour))
	task.Attempt = attempts
	if err := s.store.Records().Archive(context.Background(), task); err != nil {
		t.Fatal(err)
	}
	return task
}

func TestDynamoRedeliver(t *testing.T) {
	s := newCloudStack(t)
	task := s.archivedTask(t, "tsk_0123456789abcdef0123456789abcdef", 8)
	db := []string{"--store", "dynamodb", "--triggers-table", s.names.Triggers, "--records-table", s.names.Records, "--queue-url", s.queueURL}
	args := func(a ...string) []string { return append(a, db...) }
	triggers := s.store.Triggers()
	// edit changes the trigger in the table.
	edit := func(t *testing.T, change func(*trigger.Trigger)) {
		t.Helper()
		tr, err := triggers.Get(context.Background(), "deploy-nginx")
		if err != nil {
			t.Fatal(err)
		}
		change(&tr)
		if _, err := triggers.Update(context.Background(), tr); err != nil {
			t.Fatal(err)
		}
	}

	// queued checks that the queue holds n copies of task with attempt 0,
	// referring to the trigger's current revision.
	queued := func(n int) func(t *testing.T, _ result) {
		return func(t *testing.T, _ result) {
			msgs := s.receive(t)
			if len(msgs) != n {
				t.Fatalf("%d message(s) on the queue, want %d", len(msgs), n)
			}
			for _, m := range msgs {
				got, err := sqsqueue.Decode(aws.ToString(m.Body))
				if err != nil {
					t.Fatal(err)
				}
				current, err := triggers.Get(context.Background(), "deploy-nginx")
				if err != nil {
					t.Fatal(err)
				}
				want := task.Requeued(&current)
				if !reflect.DeepEqual(got, want) || want.Attempt != 0 {
					t.Errorf("queued task %+v, want %+v (the archived one with attempt 0, at the current revision)", got, want)
				}
				for _, leak := range secrets {
					if strings.Contains(aws.ToString(m.Body), leak) {
						t.Errorf("the queue message holds %q", leak)
					}
				}
				attrs := m.MessageAttributes
				if aws.ToString(attrs[sqsqueue.AttrTaskID].StringValue) != task.ID || aws.ToString(attrs[sqsqueue.AttrAttempt].StringValue) != "0" {
					t.Errorf("message attributes task_id %q attempt %q", aws.ToString(attrs[sqsqueue.AttrTaskID].StringValue), aws.ToString(attrs[sqsqueue.AttrAttempt].StringValue))
				}
			}
		}
	}
	noQueue := strings.Replace(s.queueURL, "cli-tasks-", "no-such-queue-", 1)
	s.run(t, []step{
		{name: "archived task", args: args("redeliver", task.ID), want: []string{task.ID + " queued for delivery"}, not: secrets, check: queued(1)},
		{name: "the archive keeps it", args: args("redeliver", task.ID), want: []string{task.ID + " queued for delivery"}, check: queued(1)},
		{name: "twice in a row sends it twice", args: args("redeliver", task.ID), check: func(t *testing.T, r result) {
			if r := runCLI(t, s.env, args("redeliver", task.ID)...); r.code != 0 {
				t.Fatalf("second redeliver: exit %d: %s", r.code, r.stderr)
			}
			queued(2)(t, r)
		}},
		{name: "unknown task", args: args("redeliver", "tsk_unknown"), code: 1,
			want: []string{`no task with id "tsk_unknown" (untriggered events have no task`}, check: queued(0)},
		{name: "env only", args: []string{"redeliver", task.ID},
			env:  []string{"REGTRIGGER_STORE=dynamodb", "TRIGGERS_TABLE=" + s.names.Triggers, "RECORDS_TABLE=" + s.names.Records, "QUEUE_URL=" + s.queueURL},
			want: []string{"queued for delivery"}, check: queued(1)},
		{name: "queue that does not exist", code: 1,
			args: []string{"redeliver", task.ID, "--store", "dynamodb", "--triggers-table", s.names.Triggers, "--records-table", s.names.Records, "--queue-url", noQueue},
			want: []string{"SQS queue", noQueue, "does not exist", "--queue-url", "QUEUE_URL"}, not: secrets},
	})
	// The task refers to its trigger: redeliver sends it to the trigger as
	// it is now, and refuses when there is none to send to.
	edit(t, func(tr *trigger.Trigger) { tr.URL = "https://fixed.example.com/deploy" })
	s.run(t, []step{
		{name: "after the URL was fixed", args: args("redeliver", task.ID), want: []string{"queued for delivery to trigger deploy-nginx (revision 2)"}, check: queued(1)},
	})
	edit(t, func(tr *trigger.Trigger) { tr.Enabled = false })
	s.run(t, []step{
		{name: "disabled trigger", args: args("redeliver", task.ID), code: 1, want: []string{"is disabled", "regtrigger triggers enable deploy-nginx"}, check: queued(0)},
	})
	if err := triggers.Delete(context.Background(), "deploy-nginx", 0); err != nil {
		t.Fatal(err)
	}
	s.run(t, []step{
		{name: "deleted trigger", args: args("redeliver", task.ID), code: 1, want: []string{`its trigger "deploy-nginx" (namespace public) was deleted`}, check: queued(0)},
	})
}

func TestDynamoErrors(t *testing.T) {
	s := newCloudStack(t)
	s.archivedTask(t, "tsk_archived", 1)
	port, err := testserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://127.0.0.1:" + strconv.Itoa(port)
	data := filepath.Join(t.TempDir(), "rt.db")
	triggers := []string{"--store", "dynamodb", "--triggers-table", s.names.Triggers}
	quick := func(t *testing.T, r result) {
		if r.took > 10*time.Second {
			t.Errorf("took %v to give up", r.took)
		}
	}
	s.run(t, []step{
		// Usage errors: exit 2 before anything is sent.
		{name: "no triggers table", args: []string{"triggers", "list", "--store", "dynamodb"}, code: 2,
			want: []string{"--triggers-table", "$TRIGGERS_TABLE", "stack's outputs"}},
		{name: "no records table", args: []string{"logs", "--store", "dynamodb"}, code: 2,
			want: []string{"--records-table", "$RECORDS_TABLE"}},
		{name: "no queue URL", args: []string{"redeliver", "tsk_archived", "--store", "dynamodb", "--triggers-table", s.names.Triggers, "--records-table", s.names.Records}, code: 2,
			want: []string{"--queue-url", "$QUEUE_URL"}, not: []string{"--records-table"}},
		{name: "no queue URL from an empty variable", args: []string{"redeliver", "tsk_archived", "--store", "dynamodb", "--triggers-table", s.names.Triggers, "--records-table", s.names.Records},
			env: []string{"QUEUE_URL="}, code: 2, want: []string{"--queue-url"}},
		{name: "unknown store", args: []string{"triggers", "list", "--store", "s3"}, code: 2, want: []string{"--store s3: use bolt, pebble or dynamodb"}},
		{name: "unknown store from the environment", args: []string{"logs"}, env: []string{"REGTRIGGER_STORE=dynamo"}, code: 2,
			want: []string{"REGTRIGGER_STORE=dynamo: use bolt, pebble or dynamodb"}},
		{name: "--data with dynamodb", args: append([]string{"triggers", "list", "--data", data}, triggers...), code: 2,
			want: []string{"--data does not apply to the dynamodb store"}},
		{name: "table flag with bolt", args: []string{"logs", "--data", data, "--records-table", s.names.Records}, code: 2,
			want: []string{"--records-table does not apply to the pebble store (the default)"}},
		{name: "--store bolt wins over the environment", args: []string{"triggers", "list", "--store", "bolt", "--data", data},
			env: []string{"REGTRIGGER_STORE=dynamodb", "TRIGGERS_TABLE=" + s.names.Triggers}, code: 1, want: []string{"no store file"}},
		{name: "no region", args: append([]string{"triggers", "list"}, triggers...), env: []string{"AWS_REGION="}, code: 2,
			want: []string{"AWS_REGION"}},
		{name: "bad RETENTION_DAYS", args: []string{"logs", "--store", "dynamodb", "--records-table", s.names.Records},
			env: []string{"RETENTION_DAYS=forever"}, code: 2, want: []string{"RETENTION_DAYS"}},

		// The work fails: exit 1, saying what to fix.
		{name: "no credentials", args: append([]string{"triggers", "list"}, triggers...),
			env: []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="}, code: 1, want: []string{"no usable AWS credentials", "AWS_PROFILE"}, check: quick},
		{name: "DynamoDB unreachable", args: append([]string{"triggers", "list"}, triggers...),
			env: []string{"AWS_ENDPOINT_URL_DYNAMODB=" + closed, "AWS_MAX_ATTEMPTS=1"}, code: 1,
			want: []string{"cannot reach DynamoDB at " + closed, "AWS_ENDPOINT_URL_DYNAMODB"}, check: quick},
		{name: "DynamoDB unreachable for logs", args: []string{"logs", "--store", "dynamodb", "--records-table", s.names.Records},
			env: []string{"AWS_ENDPOINT_URL_DYNAMODB=" + closed, "AWS_MAX_ATTEMPTS=1"}, code: 1,
			want: []string{"cannot reach DynamoDB at " + closed}, check: quick},
		{name: "SQS unreachable", args: []string{"redeliver", "tsk_archived", "--store", "dynamodb", "--triggers-table", s.names.Triggers, "--records-table", s.names.Records, "--queue-url", s.queueURL},
			env: []string{"AWS_ENDPOINT_URL_SQS=" + closed, "AWS_MAX_ATTEMPTS=1"}, code: 1,
			want: []string{"cannot reach SQS at " + closed, "AWS_ENDPOINT_URL_SQS"}, check: quick},
		{name: "missing triggers table", args: []string{"triggers", "list", "--store", "dynamodb", "--triggers-table", "no-such-table"}, code: 1,
			want: []string{`DynamoDB table "no-such-table" does not exist in region us-east-1`, "--triggers-table / $TRIGGERS_TABLE", "stack's outputs"}},
		{name: "missing triggers table on apply", args: []string{"triggers", "apply", "-f", writeTriggers(t, t.TempDir(), "https://example.com"),
			"--store", "dynamodb", "--triggers-table", "no-such-table"}, code: 1,
			want: []string{`DynamoDB table "no-such-table" does not exist`}},
		{name: "missing records table", args: []string{"logs", "--store", "dynamodb", "--records-table", "no-such-table"}, code: 1,
			want: []string{`DynamoDB table "no-such-table" does not exist`, "--records-table / $RECORDS_TABLE"}},
		{name: "missing records table on redeliver", args: []string{"redeliver", "tsk_archived", "--store", "dynamodb", "--triggers-table", s.names.Triggers, "--records-table", "no-such-table", "--queue-url", s.queueURL}, code: 1,
			want: []string{`DynamoDB table "no-such-table" does not exist`, "--records-table"}},
	})
}

// TestAWSHints covers the errors dynalite and fauxqs cannot produce (they
// know no IAM) and checks that other errors pass through untouched.
func TestAWSHints(t *testing.T) {
	table := awsResource{kind: "DynamoDB table", name: "prod-triggers", flag: flagTriggersTable, env: "TRIGGERS_TABLE", region: "eu-west-1"}
	queue := awsResource{kind: "SQS queue", name: "https://sqs.eu-west-1.amazonaws.com/1/q", flag: flagQueueURL, env: "QUEUE_URL", region: "eu-west-1"}
	opErr := func(service, op, code string) error {
		return fmt.Errorf("list triggers: %w", &smithy.OperationError{ServiceID: service, OperationName: op,
			Err: &smithy.GenericAPIError{Code: code, Message: "User: arn:aws:iam::1:user/dev is not authorized"}})
	}
	for _, tc := range []struct {
		name string
		res  awsResource
		err  error
		want []string // empty: no hint, the error comes back as it is
	}{
		{"access denied on a scan", table, opErr("DynamoDB", "Scan", "AccessDeniedException"),
			[]string{"access denied", "dynamodb:Scan", `DynamoDB table "prod-triggers"`}},
		{"access denied on a query", table, opErr("DynamoDB", "Query", "AccessDeniedException"),
			[]string{"dynamodb:Query", "table/prod-triggers/index/*"}},
		{"access denied on a put", table, opErr("DynamoDB", "PutItem", "AccessDeniedException"), []string{"dynamodb:PutItem"}},
		{"access denied on a send", queue, opErr("SQS", "SendMessageBatch", "AccessDenied"),
			[]string{"sqs:SendMessage on", `SQS queue "https://sqs.eu-west-1.amazonaws.com/1/q"`}},
		{"no such queue (query protocol code)", queue, opErr("SQS", "SendMessageBatch", "AWS.SimpleQueueService.NonExistentQueue"),
			[]string{"does not exist", "--queue-url / $QUEUE_URL"}},
		{"refused credentials", table, opErr("DynamoDB", "Scan", "UnrecognizedClientException"),
			[]string{"DynamoDB refused the credentials (UnrecognizedClientException)"}},
		{"expired token", queue, opErr("SQS", "SendMessageBatch", "ExpiredToken"), []string{"SQS refused the credentials"}},
		{"throttling is not explained", table, opErr("DynamoDB", "Scan", "ThrottlingException"), nil},
		{"a store error is not explained", table, fmt.Errorf("get trigger x: %w", trigger.ErrNotFound), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.res.explain(tc.err)
			if !errors.Is(got, tc.err) {
				t.Errorf("explain lost the error: %v", got)
			}
			if len(tc.want) == 0 {
				if got != tc.err {
					t.Errorf("explain(%v) = %v, want it unchanged", tc.err, got)
				}
				return
			}
			msg := got.Error()
			if !strings.HasPrefix(msg, tc.err.Error()+"\n(") {
				t.Errorf("%q does not start with the error", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
		})
	}
	if err := table.explain(nil); err != nil {
		t.Errorf("explain(nil) = %v", err)
	}
}

func TestDynamoTasks(t *testing.T) {
	s := newCloudStack(t)
	ctx := context.Background()
	s.archivedTask(t, "tsk_done", 1) // stores the deploy-nginx trigger, revision 1
	recs := s.store.Records()
	now := time.Now().UTC()
	put := func(id string, status record.Status, attempt int, at time.Time) {
		t.Helper()
		r := record.Record{TaskID: id, Trigger: "deploy-nginx", Action: event.PushImage, Namespace: "public", Repository: "nginx", Tag: id,
			Status: status, Attempt: attempt, TriggerVersion: 1, Time: at}
		if status == record.Retrying {
			r.NextAttemptAt = at.Add(time.Hour)
		}
		if err := recs.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	put("tsk_waiting", record.Retrying, 1, now.Add(-3*time.Minute))
	put("tsk_waiting", record.Retrying, 2, now.Add(-2*time.Minute))
	put("tsk_recovered", record.Retrying, 1, now.Add(-2*time.Minute))
	put("tsk_recovered", record.Success, 2, now.Add(-time.Minute))
	put("tsk_done", record.Success, 1, now.Add(-time.Minute))

	db := []string{"--store", "dynamodb", "--triggers-table", s.names.Triggers, "--records-table", s.names.Records, "--queue-url", s.queueURL}
	args := func(a ...string) []string { return append(a, db...) }
	s.run(t, []step{
		{name: "list shows the tasks waiting for a retry", args: args("tasks", "list", "--trigger", "deploy-nginx", "-o", "json"),
			want: []string{`"id":"tsk_waiting"`, `"attempts":2`, `"revision":1`, "SQS cannot list its messages"}, not: []string{"tsk_recovered", "tsk_done"}},
		{name: "cancel marks the trigger", args: args("tasks", "cancel", "--trigger", "deploy-nginx"),
			want: []string{"deploy-nginx: its queued tasks (matched against revision 1 or older) are cancelled when they come due"}, check: func(t *testing.T, _ result) {
				tr, err := s.store.Triggers().Get(ctx, "deploy-nginx")
				if err != nil || tr.CancelThrough != 1 || tr.Version != 2 || !tr.Enabled {
					t.Errorf("trigger after the cancel: %+v, %v", tr, err)
				}
			}},
		{name: "triggers get shows it", args: []string{"triggers", "get", "deploy-nginx", "-o", "json", "--store", "dynamodb", "--triggers-table", s.names.Triggers},
			want: []string{`"cancel_through":1`}, not: secrets},
		{name: "triggers get's table shows it", args: []string{"triggers", "get", "deploy-nginx", "--store", "dynamodb", "--triggers-table", s.names.Triggers},
			want: []string{"cancel through:", "revision 1 (queued tasks"}, not: secrets},
		{name: "disable --cancel-queued", args: []string{"triggers", "disable", "deploy-nginx", "--cancel-queued", "--store", "dynamodb", "--triggers-table", s.names.Triggers},
			want: []string{"deploy-nginx disabled", "revision 2 or older"}, check: func(t *testing.T, _ result) {
				tr, err := s.store.Triggers().Get(ctx, "deploy-nginx")
				if err != nil || tr.CancelThrough != 2 || tr.Enabled {
					t.Errorf("trigger after disable --cancel-queued: %+v, %v", tr, err)
				}
			}},
		{name: "cancel of an unknown trigger", args: args("tasks", "cancel", "--trigger", "nope"), code: 1, want: []string{`no trigger named "nope"`}},
		{name: "cancel needs a trigger", args: args("tasks", "cancel"), code: 2, want: []string{"trigger"}},
	})
}
