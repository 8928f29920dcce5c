package testserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Lambda runs a function binary the way Lambda's provided runtimes
// (provided.al2023) do: it serves the Lambda Runtime API (version
// 2018-06-01) on loopback, starts the binary with AWS_LAMBDA_RUNTIME_API
// pointing at it, and hands the binary one event per Invoke. The binary is
// the real build (aws-lambda-go's runtime client, our main.go); only the
// platform around it is stood in for.
//
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
type Lambda struct {
	// Timeout is the deadline given to each invocation (default 30 s).
	Timeout time.Duration

	srv     *httptest.Server
	cmd     *exec.Cmd
	logs    *logBuffer
	exited  chan struct{}
	exitErr error

	pending chan *invocation
	mu      sync.Mutex
	running map[string]*invocation
	seq     int
	initErr string
	stop    sync.Once
}

type invocation struct {
	id      string
	event   []byte
	timeout time.Duration
	done    chan result
}

type result struct {
	payload []byte
	err     *FunctionError
}

// FunctionError is the error a function reported for one invocation (or
// its initialisation), as the runtime client posts it.
type FunctionError struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// StartLambda starts bin with the environment env (added to this process's
// own, minus anything naming a Lambda runtime) and waits for it to ask for
// its first event.
func StartLambda(bin string, env ...string) (*Lambda, error) {
	l := &Lambda{
		Timeout: 30 * time.Second,
		logs:    &logBuffer{},
		exited:  make(chan struct{}),
		pending: make(chan *invocation),
		running: map[string]*invocation{},
	}
	ready := make(chan struct{})
	var readyOnce sync.Once
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/2018-06-01/runtime/invocation/next" {
			readyOnce.Do(func() { close(ready) })
		}
		l.serve(w, r)
	}))
	l.cmd = exec.Command(bin)
	l.cmd.Env = append(runtimeFreeEnv(), append([]string{
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(l.srv.URL, "http://"),
		"AWS_LAMBDA_FUNCTION_NAME=" + bin,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
	}, env...)...)
	l.cmd.Stdout, l.cmd.Stderr = l.logs, l.logs
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := l.cmd.Start(); err != nil {
		l.srv.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		l.exitErr = l.cmd.Wait()
		close(l.exited)
	}()
	select {
	case <-ready:
		return l, nil
	case <-l.exited:
		l.srv.Close()
		return nil, fmt.Errorf("%s exited before asking for an event (%v; init error %q):\n%s", bin, l.exitErr, l.initError(), l.Logs())
	case <-time.After(StartTimeout):
		l.Stop()
		return nil, fmt.Errorf("%s did not ask for an event within %s:\n%s", bin, StartTimeout, l.Logs())
	}
}

// runtimeFreeEnv is this process's environment without variables that
// would make aws-lambda-go pick another mode.
func runtimeFreeEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_LAMBDA_") || strings.HasPrefix(kv, "_LAMBDA_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Invoke sends event and returns the function's answer. A function error is
// returned as *FunctionError; other errors mean the function never answered.
func (l *Lambda) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	l.mu.Lock()
	l.seq++
	inv := &invocation{id: "req-" + strconv.Itoa(l.seq), event: event, timeout: l.Timeout, done: make(chan result, 1)}
	l.mu.Unlock()
	select {
	case l.pending <- inv:
	case <-l.exited:
		return nil, fmt.Errorf("function exited (%v):\n%s", l.exitErr, l.Logs())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-inv.done:
		if r.err != nil {
			return r.payload, r.err
		}
		return r.payload, nil
	case <-l.exited:
		return nil, fmt.Errorf("function exited during invocation %s (%v):\n%s", inv.id, l.exitErr, l.Logs())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// InvokeJSON marshals event, invokes, and unmarshals the answer into out.
func (l *Lambda) InvokeJSON(ctx context.Context, event, out any) error {
	return invokeJSON(ctx, l.Invoke, event, out)
}

// invokeJSON is InvokeJSON for any platform's Invoke.
func invokeJSON(ctx context.Context, invoke func(context.Context, []byte) ([]byte, error), event, out any) error {
	b, err := json.Marshal(event)
	if err != nil {
		return err
	}
	payload, err := invoke(ctx, b)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(payload, out)
}

// Logs returns what the function printed (the first 64 KiB).
func (l *Lambda) Logs() string { return l.logs.String() }

// WaitLogs waits up to within until the function has printed sub.
func (l *Lambda) WaitLogs(sub string, within time.Duration) bool { return l.logs.waitFor(sub, within) }

// Stop ends the function and the Runtime API server.
func (l *Lambda) Stop() {
	l.stop.Do(func() {
		_ = syscall.Kill(-l.cmd.Process.Pid, syscall.SIGKILL)
		<-l.exited
		l.srv.Close()
	})
}

func (l *Lambda) initError() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.initErr
}

// serve is the Runtime API.
func (l *Lambda) serve(w http.ResponseWriter, r *http.Request) {
	const prefix = "/2018-06-01/runtime/"
	path := strings.TrimPrefix(r.URL.Path, prefix)
	switch {
	case r.Method == http.MethodGet && path == "invocation/next":
		select {
		case inv := <-l.pending:
			l.mu.Lock()
			l.running[inv.id] = inv
			l.mu.Unlock()
			h := w.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(inv.timeout).UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:test")
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
			h.Set("Content-Type", "application/json")
			_, _ = w.Write(inv.event)
		case <-r.Context().Done():
		}
	case r.Method == http.MethodPost && path == "init/error":
		b, _ := io.ReadAll(r.Body)
		l.mu.Lock()
		l.initErr = string(b)
		l.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		id, kind, _ := strings.Cut(strings.TrimPrefix(path, "invocation/"), "/")
		l.mu.Lock()
		inv, ok := l.running[id]
		delete(l.running, id)
		l.mu.Unlock()
		if !ok {
			http.Error(w, "unknown request id", http.StatusBadRequest)
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch kind {
		case "response":
			inv.done <- result{payload: b}
		case "error":
			fe := &FunctionError{}
			if json.Unmarshal(b, fe) != nil || fe.Message == "" {
				fe = &FunctionError{Type: "Unknown", Message: string(b)}
			}
			inv.done <- result{err: fe}
		default:
			inv.done <- result{err: &FunctionError{Type: "Runtime", Message: "unexpected " + kind}}
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		http.Error(w, "not part of the Runtime API", http.StatusNotFound)
	}
}

// Build builds the main package pkg (e.g. "./functions/receiver") for this
// machine into the file out, with the build tags given (the Makefile builds
// Lambda functions with lambda.norpc, which drops aws-lambda-go's legacy RPC
// mode, and SCF functions with scf).
func Build(out, pkg string, tags ...string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-tags", strings.Join(tags, ","), "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -tags %s %s: %v\n%s", strings.Join(tags, ","), pkg, err, b)
	}
	return nil
}
