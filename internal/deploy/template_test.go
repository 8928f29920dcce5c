package deploy

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/regtrigger/regtrigger/internal/cloud"
	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/dynamostore"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
)

// The tests below read the CloudFormation the tools make of the two files
// (stack_test.go) and check what cfn-lint cannot know: that the stack is
// what the Go code needs (tables, queues, environment, IAM actions), that
// every parameter reaches the setting it is for, and that both files
// deploy the same resources.

// forEachStack runs check on both tools' stacks of every parameter set.
func forEachStack(t *testing.T, check func(t *testing.T, s *stack)) {
	t.Helper()
	for _, s := range allStacks(t) {
		t.Run(s.String(), func(t *testing.T) { check(t, s) })
	}
}

func TestStacksResolve(t *testing.T) {
	forEachStack(t, func(t *testing.T, s *stack) {
		for _, p := range s.problems {
			t.Errorf("%s: %s", s, p)
		}
	})
}

// frameworkResource reports the resources only `serverless package` adds,
// for its own deployment: the bucket it uploads the code to and a Lambda
// version of each function per deploy.
func frameworkResource(id string, r resource) bool {
	return r.Type == "AWS::Lambda::Version" || id == "ServerlessDeploymentBucket" || id == "ServerlessDeploymentBucketPolicy"
}

// frameworkOutput reports the outputs the framework adds (it exports them
// as sls-<service>-<stage>-...).
func frameworkOutput(o output) bool {
	return strings.HasPrefix(scalar(lookup(value(o.Export), "Name")), "sls-")
}

// comparable is a resource without what the two tools write differently
// for the same deployed resource.
func comparable(r resource) map[string]any {
	p := maps.Clone(r.Properties)
	switch r.Type {
	case "AWS::Lambda::Function":
		// Code: where each tool uploads it. FunctionName: the framework
		// names a function <service>-<stage>-<function>, SAM lets
		// CloudFormation name it. Tags: SAM tags lambda:createdBy.
		delete(p, "Code")
		delete(p, "FunctionName")
		delete(p, "Tags")
	case "AWS::Lambda::EventSourceMapping":
		if p["Enabled"] == "true" { // the default, which the framework writes
			delete(p, "Enabled")
		}
	case "AWS::Lambda::Url":
		if p["InvokeMode"] == "BUFFERED" { // the default, which template.yaml writes
			delete(p, "InvokeMode")
		}
	}
	if strings.HasPrefix(r.Type, "AWS::Lambda::") {
		// A function's name (Ref) and its ARN name it alike to Lambda.
		for _, k := range []string{"FunctionName", "TargetFunctionArn"} {
			if s, ok := p[k].(string); ok && strings.HasSuffix(s, ".Arn}") {
				p[k] = strings.TrimSuffix(s, ".Arn}") + "}"
			}
		}
	}
	return map[string]any{"Type": r.Type, "DeletionPolicy": r.DeletionPolicy, "UpdateReplacePolicy": r.UpdateReplacePolicy, "Properties": p}
}

// TestTemplatesAgree compares the two tools' stacks as wholes, for each
// parameter set: the same resources with the same resolved settings, the
// same conditions and outputs. A change made to only one file fails here.
func TestTemplatesAgree(t *testing.T) {
	for _, set := range paramSets {
		t.Run(set.name, func(t *testing.T) {
			stacks := stacksFor(t, set)
			sam, sls := stacks[0], stacks[1]
			ids := map[string]bool{}
			for id := range sam.resources {
				ids[id] = true
			}
			for id, r := range sls.resources {
				if !frameworkResource(id, r) {
					ids[id] = true
				}
			}
			for _, id := range sortedKeys(ids) {
				a, inSAM := sam.resources[id]
				b, inSLS := sls.resources[id]
				switch {
				case !inSAM:
					t.Errorf("serverless package makes %s (%s), the SAM transform does not", id, b.Type)
				case !inSLS:
					t.Errorf("the SAM transform makes %s (%s), serverless package does not", id, a.Type)
				default:
					for _, d := range diff("", comparable(a), comparable(b)) {
						t.Errorf("resource %s differs (left: SAM, right: serverless) at %s", id, d)
					}
				}
			}
			for id, r := range sam.resources {
				if frameworkResource(id, r) {
					t.Errorf("the SAM transform makes %s (%s), which only the framework should", id, r.Type)
				}
			}
			for _, name := range sortedKeys(sam.conditions) {
				if a, b := sam.conditions[name], sls.conditions[name]; a != b {
					t.Errorf("condition %s: %v with SAM, %v with serverless", name, a, b)
				}
			}
			for _, name := range sortedKeys(sls.conditions) {
				if _, ok := sam.conditions[name]; !ok {
					t.Errorf("condition %s: serverless.yml only", name)
				}
			}
			for _, name := range sortedKeys(sam.outputs) {
				a, b := sam.outputs[name], sls.outputs[name]
				if a.Value != b.Value || a.Description != b.Description {
					t.Errorf("output %s: SAM %s (%q), serverless %s (%q)", name, format(a.Value), a.Description, format(b.Value), b.Description)
				}
			}
			for _, name := range sortedKeys(sls.outputs) {
				if _, ok := sam.outputs[name]; !ok && !frameworkOutput(sls.outputs[name]) {
					t.Errorf("output %s: serverless.yml only", name)
				}
			}
		})
	}
}

func TestFunctions(t *testing.T) {
	forEachStack(t, func(t *testing.T, s *stack) {
		var want []string
		for _, fn := range Functions {
			want = append(want, fn.LogicalID)
		}
		sort.Strings(want)
		if got := s.ofType("AWS::Lambda::Function"); !slices.Equal(got, want) {
			t.Errorf("%s: functions %v, want %v", s, got, want)
		}
		for _, fn := range Functions {
			r := s.resources[fn.LogicalID]
			at := s.String() + ": " + fn.Name
			wantProps := map[string]any{
				"Runtime": "provided.al2023", "Architectures": []any{"arm64"}, "Handler": "bootstrap",
				"MemorySize": strconv.Itoa(fn.MemorySize), "Timeout": strconv.Itoa(fn.Timeout), "Role": GetAtt(fn.Role, "Arn"),
				"LoggingConfig": map[string]any{
					"LogFormat": "JSON", "ApplicationLogLevel": s.set.param("LogLevel"), "SystemLogLevel": "WARN", "LogGroup": Ref(fn.LogGroup),
				},
			}
			for _, k := range sortedKeys(wantProps) {
				for _, d := range diff(k, r.Properties[k], wantProps[k]) {
					t.Errorf("%s: %s", at, d)
				}
			}
			// Reserved concurrency: the receiver's is a parameter (-1: none);
			// the SQS event's MaximumConcurrency limits the dispatcher.
			var wantRC any
			if rc := s.set.param("ReceiverReservedConcurrency"); fn.LogicalID == ReceiverFunction && rc != "-1" {
				wantRC = rc
			}
			if got := r.Properties["ReservedConcurrentExecutions"]; got != wantRC {
				t.Errorf("%s: reserved concurrency %s, want %s", at, format(got), format(wantRC))
			}
			// How the code gets there: sam build runs make build-<LogicalId>
			// (the transform passes the Metadata through); the framework
			// uploads the artifact `make package` builds, one per function.
			if s.tool == "SAM" {
				if m := scalar(r.Metadata["BuildMethod"]); m != "makefile" {
					t.Errorf("%s: BuildMethod %q, want makefile", at, m)
				}
			} else if key := scalar(lookup(r.Properties, "Code", "S3Key")); path.Base(key) != path.Base(fn.Artifact) {
				t.Errorf("%s: deploys %s, want %s (package.individually, artifact)", at, key, fn.Artifact)
			}
		}
	})
}

func TestMakefileBuildsTheFunctions(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range Functions {
		target := regexp.MustCompile(`(?m)^build-` + fn.LogicalID + `:`)
		if !target.Match(makefile) {
			t.Errorf("Makefile: no target build-%s (sam build's makefile build method runs it)", fn.LogicalID)
		}
		name := strings.TrimSuffix(filepath.Base(fn.Artifact), ".zip")
		if !strings.Contains(string(makefile), "$(DIST)/"+name+".zip") || !strings.HasPrefix(fn.Artifact, "dist/") {
			t.Errorf("Makefile: make package does not write %s", fn.Artifact)
		}
	}
	if !regexp.MustCompile(`(?m)^package:`).Match(makefile) {
		t.Error("Makefile: no package target")
	}
}

// lambdaTarget is the function a Lambda resource's FunctionName or
// TargetFunctionArn names (by its name or its ARN).
func lambdaTarget(v any) string {
	s := scalar(v)
	return strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(s, "${"), "}"), ".Arn")
}

func TestReceiverFunctionURL(t *testing.T) {
	forEachStack(t, func(t *testing.T, s *stack) {
		if got := s.ofType("AWS::Lambda::Url"); !slices.Equal(got, []string{ReceiverFunctionURL}) {
			t.Fatalf("%s: function URLs %v, want only the receiver's %s", s, got, ReceiverFunctionURL)
		}
		// AuthType NONE: registries cannot sign AWS requests; the function
		// authenticates each one itself.
		if a, fn := s.prop(ReceiverFunctionURL, "AuthType"), lambdaTarget(s.prop(ReceiverFunctionURL, "TargetFunctionArn")); a != "NONE" || fn != ReceiverFunction {
			t.Errorf("%s: %s: auth %s for %s, want NONE for %s", s, ReceiverFunctionURL, format(a), fn, ReceiverFunction)
		}
		// A public URL needs both statements (AWS, October 2025), and no
		// other permission may let anyone invoke the function.
		want := map[string]map[string]any{
			ReceiverFunction + "UrlPublicPermissions": {
				"Action": "lambda:InvokeFunctionUrl", "FunctionName": Ref(ReceiverFunction), "Principal": "*", "FunctionUrlAuthType": "NONE",
			},
			ReceiverFunction + "URLInvokeAllowPublicAccess": {
				"Action": "lambda:InvokeFunction", "FunctionName": Ref(ReceiverFunction), "Principal": "*", "InvokedViaFunctionUrl": "true",
			},
		}
		for _, id := range s.ofType("AWS::Lambda::Permission") {
			p := comparable(s.resources[id])["Properties"]
			if w, ok := want[id]; ok {
				for _, d := range diff(id, p, w) {
					t.Errorf("%s: %s", s, d)
				}
				delete(want, id)
			} else if lookup(p, "Principal") == "*" {
				t.Errorf("%s: permission %s lets anyone invoke %s", s, id, format(lookup(p, "FunctionName")))
			}
		}
		for _, id := range sortedKeys(want) {
			t.Errorf("%s: no permission %s %s", s, id, format(want[id]))
		}
	})
}

func TestDispatcherEventSource(t *testing.T) {
	forEachStack(t, func(t *testing.T, s *stack) {
		id := DispatcherFunction + "Tasks"
		if got := s.ofType("AWS::Lambda::EventSourceMapping"); !slices.Equal(got, []string{id}) {
			t.Fatalf("%s: event source mappings %v, want the dispatcher's task queue only", s, got)
		}
		p := comparable(s.resources[id])["Properties"]
		want := map[string]any{
			"FunctionName":                   Ref(DispatcherFunction),
			"EventSourceArn":                 GetAtt(TaskQueue, "Arn"),
			"BatchSize":                      s.set.param("BatchSize"),
			"MaximumBatchingWindowInSeconds": s.set.param("MaximumBatchingWindowInSeconds"),
			"FunctionResponseTypes":          []any{"ReportBatchItemFailures"},
			"ScalingConfig":                  map[string]any{"MaximumConcurrency": s.set.param("DispatcherMaxConcurrency")},
		}
		for _, d := range diff("", p, want) {
			t.Errorf("%s: dispatcher event source%s", s, d)
		}
	})
}

// TestParameterLimits: the defaults are full batches, no waiting, at least
// 2 (Lambda's minimum) and few enough concurrent invocations not to flood
// the targets; a batch never exceeds the dispatcher's CONCURRENCY.
func TestParameterLimits(t *testing.T) {
	s := loadStack(t, "SAM", defaultParams)
	for _, c := range []struct {
		param  string
		lo, hi int
	}{
		{"BatchSize", 1, DispatcherConcurrency},
		{"MaximumBatchingWindowInSeconds", 0, 300},
		{"DispatcherMaxConcurrency", 2, 1000},
	} {
		def := s.paramDefs[c.param]
		if n, err := strconv.Atoi(s.params[c.param]); err != nil || n < c.lo || n > c.hi {
			t.Errorf("%s defaults to %q, want %d to %d", c.param, s.params[c.param], c.lo, c.hi)
		}
		if scalar(def["MinValue"]) != strconv.Itoa(c.lo) || scalar(def["MaxValue"]) != strconv.Itoa(c.hi) {
			t.Errorf("parameter %s allows %v to %v, want %d to %d", c.param, def["MinValue"], def["MaxValue"], c.lo, c.hi)
		}
	}
	for _, set := range paramSets {
		if n, _ := strconv.Atoi(set.param("BatchSize")); n > DispatcherConcurrency {
			t.Errorf("%s: BatchSize %d exceeds CONCURRENCY %d: a batch would outlast the dispatcher's timeout", set.name, n, DispatcherConcurrency)
		}
	}
}

func number(v any) (float64, bool) {
	f, err := strconv.ParseFloat(scalar(v), 64)
	return f, v != nil && err == nil
}

func TestQueues(t *testing.T) {
	var dispatcherTimeout int
	for _, fn := range Functions {
		if fn.LogicalID == DispatcherFunction {
			dispatcherTimeout = fn.Timeout
		}
	}
	forEachStack(t, func(t *testing.T, s *stack) {
		want := []string{DeadLetterQueue, TaskQueue}
		if s.set.param("EnableEcrEvents") == "true" {
			want = []string{DeadLetterQueue, EcrEventsDeadLetterQueue, TaskQueue}
		}
		queues := s.ofType("AWS::SQS::Queue")
		if !slices.Equal(queues, want) {
			t.Errorf("%s: queues %v, want %v", s, queues, want)
		}
		vis, ok := number(s.prop(TaskQueue, "VisibilityTimeout"))
		if !ok || vis < float64(VisibilityTimeoutFactor*dispatcherTimeout) || vis > 43200 {
			t.Errorf("%s: the task queue's visibility timeout is %s, want %d x the dispatcher's %d s (at most 12 h)",
				s, format(s.prop(TaskQueue, "VisibilityTimeout")), VisibilityTimeoutFactor, dispatcherTimeout)
		}
		redrive := map[string]any{"deadLetterTargetArn": GetAtt(DeadLetterQueue, "Arn"), "maxReceiveCount": strconv.Itoa(sqsqueue.MaxReceiveCount)}
		for _, d := range diff("", s.prop(TaskQueue, "RedrivePolicy"), redrive) {
			t.Errorf("%s: task queue RedrivePolicy%s (sqsqueue.MaxReceiveCount is %d)", s, d, sqsqueue.MaxReceiveCount)
		}
		if got := s.prop(TaskQueue, "MaximumMessageSize"); got != strconv.Itoa(sqsqueue.MaxMessageBytes) {
			t.Errorf("%s: task queue MaximumMessageSize %s, want sqsqueue.MaxMessageBytes (%d)", s, format(got), sqsqueue.MaxMessageBytes)
		}
		if s.prop(TaskQueue, "FifoQueue") != nil {
			t.Errorf("%s: the task queue must be a standard queue (retries need per-message delays)", s)
		}
		taskRetention, _ := number(s.prop(TaskQueue, "MessageRetentionPeriod"))
		if taskRetention != sqsqueue.MessageRetention.Seconds() {
			t.Errorf("%s: the task queue keeps messages %v s, want sqsqueue.MessageRetention (%v s): the dispatcher holds retries in their message only within it",
				s, taskRetention, sqsqueue.MessageRetention.Seconds())
		}
		for _, q := range queues {
			if s.prop(q, "SqsManagedSseEnabled") != "true" {
				t.Errorf("%s: queue %s: SqsManagedSseEnabled must be true", s, q)
			}
			if q == TaskQueue {
				continue
			}
			if got := s.prop(q, "MessageRetentionPeriod"); got != strconv.Itoa(DeadLetterRetention) {
				t.Errorf("%s: dead-letter queue %s keeps messages %s s, want %d (14 days)", s, q, format(got), DeadLetterRetention)
			}
			// A dead-lettered message keeps its first enqueue time.
			if taskRetention == 0 || taskRetention >= DeadLetterRetention {
				t.Errorf("%s: the task queue keeps messages %v s: want an explicit retention below the dead-letter queue's", s, taskRetention)
			}
		}
	})
}

var queueNameAttr = regexp.MustCompile(`^\$\{(\w+)\.QueueName\}$`)

func TestDeadLetterAlarms(t *testing.T) {
	forEachStack(t, func(t *testing.T, s *stack) {
		email := s.set.param("AlarmEmail")
		var notify any
		if email != "" {
			notify = []any{Ref(AlarmTopic)}
		}
		alarms := map[string]string{} // queue -> alarm
		for _, id := range s.ofType("AWS::CloudWatch::Alarm") {
			p := s.resources[id].Properties
			dims, _ := p["Dimensions"].([]any)
			m := queueNameAttr.FindStringSubmatch(scalar(lookup(dims, 0, "Value")))
			if len(dims) != 1 || lookup(dims, 0, "Name") != "QueueName" || m == nil {
				t.Errorf("%s: alarm %s: want one QueueName dimension, the name of a queue, got %s", s, id, format(p["Dimensions"]))
				continue
			}
			alarms[m[1]] = id
			for k, want := range map[string]any{
				"Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible", "Threshold": "0",
				"ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
				"AlarmActions": notify, "OKActions": notify,
			} {
				for _, d := range diff(k, p[k], want) {
					t.Errorf("%s: alarm %s: %s", s, id, d)
				}
			}
		}
		queues := []string{DeadLetterQueue}
		if s.set.param("EnableEcrEvents") == "true" {
			queues = append(queues, EcrEventsDeadLetterQueue)
		}
		for _, q := range queues {
			if alarms[q] == "" {
				t.Errorf("%s: no alarm on the messages in %s", s, q)
			}
		}
		topic, ok := s.resources[AlarmTopic]
		switch {
		case email == "" && ok:
			t.Errorf("%s: %s exists without an AlarmEmail", s, AlarmTopic)
		case email != "":
			want := map[string]any{
				"DisplayName":  "regtrigger alarms",
				"Subscription": []any{map[string]any{"Protocol": "email", "Endpoint": email}},
			}
			for _, d := range diff(AlarmTopic, topic.Properties, want) {
				t.Errorf("%s: %s", s, d)
			}
		}
	})
}

// tableShape is a CreateTableInput as a template's table properties: the
// SDK's field names are CloudFormation's; nulls and empty values dropped,
// attribute definitions and indexes keyed by name (see byName), scalars as
// strings.
func tableShape(t *testing.T, in any) map[string]any {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	m, _ := prune(value(v)).(map[string]any)
	delete(m, "TableName")
	byName(m, "AttributeDefinitions", "AttributeName")
	byName(m, "GlobalSecondaryIndexes", "IndexName")
	byName(m, "LocalSecondaryIndexes", "IndexName")
	return m
}

func prune(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range t {
			if x = prune(x); x != nil {
				out[k] = x
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		var out []any
		for _, x := range t {
			if x = prune(x); x != nil {
				out = append(out, x)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case string:
		if t == "" {
			return nil
		}
	}
	return v
}

// byName turns the list m[list] into a map keyed by each element's key (the
// order of attribute definitions and indexes means nothing to DynamoDB), so
// a difference names the attribute or index.
func byName(m map[string]any, list, key string) {
	l, ok := m[list].([]any)
	if !ok {
		return
	}
	byKey := map[string]any{}
	for i, x := range l {
		name := scalar(lookup(x, key))
		if name == "" {
			name = "#" + strconv.Itoa(i)
		}
		if _, dup := byKey[name]; dup {
			name += " (again)"
		}
		byKey[name] = x
	}
	m[list] = byKey
}

func TestTablesMatchDynamostore(t *testing.T) {
	defs := dynamostore.TableDefinitions(TableNames)
	forEachStack(t, func(t *testing.T, s *stack) {
		tables := s.ofType("AWS::DynamoDB::Table")
		if len(tables) != len(defs) {
			t.Errorf("%s: tables %v, want the %d of dynamostore.TableDefinitions", s, tables, len(defs))
		}
		for _, def := range defs {
			id := *def.Create.TableName
			r, ok := s.resources[id]
			if !ok || r.Type != "AWS::DynamoDB::Table" {
				t.Errorf("%s: no table %s", s, id)
				continue
			}
			want := tableShape(t, def.Create)
			if want["BillingMode"] != "PAY_PER_REQUEST" {
				t.Fatalf("dynamostore bills %v: the templates assume PAY_PER_REQUEST", want["BillingMode"])
			}
			// Everything of the definition, plus whatever else decides keys,
			// indexes or billing.
			got := map[string]any{}
			keys := []string{"LocalSecondaryIndexes", "GlobalSecondaryIndexes", "ProvisionedThroughput", "KeySchema", "AttributeDefinitions", "BillingMode"}
			for _, k := range append(keys, sortedKeys(want)...) {
				if v, ok := r.Properties[k]; ok {
					got[k] = v
				}
			}
			for _, d := range diff("", tableShape(t, got), want) {
				t.Errorf("%s: table %s differs from dynamostore.TableDefinitions (left: template, right: Go) at %s", s, id, d)
			}
			var wantTTL any
			if def.TTLAttribute != "" {
				wantTTL = map[string]any{"AttributeName": def.TTLAttribute, "Enabled": "true"}
			}
			for _, d := range diff("TimeToLiveSpecification", r.Properties["TimeToLiveSpecification"], wantTTL) {
				t.Errorf("%s: table %s: %s", s, id, d)
			}
			if lookup(r.Properties, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled") != "true" {
				t.Errorf("%s: table %s: point-in-time recovery must be on", s, id)
			}
			if lookup(r.Properties, "SSESpecification", "SSEEnabled") != "true" {
				t.Errorf("%s: table %s: SSESpecification.SSEEnabled must be true", s, id)
			}
			if r.Properties["TableName"] != nil {
				t.Errorf("%s: table %s has a fixed TableName: let CloudFormation name it (two stacks per account, replacements)", s, id)
			}
			if slices.Contains(RetainedTables, id) && (r.DeletionPolicy != "Retain" || r.UpdateReplacePolicy != "Retain") {
				t.Errorf("%s: table %s: DeletionPolicy and UpdateReplacePolicy must be Retain, got %q and %q", s, id, r.DeletionPolicy, r.UpdateReplacePolicy)
			}
		}
	})
}

func TestLogGroups(t *testing.T) {
	forEachStack(t, func(t *testing.T, s *stack) {
		var want []string
		for _, fn := range Functions {
			want = append(want, fn.LogGroup)
			wantProps := map[string]any{
				"LogGroupName":    "/aws/lambda/" + Ref("AWS::StackName") + "-" + fn.Name,
				"RetentionInDays": s.set.param("LogRetentionInDays"),
			}
			for _, d := range diff(fn.LogGroup, s.resources[fn.LogGroup].Properties, wantProps) {
				t.Errorf("%s: %s", s, d)
			}
		}
		sort.Strings(want)
		if got := s.ofType("AWS::Logs::LogGroup"); !slices.Equal(got, want) {
			t.Errorf("%s: log groups %v, want %v", s, got, want)
		}
	})
}

func TestEnvironment(t *testing.T) {
	known := map[string]bool{}
	for _, e := range config.Env {
		known[e] = true
	}
	required := map[string][]string{ReceiverFunction: cloud.ReceiverRequires, DispatcherFunction: cloud.DispatcherRequires}
	for _, fn := range Functions {
		for _, name := range required[fn.LogicalID] {
			if _, ok := fn.Env[name]; !ok {
				t.Errorf("deploy.Functions: %s lacks %s, which internal/cloud requires", fn.Name, name)
			}
		}
		for _, name := range sortedKeys(fn.Env) {
			if !known[name] {
				t.Errorf("deploy.Functions: %s sets %s, which internal/config does not read (config.Env)", fn.Name, name)
			}
		}
	}
	forEachStack(t, func(t *testing.T, s *stack) {
		for _, fn := range Functions {
			want := map[string]any{}
			for name, v := range fn.Env {
				want[name] = s.set.expand(v)
			}
			got := s.prop(fn.LogicalID, "Environment", "Variables")
			for _, d := range diff(fn.Name, got, want) {
				t.Errorf("%s: environment (left: template, right: deploy.Functions) %s", s, d)
			}
		}
	})
}

// TestConfigEnvIsComplete keeps config.Env in step with the Env* constants
// of internal/config, so TestEnvironment knows every variable.
func TestConfigEnvIsComplete(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(root, "internal", "config", "config.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var consts []string
	ast.Inspect(f, func(n ast.Node) bool {
		if spec, ok := n.(*ast.ValueSpec); ok {
			for i, name := range spec.Names {
				if strings.HasPrefix(name.Name, "Env") && i < len(spec.Values) {
					if lit, ok := spec.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						consts = append(consts, v)
					}
				}
			}
		}
		return true
	})
	if len(consts) == 0 {
		t.Fatal("found no Env* constants in internal/config/config.go")
	}
	for _, c := range consts {
		if !slices.Contains(config.Env, c) {
			t.Errorf("config.Env lacks %s", c)
		}
	}
}

// policyResource is an IAM statement's resource: one stack resource's ARN,
// or a table's ARN with /index/NAME.
var policyResource = regexp.MustCompile(`^\$\{(\w+)\.Arn\}(/index/[A-Za-z0-9_.-]+)?$`)

func TestLeastPrivilegePolicies(t *testing.T) {
	forEachStack(t, func(t *testing.T, s *stack) {
		var roles []string
		for _, fn := range Functions {
			roles = append(roles, fn.Role)
		}
		sort.Strings(roles)
		if got := s.ofType("AWS::IAM::Role"); !slices.Equal(got, roles) {
			t.Errorf("%s: IAM roles %v, want one per function %v", s, got, roles)
		}
		trust := value(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole",
		}}})
		for _, fn := range Functions {
			p := s.resources[fn.Role].Properties
			at := s.String() + ": role " + fn.Role
			for _, k := range []string{"ManagedPolicyArns", "PermissionsBoundary"} {
				if p[k] != nil {
					t.Errorf("%s has %s %s: write the statements out instead (managed policies use * resources)", at, k, format(p[k]))
				}
			}
			for _, d := range diff("AssumeRolePolicyDocument", p["AssumeRolePolicyDocument"], trust) {
				t.Errorf("%s: %s", at, d)
			}
			policies := list(p["Policies"])
			if len(policies) == 0 {
				t.Errorf("%s has no inline policy", at)
			}
			var got []string
			for _, pol := range policies {
				for _, st := range list(lookup(pol, "PolicyDocument", "Statement")) {
					b, _ := st.(map[string]any)
					if b["Effect"] != "Allow" {
						t.Errorf("%s: statement %s has Effect %s, want Allow", at, format(b["Sid"]), format(b["Effect"]))
					}
					for k := range b {
						if k != "Sid" && k != "Effect" && k != "Action" && k != "Resource" {
							t.Errorf("%s: statement %s uses %s", at, format(b["Sid"]), k)
						}
					}
					for _, res := range list(b["Resource"]) {
						m := policyResource.FindStringSubmatch(scalar(res))
						if m == nil {
							t.Errorf("%s: statement %s: resource %s is not one stack resource's ARN (or a table's ARN + /index/NAME)", at, format(b["Sid"]), format(res))
							continue
						}
						if _, declared := s.resources[m[1]]; !declared {
							t.Errorf("%s: statement %s names %s, which the stack does not have", at, format(b["Sid"]), m[1])
						}
						for _, a := range list(b["Action"]) {
							if strings.Contains(scalar(a), "*") {
								t.Errorf("%s: the wildcard action %s", at, format(a))
							}
							got = append(got, m[1]+m[2]+" "+scalar(a))
						}
					}
				}
			}
			// A permission "X if C" is wanted exactly when C holds.
			var want []string
			for _, perm := range fn.Permissions {
				res, cond, conditional := strings.Cut(perm.Resource, " if ")
				if !conditional || s.conditions[cond] {
					want = append(want, res+" "+perm.Action)
				}
			}
			sort.Strings(got)
			sort.Strings(want)
			for _, x := range got {
				if !slices.Contains(want, x) {
					t.Errorf("%s allows %s, which %s does not need", at, x, fn.Name)
				}
			}
			for _, x := range want {
				if !slices.Contains(got, x) {
					t.Errorf("%s lacks %s", at, x)
				}
			}
			if len(got) != len(slices.Compact(slices.Clone(got))) {
				t.Errorf("%s grants some permission twice: %v", at, got)
			}
		}
	})
}

func TestParameters(t *testing.T) {
	sam := loadStack(t, "SAM", defaultParams)
	var names []string
	for _, p := range Parameters {
		names = append(names, p.SAM)
		def, ok := sam.paramDefs[p.SAM]
		if !ok {
			t.Errorf("template.yaml: no parameter %s", p.SAM)
			continue
		}
		d, has := def["Default"]
		switch {
		case p.Required && has:
			t.Errorf("template.yaml: %s has the default %q: it holds secrets, so it must have none", p.SAM, scalar(d))
		case !p.Required && !has:
			t.Errorf("template.yaml: %s has no default, want %q", p.SAM, p.Default)
		case !p.Required && scalar(d) != p.Default:
			t.Errorf("template.yaml: %s defaults to %q, want %q", p.SAM, scalar(d), p.Default)
		}
		if p.Secret && scalar(def["NoEcho"]) != "true" {
			t.Errorf("template.yaml: parameter %s holds secrets: it must be NoEcho", p.SAM)
		}
	}
	sort.Strings(names)
	if got := sortedKeys(sam.paramDefs); !slices.Equal(got, names) {
		t.Errorf("template.yaml: parameters %v, want those of deploy.Parameters %v", got, names)
	}
	for name, want := range map[string]any{
		"LogLevel":        []any{"DEBUG", "INFO", "WARN", "ERROR"},
		"EnableEcrEvents": []any{"true", "false"},
	} {
		for _, d := range diff(name+".AllowedValues", value(sam.paramDefs[name]["AllowedValues"]), want) {
			t.Errorf("template.yaml: %s", d)
		}
	}
}

// TestServerlessRequiredParams: serverless.yml has no default for a
// required parameter (registries holds the registries' secrets), so
// packaging without it fails.
func TestServerlessRequiredParams(t *testing.T) {
	sls := serverlessBin(t)
	for _, p := range Parameters {
		if !p.Required {
			continue
		}
		values := maps.Clone(defaultParams.values)
		delete(values, p.SAM)
		out, err := packageServerless(sls, t.TempDir(), values)
		if err == nil {
			t.Errorf("serverless package without --param=%s=... succeeded: serverless.yml must not give it a default", p.Serverless)
		} else if !strings.Contains(out, `"`+p.Serverless+`"`) {
			t.Errorf("serverless package without %s failed for another reason: %v\n%s", p.Serverless, err, out)
		}
	}
}

// TestServerlessCloudFormationParameters: the CloudFormation Parameters of
// serverless.yml (those its Conditions test) are template.yaml's, with the
// same constraints, each defaulting to the param of the same name, so a
// deploy passes the param's value through them.
func TestServerlessCloudFormationParameters(t *testing.T) {
	for _, set := range paramSets {
		stacks := stacksFor(t, set)
		sam, sls := stacks[0], stacks[1]
		if len(sls.paramDefs) == 0 {
			t.Fatal("serverless.yml declares no CloudFormation Parameters: its Conditions would test constants")
		}
		for _, name := range sortedKeys(sls.paramDefs) {
			def, samDef := sls.paramDefs[name], sam.paramDefs[name]
			if samDef == nil {
				t.Errorf("serverless.yml: resources.Parameters.%s is not a parameter of template.yaml", name)
				continue
			}
			for _, k := range []string{"Type", "AllowedValues", "AllowedPattern", "MinValue", "MaxValue", "NoEcho"} {
				for _, d := range diff(name+"."+k, value(def[k]), value(samDef[k])) {
					t.Errorf("serverless.yml: resources.Parameters (left) and template.yaml (right) differ at %s", d)
				}
			}
			if got := sls.params[name]; got != set.param(name) {
				t.Errorf("%s: serverless.yml: resources.Parameters.%s defaults to %q, want the param's value %q", set.name, name, got, set.param(name))
			}
		}
	}
}

// TestChangedParamsCoverEveryParameter: the changed parameter set gives
// every parameter a value of its own, so TestTemplatesAgree sees what each
// one does in both files.
func TestChangedParamsCoverEveryParameter(t *testing.T) {
	for _, p := range Parameters {
		v, ok := changedParams.values[p.SAM]
		if !ok || (!p.Required && v == p.Default) {
			t.Errorf("changedParams: give %s a value other than its default %q", p.SAM, p.Default)
		}
	}
}

func TestEcrEventsRule(t *testing.T) {
	forEachStack(t, func(t *testing.T, s *stack) {
		on := s.set.param("EnableEcrEvents") == "true"
		if s.conditions[CondEcrEvents] != on {
			t.Errorf("%s: condition %s is %v with EnableEcrEvents %q", s, CondEcrEvents, s.conditions[CondEcrEvents], s.set.param("EnableEcrEvents"))
		}
		for _, id := range []string{EcrEventsRule, EcrEventsPermission, EcrEventsInvokeConfig, EcrEventsDeadLetterQueue, EcrEventsDeadLetterQueuePolicy, EcrEventsDeadLetterQueueAlarm} {
			if _, ok := s.resources[id]; ok != on {
				t.Errorf("%s: %s exists: %v, want %v (EnableEcrEvents %q)", s, id, ok, on, s.set.param("EnableEcrEvents"))
			}
		}
		var wantRules []string
		if on {
			wantRules = []string{EcrEventsRule}
		}
		if rules := s.ofType("AWS::Events::Rule"); !slices.Equal(rules, wantRules) {
			t.Errorf("%s: EventBridge rules %v, want %v", s, rules, wantRules)
		}
		if !on {
			return
		}
		pattern := s.prop(EcrEventsRule, "EventPattern")
		if !slices.Equal(list(lookup(pattern, "source")), []any{EcrEvents.Source}) || !slices.Equal(list(lookup(pattern, "detail-type")), []any{EcrEvents.DetailType}) {
			t.Errorf("%s: %s pattern %s, want source [%s] and detail-type [%s]", s, EcrEventsRule, format(pattern), EcrEvents.Source, EcrEvents.DetailType)
		}
		targets := list(s.prop(EcrEventsRule, "Targets"))
		if len(targets) != 1 {
			t.Fatalf("%s: %s has %d targets, want 1 (the receiver)", s, EcrEventsRule, len(targets))
		}
		if got := lambdaTarget(lookup(targets[0], "Arn")); got != ReceiverFunction {
			t.Errorf("%s: %s targets %s, want the receiver", s, EcrEventsRule, got)
		}
		if lookup(targets[0], "DeadLetterConfig", "Arn") != GetAtt(EcrEventsDeadLetterQueue, "Arn") || lookup(targets[0], "RetryPolicy") == nil {
			t.Errorf("%s: %s's target needs a RetryPolicy and a DeadLetterConfig to %s", s, EcrEventsRule, EcrEventsDeadLetterQueue)
		}
		perm := map[string]any{
			"Action": "lambda:InvokeFunction", "FunctionName": Ref(ReceiverFunction),
			"Principal": "events.amazonaws.com", "SourceArn": GetAtt(EcrEventsRule, "Arn"),
		}
		for _, d := range diff(EcrEventsPermission, comparable(s.resources[EcrEventsPermission])["Properties"], perm) {
			t.Errorf("%s: %s", s, d)
		}
		if lambdaTarget(s.prop(EcrEventsInvokeConfig, "FunctionName")) != ReceiverFunction ||
			s.prop(EcrEventsInvokeConfig, "DestinationConfig", "OnFailure", "Destination") != GetAtt(EcrEventsDeadLetterQueue, "Arn") {
			t.Errorf("%s: %s must send the receiver's failed ECR events to %s", s, EcrEventsInvokeConfig, EcrEventsDeadLetterQueue)
		}
		if s.prop(EcrEventsDeadLetterQueuePolicy, "PolicyDocument", "Statement", 0, "Condition", "ArnEquals", "aws:SourceArn") != GetAtt(EcrEventsRule, "Arn") {
			t.Errorf("%s: %s must let only the rule (aws:SourceArn) send to the queue", s, EcrEventsDeadLetterQueuePolicy)
		}
	})
}

func TestOutputs(t *testing.T) {
	forEachStack(t, func(t *testing.T, s *stack) {
		for _, name := range sortedKeys(Outputs) {
			o, ok := s.outputs[name]
			wanted := name != "EcrEventsDeadLetterQueueUrl" || s.set.param("EnableEcrEvents") == "true"
			switch {
			case ok != wanted:
				t.Errorf("%s: output %s exists: %v, want %v", s, name, ok, wanted)
			case !ok:
			case o.Value != s.set.expand(Outputs[name]):
				t.Errorf("%s: output %s is %s, want %s", s, name, format(o.Value), Outputs[name])
			case o.Description == "":
				t.Errorf("%s: output %s has no description", s, name)
			}
		}
		for name, o := range s.outputs {
			if _, ok := Outputs[name]; !ok && !(s.tool == "serverless" && frameworkOutput(o)) {
				t.Errorf("%s: output %s is not in deploy.Outputs", s, name)
			}
		}
	})
}
