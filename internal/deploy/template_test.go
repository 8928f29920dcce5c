package deploy

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
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

func TestTemplatesParseCleanly(t *testing.T) {
	for _, s := range loadStacks(t) {
		for _, p := range s.problems {
			t.Errorf("%s: %s", s.file, p)
		}
	}
}

func TestFunctionsRuntimeAndBuild(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range loadStacks(t) {
		if len(s.functions) != len(Functions) {
			t.Errorf("%s declares %d functions, want %d", s.file, len(s.functions), len(Functions))
		}
		for _, fn := range Functions {
			t.Run(s.file+"/"+fn.Name, func(t *testing.T) {
				f, ok := s.functions[fn.Name]
				if !ok {
					t.Fatalf("%s: no function %s", s.file, fn.Name)
				}
				for _, c := range []struct{ what, got, want string }{
					{"runtime", f.Runtime, "provided.al2023"},
					{"architecture", f.Architecture, "arm64"},
					{"handler", f.Handler, "bootstrap"},
				} {
					if c.got != c.want {
						t.Errorf("%s: %s: %s is %q, want %q", s.file, fn.Name, c.what, c.got, c.want)
					}
				}
				want := "makefile CodeUri=."
				if !s.sam {
					want = "artifact=" + fn.Artifact
				}
				if f.Build != want {
					t.Errorf("%s: %s is built by %q, want %q", s.file, fn.Name, f.Build, want)
				}
			})
		}
		if !s.sam && get(s.doc, "package", "individually") != true {
			t.Errorf("%s: package.individually must be true (one zip per function)", s.file)
		}
	}
	// sam build runs make build-<LogicalId>; make package builds the artifacts.
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

func TestFunctionSettings(t *testing.T) {
	for _, s := range loadStacks(t) {
		for _, fn := range Functions {
			f := s.functions[fn.Name]
			at := s.file + ": " + fn.Name
			if !Equal(f.Timeout, fn.Timeout) {
				t.Errorf("%s: timeout %s, want %d", at, Format(f.Timeout), fn.Timeout)
			}
			if !Equal(f.MemorySize, fn.MemorySize) {
				t.Errorf("%s: memory %s, want %d", at, Format(f.MemorySize), fn.MemorySize)
			}
			if f.Role != fn.Role {
				t.Errorf("%s: role %s, want %s", at, f.Role, fn.Role)
			}
			wantLogging := map[string]any{
				"LogFormat": "JSON", "ApplicationLogLevel": Ref("LogLevel"), "SystemLogLevel": "WARN", "LogGroup": Ref(fn.LogGroup),
			}
			for _, d := range Diff(f.Logging, wantLogging) {
				t.Errorf("%s: LoggingConfig%s", at, strings.TrimPrefix(d, "."))
			}
		}
		if rc := s.functions["dispatcher"].ReservedConcurrency; rc != nil {
			t.Errorf("%s: the dispatcher has reserved concurrency %s: the SQS event's MaximumConcurrency limits it", s.file, Format(rc))
		}
		wantRC := map[string]any{"Fn::If": []any{CondReservedConcurrency, Ref("ReceiverReservedConcurrency"), Ref("AWS::NoValue")}}
		if rc := s.functions["receiver"].ReservedConcurrency; !Equal(rc, wantRC) {
			t.Errorf("%s: receiver reserved concurrency %s, want %s", s.file, Format(rc), Format(wantRC))
		}
	}
}

func TestReceiverFunctionURL(t *testing.T) {
	for _, s := range loadStacks(t) {
		r, d := s.functions["receiver"], s.functions["dispatcher"]
		if r.URLAuthType != "NONE" {
			t.Errorf("%s: the receiver's Function URL auth type is %q, want NONE (registries authenticate with tokens the function checks)", s.file, r.URLAuthType)
		}
		if d.URLAuthType != "" {
			t.Errorf("%s: the dispatcher must not have a Function URL", s.file)
		}
		if len(r.OtherEvents) > 0 || r.SQS != nil {
			t.Errorf("%s: the receiver has event sources %v: its URL (and the conditional ECR rule) are its only ones", s.file, r.OtherEvents)
		}
		if s.sam {
			continue
		}
		// The framework may or may not add the lambda:InvokeFunction statement
		// a public URL needs since October 2025; serverless.yml adds it.
		p := s.resources[ServerlessURLInvokePermission]
		want := map[string]any{
			"Type": "AWS::Lambda::Permission",
			"Properties": map[string]any{
				"Action": "lambda:InvokeFunction", "FunctionName": Ref(ReceiverFunction), "Principal": "*", "InvokedViaFunctionUrl": true,
			},
		}
		for _, d := range Diff(p, want) {
			t.Errorf("%s: %s%s", s.file, ServerlessURLInvokePermission, d)
		}
	}
}

func TestDispatcherSQSEvent(t *testing.T) {
	want := map[string]any{
		"Queue":                          GetAtt(TaskQueue, "Arn"),
		"BatchSize":                      Ref("BatchSize"),
		"MaximumBatchingWindowInSeconds": Ref("MaximumBatchingWindowInSeconds"),
		"FunctionResponseTypes":          []any{"ReportBatchItemFailures"},
		"ScalingConfig":                  map[string]any{"MaximumConcurrency": Ref("DispatcherMaxConcurrency")},
	}
	for _, s := range loadStacks(t) {
		d := s.functions["dispatcher"]
		if d.SQS == nil {
			t.Errorf("%s: the dispatcher has no SQS event", s.file)
			continue
		}
		for _, diff := range Diff(d.SQS, want) {
			t.Errorf("%s: dispatcher SQS event%s", s.file, diff)
		}
		if len(d.OtherEvents) > 0 {
			t.Errorf("%s: the dispatcher has other event sources %v", s.file, d.OtherEvents)
		}
		// The defaults: full batches, no waiting, at least 2 (Lambda's minimum)
		// and few enough concurrent invocations not to flood the targets.
		for _, c := range []struct {
			param  string
			lo, hi int
		}{
			{"BatchSize", 1, DispatcherConcurrency},
			{"MaximumBatchingWindowInSeconds", 0, 300},
			{"DispatcherMaxConcurrency", 2, 1000},
		} {
			n, err := strconv.Atoi(s.params[c.param].Default)
			if err != nil || n < c.lo || n > c.hi {
				t.Errorf("%s: %s defaults to %q, want %d to %d", s.file, c.param, s.params[c.param].Default, c.lo, c.hi)
			}
			if s.sam {
				def := s.params[c.param].Def
				if !Equal(def["MinValue"], c.lo) || !Equal(def["MaxValue"], c.hi) {
					t.Errorf("%s: parameter %s allows %s to %s, want %d to %d", s.file, c.param, Format(def["MinValue"]), Format(def["MaxValue"]), c.lo, c.hi)
				}
			}
		}
	}
}

func TestQueues(t *testing.T) {
	var dispatcherTimeout int
	for _, fn := range Functions {
		if fn.LogicalID == DispatcherFunction {
			dispatcherTimeout = fn.Timeout
		}
	}
	for _, s := range loadStacks(t) {
		queues := s.ofType("AWS::SQS::Queue")
		if want := []string{DeadLetterQueue, EcrEventsDeadLetterQueue, TaskQueue}; !slices.Equal(queues, want) {
			t.Errorf("%s: queues %v, want %v", s.file, queues, want)
		}
		vis, ok := number(s.prop(TaskQueue, "VisibilityTimeout"))
		if !ok || vis < float64(VisibilityTimeoutFactor*dispatcherTimeout) || vis > 43200 {
			t.Errorf("%s: the task queue's visibility timeout is %s, want %d x the dispatcher's %d s (at most 12 h)",
				s.file, Format(s.prop(TaskQueue, "VisibilityTimeout")), VisibilityTimeoutFactor, dispatcherTimeout)
		}
		redrive := map[string]any{"deadLetterTargetArn": GetAtt(DeadLetterQueue, "Arn"), "maxReceiveCount": sqsqueue.MaxReceiveCount}
		for _, d := range Diff(s.prop(TaskQueue, "RedrivePolicy"), redrive) {
			t.Errorf("%s: task queue RedrivePolicy%s (sqsqueue.MaxReceiveCount is %d)", s.file, d, sqsqueue.MaxReceiveCount)
		}
		if !Equal(s.prop(TaskQueue, "MaximumMessageSize"), sqsqueue.MaxMessageBytes) {
			t.Errorf("%s: task queue MaximumMessageSize %s, want sqsqueue.MaxMessageBytes (%d)", s.file, Format(s.prop(TaskQueue, "MaximumMessageSize")), sqsqueue.MaxMessageBytes)
		}
		if s.prop(TaskQueue, "FifoQueue") != nil {
			t.Errorf("%s: the task queue must be a standard queue (retries need per-message delays)", s.file)
		}
		taskRetention, _ := number(s.prop(TaskQueue, "MessageRetentionPeriod"))
		if taskRetention != sqsqueue.MessageRetention.Seconds() {
			t.Errorf("%s: the task queue keeps messages %v s, want sqsqueue.MessageRetention (%v s): the dispatcher holds retries in their message only within it",
				s.file, taskRetention, sqsqueue.MessageRetention.Seconds())
		}
		for _, q := range queues {
			if s.prop(q, "SqsManagedSseEnabled") != true {
				t.Errorf("%s: queue %s: SqsManagedSseEnabled must be true", s.file, q)
			}
			if q == TaskQueue {
				continue
			}
			if !Equal(s.prop(q, "MessageRetentionPeriod"), DeadLetterRetention) {
				t.Errorf("%s: dead-letter queue %s keeps messages %s s, want %d (14 days)", s.file, q, Format(s.prop(q, "MessageRetentionPeriod")), DeadLetterRetention)
			}
			// A dead-lettered message keeps its first enqueue time.
			if taskRetention == 0 || taskRetention >= DeadLetterRetention {
				t.Errorf("%s: the task queue keeps messages %v s: want an explicit retention below the dead-letter queue's", s.file, taskRetention)
			}
		}
	}
}

func TestDeadLetterAlarms(t *testing.T) {
	for _, s := range loadStacks(t) {
		alarms := map[string]string{} // queue -> alarm
		for _, id := range s.ofType("AWS::CloudWatch::Alarm") {
			p := asMap(s.resources[id]["Properties"])
			dims, _ := p["Dimensions"].([]any)
			if len(dims) != 1 || get(dims[0], "Name") != "QueueName" {
				t.Errorf("%s: alarm %s: want one QueueName dimension, got %s", s.file, id, Format(p["Dimensions"]))
				continue
			}
			ga, _ := get(dims[0], "Value", "Fn::GetAtt").([]any)
			if len(ga) != 2 || ga[1] != "QueueName" {
				t.Errorf("%s: alarm %s: the dimension must be !GetAtt <queue>.QueueName, got %s", s.file, id, Format(get(dims[0], "Value")))
				continue
			}
			alarms[str(ga[0])] = id
			for k, want := range map[string]any{
				"Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible", "Threshold": 0,
				"ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
			} {
				if !Equal(p[k], want) {
					t.Errorf("%s: alarm %s: %s is %s, want %s", s.file, id, k, Format(p[k]), Format(want))
				}
			}
			notify := map[string]any{"Fn::If": []any{CondAlarmEmail, []any{Ref(AlarmTopic)}, Ref("AWS::NoValue")}}
			if !Equal(p["AlarmActions"], notify) {
				t.Errorf("%s: alarm %s: AlarmActions %s, want %s", s.file, id, Format(p["AlarmActions"]), Format(notify))
			}
			if qc, ac := str(s.resources[str(ga[0])]["Condition"]), str(s.resources[id]["Condition"]); qc != ac {
				t.Errorf("%s: alarm %s has condition %q, its queue %q", s.file, id, ac, qc)
			}
		}
		for _, q := range []string{DeadLetterQueue, EcrEventsDeadLetterQueue} {
			if alarms[q] == "" {
				t.Errorf("%s: no alarm on the messages in %s", s.file, q)
			}
		}
		topic := s.resources[AlarmTopic]
		wantTopic := map[string]any{
			"Type": "AWS::SNS::Topic", "Condition": CondAlarmEmail,
			"Properties": map[string]any{
				"DisplayName":  "regtrigger alarms",
				"Subscription": []any{map[string]any{"Protocol": "email", "Endpoint": Ref("AlarmEmail")}},
			},
		}
		for _, d := range Diff(topic, wantTopic) {
			t.Errorf("%s: %s%s", s.file, AlarmTopic, d)
		}
		wantCond := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{Ref("AlarmEmail"), ""}}}}
		if !Equal(s.conditions[CondAlarmEmail], wantCond) {
			t.Errorf("%s: condition %s is %s, want %s", s.file, CondAlarmEmail, Format(s.conditions[CondAlarmEmail]), Format(wantCond))
		}
	}
}

// tableShape is a CreateTableInput as a template's table properties: the
// SDK's field names are CloudFormation's; nulls and empty values dropped,
// attribute definitions and indexes keyed by name (see byName).
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
	m := asMap(prune(v))
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
		name := str(get(x, key))
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
	for _, s := range loadStacks(t) {
		tables := s.ofType("AWS::DynamoDB::Table")
		if len(tables) != len(defs) {
			t.Errorf("%s: tables %v, want the %d of dynamostore.TableDefinitions", s.file, tables, len(defs))
		}
		for _, def := range defs {
			id := *def.Create.TableName
			t.Run(s.file+"/"+id, func(t *testing.T) {
				r, ok := s.resources[id]
				if !ok || r["Type"] != "AWS::DynamoDB::Table" {
					t.Fatalf("%s: no table %s", s.file, id)
				}
				want := tableShape(t, def.Create)
				if want["BillingMode"] != "PAY_PER_REQUEST" {
					t.Fatalf("dynamostore bills %v: the templates assume PAY_PER_REQUEST", want["BillingMode"])
				}
				got := map[string]any{}
				props := asMap(r["Properties"])
				// Everything of the definition, plus whatever else decides keys,
				// indexes or billing.
				keys := []string{"LocalSecondaryIndexes", "GlobalSecondaryIndexes", "ProvisionedThroughput", "KeySchema", "AttributeDefinitions", "BillingMode"}
				for k := range want {
					keys = append(keys, k)
				}
				for _, k := range keys {
					if v, ok := props[k]; ok {
						got[k] = v
					}
				}
				got = tableShape(t, got)
				for _, d := range Diff(got, want) {
					t.Errorf("%s: table %s differs from dynamostore.TableDefinitions (left: template, right: Go) at %s", s.file, id, d)
				}
				var wantTTL any
				if def.TTLAttribute != "" {
					wantTTL = map[string]any{"AttributeName": def.TTLAttribute, "Enabled": true}
				}
				if !Equal(props["TimeToLiveSpecification"], wantTTL) {
					t.Errorf("%s: table %s TimeToLiveSpecification %s, want %s", s.file, id, Format(props["TimeToLiveSpecification"]), Format(wantTTL))
				}
				if get(props, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled") != true {
					t.Errorf("%s: table %s: point-in-time recovery must be on", s.file, id)
				}
				if get(props, "SSESpecification", "SSEEnabled") != true {
					t.Errorf("%s: table %s: SSESpecification.SSEEnabled must be true", s.file, id)
				}
				if props["TableName"] != nil {
					t.Errorf("%s: table %s has a fixed TableName: let CloudFormation name it (two stacks per account, replacements)", s.file, id)
				}
				if slices.Contains(RetainedTables, id) && (r["DeletionPolicy"] != "Retain" || r["UpdateReplacePolicy"] != "Retain") {
					t.Errorf("%s: table %s: DeletionPolicy and UpdateReplacePolicy must be Retain, got %v and %v", s.file, id, r["DeletionPolicy"], r["UpdateReplacePolicy"])
				}
			})
		}
	}
}

func TestLogGroups(t *testing.T) {
	for _, s := range loadStacks(t) {
		groups := s.ofType("AWS::Logs::LogGroup")
		var want []string
		for _, fn := range Functions {
			want = append(want, fn.LogGroup)
			if !Equal(s.prop(fn.LogGroup, "RetentionInDays"), Ref("LogRetentionInDays")) {
				t.Errorf("%s: log group %s retention %s, want !Ref LogRetentionInDays", s.file, fn.LogGroup, Format(s.prop(fn.LogGroup, "RetentionInDays")))
			}
			wantName := Join("/aws/lambda/", Ref("AWS::StackName"), "-"+fn.Name)
			if !Equal(s.prop(fn.LogGroup, "LogGroupName"), wantName) {
				t.Errorf("%s: log group %s is named %s, want %s", s.file, fn.LogGroup, Format(s.prop(fn.LogGroup, "LogGroupName")), Format(wantName))
			}
		}
		sort.Strings(want)
		if !slices.Equal(groups, want) {
			t.Errorf("%s: log groups %v, want %v", s.file, groups, want)
		}
		if s.sam {
			allowed := regexp.MustCompile(`^(1|3|5|7|14|30|60|90|120|150|180|365|400|545|731|1096|1827|2192|2557|2922|3288|3653)$`)
			for _, v := range s.params["LogRetentionInDays"].Def["AllowedValues"].([]any) {
				if !allowed.MatchString(str(v)) {
					t.Errorf("%s: LogRetentionInDays allows %v, which CloudWatch Logs refuses", s.file, v)
				}
			}
		} else if get(s.doc, "functions", "receiver", "disableLogs") != true || get(s.doc, "functions", "dispatcher", "disableLogs") != true {
			t.Errorf("%s: functions need disableLogs: true, or the framework creates a second log group of the same name", s.file)
		}
	}
}

func TestEnvironment(t *testing.T) {
	known := map[string]bool{}
	for _, e := range config.Env {
		known[e] = true
	}
	required := map[string][]string{ReceiverFunction: cloud.ReceiverRequires, DispatcherFunction: cloud.DispatcherRequires}
	for _, s := range loadStacks(t) {
		for _, fn := range Functions {
			env := s.functions[fn.Name].Env
			for _, name := range required[fn.LogicalID] {
				if _, ok := fn.Env[name]; !ok {
					t.Errorf("deploy.Functions: %s lacks %s, which internal/cloud requires", fn.Name, name)
				}
			}
			for name := range fn.Env {
				if _, ok := env[name]; !ok {
					t.Errorf("%s: %s needs %s, which is not set", s.file, fn.Name, name)
				}
			}
			for name, v := range env {
				if !known[name] {
					t.Errorf("%s: %s sets %s, which internal/config does not read (config.Env)", s.file, fn.Name, name)
					continue
				}
				want, needed := fn.Env[name]
				if !needed {
					t.Errorf("%s: %s sets %s, which it does not use", s.file, fn.Name, name)
					continue
				}
				if !Equal(v, want) {
					t.Errorf("%s: %s: %s is %s, want %s", s.file, fn.Name, name, Format(v), Format(want))
				}
			}
		}
		if n, _ := strconv.Atoi(s.params["BatchSize"].Default); n > DispatcherConcurrency {
			t.Errorf("%s: BatchSize %d exceeds CONCURRENCY %d: a batch would outlast the dispatcher's timeout", s.file, n, DispatcherConcurrency)
		}
	}
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

// statement is one IAM statement, its condition ("" if unconditional).
type statement struct {
	body map[string]any
	cond string
}

func statements(t *testing.T, file, role string, r map[string]any) []statement {
	t.Helper()
	var out []statement
	policies, _ := get(r, "Properties", "Policies").([]any)
	if len(policies) == 0 {
		t.Errorf("%s: role %s has no inline policy", file, role)
	}
	for _, p := range policies {
		list, ok := get(p, "PolicyDocument", "Statement").([]any)
		if !ok {
			list = []any{get(p, "PolicyDocument", "Statement")}
		}
		for _, st := range list {
			if args, ok := get(st, "Fn::If").([]any); ok && len(args) == 3 {
				if !Equal(args[2], Ref("AWS::NoValue")) {
					t.Errorf("%s: role %s: a conditional statement must be !If [C, statement, !Ref AWS::NoValue]", file, role)
				}
				out = append(out, statement{asMap(args[1]), str(args[0])})
				continue
			}
			out = append(out, statement{body: asMap(st)})
		}
	}
	return out
}

// resourceName describes a policy resource as Permission.Resource does, or
// returns an error for anything that is not one of the stack's resources.
func resourceName(v any) (string, error) {
	if ga, ok := get(v, "Fn::GetAtt").([]any); ok && len(ga) == 2 && ga[1] == "Arn" {
		return str(ga[0]), nil
	}
	if args, ok := get(v, "Fn::Join").([]any); ok && len(args) == 2 && args[0] == "" {
		parts, _ := args[1].([]any)
		if len(parts) == 2 {
			if ga, ok := get(parts[0], "Fn::GetAtt").([]any); ok && len(ga) == 2 && ga[1] == "Arn" {
				if suffix := str(parts[1]); strings.HasPrefix(suffix, "/index/") {
					return str(ga[0]) + suffix, nil
				}
			}
		}
	}
	if s, ok := v.(string); ok && strings.Contains(s, "*") {
		return "", fmt.Errorf("the wildcard resource %q", s)
	}
	return "", fmt.Errorf("resource %s is not one stack resource's ARN (!GetAtt X.Arn, or a table's ARN + /index/NAME)", Format(v))
}

func listOf(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func TestLeastPrivilegePolicies(t *testing.T) {
	for _, s := range loadStacks(t) {
		roles := s.ofType("AWS::IAM::Role")
		var want []string
		for _, fn := range Functions {
			want = append(want, fn.Role)
		}
		sort.Strings(want)
		if !slices.Equal(roles, want) {
			t.Errorf("%s: IAM roles %v, want one per function %v", s.file, roles, want)
		}
		for _, fn := range Functions {
			t.Run(s.file+"/"+fn.Role, func(t *testing.T) {
				r := s.resources[fn.Role]
				if r == nil {
					t.Fatalf("%s: no role %s", s.file, fn.Role)
				}
				p := asMap(r["Properties"])
				for _, k := range []string{"ManagedPolicyArns", "PermissionsBoundary"} {
					if p[k] != nil {
						t.Errorf("%s: role %s has %s %s: write the statements out instead (managed policies use * resources)", s.file, fn.Role, k, Format(p[k]))
					}
				}
				trust := map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
					"Effect": "Allow", "Principal": map[string]any{"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole",
				}}}
				for _, d := range Diff(p["AssumeRolePolicyDocument"], trust) {
					t.Errorf("%s: role %s trust policy%s", s.file, fn.Role, d)
				}
				var got []Permission
				for _, st := range statements(t, s.file, fn.Role, r) {
					b := st.body
					if b["Effect"] != "Allow" {
						t.Errorf("%s: role %s: statement %v has Effect %v, want Allow", s.file, fn.Role, b["Sid"], b["Effect"])
					}
					for k := range b {
						if k != "Sid" && k != "Effect" && k != "Action" && k != "Resource" {
							t.Errorf("%s: role %s: statement %v uses %s", s.file, fn.Role, b["Sid"], k)
						}
					}
					for _, a := range listOf(b["Action"]) {
						if strings.Contains(str(a), "*") {
							t.Errorf("%s: role %s: the wildcard action %v", s.file, fn.Role, a)
						}
					}
					for _, res := range listOf(b["Resource"]) {
						name, err := resourceName(res)
						if err != nil {
							t.Errorf("%s: role %s: statement %v: %v", s.file, fn.Role, b["Sid"], err)
							continue
						}
						if _, declared := s.resources[strings.Split(name, "/")[0]]; !declared {
							t.Errorf("%s: role %s: statement %v names %s, which the template does not declare", s.file, fn.Role, b["Sid"], name)
						}
						if st.cond != "" {
							name += " if " + st.cond
						}
						for _, a := range listOf(b["Action"]) {
							got = append(got, Permission{Action: str(a), Resource: name})
						}
					}
				}
				key := func(p Permission) string { return p.Resource + " " + p.Action }
				sortPerms := func(ps []Permission) []string {
					out := make([]string, len(ps))
					for i, p := range ps {
						out[i] = key(p)
					}
					sort.Strings(out)
					return out
				}
				g, w := sortPerms(got), sortPerms(fn.Permissions)
				for _, x := range g {
					if !slices.Contains(w, x) {
						t.Errorf("%s: role %s allows %s, which %s does not need", s.file, fn.Role, x, fn.Name)
					}
				}
				for _, x := range w {
					if !slices.Contains(g, x) {
						t.Errorf("%s: role %s lacks %s", s.file, fn.Role, x)
					}
				}
				if len(g) != len(slices.Compact(slices.Clone(g))) {
					t.Errorf("%s: role %s grants some permission twice: %v", s.file, fn.Role, g)
				}
			})
		}
	}
}

func TestParameters(t *testing.T) {
	for _, s := range loadStacks(t) {
		for _, p := range Parameters {
			got, ok := s.params[p.SAM]
			name := p.SAM
			if !s.sam {
				name = "params.default." + p.Serverless
			}
			switch {
			case !ok:
				t.Errorf("%s: no parameter %s", s.file, name)
			case p.Required && got.HasDefault:
				t.Errorf("%s: %s has the default %q: it holds secrets, so it must have none", s.file, name, got.Default)
			case !p.Required && !got.HasDefault:
				t.Errorf("%s: %s has no default, want %q", s.file, name, p.Default)
			case !p.Required && got.Default != p.Default:
				t.Errorf("%s: %s defaults to %q, want %q", s.file, name, got.Default, p.Default)
			}
			if s.sam && p.Secret && got.Def["NoEcho"] != true {
				t.Errorf("%s: parameter %s holds secrets: it must be NoEcho", s.file, p.SAM)
			}
		}
		if s.sam {
			if len(s.params) != len(Parameters) {
				var names []string
				for n := range s.params {
					names = append(names, n)
				}
				sort.Strings(names)
				t.Errorf("%s: parameters %v, want the %d of deploy.Parameters", s.file, names, len(Parameters))
			}
			levels := s.params["LogLevel"].Def["AllowedValues"]
			if !Equal(levels, []any{"DEBUG", "INFO", "WARN", "ERROR"}) {
				t.Errorf("%s: LogLevel allows %s, want DEBUG INFO WARN ERROR", s.file, Format(levels))
			}
			if !Equal(s.params["EnableEcrEvents"].Def["AllowedValues"], []any{"true", "false"}) {
				t.Errorf("%s: EnableEcrEvents must allow exactly \"true\" and \"false\"", s.file)
			}
		}
	}
}

// TestServerlessCloudFormationParameters: the CloudFormation Parameters of
// serverless.yml (those its Conditions test) are template.yaml's, with the
// same constraints, each defaulting to the param of the same name, so a
// deploy passes the param's value through them.
func TestServerlessCloudFormationParameters(t *testing.T) {
	stacks := loadStacks(t)
	sam, sls := stacks[0], stacks[1]
	declared := asMap(get(sls.doc, "resources", "Parameters"))
	if len(declared) == 0 {
		t.Fatal("serverless.yml declares no CloudFormation Parameters: its Conditions would test constants")
	}
	for name, v := range declared {
		def := asMap(v)
		samDef, ok := sam.params[name]
		if !ok {
			t.Errorf("serverless.yml: resources.Parameters.%s is not a parameter of template.yaml", name)
			continue
		}
		// The normaliser reads ${param:x} as a Ref of its SAM name.
		if !Equal(def["Default"], Ref(name)) {
			t.Errorf("serverless.yml: resources.Parameters.%s defaults to %s, want the param of the same name", name, Format(def["Default"]))
		}
		for _, k := range []string{"Type", "AllowedValues", "AllowedPattern", "MinValue", "MaxValue", "NoEcho"} {
			if !Equal(def[k], samDef.Def[k]) {
				t.Errorf("serverless.yml: resources.Parameters.%s.%s is %s, template.yaml has %s", name, k, Format(def[k]), Format(samDef.Def[k]))
			}
		}
	}
	// Every parameter a condition tests is one of them.
	for name, c := range sls.conditions {
		refs(c, nil, func(target string, _ []string) {
			if _, ok := declared[target]; !ok {
				t.Errorf("serverless.yml: condition %s tests %s, which is not in resources.Parameters", name, target)
			}
		})
	}
}

// refs calls fn for every Ref and GetAtt target in v, with the conditions
// the reference is guarded by (the Fn::If branches it sits in).
func refs(v any, guard []string, fn func(target string, guard []string)) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 1 {
			if r, ok := t["Ref"].(string); ok {
				fn(r, guard)
				return
			}
			if ga, ok := t["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
				fn(str(ga[0]), guard)
				return
			}
			if args, ok := t["Fn::If"].([]any); ok && len(args) == 3 {
				refs(args[1], append(slices.Clone(guard), str(args[0])), fn)
				refs(args[2], guard, fn)
				return
			}
		}
		for _, x := range t {
			refs(x, guard, fn)
		}
	case []any:
		for _, x := range t {
			refs(x, guard, fn)
		}
	}
}

func TestReferencesResolve(t *testing.T) {
	for _, s := range loadStacks(t) {
		known := map[string]string{} // target -> its condition
		for id, r := range s.resources {
			known[id] = str(r["Condition"])
		}
		for _, g := range Generated {
			known[g] = ""
		}
		for _, p := range Parameters {
			known[p.SAM] = ""
		}
		for _, pseudo := range []string{"AWS::NoValue", "AWS::StackName", "AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"} {
			known[pseudo] = ""
		}
		check := func(where string, v any, guard []string) {
			refs(v, guard, func(target string, guard []string) {
				cond, ok := known[target]
				switch {
				case !ok:
					t.Errorf("%s: %s refers to %s, which is neither a resource nor a parameter", s.file, where, target)
				case cond != "" && !slices.Contains(guard, cond):
					t.Errorf("%s: %s refers to %s, which exists only if %s: give it that condition (or an !If on it)", s.file, where, target, cond)
				}
			})
		}
		for id, r := range s.resources {
			var guard []string
			if c := str(r["Condition"]); c != "" {
				if s.conditions[c] == nil {
					t.Errorf("%s: resource %s has the undeclared condition %s", s.file, id, c)
				}
				guard = []string{c}
			}
			check("resource "+id, r, guard)
		}
		for name, f := range s.functions {
			check("function "+name, []any{f.Env, f.Logging, f.ReservedConcurrency, f.SQS}, nil)
		}
		for name, o := range s.outputs {
			var guard []string
			if c := str(asMap(o)["Condition"]); c != "" {
				guard = []string{c}
			}
			check("output "+name, o, guard)
		}
		for name, c := range s.conditions {
			check("condition "+name, c, nil)
		}
		// Every Fn::If names a declared condition.
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				if args, ok := x["Fn::If"].([]any); ok && len(args) == 3 && s.conditions[str(args[0])] == nil {
					t.Errorf("%s: !If on the undeclared condition %v", s.file, args[0])
				}
				for _, y := range x {
					walk(y)
				}
			case []any:
				for _, y := range x {
					walk(y)
				}
			}
		}
		walk(s.doc)
	}
}

func TestEcrEventsRule(t *testing.T) {
	for _, s := range loadStacks(t) {
		want := map[string]any{"Fn::Equals": []any{Ref("EnableEcrEvents"), "true"}}
		if !Equal(s.conditions[CondEcrEvents], want) {
			t.Errorf("%s: condition %s is %s, want %s", s.file, CondEcrEvents, Format(s.conditions[CondEcrEvents]), Format(want))
		}
		for _, id := range []string{EcrEventsRule, EcrEventsPermission, EcrEventsInvokeConfig, EcrEventsDeadLetterQueue, EcrEventsDeadLetterQueuePolicy, EcrEventsDeadLetterQueueAlarm} {
			if r := s.resources[id]; r == nil || r["Condition"] != CondEcrEvents {
				t.Errorf("%s: %s must exist with Condition %s", s.file, id, CondEcrEvents)
			}
		}
		rules := s.ofType("AWS::Events::Rule")
		if !slices.Equal(rules, []string{EcrEventsRule}) {
			t.Errorf("%s: EventBridge rules %v, want only %s", s.file, rules, EcrEventsRule)
		}
		pattern := s.prop(EcrEventsRule, "EventPattern")
		if !Equal(get(pattern, "source"), []any{EcrEvents.Source}) || !Equal(get(pattern, "detail-type"), []any{EcrEvents.DetailType}) {
			t.Errorf("%s: %s pattern %s, want source [%s] and detail-type [%s]", s.file, EcrEventsRule, Format(pattern), EcrEvents.Source, EcrEvents.DetailType)
		}
		targets, _ := s.prop(EcrEventsRule, "Targets").([]any)
		if len(targets) != 1 {
			t.Fatalf("%s: %s has %d targets, want 1 (the receiver)", s.file, EcrEventsRule, len(targets))
		}
		tg := targets[0]
		if !Equal(get(tg, "Arn"), GetAtt(ReceiverFunction, "Arn")) {
			t.Errorf("%s: %s targets %s, want the receiver", s.file, EcrEventsRule, Format(get(tg, "Arn")))
		}
		if !Equal(get(tg, "DeadLetterConfig", "Arn"), GetAtt(EcrEventsDeadLetterQueue, "Arn")) || get(tg, "RetryPolicy") == nil {
			t.Errorf("%s: %s's target needs a RetryPolicy and a DeadLetterConfig to %s", s.file, EcrEventsRule, EcrEventsDeadLetterQueue)
		}
		perm := map[string]any{
			"Action": "lambda:InvokeFunction", "FunctionName": Ref(ReceiverFunction),
			"Principal": "events.amazonaws.com", "SourceArn": GetAtt(EcrEventsRule, "Arn"),
		}
		for _, d := range Diff(asMap(s.resources[EcrEventsPermission]["Properties"]), perm) {
			t.Errorf("%s: %s%s", s.file, EcrEventsPermission, d)
		}
		if !Equal(s.prop(EcrEventsInvokeConfig, "FunctionName"), Ref(ReceiverFunction)) ||
			!Equal(s.prop(EcrEventsInvokeConfig, "DestinationConfig", "OnFailure", "Destination"), GetAtt(EcrEventsDeadLetterQueue, "Arn")) {
			t.Errorf("%s: %s must send the receiver's failed ECR events to %s", s.file, EcrEventsInvokeConfig, EcrEventsDeadLetterQueue)
		}
		if get(s.prop(EcrEventsDeadLetterQueuePolicy, "PolicyDocument"), "Statement", 0, "Condition", "ArnEquals", "aws:SourceArn") == nil {
			t.Errorf("%s: %s must let only the rule (aws:SourceArn) send to the queue", s.file, EcrEventsDeadLetterQueuePolicy)
		}
		if p, ok := s.params["EnableEcrEvents"]; !ok || p.Default != "false" {
			t.Errorf("%s: ECR events must be off by default", s.file)
		}
	}
}

func TestOutputs(t *testing.T) {
	for _, s := range loadStacks(t) {
		for name, want := range Outputs {
			o := asMap(s.outputs[name])
			if o == nil {
				t.Errorf("%s: no output %s", s.file, name)
				continue
			}
			if !Equal(o["Value"], want) {
				t.Errorf("%s: output %s is %s, want %s", s.file, name, Format(o["Value"]), Format(want))
			}
			if str(o["Description"]) == "" {
				t.Errorf("%s: output %s has no description", s.file, name)
			}
		}
		for name := range s.outputs {
			if _, ok := Outputs[name]; !ok {
				t.Errorf("%s: output %s is not in deploy.Outputs", s.file, name)
			}
		}
	}
}

// TestTemplatesAgree compares the two files as wholes: every resource,
// condition and output is the same after normalisation, and so are the
// functions. A change made to only one file fails here.
func TestTemplatesAgree(t *testing.T) {
	stacks := loadStacks(t)
	sam, sls := stacks[0], stacks[1]
	onlyServerless := map[string]bool{ServerlessURLInvokePermission: true}
	ids := map[string]bool{}
	for id := range sam.resources {
		ids[id] = true
	}
	for id := range sls.resources {
		ids[id] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	for _, id := range sorted {
		a, inSAM := sam.resources[id]
		b, inSLS := sls.resources[id]
		switch {
		case onlyServerless[id]:
			if inSAM {
				t.Errorf("template.yaml declares %s, which SAM generates itself", id)
			}
		case !inSAM:
			t.Errorf("serverless.yml declares %s, template.yaml does not", id)
		case !inSLS:
			t.Errorf("template.yaml declares %s, serverless.yml does not", id)
		default:
			for _, d := range Diff(a, b) {
				t.Errorf("resource %s differs (left: template.yaml, right: serverless.yml) at %s", id, d)
			}
		}
	}
	for _, part := range []struct {
		what string
		a, b any
	}{
		{"Conditions", sam.conditions, sls.conditions},
		{"Outputs", sam.outputs, sls.outputs},
	} {
		for _, d := range Diff(part.a, part.b) {
			t.Errorf("%s differ (left: template.yaml, right: serverless.yml) at %s", part.what, d)
		}
	}
	for _, fn := range Functions {
		a, b := sam.functions[fn.Name], sls.functions[fn.Name]
		a.Build, b.Build = "", ""
		for _, d := range Diff(toValue(t, a), toValue(t, b)) {
			t.Errorf("function %s differs (left: template.yaml, right: serverless.yml) at %s", fn.Name, d)
		}
	}
	for _, p := range Parameters {
		if a, b := sam.params[p.SAM], sls.params[p.SAM]; a.Default != b.Default || a.HasDefault != b.HasDefault {
			t.Errorf("parameter %s / %s: template.yaml default %q (set: %v), serverless.yml %q (set: %v)", p.SAM, p.Serverless, a.Default, a.HasDefault, b.Default, b.HasDefault)
		}
	}
}

// toValue turns a functionSpec into a canonical value for Diff.
func toValue(t *testing.T, f functionSpec) any {
	t.Helper()
	return map[string]any{
		"Runtime": f.Runtime, "Architecture": f.Architecture, "Handler": f.Handler,
		"MemorySize": f.MemorySize, "Timeout": f.Timeout, "Role": f.Role, "Environment": f.Env,
		"LoggingConfig": f.Logging, "ReservedConcurrency": f.ReservedConcurrency,
		"URLAuthType": f.URLAuthType, "SQS": f.SQS, "OtherEvents": strings.Join(f.OtherEvents, ","),
	}
}
