package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/regtrigger/regtrigger/internal/dynamostore"
	"github.com/regtrigger/regtrigger/internal/event"
	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/testserver"
	"github.com/regtrigger/regtrigger/internal/teststack"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

var (
	dynalite, fauxqs *testserver.Server
	// emulator runs the Lambda binaries: AWS's Runtime Interface Emulator,
	// built at the version go.mod pins.
	emulator *testserver.Emulator
	// bins are the function binaries, by package path.
	bins = map[string]string{}
)

// TestMain starts dynalite and fauxqs and builds the function binaries and
// the Lambda emulator once.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if dynalite, err = testserver.Dynalite(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer dynalite.Stop()
	if fauxqs, err = testserver.Fauxqs(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer fauxqs.Stop()
	dir, err := os.MkdirTemp("", "regtrigger-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, b := range builds {
		bin := filepath.Join(dir, b.name)
		if err := testserver.Build(bin, b.pkg, b.tags...); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		bins[b.name] = bin
	}
	if emulator, err = testserver.BuildEmulator(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// builds are the binaries the tests run, as the Makefile builds them.
var builds = []struct {
	name string
	pkg  string
	tags []string
}{
	{"lambda-receiver", "./functions/receiver", []string{"lambda.norpc"}},
	{"lambda-dispatcher", "./functions/dispatcher", []string{"lambda.norpc"}},
	{"scf-receiver", "./functions/receiver", []string{"scf"}},
	{"scf-dispatcher", "./functions/dispatcher", []string{"scf"}},
}

// Secrets of the tests' registries and triggers.
const (
	registryToken = "tcr-token-0123456789abcdef"
	signingSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// stack is one test's tables and queue.
type stack struct {
	store    *dynamostore.Store
	sqs      *sqs.Client
	queueURL string
	dlqURL   string
	names    dynamostore.TableNames
}

// newStack creates fresh tables and queues.
func newStack(t *testing.T) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := teststack.New(ctx, dynalite.URL, fauxqs.URL, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	return &stack{store: st.Store, sqs: st.SQS, queueURL: st.QueueURL, dlqURL: st.DLQURL, names: st.Tables}
}

// env is the functions' environment for this stack, as template.yaml sets
// it, plus the SDK's standard endpoint variables pointing at the servers.
func (s *stack) env(extra ...string) []string {
	return append([]string{
		"TRIGGERS_TABLE=" + s.names.Triggers,
		"RECORDS_TABLE=" + s.names.Records,
		"DEDUPE_TABLE=" + s.names.Dedupe,
		"QUEUE_URL=" + s.queueURL,
		"REGTRIGGER_REGISTRIES=tcr-prod=" + registryToken,
		"ALLOW_PRIVATE_CIDRS=127.0.0.1/32",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_LOG_LEVEL=DEBUG",
	}, append(testserver.AWSEnv(dynalite.URL, fauxqs.URL), extra...)...)
}

// addTrigger stores a validated trigger for namespace public, repository
// nginx, tags v*, delivering to url.
func (s *stack) addTrigger(t *testing.T, name, url string, mutate ...func(*trigger.Trigger)) trigger.Trigger {
	t.Helper()
	tr := trigger.Trigger{
		Name: name, Enabled: true, Actions: []event.Action{event.PushImage},
		Namespace: "public", Repository: "nginx", Tag: "v*",
		URL: url, Headers: map[string]string{"X-Deploy": "yes"}, Format: payload.TCR,
		Secrets: []string{signingSecret},
	}
	for _, m := range mutate {
		m(&tr)
	}
	// The same allowance the functions get through ALLOW_PRIVATE_CIDRS.
	rules := trigger.Rules{AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	if probs := rules.Validate(&tr); len(probs) > 0 {
		t.Fatalf("trigger %s: %v", name, probs)
	}
	stored, err := s.store.Triggers().Create(context.Background(), tr)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// target is a webhook server on loopback answering with scripted statuses.
type target struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []delivered
}

type delivered struct {
	header http.Header
	body   []byte
}

func newTarget(t *testing.T, statuses ...int) *target {
	tg := &target{statuses: statuses}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		tg.mu.Lock()
		tg.got = append(tg.got, delivered{header: r.Header.Clone(), body: b})
		status := http.StatusOK
		if len(tg.statuses) > 0 {
			status = tg.statuses[0]
			if len(tg.statuses) > 1 {
				tg.statuses = tg.statuses[1:]
			}
		}
		tg.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) deliveries() []delivered {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]delivered(nil), tg.got...)
}

// body reads a file of the repository.
func body(t *testing.T, path string) []byte {
	t.Helper()
	root, err := testserver.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonLines returns the lines of logs that are JSON objects containing sub.
func jsonLines(logs, sub string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.HasPrefix(l, "{") && strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return out
}
