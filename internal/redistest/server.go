package redistest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// readyFor bounds how long a server may take to answer its first PING: a
// liveness bound on a loaded machine, not a timing assertion.
const readyFor = 30 * time.Second

// BaseArgs are every test server's settings: loopback only, nothing
// written to disk.
func BaseArgs(dir string) []string {
	return []string{"--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"}
}

// Config says how to run a server other than a plain redis-server.
type Config struct {
	// Bin is the program; redis-server when empty.
	Bin string
	// Dir is the server's directory, which holds its log, server.log; a new
	// temporary directory when empty.
	Dir string
	// Args returns the whole command line for a port.
	Args func(port int) []string
	// TLS is how to reach a server that listens with TLS only.
	TLS *tls.Config
	// Password is the server's requirepass, for Client.
	Password string
}

// Server is a redis-server or redis-sentinel process on loopback.
type Server struct {
	tb   testing.TB
	c    Config
	port int

	cmd    *exec.Cmd
	exited chan struct{}

	clientOnce sync.Once
	client     *redis.Client
}

// Start starts redis-server on a free port with BaseArgs and args, and
// waits until it answers PING. It is killed when the test ends.
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	dir := tb.TempDir()
	return StartConfig(tb, Config{Dir: dir, Args: func(port int) []string {
		return append(append([]string{"--port", strconv.Itoa(port)}, BaseArgs(dir)...), args...)
	}})
}

// StartConfig starts the server c says on a free port, and waits until it
// answers PING. It is killed when the test ends.
func StartConfig(tb testing.TB, c Config) *Server {
	tb.Helper()
	if c.Bin == "" {
		c.Bin = "redis-server"
	}
	bin := NeedBinary(tb, c.Bin)
	if c.Dir == "" {
		c.Dir = tb.TempDir()
	}
	s := &Server{tb: tb, c: c}
	s.c.Bin = bin
	tb.Cleanup(s.cleanup)
	// A port another process took between FreePort and the bind makes the
	// server exit, and a new port is tried.
	var err error
	for range 5 {
		s.port = FreePort(tb)
		if err = s.start(); err == nil {
			return s
		}
	}
	tb.Fatal(err)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the server's port; it keeps it across Restart.
func (s *Server) Port() int { return s.port }

// start runs the server on s.port; its output is appended to server.log in
// its directory, so that a restart's log follows the first run's.
func (s *Server) start() error {
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.cmd = exec.Command(s.c.Bin, s.c.Args(s.port)...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = childAttr()
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("cannot start %s: %w", s.c.Bin, err)
	}
	exited := make(chan struct{})
	s.exited = exited
	go func(c *exec.Cmd) { _ = c.Wait(); close(exited) }(s.cmd)
	deadline := time.Now().Add(readyFor)
	for {
		err := s.ping()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("%s on port %d does not answer PING: %w%s", s.c.Bin, s.port, err, s.logTail())
		}
		select {
		case <-exited:
			return fmt.Errorf("%s on port %d exited: %v%s", s.c.Bin, s.port, s.cmd.ProcessState, s.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping sends PING on a fresh connection and wants +PONG, or -NOAUTH from a
// server with a password. Raw RESP rather than a client: a client would
// send HELLO or AUTH first, which a server that is not ready yet answers
// differently.
func (s *Server) ping() error {
	d := net.Dialer{Timeout: time.Second}
	var (
		c   net.Conn
		err error
	)
	if s.c.TLS != nil {
		c, err = (&tls.Dialer{NetDialer: &d, Config: s.c.TLS}).Dial("tcp", s.Addr())
	} else {
		c, err = d.Dial("tcp", s.Addr())
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

// Stop kills the server (SIGKILL: a crash, nothing flushed) and waits for
// it to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// Restart starts the stopped server again on the same port, with the same
// command line and directory.
func (s *Server) Restart() {
	s.tb.Helper()
	select {
	case <-s.exited:
	default:
		s.tb.Fatalf("BUG: Restart of %s on port %d, which is running", s.c.Bin, s.port)
	}
	if err := s.start(); err != nil {
		s.tb.Fatal(err)
	}
}

func (s *Server) cleanup() {
	s.Stop()
	if s.tb.Failed() {
		s.tb.Logf("%s on port %d:%s", s.c.Bin, s.port, s.logTail())
	}
}

func (s *Server) logPath() string { return filepath.Join(s.c.Dir, "server.log") }

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\n\t" + strings.Join(lines, "\n\t")
}

// Client is a plain go-redis client of this one server, to look behind
// what is under test; it is closed when the test ends. It does not retry,
// so that an error is the server's answer, and it outlives Restart (it
// dials again).
func (s *Server) Client() *redis.Client {
	s.clientOnce.Do(func() {
		s.client = redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.c.Password, TLSConfig: s.c.TLS,
			MaxRetries: -1, DialerRetries: 1})
		s.tb.Cleanup(func() { _ = s.client.Close() })
	})
	return s.client
}
