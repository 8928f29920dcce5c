package testserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// EmulatorPackage is the main package of the AWS Lambda Runtime Interface
// Emulator, the Lambda Runtime API AWS publishes for running a function
// outside Lambda. go.mod pins it with a tool directive, so go.sum holds its
// checksums and `go mod download` fetches it with the project's modules.
const EmulatorPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// DefaultFunctionTimeout is the invocation deadline the emulator gives a
// function unless its environment sets AWS_LAMBDA_FUNCTION_TIMEOUT.
const DefaultFunctionTimeout = 30 * time.Second

// Emulator is a built aws-lambda-rie.
type Emulator struct {
	// Path is the executable.
	Path string
}

// BuildEmulator builds the emulator at the version go.mod pins into dir.
func BuildEmulator(dir string) (*Emulator, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "aws-lambda-rie")
	cmd := exec.Command("go", "build", "-o", out, EmulatorPackage)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s: %v\n%s", EmulatorPackage, err, b)
	}
	return &Emulator{Path: out}, nil
}

// Lambda is one function binary running under the emulator, as Lambda's
// provided runtimes (provided.al2023) run bootstrap: the emulator serves
// the Runtime API to it, starts it at the first invocation (where Lambda
// runs a function's init) and hands it each event posted to the emulator's
// invocation endpoint. The binary is the real build: aws-lambda-go's
// runtime client and our main.go.
type Lambda struct {
	url string // the emulator's invocation endpoint

	cmd      *exec.Cmd
	out      *lineSplitter
	logs     *logBuffer // what the function printed
	platform *logBuffer // the emulator's own output
	exited   chan struct{}
	exitErr  error

	// mu lets one invocation run at a time, as one execution environment
	// takes them.
	mu   sync.Mutex
	stop sync.Once
}

// FunctionError is the error a function reported for one invocation, as
// the runtime client posts it.
type FunctionError struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// Start starts the emulator for bin, with the environment env added to
// this process's own (minus anything naming a Lambda runtime), and waits
// until its invocation endpoint accepts connections. The emulator passes
// its environment on to the function. bin itself starts at the first
// Invoke, so an init failure is that invocation's error.
func (e *Emulator) Start(bin string, env ...string) (*Lambda, error) {
	apiPort, err := FreePort()
	if err != nil {
		return nil, fmt.Errorf("runtime API port: %w", err)
	}
	invokePort, err := FreePort()
	if err != nil {
		return nil, fmt.Errorf("invocation port: %w", err)
	}
	invokeAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(invokePort))
	l := &Lambda{
		url:      "http://" + invokeAddr + "/2015-03-31/functions/function/invocations",
		logs:     &logBuffer{},
		platform: &logBuffer{},
		exited:   make(chan struct{}),
	}
	l.out = &lineSplitter{fn: l.logs, platform: l.platform}
	l.cmd = exec.Command(e.Path,
		"--log-level", "warn",
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort)),
		bin)
	l.cmd.Dir = filepath.Dir(bin)
	l.cmd.Env = append(runtimeFreeEnv(), append([]string{
		"AWS_LAMBDA_FUNCTION_NAME=" + filepath.Base(bin),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(int(DefaultFunctionTimeout/time.Second)),
	}, env...)...)
	// The emulator writes the function's stdout and stderr, and its START,
	// END and REPORT lines, to its stdout; its own log to stderr.
	l.cmd.Stdout, l.cmd.Stderr = l.out, l.platform
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := l.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", e.Path, err)
	}
	go func() {
		l.exitErr = l.cmd.Wait()
		close(l.exited)
	}()
	deadline := time.Now().Add(StartTimeout)
	for {
		c, err := net.DialTimeout("tcp", invokeAddr, time.Second)
		if err == nil {
			c.Close()
			return l, nil
		}
		select {
		case <-l.exited:
			return nil, fmt.Errorf("the emulator for %s exited before listening (%v):\n%s", bin, l.exitErr, l.platform.String())
		default:
		}
		if time.Now().After(deadline) {
			l.Stop()
			return nil, fmt.Errorf("the emulator for %s is not listening on %s after %s: %w\n%s", bin, invokeAddr, StartTimeout, err, l.platform.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Invoke posts event to the emulator's invocation endpoint and returns the
// function's answer. A function error is returned as *FunctionError: the
// emulator answers it 200 with the error document as the body (it drops
// Lambda's X-Amz-Function-Error header), so a body of exactly that shape is
// read as one. A function that fails to start or exits during the
// invocation is an error with what it printed.
func (l *Lambda) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(event))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		select {
		case <-l.exited:
			return nil, fmt.Errorf("the emulator exited (%v):\n%s%s", l.exitErr, l.platform.String(), l.Logs())
		default:
		}
		return nil, fmt.Errorf("invoke: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("invoke: read the answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if fe := functionError(b); fe != nil {
			return b, fe
		}
		return b, nil
	case resp.StatusCode == http.StatusBadGateway:
		return nil, fmt.Errorf("the function failed to start or exited (emulator: %s); it printed:\n%s", resp.Status, l.Logs())
	default:
		return nil, fmt.Errorf("the emulator answered %s: %s\n%s", resp.Status, b, l.platform.String())
	}
}

// functionError reads b as the error document aws-lambda-go posts for a
// failed invocation ({"errorMessage", "errorType", "stackTrace"}), or nil.
func functionError(b []byte) *FunctionError {
	var doc map[string]json.RawMessage
	if json.Unmarshal(b, &doc) != nil || doc["errorMessage"] == nil || doc["errorType"] == nil {
		return nil
	}
	for k := range doc {
		if k != "errorMessage" && k != "errorType" && k != "stackTrace" {
			return nil
		}
	}
	fe := &FunctionError{}
	if json.Unmarshal(b, fe) != nil {
		return nil
	}
	return fe
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

// Logs returns what the function printed (the first 64 KiB), without the
// emulator's START, END and REPORT lines.
func (l *Lambda) Logs() string { return l.logs.String() }

// WaitLogs waits up to within until the function has printed sub.
func (l *Lambda) WaitLogs(sub string, within time.Duration) bool { return l.logs.waitFor(sub, within) }

// Stop ends the emulator, which ends the function first (SIGTERM; SIGKILL
// after 5 s).
func (l *Lambda) Stop() {
	l.stop.Do(func() {
		_ = l.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-l.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-l.cmd.Process.Pid, syscall.SIGKILL)
			<-l.exited
		}
		l.out.flush()
	})
}

// runtimeFreeEnv is this process's environment without variables that
// would make aws-lambda-go (or scf-go-lib) pick another mode.
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

// lineSplitter sends whole lines written to it to fn, except the
// emulator's per-invocation lines, which go to platform.
type lineSplitter struct {
	mu           sync.Mutex
	partial      []byte
	fn, platform io.Writer
}

var platformLines = [][]byte{[]byte("START RequestId: "), []byte("END RequestId: "), []byte("REPORT RequestId: ")}

func (s *lineSplitter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		s.line(s.partial[:i+1])
		s.partial = s.partial[i+1:]
	}
}

func (s *lineSplitter) line(l []byte) {
	w := s.fn
	for _, prefix := range platformLines {
		if bytes.HasPrefix(l, prefix) {
			w = s.platform
		}
	}
	_, _ = w.Write(l)
}

// flush passes on a last line without a newline.
func (s *lineSplitter) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.partial) > 0 {
		s.line(s.partial)
		s.partial = nil
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
