package main_test

// End-to-end harness: every TestE2E... starts its own server process on a free loopback port,
// with its own t.TempDir() data dir, and kills it in t.Cleanup.
//
// The server binary comes from KVRESP_TEST_SERVER (a path or a name on PATH). When it is unset,
// the first test that needs a server builds ./cmd/kvresp, once per test binary, with -race when
// this test binary has it, so that data races in the server under real clients fail the test
// (KVRESP_TEST_SERVER_RACE=0 turns that off). With KVRESP_TEST_SERVER=redis-server the same suite checks the expected
// behaviour against Redis itself; tests that need something Redis lacks skip there.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kvresp/internal/redistest"
)

// serverBin is the server under test (set by TestMain or buildServer); upstreamRedis is true when it is redis-server or
// valkey-server rather than kvresp.
var (
	serverBin     string
	upstreamRedis bool
)

// readyTimeout bounds how long a server may take to answer its first PING. It is a liveness
// bound (a hung server fails instead of hanging the suite), never a performance assertion.
const readyTimeout = 60 * time.Second

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if s := os.Getenv("KVRESP_TEST_SERVER"); s != "" {
		p, err := exec.LookPath(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "KVRESP_TEST_SERVER=%q: %v\n", s, err)
			return 1
		}
		serverBin = p
		base := filepath.Base(p)
		upstreamRedis = strings.HasPrefix(base, "redis-server") || strings.HasPrefix(base, "valkey-server")
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "kvresp-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	buildDir = dir
	return m.Run()
}

// buildDir holds the kvresp binary, built by the first test that starts a server (so that
// `go test -run X`, -bench and -fuzz runs that start none do not pay for the build).
var (
	buildDir  string
	buildOnce sync.Once
	buildErr  error
)

func buildServer(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		bin := filepath.Join(buildDir, "kvresp")
		args := []string{"build", "-o", bin}
		if raceEnabled && os.Getenv("KVRESP_TEST_SERVER_RACE") != "0" {
			args = append(args, "-race")
		}
		// The test binary runs in the package directory, so "." is ./cmd/kvresp.
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("cannot build the server under test (go %s .): %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		serverBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// skipOnRedis skips a test of behaviour that only kvresp has.
func skipOnRedis(t *testing.T, why string) {
	t.Helper()
	if upstreamRedis {
		t.Skipf("server under test is %s: %s", filepath.Base(serverBin), why)
	}
}

// needTool returns the path of an external tool; when it is missing the test skips locally
// and fails in CI (CI non-empty), where scripts/deps.sh must have installed it.
func needTool(t *testing.T, name string) string { return redistest.NeedBinary(t, name) }

// serverOptions are the knobs tests set; every field maps to a redis-server style directive.
type serverOptions struct {
	maxmemory   string // default "1gb"
	requirepass string
	maxclients  int
	timeout     int // idle timeout in seconds; 0 leaves the server's default
	tls         *tlsFiles
	metricsAddr string   // kvresp only; "" disables metrics
	dir         string   // data dir to reuse (a restart); "" = a fresh t.TempDir()
	configFile  string   // passed first, before the directives, as redis-server takes it
	extra       []string // appended as is
	dramOnly    bool     // kvresp with tier-order dram: evictions leave the server
}

type tlsFiles struct {
	certFile, keyFile string
	config            *tls.Config // client side: trusts the certificate
}

// server is one running server process.
type server struct {
	t       *testing.T
	cmd     *exec.Cmd
	dir     string
	logPath string
	addr    string // plaintext address, "" when the server only listens on TLS
	tlsAddr string
	tlsConf *tls.Config
	pass    string
	exited  chan struct{}
	exitErr error
}

// freePort asks the kernel for an unused loopback port. Another process may take it before the
// server binds it; startServer retries with a fresh port when the server exits early.
func freePort(t *testing.T) int { return redistest.FreePort(t) }

func startServer(t *testing.T, o serverOptions) *server {
	t.Helper()
	if serverBin == "" {
		buildServer(t)
	}
	var lastLog string
	for attempt := 0; attempt < 3; attempt++ {
		s, err := tryStart(t, o)
		if err == nil {
			return s
		}
		lastLog = err.Error()
	}
	t.Fatalf("server did not start: %s", lastLog)
	return nil
}

func tryStart(t *testing.T, o serverOptions) (*server, error) {
	dir, logDir := o.dir, t.TempDir()
	if dir == "" {
		dir = logDir
	}
	port := freePort(t)
	mm := o.maxmemory
	if mm == "" {
		mm = "1gb"
	}
	args := []string{"--bind", "127.0.0.1", "--dir", dir, "--maxmemory", mm}
	s := &server{t: t, dir: dir, pass: o.requirepass, exited: make(chan struct{})}
	if o.tls != nil {
		tlsPort := freePort(t)
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(tlsPort),
			"--tls-cert-file", o.tls.certFile, "--tls-key-file", o.tls.keyFile)
		s.tlsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(tlsPort))
		s.tlsConf = o.tls.config
	} else {
		args = append(args, "--port", strconv.Itoa(port))
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	if o.requirepass != "" {
		args = append(args, "--requirepass", o.requirepass)
	}
	if o.maxclients > 0 {
		args = append(args, "--maxclients", strconv.Itoa(o.maxclients))
	}
	if o.timeout > 0 {
		args = append(args, "--timeout", strconv.Itoa(o.timeout))
	}
	if upstreamRedis {
		// Make Redis behave as kvresp does by design: no persistence, one database, a cache
		// that evicts instead of answering -OOM, and no client certificates for TLS.
		args = append(args, "--save", "", "--appendonly", "no", "--databases", "1",
			"--maxmemory-policy", "allkeys-lru")
		if o.tls != nil {
			args = append(args, "--tls-auth-clients", "no")
		}
	} else {
		args = append(args, "--metrics-addr", o.metricsAddr)
		if o.dramOnly {
			args = append(args, "--tier-order", "dram")
		}
	}
	args = append(args, o.extra...)
	if o.configFile != "" {
		args = append([]string{o.configFile}, args...)
	}

	// A reused dir keeps its data; each start gets its own log.
	s.logPath = filepath.Join(logDir, "server.log")
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(serverBin, args...)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("cannot start %s: %v", serverBin, err)
	}
	logf.Close()
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.cleanup)

	if err := s.waitReady(); err != nil {
		return nil, fmt.Errorf("%v; args %q; log:\n%s", err, args, s.log())
	}
	return s, nil
}

// waitReady polls with PING until the server answers (any reply: -NOAUTH counts).
func (s *server) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("server exited before answering PING: %v", s.exitErr)
		default:
		}
		if c, err := s.dialErr(); err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, werr := c.Write([]byte("PING\r\n"))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if werr == nil && rerr == nil && (strings.HasPrefix(line, "+") || strings.HasPrefix(line, "-")) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server did not answer PING within %v", readyTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) dialErr() (net.Conn, error) {
	if s.addr != "" {
		return net.DialTimeout("tcp", s.addr, 5*time.Second)
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: s.tlsConf}
	return d.Dial("tcp", s.tlsAddr)
}

// dial opens a raw connection (TLS when the server has no plaintext port).
func (s *server) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := s.dialErr()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (s *server) port() string {
	_, p, _ := net.SplitHostPort(s.addr)
	return p
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) log() string {
	b, _ := os.ReadFile(s.logPath)
	const max = 8 << 10
	if len(b) > max {
		b = append([]byte("...\n"), b[len(b)-max:]...)
	}
	return string(b)
}

// alive reports whether the process is still running.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func (s *server) cleanup() {
	if s.alive() {
		s.cmd.Process.Kill()
		<-s.exited
	}
	b, _ := os.ReadFile(s.logPath)
	if bytes.Contains(b, []byte("WARNING: DATA RACE")) {
		s.t.Errorf("the server reported a data race; log:\n%s", s.log())
	} else if s.t.Failed() {
		s.t.Logf("server log (%s):\n%s", filepath.Base(serverBin), s.log())
	}
}

// stop sends sig and waits for the process to exit, up to a generous liveness deadline.
func (s *server) stop(t *testing.T, sig syscall.Signal, within time.Duration) error {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
		return s.exitErr
	case <-time.After(within):
		t.Fatalf("server still running %v after %v", within, sig)
		return nil
	}
}

// rssKiB reads the server's resident set size from /proc.
func (s *server) rssKiB(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("cannot parse %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// waitFor polls cond until it holds; deadline is a liveness bound, not a timing assertion.
func waitFor(t *testing.T, deadline time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("gave up after %v waiting for %s", deadline, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ctxT is a context bounded by a liveness deadline.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// respConn is a raw RESP connection for exact-byte checks.
type respConn struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	buf []byte // reused for large replies
}

func newRespConn(t *testing.T, c net.Conn) *respConn {
	// Liveness bound for every read and write on this connection.
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	return &respConn{t: t, c: c, r: bufio.NewReaderSize(c, 64<<10)}
}

func (s *server) resp(t *testing.T) *respConn { return newRespConn(t, s.dial(t)) }

// cmd encodes args as a RESP2 multibulk command.
func encodeCmd(args ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.Bytes()
}

func (rc *respConn) write(p []byte) {
	rc.t.Helper()
	if _, err := rc.c.Write(p); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

func (rc *respConn) send(args ...string) { rc.t.Helper(); rc.write(encodeCmd(args...)) }

// expect reads exactly len(want) bytes and compares them.
func (rc *respConn) expect(want string) {
	rc.t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(rc.r, got); err != nil {
		rc.t.Fatalf("want %q, read %q then %v", want, got, err)
	}
	if string(got) != want {
		rc.t.Fatalf("want %q, got %q", want, got)
	}
}

// do sends a command and checks the exact reply bytes.
func (rc *respConn) do(want string, args ...string) {
	rc.t.Helper()
	rc.send(args...)
	rc.expect(want)
}

// line reads one reply line including its CRLF.
func (rc *respConn) line() string {
	rc.t.Helper()
	l, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("read line: %q, %v", l, err)
	}
	return l
}

// readReply reads one whole reply (RESP2 or RESP3) and returns its raw bytes.
func (rc *respConn) readReply() string {
	rc.t.Helper()
	var b strings.Builder
	rc.readInto(&b)
	return b.String()
}

func (rc *respConn) readInto(b *strings.Builder) {
	rc.t.Helper()
	l := rc.line()
	b.WriteString(l)
	if len(l) < 3 {
		rc.t.Fatalf("short reply line %q", l)
	}
	n, _ := strconv.Atoi(strings.TrimSuffix(l[1:], "\r\n"))
	switch l[0] {
	case '$', '=', '!':
		if n < 0 {
			return
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rc.r, buf); err != nil {
			rc.t.Fatal(err)
		}
		b.Write(buf)
	case '*', '~', '>':
		for i := 0; i < n; i++ {
			rc.readInto(b)
		}
	case '%', '|':
		for i := 0; i < 2*n; i++ {
			rc.readInto(b)
		}
	}
}

// expectClosed reads until EOF (or a reset) and returns what came before it.
func (rc *respConn) expectClosed() string {
	rc.t.Helper()
	b, err := io.ReadAll(rc.r)
	if err != nil && !isConnReset(err) {
		rc.t.Fatalf("want the server to close the connection, got %v after %q", err, b)
	}
	return string(b)
}

func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
