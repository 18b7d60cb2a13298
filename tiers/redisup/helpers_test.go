package redisup

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"kvresp/slab"
	"kvresp/tiers"
)

// The servers these tests run are internal/redistest's; the value helpers
// (Put, Get and an arena checked for leaks) tiers/uptest's.

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

// getStream reads key through u's GetStream and waits for the whole value.
func getStream(t testing.TB, u *Upstream, a *slab.Arena, key string) ([]byte, bool, error) {
	t.Helper()
	it, f, ok, err := u.GetStream(ctxTimeout(t, 10*time.Second), key, a.Alloc)
	if err != nil || !ok {
		return nil, ok, err
	}
	defer it.Buf.Release()
	if f != nil {
		<-f.Done()
		if err := f.Err(); err != nil {
			return nil, true, err
		}
	}
	return bytes.Clone(it.Buf.Bytes()), true, nil
}
