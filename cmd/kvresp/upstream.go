package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"kvresp/slab"
	"kvresp/store"
	"kvresp/tiers"
	"kvresp/tiers/redisup"
	"kvresp/tiers/s3up"
)

// upstreamSchemes are the URL schemes upstream accepts.
var upstreamSchemes = []string{"redis", "rediss", "redis-sentinel", "redis-cluster", "s3"}

// checkUpstreamURL checks the scheme of upstream; the backend parses the rest
// when the server starts.
func checkUpstreamURL(s string) error {
	if s == "" {
		return nil
	}
	scheme, _, ok := strings.Cut(s, "://")
	for _, sc := range upstreamSchemes {
		if ok && strings.EqualFold(scheme, sc) {
			return nil
		}
	}
	return fmt.Errorf("upstream %q: want a URL starting with %s://", redactURL(s), strings.Join(upstreamSchemes, "://, "))
}

// redactURL hides the password of a URL for logs and INFO.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	auth, host, ok := strings.Cut(rest, "@")
	if !ok || strings.ContainsAny(auth, "/?") {
		return s
	}
	if user, _, hasPass := strings.Cut(auth, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return s
}

// writesBack says the last local tier's evictions go upstream: it must then
// read what it evicts.
func writesBack(cfg *Config) bool {
	m, err := store.ParseUpstreamModes(cfg.UpstreamMode)
	return cfg.Upstream != "" && err == nil && m.WriteBack
}

// openUpstream opens the backend upstream names and wraps it in a Proxy
// whose values are read into arena buffers. It does not connect: a node
// starts while its upstream is down, and the breaker handles the outage.
func openUpstream(cfg *Config, arena *slab.Arena, log *slog.Logger) (*tiers.Proxy, error) {
	var (
		u   tiers.Upstream
		err error
	)
	if strings.HasPrefix(strings.ToLower(cfg.Upstream), "s3://") {
		u, err = s3up.Open(cfg.Upstream, s3up.Options{
			Endpoint: cfg.UpstreamS3Endpoint, Region: cfg.UpstreamS3Region,
			AccessKey: cfg.UpstreamS3AccessKey, SecretKey: cfg.UpstreamS3SecretKey,
			PathStyle: cfg.UpstreamS3PathStyle, Logger: log,
		})
	} else {
		redisup.SetLogger(log)
		u, err = redisup.Open(cfg.Upstream, redisup.Options{
			PoolSize:    cfg.UpstreamPoolSize,
			DialTimeout: cfg.UpstreamTimeout, ReadTimeout: cfg.UpstreamTimeout, WriteTimeout: cfg.UpstreamTimeout,
			Logger: log,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", redactURL(cfg.Upstream), err)
	}
	log.Info("upstream", "url", redactURL(cfg.Upstream), "kind", u.Name(), "modes", cfg.UpstreamMode, "timeout", cfg.UpstreamTimeout)
	return tiers.NewProxy(u, tiers.ProxyOptions{Timeout: cfg.UpstreamTimeout, Alloc: arena.AllocValue, Logger: log}), nil
}

// upstreamInfo is INFO's upstream section.
func upstreamInfo(cfg *Config, p *tiers.Proxy, us *store.UpstreamStats) string {
	b, kv := infoWriter("upstream_")
	ps, ts := p.ProxyStats(), p.Stats()
	kv("url", redactURL(cfg.Upstream))
	kv("kind", ps.Kind)
	kv("modes", us.Modes)
	kv("timeout_ms", cfg.UpstreamTimeout.Milliseconds())
	kv("breaker", ps.Breaker)
	kv("breaker_opens", ps.Opens)
	kv("calls", ps.Calls)
	kv("hits", ts.Hits)
	kv("misses", ts.Misses)
	kv("errors", ps.Errors)
	kv("timeouts", ps.Timeouts)
	kv("refused", ps.Refused)
	kv("retries", ps.Retries)
	kv("skipped", ps.Skipped)
	avg := 0.0
	if ps.Calls > 0 {
		avg = ps.LatencySum / float64(ps.Calls) * 1000
	}
	kv("latency_avg_ms", fmt.Sprintf("%.3f", avg))
	kv("admitted", us.Admitted)
	kv("joined", us.Joined)
	kv("stale_keys", us.Stale)
	kv("stale_overflow", boolInt(us.StaleFull))
	kv("write_through_failed", us.WriteFailed)
	kv("write_back_skipped_held", us.HeldSkips)
	kv("queue_depth", us.Queued)
	kv("queue_capacity", us.QueueCap)
	kv("queue_written", us.Written)
	kv("queue_dropped", us.Dropped)
	kv("queue_failed", us.Failed)
	kv("queue_cancelled", us.Cancelled)
	return b.String()
}

// upstreamCollector exports the upstream's counters at scrape time.
type upstreamCollector struct {
	p  *tiers.Proxy
	st *store.Store

	calls, errs, skipped, hits, misses, opens, breaker, latency *prometheus.Desc
	queue, written, dropped, failed, admitted, stale            *prometheus.Desc
}

func newUpstreamCollector(p *tiers.Proxy, st *store.Store) *upstreamCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("kvresp_upstream_"+name, help, labels, nil)
	}
	return &upstreamCollector{p: p, st: st,
		calls:    d("calls_total", "Calls made to the upstream (a retried call counts once)."),
		errs:     d("errors_total", "Upstream calls that failed, by kind: timeout, refused (says nothing of the upstream's health), other.", "kind"),
		skipped:  d("skipped_total", "Calls not made because the circuit breaker was open."),
		hits:     d("hits_total", "Reads the upstream answered with a value."),
		misses:   d("misses_total", "Reads the upstream did not have."),
		opens:    d("breaker_opens_total", "Times the circuit breaker opened."),
		breaker:  d("breaker_state", "1 for the breaker's current state.", "state"),
		latency:  d("latency_seconds", "Latency of upstream calls, retries included."),
		queue:    d("queue_depth", "Writes waiting for the upstream (write-through-async, write-back)."),
		written:  d("queue_written_total", "Queued writes the upstream stored."),
		dropped:  d("queue_dropped_total", "Queued writes dropped because the queue stayed full."),
		failed:   d("queue_failed_total", "Queued writes the upstream failed."),
		admitted: d("admitted_total", "Values read through from the upstream into DRAM."),
		stale:    d("stale_keys", "Keys whose upstream copy waits to be deleted (a DEL or write the upstream did not take); the upstream is not read for them."),
	}
}

// Describe implements prometheus.Collector.
func (c *upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.calls, c.errs, c.skipped, c.hits, c.misses, c.opens, c.breaker, c.latency,
		c.queue, c.written, c.dropped, c.failed, c.admitted, c.stale} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	ps, ts := c.p.ProxyStats(), c.p.Stats()
	counter(c.calls, ps.Calls)
	counter(c.errs, ps.Timeouts, "timeout")
	counter(c.errs, ps.Refused, "refused")
	counter(c.errs, ps.Other, "other")
	counter(c.skipped, ps.Skipped)
	counter(c.hits, ts.Hits)
	counter(c.misses, ts.Misses)
	counter(c.opens, ps.Opens)
	for _, s := range []string{tiers.BreakerClosed, tiers.BreakerOpen, tiers.BreakerHalfOpen} {
		v := 0.0
		if s == ps.Breaker {
			v = 1
		}
		gauge(c.breaker, v, s)
	}
	buckets := make(map[float64]uint64, len(tiers.LatencyBounds))
	for i, b := range tiers.LatencyBounds {
		buckets[b] = ps.LatencyCounts[i]
	}
	ch <- prometheus.MustNewConstHistogram(c.latency, ps.LatencyCounts[len(ps.LatencyCounts)-1], ps.LatencySum, buckets)
	if us := c.st.Stats().Upstream; us != nil {
		gauge(c.queue, float64(us.Queued))
		counter(c.written, us.Written)
		counter(c.dropped, us.Dropped)
		counter(c.failed, us.Failed)
		counter(c.admitted, us.Admitted)
		gauge(c.stale, float64(us.Stale))
	}
}
