// Package testserver starts the API-compatible AWS servers the integration
// tests run against, on loopback: dynalite (DynamoDB) and fauxqs (SQS), both
// installed from npm into tools/node by `make test-deps`. Nothing here is a
// mock: the adapters talk to real servers over HTTP.
//
// It also runs the function binaries as their platforms do: Lambda
// functions under AWS's Runtime Interface Emulator (built from the module
// go.mod pins as a tool), SCF functions through an RPC caller standing in
// for SCF's Go runtime, which has no published emulator.
//
// It is test support only; no production code imports it.
package testserver

import (
	"context"
	"errors"
	"fmt"
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

// StartTimeout is how long a server may take to answer after it starts.
const StartTimeout = 30 * time.Second

// Server is one running server.
type Server struct {
	// Name is the npm package (dynalite, fauxqs).
	Name string
	// URL is its base URL, http://127.0.0.1:<port>.
	URL string

	cmd    *exec.Cmd
	logs   *logBuffer
	exited chan error
	once   sync.Once
}

// Dynalite starts dynalite on a free loopback port. Tables become ACTIVE at
// once (--createTableMs 0); callers still use the table-exists waiter.
func Dynalite() (*Server, error) {
	return start("dynalite", func(port int) ([]string, []string) {
		return []string{"--port", strconv.Itoa(port), "--host", "127.0.0.1", "--createTableMs", "0"}, nil
	})
}

// Fauxqs starts fauxqs (pinned to 1.9.2, which runs on Node 20) on a free
// loopback port.
func Fauxqs() (*Server, error) {
	return start("fauxqs", func(port int) ([]string, []string) {
		return nil, []string{"FAUXQS_PORT=" + strconv.Itoa(port), "FAUXQS_HOST=127.0.0.1"}
	})
}

func start(name string, argv func(port int) (args, env []string)) (*Server, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(root, "tools", "node", "node_modules", ".bin", name)
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%s is not installed at %s: run `make test-deps` (npm ci --prefix tools/node) first", name, bin)
	}
	port, err := FreePort()
	if err != nil {
		return nil, fmt.Errorf("%s: free port: %w", name, err)
	}
	args, env := argv(port)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	logs := &logBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	// Its own process group, so Stop also ends node's children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &Server{Name: name, URL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, logs: logs, exited: make(chan error, 1)}
	go func() { s.exited <- cmd.Wait() }()
	if err := s.waitReady(StartTimeout); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%s: %w\n%s", name, err, logs.String())
	}
	return s, nil
}

// waitReady waits until the server answers an HTTP request (any status).
func (s *Server) waitReady(limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		select {
		case err := <-s.exited:
			s.exited <- err
			return fmt.Errorf("exited before answering: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/", nil)
		resp, err := client.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering on %s after %s: %w", s.URL, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the server (SIGTERM, then SIGKILL after 5 s). It is safe to
// call more than once.
func (s *Server) Stop() {
	s.once.Do(func() {
		pgid := -s.cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(pgid, syscall.SIGKILL)
			<-s.exited
		}
	})
}

// Logs returns what the server printed (the first 64 KiB).
func (s *Server) Logs() string { return s.logs.String() }

// RepoRoot is the directory holding go.mod, found from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logBuffer keeps the first 64 KiB written to it; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 64<<10 - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// waitFor waits until what was written contains sub, for at most within: a
// process's output reaches the buffer through a pipe, a moment after the
// process wrote it.
func (b *logBuffer) waitFor(sub string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for !strings.Contains(b.String(), sub) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
