package tiers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"kvresp/slab"
)

// ProxyOptions configure a Proxy. Zero values mean the defaults.
type ProxyOptions struct {
	// Timeout bounds one call, retries included (default 1s): an upstream
	// that hangs costs a request at most this long.
	Timeout time.Duration
	// Retries is how many times a failed call is tried again within its
	// Timeout (default 2; negative means none). Every upstream operation is
	// idempotent, so a retry after a lost reply does no harm.
	Retries int
	// Backoff is the pause before the first retry, doubled before each next
	// one (default 10ms).
	Backoff time.Duration
	// Cooldown is how long the breaker stays open after the upstream failed
	// (default 1s); it doubles while probes keep failing, up to MaxCooldown
	// (default 10s), so a long outage costs one probe per MaxCooldown.
	Cooldown, MaxCooldown time.Duration
	// Alloc provides the buffers values are read into. Required.
	Alloc Alloc
	// Logger receives breaker transitions; nil = slog.Default().
	Logger *slog.Logger
}

// Breaker states, as INFO shows them.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

// LatencyBounds are the upper bounds, in seconds, of the latency histogram
// buckets of upstream calls.
var LatencyBounds = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// ProxyStats are a Proxy's counters.
type ProxyStats struct {
	Kind string // the backend: "redis", "redis-sentinel", "redis-cluster", "s3"
	// Calls made to the upstream (a retried call counts once), and how
	// they ended. Refused calls (ErrRefused) are errors that do not count
	// against the upstream's health. Errors = Timeouts + Refused + Other.
	Calls, Errors, Timeouts, Refused, Other, Retries uint64
	// Skipped counts calls not made because the breaker was open.
	Skipped uint64
	// Breaker is the state now; Opens counts closed → open transitions.
	Breaker string
	Opens   uint64
	// Latency of calls: cumulative counts per LatencyBounds bucket (the
	// last element counts every call), and their sum in seconds.
	LatencyCounts []uint64
	LatencySum    float64
}

// Proxy makes an Upstream a Tier: every call gets a deadline and retries,
// and a circuit breaker makes an outage cost one timeout, not one per
// request. While the breaker is open, calls fail at once with
// ErrBreakerOpen; after the cooldown one call goes through as a probe, and
// its success closes the breaker.
type Proxy struct {
	up  Upstream
	o   ProxyOptions
	log *slog.Logger

	mu        sync.Mutex
	state     string
	openUntil time.Time
	cooldown  time.Duration
	probing   bool

	hits, misses, puts, deletes              atomic.Uint64
	calls, timeouts, refused, other, retries atomic.Uint64
	skipped, opens                           atomic.Uint64
	lat                                      []atomic.Uint64 // per bucket, not cumulative; last = beyond the bounds
	latNanos                                 atomic.Uint64
}

var _ Tier = (*Proxy)(nil)

// NewProxy wraps u.
func NewProxy(u Upstream, o ProxyOptions) *Proxy {
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	switch {
	case o.Retries == 0:
		o.Retries = 2
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = 10 * time.Millisecond
	}
	if o.Cooldown <= 0 {
		o.Cooldown = time.Second
	}
	if o.MaxCooldown < o.Cooldown {
		o.MaxCooldown = max(10*time.Second, o.Cooldown)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// A buffer the node cannot give says nothing about the upstream's
	// health, whatever the backend makes of the error.
	alloc := o.Alloc
	o.Alloc = func(n int) (*slab.Buf, error) {
		b, err := alloc(n)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRefused, err)
		}
		return b, nil
	}
	return &Proxy{up: u, o: o, log: o.Logger, state: BreakerClosed, cooldown: o.Cooldown,
		lat: make([]atomic.Uint64, len(LatencyBounds)+1)}
}

// Upstream returns the wrapped backend.
func (p *Proxy) Upstream() Upstream { return p.up }

// Timeout is the bound of one call.
func (p *Proxy) Timeout() time.Duration { return p.o.Timeout }

// allow reports whether a call may go to the upstream now, and whether it
// is the probe of a half-open breaker.
func (p *Proxy) allow() (ok, probe bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.state {
	case BreakerClosed:
		return true, false
	case BreakerOpen:
		if time.Now().Before(p.openUntil) {
			return false, false
		}
		p.state = BreakerHalfOpen
		p.probing = true
		return true, true
	default: // half-open: one probe at a time
		if p.probing {
			return false, false
		}
		p.probing = true
		return true, true
	}
}

// done records a call's outcome in the breaker.
func (p *Proxy) done(healthy, probe bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if probe {
		p.probing = false
	}
	switch {
	case healthy && p.state != BreakerClosed && probe:
		p.log.Info("upstream is back: circuit breaker closed", "upstream", p.up.Name())
		p.state, p.cooldown = BreakerClosed, p.o.Cooldown
	case healthy:
	case p.state == BreakerClosed:
		p.opens.Add(1)
		p.state, p.openUntil = BreakerOpen, time.Now().Add(p.cooldown)
		p.log.Warn("upstream failing: circuit breaker open", "upstream", p.up.Name(), "for", p.cooldown, "err", err)
	case probe:
		p.cooldown = min(2*p.cooldown, p.o.MaxCooldown)
		p.state, p.openUntil = BreakerOpen, time.Now().Add(p.cooldown)
	}
}

// do runs f with a deadline, retrying failures that are not refusals.
func (p *Proxy) do(f func(ctx context.Context) error) error {
	ctx, cancel, probe, err := p.begin()
	if err != nil {
		return err
	}
	defer cancel()
	start := time.Now()
	err = p.attempts(ctx, f)
	p.end(ctx, start, probe, err)
	return err
}

// begin starts a call: its context, and whether it is the breaker's probe;
// ErrBreakerOpen when it may not go.
func (p *Proxy) begin() (context.Context, context.CancelFunc, bool, error) {
	ok, probe := p.allow()
	if !ok {
		p.skipped.Add(1)
		return nil, nil, false, ErrBreakerOpen
	}
	p.calls.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), p.o.Timeout)
	return ctx, cancel, probe, nil
}

// attempts runs f until it succeeds, is refused, runs out of retries or
// of time.
func (p *Proxy) attempts(ctx context.Context, f func(ctx context.Context) error) error {
	var err error
	for attempt := 0; ; attempt++ {
		if err = f(ctx); err == nil || errors.Is(err, ErrRefused) || attempt >= p.o.Retries {
			return err
		}
		t := time.NewTimer(p.o.Backoff << attempt)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			return err
		}
		p.retries.Add(1)
	}
}

// end records how a call begun at start ended, before its context is
// cancelled.
func (p *Proxy) end(ctx context.Context, start time.Time, probe bool, err error) {
	p.observe(time.Since(start))
	refused := err != nil && errors.Is(err, ErrRefused)
	switch {
	case err == nil:
	case refused:
		p.refused.Add(1)
	default:
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			p.timeouts.Add(1)
		} else {
			p.other.Add(1)
		}
	}
	p.done(err == nil || refused, probe, err)
}

func (p *Proxy) observe(d time.Duration) {
	p.latNanos.Add(uint64(d))
	s := d.Seconds()
	for i, b := range LatencyBounds {
		if s <= b {
			p.lat[i].Add(1)
			return
		}
	}
	p.lat[len(LatencyBounds)].Add(1)
}

// Name implements Tier.
func (p *Proxy) Name() string { return "upstream" }

// Get implements Tier.
func (p *Proxy) Get(key string) (Item, bool, error) {
	var it Item
	var found bool
	err := p.do(func(ctx context.Context) error {
		var err error
		it, found, err = p.up.Get(ctx, key, p.o.Alloc)
		return err
	})
	if err != nil {
		return Item{}, false, err
	}
	p.count(found)
	return it, found, nil
}

// count counts a read's hit or miss.
func (p *Proxy) count(found bool) {
	if found {
		p.hits.Add(1)
	} else {
		p.misses.Add(1)
	}
}

// GetStream is Get for a client that can send a value while it arrives:
// with a backend that streams (a Streamer) it returns once the value's size
// is known, with a Fill that ends when the value is complete; the call's
// deadline covers the whole transfer, and how the transfer ends is what
// counts for the breaker. Without one it is Get, and the Fill is nil.
func (p *Proxy) GetStream(key string) (Item, *Fill, bool, error) {
	st, ok := p.up.(Streamer)
	if !ok {
		it, found, err := p.Get(key)
		return it, nil, found, err
	}
	ctx, cancel, probe, err := p.begin()
	if err != nil {
		return Item{}, nil, false, err
	}
	start := time.Now()
	var it Item
	var fill *Fill
	var found bool
	err = p.attempts(ctx, func(ctx context.Context) error {
		var err error
		it, fill, found, err = st.GetStream(ctx, key, p.o.Alloc)
		return err
	})
	if err != nil || !found || fill == nil {
		p.end(ctx, start, probe, err)
		cancel()
		if err != nil {
			return Item{}, nil, false, err
		}
		p.count(found)
		return it, nil, found, nil
	}
	p.count(true)
	go func() {
		<-fill.Done()
		p.end(ctx, start, probe, fill.Err())
		cancel()
	}()
	return it, fill, true, nil
}

// Stat implements Tier.
func (p *Proxy) Stat(key string) (Meta, bool, error) {
	var m Meta
	var found bool
	err := p.do(func(ctx context.Context) error {
		var err error
		m, found, err = p.up.Stat(ctx, key)
		return err
	})
	return m, found && err == nil, err
}

// Put implements Tier.
func (p *Proxy) Put(key string, it Item) error {
	err := p.do(func(ctx context.Context) error { return p.up.Put(ctx, key, it) })
	if err == nil {
		p.puts.Add(1)
	}
	return err
}

// SetExpire implements Tier.
func (p *Proxy) SetExpire(key string, at int64) (bool, error) {
	var found bool
	err := p.do(func(ctx context.Context) error {
		var err error
		found, err = p.up.SetExpire(ctx, key, at)
		return err
	})
	return found && err == nil, err
}

// Delete implements Tier.
func (p *Proxy) Delete(key string) (bool, error) {
	var found bool
	err := p.do(func(ctx context.Context) error {
		var err error
		found, err = p.up.Delete(ctx, key)
		return err
	})
	if err == nil && found {
		p.deletes.Add(1)
	}
	return found && err == nil, err
}

// Stats implements Tier. The upstream's size is unknown: Items and Bytes
// are 0.
func (p *Proxy) Stats() Stats {
	return Stats{Name: p.Name(), Hits: p.hits.Load(), Misses: p.misses.Load(), Puts: p.puts.Load(),
		Deletes: p.deletes.Load(), Errors: p.errCount()}
}

// errCount is how many calls failed, refusals included.
func (p *Proxy) errCount() uint64 { return p.timeouts.Load() + p.refused.Load() + p.other.Load() }

// ProxyStats reports the call counters, the breaker and the latencies.
func (p *Proxy) ProxyStats() ProxyStats {
	p.mu.Lock()
	state := p.state
	if state == BreakerOpen && !time.Now().Before(p.openUntil) {
		state = BreakerHalfOpen // the next call probes
	}
	p.mu.Unlock()
	st := ProxyStats{Kind: p.up.Name(), Calls: p.calls.Load(), Errors: p.errCount(), Timeouts: p.timeouts.Load(),
		Refused: p.refused.Load(), Other: p.other.Load(), Retries: p.retries.Load(), Skipped: p.skipped.Load(), Breaker: state,
		Opens: p.opens.Load(), LatencySum: time.Duration(p.latNanos.Load()).Seconds()}
	var cum uint64
	for i := range p.lat {
		cum += p.lat[i].Load()
		st.LatencyCounts = append(st.LatencyCounts, cum)
	}
	return st
}

// Close closes the backend.
func (p *Proxy) Close() error { return p.up.Close() }
