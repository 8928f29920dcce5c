package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// httpTimeouts are the server timeouts `regtrigger serve` sets; the bare
// server uses them too so the two differ only in what the handler does.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

// bareHandler is the baseline: read the body (at most 1 MiB, as serve
// does), answer 202 without a body.
func bareHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20+1))
	w.WriteHeader(http.StatusAccepted)
}

// runBareServer is the child process of -bare-server: it listens on addr,
// prints "listening <addr>" and serves bareHandler until SIGTERM.
func runBareServer(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening", ln.Addr().String())
	srv := newHTTPServer(http.HandlerFunc(bareHandler))
	go func() {
		ch := make(chan os.Signal, 1)
		signalNotify(ch)
		<-ch
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// process is a server this tool started.
type process struct {
	name string
	url  string // http://127.0.0.1:port
	cmd  *exec.Cmd
	done chan error
}

// stop sends SIGTERM to the process and waits for it (SIGKILL after 30 s).
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// startBare starts this executable again as a bare server, in its own
// process like serve, so both are measured across the same process boundary.
func startBare() (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-bare-server", "127.0.0.1:0")
	cmd.SysProcAttr = childAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{name: "bare", cmd: cmd, done: make(chan error, 1)}
	line, err := bufio.NewReader(out).ReadString('\n')
	if addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening "); err == nil && ok {
		p.url = "http://" + addr
	} else {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("bare server did not start (%q, %v)", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out); p.done <- cmd.Wait() }()
	return p, nil
}

// serveConfig is how startServe runs `regtrigger serve`.
type serveConfig struct {
	bin     string // the regtrigger binary
	dir     string // holds the data file, the trigger file and the log
	token   string // the registry token
	sinkURL string // where the trigger delivers
	workers int
}

// signingSecret signs the deliveries (a test secret, as in examples/).
const signingSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// startServe writes a trigger file matching every push to public/nginx,
// starts serve on a fresh store (bolt or pebble) in cfg.dir and waits until /healthz
// answers 200. name tells the files of this run apart.
func startServe(cfg serveConfig, store, name string) (*process, error) {
	triggers := filepath.Join(cfg.dir, name+"-triggers.yaml")
	yaml := fmt.Sprintf(`triggers:
  - name: loadgen
    description: Every push to public/nginx, to the load generator's sink.
    actions: [pushImage]
    namespace: public
    repository: nginx
    url: %s/hook
    secret: %s
`, cfg.sinkURL, signingSecret)
	if err := os.WriteFile(triggers, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	logf, err := os.Create(filepath.Join(cfg.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	data := filepath.Join(cfg.dir, name+".db")
	if store == "pebble" {
		data = filepath.Join(cfg.dir, name+".pebble")
	}
	cmd := exec.Command(cfg.bin, "serve",
		"--addr", addr,
		"--store", store,
		"--data", data,
		"--triggers", triggers,
		"--allow-private", "127.0.0.1/32",
		"--registry", "loadgen="+cfg.token,
		"--workers", fmt.Sprint(cfg.workers),
		"--drain", "2s",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.bin, err)
	}
	p := &process{name: "serve", url: "http://" + addr, cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("serve exited at start (%v); see %s", err, logf.Name())
		default:
		}
		if resp, err := http.Get(p.url + "/healthz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("serve did not answer /healthz within 30 s; see %s", logf.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// childAttr makes a server end when this process does, however it ends
// (killed, or a closed stdout pipe): SIGTERM from the kernel.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sink is the webhook target: it notes when each task (webhook-id) first
// arrives, and answers 204.
type sink struct {
	url   string
	srv   *http.Server
	count atomic.Int64 // requests received, repeats included

	mu      sync.Mutex
	arrived map[string]time.Time
	repeats int
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + ln.Addr().String(), arrived: map[string]time.Time{}}
	s.srv = newHTTPServer(http.HandlerFunc(s.handle))
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sink) handle(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	id := r.Header.Get("webhook-id")
	s.mu.Lock()
	if _, seen := s.arrived[id]; seen {
		s.repeats++
	} else {
		s.arrived[id] = now
	}
	s.mu.Unlock()
	s.count.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// arrival is when the task id first arrived.
func (s *sink) arrival(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.arrived[id]
	return t, ok
}

// waitAll waits until every id has arrived or ctx ends, and returns how
// many have not.
func (s *sink) waitAll(ctx context.Context, ids []string) int {
	for {
		missing := 0
		s.mu.Lock()
		for _, id := range ids {
			if _, ok := s.arrived[id]; !ok {
				missing++
			}
		}
		s.mu.Unlock()
		if missing == 0 || ctx.Err() != nil {
			return missing
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// repeated is how many deliveries arrived again after their first arrival.
func (s *sink) repeated() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repeats
}

func (s *sink) close() { _ = s.srv.Close() }
