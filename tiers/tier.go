// Package tiers defines the contract between the keyspace (package store) and
// the places a value can live: the DRAM tier (slab/dram), the NVMe region log
// (rawblock), the DAX tier (dax) and the upstream proxies (Redis, S3). A tier
// never sees another tier and never sees RESP; store cascades over tiers in
// order and owns per-key atomicity. Values always travel in slab buffers so
// that a tier can hand a buffer to the socket (or to the kernel) without a copy.
package tiers

import (
	"errors"

	"kvresp/slab"
)

// ErrTooLarge is returned by Put when the value can never fit in the tier.
var ErrTooLarge = errors.New("tiers: value larger than the tier can hold")

// Item is a value with its metadata. ExpireAt is a Unix time in
// milliseconds, 0 meaning no expiry. Clean says an identical copy is held by
// the next tier (a promoted or written-through value), so evicting this one
// needs no demotion and enumerations count the key once, below.
type Item struct {
	Buf      *slab.Buf
	ExpireAt int64
	Clean    bool
}

// Meta is what a tier knows of a value without reading it.
type Meta struct {
	Size     int64
	ExpireAt int64
	Clean    bool
}

// Cleaner is implemented by tiers that keep the Clean mark of their items.
type Cleaner interface {
	// CleanLen is how many items are marked clean.
	CleanLen() int
	// SetClean changes an item's mark; it reports whether the item exists.
	SetClean(key string, clean bool) bool
}

// Tier is one level of the cascade. Implementations are safe for concurrent
// use; store serialises operations on one key, never across keys.
type Tier interface {
	// Name is the tier's short name as shown in INFO and metrics ("dram").
	Name() string
	// Get returns the item with a reference the caller must Release.
	Get(key string) (Item, bool, error)
	// Stat reports the item's size and expiry without reading its value.
	Stat(key string) (Meta, bool, error)
	// Put stores the item, replacing any previous value. The tier takes its
	// own reference on it.Buf (or copies it); the caller keeps its own.
	Put(key string, it Item) error
	// SetExpire changes the expiry of an existing item.
	SetExpire(key string, expireAt int64) (bool, error)
	// Delete removes the item; it reports whether it existed.
	Delete(key string) (bool, error)
	// Stats reports counters for INFO and metrics.
	Stats() Stats
}

// Keyspace is implemented by tiers that can enumerate what they hold.
type Keyspace interface {
	// Len is the number of items held (expired ones not yet reclaimed included).
	Len() int
	// Scan calls fn for the items of a slice of the keyspace starting at
	// cursor, returning the next cursor (0 when the iteration is complete).
	// Every item present for a whole iteration is returned exactly once.
	Scan(cursor uint64, count int, fn func(key string, m Meta)) uint64
	// RandomKey returns a key chosen at random, false when empty.
	RandomKey() (string, bool)
	// Flush drops every item.
	Flush()
}

// Stats are a tier's counters. Gauges are current values, counters grow.
type Stats struct {
	Name      string
	Items     int64
	Bytes     int64 // value bytes held
	Capacity  int64 // bytes the tier may hold
	Hits      uint64
	Misses    uint64
	Puts      uint64
	Deletes   uint64
	Evictions uint64
	Expired   uint64
	Errors    uint64
}

// EvictFunc is told of an item a tier drops to make room, so that store can
// demote it to the next tier. A tier may call it while it still holds the
// item under its own lock (so that no write of the key can slip in between),
// so it must neither block nor call back into the tier; what it returns, when
// not nil, is run by the tier after its lock is released and may block. The
// buffer reference is lent for the duration of the call; keep it with Retain.
type EvictFunc func(key string, it Item) (after func())
