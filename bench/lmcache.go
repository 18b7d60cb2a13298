package bench

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// convPool remembers the last size conversations so that new ones can
// continue or branch from them, as chats with a shared system prompt and
// history do. A conversation is a chain of chunk hashes, each hash
// covering its predecessor (as LMCache's prefix hashes do), so a shared
// prefix means shared keys.
type convPool struct {
	mu     sync.Mutex
	convs  [][]uint64
	next   int
	size   int
	chunks int     // at most this many new chunks per conversation
	reuse  float64 // chance that a conversation starts from an earlier one
}

func newConvPool(size, chunks int, reuse float64) *convPool {
	return &convPool{size: size, chunks: chunks, reuse: reuse}
}

// conversation returns a new chain: a random prefix (at least one chunk)
// of a remembered conversation with probability reuse, then 1..chunks new
// chunks.
func (p *convPool) conversation(rng *rand.Rand) []uint64 {
	var chain []uint64
	p.mu.Lock()
	if len(p.convs) > 0 && rng.Float64() < p.reuse {
		old := p.convs[rng.IntN(len(p.convs))]
		chain = append(chain, old[:1+rng.IntN(len(old))]...)
	}
	p.mu.Unlock()
	var h uint64
	if len(chain) > 0 {
		h = chain[len(chain)-1]
	}
	for range 1 + rng.IntN(p.chunks) {
		h = mix(h*0x9e3779b97f4a7c15 ^ rng.Uint64()) // the next 256 tokens
		chain = append(chain, h)
	}
	return chain
}

func (p *convPool) add(chain []uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.convs) < p.size {
		p.convs = append(p.convs, chain)
		return
	}
	p.convs[p.next] = chain
	p.next = (p.next + 1) % p.size
}

// respKey is LMCache's resp:// key of a chunk.
func respKey(b []byte, model string, kvRank, group int, hash uint64) []byte {
	return fmt.Appendf(b[:0], "%s@%08x@%x@%x", model, kvRank, group, hash)
}

// redisKey is the <k> of LMCache's redis:// backend (CacheEngineKey:
// model@world_size@worker_id@chunk_hash@dtype), before its suffix.
func redisKey(b []byte, model string, hash uint64) []byte {
	return fmt.Appendf(b[:0], "%s@1@0@%x@bfloat16", model, hash)
}

// Rows of the LMCache workloads (see rowsOf).
const (
	rowRespExists = 0
	rowRespGet    = 1
	rowRespSet    = 2

	rowExistsMeta = 0
	rowGetMeta    = 1
	rowGetKV      = 2
	rowDelMeta    = 3
	rowSetKV      = 4
	rowSetMeta    = 5
)

// conversation serves one conversation as LMCache would: look the chunks
// up one by one until the first miss, retrieve the cached prefix, then
// store every chunk from the first one it could not retrieve.
func (w *worker) conversation() error {
	cfg := w.r.cfg
	chain := w.r.convs.conversation(w.rng)
	w.chunks.Conversations++
	w.chunks.Requested += int64(len(chain))
	chunk := int(cfg.valueSize)
	redis := cfg.workload == wlLMCacheRedis
	var meta, kv []byte // keys of the current chunk
	keys := func(h uint64) {
		if redis {
			meta = append(redisKey(meta, cfg.model, h), "metadata"...)
			kv = append(redisKey(kv, cfg.model, h), "kv_bytes"...)
		} else {
			kv = respKey(kv, cfg.model, 0, 0, h)
			meta = kv
		}
	}

	cached := len(chain)
	for i, h := range chain {
		keys(h)
		row := rowRespExists
		if redis {
			row = rowExistsMeta
		}
		found, err := w.exists(row, meta)
		if err != nil {
			return err
		}
		if !found {
			cached = i
			break
		}
	}

	store := cached
	for i, h := range chain[:cached] {
		keys(h)
		var found bool
		var err error
		if redis {
			// redis.py backend: metadata first (nil is a miss), then the
			// chunk; a chunk gone while its metadata stays is cleaned up.
			found, err = w.get(rowGetMeta, meta, metadataLen)
			if err == nil && found {
				found, err = w.get(rowGetKV, kv, chunk)
				if err == nil && !found {
					err = w.del(rowDelMeta, meta)
				}
			}
		} else {
			found, err = w.get(rowRespGet, kv, chunk)
		}
		if err != nil {
			return err
		}
		if !found {
			store = i
			break
		}
		w.chunks.Retrieved++
	}

	for _, h := range chain[store:] {
		keys(h)
		if redis {
			if err := w.set(rowSetKV, kv, chunk); err != nil {
				return err
			}
			if err := w.set(rowSetMeta, meta, metadataLen); err != nil {
				return err
			}
		} else if err := w.set(rowRespSet, kv, chunk); err != nil {
			return err
		}
		w.chunks.Stored++
	}
	w.r.convs.add(chain)
	return nil
}
