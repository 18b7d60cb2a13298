// Package uptest provides an in-memory tiers.Upstream for tests of what sits
// on top of an upstream (tiers.Proxy, store): it can be made to fail, to
// hang until its context ends, and it counts its calls. The real backends
// are tested against real servers in their own packages.
package uptest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"kvresp/tiers"
)

// ErrDown is what a failing Memory returns.
var ErrDown = errors.New("uptest: upstream down")

type entry struct {
	val      []byte
	expireAt int64
}

// Memory is an in-memory upstream. Its zero value is not usable: use New.
type Memory struct {
	now func() int64

	mu    sync.Mutex
	m     map[string]entry
	fail  error // returned by every call while set
	failN int   // the next failN calls return ErrDown
	hang  bool  // every call waits for its context while set

	// Streaming (SetStream): GetStream hands values out while it copies
	// them in chunks, each waiting for a token on gate when gate is set;
	// breakAt > 0 fails the transfer after that many bytes.
	stream  bool
	gate    chan struct{}
	breakAt int

	// Calls counts calls by operation: "get", "stat", "put", "expire", "del".
	calls sync.Map // string → *atomic.Uint64
}

// New makes an empty upstream whose clock (Unix ms) is now.
func New(now func() int64) *Memory {
	return &Memory{now: now, m: map[string]entry{}}
}

// SetFail makes every call return err (nil: work again).
func (u *Memory) SetFail(err error) {
	u.mu.Lock()
	u.fail = err
	u.mu.Unlock()
}

// FailNext makes the next n calls return ErrDown.
func (u *Memory) FailNext(n int) {
	u.mu.Lock()
	u.failN = n
	u.mu.Unlock()
}

// SetHang makes every call block until its context is done.
func (u *Memory) SetHang(hang bool) {
	u.mu.Lock()
	u.hang = hang
	u.mu.Unlock()
}

// SetStream makes GetStream stream: values are copied in chunks of chunk
// bytes, each after a token on gate (nil: no waiting); a transfer fails
// after breakAt bytes when breakAt > 0. Without it GetStream is Get.
func (u *Memory) SetStream(on bool, gate chan struct{}, breakAt int) {
	u.mu.Lock()
	u.stream, u.gate, u.breakAt = on, gate, breakAt
	u.mu.Unlock()
}

// chunk is the size of GetStream's copies.
const chunk = 4096

// GetStream implements tiers.Streamer.
func (u *Memory) GetStream(ctx context.Context, key string, alloc tiers.Alloc) (tiers.Item, *tiers.Fill, bool, error) {
	u.mu.Lock()
	stream, gate, breakAt := u.stream, u.gate, u.breakAt
	u.mu.Unlock()
	if !stream {
		it, ok, err := u.Get(ctx, key, alloc)
		return it, nil, ok, err
	}
	if err := u.enter(ctx, "get"); err != nil {
		return tiers.Item{}, nil, false, err
	}
	u.mu.Lock()
	e, ok := u.live(key)
	u.mu.Unlock()
	if !ok {
		return tiers.Item{}, nil, false, nil
	}
	b, err := alloc(len(e.val))
	if err != nil {
		return tiers.Item{}, nil, false, err
	}
	f := tiers.NewFill()
	go func() {
		dst := b.Bytes()
		for off := 0; off < len(dst); {
			if gate != nil {
				select {
				case <-gate:
				case <-ctx.Done():
					f.Finish(ctx.Err())
					return
				}
			}
			end := min(off+chunk, len(dst))
			if breakAt > 0 && end > breakAt {
				copy(dst[off:breakAt], e.val[off:breakAt])
				f.Progress(breakAt)
				f.Finish(ErrDown)
				return
			}
			copy(dst[off:end], e.val[off:end])
			off = end
			f.Progress(off)
		}
		f.Finish(nil)
	}()
	return tiers.Item{Buf: b, ExpireAt: e.expireAt}, f, true, nil
}

// Calls reports how many calls of op were made.
func (u *Memory) Calls(op string) uint64 {
	if c, ok := u.calls.Load(op); ok {
		return c.(*atomic.Uint64).Load()
	}
	return 0
}

// Value returns the stored value and expiry of key, bypassing failures.
func (u *Memory) Value(key string) ([]byte, int64, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.m[key]
	return e.val, e.expireAt, ok
}

// Len is the number of stored keys.
func (u *Memory) Len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m)
}

// enter counts a call and applies the failure settings.
func (u *Memory) enter(ctx context.Context, op string) error {
	c, _ := u.calls.LoadOrStore(op, new(atomic.Uint64))
	c.(*atomic.Uint64).Add(1)
	u.mu.Lock()
	fail, hang := u.fail, u.hang
	if u.failN > 0 {
		u.failN--
		fail = ErrDown
	}
	u.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return fail
}

// live returns key's entry if present and not expired; u.mu is held.
func (u *Memory) live(key string) (entry, bool) {
	e, ok := u.m[key]
	if ok && e.expireAt != 0 && e.expireAt <= u.now() {
		delete(u.m, key)
		return entry{}, false
	}
	return e, ok
}

// Name implements tiers.Upstream.
func (u *Memory) Name() string { return "memory" }

// Get implements tiers.Upstream.
func (u *Memory) Get(ctx context.Context, key string, alloc tiers.Alloc) (tiers.Item, bool, error) {
	if err := u.enter(ctx, "get"); err != nil {
		return tiers.Item{}, false, err
	}
	u.mu.Lock()
	e, ok := u.live(key)
	u.mu.Unlock()
	if !ok {
		return tiers.Item{}, false, nil
	}
	b, err := alloc(len(e.val))
	if err != nil {
		return tiers.Item{}, false, err
	}
	copy(b.Bytes(), e.val)
	return tiers.Item{Buf: b, ExpireAt: e.expireAt}, true, nil
}

// Stat implements tiers.Upstream.
func (u *Memory) Stat(ctx context.Context, key string) (tiers.Meta, bool, error) {
	if err := u.enter(ctx, "stat"); err != nil {
		return tiers.Meta{}, false, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.live(key)
	return tiers.Meta{Size: int64(len(e.val)), ExpireAt: e.expireAt}, ok, nil
}

// Put implements tiers.Upstream.
func (u *Memory) Put(ctx context.Context, key string, it tiers.Item) error {
	if err := u.enter(ctx, "put"); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if it.ExpireAt != 0 && it.ExpireAt <= u.now() {
		delete(u.m, key)
		return nil
	}
	u.m[key] = entry{val: append([]byte(nil), it.Buf.Bytes()...), expireAt: it.ExpireAt}
	return nil
}

// SetExpire implements tiers.Upstream.
func (u *Memory) SetExpire(ctx context.Context, key string, at int64) (bool, error) {
	if err := u.enter(ctx, "expire"); err != nil {
		return false, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.live(key)
	if !ok {
		return false, nil
	}
	e.expireAt = at
	u.m[key] = e
	return true, nil
}

// Delete implements tiers.Upstream.
func (u *Memory) Delete(ctx context.Context, key string) (bool, error) {
	if err := u.enter(ctx, "del"); err != nil {
		return false, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.live(key)
	delete(u.m, key)
	return ok, nil
}

// Close implements tiers.Upstream.
func (u *Memory) Close() error { return nil }
