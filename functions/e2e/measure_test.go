package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/regtrigger/regtrigger/internal/testserver"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// measureEnv switches on the measurements of this file (issue 5); they
// take a minute or two, so `make test` skips them:
//
//	REGTRIGGER_MEASURE=1 go test -run 'TestMeasure' -v -count=1 ./functions/e2e
//
// REGTRIGGER_MEASURE_N sets the number of cold starts (default 20).
const measureEnv = "REGTRIGGER_MEASURE"

func skipUnlessMeasuring(t *testing.T) {
	t.Helper()
	if os.Getenv(measureEnv) == "" {
		t.Skip("a measurement: set " + measureEnv + "=1")
	}
}

// buildLikeMakefile builds pkg as `make package` does (lambda.norpc,
// -trimpath, stripped), but for this machine's GOOS/GOARCH.
func buildLikeMakefile(t *testing.T, out, pkg string) {
	t.Helper()
	root, err := testserver.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w -X main.version=measure", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// TestMeasureLambdaStart: how long each function takes under the Lambda
// emulator from the emulator's start to its listening, and to the answer of
// the function's first invocation — a Function URL TCR push for the
// receiver (a trigger cache miss, a dedupe claim, an untriggered record and
// SendMessageBatch), one SQS task for the dispatcher (a delivery, its record
// and the archive) — then a second, warm one. The emulator execs bootstrap
// at the first invocation, so that one includes the function's init
// (configuration, adapters). Each of N runs is a new process, as a cold
// start is. dynalite and fauxqs run on this machine, so the first
// invocation's figure includes their latency, not AWS's; and real Lambda
// adds its own init (sandbox, code download) that this cannot show.
func TestMeasureLambdaStart(t *testing.T) {
	skipUnlessMeasuring(t)
	n := 20
	if v, err := strconv.Atoi(os.Getenv("REGTRIGGER_MEASURE_N")); err == nil && v > 0 {
		n = v
	}
	dir := t.TempDir()
	recvBin, dispBin := filepath.Join(dir, "receiver"), filepath.Join(dir, "dispatcher")
	buildLikeMakefile(t, recvBin, "./functions/receiver")
	buildLikeMakefile(t, dispBin, "./functions/dispatcher")
	for _, b := range []string{recvBin, dispBin} {
		st, err := os.Stat(b)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s (%s/%s, stripped): %d bytes", filepath.Base(b), runtime.GOOS, runtime.GOARCH, st.Size())
	}

	s := newStack(t)
	tg := newTarget(t)
	s.addTrigger(t, "deploy-nginx", tg.URL+"/hook")
	s.addTrigger(t, "release-only", tg.URL+"/release", func(tr *trigger.Trigger) { tr.Tag = "release-*" })
	env := s.env("AWS_LAMBDA_LOG_LEVEL=INFO")
	bearer := map[string]string{"Authorization": "Bearer " + registryToken}
	ctx := context.Background()

	type timings struct{ ready, first, firstInvoke, warm []time.Duration }
	var recv, disp timings
	for i := range n {
		t0 := time.Now()
		l, err := emulator.Start(recvBin, env...)
		if err != nil {
			t.Fatal(err)
		}
		recv.ready = append(recv.ready, time.Since(t0))
		for j := range 2 {
			t1 := time.Now()
			var ans httpAnswer
			if err := l.InvokeJSON(ctx, urlRequest("POST", "/v1/notify", "", bearer, tcrPushBody(fmt.Sprintf("v%d.%d-%d", i, j, t0.UnixNano())), false), &ans); err != nil || ans.StatusCode != 202 {
				l.Stop()
				t.Fatalf("receiver: %d %s %v\n%s", ans.StatusCode, ans.Body, err, l.Logs())
			}
			if j == 0 {
				recv.first = append(recv.first, time.Since(t0))
				recv.firstInvoke = append(recv.firstInvoke, time.Since(t1))
			} else {
				recv.warm = append(recv.warm, time.Since(t1))
			}
		}
		l.Stop()

		t0 = time.Now()
		l, err = emulator.Start(dispBin, env...)
		if err != nil {
			t.Fatal(err)
		}
		disp.ready = append(disp.ready, time.Since(t0))
		for j := range 2 {
			ev := receiveOne(t, s)
			t1 := time.Now()
			var resp events.SQSEventResponse
			if err := l.InvokeJSON(ctx, ev, &resp); err != nil || len(resp.BatchItemFailures) != 0 {
				l.Stop()
				t.Fatalf("dispatcher: %+v %v\n%s", resp, err, l.Logs())
			}
			if j == 0 {
				disp.first = append(disp.first, time.Since(t0))
				disp.firstInvoke = append(disp.firstInvoke, time.Since(t1))
			} else {
				disp.warm = append(disp.warm, time.Since(t1))
			}
		}
		l.Stop()
	}
	if got := len(tg.deliveries()); got != 2*n {
		t.Errorf("%d deliveries, want %d", got, 2*n)
	}
	t.Logf("%d cold starts each, %s/%s, %d CPUs; median [min … max]", n, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	t.Logf("%-10s %-34s %-34s %-34s %-34s", "", "start → emulator listening", "start → first answer", "first invocation", "second (warm) invocation")
	for _, row := range []struct {
		name string
		t    timings
	}{{"receiver", recv}, {"dispatcher", disp}} {
		t.Logf("%-10s %-34s %-34s %-34s %-34s", row.name, spread(row.t.ready), spread(row.t.first), spread(row.t.firstInvoke), spread(row.t.warm))
	}
}

// TestMeasureLambdaLogs: the log lines (JSON, application level INFO as the
// templates set) and their bytes per notification and per delivery — what
// CloudWatch Logs ingests — and the warm invocation durations.
func TestMeasureLambdaLogs(t *testing.T) {
	skipUnlessMeasuring(t)
	s := newStack(t)
	tg := newTarget(t)
	s.addTrigger(t, "deploy-nginx", tg.URL+"/hook")
	s.addTrigger(t, "release-only", tg.URL+"/release", func(tr *trigger.Trigger) { tr.Tag = "release-*" })
	env := s.env("AWS_LAMBDA_LOG_LEVEL=INFO")
	bearer := map[string]string{"Authorization": "Bearer " + registryToken}
	ctx := context.Background()
	const k = 30 // notifications: their lines stay within the 64 KiB the runner keeps

	recv := startLambda(t, "lambda-receiver", env)
	before := settled(recv)
	var took []time.Duration
	for i := range k {
		t0 := time.Now()
		var ans httpAnswer
		if err := recv.InvokeJSON(ctx, urlRequest("POST", "/v1/notify", "", bearer, tcrPushBody(fmt.Sprintf("v%d-%d", i, time.Now().UnixNano())), false), &ans); err != nil || ans.StatusCode != 202 {
			t.Fatalf("receiver: %d %s %v", ans.StatusCode, ans.Body, err)
		}
		took = append(took, time.Since(t0))
	}
	recvLogs := settled(recv)[len(before):]
	logLines(t, "receiver, per notification (1 task, 1 near miss)", recvLogs, k)
	t.Logf("receiver warm invocations: %s", spread(took[1:]))

	disp := startLambda(t, "lambda-dispatcher", env)
	before = settled(disp)
	took = took[:0]
	for done := 0; done < k; {
		ev := s.receive(t, min(10, k-done))
		t0 := time.Now()
		if resp := dispatch(t, disp, ev); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures %+v", resp.BatchItemFailures)
		}
		took = append(took, time.Since(t0))
		done += len(ev.Records)
	}
	logLines(t, "dispatcher, per delivery (success)", settled(disp)[len(before):], k)
	t.Logf("dispatcher invocations of 10 tasks: %s", spread(took))
}

// tcrPushBody is events/bodies/tcr-push.json with another tag.
func tcrPushBody(tag string) []byte {
	return []byte(fmt.Sprintf(`{"type":"pushImage","occur_at":%d,"event_data":{"resources":[{"digest":"sha256:89a42c3ba15f09a3fbe39856bddacdf9e94cd03df7403cad4fc1056ee268fc9","tag":%q,"resource_url":"xxx-bj.tencentcloudcr.com/public/nginx:%s"}],"repository":{"date_created":1587119137,"name":"nginx","namespace":"public","repo_full_name":"public/nginx","repo_type":"public"}},"operator":"332133xxxx"}`,
		time.Now().Unix(), tag, tag))
}

// receiveOne takes exactly one message off the queue as an SQS event.
func receiveOne(t *testing.T, s *stack) events.SQSEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := s.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(s.queueURL), MaxNumberOfMessages: 1, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			attrs := map[string]events.SQSMessageAttribute{}
			for k, v := range m.MessageAttributes {
				attrs[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue}
			}
			return events.SQSEvent{Records: []events.SQSMessage{{
				MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
				MessageAttributes: attrs, EventSource: "aws:sqs", EventSourceARN: "arn:aws:sqs:us-east-1:000000000000:tasks",
			}}}
		}
	}
	t.Fatal("no message on the queue")
	return events.SQSEvent{}
}

// settled returns the function's output once it has stopped growing for
// 300 ms (lines reach the buffer through a pipe, a moment after they are
// written).
func settled(l *testserver.Lambda) string {
	prev := l.Logs()
	for stable := time.Now(); time.Since(stable) < 300*time.Millisecond; {
		time.Sleep(20 * time.Millisecond)
		if cur := l.Logs(); cur != prev {
			prev, stable = cur, time.Now()
		}
	}
	return prev
}

// logLines reports the lines of logs per unit, by kind (msg, or the EMF
// metric), with their bytes.
func logLines(t *testing.T, what, logs string, units int) {
	t.Helper()
	if len(logs) >= 60<<10 {
		t.Fatalf("%s: the output reached the runner's 64 KiB cap; measure fewer", what)
	}
	kinds := map[string][2]int{} // kind -> lines, bytes
	total, bytes := 0, 0
	for _, line := range strings.Split(strings.TrimRight(logs, "\n"), "\n") {
		if line == "" {
			continue
		}
		kind := "other"
		switch {
		case strings.Contains(line, `"_aws"`):
			kind = "EMF " + between(line, `"Metrics":[{"Name":"`, `"`)
		case strings.Contains(line, `"message":"`): // lambdacontext's key for slog's msg
			kind = between(line, `"message":"`, `"`)
		}
		k := kinds[kind]
		k[0]++
		k[1] += len(line) + 1
		kinds[kind] = k
		total++
		bytes += len(line) + 1
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "\n  %-40s %5.2f lines %7.0f bytes", k, float64(kinds[k][0])/float64(units), float64(kinds[k][1])/float64(units))
	}
	t.Logf("%s: %.2f lines, %.0f bytes%s", what, float64(total)/float64(units), float64(bytes)/float64(units), b.String())
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return "?"
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}

// spread is "median [min … max]" in milliseconds.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	f := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return fmt.Sprintf("%s ms [%s … %s]", f(med), f(s[0]), f(s[len(s)-1]))
}
