package testserver

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// RedisInstall is the command that installs the redis-server the tests
// run (Debian's package; .ci/run installs it).
const RedisInstall = "apt-get update && apt-get install -y redis-server"

// Redis is one redis-server process on loopback.
type Redis struct {
	// Addr is its host:port on 127.0.0.1.
	Addr string
	// URL is its redis:// URL.
	URL string

	cmd    *exec.Cmd
	logs   *logBuffer
	exited chan error
	port   int
	stop   bool
}

// StartRedis starts Debian's redis-server on a free loopback port, without
// persistence, and waits until it answers PING. It fails, saying how to
// install it, when redis-server is not on PATH.
func StartRedis() (*Redis, error) {
	port, err := FreePort()
	if err != nil {
		return nil, fmt.Errorf("redis-server: free port: %w", err)
	}
	return startRedisOn(port)
}

func startRedisOn(port int) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is not installed (the Redis tests need it): run `%s` (.ci/run does)", RedisInstall)
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	logs := &logBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	r := &Redis{Addr: addr, URL: "redis://" + addr + "/0", cmd: cmd, logs: logs, exited: make(chan error, 1), port: port}
	go func() { r.exited <- cmd.Wait() }()
	deadline := time.Now().Add(StartTimeout)
	for {
		select {
		case err := <-r.exited:
			r.exited <- err
			return nil, fmt.Errorf("redis-server exited before answering (%v):\n%s", err, logs.String())
		default:
		}
		if ping(addr) {
			return r, nil
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("redis-server not answering on %s after %s:\n%s", addr, StartTimeout, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping sends an inline PING and reports whether +PONG came back.
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := c.Read(buf)
	return string(buf[:n]) == "+PONG\r\n"
}

// Stop ends the server (SIGTERM, then SIGKILL after 5 s); safe to repeat.
func (r *Redis) Stop() {
	if r.stop {
		return
	}
	r.stop = true
	pgid := -r.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-r.exited
	}
}

// Restart starts a new, empty server on the same port after Stop, for
// tests of a Redis that comes back.
func (r *Redis) Restart() error {
	r.Stop()
	n, err := startRedisOn(r.port)
	if err != nil {
		return err
	}
	*r = *n
	return nil
}

// Logs returns what the server printed (the first 64 KiB).
func (r *Redis) Logs() string { return r.logs.String() }
