package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"kvresp/dax"
	"kvresp/rawblock"
	"kvresp/slab"
)

// daxTier is the DAX tier: the rawblock log engine over a dax.Device, named
// "dax" so that INFO's tiers section and the kvresp_tier_* metrics tell it
// from the NVMe tier.
type daxTier struct {
	*rawblock.Engine
	dev *dax.Device
}

// daxRegionSize is the DAX log's region size when it is formatted:
// dax-region-size, else 256 MiB, or for a device smaller than 16 of those a
// sixteenth of it in whole MiB (persistent memory is often a few GiB, and
// the log needs several regions to reclaim one while writing others).
func daxRegionSize(set, devSize int64) int64 {
	if set != 0 {
		return set
	}
	const dataStart = 1 << 20 // rawblock's superblock area
	return min(256<<20, max(1<<20, (devSize-dataStart)/16&^(1<<20-1)))
}

// openDax opens the DAX tier: its device at dax-path and the log on it.
// Where each write is made durable by cache-line flush (fsdax, devdax) a Put
// returns once durable, which costs one more store fence; a plain file is
// msynced by the engine's periodic flush instead.
func openDax(cfg *Config, arena *slab.Arena, log *slog.Logger) (*daxTier, error) {
	path := cfg.DaxPath
	// As rawblock-size: dax-size sizes a file the tier creates; whatever
	// exists is opened at its own size.
	size := cfg.DaxSize
	if _, err := os.Stat(path); err == nil {
		size = 0
	}
	log = log.With("tier", "dax")
	dev, err := dax.Open(dax.Options{Path: path, Size: size, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("dax-path %s: %w", path, err)
	}
	ds := dev.Stats()
	eng, err := rawblock.Open(rawblock.Options{
		Device:     dev,
		Arena:      arena,
		RegionSize: daxRegionSize(cfg.DaxRegionSize, dev.Size()),
		Format:     cfg.DaxFormat,
		Sync:       ds.Mode != dax.ModeFile,
		// The last local tier: store needs only the keys of what it drops,
		// unless they are written back upstream.
		EvictKeysOnly: !writesBack(cfg),
		Logger:        log,
		Name:          "dax",
	})
	if err != nil {
		_ = dev.Close()
		if errors.Is(err, rawblock.ErrForeign) || errors.Is(err, rawblock.ErrNewerFormat) || errors.Is(err, rawblock.ErrOldFormat) {
			return nil, fmt.Errorf("dax-path %s: %w; kvresp leaves it as it is: set dax-format yes to erase it and use it for the tier", path, err)
		}
		return nil, fmt.Errorf("dax-path %s: %w", path, err)
	}
	es := eng.EngineStats()
	log.Info("dax tier open", "path", path, "mode", ds.Mode.String(), "map_sync", ds.MapSync, "flush", ds.Flusher,
		"regions", es.Regions, "region_size", es.RegionSize, "recovered", es.Recovered)
	return &daxTier{Engine: eng, dev: dev}, nil
}

// info is INFO's dax section: the engine's counters as the NVMe tier's,
// then the device's.
func (t *daxTier) info() string {
	b, kv := infoWriter("")
	logInfo(kv, "dax", t.EngineStats())
	ds := t.dev.Stats()
	kv("dax_device_mode", ds.Mode)
	kv("dax_device_map_sync", boolInt(ds.MapSync))
	kv("dax_device_flush", ds.Flusher)
	kv("dax_device_size", ds.Size)
	kv("dax_device_align", ds.Align)
	kv("dax_device_flushes", ds.Flushes)
	kv("dax_device_lines_flushed", ds.LinesFlushed)
	kv("dax_device_lines_streamed", ds.LinesStreamed)
	kv("dax_device_msyncs", ds.Msyncs)
	kv("dax_device_msync_bytes", ds.MsyncBytes)
	kv("dax_device_trims_skipped", ds.TrimsSkipped)
	kv("dax_device_faults", ds.Faults)
	kv("dax_device_errors", ds.Errors)
	classInfo(kv, "dax_device_write_bytes", ds.WriteBytesByClass)
	return b.String()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// collector exports the tier's counters as kvresp_dax_*.
func (t *daxTier) collector() prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("kvresp_dax_"+name, help, labels, nil)
	}
	return newLogCollector("dax", "DAX tier", t.Engine, &daxDeviceMetrics{
		dev:     t.dev,
		info:    d("device_info", "The DAX tier's device: how it is mapped (mode fsdax, devdax or file), whether with MAP_SYNC, and how writes are made durable (flush).", "mode", "map_sync", "flush"),
		flushes: d("flushes_total", "Flushes of the DAX tier's device: a store fence, or for a plain file msync of what was written."),
		lines:   d("flushed_lines_total", "Cache lines the DAX tier's device wrote back as it wrote (fsdax, devdax)."),
		stream:  d("streamed_lines_total", "Cache lines the DAX tier's device wrote with non-temporal stores, which need no write-back (fsdax, devdax)."),
		msync:   d("msync_bytes_total", "Bytes the DAX tier's device msynced (a plain file)."),
		faults:  d("faults_total", "Reads and writes of the DAX tier's device that faulted on the mapping (media errors)."),
	})
}

// daxDeviceMetrics are the DAX tier's device metrics.
type daxDeviceMetrics struct {
	dev                                         *dax.Device
	info, flushes, lines, stream, msync, faults *prometheus.Desc
}

func (m *daxDeviceMetrics) writeBytesByClass() [3]int64 { return m.dev.Stats().WriteBytesByClass }

// Describe implements prometheus.Collector.
func (m *daxDeviceMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.info, m.flushes, m.lines, m.stream, m.msync, m.faults} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *daxDeviceMetrics) Collect(ch chan<- prometheus.Metric) {
	ds := m.dev.Stats()
	ch <- prometheus.MustNewConstMetric(m.info, prometheus.GaugeValue, 1, ds.Mode.String(), strconv.FormatBool(ds.MapSync), ds.Flusher)
	n := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	n(m.flushes, float64(ds.Flushes))
	n(m.lines, float64(ds.LinesFlushed))
	n(m.stream, float64(ds.LinesStreamed))
	n(m.msync, float64(ds.MsyncBytes))
	n(m.faults, float64(ds.Faults))
}

// openCheckDevice opens path read-only for kvresp check: through the DAX
// device when asked (-dax) or when path is a device-DAX (/dev/daxX.Y, which
// the NVMe tier's device refuses), else as the NVMe tier opens it.
func openCheckDevice(path string, asDax bool) (rawblock.Device, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if asDax || dax.IsDevDAX(path) {
		d, err := dax.Open(dax.Options{Path: path, ReadOnly: true, Logger: quiet})
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	d, err := rawblock.OpenFile(rawblock.FileOptions{Path: path, ReadOnly: true, Rings: 1, Logger: quiet})
	if err != nil {
		return nil, err
	}
	return d, nil
}
