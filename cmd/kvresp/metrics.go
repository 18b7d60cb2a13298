package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"kvresp/slab"
	"kvresp/store"
)

// storeCollector exports the keyspace's, the tiers' and the arena's counters
// at scrape time, reading their Stats (no work on the request path).
type storeCollector struct {
	arena *slab.Arena
	st    *store.Store

	memory, limit                        *prometheus.Desc
	hits, misses                         *prometheus.Desc
	items, bytes, capacity               *prometheus.Desc
	tierHits, tierMisses, evictions      *prometheus.Desc
	expired, tierErrors, reclaims, waits *prometheus.Desc
}

func newStoreCollector(arena *slab.Arena, st *store.Store) *storeCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &storeCollector{
		arena:      arena,
		st:         st,
		memory:     d("kvresp_slab_memory_bytes", "DRAM held by kvresp's arena, by purpose (in_use: buffers referenced by items, readers or I/O; cached: free buffers kept for reuse; reserved: index and other accounting).", "purpose"),
		limit:      d("kvresp_slab_limit_bytes", "The arena's limit (maxmemory)."),
		reclaims:   d("kvresp_slab_reclaims_total", "Times the arena asked the DRAM tier to evict."),
		waits:      d("kvresp_slab_waits_total", "Allocations that waited for pinned memory to be released."),
		hits:       d("kvresp_store_hits_total", "Reads that found the key in some tier."),
		misses:     d("kvresp_store_misses_total", "Reads that found the key in no tier."),
		items:      d("kvresp_tier_items", "Items held, by tier.", "tier"),
		bytes:      d("kvresp_tier_bytes", "Value bytes held, by tier.", "tier"),
		capacity:   d("kvresp_tier_capacity_bytes", "Bytes the tier may hold, by tier.", "tier"),
		tierHits:   d("kvresp_tier_hits_total", "Reads the tier answered, by tier.", "tier"),
		tierMisses: d("kvresp_tier_misses_total", "Reads the tier did not have, by tier.", "tier"),
		evictions:  d("kvresp_tier_evictions_total", "Items evicted for room, by tier.", "tier"),
		expired:    d("kvresp_tier_expired_total", "Items dropped because their TTL passed, by tier.", "tier"),
		tierErrors: d("kvresp_tier_errors_total", "I/O or checksum errors, by tier.", "tier"),
	}
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.memory, c.limit, c.reclaims, c.waits, c.hits, c.misses, c.items, c.bytes, c.capacity, c.tierHits, c.tierMisses, c.evictions, c.expired, c.tierErrors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	as := c.arena.Stats()
	gauge(c.memory, float64(as.InUse), "in_use")
	gauge(c.memory, float64(as.Cached), "cached")
	gauge(c.memory, float64(as.Reserved), "reserved")
	gauge(c.limit, float64(as.Limit))
	counter(c.reclaims, float64(as.Reclaims))
	counter(c.waits, float64(as.Waits))
	ss := c.st.Stats()
	counter(c.hits, float64(ss.Hits))
	counter(c.misses, float64(ss.Misses))
	for _, t := range ss.Tiers {
		gauge(c.items, float64(t.Items), t.Name)
		gauge(c.bytes, float64(t.Bytes), t.Name)
		gauge(c.capacity, float64(t.Capacity), t.Name)
		counter(c.tierHits, float64(t.Hits), t.Name)
		counter(c.tierMisses, float64(t.Misses), t.Name)
		counter(c.evictions, float64(t.Evictions), t.Name)
		counter(c.expired, float64(t.Expired), t.Name)
		counter(c.tierErrors, float64(t.Errors), t.Name)
	}
}
