package deploy

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/regtrigger/regtrigger/internal/auth"
	"github.com/regtrigger/regtrigger/internal/cloud"
	"github.com/regtrigger/regtrigger/internal/config"
	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/receiver"
	"github.com/regtrigger/regtrigger/internal/registry"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

var update = flag.Bool("update", false, "rewrite the sample events in events/lambda from their sources")

// The sample invocation events for `sam local invoke` (events/lambda) are
// built here from the repository's own sources - the registry bodies in
// events/bodies, the ECR fixture, the task contract of sqsqueue.Encode, the
// functions' environment - so they cannot drift: TestSampleEvents fails when
// a file differs from what this code builds, and -update rewrites it.

const sampleDir = "events/lambda"

// The example registry tokens of the samples and env.json (never real ones).
const (
	sampleTCRToken = "example-tcr-token-0123456789abcdef"
	sampleACRToken = "example-acr-token-0123456789abcdef"
)

// sampleTime is the TCR sample body's occur_at, the moment every sample
// pretends to be from.
var sampleTime = time.Unix(1589106605, 0).UTC()

// urlRequest is a Lambda Function URL invocation (payload format 2.0) in the
// shape and field order AWS documents; the functions read it as
// events.APIGatewayV2HTTPRequest.
type urlRequest struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	RequestContext        urlContext        `json:"requestContext"`
	Body                  string            `json:"body"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

type urlContext struct {
	AccountID    string `json:"accountId"`
	APIID        string `json:"apiId"`
	DomainName   string `json:"domainName"`
	DomainPrefix string `json:"domainPrefix"`
	HTTP         struct {
		Method    string `json:"method"`
		Path      string `json:"path"`
		Protocol  string `json:"protocol"`
		SourceIP  string `json:"sourceIp"`
		UserAgent string `json:"userAgent"`
	} `json:"http"`
	RequestID string `json:"requestId"`
	RouteKey  string `json:"routeKey"`
	Stage     string `json:"stage"`
	Time      string `json:"time"`
	TimeEpoch int64  `json:"timeEpoch"`
}

const sampleURLID = "abcdefghijklmnopqrstuvwxyz012345"

func urlEvent(path, query string, header map[string]string, body []byte, base64Body bool, requestID, userAgent, sourceIP string) urlRequest {
	h := map[string]string{
		"host":                    sampleURLID + ".lambda-url.us-east-1.on.aws",
		"user-agent":              userAgent,
		"content-length":          fmt.Sprint(len(body)),
		"accept-encoding":         "gzip",
		"x-amzn-tls-version":      "TLSv1.3",
		"x-amzn-tls-cipher-suite": "TLS_AES_128_GCM_SHA256",
		"x-amzn-trace-id":         "Root=1-5eb7d7ad-0123456789abcdef01234567",
		"x-forwarded-for":         sourceIP,
		"x-forwarded-proto":       "https",
		"x-forwarded-port":        "443",
	}
	for k, v := range header {
		h[k] = v
	}
	r := urlRequest{
		Version: "2.0", RouteKey: "$default", RawPath: path, RawQueryString: query, Headers: h,
		Body: string(body), IsBase64Encoded: base64Body,
	}
	if base64Body {
		r.Body = base64.StdEncoding.EncodeToString(body)
	}
	if query != "" {
		q, _ := url.ParseQuery(query)
		r.QueryStringParameters = map[string]string{}
		for k := range q {
			r.QueryStringParameters[k] = q.Get(k)
		}
	}
	c := &r.RequestContext
	c.AccountID = "anonymous" // what a NONE-auth Function URL reports
	c.APIID, c.DomainPrefix = sampleURLID, sampleURLID
	c.DomainName = h["host"]
	c.HTTP.Method, c.HTTP.Path, c.HTTP.Protocol, c.HTTP.SourceIP, c.HTTP.UserAgent = http.MethodPost, path, "HTTP/1.1", sourceIP, userAgent
	c.RequestID, c.RouteKey, c.Stage = requestID, "$default", "$default"
	c.Time = sampleTime.Format("02/Jan/2006:15:04:05 -0700")
	c.TimeEpoch = sampleTime.UnixMilli()
	return r
}

func readRepo(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func marshalSample(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sampleTask is the task the receiver would queue for the TCR sample body
// and the example trigger deploy-nginx (examples/triggers.yaml).
func sampleTask(t *testing.T) delivery.Task {
	t.Helper()
	evs, err := registry.Parse(registry.Notification{
		Body:       readRepo(t, "events/bodies/tcr-push.json"),
		Header:     http.Header{"Content-Type": {"application/json"}},
		ReceivedAt: sampleTime,
	}, "")
	if err != nil || len(evs) != 1 {
		t.Fatalf("events/bodies/tcr-push.json: %d events, %v", len(evs), err)
	}
	tr := trigger.Trigger{
		Name: "deploy-nginx", Description: "Roll out nginx when a v1.x tag is pushed.", Enabled: true,
		Actions: []event.Action{event.PushImage}, Namespace: "public", Repository: "nginx", Tag: "v1.*",
		URL: "https://deploy.example.com/hooks/nginx", Headers: map[string]string{"X-Team": "web"},
		Format: payload.TCR, Version: 1, UpdatedAt: sampleTime.Add(-24 * time.Hour),
	}
	id := receiver.TaskID(receiver.Fingerprint(evs[0]), tr.Name)
	return delivery.NewTask(id, &tr, evs[0], sampleTime.Add(time.Second))
}

// md5OfAttributes is SQS's MD5 of message attributes: over the attributes
// sorted by name, each as length-prefixed name, length-prefixed data type,
// a transport byte (1: string) and the length-prefixed value.
func md5OfAttributes(attrs map[string]events.SQSMessageAttribute) string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	h := md5.New()
	field := func(s string) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(s)))
		h.Write(l[:])
		h.Write([]byte(s))
	}
	for _, n := range names {
		a := attrs[n]
		field(n)
		field(a.DataType)
		h.Write([]byte{1})
		field(*a.StringValue)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sqsSample(t *testing.T) events.SQSEvent {
	t.Helper()
	task := sampleTask(t)
	body, err := sqsqueue.Encode(task)
	if err != nil {
		t.Fatal(err)
	}
	s := func(v string) *string { return &v }
	attrs := map[string]events.SQSMessageAttribute{
		sqsqueue.AttrTaskID:  {DataType: "String", StringValue: s(task.ID), StringListValues: []string{}, BinaryListValues: [][]byte{}},
		sqsqueue.AttrAttempt: {DataType: "Number", StringValue: s(fmt.Sprint(task.Attempt)), StringListValues: []string{}, BinaryListValues: [][]byte{}},
	}
	sum := md5.Sum([]byte(body))
	sent := sampleTime.Add(time.Second).UnixMilli()
	return events.SQSEvent{Records: []events.SQSMessage{{
		MessageId:              "059f36b4-87a3-44ab-83d2-661975830a7d",
		ReceiptHandle:          "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...example",
		Body:                   body,
		Md5OfBody:              hex.EncodeToString(sum[:]),
		Md5OfMessageAttributes: md5OfAttributes(attrs),
		Attributes: map[string]string{
			"ApproximateReceiveCount":          "1",
			"SentTimestamp":                    fmt.Sprint(sent),
			"SenderId":                         "AROAEXAMPLEROLEID:regtrigger-receiver",
			"ApproximateFirstReceiveTimestamp": fmt.Sprint(sent + 20),
		},
		MessageAttributes: attrs,
		EventSourceARN:    "arn:aws:sqs:us-east-1:123456789012:regtrigger-TaskQueue-EXAMPLE",
		EventSource:       "aws:sqs",
		AWSRegion:         "us-east-1",
	}}}
}

// envSample is env.json for `sam local invoke --env-vars`: every variable
// of each function (SAM only overrides variables the template declares),
// with placeholders for the deployed stack's table names and queue URL.
func envSample() map[string]map[string]string {
	placeholder := map[string]string{
		TriggersTable:    "regtrigger-TriggersTable-EXAMPLE",
		RecordsTable:     "regtrigger-RecordsTable-EXAMPLE",
		DedupeTable:      "regtrigger-DedupeTable-EXAMPLE",
		TaskQueue:        "https://sqs.us-east-1.amazonaws.com/123456789012/regtrigger-TaskQueue-EXAMPLE",
		"RegistryTokens": "tcr:tcr=" + sampleTCRToken + ";acr:acr=" + sampleACRToken,
	}
	defaults := map[string]string{}
	for _, p := range Parameters {
		defaults[p.SAM] = p.Default
	}
	out := map[string]map[string]string{}
	for _, fn := range Functions {
		env := map[string]string{}
		for name, v := range fn.Env {
			var ref string
			if m := subVar.FindStringSubmatch(v); m != nil && m[0] == v {
				ref = m[1]
			}
			switch {
			case placeholder[ref] != "":
				env[name] = placeholder[ref]
			case ref != "":
				env[name] = defaults[ref]
			default:
				env[name] = v
			}
		}
		out[fn.LogicalID] = env
	}
	return out
}

type sampleFile struct {
	name  string
	build func(t *testing.T) []byte
}

func samples() []sampleFile {
	return []sampleFile{
		{"function-url-tcr-bearer.json", func(t *testing.T) []byte {
			return marshalSample(t, urlEvent("/v1/notify", "",
				map[string]string{"authorization": "Bearer " + sampleTCRToken, "content-type": "application/json"},
				readRepo(t, "events/bodies/tcr-push.json"), false,
				"c6af9ac6-7b61-11e6-9a41-93e812345678", "Go-http-client/1.1", "203.0.113.10"))
		}},
		// Aliyun ACR can only vary the URL: the token comes as ?token=. A body
		// without a text content type reaches the function base64-encoded.
		{"function-url-acr-base64-token.json", func(t *testing.T) []byte {
			return marshalSample(t, urlEvent("/v1/notify/acr", "token="+sampleACRToken, nil,
				readRepo(t, "events/bodies/acr-push.json"), true,
				"0b0bd4e2-7b62-11e6-9a41-93e812345678", "Apache-HttpClient/4.5.13 (Java/1.8.0_292)", "198.51.100.20"))
		}},
		{"sqs-task.json", func(t *testing.T) []byte { return marshalSample(t, sqsSample(t)) }},
		{"eventbridge-ecr-push.json", func(t *testing.T) []byte {
			return readRepo(t, "internal/registry/testdata/registry-payloads/aws-ecr/image-action-push.json")
		}},
		{"env.json", func(t *testing.T) []byte { return marshalSample(t, envSample()) }},
	}
}

func TestSampleEvents(t *testing.T) {
	dir := filepath.Join(root, sampleDir)
	want := map[string]bool{}
	for _, s := range samples() {
		want[s.name] = true
		t.Run(s.name, func(t *testing.T) {
			b := s.build(t)
			path := filepath.Join(dir, s.name)
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./internal/deploy/ -run TestSampleEvents -update writes it)", err)
			}
			if !bytes.Equal(got, b) {
				t.Errorf("%s/%s is stale: its sources changed; run go test ./internal/deploy/ -run TestSampleEvents -update", sampleDir, s.name)
			}
		})
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("%s/%s is not built by TestSampleEvents: add it to samples() or remove it", sampleDir, e.Name())
		}
	}
}

// decodeStrict decodes b into v, refusing fields v does not have.
func decodeStrict(t *testing.T, name string, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s does not decode as %T: %v", name, v, err)
	}
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	return readRepo(t, filepath.Join(sampleDir, name))
}

// sampleSecrets returns the secrets of env.json's registry spec, which must
// be one the receiver accepts.
func sampleSecrets(t *testing.T) []string {
	t.Helper()
	spec := envSample()[ReceiverFunction][config.EnvRegistries]
	regs, err := auth.ParseSpec(spec)
	if err != nil || len(regs) != 2 {
		t.Fatalf("env.json's %s: %d registries, %v; want 2", config.EnvRegistries, len(regs), err)
	}
	var secrets []string
	for _, entry := range strings.Split(spec, ";") {
		_, list, _ := strings.Cut(entry, "=")
		secrets = append(secrets, strings.Split(list, ",")...)
	}
	return secrets
}

func TestSampleFunctionURLEvents(t *testing.T) {
	secrets := sampleSecrets(t)
	for _, tc := range []struct {
		file, body string
		base64     bool
		token      func(r events.APIGatewayV2HTTPRequest) string
	}{
		{"function-url-tcr-bearer.json", "events/bodies/tcr-push.json", false, func(r events.APIGatewayV2HTTPRequest) string {
			return strings.TrimPrefix(r.Headers["authorization"], "Bearer ")
		}},
		{"function-url-acr-base64-token.json", "events/bodies/acr-push.json", true, func(r events.APIGatewayV2HTTPRequest) string {
			q, err := url.ParseQuery(r.RawQueryString)
			if err != nil {
				t.Fatal(err)
			}
			return q.Get("token")
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b := readSample(t, tc.file)
			// What functions/receiver's handler takes...
			var req events.APIGatewayV2HTTPRequest
			decodeStrict(t, tc.file, b, &req)
			// ...and the Function URL type, which lacks routeKey and stage.
			var furl events.LambdaFunctionURLRequest
			if err := json.Unmarshal(b, &furl); err != nil {
				t.Fatal(err)
			}
			if req.Version != "2.0" || furl.RequestContext.HTTP.Method != http.MethodPost || !strings.HasPrefix(req.RawPath, "/v1/notify") {
				t.Errorf("%s: want a payload 2.0 POST to /v1/notify, got version %q %s %s", tc.file, req.Version, furl.RequestContext.HTTP.Method, req.RawPath)
			}
			body := []byte(req.Body)
			if req.IsBase64Encoded != tc.base64 {
				t.Fatalf("%s: isBase64Encoded %v, want %v", tc.file, req.IsBase64Encoded, tc.base64)
			}
			if req.IsBase64Encoded {
				var err error
				if body, err = base64.StdEncoding.DecodeString(req.Body); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(body, readRepo(t, tc.body)) {
				t.Errorf("%s: the body is not %s", tc.file, tc.body)
			}
			token := tc.token(req)
			if len(token) < auth.MinTokenLength || !slices.Contains(secrets, token) {
				t.Errorf("%s: token %q is not one of env.json's registries (at least %d characters)", tc.file, token, auth.MinTokenLength)
			}
		})
	}
}

func TestSampleSQSEvent(t *testing.T) {
	const file = "sqs-task.json"
	var ev events.SQSEvent
	decodeStrict(t, file, readSample(t, file), &ev)
	if len(ev.Records) != 1 {
		t.Fatalf("%s: %d records, want 1", file, len(ev.Records))
	}
	m := ev.Records[0]
	task, err := sqsqueue.Decode(m.Body)
	if err != nil {
		t.Fatalf("%s: the body is not a task message: %v", file, err)
	}
	if !regexp.MustCompile(`^tsk_[0-9a-f]{32}$`).MatchString(task.ID) || task.Trigger.Name == "" || task.Event.Namespace != "public" {
		t.Errorf("%s: an unlikely task: id %q, trigger %q, namespace %q", file, task.ID, task.Trigger.Name, task.Event.Namespace)
	}
	if id := m.MessageAttributes[sqsqueue.AttrTaskID].StringValue; id == nil || *id != task.ID {
		t.Errorf("%s: the %s attribute does not match the task", file, sqsqueue.AttrTaskID)
	}
	if _, ok := m.MessageAttributes[sqsqueue.AttrNotBefore]; ok {
		t.Errorf("%s: a first attempt carries no %s", file, sqsqueue.AttrNotBefore)
	}
	sum := md5.Sum([]byte(m.Body))
	if m.Md5OfBody != hex.EncodeToString(sum[:]) || m.Md5OfMessageAttributes != md5OfAttributes(m.MessageAttributes) {
		t.Errorf("%s: md5OfBody or md5OfMessageAttributes is wrong", file)
	}
	if m.EventSource != "aws:sqs" || !strings.HasPrefix(m.EventSourceARN, "arn:aws:sqs:") {
		t.Errorf("%s: not an SQS record: %s %s", file, m.EventSource, m.EventSourceARN)
	}
}

func TestSampleEventBridgeEvent(t *testing.T) {
	const file = "eventbridge-ecr-push.json"
	b := readSample(t, file)
	var ecr events.ECRImageActionEvent
	decodeStrict(t, file, b, &ecr)
	var eb events.EventBridgeEvent
	decodeStrict(t, file, b, &eb)
	// The event is one the templates' rule sends to the receiver.
	for _, s := range stacksFor(t, changedParams) {
		pattern := s.prop(EcrEventsRule, "EventPattern")
		for key, got := range map[string]string{"source": ecr.Source, "detail-type": ecr.DetailType} {
			if l := list(lookup(pattern, key)); len(l) != 1 || l[0] != got {
				t.Errorf("%s: %s's %s is %q: %s's rule would not send it", file, file, key, got, s)
			}
		}
		if want := list(lookup(pattern, "detail", "result")); len(want) > 0 && want[0] != ecr.Detail.Result {
			t.Errorf("%s: result %q, the rule wants %v", file, ecr.Detail.Result, want)
		}
	}
	if ecr.Detail.ActionType != "PUSH" || ecr.Detail.RepositoryName == "" || ecr.Detail.ImageTag == "" {
		t.Errorf("%s: want a push with a repository and a tag, got %+v", file, ecr.Detail)
	}
}

func TestSampleEnv(t *testing.T) {
	var env map[string]map[string]string
	decodeStrict(t, "env.json", readSample(t, "env.json"), &env)
	for _, s := range stacksFor(t, defaultParams)[:1] { // SAM's: sam local invoke reads template.yaml
		for _, fn := range Functions {
			got := env[fn.LogicalID]
			if len(got) != len(fn.Env) {
				t.Errorf("env.json: %s has %d variables, the function %d", fn.LogicalID, len(got), len(fn.Env))
			}
			for name := range got {
				if lookup(s.prop(fn.LogicalID, "Environment", "Variables"), name) == nil {
					t.Errorf("env.json: %s.%s is not declared in template.yaml (sam local ignores it)", fn.LogicalID, name)
				}
			}
			getenv := func(k string) string { return got[k] }
			requires := cloud.ReceiverRequires
			if fn.LogicalID == DispatcherFunction {
				requires = cloud.DispatcherRequires
			}
			if _, err := config.FromEnv(getenv, requires...); err != nil {
				t.Errorf("env.json: %s: %v", fn.LogicalID, err)
			}
		}
	}
}
