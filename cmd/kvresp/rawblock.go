package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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
		// The last tier: store needs only the keys of what it drops.
		EvictKeysOnly: true,
		Logger:        log,
	})
	if err != nil {
		_ = dev.Close()
		if errors.Is(err, rawblock.ErrForeign) || errors.Is(err, rawblock.ErrNewerFormat) {
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
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kvresp check PATH   (the rawblock-path of an NVMe tier; nothing is written)")
	}
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dev, err := rawblock.OpenFile(rawblock.FileOptions{Path: fs.Arg(0), ReadOnly: true, Rings: 1, Logger: quiet})
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
	var b strings.Builder
	kv := func(k string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", k, v) }
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
	es := rb.EngineStats()
	kv("rawblock_block_size", es.BlockSize)
	kv("rawblock_region_size", es.RegionSize)
	kv("rawblock_regions", es.Regions)
	kv("rawblock_regions_free", es.FreeRegions)
	kv("rawblock_regions_open", es.OpenRegions)
	kv("rawblock_regions_sealed", es.SealedRegions)
	kv("rawblock_regions_reclaiming", es.ReclaimingRegions)
	kv("rawblock_reads", es.Reads)
	kv("rawblock_writes", es.Writes)
	kv("rawblock_read_bytes", es.ReadBytes)
	kv("rawblock_write_bytes", es.WriteBytes)
	kv("rawblock_reclaims", es.Reclaims)
	kv("rawblock_reinsertions", es.Reinsertions)
	kv("rawblock_trims", es.Trims)
	kv("rawblock_checksum_failures", es.ChecksumFailures)
	kv("rawblock_io_errors", es.IOErrors)
	kv("rawblock_corrupt_records", es.CorruptRecords)
	kv("rawblock_recovered_entries", es.Recovered)
	kv("rawblock_index_bytes", es.IndexBytes)
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
	kv("rawblock_device_write_bytes_meta", ds.WriteBytesByClass[rawblock.ClassMeta])
	kv("rawblock_device_write_bytes_hot", ds.WriteBytesByClass[rawblock.ClassHot])
	kv("rawblock_device_write_bytes_cold", ds.WriteBytesByClass[rawblock.ClassCold])
	out["rawblock"] = b.String()
	return out
}

// rawblockCollector exports the engine's counters at scrape time.
type rawblockCollector struct {
	rb      *rawblock.Engine
	dev     *rawblock.FileDevice
	depth   *prometheus.Desc
	classes *prometheus.Desc
	regions *prometheus.Desc
	ops     *prometheus.Desc
	bytes   *prometheus.Desc
	events  *prometheus.Desc
	index   *prometheus.Desc
}

func newRawblockCollector(rb *rawblock.Engine, dev *rawblock.FileDevice) *rawblockCollector {
	return &rawblockCollector{
		rb:      rb,
		dev:     dev,
		depth:   prometheus.NewDesc("kvresp_rawblock_queue_depth", "I/Os in flight on the NVMe tier's device.", nil, nil),
		classes: prometheus.NewDesc("kvresp_rawblock_write_bytes_total", "Bytes written to the NVMe tier's device, by placement class.", []string{"class"}, nil),
		regions: prometheus.NewDesc("kvresp_rawblock_regions", "Regions of the NVMe tier's log, by state.", []string{"state"}, nil),
		ops:     prometheus.NewDesc("kvresp_rawblock_io_total", "Device reads and writes of the NVMe tier.", []string{"op"}, nil),
		bytes:   prometheus.NewDesc("kvresp_rawblock_io_bytes_total", "Bytes read from and written to the NVMe tier's device.", []string{"op"}, nil),
		events:  prometheus.NewDesc("kvresp_rawblock_events_total", "NVMe tier events: reclaims, reinsertions, trims, checksum failures, I/O errors, corrupt records.", []string{"event"}, nil),
		index:   prometheus.NewDesc("kvresp_rawblock_index_bytes", "DRAM held by the NVMe tier's index.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *rawblockCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.regions, c.ops, c.bytes, c.events, c.index, c.depth, c.classes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *rawblockCollector) Collect(ch chan<- prometheus.Metric) {
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
	ds := c.dev.Stats()
	g(c.depth, float64(ds.QueueDepth))
	for _, cl := range []struct {
		name string
		c    rawblock.Class
	}{{"meta", rawblock.ClassMeta}, {"hot", rawblock.ClassHot}, {"cold", rawblock.ClassCold}} {
		n(c.classes, uint64(ds.WriteBytesByClass[cl.c]), cl.name)
	}
}
