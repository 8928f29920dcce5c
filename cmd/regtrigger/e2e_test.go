package main

// End-to-end tests: they build the real regtrigger binary, run `serve` as a
// separate process against a bbolt file, post real registry bodies over
// HTTP and watch a local target server receive the deliveries. The target is
// reached the way a user would reach one: --allow-private 127.0.0.1/32.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/record"
	"github.com/regtrigger/regtrigger/internal/signature"
)

var binary string // built once in TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "regtrigger-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "regtrigger")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build regtrigger:", err)
		os.Exit(1)
	}
	code := m.Run()
	stopAWSServers() // started by the --store dynamodb tests, if any ran
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	e2eToken  = "e2e-token-0123456789abcdef"
	e2eSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// target is a webhook server that records what it receives and answers
// with the statuses it is told, in order (the last one repeats).
type target struct {
	srv      *httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []delivered
	arrived  chan struct{}
}

type delivered struct {
	header http.Header
	body   []byte
}

func newTarget(t *testing.T, statuses ...int) *target {
	tg := &target{statuses: statuses, arrived: make(chan struct{}, 100)}
	tg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tg.mu.Lock()
		tg.got = append(tg.got, delivered{r.Header.Clone(), body})
		status := 200
		if len(tg.statuses) > 0 {
			status = tg.statuses[0]
			if len(tg.statuses) > 1 {
				tg.statuses = tg.statuses[1:]
			}
		}
		tg.mu.Unlock()
		w.WriteHeader(status)
		select {
		case tg.arrived <- struct{}{}:
		default: // wait() is already due to look again
		}
	}))
	t.Cleanup(tg.srv.Close)
	return tg
}

func (tg *target) setStatuses(s ...int) {
	tg.mu.Lock()
	tg.statuses = s
	tg.mu.Unlock()
}

// wait blocks until n requests have arrived in all.
func (tg *target) wait(t *testing.T, n int, within time.Duration) []delivered {
	t.Helper()
	deadline := time.After(within)
	for {
		tg.mu.Lock()
		got := append([]delivered(nil), tg.got...)
		tg.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-tg.arrived:
		case <-deadline:
			t.Fatalf("target got %d request(s) within %v, want %d", len(got), within, n)
		}
	}
}

func (tg *target) count() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return len(tg.got)
}

func writeTriggers(t *testing.T, dir, url string) string {
	t.Helper()
	p := filepath.Join(dir, "triggers.yaml")
	y := fmt.Sprintf(`triggers:
  - name: deploy-nginx
    actions: [pushImage]
    namespace: public
    repository: nginx
    tag: "v1.*"
    url: %s/hook?key=querysecret
    headers:
      X-Deploy-Key: headersecret
    secret: %s
  - name: only-deletes
    actions: [deleteImage]
    namespace: public
    url: %s/deletes
  - name: wrong-tag
    actions: [pushImage]
    namespace: public
    tag: "release-*"
    url: %s/releases
`, url, e2eSecret, url, url)
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// server is one running `regtrigger serve`.
type server struct {
	cmd  *exec.Cmd
	addr string
	logs *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

// startServe starts serve on data with the tests' defaults (fast retries:
// 200ms,400ms) and args; a --retry-schedule in args replaces the default
// one (the flag appends when given twice).
func startServe(t *testing.T, data string, args ...string) *server {
	t.Helper()
	all := []string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--log-format", "json", "--log-level", "debug",
		"--allow-private", "127.0.0.1/32", "--registry", "e2e=" + e2eToken, "--drain", "2s"}
	if !slices.Contains(args, "--retry-schedule") {
		all = append(all, "--retry-schedule", "200ms,400ms")
	}
	all = append(all, args...)
	cmd := exec.Command(binary, all...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			s.mu.Lock()
			s.logs.Write(line)
			s.logs.WriteByte('\n')
			s.mu.Unlock()
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m["msg"] == "regtrigger serving" {
				addr <- m["addr"].(string)
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.kill() })
	select {
	case a := <-addr:
		s.addr = "http://" + a
	case <-s.done:
		t.Fatalf("serve exited at start:\n%s", s.logText())
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not start:\n%s", s.logText())
	}
	return s
}

func (s *server) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// waitLog waits until serve has logged a line containing sub.
func (s *server) waitLog(t *testing.T, sub string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(s.logText(), sub) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not log %s:\n%s", sub, s.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop on SIGTERM:\n%s", s.logText())
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, s.logText())
	}
}

// kill ends the process at once, as a crash would.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

func (s *server) post(t *testing.T, path, file, token string, header ...string) (int, map[string]any) {
	t.Helper()
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return s.postBody(t, path, body, token, header...)
}

func (s *server) postBody(t *testing.T, path string, body []byte, token string, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", s.addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer is not JSON: %q", b)
	}
	return resp.StatusCode, m
}

// cli runs a regtrigger command and returns its standard output.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("regtrigger %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func records(t *testing.T, data string, args ...string) []record.Record {
	t.Helper()
	out := cli(t, append([]string{"logs", "--data", data, "-o", "json", "--limit", "1000"}, args...)...)
	return decodeLines[record.Record](t, out)
}

// decodeLines decodes a command's JSON-lines output.
func decodeLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var all []T
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		all = append(all, v)
	}
	return all
}

func TestServeDeliversSignedRequestAndLogs(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	tg := newTarget(t, 200)
	s := startServe(t, data, "--triggers", writeTriggers(t, dir, tg.srv.URL))

	status, ans := s.post(t, "/v1/notify", "testdata/tcr-push.json", e2eToken)
	if status != http.StatusAccepted {
		t.Fatalf("status %d: %v", status, ans)
	}
	if ans["tasks"].(float64) != 1 {
		t.Fatalf("want one task, got %v", ans)
	}
	got := tg.wait(t, 1, 10*time.Second)[0]

	// The body is the TCR shape, the headers as configured, the signature valid.
	var body map[string]any
	if err := json.Unmarshal(got.body, &body); err != nil || body["type"] != "pushImage" {
		t.Errorf("body %s", got.body)
	}
	if got.header.Get("X-Deploy-Key") != "headersecret" || !strings.HasPrefix(got.header.Get("User-Agent"), "regtrigger/") {
		t.Errorf("headers %v", got.header)
	}
	sec, err := signature.ParseSecret(e2eSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := signature.Verify([]signature.Secret{sec}, got.header.Get("webhook-id"), got.header.Get("webhook-timestamp"), got.body, got.header.Get("webhook-signature"), time.Now(), 5*time.Minute); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
	taskID := got.header.Get("webhook-id")

	// Posting the same notification again is accepted but makes no task.
	status, ans = s.post(t, "/v1/notify", "testdata/tcr-push.json", e2eToken)
	if status != http.StatusAccepted || ans["tasks"].(float64) != 0 {
		t.Fatalf("duplicate: %d %v", status, ans)
	}
	time.Sleep(500 * time.Millisecond)
	if n := tg.count(); n != 1 {
		t.Errorf("duplicate delivered: target got %d requests", n)
	}
	s.stop(t)

	success := records(t, data, "--status", "success")
	if len(success) != 1 || success[0].TaskID != taskID || success[0].Trigger != "deploy-nginx" || success[0].HTTPStatus != 200 {
		t.Fatalf("success records: %+v", success)
	}
	// Near misses are explained in the 202 answer and the Debug log, and
	// stored by neither serve nor the cloud functions.
	if untriggered := records(t, data, "--status", "untriggered"); len(untriggered) != 0 {
		t.Errorf("untriggered records stored: %+v", untriggered)
	}
	for _, secret := range []string{"querysecret", "headersecret", e2eSecret, e2eToken} {
		if strings.Contains(s.logText(), secret) {
			t.Errorf("serve log leaks %q", secret)
		}
		if strings.Contains(cli(t, "logs", "--data", data, "-o", "json"), secret) {
			t.Errorf("logs leak %q", secret)
		}
	}
}

func TestServeRetriesThenFails(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	tg := newTarget(t, 500, 503, 200)
	s := startServe(t, data, "--triggers", writeTriggers(t, dir, tg.srv.URL))
	if status, ans := s.post(t, "/v1/notify", "testdata/tcr-push.json", e2eToken); status != http.StatusAccepted {
		t.Fatalf("status %d: %v", status, ans)
	}
	tg.wait(t, 3, 15*time.Second)
	s.stop(t)
	recs := records(t, data, "--trigger", "deploy-nginx")
	var seq []string
	for i := len(recs) - 1; i >= 0; i-- { // oldest first
		seq = append(seq, fmt.Sprintf("%d:%s:%d", recs[i].Attempt, recs[i].Status, recs[i].HTTPStatus))
	}
	if fmt.Sprint(seq) != "[1:retrying:500 2:retrying:503 3:success:200]" {
		t.Errorf("attempts %v", seq)
	}

	// With --attempts 2 and a target that keeps failing, the task fails.
	tg2 := newTarget(t, 500)
	data2 := filepath.Join(dir, "rt2.db")
	s2 := startServe(t, data2, "--attempts", "2", "--triggers", writeTriggers(t, dir, tg2.srv.URL))
	s2.post(t, "/v1/notify", "testdata/tcr-push.json", e2eToken)
	tg2.wait(t, 2, 15*time.Second)
	time.Sleep(time.Second)
	if n := tg2.count(); n != 2 {
		t.Errorf("target got %d attempts, want 2", n)
	}
	s2.stop(t)
	failed := records(t, data2, "--status", "failed")
	if len(failed) != 1 || failed[0].Attempt != 2 || !strings.Contains(failed[0].Error, "gave up after 2 attempts") {
		t.Errorf("failed records: %+v", failed)
	}
}

func TestServeRestartLosesNothing(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	tg := newTarget(t, 503)
	triggers := writeTriggers(t, dir, tg.srv.URL)
	s := startServe(t, data, "--triggers", triggers, "--retry-schedule", "3s")
	if status, _ := s.post(t, "/v1/notify", "testdata/tcr-push.json", e2eToken); status != http.StatusAccepted {
		t.Fatal(status)
	}
	tg.wait(t, 1, 10*time.Second)
	// Once the retry is scheduled (due in 3 s), crash before it is due.
	s.waitLog(t, `"msg":"task rescheduled"`, 10*time.Second)
	s.kill()
	tg.setStatuses(200)

	s2 := startServe(t, data, "--retry-schedule", "3s")
	got := tg.wait(t, 2, 15*time.Second)
	if got[0].header.Get("webhook-id") != got[1].header.Get("webhook-id") {
		t.Error("the retry after the restart has another webhook-id")
	}
	s2.stop(t)
	if recs := records(t, data, "--status", "success"); len(recs) != 1 || recs[0].Attempt != 2 {
		t.Errorf("after restart: %+v", recs)
	}
}

func TestServeRefusesBadRequests(t *testing.T) {
	dir := t.TempDir()
	tg := newTarget(t, 200)
	s := startServe(t, filepath.Join(dir, "rt.db"), "--triggers", writeTriggers(t, dir, tg.srv.URL))
	big := bytes.Repeat([]byte(" "), 1<<20+10)
	tests := []struct {
		name   string
		path   string
		body   []byte
		token  string
		status int
	}{
		{"no token", "/v1/notify", []byte(`{}`), "", http.StatusUnauthorized},
		{"wrong token", "/v1/notify", []byte(`{}`), "wrong-token-0123456789", http.StatusUnauthorized},
		{"not JSON", "/v1/notify", []byte(`<xml/>`), e2eToken, http.StatusBadRequest},
		{"unknown format", "/v1/notify", []byte(`{"hello": "world"}`), e2eToken, http.StatusUnsupportedMediaType},
		{"forced unknown source", "/v1/notify/nope", []byte(`{}`), e2eToken, http.StatusNotFound},
		{"too large", "/v1/notify", big, e2eToken, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ans := s.postBody(t, tt.path, tt.body, tt.token)
			if status != tt.status {
				t.Errorf("status %d, want %d: %v", status, tt.status, ans)
			}
			if ans["error"] == nil {
				t.Errorf("answer has no error: %v", ans)
			}
		})
	}
	if tg.count() != 0 {
		t.Error("a refused request led to a delivery")
	}
}

func TestServeDistributionForcedSource(t *testing.T) {
	dir := t.TempDir()
	tg := newTarget(t, 200)
	triggers := filepath.Join(dir, "t.yaml")
	os.WriteFile(triggers, []byte(fmt.Sprintf("triggers:\n  - name: foo\n    actions: [pushImage]\n    namespace: foo\n    url: %s/foo\n    format: raw\n", tg.srv.URL)), 0o600)
	s := startServe(t, filepath.Join(dir, "rt.db"), "--triggers", triggers)
	status, ans := s.post(t, "/v1/notify/distribution", "testdata/distribution-push.json", e2eToken, "Content-Type", "application/vnd.docker.distribution.events.v1+json")
	if status != http.StatusAccepted {
		t.Fatalf("%d %v", status, ans)
	}
	got := tg.wait(t, 1, 10*time.Second)[0]
	want, _ := os.ReadFile("testdata/distribution-push.json")
	if !bytes.Equal(got.body, want) {
		t.Error("raw format did not send the registry's body byte for byte")
	}
}

// TestServeKilledUnderLoadLosesNothing crashes serve (SIGKILL) while
// clients post notifications and deliveries are in flight: every task a
// 202 answer named is delivered after a restart.
func TestServeKilledUnderLoadLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		store string
		args  []string // after --data
	}{
		{"bolt", []string{"--store", "bolt"}},
		{"pebble", []string{"--store", "pebble"}},
	} {
		t.Run(tc.store, func(t *testing.T) { serveKilledUnderLoad(t, tc.args) })
	}
}

// serveKilledUnderLoad SIGKILLs serve (on the store args choose) under
// load and checks that every task a 202 answer named is delivered after a
// restart.
func serveKilledUnderLoad(t *testing.T, storeArgs []string) {
	dir := t.TempDir()
	data := filepath.Join(dir, "rt.db")
	var mu sync.Mutex
	delivered := map[string]int{}
	tg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(2 * time.Millisecond) // deliveries stay behind the notifications
		mu.Lock()
		delivered[r.Header.Get("webhook-id")]++
		mu.Unlock()
	}))
	defer tg.Close()
	triggers := writeTriggers(t, dir, tg.URL)
	s := startServe(t, data, append(slices.Clone(storeArgs), "--triggers", triggers)...)

	template, err := os.ReadFile("testdata/tcr-push.json")
	if err != nil {
		t.Fatal(err)
	}
	var accepted sync.Map // task id -> true
	var count, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tag := fmt.Sprintf("v1.%d.%d", c, i)
				body := bytes.ReplaceAll(template, []byte("v1.10.0"), []byte(tag))
				req, _ := http.NewRequest("POST", s.addr+"/v1/notify", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+e2eToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					failures.Add(1) // the crash
					return
				}
				var ans struct {
					Events []struct {
						Tasks []struct{ ID string } `json:"tasks"`
					} `json:"events"`
				}
				err = json.NewDecoder(resp.Body).Decode(&ans)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted || err != nil {
					failures.Add(1)
					return
				}
				for _, ev := range ans.Events {
					for _, task := range ev.Tasks {
						accepted.Store(task.ID, true)
						count.Add(1)
					}
				}
			}
		})
	}
	for count.Load() < 400 {
		time.Sleep(5 * time.Millisecond)
	}
	s.kill()
	close(stop)
	wg.Wait()

	time.Sleep(50 * time.Millisecond) // deliveries the sink was still answering
	mu.Lock()
	before := len(delivered)
	deliveredBefore := maps.Clone(delivered)
	mu.Unlock()
	s2 := startServe(t, data, storeArgs...)
	var want []string
	accepted.Range(func(k, _ any) bool { want = append(want, k.(string)); return true })
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		var missing []string
		for _, id := range want {
			if delivered[id] == 0 {
				missing = append(missing, id)
			}
		}
		mu.Unlock()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted tasks never delivered, e.g. %v", len(missing), len(want), missing[:min(3, len(missing))])
		}
		time.Sleep(20 * time.Millisecond)
	}
	s2.stop(t)
	// At least once: a task delivered before the crash whose settlement
	// the crash cut is delivered once more; no other task twice.
	mu.Lock()
	for id, n := range delivered {
		if allowed := 1 + min(deliveredBefore[id], 1); n > allowed {
			t.Errorf("task %s delivered %d times (%d before the crash)", id, n, deliveredBefore[id])
		}
	}
	mu.Unlock()
	t.Logf("%d tasks accepted before the crash (%d requests cut by it), %d delivered by then, all delivered after the restart", len(want), failures.Load(), before)
	if before >= len(want) {
		t.Log("every task was delivered before the crash: the crash tested less than it should")
	}
}
