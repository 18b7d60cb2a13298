// Package store is kvresp's keyspace: it cascades reads over the tiers in
// order, writes new values to the first tier, keeps a key in exactly one tier,
// applies TTLs and the conditional forms of SET, and makes every operation on
// one key atomic with respect to every other operation on that key (striped
// locks, so unrelated keys never wait for each other). It talks to tiers only
// through tiers.Tier and never sees RESP.
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"kvresp/slab"
	"kvresp/tiers"
)

// stripes is the number of key locks; a power of two well above the number of
// connections that are likely to touch different keys at once.
const stripes = 4096

// Options configure a Store.
type Options struct {
	// Tiers in cascade order; the first one receives new values. At least one.
	Tiers []tiers.Tier
	// Promote copies a value read from a lower tier into the first one.
	Promote bool
	// WriteThrough writes each SET to the second tier too (after the first,
	// whose copy is then marked clean) and acknowledges it once that write
	// returns (rawblock-write-mode always, with a tier that syncs each Put). Without it a value reaches the second
	// tier when the first evicts it, or at Close.
	WriteThrough bool
	// DemoteQueue is how many evicted items may wait for the next tier: 0
	// means 16. DemoteWait is how long an eviction waits for room in a full
	// queue before the item is dropped and counted: 0 means 2s.
	DemoteQueue int
	DemoteWait  time.Duration
	// Upstream is the store shared by the fleet below the local tiers (a
	// tiers.Proxy), nil for none; UpstreamModes say how it is used.
	Upstream      tiers.Tier
	UpstreamModes UpstreamModes
	// UpstreamQueue is how many writes to the upstream (write-through-async
	// and write-back) may wait: 0 means 64. UpstreamWait is how long a SET
	// or an eviction waits for room in a full queue before the write is
	// dropped and counted: 0 means DemoteWait.
	UpstreamQueue int
	UpstreamWait  time.Duration
	// staleRetry is how often the retrier runs (tests); 0 means staleRetry.
	staleRetry time.Duration
	// Now returns the current Unix time in milliseconds; nil = wall clock.
	Now func() int64
	// Logger receives one line per notable event; nil = slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem with the options.
func (o Options) Validate() error {
	var errs []error
	if len(o.Tiers) == 0 {
		errs = append(errs, errors.New("store: at least one tier is required"))
	}
	if o.WriteThrough && len(o.Tiers) < 2 {
		errs = append(errs, errors.New("store: write-through needs a second tier"))
	}
	if o.DemoteQueue < 0 {
		errs = append(errs, errors.New("store: the demotion queue length must not be negative"))
	}
	if o.UpstreamQueue < 0 {
		errs = append(errs, errors.New("store: the upstream queue length must not be negative"))
	}
	if o.Upstream == nil && o.UpstreamModes != (UpstreamModes{}) {
		errs = append(errs, errors.New("store: upstream modes without an upstream"))
	}
	if err := o.UpstreamModes.validate(); err != nil {
		errs = append(errs, err)
	}
	for i, t := range o.Tiers {
		if t == nil {
			errs = append(errs, fmt.Errorf("store: tier %d is nil", i))
		}
	}
	return errors.Join(errs...)
}

// Store is the keyspace.
type Store struct {
	tiers        []tiers.Tier
	now          func() int64
	log          *slog.Logger
	promote      bool
	writeThrough bool
	dem          *demoter // nil with one tier
	locks        [stripes]sync.Mutex
	upstream     // up is nil without an upstream

	hits, misses   atomic.Uint64
	promoted       atomic.Uint64
	companionDrops atomic.Uint64
}

// New makes a Store over the given tiers.
func New(o Options) (*Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().UnixMilli() }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.DemoteQueue == 0 {
		o.DemoteQueue = 16
	}
	if o.DemoteWait == 0 {
		o.DemoteWait = 2 * time.Second
	}
	s := &Store{tiers: o.Tiers, now: o.Now, log: o.Logger, promote: o.Promote, writeThrough: o.WriteThrough}
	if len(s.tiers) > 1 {
		s.dem = newDemoter(s, "demotion", o.DemoteQueue, o.DemoteWait, s.tiers[1:])
	}
	if o.Upstream != nil {
		s.initUpstream(o)
	}
	for i, t := range s.tiers {
		if e, ok := t.(evictNotifier); ok {
			e.SetEvict(s.evicted(i))
		}
	}
	return s, nil
}

// evictNotifier is implemented by tiers that evict on their own (the DRAM
// tier, under memory pressure) and can tell store what they dropped.
type evictNotifier interface {
	SetEvict(tiers.EvictFunc)
}

// LMCache stores a chunk as two keys, <k>kv_bytes and <k>metadata, and reads
// the metadata first: metadata whose chunk is gone costs it a round trip to
// find out and a DEL to clean up (DESIGN.md §2). So when a chunk leaves the
// last tier, its metadata goes with it.
const (
	lmcacheChunkSuffix = "kv_bytes"
	lmcacheMetaSuffix  = "metadata"
)

// evicted returns the eviction callback of tier i. An item evicted from a
// tier with another below it is demoted (unless a clean copy is there
// already); an item evicted from the last tier is gone, so the clean mark of
// copies above it goes, and so does its LMCache metadata companion. It runs
// inside the tier's reclaim, possibly while this goroutine holds a key lock,
// so it takes no store lock (in a log tier the companion is deleted in the
// background), and deleting a companion while it is being rewritten costs
// one miss, never a wrong value.
func (s *Store) evicted(i int) tiers.EvictFunc {
	return func(key string, it tiers.Item) func() {
		if i+1 < len(s.tiers) {
			if it.Clean {
				return nil
			}
			// Registered now, under the tier's lock; queued after it.
			dm := s.dem.register(key, it, i)
			return func() { s.dem.send(dm) }
		}
		if s.up != nil {
			return s.evictedLast(key, it)
		}
		return func() { s.forget(key, true) }
	}
}

// forget handles a key the last tier dropped: copies above it are no longer
// clean, and, with companion, its LMCache metadata companion goes.
func (s *Store) forget(key string, companion bool) {
	if s.promote || s.writeThrough { // else nothing above is ever marked clean
		for _, t := range s.tiers[:len(s.tiers)-1] {
			if c, ok := t.(tiers.Cleaner); ok {
				c.SetClean(key, false)
			}
		}
	}
	base, ok := strings.CutSuffix(key, lmcacheChunkSuffix)
	if !ok || !companion {
		return
	}
	s.companionDrops.Add(1)
	meta := base + lmcacheMetaSuffix
	var later []tiers.Tier
	for _, t := range s.tiers {
		if _, persistent := t.(syncer); persistent {
			// A log tier may be inside its own reclaim here and need that
			// reclaim to finish before it can write a tombstone: delete
			// there from another goroutine.
			later = append(later, t)
			continue
		}
		_, _ = t.Delete(meta)
	}
	if len(later) > 0 {
		go func() {
			for _, t := range later {
				_, _ = t.Delete(meta)
			}
		}()
	}
}

// writeDown copies key from the first tier to the second if only the first
// holds it, reporting whether it wrote.
func (s *Store) writeDown(key string) (bool, error) {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	it, ok, err := s.tiers[0].Get(key)
	if err != nil || !ok {
		return false, err
	}
	defer it.Buf.Release()
	if it.Clean {
		return false, nil
	}
	if err := s.tiers[1].Put(key, it); err != nil {
		return false, err
	}
	return true, nil
}

// Close writes down what only the first tier holds (so that a restart over
// a persistent second tier is warm), then lets the demotions under way
// finish; with write-back and no tier below the first, what the upstream
// does not hold goes up instead (writeBackAll). It does not close the tiers.
func (s *Store) Close() error {
	if s.up != nil {
		defer s.closeUpstream() // after the demoter's close: what it writes may go up
	}
	if s.dem == nil {
		if s.up != nil && s.mode.WriteBack {
			return s.writeBackAll()
		}
		return nil
	}
	// The demoter keeps running during the write-down, so what the
	// write-down itself makes the first tier evict still goes down; it is
	// drained and stopped at the end.
	defer s.dem.close()
	keys := s.dirtyKeys()
	// Many writers at once keep the lower tier's queue deep: one at a time,
	// small values would be written at the device's latency, not its speed.
	const writers = 32
	var (
		mu      sync.Mutex
		errs    []error
		written int
		wg      sync.WaitGroup
	)
	work := make(chan string)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range work {
				ok, err := s.writeDown(key)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("cannot write %q down to %s: %w", key, s.tiers[1].Name(), err))
				} else if ok {
					written++
				}
				mu.Unlock()
			}
		}()
	}
	for _, key := range keys {
		work <- key
	}
	close(work)
	wg.Wait()
	s.log.Info("wrote the first tier down", "tier", s.tiers[1].Name(), "items", written, "errors", len(errs))
	return errors.Join(errs...)
}

// dirtyKeys lists the keys of the first tier that the tier below does not
// hold (tiers.Meta.Clean; with no tier below, every key).
func (s *Store) dirtyKeys() []string {
	ks, ok := s.tiers[0].(tiers.Keyspace)
	if !ok {
		return nil
	}
	var keys []string
	var cursor uint64
	for {
		cursor = ks.Scan(cursor, 1024, func(key string, m tiers.Meta) {
			if !m.Clean {
				keys = append(keys, key)
			}
		})
		if cursor == 0 {
			return keys
		}
	}
}

// Tiers returns the tiers in cascade order (for INFO and metrics).
func (s *Store) Tiers() []tiers.Tier { return s.tiers }

// Now is the store's clock in Unix milliseconds.
func (s *Store) Now() int64 { return s.now() }

func (s *Store) lock(key string) *sync.Mutex {
	return &s.locks[xxhash.Sum64String(key)&(stripes-1)]
}

// lockMany locks the stripes of several keys in a fixed order (no deadlock)
// and returns the unlock function.
func (s *Store) lockMany(keys []string) func() {
	idx := make([]int, 0, len(keys))
	for _, k := range keys {
		idx = append(idx, int(xxhash.Sum64String(k)&(stripes-1)))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		s.locks[i].Lock()
	}
	return func() {
		for j := len(idx) - 1; j >= 0; j-- {
			s.locks[idx[j]].Unlock()
		}
	}
}

// getLocked finds key in the cascade, promoting a value found below the
// first tier when asked to. The returned buffer carries a reference for the
// caller. A value read through from the upstream may still be arriving:
// with stream it comes with its Fill (see GetStream), else getLocked waits
// for it.
func (s *Store) getLocked(key string, stream bool) (tiers.Item, *tiers.Fill, int, bool, error) {
	var firstErr error
	for i, t := range s.tiers {
		it, ok, err := t.Get(key)
		if err != nil {
			// A tier that fails is a miss for that tier, not for the key.
			if firstErr == nil {
				firstErr = fmt.Errorf("tier %s: %w", t.Name(), err)
			}
			continue
		}
		if !ok {
			continue
		}
		if i > 0 && s.promote {
			// The copy below stays: the promoted one is clean while the
			// next tier is the one holding it.
			p := tiers.Item{Buf: it.Buf, ExpireAt: it.ExpireAt, Clean: i == 1}
			if err := s.tiers[0].Put(key, p); err == nil {
				s.promoted.Add(1)
			}
		}
		return it, nil, i, true, nil
	}
	if s.dem != nil {
		if it, ok := s.dem.find(key); ok {
			return it, nil, 0, true, nil
		}
	}
	if s.up != nil {
		if it, fill, ok := s.getUpstream(key, stream); ok {
			return it, fill, 0, true, nil
		}
	}
	return tiers.Item{}, nil, -1, false, firstErr
}

func (s *Store) statLocked(key string) (tiers.Meta, int, bool, error) {
	var firstErr error
	for i, t := range s.tiers {
		m, ok, err := t.Stat(key)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("tier %s: %w", t.Name(), err)
			}
			continue
		}
		if ok {
			return m, i, true, nil
		}
	}
	if s.dem != nil {
		if m, ok := s.dem.meta(key); ok {
			return m, 0, true, nil
		}
	}
	if s.up != nil {
		if m, ok := s.statUpstream(key); ok {
			return m, len(s.tiers), true, nil
		}
	}
	return tiers.Meta{}, -1, false, firstErr
}

// deleteLocked removes key from every tier, reporting whether it existed.
func (s *Store) deleteLocked(key string) (bool, error) {
	found := false
	var errs []error
	var release func()
	if s.dem != nil {
		release = s.dem.hold(key)
	}
	for _, t := range s.tiers {
		ok, err := deleteDurably(t, key)
		if err != nil {
			errs = append(errs, fmt.Errorf("tier %s: %w", t.Name(), err))
		}
		found = found || ok
	}
	if s.dem != nil {
		if s.dem.cancel(key) {
			// The value was on its way down (evicted before the delete,
			// or from a lower tier while it ran): it existed, and, held
			// at the gate, none of it lands below.
			found = true
		}
		release() // before the upstream's round trip
	}
	if s.up != nil && s.deleteUpstream(key) {
		found = true
	}
	return found, errors.Join(errs...)
}

// syncer is implemented by persistent tiers.
type syncer interface{ Sync() error }

// deleteDurably deletes key from t and, when t is persistent and held the
// key, makes the deletion durable before returning: an acknowledged DEL or
// overwrite must not be undone by a crash that loses the tombstone (the old
// value would come back at the next start).
func deleteDurably(t tiers.Tier, key string) (bool, error) {
	ok, err := t.Delete(key)
	if err != nil || !ok {
		return ok, err
	}
	if sy, persistent := t.(syncer); persistent {
		if err := sy.Sync(); err != nil {
			return true, err
		}
	}
	return true, nil
}

// Get returns the value of key with a reference the caller must Release.
func (s *Store) Get(key string) (*slab.Buf, bool, error) {
	buf, _, ok, err := s.get(key, false)
	return buf, ok, err
}

// GetStream is Get for a caller that can send a value while it arrives: a
// value being read through from the upstream comes at once, with a Fill
// that says how much of it is there (cut-through); the caller may send
// what is filled as it comes, must hold its reference until the Fill is
// done, and must take the value as whole only if the Fill ends without an
// error. Every other value comes whole, with a nil Fill.
func (s *Store) GetStream(key string) (*slab.Buf, *tiers.Fill, bool, error) {
	return s.get(key, true)
}

func (s *Store) get(key string, stream bool) (*slab.Buf, *tiers.Fill, bool, error) {
	mu := s.lock(key)
	mu.Lock()
	it, fill, _, ok, err := s.getLocked(key, stream)
	mu.Unlock()
	s.count(ok)
	return it.Buf, fill, ok, err
}

func (s *Store) count(hit bool) {
	if hit {
		s.hits.Add(1)
	} else {
		s.misses.Add(1)
	}
}

// Cond is the condition of a SET.
type Cond uint8

// SET conditions.
const (
	Always Cond = iota
	IfAbsent
	IfPresent
)

// SetOptions are SET's options. ExpireAt is absolute Unix milliseconds, 0 =
// no expiry (unless KeepTTL).
type SetOptions struct {
	Cond     Cond
	ExpireAt int64
	KeepTTL  bool
	// Get asks for the previous value (SET ... GET).
	Get bool
}

// SetResult reports what a Set did.
type SetResult struct {
	Stored bool
	// Old is the previous value when SetOptions.Get was set and there was
	// one; the caller must Release it.
	Old *slab.Buf
}

// Set stores buf under key in the first tier (the store takes its own
// reference; the caller keeps its own) and removes the key from every other
// tier. Either the new value is stored whole or the old one stays.
func (s *Store) Set(key string, buf *slab.Buf, o SetOptions) (SetResult, error) {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	return s.setLocked(key, buf, o)
}

func (s *Store) setLocked(key string, buf *slab.Buf, o SetOptions) (SetResult, error) {
	var res SetResult
	needOld := o.Cond != Always || o.KeepTTL || o.Get
	var old tiers.Item
	var oldOK bool
	if needOld {
		var err error
		if o.Get {
			old, _, _, oldOK, err = s.getLocked(key, false)
		} else {
			var m tiers.Meta
			m, _, oldOK, err = s.statLocked(key)
			old.ExpireAt = m.ExpireAt
		}
		if err != nil && !oldOK {
			return res, err
		}
	}
	if o.Get && oldOK {
		res.Old = old.Buf
	}
	if (o.Cond == IfAbsent && oldOK) || (o.Cond == IfPresent && !oldOK) {
		return res, nil
	}
	exp := o.ExpireAt
	if o.KeepTTL && oldOK {
		exp = old.ExpireAt
	}
	// On an error the caller gets no old value: release it here.
	fail := func(err error) (SetResult, error) {
		if res.Old != nil {
			res.Old.Release()
		}
		return SetResult{}, err
	}
	if exp != 0 && exp <= s.now() {
		// Redis stores and immediately expires: the key is gone.
		if _, err := s.deleteLocked(key); err != nil {
			return fail(err)
		}
		res.Stored = true
		return res, nil
	}
	var put, stored bool
	finish := func() {}
	if s.dem != nil {
		// Nothing of the key is written below from here until the tiers
		// below are cleared and an older value on its way down is
		// cancelled; the new one, if evicted at once, goes down after.
		// A SET that fails after its Put takes its value back out: then
		// it goes nowhere. One whose Put failed changed nothing. The gate
		// opens before the upstream's round trip (finish, below) or on
		// any return.
		release := s.dem.hold(key)
		finished := false
		finish = func() {
			if finished {
				return
			}
			finished = true
			switch {
			case stored:
				s.dem.cancelExcept(key, buf)
			case put:
				s.dem.cancel(key)
			}
			release()
		}
		defer finish()
	}
	if err := s.tiers[0].Put(key, tiers.Item{Buf: buf, ExpireAt: exp, Clean: s.writeThrough}); err != nil {
		return fail(err)
	}
	put = true
	below := s.tiers[1:]
	if s.writeThrough {
		// Acknowledged once durable below; the copy above is clean.
		if err := s.tiers[1].Put(key, tiers.Item{Buf: buf, ExpireAt: exp}); err != nil {
			_, _ = s.tiers[0].Delete(key)
			return fail(err)
		}
		below = s.tiers[2:]
	}
	for _, t := range below {
		if _, err := deleteDurably(t, key); err != nil {
			// The old copy below could come back once the new one leaves
			// the first tier: take the new one back out (the old value
			// stays, the SET fails) rather than risk serving it later.
			_, _ = s.tiers[0].Delete(key)
			return fail(fmt.Errorf("tier %s: %w", t.Name(), err))
		}
	}
	stored = true
	finish()
	if s.up != nil {
		s.setUpstream(key, tiers.Item{Buf: buf, ExpireAt: exp})
	}
	res.Stored = true
	return res, nil
}

// Pair is one key and value of MSet.
type Pair struct {
	Key string
	Buf *slab.Buf
}

// MSet stores every pair atomically with respect to other operations on
// those keys. With nx it stores nothing if any key exists (MSETNX) and
// reports whether it stored.
func (s *Store) MSet(pairs []Pair, nx bool) (bool, error) {
	keys := make([]string, len(pairs))
	for i, p := range pairs {
		keys[i] = p.Key
	}
	unlock := s.lockMany(keys)
	defer unlock()
	if nx {
		for _, k := range keys {
			_, _, ok, err := s.statLocked(k)
			if err != nil {
				return false, err
			}
			if ok {
				return false, nil
			}
		}
	}
	for _, p := range pairs {
		if _, err := s.setLocked(p.Key, p.Buf, SetOptions{}); err != nil {
			return false, err
		}
	}
	return true, nil
}

// GetDel returns the value and deletes the key.
func (s *Store) GetDel(key string) (*slab.Buf, bool, error) {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	it, _, _, ok, err := s.getLocked(key, false)
	s.count(ok)
	if !ok {
		return nil, false, err
	}
	if _, err := s.deleteLocked(key); err != nil {
		it.Buf.Release()
		return nil, false, err
	}
	return it.Buf, true, nil
}

// ExpireChange is how GetEx changes the TTL.
type ExpireChange struct {
	Set      bool  // change it
	ExpireAt int64 // new absolute expiry, 0 = persist
}

// GetEx returns the value and optionally changes its expiry.
func (s *Store) GetEx(key string, ch ExpireChange) (*slab.Buf, bool, error) {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	it, _, tier, ok, err := s.getLocked(key, false)
	s.count(ok)
	if !ok || !ch.Set {
		return it.Buf, ok, err
	}
	if ch.ExpireAt != 0 && ch.ExpireAt <= s.now() {
		if _, err := s.deleteLocked(key); err != nil {
			it.Buf.Release()
			return nil, false, err
		}
		return it.Buf, true, nil
	}
	if _, err := s.setExpireLocked(key, tier, ch.ExpireAt); err != nil {
		it.Buf.Release()
		return nil, false, err
	}
	return it.Buf, true, nil
}

// Delete removes key, reporting whether it existed.
func (s *Store) Delete(key string) (bool, error) {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	return s.deleteLocked(key)
}

// Stat reports size and expiry of key.
func (s *Store) Stat(key string) (tiers.Meta, bool, error) {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	m, _, ok, err := s.statLocked(key)
	return m, ok, err
}

// Exists reports whether key holds a live value.
func (s *Store) Exists(key string) (bool, error) {
	_, ok, err := s.Stat(key)
	return ok, err
}

// Touch marks key as used, reporting whether it exists.
func (s *Store) Touch(key string) (bool, error) {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	_, tier, ok, err := s.statLocked(key)
	if ok && tier < len(s.tiers) {
		if tt, can := s.tiers[tier].(interface{ Touch(string) bool }); can {
			tt.Touch(key)
		}
	}
	return ok, err
}

// ExpireCond is the set of conditions of EXPIRE (NX, XX, GT, LT). Redis 7
// accepts XX with GT or LT; NX goes alone and GT excludes LT (the command
// parser enforces that).
type ExpireCond uint8

// EXPIRE conditions, as in Redis 7.
const (
	ExpireAlways ExpireCond = 0
	ExpireNX     ExpireCond = 1 << iota
	ExpireXX
	ExpireGT
	ExpireLT
)

// Expire sets key's absolute expiry in Unix milliseconds (0 = persist),
// under the conditions; a time in the past deletes the key. It reports
// whether the expiry was changed.
func (s *Store) Expire(key string, at int64, c ExpireCond) (bool, error) {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	m, tier, ok, err := s.statLocked(key)
	if !ok {
		return false, err
	}
	cur := m.ExpireAt
	switch {
	case c&ExpireNX != 0 && cur != 0,
		c&ExpireXX != 0 && cur == 0,
		// No TTL counts as an infinite one.
		c&ExpireGT != 0 && (cur == 0 || at <= cur),
		c&ExpireLT != 0 && cur != 0 && at >= cur:
		return false, nil
	}
	if at != 0 && at <= s.now() {
		_, err := s.deleteLocked(key)
		return true, err
	}
	return s.setExpireLocked(key, tier, at)
}

// setExpireLocked changes key's expiry in every place that holds it: the
// tier it was found in and the copies below it (a promoted value has one).
func (s *Store) setExpireLocked(key string, tier int, at int64) (bool, error) {
	changed := false
	var errs []error
	if s.dem != nil && s.dem.setExpire(key, at) {
		changed = true
	}
	for _, t := range s.tiers[min(max(tier, 0), len(s.tiers)):] {
		ok, err := t.SetExpire(key, at)
		if err != nil {
			errs = append(errs, fmt.Errorf("tier %s: %w", t.Name(), err))
		}
		changed = changed || ok
	}
	if s.up != nil && s.setExpireUpstream(key, at, tier == len(s.tiers)) {
		changed = true
	}
	return changed, errors.Join(errs...)
}

// Persist removes key's expiry, reporting whether it had one.
func (s *Store) Persist(key string) (bool, error) {
	mu := s.lock(key)
	mu.Lock()
	defer mu.Unlock()
	m, tier, ok, err := s.statLocked(key)
	if !ok || m.ExpireAt == 0 {
		return false, err
	}
	return s.setExpireLocked(key, tier, 0)
}

// keyspaces returns the tiers that can enumerate their keys.
func (s *Store) keyspaces() []tiers.Keyspace {
	var ks []tiers.Keyspace
	for _, t := range s.tiers {
		if k, ok := t.(tiers.Keyspace); ok {
			ks = append(ks, k)
		}
	}
	return ks
}

// Len is the number of keys (DBSIZE): a key lives in one tier, or in a
// tier and as a clean copy above it, which is not counted.
func (s *Store) Len() int {
	n := 0
	for i, t := range s.tiers {
		if k, ok := t.(tiers.Keyspace); ok {
			n += k.Len()
		}
		if c, ok := t.(tiers.Cleaner); ok && i+1 < len(s.tiers) {
			n -= c.CleanLen()
		}
	}
	if s.dem != nil {
		n += s.dem.len() // evicted, on their way down, in no tier meanwhile
	}
	return max(n, 0)
}

// scanTierBits is how many high bits of a SCAN cursor name the tier.
const scanTierBits = 8

// Scan iterates the keyspace like Redis's SCAN: call with cursor 0 and again
// with each returned cursor until it returns 0. Every key present for the
// whole iteration is returned once (a clean copy is skipped: the tier below
// returns the key).
func (s *Store) Scan(cursor uint64, count int, fn func(key string, m tiers.Meta)) uint64 {
	ti := int(cursor >> (64 - scanTierBits))
	c := cursor & (1<<(64-scanTierBits) - 1)
	for ; ti < len(s.tiers); ti, c = ti+1, 0 {
		ks, ok := s.tiers[ti].(tiers.Keyspace)
		if !ok {
			continue
		}
		hasBelow := ti+1 < len(s.tiers)
		next := ks.Scan(c, count, func(key string, m tiers.Meta) {
			if !(m.Clean && hasBelow) {
				fn(key, m)
			}
		})
		if next != 0 {
			return uint64(ti)<<(64-scanTierBits) | next
		}
		if ti+1 < len(s.tiers) {
			return uint64(ti+1) << (64 - scanTierBits)
		}
	}
	return 0
}

// RandomKey returns a random live key.
func (s *Store) RandomKey() (string, bool) {
	for _, k := range s.keyspaces() {
		if key, ok := k.RandomKey(); ok {
			return key, true
		}
	}
	return "", false
}

// Flush drops every key in every tier and returns their memory before it
// returns. FLUSHALL ASYNC maps here too: dropping an item only hands its
// buffer back to the arena, which is cheap enough to do inline.
func (s *Store) Flush() {
	if s.dem != nil {
		s.dem.cancelAll()
	}
	if s.up != nil {
		s.flushUpstream()
	}
	for _, k := range s.keyspaces() {
		k.Flush()
	}
}

// Stats are the keyspace's counters.
type Stats struct {
	Hits, Misses uint64
	// CompanionDrops counts LMCache metadata keys dropped with their chunk.
	CompanionDrops uint64
	// Demotion counters: items written to the next tier, dropped for a
	// full queue, failed to write, cancelled by a newer write, served
	// while waiting, and values promoted.
	Demoted, DemoteDropped, DemoteFailed, DemoteCancelled, DemoteHits, Promoted uint64
	// DemoteCancelledLate counts cancellations that came after the old
	// value was written below (the cancelling write or delete follows it).
	DemoteCancelledLate uint64
	Tiers               []tiers.Stats
	// Upstream is nil without an upstream.
	Upstream *UpstreamStats
}

// Stats reports counters for INFO and metrics.
func (s *Store) Stats() Stats {
	st := Stats{Hits: s.hits.Load(), Misses: s.misses.Load(), CompanionDrops: s.companionDrops.Load(), Promoted: s.promoted.Load()}
	if d := s.dem; d != nil {
		st.Demoted, st.DemoteDropped, st.DemoteFailed = d.demoted.Load(), d.dropped.Load(), d.failed.Load()
		st.DemoteCancelled, st.DemoteHits = d.cancelled.Load(), d.hits.Load()
		st.DemoteCancelledLate = d.cancelledLate.Load()
	}
	for _, t := range s.tiers {
		st.Tiers = append(st.Tiers, t.Stats())
	}
	if s.up != nil {
		st.Upstream = s.upstreamStats()
	}
	return st
}

// Expires is the number of keys with a TTL, for INFO keyspace.
func (s *Store) Expires() int {
	n := 0
	for _, t := range s.tiers {
		if e, ok := t.(interface{ ExpiresCount() int }); ok {
			n += e.ExpiresCount()
		}
	}
	return n
}
