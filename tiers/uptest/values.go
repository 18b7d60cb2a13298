package uptest

import (
	"context"
	"testing"

	"kvresp/slab"
	"kvresp/tiers"
)

// Put stores val under key with expiry exp (Unix ms, 0 for none) in u,
// through a buffer of a, failing the test on an error.
func Put(tb testing.TB, u tiers.Upstream, a *slab.Arena, key string, val []byte, exp int64) {
	tb.Helper()
	if err := TryPut(tb.Context(), u, a, key, val, exp); err != nil {
		tb.Fatalf("Put(%q): %v", key, err)
	}
}

// TryPut is Put returning the error: for an upstream that may be failing.
func TryPut(ctx context.Context, u tiers.Upstream, a *slab.Arena, key string, val []byte, exp int64) error {
	b, err := a.Alloc(len(val))
	if err != nil {
		return err
	}
	defer b.Release()
	copy(b.Bytes(), val)
	return u.Put(ctx, key, tiers.Item{Buf: b, ExpireAt: exp})
}

// Get returns a copy of key's value in u and its expiry, failing the test
// on an error. The buffer it was read into goes back to a.
func Get(tb testing.TB, u tiers.Upstream, a *slab.Arena, key string) (val []byte, exp int64, ok bool) {
	tb.Helper()
	val, exp, ok, err := TryGet(tb.Context(), u, a, key)
	if err != nil {
		tb.Fatalf("Get(%q): %v", key, err)
	}
	return val, exp, ok
}

// TryGet is Get returning the error: for an upstream that may be failing.
func TryGet(ctx context.Context, u tiers.Upstream, a *slab.Arena, key string) (val []byte, exp int64, ok bool, err error) {
	it, ok, err := u.Get(ctx, key, a.Alloc)
	if err != nil || !ok {
		return nil, 0, ok, err
	}
	defer it.Buf.Release()
	return append([]byte{}, it.Buf.Bytes()...), it.ExpireAt, true, nil
}
