package main

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"kvresp/fdp"
	"kvresp/rawblock"
)

// fdpPoller reads the FDP state of the NVMe tier's namespace (statistics, RUH status, events)
// every fdp-stats-interval, for INFO's fdp section and the kvresp_fdp_* metrics: reading it
// takes several admin commands, too many for every scrape.
type fdpPoller struct {
	path string
	dev  *rawblock.FileDevice
	log  *slog.Logger
	last atomic.Pointer[fdp.Info]
	errs atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

// startFDPPoller polls the namespace of dev every interval until stop. It returns nil when
// the device is not an NVMe namespace or interval is 0 (polling off).
func startFDPPoller(dev *rawblock.FileDevice, interval time.Duration, log *slog.Logger) *fdpPoller {
	if dev == nil || !dev.Passthrough() || interval <= 0 {
		return nil
	}
	p := &fdpPoller{path: dev.Path(), dev: dev, log: log, stop: make(chan struct{})}
	p.poll()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.poll()
			}
		}
	}()
	return p
}

func (p *fdpPoller) poll() {
	info, err := fdp.Probe(p.path)
	if err != nil {
		if p.errs.Add(1) == 1 {
			p.log.Warn("fdp: cannot read the namespace's FDP state", "path", p.path, "error", err)
		}
		return
	}
	p.last.Store(info)
}

// Close stops polling. A nil poller is fine.
func (p *fdpPoller) Close() {
	if p == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
}

// info is INFO's fdp section.
func (p *fdpPoller) info() string {
	b, kv := infoWriter("")
	pids, placed := p.dev.Placement()
	kv("fdp_device", p.path)
	kv("fdp_placement", placed)
	if placed {
		kv("fdp_pid_meta", pids[rawblock.ClassMeta])
		kv("fdp_pid_hot", pids[rawblock.ClassHot])
		kv("fdp_pid_cold", pids[rawblock.ClassCold])
	}
	kv("fdp_reclaim_unit_bytes", p.dev.ReclaimUnitSize())
	kv("fdp_poll_errors", p.errs.Load())
	info := p.last.Load()
	if info == nil {
		return b.String()
	}
	kv("fdp_enabled", info.FDPEnabled)
	if s := info.Stats; s != nil {
		kv("fdp_host_bytes_written", s.HostBytesWritten.String())
		kv("fdp_media_bytes_written", s.MediaBytesWritten.String())
		kv("fdp_media_bytes_erased", s.MediaBytesErased.String())
		kv("fdp_write_amplification", fmt.Sprintf("%.4f", s.WriteAmplification))
	}
	for _, r := range info.RUHs {
		kv(fmt.Sprintf("fdp_pid%d", r.PID), fmt.Sprintf("ruhid=%d,ruamw_blocks=%d", r.RUHID, r.RUAMW))
	}
	kv("fdp_events", len(info.Events))
	return b.String()
}

// fdpCollector exports what the poller read last.
type fdpCollector struct {
	p                       *fdpPoller
	host, media, erased, wa *prometheus.Desc
	ruamw, pid, pollErrs    *prometheus.Desc
}

func newFDPCollector(p *fdpPoller) *fdpCollector {
	return &fdpCollector{
		p:        p,
		host:     prometheus.NewDesc("kvresp_fdp_host_written_bytes", "Host bytes written to the NVMe tier's endurance group (FDP statistics log).", nil, nil),
		media:    prometheus.NewDesc("kvresp_fdp_media_written_bytes", "Media bytes written in the NVMe tier's endurance group (FDP statistics log).", nil, nil),
		erased:   prometheus.NewDesc("kvresp_fdp_media_erased_bytes", "Media bytes erased in the NVMe tier's endurance group (FDP statistics log).", nil, nil),
		wa:       prometheus.NewDesc("kvresp_fdp_write_amplification_ratio", "Media over host bytes written (FDP statistics log).", nil, nil),
		ruamw:    prometheus.NewDesc("kvresp_fdp_ru_available_blocks", "Blocks the reclaim unit behind each placement ID can still take (RUH status).", []string{"pid"}, nil),
		pid:      prometheus.NewDesc("kvresp_fdp_class_pid", "Placement ID each class of the NVMe tier writes with.", []string{"class"}, nil),
		pollErrs: prometheus.NewDesc("kvresp_fdp_poll_errors_total", "Failed reads of the FDP state.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *fdpCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.host, c.media, c.erased, c.wa, c.ruamw, c.pid, c.pollErrs} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *fdpCollector) Collect(ch chan<- prometheus.Metric) {
	g := func(d *prometheus.Desc, t prometheus.ValueType, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, t, v, l...)
	}
	g(c.pollErrs, prometheus.CounterValue, float64(c.p.errs.Load()))
	if pids, ok := c.p.dev.Placement(); ok {
		for _, cl := range []rawblock.Class{rawblock.ClassMeta, rawblock.ClassHot, rawblock.ClassCold} {
			g(c.pid, prometheus.GaugeValue, float64(pids[cl]), cl.String())
		}
	}
	info := c.p.last.Load()
	if info == nil {
		return
	}
	if s := info.Stats; s != nil {
		g(c.host, prometheus.CounterValue, s.HostBytesWritten.Float64())
		g(c.media, prometheus.CounterValue, s.MediaBytesWritten.Float64())
		g(c.erased, prometheus.CounterValue, s.MediaBytesErased.Float64())
		g(c.wa, prometheus.GaugeValue, s.WriteAmplification)
	}
	for _, r := range info.RUHs {
		g(c.ruamw, prometheus.GaugeValue, float64(r.RUAMW), fmt.Sprint(r.PID))
	}
}
