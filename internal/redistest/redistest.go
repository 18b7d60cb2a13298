// Package redistest runs real Redis deployments on loopback for tests: a
// redis-server on a free port in a temporary directory (restartable on the
// same port), a primary and its replica watched by a redis-sentinel, and a
// three-node Redis Cluster. Every process is killed when its test ends (and,
// on Linux, when the test binary dies before that). Tests use it rather than
// a fake because what kvresp promises is to work with the real programs.
// A program that is not installed skips the test, except in CI (CI set in
// the environment), where it fails it: CI must run every test.
//
// FakeStreamedGet is the one fake, for what the real programs will not do
// on demand: die partway through a value. SelfSignedCert makes the
// certificates of TLS tests.
//
// The package imports testing and is for tests only.
package redistest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// NeedBinary returns the path of a program the test needs; without it the
// test is skipped, or fails when CI is set.
func NeedBinary(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(tb, "%s is not on PATH (scripts/deps.sh installs it): %v", name, err)
	}
	return path
}

// Missing ends a test that lacks something it needs: skipped, or failed
// when CI is set, where scripts/deps.sh must have installed it.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// FreePort returns a loopback port that was free a moment ago. Another
// process may take it before it is bound: Start tries again with a new one.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eventuallyFor bounds Eventually: long enough for a Sentinel failover or a
// cluster to settle on a loaded two-core machine. It is a liveness bound,
// not a timing assertion.
const eventuallyFor = 60 * time.Second

// Eventually calls f, with a context of a few seconds, until it returns nil,
// failing the test with f's last error after a minute.
func Eventually(tb testing.TB, what string, f func(ctx context.Context) error) {
	tb.Helper()
	deadline := time.Now().Add(eventuallyFor)
	for {
		ctx, cancel := context.WithTimeout(tb.Context(), 2*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: still failing after %v: %v", what, eventuallyFor, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
