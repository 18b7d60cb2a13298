package redisup

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"kvresp/slab"
	"kvresp/tiers"
)

// needBinary returns the path of a program the test needs; without it the test is
// skipped, or fails when CI is set.
func needBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is needed in CI: %v", name, err)
		}
		t.Skipf("%s not on PATH", name)
	}
	return path
}

// server is a redis-server or redis-sentinel process on loopback.
type server struct {
	t   testing.TB
	bin string
	dir string
	// args returns the command line for a port; ports are chosen free by start.
	args func(port int) []string
	tls  *tls.Config // dial with TLS to check readiness
	// password is the server's requirepass, for client.
	password string
	port     int
	cmd      *exec.Cmd
	exited   chan struct{}
}

func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// redisArgs are every test server's: loopback only, nothing written to disk.
func redisArgs(dir string) []string {
	return []string{"--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"}
}

// startRedis starts redis-server with args after --port, stopped in Cleanup.
func startRedis(t testing.TB, args ...string) *server {
	t.Helper()
	dir := t.TempDir()
	return startServer(t, "redis-server", dir, func(port int) []string {
		return append(append([]string{"--port", strconv.Itoa(port)}, redisArgs(dir)...), args...)
	})
}

// startServer starts bin on a free port and waits until it answers PING.
func startServer(t testing.TB, bin, dir string, args func(port int) []string) *server {
	t.Helper()
	s := newServer(t, bin, dir, args)
	s.startFree()
	return s
}

// newServer returns a server to start with startFree, stopped in Cleanup.
func newServer(t testing.TB, bin, dir string, args func(port int) []string) *server {
	t.Helper()
	s := &server{t: t, bin: needBinary(t, bin), dir: dir, args: args}
	t.Cleanup(s.stop)
	return s
}

// startFree starts the server on a free port. A port another process took between
// freePort and the bind makes the server exit, and a new port is tried.
func (s *server) startFree() {
	s.t.Helper()
	var err error
	for range 5 {
		s.port = freePort(s.t)
		if err = s.start(); err == nil {
			return
		}
	}
	s.t.Fatal(err)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs the server on s.port; its output is appended to server.log in its directory.
func (s *server) start() error {
	logf, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd = exec.Command(s.bin, s.args(s.port)...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = childAttr()
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("cannot start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	s.exited = exited
	go func(c *exec.Cmd) { _ = c.Wait(); close(exited) }(s.cmd)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := s.ping()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("%s on port %d does not answer PING: %w%s", s.bin, s.port, err, s.logTail())
		}
		select {
		case <-exited:
			return fmt.Errorf("%s on port %d exited: %v%s", s.bin, s.port, s.cmd.ProcessState, s.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping sends PING on a fresh connection and wants +PONG, or -NOAUTH from a server with a
// password.
func (s *server) ping() error {
	d := net.Dialer{Timeout: time.Second}
	var (
		c   net.Conn
		err error
	)
	if s.tls != nil {
		c, err = (&tls.Dialer{NetDialer: &d, Config: s.tls}).Dial("tcp", s.addr())
	} else {
		c, err = d.Dial("tcp", s.addr())
	}
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" && !strings.HasPrefix(line, "-NOAUTH ") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// stop kills the server (SIGKILL: a crash, nothing flushed) and waits for it to exit.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	if s.t.Failed() {
		s.t.Logf("%s on port %d:%s", s.bin, s.port, s.logTail())
	}
}

// restart starts the stopped server again on the same port.
func (s *server) restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\n\t" + strings.Join(lines, "\n\t")
}

// client is a plain go-redis client of this one server, to look behind the Upstream.
func (s *server) client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.addr(), Password: s.password, TLSConfig: s.tls, MaxRetries: -1, DialerRetries: 1})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// newArena returns an arena checked for leaked buffers when the test ends.
func newArena(t testing.TB, limit int64) *slab.Arena {
	t.Helper()
	a, err := slab.New(slab.Options{Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Check(); err != nil {
			t.Error(err)
		}
		if st := a.Stats(); st.InUse != 0 {
			t.Errorf("%d bytes of buffers were not released", st.InUse)
		}
		_ = a.Close()
	})
	return a
}

// open opens rawURL for the test, logging to the test's output.
func open(t testing.TB, rawURL string) *Upstream {
	t.Helper()
	u, err := Open(rawURL, Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() })
	return u
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// put stores val under key with Put, through a buffer of a.
func put(t testing.TB, u *Upstream, a *slab.Arena, key string, val []byte, exp int64) {
	t.Helper()
	if err := tryPut(t.Context(), u, a, key, val, exp); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func tryPut(ctx context.Context, u *Upstream, a *slab.Arena, key string, val []byte, exp int64) error {
	b, err := a.Alloc(len(val))
	if err != nil {
		return err
	}
	defer b.Release()
	copy(b.Bytes(), val)
	return u.Put(ctx, key, tiers.Item{Buf: b, ExpireAt: exp})
}

// get reads key with Get, returning a copy of the value.
func get(t testing.TB, u *Upstream, a *slab.Arena, key string) (val []byte, exp int64, ok bool) {
	t.Helper()
	val, exp, ok, err := tryGet(t.Context(), u, a, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return val, exp, ok
}

func tryGet(ctx context.Context, u *Upstream, a *slab.Arena, key string) (val []byte, exp int64, ok bool, err error) {
	it, ok, err := u.Get(ctx, key, a.Alloc)
	if err != nil || !ok {
		return nil, 0, ok, err
	}
	defer it.Buf.Release()
	return append([]byte{}, it.Buf.Bytes()...), it.ExpireAt, true, nil
}

// eventually calls f until it returns nil, failing the test with f's last error after a
// deadline generous enough for a failover on a loaded machine.
func eventually(t testing.TB, what string, f func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 60s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// notRefused fails the test unless err is a plain upstream failure.
func notRefused(t testing.TB, op string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: no error", op)
	case errors.Is(err, tiers.ErrRefused):
		t.Errorf("%s: %v; want an upstream failure, not ErrRefused", op, err)
	}
}
