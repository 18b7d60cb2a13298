package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"kvresp/rawblock"
	"kvresp/slab"
	"kvresp/store"
)

// rawblockPath is where the NVMe tier lives: rawblock-path, or a sparse
// file under dir so a new user gets the whole cascade with no device.
func rawblockPath(cfg *Config) string {
	if cfg.RawblockPath != "" {
		return cfg.RawblockPath
	}
	return filepath.Join(cfg.Dir, "kvresp.rawblock")
}

// openRawblock opens the NVMe tier's device and its log.
func openRawblock(cfg *Config, arena *slab.Arena, log *slog.Logger) (*rawblock.FileDevice, *rawblock.Engine, error) {
	path := rawblockPath(cfg)
	// rawblock-size sizes a file the tier creates. Whatever exists already
	// (a log, a device, or something that is not ours and will be refused)
	// is opened at its own size and left unchanged until it is known to be
	// a kvresp log.
	size := cfg.RawblockSize
	if _, err := os.Stat(path); err == nil {
		size = 0
	}
	dev, err := rawblock.OpenFile(rawblock.FileOptions{
		Path:       path,
		Size:       size,
		Rings:      cfg.RawblockRings,
		QueueDepth: cfg.RawblockQueueDepth,
		Trim:       map[string]rawblock.TrimMode{"auto": rawblock.TrimAuto, "yes": rawblock.TrimOn, "no": rawblock.TrimOff}[cfg.RawblockTrim],
		PIDs:       cfg.FDPPids,
		// Slab buffers are registered with the rings as fixed buffers.
		Arena:  arena,
		Logger: log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("rawblock-path %s: %w", path, err)
	}
	// Values are read and written in place, so they must sit where the device's direct I/O
	// can reach them; nothing has been stored yet, so they can still move.
	if off, m := arena.ValueOffset(), dev.MemAlign(); m > 0 && off%m != 0 {
		if err := arena.SetValueOffset(0); err != nil {
			_ = dev.Close()
			return nil, nil, err
		}
		log.Info("rawblock: values are page-aligned, as the device's direct I/O asks; replies of large values are slower to copy into sockets", "path", path, "memory_alignment", m)
	}
	// On a device with FDP a region fills and empties whole reclaim units, so the device
	// never has to move data out of a unit kvresp is still using.
	regionSize := cfg.RawblockRegionSize
	if ru := dev.ReclaimUnitSize(); ru > 0 && regionSize%ru != 0 {
		regionSize = (regionSize/ru + 1) * ru
		log.Info("rawblock-region-size rounded up to a multiple of the FDP reclaim unit", "from", cfg.RawblockRegionSize, "to", regionSize, "reclaim_unit", ru)
	}
	eng, err := rawblock.Open(rawblock.Options{
		Device:     dev,
		Arena:      arena,
		RegionSize: regionSize,
		Format:     cfg.RawblockFormat,
		Sync:       cfg.RawblockWriteMode == "always",
		// As the last tier, store needs only the keys of what it drops;
		// with the DAX tier below or write-back upstream, the values go on.
		EvictKeysOnly: !slices.Contains(cfg.TierOrder, "dax") && !writesBack(cfg),
		Logger:        log,
	})
	if err != nil {
		_ = dev.Close()
		if errors.Is(err, rawblock.ErrForeign) || errors.Is(err, rawblock.ErrNewerFormat) || errors.Is(err, rawblock.ErrOldFormat) {
			return nil, nil, fmt.Errorf("rawblock-path %s: %w; kvresp leaves it as it is: set rawblock-format yes to erase it and use it for the tier", path, err)
		}
		return nil, nil, fmt.Errorf("rawblock-path %s: %w", path, err)
	}
	es := eng.EngineStats()
	log.Info("rawblock tier open", "path", path, "regions", es.Regions, "region_size", es.RegionSize, "recovered", es.Recovered)
	return dev, eng, nil
}

// check is `kvresp check PATH`: verify a log offline and print what it holds
// and every corruption found. It exits 1 when there is corruption.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kvresp check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asDax := fs.Bool("dax", false, "PATH is the dax-path of a DAX tier (implied for a device-DAX such as /dev/dax0.0)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kvresp check [-dax] PATH   (the rawblock-path of an NVMe tier, or with -dax the dax-path of a DAX tier; nothing is written)")
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	dev, err := openCheckDevice(fs.Arg(0), *asDax)
	if err != nil {
		fmt.Fprintf(stderr, "kvresp check: %v\n", err)
		return 2
	}
	defer dev.Close()
	rep, err := rawblock.Check(dev)
	if err != nil {
		fmt.Fprintf(stderr, "kvresp check: %s: %v\n", fs.Arg(0), err)
		return 2
	}
	fmt.Fprintf(stdout, "path:          %s\n", fs.Arg(0))
	fmt.Fprintf(stdout, "created:       %s\n", rep.Created.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(stdout, "block size:    %d\n", rep.BlockSize)
	fmt.Fprintf(stdout, "region size:   %d\n", rep.RegionSize)
	fmt.Fprintf(stdout, "regions:       %d (%d free, %d open, %d sealed)\n", rep.Regions, rep.Free, rep.Open, rep.Sealed)
	for i, e := range rep.SuperCopies {
		state := "ok"
		if e != nil {
			state = e.Error()
		}
		fmt.Fprintf(stdout, "superblock %c:  %s\n", 'A'+i, state)
	}
	fmt.Fprintf(stdout, "entries:       %d (%d tombstones), %d value bytes\n", rep.Entries, rep.Tombstones, rep.ValueBytes)
	fmt.Fprintf(stdout, "corruptions:   %d\n", len(rep.Corruptions))
	for _, c := range rep.Corruptions {
		fmt.Fprintf(stdout, "  %s\n", c)
	}
	if len(rep.Corruptions) > 0 {
		return 1
	}
	return 0
}

// infoSections adds INFO's demotion figures to the tiers section and a
// rawblock section with the engine's own counters.
func infoSections(st *store.Store, rb *rawblock.Engine, dev *rawblock.FileDevice) map[string]string {
	ss := st.Stats()
	b, kv := infoWriter("")
	kv("demoted", ss.Demoted)
	kv("demote_dropped", ss.DemoteDropped)
	kv("demote_failed", ss.DemoteFailed)
	kv("demote_cancelled", ss.DemoteCancelled)
	kv("demote_cancelled_late", ss.DemoteCancelledLate)
	kv("demote_queue_hits", ss.DemoteHits)
	kv("promoted", ss.Promoted)
	out := map[string]string{"tiers": b.String()}
	if rb == nil {
		return out
	}
	b.Reset()
	logInfo(kv, "rawblock", rb.EngineStats())
	ds := dev.Stats()
	kv("rawblock_device_queue_depth", ds.QueueDepth)
	kv("rawblock_device_max_queue_depth", ds.MaxQueueDepth)
	kv("rawblock_device_ops", ds.Ops)
	kv("rawblock_device_submits", ds.Submits)
	kv("rawblock_device_flushes", ds.Flushes)
	kv("rawblock_device_trim_bytes", ds.TrimBytes)
	kv("rawblock_device_trims_skipped", ds.TrimsSkipped)
	kv("rawblock_device_errors", ds.Errors)
	kv("rawblock_device_fixed_ops", ds.FixedOps)
	kv("rawblock_device_plain_ops", ds.PlainOps)
	classInfo(kv, "rawblock_device_write_bytes", ds.WriteBytesByClass)
	out["rawblock"] = b.String()
	return out
}

// infoWriter returns the builder of an INFO section and the function that
// adds one line "<prefix><key>:<value>" to it.
func infoWriter(prefix string) (*strings.Builder, func(k string, v any)) {
	b := new(strings.Builder)
	return b, func(k string, v any) { fmt.Fprintf(b, "%s%s:%v\r\n", prefix, k, v) }
}

// logInfo writes the counters of a log tier's engine as INFO fields named
// prefix_...: the NVMe tier's (rawblock) and the DAX tier's (dax).
func logInfo(kv func(string, any), prefix string, es rawblock.EngineStats) {
	kv(prefix+"_block_size", es.BlockSize)
	kv(prefix+"_region_size", es.RegionSize)
	kv(prefix+"_regions", es.Regions)
	kv(prefix+"_regions_free", es.FreeRegions)
	kv(prefix+"_regions_open", es.OpenRegions)
	kv(prefix+"_regions_sealed", es.SealedRegions)
	kv(prefix+"_regions_reclaiming", es.ReclaimingRegions)
	kv(prefix+"_reads", es.Reads)
	kv(prefix+"_writes", es.Writes)
	kv(prefix+"_read_bytes", es.ReadBytes)
	kv(prefix+"_write_bytes", es.WriteBytes)
	kv(prefix+"_reclaims", es.Reclaims)
	kv(prefix+"_reinsertions", es.Reinsertions)
	kv(prefix+"_trims", es.Trims)
	kv(prefix+"_checksum_failures", es.ChecksumFailures)
	kv(prefix+"_io_errors", es.IOErrors)
	kv(prefix+"_corrupt_records", es.CorruptRecords)
	kv(prefix+"_recovered_entries", es.Recovered)
	kv(prefix+"_index_bytes", es.IndexBytes)
	kv(prefix+"_reclaim_buffer_bytes", es.ReclaimBufferBytes)
	kv(prefix+"_reclaim_buffer_limit", es.ReclaimBufferLimit)
}

// placementClasses names the placement classes for INFO and metrics.
var placementClasses = []struct {
	name string
	c    rawblock.Class
}{{"meta", rawblock.ClassMeta}, {"hot", rawblock.ClassHot}, {"cold", rawblock.ClassCold}}

// classInfo writes a device's written bytes by placement class as INFO
// fields named prefix_meta, prefix_hot, prefix_cold.
func classInfo(kv func(string, any), prefix string, byClass [3]int64) {
	for _, cl := range placementClasses {
		kv(prefix+"_"+cl.name, byClass[cl.c])
	}
}

// logDevice is what a log tier's collector reads from the tier's device,
// beyond the engine's counters: its bytes written by placement class, and
// its own metrics.
type logDevice interface {
	prometheus.Collector
	writeBytesByClass() [3]int64
}

// logCollector exports the counters of a log tier's engine and device at
// scrape time, as kvresp_<subsystem>_*: the NVMe tier's (rawblock) and the
// DAX tier's (dax).
type logCollector struct {
	rb      *rawblock.Engine
	dev     logDevice
	classes *prometheus.Desc
	regions *prometheus.Desc
	ops     *prometheus.Desc
	bytes   *prometheus.Desc
	events  *prometheus.Desc
	index   *prometheus.Desc
	reclaim *prometheus.Desc
}

// newLogCollector names the metrics kvresp_<sub>_* and says "the <what>" in
// their help.
func newLogCollector(sub, what string, rb *rawblock.Engine, dev logDevice) *logCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("kvresp_"+sub+"_"+name, help, labels, nil)
	}
	return &logCollector{
		rb:      rb,
		dev:     dev,
		classes: d("write_bytes_total", "Bytes written to the "+what+"'s device, by placement class.", "class"),
		regions: d("regions", "Regions of the "+what+"'s log, by state.", "state"),
		ops:     d("io_total", "Device reads and writes of the "+what+".", "op"),
		bytes:   d("io_bytes_total", "Bytes read from and written to the "+what+"'s device.", "op"),
		events:  d("events_total", "Events of the "+what+": reclaims, reinsertions, trims, checksum failures, I/O errors, corrupt records.", "event"),
		index:   d("index_bytes", "DRAM held by the "+what+"'s index."),
		reclaim: d("reclaim_buffer_bytes", "DRAM mapped for what the "+what+"'s reclaim reads (values on their way down, reinsertions), outside maxmemory; at most a region and 1 MiB."),
	}
}

// newRawblockCollector exports the NVMe tier's counters.
func newRawblockCollector(rb *rawblock.Engine, dev *rawblock.FileDevice) *logCollector {
	return newLogCollector("rawblock", "NVMe tier", rb, &fileDeviceMetrics{
		dev:   dev,
		depth: prometheus.NewDesc("kvresp_rawblock_queue_depth", "I/Os in flight on the NVMe tier's device.", nil, nil),
	})
}

// Describe implements prometheus.Collector.
func (c *logCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.regions, c.ops, c.bytes, c.events, c.index, c.reclaim, c.classes} {
		ch <- d
	}
	c.dev.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *logCollector) Collect(ch chan<- prometheus.Metric) {
	es := c.rb.EngineStats()
	g := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	n := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	g(c.regions, float64(es.FreeRegions), "free")
	g(c.regions, float64(es.OpenRegions), "open")
	g(c.regions, float64(es.SealedRegions), "sealed")
	g(c.regions, float64(es.ReclaimingRegions), "reclaiming")
	n(c.ops, es.Reads, "read")
	n(c.ops, es.Writes, "write")
	n(c.bytes, es.ReadBytes, "read")
	n(c.bytes, es.WriteBytes, "write")
	n(c.events, es.Reclaims, "reclaim")
	n(c.events, es.Reinsertions, "reinsertion")
	n(c.events, es.Trims, "trim")
	n(c.events, es.ChecksumFailures, "checksum_failure")
	n(c.events, es.IOErrors, "io_error")
	n(c.events, es.CorruptRecords, "corrupt_record")
	g(c.index, float64(es.IndexBytes))
	g(c.reclaim, float64(es.ReclaimBufferBytes))
	byClass := c.dev.writeBytesByClass()
	for _, cl := range placementClasses {
		n(c.classes, uint64(byClass[cl.c]), cl.name)
	}
	c.dev.Collect(ch)
}

// fileDeviceMetrics are the NVMe tier's device metrics.
type fileDeviceMetrics struct {
	dev   *rawblock.FileDevice
	depth *prometheus.Desc
}

func (m *fileDeviceMetrics) writeBytesByClass() [3]int64 { return m.dev.Stats().WriteBytesByClass }

// Describe implements prometheus.Collector.
func (m *fileDeviceMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.depth }

// Collect implements prometheus.Collector.
func (m *fileDeviceMetrics) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(m.depth, prometheus.GaugeValue, float64(m.dev.Stats().QueueDepth))
}
