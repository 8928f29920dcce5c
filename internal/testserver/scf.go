package testserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/rpc"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tencentyun/scf-go-lib/cloudfunction/messages"
)

// SCF runs a function binary the way Tencent SCF's Go runtime does: the
// binary (built with scf-go-lib's cloudfunction.Start) serves net/rpc on
// _LAMBDA_SERVER_PORT, and the platform calls Function.Invoke with each
// event, its deadline and the function's environment. SCF is that caller.
type SCF struct {
	// Timeout is each invocation's time limit (default 30 s), passed as the
	// deadline as SCF does.
	Timeout time.Duration
	// Environment is sent with every invocation (scf-go-lib applies it to
	// the process with os.Setenv before calling the handler).
	Environment map[string]string

	cmd     *exec.Cmd
	logs    *logBuffer
	client  *rpc.Client
	exited  chan struct{}
	exitErr error
	mu      sync.Mutex
	seq     int
	stop    sync.Once
}

// StartSCF starts bin with env added to this process's environment and
// waits until its RPC server answers Function.Ping.
func StartSCF(bin string, env ...string) (*SCF, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &SCF{Timeout: 30 * time.Second, logs: &logBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin)
	s.cmd.Env = append(runtimeFreeEnv(), append([]string{"_LAMBDA_SERVER_PORT=" + strconv.Itoa(port)}, env...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(StartTimeout)
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("%s exited before serving RPC (%v):\n%s", bin, s.exitErr, s.Logs())
		default:
		}
		if c, err := rpc.Dial("tcp", addr); err == nil {
			if err := c.Call("Function.Ping", &messages.PingRequest{}, &messages.PingResponse{}); err == nil {
				s.client = c
				return s, nil
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("%s did not answer Function.Ping on %s within %s:\n%s", bin, addr, StartTimeout, s.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Invoke sends one event and returns the handler's answer. A function error
// is returned as *FunctionError.
func (s *SCF) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	env, err := json.Marshal(s.Environment)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.seq++
	id := "scf-req-" + strconv.Itoa(s.seq)
	s.mu.Unlock()
	dl := time.Now().Add(s.Timeout)
	req := &messages.InvokeRequest{
		Payload: event, RequestId: id,
		Deadline:  messages.InvokeRequest_Timestamp{Seconds: dl.Unix(), Nanos: int64(dl.Nanosecond())},
		Namespace: "default", FunctionName: "regtrigger-test", FunctionVersion: "$LATEST",
		MemoryLimitInMb: 256, TimeLimitInMs: int32(s.Timeout / time.Millisecond),
		Environment: string(env), TencentcloudRegion: "ap-guangzhou",
	}
	var resp messages.InvokeResponse
	call := s.client.Go("Function.Invoke", req, &resp, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
	case <-s.exited:
		return nil, fmt.Errorf("function exited during %s (%v):\n%s", id, s.exitErr, s.Logs())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if call.Error != nil {
		return nil, fmt.Errorf("rpc Function.Invoke: %w", call.Error)
	}
	if resp.Error != nil {
		return resp.Payload, &FunctionError{Message: resp.Error.Message, Type: resp.Error.Type}
	}
	return resp.Payload, nil
}

// InvokeJSON marshals event, invokes, and unmarshals the answer into out.
func (s *SCF) InvokeJSON(ctx context.Context, event, out any) error {
	return invokeJSON(ctx, s.Invoke, event, out)
}

// Logs returns what the function printed (the first 64 KiB).
func (s *SCF) Logs() string { return s.logs.String() }

// WaitLogs waits up to within until the function has printed sub.
func (s *SCF) WaitLogs(sub string, within time.Duration) bool { return s.logs.waitFor(sub, within) }

// Stop ends the function.
func (s *SCF) Stop() {
	s.stop.Do(func() {
		if s.client != nil {
			s.client.Close()
		}
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	})
}

// EnvMap turns KEY=VALUE pairs into a map (for SCF.Environment).
func EnvMap(kvs ...string) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
