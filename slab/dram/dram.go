// Package dram is the DRAM tier: an index of keys to slab buffers with an LRU
// list per buffer size class, TTLs with lazy and active expiry, and eviction
// driven by the slab arena's memory limit. When the arena cannot satisfy an
// allocation it asks this tier to evict: the least recently used items of the
// same size class go first (so the freed buffer is reused exactly), then the
// oldest items of any class (so memory moves to the class that needs it). Each
// evicted item is offered to OnEvict, which store uses to demote it to the
// next tier.
package dram

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"kvresp/slab"
	"kvresp/tiers"
)

// entryOverhead is the DRAM charged per item on top of its key and value: the
// entry struct, its map slot and bucket slot, rounded up. It keeps the index
// itself under maxmemory.
const entryOverhead = 160

// scanBuckets is the number of SCAN buckets (a power of two). A SCAN cursor is
// a bucket number; a bucket is returned whole, so an item present for a whole
// iteration is returned exactly once whatever happens meanwhile.
const scanBuckets = 1 << 14

// Options configure the tier.
type Options struct {
	// Arena holds the values; the tier registers itself as its reclaimer.
	Arena *slab.Arena
	// OnEvict, when set, is told of every item evicted for room.
	OnEvict tiers.EvictFunc
	// HZ is how many times a second active expiry runs (Redis's hz); 0 = 10.
	HZ int
	// Now returns the current Unix time in milliseconds; nil = wall clock.
	Now func() int64
}

// Validate reports every problem with the options.
func (o Options) Validate() error {
	var errs []error
	if o.Arena == nil {
		errs = append(errs, errors.New("dram: an arena is required"))
	}
	if o.HZ < 0 || o.HZ > 500 {
		errs = append(errs, errors.New("dram: hz must be between 1 and 500"))
	}
	return errors.Join(errs...)
}

type entry struct {
	key        string
	buf        *slab.Buf
	expireAt   int64
	clean      bool   // an identical copy lives in the next tier
	prev, next *entry // LRU list of the class, most recent at head
	cls        *class
	bucket     uint32
	pos        int32 // index in buckets[bucket]
	lastUse    int64 // monotonic tick of the last access
}

// class is the LRU list of items whose buffers have one capacity.
type class struct {
	size       int
	head, tail *entry
	n          int
}

func (c *class) pushFront(e *entry) {
	e.prev, e.next = nil, c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
	c.n++
}

func (c *class) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
	c.n--
}

// Tier is the DRAM tier. It implements tiers.Tier and tiers.Keyspace.
type Tier struct {
	arena   *slab.Arena
	onEvict tiers.EvictFunc
	now     func() int64

	mu       sync.Mutex
	items    map[string]*entry
	volatile map[*entry]struct{}
	classes  map[int]*class
	buckets  [][]*entry
	bytes    int64
	cleanN   int // items marked clean
	tick     int64

	hits, misses, puts, deletes, evictions, expired atomic.Uint64

	hz   atomic.Int64 // active expiry cycles a second
	stop chan struct{}
	done chan struct{}
}

var (
	_ tiers.Tier     = (*Tier)(nil)
	_ tiers.Keyspace = (*Tier)(nil)
	_ tiers.Cleaner  = (*Tier)(nil)
)

// New makes the tier and starts active expiry; Close stops it.
func New(o Options) (*Tier, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.HZ == 0 {
		o.HZ = 10
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().UnixMilli() }
	}
	t := &Tier{
		arena:    o.Arena,
		onEvict:  o.OnEvict,
		now:      o.Now,
		items:    make(map[string]*entry),
		volatile: make(map[*entry]struct{}),
		classes:  make(map[int]*class),
		buckets:  make([][]*entry, scanBuckets),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	t.hz.Store(int64(o.HZ))
	o.Arena.SetReclaimer(t.reclaim)
	go t.expireLoop()
	return t, nil
}

// SetHZ changes how many times a second active expiry runs (CONFIG SET hz).
func (t *Tier) SetHZ(hz int) {
	t.hz.Store(int64(min(max(hz, 1), 500)))
}

// SetEvict sets the eviction callback (store wires it after construction).
func (t *Tier) SetEvict(fn tiers.EvictFunc) {
	t.mu.Lock()
	t.onEvict = fn
	t.mu.Unlock()
}

// Close stops active expiry and releases every item.
func (t *Tier) Close() error {
	select {
	case <-t.stop:
		return nil
	default:
	}
	close(t.stop)
	<-t.done
	t.Flush()
	return nil
}

// Name implements tiers.Tier.
func (t *Tier) Name() string { return "dram" }

func charge(key string) int64 { return int64(len(key)) + entryOverhead }

func (t *Tier) expiredLocked(e *entry) bool {
	return e.expireAt != 0 && e.expireAt <= t.now()
}

// Get implements tiers.Tier. An expired item is removed and reported missing.
func (t *Tier) Get(key string) (tiers.Item, bool, error) {
	t.mu.Lock()
	e, ok := t.items[key]
	if !ok {
		t.mu.Unlock()
		t.misses.Add(1)
		return tiers.Item{}, false, nil
	}
	if t.expiredLocked(e) {
		t.removeLocked(e)
		t.mu.Unlock()
		t.expired.Add(1)
		t.misses.Add(1)
		t.drop(e)
		return tiers.Item{}, false, nil
	}
	t.touchLocked(e)
	e.buf.Retain()
	it := tiers.Item{Buf: e.buf, ExpireAt: e.expireAt, Clean: e.clean}
	t.mu.Unlock()
	t.hits.Add(1)
	return it, true, nil
}

// Stat implements tiers.Tier.
func (t *Tier) Stat(key string) (tiers.Meta, bool, error) {
	t.mu.Lock()
	e, ok := t.items[key]
	if !ok {
		t.mu.Unlock()
		return tiers.Meta{}, false, nil
	}
	if t.expiredLocked(e) {
		t.removeLocked(e)
		t.mu.Unlock()
		t.expired.Add(1)
		t.drop(e)
		return tiers.Meta{}, false, nil
	}
	m := tiers.Meta{Size: int64(e.buf.Len()), ExpireAt: e.expireAt, Clean: e.clean}
	t.mu.Unlock()
	return m, true, nil
}

// Touch marks the item as recently used, as a read would.
func (t *Tier) Touch(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.items[key]
	if ok && !t.expiredLocked(e) {
		t.touchLocked(e)
		return true
	}
	return false
}

func (t *Tier) touchLocked(e *entry) {
	t.tick++
	e.lastUse = t.tick
	if e.cls.head != e {
		e.cls.remove(e)
		e.cls.pushFront(e)
	}
}

// Put implements tiers.Tier. The tier retains it.Buf. Overwriting a key
// swaps the value in place: the index entry and its charge stay.
func (t *Tier) Put(key string, it tiers.Item) error {
	if it.Buf == nil {
		return errors.New("dram: put of a nil buffer")
	}
	// Reserve a new entry's index charge before locking, because reserving
	// may evict, which takes t.mu; an overwrite gives it back.
	if err := t.arena.Reserve(charge(key)); err != nil {
		return err
	}
	it.Buf.Retain()
	t.mu.Lock()
	if old := t.items[key]; old != nil {
		prev := t.swapLocked(old, it)
		t.mu.Unlock()
		t.arena.Unreserve(charge(key))
		prev.Release()
	} else {
		t.insertLocked(&entry{key: key, buf: it.Buf, expireAt: it.ExpireAt, clean: it.Clean})
		t.mu.Unlock()
	}
	t.puts.Add(1)
	return nil
}

// swapLocked puts it in e's place and returns e's previous buffer.
func (t *Tier) swapLocked(e *entry, it tiers.Item) *slab.Buf {
	old := e.buf
	t.bytes += int64(it.Buf.Len()) - int64(old.Len())
	if it.Buf.ClassSize() != old.ClassSize() {
		e.cls.remove(e)
		if e.cls.n == 0 {
			delete(t.classes, e.cls.size)
		}
		e.buf = it.Buf
		c := t.classFor(it.Buf.ClassSize())
		e.cls = c
		c.pushFront(e)
	} else {
		e.buf = it.Buf
	}
	e.expireAt = it.ExpireAt
	t.setCleanLocked(e, it.Clean)
	if e.expireAt != 0 {
		t.volatile[e] = struct{}{}
	} else {
		delete(t.volatile, e)
	}
	t.touchLocked(e)
	return old
}

func (t *Tier) classFor(size int) *class {
	c := t.classes[size]
	if c == nil {
		c = &class{size: size}
		t.classes[size] = c
	}
	return c
}

func (t *Tier) insertLocked(e *entry) {
	t.items[e.key] = e
	c := t.classFor(e.buf.ClassSize())
	e.cls = c
	t.tick++
	e.lastUse = t.tick
	c.pushFront(e)
	b := uint32(xxhash.Sum64String(e.key) >> (64 - 14))
	e.bucket = b
	e.pos = int32(len(t.buckets[b]))
	t.buckets[b] = append(t.buckets[b], e)
	if e.expireAt != 0 {
		t.volatile[e] = struct{}{}
	}
	if e.clean {
		t.cleanN++
	}
	t.bytes += int64(e.buf.Len())
}

func (t *Tier) setCleanLocked(e *entry, clean bool) {
	if e.clean != clean {
		e.clean = clean
		if clean {
			t.cleanN++
		} else {
			t.cleanN--
		}
	}
}

// CleanLen implements tiers.Cleaner.
func (t *Tier) CleanLen() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cleanN
}

// SetClean implements tiers.Cleaner.
func (t *Tier) SetClean(key string, clean bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.items[key]
	if e == nil {
		return false
	}
	t.setCleanLocked(e, clean)
	return true
}

// removeLocked unlinks e from every structure; the caller calls drop(e)
// after unlocking.
func (t *Tier) removeLocked(e *entry) {
	delete(t.items, e.key)
	delete(t.volatile, e)
	e.cls.remove(e)
	if e.cls.n == 0 {
		delete(t.classes, e.cls.size)
	}
	bk := t.buckets[e.bucket]
	last := len(bk) - 1
	bk[e.pos] = bk[last]
	bk[e.pos].pos = e.pos
	bk[last] = nil
	t.buckets[e.bucket] = bk[:last]
	t.bytes -= int64(e.buf.Len())
	if e.clean {
		t.cleanN--
	}
}

// drop releases what a removed entry held. It is called without t.mu.
func (t *Tier) drop(e *entry) {
	e.buf.Release()
	t.arena.Unreserve(charge(e.key))
}

// SetExpire implements tiers.Tier.
func (t *Tier) SetExpire(key string, expireAt int64) (bool, error) {
	t.mu.Lock()
	e, ok := t.items[key]
	if !ok {
		t.mu.Unlock()
		return false, nil
	}
	if t.expiredLocked(e) {
		t.removeLocked(e)
		t.mu.Unlock()
		t.expired.Add(1)
		t.drop(e)
		return false, nil
	}
	e.expireAt = expireAt
	if expireAt != 0 {
		t.volatile[e] = struct{}{}
	} else {
		delete(t.volatile, e)
	}
	t.mu.Unlock()
	return true, nil
}

// Delete implements tiers.Tier.
func (t *Tier) Delete(key string) (bool, error) {
	t.mu.Lock()
	e, ok := t.items[key]
	if !ok {
		t.mu.Unlock()
		return false, nil
	}
	expired := t.expiredLocked(e)
	t.removeLocked(e)
	t.mu.Unlock()
	t.drop(e)
	if expired {
		t.expired.Add(1)
		return false, nil
	}
	t.deletes.Add(1)
	return true, nil
}

// Len implements tiers.Keyspace.
func (t *Tier) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.items)
}

// Scan implements tiers.Keyspace. Expired items are skipped.
func (t *Tier) Scan(cursor uint64, count int, fn func(key string, m tiers.Meta)) uint64 {
	if count <= 0 {
		count = 10
	}
	type kv struct {
		key string
		m   tiers.Meta
	}
	var out []kv
	b := cursor
	now := t.now()
	t.mu.Lock()
	for b < scanBuckets && len(out) < count {
		for _, e := range t.buckets[b] {
			if e.expireAt != 0 && e.expireAt <= now {
				continue
			}
			out = append(out, kv{e.key, tiers.Meta{Size: int64(e.buf.Len()), ExpireAt: e.expireAt, Clean: e.clean}})
		}
		b++
	}
	t.mu.Unlock()
	for _, x := range out {
		fn(x.key, x.m)
	}
	if b >= scanBuckets {
		return 0
	}
	return b
}

// RandomKey implements tiers.Keyspace.
func (t *Tier) RandomKey() (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.items) == 0 {
		return "", false
	}
	now := t.now()
	start := rand.IntN(scanBuckets)
	for i := 0; i < scanBuckets; i++ {
		bk := t.buckets[(start+i)%scanBuckets]
		if len(bk) == 0 {
			continue
		}
		j := rand.IntN(len(bk))
		for k := range bk {
			e := bk[(j+k)%len(bk)]
			if e.expireAt == 0 || e.expireAt > now {
				return e.key, true
			}
		}
	}
	return "", false
}

// Flush implements tiers.Keyspace: every item is dropped and its memory
// returned before Flush returns (buffers pinned by readers return when they
// are released).
func (t *Tier) Flush() {
	t.mu.Lock()
	items := t.items
	t.items = make(map[string]*entry)
	t.volatile = make(map[*entry]struct{})
	t.classes = make(map[int]*class)
	t.buckets = make([][]*entry, scanBuckets)
	t.bytes = 0
	t.cleanN = 0
	t.mu.Unlock()
	for _, e := range items {
		t.drop(e)
	}
}

// Stats implements tiers.Tier.
func (t *Tier) Stats() tiers.Stats {
	t.mu.Lock()
	n, b := int64(len(t.items)), t.bytes
	t.mu.Unlock()
	return tiers.Stats{
		Name:      t.Name(),
		Items:     n,
		Bytes:     b,
		Capacity:  t.arena.Limit(),
		Hits:      t.hits.Load(),
		Misses:    t.misses.Load(),
		Puts:      t.puts.Load(),
		Deletes:   t.deletes.Load(),
		Evictions: t.evictions.Load(),
		Expired:   t.expired.Load(),
	}
}

// ExpiresCount is the number of items with a TTL (INFO keyspace's expires).
func (t *Tier) ExpiresCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.volatile)
}

// reclaim is the arena's Reclaimer: evict until need bytes are released.
// The eviction callback is told while the item is still indexed under t.mu,
// so a write or delete of the key either comes before (and the victim is the
// newer value, or gone) or sees the demotion the callback registered.
func (t *Tier) reclaim(need int64, size int) int64 {
	var freed int64
	for freed < need {
		t.mu.Lock()
		e := t.victimLocked(size)
		if e == nil {
			t.mu.Unlock()
			break
		}
		var after func()
		if t.onEvict != nil && (e.expireAt == 0 || e.expireAt > t.now()) {
			after = t.onEvict(e.key, tiers.Item{Buf: e.buf, ExpireAt: e.expireAt, Clean: e.clean})
		}
		t.removeLocked(e)
		t.mu.Unlock()
		t.evictions.Add(1)
		if after != nil {
			after()
		}
		freed += int64(e.buf.ClassSize()) + charge(e.key)
		t.drop(e)
	}
	return freed
}

// victimLocked picks the item to evict: an expired item if a few samples
// find one, else the least recently used item overall; but when the least
// recently used item of the class being allocated is at least half as old,
// it goes instead, because its buffer is then reused as it is (no unmapping
// and faulting in a new one). Age is measured in accesses, not time.
func (t *Tier) victimLocked(size int) *entry {
	now := t.now()
	n := 0
	for e := range t.volatile {
		if e.expireAt <= now {
			return e
		}
		if n++; n >= 8 {
			break
		}
	}
	var oldest, same *entry
	for sz, c := range t.classes {
		if c.tail == nil {
			continue
		}
		if sz >= size && sz-size < 4096 {
			same = c.tail
		}
		if oldest == nil || c.tail.lastUse < oldest.lastUse {
			oldest = c.tail
		}
	}
	if same != nil && 2*(t.tick-same.lastUse) >= t.tick-oldest.lastUse {
		return same
	}
	return oldest
}

// expireLoop is active expiry, Redis's way: sample volatile items, drop the
// expired ones, and go again at once while a quarter or more were expired.
func (t *Tier) expireLoop() {
	defer close(t.done)
	hz := t.hz.Load()
	every := time.Second / time.Duration(hz)
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tk.C:
		}
		if h := t.hz.Load(); h != hz {
			hz, every = h, time.Second/time.Duration(h)
			tk.Reset(every)
		}
		deadline := time.Now().Add(every / 4)
		for t.expireCycle(20) && time.Now().Before(deadline) {
		}
	}
}

// expireCycle samples up to n volatile items and drops the expired ones. It
// reports whether a quarter or more of the sample was expired.
func (t *Tier) expireCycle(n int) bool {
	now := t.now()
	var dead []*entry
	t.mu.Lock()
	seen := 0
	for e := range t.volatile {
		if seen++; seen > n {
			break
		}
		if e.expireAt <= now {
			dead = append(dead, e)
		}
	}
	for _, e := range dead {
		t.removeLocked(e)
	}
	// Counted with the removal, so that Len and Stats agree at any time.
	t.expired.Add(uint64(len(dead)))
	t.mu.Unlock()
	for _, e := range dead {
		t.drop(e)
	}
	return seen > 0 && len(dead)*4 >= min(seen, n)
}

// Check verifies the tier's invariants: every structure agrees on the set of
// items, LRU lists are well formed and byte counts add up. For tests.
func (t *Tier) Check() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	var bytes int64
	inLists := 0
	for sz, c := range t.classes {
		n := 0
		var prev *entry
		for e := c.head; e != nil; e = e.next {
			if e.prev != prev {
				errs = append(errs, errors.New("dram: broken LRU back link"))
				break
			}
			if e.cls != c || e.buf.ClassSize() != sz {
				errs = append(errs, errors.New("dram: item in the wrong class"))
			}
			if t.items[e.key] != e {
				errs = append(errs, errors.New("dram: listed item missing from the index"))
			}
			if e.buf.Refs() < 1 {
				errs = append(errs, errors.New("dram: indexed buffer has no reference"))
			}
			prev = e
			n++
		}
		if n != c.n || c.tail != prev {
			errs = append(errs, errors.New("dram: class count or tail wrong"))
		}
		inLists += n
	}
	inBuckets := 0
	for b, bk := range t.buckets {
		for i, e := range bk {
			if int(e.pos) != i || int(e.bucket) != b || t.items[e.key] != e {
				errs = append(errs, errors.New("dram: scan bucket out of step"))
			}
			inBuckets++
		}
	}
	for _, e := range t.items {
		bytes += int64(e.buf.Len())
	}
	for e := range t.volatile {
		if t.items[e.key] != e || e.expireAt == 0 {
			errs = append(errs, errors.New("dram: volatile set out of step"))
		}
	}
	if inLists != len(t.items) || inBuckets != len(t.items) {
		errs = append(errs, errors.New("dram: index, lists and buckets disagree on the item count"))
	}
	if bytes != t.bytes {
		errs = append(errs, errors.New("dram: byte count wrong"))
	}
	clean := 0
	for _, e := range t.items {
		if e.clean {
			clean++
		}
	}
	if clean != t.cleanN {
		errs = append(errs, errors.New("dram: clean count wrong"))
	}
	return errors.Join(errs...)
}
