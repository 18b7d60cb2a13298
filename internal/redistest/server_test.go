package redistest

import (
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
)

// A restarted server is back on its port, empty (nothing is written to
// disk), and the same Client reaches it.
func TestRestart(t *testing.T) {
	s := Start(t)
	c, ctx, port := s.Client(), t.Context(), s.Port()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING of a stopped server answered")
	}
	s.Restart()
	if s.Port() != port {
		t.Fatalf("restarted on port %d, not %d", s.Port(), port)
	}
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after the restart: %v; want a miss", err)
	}
}

// A program that is not installed skips the test outside CI.
func TestNeedBinaryMissing(t *testing.T) {
	t.Setenv("CI", "")
	var skipped bool
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		NeedBinary(t, "kvresp-no-such-program")
	})
	if !skipped {
		t.Fatal("a missing program did not skip the test")
	}
}
