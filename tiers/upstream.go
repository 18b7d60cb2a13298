package tiers

import (
	"context"
	"errors"

	"kvresp/slab"
)

// Upstream is a store shared by a fleet of kvresp nodes, below the local
// tiers: an existing Redis deployment (tiers/redisup) or an S3 bucket
// (tiers/s3up). Values travel in slab buffers as between the local tiers.
// Every call is bounded by its context; Proxy adds deadlines, retries, a
// circuit breaker and counters on top and makes an Upstream a Tier.
//
// Every operation must be idempotent (a retry after a lost reply does no
// harm): Put stores a whole value with an absolute expiry, SetExpire sets an
// absolute time, Delete of an absent key is not an error.
type Upstream interface {
	// Name is the backend's kind for INFO and logs: "redis", "redis-sentinel",
	// "redis-cluster" or "s3".
	Name() string
	// Get reads key's value into a buffer taken from alloc (which charges
	// the node's memory and refuses what can never fit); ok is false when
	// the key is absent or expired. The caller releases it.Buf.
	Get(ctx context.Context, key string, alloc Alloc) (it Item, ok bool, err error)
	// Stat reports whether key exists, with its size and expiry.
	Stat(ctx context.Context, key string) (Meta, bool, error)
	// Put stores it under key, replacing any previous value; it.ExpireAt is
	// absolute Unix milliseconds, 0 for none.
	Put(ctx context.Context, key string, it Item) error
	// SetExpire sets key's absolute expiry (0 = persist), reporting whether
	// the key exists.
	SetExpire(ctx context.Context, key string, expireAt int64) (bool, error)
	// Delete removes key, reporting whether it existed.
	Delete(ctx context.Context, key string) (bool, error)
	// Close releases connections.
	Close() error
}

// Alloc returns a buffer of length n, or an error when the node cannot hold
// a value that large (slab.ErrTooLarge) or has no memory for it now. Proxy
// marks every such error ErrRefused.
type Alloc func(n int) (*slab.Buf, error)

// ErrRefused marks an upstream error that says nothing about the upstream's
// health: a key the backend cannot name, a value of the wrong type, a value
// too large for this node. Backends wrap it (fmt.Errorf("...: %w",
// ErrRefused)); Proxy neither retries such a call nor lets it open the
// breaker. Every other error is taken as the upstream failing.
var ErrRefused = errors.New("refused by the upstream")

// ErrBreakerOpen is returned without calling the upstream while the circuit
// breaker is open.
var ErrBreakerOpen = errors.New("upstream unavailable: circuit breaker open")
