package main_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestE2EShutdownSIGTERM: SIGTERM makes the server exit 0, also with clients connected.
// The deadline is a liveness bound, not a timing assertion.
func TestE2EShutdownSIGTERM(t *testing.T) {
	s := startServer(t, serverOptions{})
	ctx := ctxT(t)
	rdb := redis.NewClient(&redis.Options{Addr: s.addr})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", strings.Repeat("v", 1<<20), 0).Err(); err != nil {
		t.Fatal(err)
	}
	idle := s.resp(t)
	idle.do("+PONG\r\n", "PING")
	if err := s.stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("server exited with %v after SIGTERM, want status 0; log:\n%s", err, s.log())
	}
	// The idle client sees its connection closed.
	if b, err := io.ReadAll(idle.r); err != nil && !isConnReset(err) {
		t.Fatalf("idle client: %q, %v", b, err)
	}
	if _, err := net.DialTimeout("tcp", s.addr, 5*time.Second); err == nil {
		t.Fatal("the port still accepts connections after shutdown")
	}
}

// TestE2EShutdownCommand: `redis-cli shutdown` stops the server as SIGTERM does: exit status 0,
// and what only DRAM held is on the NVMe tier when it starts again. Bad arguments are answered
// and change nothing.
func TestE2EShutdownCommand(t *testing.T) {
	cli := needTool(t, "redis-cli")
	o := serverOptions{dir: t.TempDir()}
	s := startServer(t, o)
	rc := s.resp(t)
	rc.do("-ERR syntax error\r\n", "SHUTDOWN", "LATER")
	rc.do("-ERR syntax error\r\n", "SHUTDOWN", "SAVE", "NOSAVE")
	rc.do("-ERR No shutdown in progress.\r\n", "SHUTDOWN", "ABORT")
	rc.do("+OK\r\n", "SET", "kept", "across the shutdown")
	if out, err := exec.Command(cli, "-p", s.port(), "shutdown").CombinedOutput(); err != nil {
		t.Fatalf("redis-cli shutdown: %v: %s", err, out)
	}
	select {
	case <-s.exited:
	case <-time.After(stopWithin):
		t.Fatalf("server still running %v after SHUTDOWN; log:\n%s", stopWithin, s.log())
	}
	if s.exitErr != nil {
		t.Fatalf("server exited with %v after SHUTDOWN, want status 0; log:\n%s", s.exitErr, s.log())
	}
	skipOnRedis(t, "redis-server keeps its data only with an RDB or AOF, which the tests turn off")
	s = startServer(t, o)
	s.resp(t).do("$19\r\nacross the shutdown\r\n", "GET", "kept")
}

// TestE2EConfigFile: like redis-server, the first argument may be a config file of
// "directive value" lines; directives on the command line override it.
func TestE2EConfigFile(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "kvresp.conf")
	text := "# comment line\n" +
		"maxmemory 100mb\n" +
		"requirepass \"from file\"\n" +
		"timeout 77\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverOptions{configFile: conf, requirepass: "from flags"})
	ctx := ctxT(t)
	rdb := redis.NewClient(&redis.Options{Addr: s.addr, Password: "from flags"})
	defer rdb.Close()
	m, err := rdb.ConfigGet(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	// maxmemory: the harness passes --maxmemory 1gb, which wins over the file.
	for k, want := range map[string]string{"maxmemory": strconv.Itoa(1 << 30), "timeout": "77"} {
		if m[k] != want {
			t.Errorf("CONFIG GET %s = %q, want %q", k, m[k], want)
		}
	}
}

// scrapeMetrics GETs /metrics from addr, waiting for the endpoint to answer.
func scrapeMetrics(t *testing.T, addr string) string {
	t.Helper()
	var body string
	client := &http.Client{Timeout: 10 * time.Second}
	waitFor(t, time.Minute, "GET /metrics to answer 200", func() bool {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err == nil && resp.StatusCode == http.StatusOK
	})
	return body
}

// TestE2EMetrics: kvresp serves Prometheus metrics on --metrics-addr. Redis has no such endpoint.
func TestE2EMetrics(t *testing.T) {
	skipOnRedis(t, "no /metrics endpoint")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := startServer(t, serverOptions{metricsAddr: addr})
	rc := s.resp(t)
	rc.do("+OK\r\n", "SET", "m", "v")
	rc.do("$1\r\nv\r\n", "GET", "m")

	body := scrapeMetrics(t, addr)
	if !strings.Contains(body, "\nkvresp_") && !strings.HasPrefix(body, "kvresp_") {
		t.Fatalf("/metrics has no kvresp_ series:\n%s", lastLines(body, 40))
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "kvresp_") && !strings.Contains(line, " ") {
			t.Errorf("malformed sample line %q", line)
		}
	}
}
