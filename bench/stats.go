package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"kvresp/internal/memsize"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1 µs to a minute at three
// significant digits (HdrHistogram's usual setting; ~200 KiB a histogram).
const (
	histMinUs = 1
	histMaxUs = 60_000_000
	histDigit = 3
)

// outcome of a read command.
type outcome int

const (
	none outcome = iota
	hit
	miss
)

// opStats is one command type's counters in one worker; merged at the end.
type opStats struct {
	ops, hits, misses, errors, bytes int64
	hist                             *hdrhistogram.Histogram
}

func newOpStats() *opStats {
	return &opStats{hist: hdrhistogram.New(histMinUs, histMaxUs, histDigit)}
}

func (s *opStats) merge(o *opStats) {
	s.ops += o.ops
	s.hits += o.hits
	s.misses += o.misses
	s.errors += o.errors
	s.bytes += o.bytes
	s.hist.Merge(o.hist)
}

// live holds the counters the progress line reads while workers run, and
// the first few error messages (errors are never silent).
type live struct {
	ops, bytes, errors atomic.Int64

	mu      sync.Mutex
	samples []string // distinct messages, first seen first
	counts  map[string]int
	dropped int
}

const maxErrorSamples = 10

func (l *live) noteError(err error) {
	l.errors.Add(1)
	msg := err.Error()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = map[string]int{}
	}
	switch {
	case l.counts[msg] > 0 || len(l.samples) < maxErrorSamples:
		if l.counts[msg] == 0 {
			l.samples = append(l.samples, msg)
		}
		l.counts[msg]++
	default:
		l.dropped++
	}
}

// errorSamples lists the distinct messages with their counts.
func (l *live) errorSamples() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, m := range l.samples {
		if n := l.counts[m]; n > 1 {
			m = fmt.Sprintf("%s (%d times)", m, n)
		}
		out = append(out, m)
	}
	if l.dropped > 0 {
		out = append(out, fmt.Sprintf("(%d more errors)", l.dropped))
	}
	return out
}

// recorder is one worker's view: its own opStats per command row, and the
// shared live counters.
type recorder struct {
	rows []*opStats
	live *live
}

func newRecorder(nrows int, l *live) *recorder {
	r := &recorder{live: l}
	for range nrows {
		r.rows = append(r.rows, newOpStats())
	}
	return r
}

func (r *recorder) ok(row int, start time.Time, bytes int64, o outcome) {
	s := r.rows[row]
	us := max(time.Since(start).Microseconds(), histMinUs)
	s.hist.RecordValue(min(us, histMaxUs))
	s.ops++
	s.bytes += bytes
	switch o {
	case hit:
		s.hits++
	case miss:
		s.misses++
	}
	r.live.ops.Add(1)
	r.live.bytes.Add(bytes)
}

func (r *recorder) fail(row int, err error) {
	r.rows[row].ops++
	r.rows[row].errors++
	r.live.ops.Add(1)
	r.live.noteError(err)
}

// Row is one command type's (or the total's) results. Rates are over the
// measured wall time; MB is 10^6 bytes of values (SET sent, GET received).
type Row struct {
	Name      string  `json:"name"`
	Ops       int64   `json:"ops"`
	Hits      int64   `json:"hits"`
	Misses    int64   `json:"misses"`
	Errors    int64   `json:"errors"`
	Bytes     int64   `json:"bytes"`
	OpsPerSec float64 `json:"ops_per_sec"`
	MBPerSec  float64 `json:"mb_per_sec"`
	P50Us     int64   `json:"p50_us"`
	P99Us     int64   `json:"p99_us"`
	P999Us    int64   `json:"p999_us"`
	MaxUs     int64   `json:"max_us"`
}

// Chunks counts LMCache lookups: chunks asked for, chunks found as a
// cached prefix and retrieved, chunks stored.
type Chunks struct {
	Conversations int64 `json:"conversations"`
	Requested     int64 `json:"requested"`
	Retrieved     int64 `json:"retrieved"`
	Stored        int64 `json:"stored"`
}

func (c *Chunks) add(o Chunks) {
	c.Conversations += o.Conversations
	c.Requested += o.Requested
	c.Retrieved += o.Retrieved
	c.Stored += o.Stored
}

// Result is one run against one server.
type Result struct {
	Workload     string   `json:"workload"`
	Addr         string   `json:"addr"`
	Conns        int      `json:"conns"`
	Pipeline     int      `json:"pipeline"`
	ValueSize    int64    `json:"value_size"`
	Seconds      float64  `json:"seconds"`
	Total        Row      `json:"total"`
	Commands     []Row    `json:"commands"`
	Chunks       *Chunks  `json:"chunks,omitempty"`
	DialErrors   int64    `json:"dial_errors"`
	ErrorSamples []string `json:"error_samples,omitempty"`
}

func makeRow(name string, s *opStats, secs float64) Row {
	r := Row{Name: name, Ops: s.ops, Hits: s.hits, Misses: s.misses, Errors: s.errors, Bytes: s.bytes}
	if secs > 0 {
		r.OpsPerSec = float64(s.ops) / secs
		r.MBPerSec = float64(s.bytes) / secs / 1e6
	}
	if s.hist.TotalCount() > 0 {
		r.P50Us = s.hist.ValueAtQuantile(50)
		r.P99Us = s.hist.ValueAtQuantile(99)
		r.P999Us = s.hist.ValueAtQuantile(99.9)
		r.MaxUs = s.hist.Max()
	}
	return r
}

// fmtUs prints a latency with three significant digits.
func fmtUs(us int64) string {
	switch {
	case us == 0:
		return "-"
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.3gms", float64(us)/1e3)
	}
	return fmt.Sprintf("%.3gs", float64(us)/1e6)
}

func (r *Result) writeText(w io.Writer) {
	fmt.Fprintf(w, "%s against %s: %d conns, pipeline %d, values %s, %.2fs\n",
		r.Workload, r.Addr, r.Conns, r.Pipeline, memsize.Format(r.ValueSize), r.Seconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "command\tops\tops/s\tMB/s\tp50\tp99\tp99.9\tmax\thits\tmisses\terrors\t")
	for _, row := range append(r.Commands, r.Total) {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t\n", row.Name, row.Ops,
			row.OpsPerSec, row.MBPerSec, fmtUs(row.P50Us), fmtUs(row.P99Us), fmtUs(row.P999Us),
			fmtUs(row.MaxUs), row.Hits, row.Misses, row.Errors)
	}
	tw.Flush()
	if c := r.Chunks; c != nil {
		pct := 0.0
		if c.Requested > 0 {
			pct = 100 * float64(c.Retrieved) / float64(c.Requested)
		}
		fmt.Fprintf(w, "chunks: %d conversations, %d requested, %d retrieved (%.1f%%), %d stored\n",
			c.Conversations, c.Requested, c.Retrieved, pct, c.Stored)
	}
	if r.DialErrors > 0 {
		fmt.Fprintf(w, "failed connection attempts: %d\n", r.DialErrors)
	}
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(w, "error: %s\n", s)
	}
}

func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// progress prints a line to w every interval until stop is closed.
func progress(w io.Writer, l *live, every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	start := time.Now()
	last, lastOps, lastBytes := start, int64(0), int64(0)
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			ops, bytes := l.ops.Load(), l.bytes.Load()
			dt := now.Sub(last).Seconds()
			fmt.Fprintf(w, "bench: %5.1fs %9.1f ops/s %9.1f MB/s  errors %d\n", now.Sub(start).Seconds(),
				float64(ops-lastOps)/dt, float64(bytes-lastBytes)/dt/1e6, l.errors.Load())
			last, lastOps, lastBytes = now, ops, bytes
		}
	}
}
