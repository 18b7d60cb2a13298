package main_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The real command-line tools people point at a Redis server: redis-cli (one-shot and an
// interactive session on a pseudo-terminal) and redis-benchmark.

// runTool runs a tool and returns its stdout; it fails the test when the tool exits non-zero.
func runTool(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

func TestE2ERedisCLI(t *testing.T) {
	cli := needTool(t, "redis-cli")
	s := startServer(t, serverOptions{})
	run := func(stdin []byte, args ...string) string {
		t.Helper()
		return runTool(t, stdin, cli, append([]string{"-h", "127.0.0.1", "-p", s.port()}, args...)...)
	}
	// With stdout not a terminal redis-cli prints raw replies, one per line.
	want := func(got, want string) {
		t.Helper()
		if got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	want(run(nil, "PING"), "PONG\n")
	want(run(nil, "SET", "cli:k", "hello world"), "OK\n")
	want(run(nil, "GET", "cli:k"), "hello world\n")
	want(run(nil, "EXISTS", "cli:k", "cli:missing"), "1\n")
	want(run(nil, "DEL", "cli:k"), "1\n")
	want(run(nil, "GET", "cli:k"), "\n")
	if info := run(nil, "INFO"); !strings.Contains(info, "redis_version:") {
		t.Fatalf("INFO lacks redis_version:\n%s", info)
	}
	if info := run(nil, "INFO", "server"); !strings.Contains(info, "redis_version:") {
		t.Fatalf("INFO server lacks redis_version:\n%s", info)
	}

	// -x takes the last argument from stdin: spaces, CRLF, NUL and high bytes survive.
	bin := []byte("a value with spaces\r\n\x00\x01\xff and \"quotes\" \\ end")
	want(run(bin, "-x", "SET", "cli:bin"), "OK\n")
	want(run(nil, "STRLEN", "cli:bin"), fmt.Sprintf("%d\n", len(bin)))
	want(run(nil, "GET", "cli:bin"), string(bin)+"\n")
	rc := s.resp(t)
	rc.send("GET", "cli:bin")
	rc.expect(fmt.Sprintf("$%d\r\n%s\r\n", len(bin), bin))

	// A 1 MiB value through -x.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	want(run(big, "-x", "SET", "cli:big"), "OK\n")
	rc.send("GET", "cli:big")
	rc.expect(fmt.Sprintf("$%d\r\n%s\r\n", len(big), big))
}

// TestE2ERedisCLIInteractive types into an interactive redis-cli on a tmux pseudo-terminal:
// redis-cli then asks the server for COMMAND DOCS (for its hints) and prints replies in its
// human format.
func TestE2ERedisCLIInteractive(t *testing.T) {
	cli := needTool(t, "redis-cli")
	tm := needTool(t, "tmux")
	s := startServer(t, serverOptions{})
	dir := t.TempDir()
	sock := filepath.Join(dir, "tmux.sock")
	conf := filepath.Join(dir, "tmux.conf")
	if err := os.WriteFile(conf, []byte("set -g history-limit 100000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmux := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(tm, append([]string{"-S", sock, "-f", conf}, args...)...)
		cmd.Env = append(os.Environ(), "TERM=xterm-256color")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	tmux("new-session", "-d", "-s", "e2e", "-x", "200", "-y", "50",
		fmt.Sprintf("%s -h 127.0.0.1 -p %s", cli, s.port()))
	t.Cleanup(func() { exec.Command(tm, "-S", sock, "kill-server").Run() })

	screen := func() string { return tmux("capture-pane", "-p", "-t", "e2e", "-S", "-", "-E", "-") }
	prompt := fmt.Sprintf("127.0.0.1:%s>", s.port()) // capture-pane trims the trailing space
	waitFor(t, 60*time.Second, "the redis-cli prompt", func() bool { return strings.Contains(screen(), prompt) })

	// redis-cli flushes typed-ahead input when it enters raw mode for the next prompt, so type
	// one line at a time: each is done when a fresh, empty prompt is the last line.
	prompts := func(screen string) (n int, idle bool) {
		var last string
		for _, l := range strings.Split(screen, "\n") {
			if strings.HasPrefix(l, prompt) {
				n++
			}
			if strings.TrimSpace(l) != "" {
				last = l
			}
		}
		return n, strings.TrimSpace(last) == prompt
	}
	typeLine := func(line string) {
		t.Helper()
		before, _ := prompts(screen())
		tmux("send-keys", "-t", "e2e", "-l", line)
		tmux("send-keys", "-t", "e2e", "Enter")
		waitFor(t, 60*time.Second, fmt.Sprintf("redis-cli to answer %q", line), func() bool {
			n, idle := prompts(screen())
			return idle && n == before+1
		})
	}
	typeLine("COMMAND DOCS")
	typeLine("INFO")
	typeLine("SET a b")
	typeLine("GET a")
	out := screen()
	for _, want := range []string{
		`"summary"`,                // COMMAND DOCS
		"redis_version:",           // INFO
		prompt + " SET a b\nOK\n",  // SET
		prompt + " GET a\n\"b\"\n", // GET
	} {
		if !strings.Contains(out, want) {
			t.Errorf("screen lacks %q", want)
		}
	}
	if strings.Contains(out, "(error)") {
		t.Errorf("redis-cli printed an error")
	}
	if t.Failed() {
		t.Logf("screen:\n%s", lastLines(out, 60))
	}
	tmux("send-keys", "-t", "e2e", "-l", "QUIT")
	tmux("send-keys", "-t", "e2e", "Enter")
	s.resp(t).do("$1\r\nb\r\n", "GET", "a") // the server still answers
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestE2ERedisBenchmark(t *testing.T) {
	bench := needTool(t, "redis-benchmark")
	s := startServer(t, serverOptions{})
	for _, args := range [][]string{
		{"-t", "set,get", "-d", "1048576", "-n", "200", "-c", "8", "-q"},
		{"-t", "set,get", "-d", "64", "-n", "20000", "-c", "8", "-P", "16", "-q"},
	} {
		out := runTool(t, nil, bench, append([]string{"-h", "127.0.0.1", "-p", s.port()}, args...)...)
		// -q prints one line per test, after \r-separated progress updates.
		var results []string
		for _, line := range strings.FieldsFunc(out, func(r rune) bool { return r == '\n' || r == '\r' }) {
			line = strings.TrimSpace(line)
			low := strings.ToLower(line)
			if strings.Contains(low, "err") || strings.Contains(low, "fail") {
				t.Errorf("redis-benchmark %v: %q", args, line)
			}
			if strings.Contains(line, "requests per second") {
				results = append(results, line)
			}
		}
		joined := strings.Join(results, "\n")
		if !strings.Contains(joined, "SET: ") || !strings.Contains(joined, "GET: ") {
			t.Fatalf("redis-benchmark %v: no SET and GET results in\n%s", args, out)
		}
		t.Logf("redis-benchmark %v (informational):\n%s", args, joined)
	}
	s.resp(t).do("+PONG\r\n", "PING")
}
